//! The crate's one error type. Every variant names what it concerns (the file or backend, the lock
//! holder, the serials, the lineages) so that the message alone lets a person act on it.

use std::path::PathBuf;
use std::time::Duration;

use crate::backend::LockInfo;

/// Why state could not be read, written, locked or unlocked.
#[derive(Debug, thiserror::Error)]
pub enum StateError {
    /// A file operation failed; `action` says which ("read", "create", "rename ...").
    #[error("cannot {action} {}: {source}", path.display())]
    Io {
        action: &'static str,
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },

    /// The bytes are not JSON (a truncated or damaged file).
    #[error("{origin} is corrupted: not valid JSON at line {line}, column {column}: {detail}")]
    Corrupt { origin: String, line: usize, column: usize, detail: String },

    /// JSON, but not something terrace wrote (another tool's file, or a Terraform state).
    #[error("{origin} is not a terrace state: {reason}")]
    NotTerraceState { origin: String, reason: String },

    /// Written by a newer terrace: reading it could lose what this version does not know.
    #[error(
        "{origin} has format_version {found}, newer than format_version {supported}, the newest this terrace {} reads",
        env!("CARGO_PKG_VERSION")
    )]
    NewerFormat { origin: String, found: u64, supported: u32 },

    /// A terrace state whose content does not match its format_version's layout.
    #[error("{origin} is not a valid state of format_version {version} at line {line}, column {column}: {detail}")]
    Invalid { origin: String, version: u32, line: usize, column: usize, detail: String },

    /// A readable state that cannot be acted on (`check`): two addresses for one object, a kind
    /// its address contradicts, a dependency cycle, a serial that cannot be raised.
    #[error("{origin} cannot be acted on: {}", problems.join("; "))]
    Inconsistent { origin: String, problems: Vec<String> },

    /// A well-formed older state that cannot be carried to the current format.
    #[error("cannot upgrade {origin} from format_version {from}: {detail}")]
    Upgrade { origin: String, from: u32, detail: String },

    /// The stored state is another stack's history.
    #[error("refusing to write to {backend}: it holds a state of lineage {stored}, not of lineage {writing}")]
    LineageMismatch { backend: String, stored: String, writing: String },

    /// The stored state is as new as, or newer than, the one being written.
    #[error("refusing to write serial {writing} to {backend}: it already holds serial {stored} of lineage {lineage}")]
    StaleSerial { backend: String, lineage: String, stored: u64, writing: u64 },

    /// Another run holds the lock; `waited` is how long this one waited for it.
    #[error(
        "{backend} is locked by {} for {} since {}{} (lock id {}){}",
        .lock.holder, .lock.operation, .lock.created, age_suffix(lock), .lock.id, waited_suffix(*.waited)
    )]
    Locked { backend: String, lock: Box<LockInfo>, waited: Duration },

    /// `unlock` was asked to break a lock that is not there.
    #[error("cannot unlock {backend}: it is not locked (no lock {given})")]
    NotLocked { backend: String, given: String },

    /// `unlock` was given an id other than the current lock's.
    #[error(
        "cannot unlock {backend} with lock id {given}: the lock held by {} for {} since {} has id {}",
        .lock.holder, .lock.operation, .lock.created, .lock.id
    )]
    LockIdMismatch { backend: String, given: String, lock: Box<LockInfo> },

    /// A lock file exists but does not hold a lock record (e.g. a run was killed while creating it).
    #[error("lock file {} cannot be read: {detail}", path.display())]
    LockUnreadable { path: PathBuf, detail: String },

    /// A remote backend's server could not be reached or refused a request; `action` says what was
    /// being done ("connect", "write the state"). The detail is the server's or the client's
    /// message, never a credential.
    #[error("{backend}: cannot {action}: {detail}")]
    Remote { backend: String, action: &'static str, detail: String },
}

/// `, 3m 12s ago`: how old a lock is, which says whether its holder may still be at work.
fn age_suffix(lock: &LockInfo) -> String {
    lock.age().map(|age| format!(", {age} ago")).unwrap_or_default()
}

fn waited_suffix(waited: Duration) -> String {
    if waited.is_zero() { String::new() } else { format!("; waited {:.1} s for it", waited.as_secs_f64()) }
}

impl StateError {
    /// What a person can do about the error, for the binary's `hint:` line.
    pub fn hint(&self) -> Option<String> {
        match self {
            StateError::Corrupt { .. }
            | StateError::Invalid { .. }
            | StateError::Inconsistent { .. }
            | StateError::NotTerraceState { .. }
            | StateError::Upgrade { .. } => Some(
                "the stored state was left unchanged; restore it from its backup, or move it away \
                 if it is not this stack's state"
                    .to_owned(),
            ),
            StateError::NewerFormat { .. } => {
                Some("use the terrace version that wrote this state, or a newer one".to_owned())
            }
            StateError::LineageMismatch { .. } => {
                Some("the stored state belongs to another stack; check the folder and the backend settings".to_owned())
            }
            StateError::StaleSerial { .. } => {
                Some("another run changed the state since this one read it; plan again".to_owned())
            }
            StateError::Locked { lock, .. } if lock.holder_is_gone() => Some(format!(
                "the holder ({}) is no longer running, so no run is going on: \
                 break the lock with `terrace state unlock {}`",
                lock.holder, lock.id
            )),
            StateError::Locked { lock, .. } => Some(format!(
                "wait for that run to finish or pass --lock-timeout; if no run is going on, \
                 break the lock with `terrace state unlock {}`",
                lock.id
            )),
            StateError::LockIdMismatch { lock, .. } => {
                Some(format!("the current lock's id is {}; break it only if no run is going on", lock.id))
            }
            StateError::LockUnreadable { path, .. } => {
                Some(format!("if no run is going on, remove {} by hand", path.display()))
            }
            StateError::Io { .. } | StateError::NotLocked { .. } | StateError::Remote { .. } => None,
        }
    }
}
