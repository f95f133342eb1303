//! Storage of state behind one trait, with the lock a run holds while it works. The local file
//! backend is in `local`; remote ones (object storage, PostgreSQL) implement the same trait and pass
//! the same suite in `conformance`.

use std::time::Duration;

use serde::{Deserialize, Serialize};

use crate::error::StateError;
use crate::model::State;

/// Where a stack's state is kept.
///
/// `write` does not take the lock itself: a run locks once, then reads and writes many times
/// (after every resource operation), and releases the lock at the end.
pub trait Backend: Send + Sync {
    /// Names the storage for messages, e.g. `local file ./terrace.state.json`.
    fn describe(&self) -> String;

    /// The stored state, or `None` when there is none yet. A corrupted, foreign or newer-format
    /// object is an error, never `None`, so nothing mistakes it for an empty stack.
    fn read(&self) -> Result<Option<State>, StateError>;

    /// Stores `state`, replacing the stored one. Refused, with nothing written, when the stored
    /// state has another lineage, a serial at or above `state.serial`, or cannot be read.
    fn write(&self, state: &State) -> Result<(), StateError>;

    /// Takes the exclusive lock for `operation` ("plan", "apply"). With a zero timeout it fails at
    /// once when another run holds it; otherwise it polls until the lock is free or `timeout` has
    /// passed. The error names the holder, the operation, since when, and the lock id.
    fn lock(&self, operation: &str, timeout: Duration) -> Result<LockGuard, StateError>;

    /// Breaks a stale lock by its id; an error when there is no lock or it has another id.
    fn unlock(&self, id: &str) -> Result<(), StateError>;

    /// The current lock, if any.
    fn lock_info(&self) -> Result<Option<LockInfo>, StateError>;
}

/// Who holds a lock and why; stored with the lock so that a second run can name the first.
/// Unknown fields are ignored when reading, so that a lock taken by a newer terrace that records
/// more still stops this one, naming its holder.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct LockInfo {
    /// A UUID v4; `terrace state unlock ID` names the lock by it.
    pub id: String,
    /// `user@host pid N`.
    pub holder: String,
    /// The command that took the lock: "plan", "apply", ...
    pub operation: String,
    /// When the lock was taken, RFC 3339 in UTC.
    pub created: String,
    /// The version of terrace that took the lock.
    pub terrace_version: String,
}

impl LockInfo {
    /// A lock record for this process, taken now.
    pub fn new(operation: &str) -> LockInfo {
        LockInfo {
            id: uuid::Uuid::new_v4().to_string(),
            holder: holder(),
            operation: operation.to_owned(),
            created: now_rfc3339(),
            terrace_version: env!("CARGO_PKG_VERSION").to_owned(),
        }
    }
}

impl LockInfo {
    /// The holder's pid, when it ran on this host (and `/proc` shows this host's processes).
    fn pid_here(&self) -> Option<u32> {
        let ours = holder();
        let host = |h: &str| h.split(" pid ").next().and_then(|s| s.split('@').nth(1)).map(str::to_owned);
        let pid = self.holder.rsplit(" pid ").next().and_then(|p| p.trim().parse::<u32>().ok())?;
        (host(&self.holder).is_some()
            && host(&self.holder) == host(&ours)
            && std::path::Path::new("/proc/self").exists())
        .then_some(pid)
    }

    /// The lock was taken by a process of this host that is no longer running (a run killed with
    /// SIGKILL): breaking it is safe. Known only where `/proc` shows processes; elsewhere `false`.
    pub fn holder_is_gone(&self) -> bool {
        self.pid_here().is_some_and(|pid| !std::path::Path::new(&format!("/proc/{pid}")).exists())
    }

    /// The pid of the holder when it is a process still running on this host: breaking its lock
    /// would let two runs write at once.
    pub fn holder_runs_here(&self) -> Option<u32> {
        self.pid_here().filter(|pid| std::path::Path::new(&format!("/proc/{pid}")).exists())
    }

    /// How long ago the lock was taken, as `3m 12s` (`None` when `created` does not read).
    pub fn age(&self) -> Option<String> {
        let created: jiff::Timestamp = self.created.parse().ok()?;
        let seconds = jiff::Timestamp::now().as_second().saturating_sub(created.as_second()).max(0);
        let (d, h, m, s) = (seconds / 86_400, seconds / 3_600 % 24, seconds / 60 % 60, seconds % 60);
        Some(match (d, h, m) {
            (0, 0, 0) => format!("{s}s"),
            (0, 0, _) => format!("{m}m {s}s"),
            (0, _, _) => format!("{h}h {m}m"),
            _ => format!("{d}d {h}h"),
        })
    }
}

/// Waits for a lock the way every synchronous backend does: `attempt` tries to take it and gives
/// the holder when someone else has it; it is tried again every `poll` until `timeout`, then the
/// holder is named in [`StateError::Locked`]. `Ok` once it is taken.
pub fn wait_for_lock(
    describe: impl Fn() -> String,
    timeout: Duration,
    poll: Duration,
    mut attempt: impl FnMut() -> Result<Option<LockInfo>, StateError>,
) -> Result<(), StateError> {
    let start = std::time::Instant::now();
    loop {
        let Some(holder) = attempt()? else { return Ok(()) };
        let waited = start.elapsed();
        if waited >= timeout {
            return Err(StateError::Locked {
                backend: describe(),
                lock: Box::new(holder),
                // Without a timeout nothing was waited for, however long the look took.
                waited: if timeout.is_zero() { Duration::ZERO } else { waited },
            });
        }
        std::thread::sleep(poll.min(timeout - waited));
    }
}

/// `user@host pid N` for this process.
pub fn holder() -> String {
    let user = std::env::var("USER").ok().filter(|user| !user.is_empty()).unwrap_or_else(|| "unknown".to_owned());
    let host = std::fs::read_to_string("/etc/hostname")
        .ok()
        .map(|text| text.trim().to_owned())
        .filter(|host| !host.is_empty())
        .or_else(|| std::env::var("HOSTNAME").ok().filter(|host| !host.is_empty()))
        .unwrap_or_else(|| "unknown".to_owned());
    format!("{user}@{host} pid {}", std::process::id())
}

/// The current time in whole seconds, RFC 3339 in UTC (`2026-03-01T12:00:00Z`).
fn now_rfc3339() -> String {
    let now = jiff::Timestamp::now();
    // Whole seconds read better in a lock message; the current time is always within jiff's
    // range, and should it not be, the precise time is as good an answer.
    jiff::Timestamp::from_second(now.as_second()).unwrap_or(now).to_string()
}

type Release = Box<dyn FnOnce(&LockInfo) -> Result<(), StateError> + Send>;

/// A held lock. Dropping it releases the lock; `release` does the same and reports a failure.
pub struct LockGuard {
    info: LockInfo,
    release: Option<Release>,
}

impl LockGuard {
    /// A guard for the lock described by `info`; `release` gives it back, and is called once.
    pub fn new(
        info: LockInfo,
        release: impl FnOnce(&LockInfo) -> Result<(), StateError> + Send + 'static,
    ) -> LockGuard {
        LockGuard { info, release: Some(Box::new(release)) }
    }

    /// The lock this guard holds.
    pub fn info(&self) -> &LockInfo {
        &self.info
    }

    /// Releases the lock now, reporting a failure that dropping the guard would have to ignore.
    pub fn release(mut self) -> Result<(), StateError> {
        match self.release.take() {
            Some(release) => release(&self.info),
            None => Ok(()),
        }
    }
}

impl Drop for LockGuard {
    fn drop(&mut self) {
        if let Some(release) = self.release.take() {
            // A destructor cannot report an error; a lock left behind names its holder and can be
            // broken with `terrace state unlock ID`.
            let _ = release(&self.info);
        }
    }
}

impl std::fmt::Debug for LockGuard {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("LockGuard").field("info", &self.info).field("held", &self.release.is_some()).finish()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn lock_info_names_user_host_and_pid_and_the_time_in_utc() {
        let info = LockInfo::new("apply");
        assert!(info.holder.ends_with(&format!(" pid {}", std::process::id())), "{}", info.holder);
        assert!(info.holder.contains('@'), "{}", info.holder);
        assert_eq!(info.operation, "apply");
        let created: jiff::Timestamp = info.created.parse().expect("RFC 3339");
        assert!(info.created.ends_with('Z') && info.created.len() == 20, "{}", info.created);
        assert!((jiff::Timestamp::now().as_second() - created.as_second()).abs() < 5);
        assert!(uuid::Uuid::parse_str(&info.id).is_ok());
    }

    #[test]
    fn a_lock_of_a_process_that_ended_on_this_host_is_known_gone() {
        let mut ended = std::process::Command::new("true").spawn().expect("spawn true");
        let pid = ended.id();
        ended.wait().expect("true ends");
        let mut info = LockInfo::new("apply");
        assert!(!info.holder_is_gone(), "this process holds it");
        info.holder = holder().replace(&format!(" pid {}", std::process::id()), &format!(" pid {pid}"));
        assert!(info.holder_is_gone(), "{} ended", info.holder);
        info.holder = format!("someone@another-host pid {pid}");
        assert!(!info.holder_is_gone(), "another host's process cannot be checked");
    }

    #[test]
    fn guard_releases_once_whether_dropped_or_released() {
        use std::sync::Arc;
        use std::sync::atomic::{AtomicUsize, Ordering};
        let count = Arc::new(AtomicUsize::new(0));
        let counter = Arc::clone(&count);
        let guard = LockGuard::new(LockInfo::new("plan"), move |_| {
            counter.fetch_add(1, Ordering::SeqCst);
            Ok(())
        });
        guard.release().expect("released");
        assert_eq!(count.load(Ordering::SeqCst), 1);
        let counter = Arc::clone(&count);
        drop(LockGuard::new(LockInfo::new("plan"), move |_| {
            counter.fetch_add(1, Ordering::SeqCst);
            Ok(())
        }));
        assert_eq!(count.load(Ordering::SeqCst), 2);
    }
}
