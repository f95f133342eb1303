//! Integration tests over the whole tool: the real `terrace` binary, run in temporary folders, its
//! exit code, stdout and stderr snapshotted with insta.

mod cost;
mod diagnostics;
mod plan;
mod support;
