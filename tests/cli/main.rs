//! Integration tests over the whole tool: the real `terrace` binary, run in temporary folders, its
//! exit code, stdout and stderr snapshotted with insta.

mod apply;
mod backends;
mod cloud;
mod commands;
mod cost;
mod diagnostics;
mod diff;
mod docs;
mod examples;
mod migrations;
#[path = "../shared/phases.rs"]
mod phases;
mod pipeline;
mod plan;
mod recorded;
mod resilience;
mod robustness;
mod support;
