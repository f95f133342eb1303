//! Integration tests over the whole tool: the real `terrace` binary, run in temporary folders, its
//! exit code, stdout and stderr snapshotted with insta.

mod commands;
mod cost;
mod diagnostics;
mod diff;
mod docs;
mod migrations;
mod plan;
mod recorded;
mod robustness;
mod support;
