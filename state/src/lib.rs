//! terrace's recorded state, in three layers: the in-memory model (`model`), the versioned file
//! format with its upgrade functions (`format`), and storage behind the `Backend` trait with
//! locking (`backend`; `local` a file, `s3` S3-compatible object storage, `pg` a PostgreSQL table),
//! whose one conformance suite (`conformance`) every backend passes.
//!
//! The crate knows nothing of the planner: addresses are plain strings here, parsed by the planner.
//! The file format is a contract, documented in `docs/state-format.md`.

pub mod backend;
pub mod check;
pub mod conformance;
mod error;
pub mod file;
pub mod format;
pub mod local;
pub mod model;
pub mod pg;
pub mod s3;

pub use backend::{Backend, LockGuard, LockInfo};
pub use error::StateError;
pub use format::{FORMAT_VERSION, from_json, to_json};
pub use local::{LocalBackend, write_state_atomically};
pub use model::{OutputState, ResourceState, State};
pub use pg::PgBackend;
pub use s3::{S3Backend, S3Config};
