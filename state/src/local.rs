//! The local backend: state in one JSON file (by default `terrace.state.json` in the stack's
//! folder), its previous version in `<name>.backup`, and the lock in `<name>.lock`, all mode 0600.
//! The lock is an OS lock (`flock`) on that file, which dies with its holder; the file's content
//! only names the holder.
//!
//! A write never leaves a torn file: the new state goes to a temporary file in the same folder,
//! which is flushed to disk and then renamed over the state file, and a rename within one file
//! system is atomic. A run killed at any point leaves the previous state or the new one, and at
//! worst a temporary file, which the next write removes.

use std::ffi::OsString;
use std::fs::{self, File, OpenOptions};
use std::io::{ErrorKind, Write as _};
use std::path::{Path, PathBuf};
use std::sync::{Mutex, PoisonError};
use std::time::Duration;

use crate::backend::{Backend, LockGuard, LockInfo};
use crate::error::StateError;
use crate::format::{from_json, to_json};
use crate::model::State;

/// How often a run waiting for the lock looks again.
const LOCK_POLL: Duration = Duration::from_millis(100);

/// State in a file on this machine.
pub struct LocalBackend {
    path: PathBuf,
    /// The file's content as this backend last wrote or read it. A write must know the stored
    /// lineage and serial; when the file still holds exactly these bytes they are known without
    /// parsing it again, which for a large state is most of a write's time.
    known: Mutex<Option<Known>>,
}

/// Bytes of a valid state file, and the lineage and serial they hold.
struct Known {
    bytes: Vec<u8>,
    lineage: String,
    serial: u64,
}

impl LocalBackend {
    /// The backend of the state file at `path`; nothing is read or created until it is used.
    pub fn new(path: impl Into<PathBuf>) -> Self {
        LocalBackend { path: path.into(), known: Mutex::new(None) }
    }

    /// The state file.
    pub fn path(&self) -> &Path {
        &self.path
    }

    /// The previous version of the state file, `<name>.backup`.
    pub fn backup_path(&self) -> PathBuf {
        with_suffix(&self.path, ".backup")
    }

    /// The lock file, `<name>.lock`.
    pub fn lock_path(&self) -> PathBuf {
        with_suffix(&self.path, ".lock")
    }

    /// The state file's bytes, `None` when there is no state file.
    fn read_bytes(&self) -> Result<Option<Vec<u8>>, StateError> {
        match crate::file::read_regular(&self.path, crate::file::MAX_STATE_BYTES) {
            Ok(bytes) => Ok(Some(bytes)),
            Err(error) if error.kind() == ErrorKind::NotFound => Ok(None),
            Err(source) => Err(StateError::Io { action: "read the state file", path: self.path.clone(), source }),
        }
    }

    /// The stored state's lineage and serial, `None` when there is no state file; an error when
    /// the file is not a readable terrace state.
    fn stored_identity(&self) -> Result<Option<(String, u64)>, StateError> {
        let Some(bytes) = self.read_bytes()? else {
            return Ok(None);
        };
        if let Some(known) = self.known().as_ref()
            && known.bytes == bytes
        {
            return Ok(Some((known.lineage.clone(), known.serial)));
        }
        let stored = from_json(&bytes, &self.path.display().to_string())?;
        self.remember(bytes, &stored.lineage, stored.serial);
        Ok(Some((stored.lineage, stored.serial)))
    }

    fn remember(&self, bytes: Vec<u8>, lineage: &str, serial: u64) {
        *self.known() = Some(Known { bytes, lineage: lineage.to_owned(), serial });
    }

    fn known(&self) -> std::sync::MutexGuard<'_, Option<Known>> {
        // A panic while the lock was held cannot leave a half-updated value (it is replaced in one
        // assignment), so a poisoned lock is as good as a healthy one.
        self.known.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// Takes the lock if it is free, returning the open lock file that holds it; otherwise
    /// returns who holds it.
    ///
    /// The lock is an OS lock (`flock`) on `<name>.lock`, which the kernel gives back when its
    /// holder ends however it ends (`kill -9` included): a killed run never blocks the next one.
    /// The file also carries the holder's record, for the message of a run that waits. A record
    /// left by a killed run is a stale file nobody holds, and is taken over.
    fn try_lock(&self, info: &LockInfo) -> Result<Result<File, LockInfo>, StateError> {
        let path = self.lock_path();
        loop {
            let file = open_lock_file(&path)?;
            match file.try_lock() {
                Ok(()) => {}
                Err(std::fs::TryLockError::WouldBlock) => {
                    // The holder writes its record right after it takes the lock.
                    return match read_lock(&path)? {
                        Some(holder) => Ok(Err(holder)),
                        None => continue,
                    };
                }
                Err(std::fs::TryLockError::Error(source)) => {
                    return Err(StateError::Io { action: "lock the lock file", path, source });
                }
            }
            // A holder that released removed the file after this run opened it: the lock held is
            // on a file no other run can find, so it is tried again on the path's current file.
            if !same_file(&file, &path) {
                continue;
            }
            write_lock_record(&file, &path, info)?;
            return Ok(Ok(file));
        }
    }

    /// Removes temporary files that a killed run left behind. Runs after a successful write, while
    /// the caller holds the lock, so no other writer's temporary file is in use.
    fn remove_leftovers(&self) {
        let Some(name) = self.path.file_name().map(|name| name.to_string_lossy().into_owned()) else {
            return;
        };
        let temporary = format!("{name}{TEMPORARY}");
        let backup_temporary = format!("{name}.backup{TEMPORARY}");
        let Ok(entries) = fs::read_dir(folder(&self.path)) else {
            return;
        };
        for entry in entries.flatten() {
            let entry_name = entry.file_name();
            let entry_name = entry_name.to_string_lossy();
            if entry_name.starts_with(&temporary) || entry_name.starts_with(&backup_temporary) {
                // Cleaning up is best effort: a leftover is never read as state.
                let _ = fs::remove_file(entry.path());
            }
        }
    }
}

impl Clone for LocalBackend {
    fn clone(&self) -> Self {
        LocalBackend::new(self.path.clone())
    }
}

impl std::fmt::Debug for LocalBackend {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("LocalBackend").field("path", &self.path).finish_non_exhaustive()
    }
}

impl Backend for LocalBackend {
    fn describe(&self) -> String {
        format!("local file {}", self.path.display())
    }

    fn read(&self) -> Result<Option<State>, StateError> {
        let Some(bytes) = self.read_bytes()? else {
            return Ok(None);
        };
        let state = from_json(&bytes, &self.path.display().to_string())?;
        self.remember(bytes, &state.lineage, state.serial);
        Ok(Some(state))
    }

    fn write(&self, state: &State) -> Result<(), StateError> {
        // Reading first is what keeps a corrupted, foreign or newer file from being overwritten:
        // its read error is returned and nothing is written.
        if let Some((lineage, serial)) = self.stored_identity()? {
            if lineage != state.lineage {
                return Err(StateError::LineageMismatch {
                    backend: self.describe(),
                    stored: lineage,
                    writing: state.lineage.clone(),
                });
            }
            if serial >= state.serial {
                return Err(StateError::StaleSerial {
                    backend: self.describe(),
                    lineage,
                    stored: serial,
                    writing: state.serial,
                });
            }
        }
        let bytes = to_json(state);
        write_state_atomically(&self.path, &bytes)?;
        self.remember(bytes, &state.lineage, state.serial);
        self.remove_leftovers();
        Ok(())
    }

    fn lock(&self, operation: &str, timeout: Duration) -> Result<LockGuard, StateError> {
        let info = LockInfo::new(operation);
        let mut held = None;
        crate::backend::wait_for_lock(
            || self.describe(),
            timeout,
            LOCK_POLL,
            || {
                Ok(match self.try_lock(&info)? {
                    Ok(file) => {
                        held = Some(file);
                        None
                    }
                    Err(holder) => Some(holder),
                })
            },
        )?;
        let path = self.lock_path();
        Ok(LockGuard::new(info, move |info| {
            // Removed while still held, so that no run takes a lock on a file about to go.
            let released = release(&path, &info.id);
            drop(held);
            released
        }))
    }

    /// Breaks the lock `id`: its file goes, whether a run still holds it (which the CLI refuses
    /// without `--force` when that run is on this host) or it is a record a killed run left.
    fn unlock(&self, id: &str) -> Result<(), StateError> {
        let path = self.lock_path();
        let Some(lock) = read_lock(&path)? else {
            return Err(StateError::NotLocked { backend: self.describe(), given: id.to_owned() });
        };
        if lock.id != id {
            return Err(StateError::LockIdMismatch {
                backend: self.describe(),
                given: id.to_owned(),
                lock: Box::new(lock),
            });
        }
        remove_lock(&path)
    }

    /// The lock a live run holds; a record a killed run left is no lock.
    fn lock_info(&self) -> Result<Option<LockInfo>, StateError> {
        let path = self.lock_path();
        let file = match File::open(&path) {
            Ok(file) => file,
            Err(error) if error.kind() == ErrorKind::NotFound => return Ok(None),
            Err(source) => return Err(StateError::Io { action: "open the lock file", path, source }),
        };
        match file.try_lock_shared() {
            // Nobody holds it: a stale record, or none.
            Ok(()) => Ok(None),
            Err(std::fs::TryLockError::WouldBlock) => read_lock(&path),
            Err(std::fs::TryLockError::Error(source)) => {
                Err(StateError::Io { action: "look at the lock file", path, source })
            }
        }
    }
}

/// Opens (or creates, mode 0600) the lock file at `path`, to lock it.
fn open_lock_file(path: &Path) -> Result<File, StateError> {
    let mut options = OpenOptions::new();
    options.read(true).write(true).create(true).truncate(false);
    #[cfg(unix)]
    std::os::unix::fs::OpenOptionsExt::mode(&mut options, 0o600);
    let file = options.open(path).map_err(|source| StateError::Io {
        action: "create the lock file",
        path: path.to_owned(),
        source,
    })?;
    // A lock file an older terrace made keeps its mode; this one is the holder's only.
    set_private(path).map_err(|source| StateError::Io {
        action: "protect the lock file",
        path: path.to_owned(),
        source,
    })?;
    Ok(file)
}

/// Whether the open `file` is the one at `path` now.
fn same_file(file: &File, path: &Path) -> bool {
    use std::os::unix::fs::MetadataExt as _;
    match (file.metadata(), fs::metadata(path)) {
        (Ok(open), Ok(now)) => open.dev() == now.dev() && open.ino() == now.ino(),
        _ => false,
    }
}

/// Writes this run's lock record into the lock file it holds, over what a killed run left, and
/// flushes it to disk.
fn write_lock_record(mut file: &File, path: &Path, info: &LockInfo) -> Result<(), StateError> {
    // A record of strings always encodes.
    let mut record = serde_json::to_vec_pretty(info).expect("a lock record encodes as JSON");
    record.push(b'\n');
    file.set_len(0)
        .and_then(|()| file.write_all(&record))
        .and_then(|()| file.sync_all())
        .map_err(|source| StateError::Io { action: "write the lock file", path: path.to_owned(), source })
}

/// The lock recorded at `path`, or `None` when there is no lock file.
fn read_lock(path: &Path) -> Result<Option<LockInfo>, StateError> {
    // The holder creates the file and then writes its record, so a reader can see the file empty
    // or partly written for a moment; only a record that stays unreadable is an error.
    let mut attempts = 0;
    loop {
        let bytes = match fs::read(path) {
            Ok(bytes) => bytes,
            Err(error) if error.kind() == ErrorKind::NotFound => return Ok(None),
            Err(source) => {
                return Err(StateError::Io { action: "read the lock file", path: path.to_owned(), source });
            }
        };
        match serde_json::from_slice::<LockInfo>(&bytes) {
            Ok(info) => return Ok(Some(info)),
            Err(_) if attempts < 20 => {
                attempts += 1;
                std::thread::sleep(Duration::from_millis(10));
            }
            Err(error) => {
                return Err(StateError::LockUnreadable { path: path.to_owned(), detail: error.to_string() });
            }
        }
    }
}

/// Gives back the lock `id` when a guard is released. A lock that is gone or has another id was
/// broken with `unlock`, perhaps taken by another run since, and is left alone.
fn release(path: &Path, id: &str) -> Result<(), StateError> {
    match read_lock(path)? {
        Some(lock) if lock.id == id => remove_lock(path),
        _ => Ok(()),
    }
}

fn remove_lock(path: &Path) -> Result<(), StateError> {
    match fs::remove_file(path) {
        Ok(()) => Ok(()),
        Err(error) if error.kind() == ErrorKind::NotFound => Ok(()),
        Err(source) => Err(StateError::Io { action: "remove the lock file", path: path.to_owned(), source }),
    }
}

/// What temporary files' names carry after the state file's name; leftovers are found by it.
const TEMPORARY: &str = ".tmp-";

/// Replaces the file at `path` with `bytes` so that at every moment the path holds either the old
/// content or the new, never a mix: the bytes go to a temporary file in the same folder (mode
/// 0600), which is flushed; the current file is kept as `<path>.backup` (mode 0600); the temporary
/// file is renamed over `path`; and the folder is flushed so that the rename itself is durable.
pub fn write_state_atomically(path: &Path, bytes: &[u8]) -> Result<(), StateError> {
    let temporary = with_suffix(path, &format!("{TEMPORARY}{}", uuid::Uuid::new_v4().simple()));
    let result = write_new_file(&temporary, bytes).and_then(|()| keep_backup(path)).and_then(|()| {
        fs::rename(&temporary, path).map_err(|source| StateError::Io {
            action: "rename the temporary state file over",
            path: path.to_owned(),
            source,
        })
    });
    if result.is_err() {
        // The state file is untouched; the temporary file would only be clutter.
        let _ = fs::remove_file(&temporary);
    }
    result?;
    sync_folder(path)
}

/// Creates `path` (which must not exist) with mode 0600 and writes `bytes` to disk.
fn write_new_file(path: &Path, bytes: &[u8]) -> Result<(), StateError> {
    let io = |source| StateError::Io { action: "write the temporary state file", path: path.to_owned(), source };
    let mut file = create_private(path).map_err(io)?;
    file.write_all(bytes).and_then(|()| file.sync_all()).map_err(io)
}

/// Keeps the current state file, if there is one, as `<path>.backup`, replacing the older backup
/// in one rename. A hard link costs no copy and the linked data is already on disk; a copy is the
/// fallback for file systems without hard links.
fn keep_backup(path: &Path) -> Result<(), StateError> {
    let backup = with_suffix(path, ".backup");
    let temporary = with_suffix(path, &format!(".backup{TEMPORARY}{}", uuid::Uuid::new_v4().simple()));
    let io = |action, source| StateError::Io { action, path: backup.clone(), source };
    match fs::hard_link(path, &temporary) {
        Ok(()) => {}
        Err(error) if error.kind() == ErrorKind::NotFound => return Ok(()),
        Err(_) => {
            let copied =
                fs::copy(path, &temporary).and_then(|_| File::open(&temporary)).and_then(|file| file.sync_all());
            match copied {
                Ok(()) => {}
                Err(error) if error.kind() == ErrorKind::NotFound && !path.exists() => {
                    let _ = fs::remove_file(&temporary);
                    return Ok(());
                }
                Err(source) => {
                    let _ = fs::remove_file(&temporary);
                    return Err(io("copy the state file to", source));
                }
            }
        }
    }
    // A state file written by hand or by an older tool may be readable by others; its backup is
    // not (with a hard link this also narrows the old file's mode, which is about to be replaced).
    let result = set_private(&temporary)
        .map_err(|source| io("restrict the mode of", source))
        .and_then(|()| fs::rename(&temporary, &backup).map_err(|source| io("replace", source)));
    if result.is_err() {
        let _ = fs::remove_file(&temporary);
    }
    result
}

/// `path` with `suffix` appended to its last component.
fn with_suffix(path: &Path, suffix: &str) -> PathBuf {
    let mut name = OsString::from(path.as_os_str());
    name.push(suffix);
    PathBuf::from(name)
}

/// The folder holding `path` (`.` for a bare file name).
fn folder(path: &Path) -> &Path {
    match path.parent() {
        Some(parent) if !parent.as_os_str().is_empty() => parent,
        _ => Path::new("."),
    }
}

/// Creates a new file readable and writable by its owner only, failing if it exists.
fn create_private(path: &Path) -> std::io::Result<File> {
    let mut options = OpenOptions::new();
    options.write(true).create_new(true);
    #[cfg(unix)]
    std::os::unix::fs::OpenOptionsExt::mode(&mut options, 0o600);
    options.open(path)
}

#[cfg(unix)]
fn set_private(path: &Path) -> std::io::Result<()> {
    use std::os::unix::fs::PermissionsExt as _;
    fs::set_permissions(path, fs::Permissions::from_mode(0o600))
}

#[cfg(not(unix))]
fn set_private(_path: &Path) -> std::io::Result<()> {
    Ok(())
}

/// Flushes the folder entry of `path`, so that a rename survives a power loss.
#[cfg(unix)]
fn sync_folder(path: &Path) -> Result<(), StateError> {
    let folder = folder(path);
    File::open(folder).and_then(|folder| folder.sync_all()).map_err(|source| StateError::Io {
        action: "flush the folder",
        path: folder.to_owned(),
        source,
    })
}

/// Other systems offer no portable way to flush a folder; the rename is still atomic there.
#[cfg(not(unix))]
fn sync_folder(_path: &Path) -> Result<(), StateError> {
    Ok(())
}
