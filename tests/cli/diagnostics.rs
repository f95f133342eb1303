//! filled by the corpus
