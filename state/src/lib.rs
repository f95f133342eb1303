//! terrace's recorded state. For now only the in-memory model the planner reads; the file format,
//! backends and locking come with the state issue.
