//! The local file backend: the conformance suite every backend passes, then what only a file
//! shows: modes, the backup, the lock file, leftovers of killed writes, and refusals on disk.

use std::path::{Path, PathBuf};
use std::time::Duration;

use terrace_state::conformance::{Fixture, sample_state};
use terrace_state::{Backend, LocalBackend, StateError};

/// An empty local backend in a folder of its own, removed when the fixture is dropped.
struct LocalFixture {
    _dir: tempfile::TempDir,
    backend: LocalBackend,
}

fn local_fixture() -> LocalFixture {
    let dir = tempfile::tempdir().expect("a temporary folder");
    let backend = LocalBackend::new(dir.path().join("terrace.state.json"));
    LocalFixture { _dir: dir, backend }
}

impl Fixture for LocalFixture {
    fn backend(&self) -> &dyn Backend {
        &self.backend
    }

    fn stored_bytes(&self) -> Option<Vec<u8>> {
        std::fs::read(self.backend.path()).ok()
    }

    fn replace_stored_bytes(&self, bytes: &[u8]) {
        std::fs::write(self.backend.path(), bytes).expect("replace the state file");
    }
}

terrace_state::backend_conformance_tests!(local_fixture());

#[cfg(unix)]
fn mode(path: &Path) -> u32 {
    use std::os::unix::fs::PermissionsExt as _;
    std::fs::metadata(path).unwrap_or_else(|error| panic!("{}: {error}", path.display())).permissions().mode() & 0o777
}

/// The files in the state's folder, by name.
fn files(dir: &Path) -> Vec<String> {
    let mut names: Vec<String> = std::fs::read_dir(dir)
        .expect("list the folder")
        .map(|entry| entry.expect("a folder entry").file_name().to_string_lossy().into_owned())
        .collect();
    names.sort();
    names
}

#[test]
fn describes_itself_by_path() {
    let backend = LocalBackend::new("./terrace.state.json");
    assert_eq!(backend.describe(), "local file ./terrace.state.json");
    assert_eq!(backend.backup_path(), PathBuf::from("./terrace.state.json.backup"));
    assert_eq!(backend.lock_path(), PathBuf::from("./terrace.state.json.lock"));
}

#[cfg(unix)]
#[test]
fn state_backup_and_lock_files_are_mode_0600_even_over_a_readable_file() {
    let fixture = local_fixture();
    let backend = &fixture.backend;
    let mut state = sample_state();
    // A state file someone made readable by everyone: neither it nor its backup stays so.
    std::fs::write(backend.path(), terrace_state::to_json(&state)).expect("seed a state file");
    std::fs::set_permissions(backend.path(), std::os::unix::fs::PermissionsExt::from_mode(0o644)).expect("chmod 0644");
    state.increment_serial();
    backend.write(&state).expect("write");
    assert_eq!(mode(backend.path()), 0o600);
    assert_eq!(mode(&backend.backup_path()), 0o600);

    let guard = backend.lock("apply", Duration::ZERO).expect("lock");
    assert_eq!(mode(&backend.lock_path()), 0o600);
    drop(guard);
    assert!(!backend.lock_path().exists(), "dropping the guard removes the lock file");
}

#[test]
fn backup_holds_the_previous_version() {
    let fixture = local_fixture();
    let backend = &fixture.backend;
    let mut state = sample_state();
    backend.write(&state).expect("first write");
    assert!(!backend.backup_path().exists(), "the first write has nothing to back up");
    let first = std::fs::read(backend.path()).expect("read the state");

    state.increment_serial();
    state.phase = Some("scale-out".to_owned());
    backend.write(&state).expect("second write");
    assert_eq!(std::fs::read(backend.backup_path()).expect("read the backup"), first);
    let previous = terrace_state::from_json(&first, "backup").expect("the backup is a state");
    assert_eq!(previous.serial, 1);

    state.increment_serial();
    let second = std::fs::read(backend.path()).expect("read the state");
    backend.write(&state).expect("third write");
    assert_eq!(std::fs::read(backend.backup_path()).expect("read the backup"), second);
    assert_eq!(
        files(backend.path().parent().expect("a folder")),
        ["terrace.state.json", "terrace.state.json.backup"],
        "nothing else is left in the folder"
    );
}

#[test]
fn the_state_file_is_the_canonical_json_of_the_state() {
    let fixture = local_fixture();
    let state = sample_state();
    fixture.backend.write(&state).expect("write");
    assert_eq!(std::fs::read(fixture.backend.path()).expect("read"), terrace_state::to_json(&state));
}

#[test]
fn lock_file_records_holder_operation_time_and_version() {
    let fixture = local_fixture();
    let guard = fixture.backend.lock("apply", Duration::ZERO).expect("lock");
    let text = std::fs::read_to_string(fixture.backend.lock_path()).expect("read the lock file");
    let record: serde_json::Value = serde_json::from_str(&text).expect("the lock file is JSON");
    assert_eq!(record["id"], guard.info().id.as_str());
    assert_eq!(record["operation"], "apply");
    assert_eq!(
        record["holder"],
        format!("{} pid {}", guard.info().holder.split(" pid ").next().expect("user@host"), std::process::id())
    );
    assert_eq!(record["created"], guard.info().created.as_str());
    assert_eq!(record["terrace_version"], env!("CARGO_PKG_VERSION"));
}

#[test]
fn a_lock_error_tells_how_to_break_a_stale_lock() {
    let fixture = local_fixture();
    let guard = fixture.backend.lock("apply", Duration::ZERO).expect("lock");
    let error = fixture.backend.lock("plan", Duration::ZERO).expect_err("locked");
    let message = error.to_string();
    assert!(
        message.starts_with(&format!("local file {} is locked by ", fixture.backend.path().display())),
        "{message}"
    );
    assert!(!message.contains("waited"), "a zero timeout waits for nothing: {message}");
    let hint = error.hint().expect("a hint");
    assert!(hint.contains(&format!("terrace state unlock {}", guard.info().id)), "{hint}");
}

#[test]
fn a_lock_file_nobody_holds_is_taken_over() {
    // What a run killed while it held the lock leaves: its record, or (killed while writing it)
    // an empty file. No process holds the OS lock on it, so it blocks nobody.
    let fixture = local_fixture();
    for left in [&b""[..], br#"{"id":"x","holder":"ci@runner pid 1","operation":"apply","created":"2026-01-01T00:00:00Z","terrace_version":"0"}"#] {
        std::fs::write(fixture.backend.lock_path(), left).expect("a lock file left behind");
        assert_eq!(fixture.backend.lock_info().expect("lock_info"), None, "a left record is no lock");
        let guard = fixture.backend.lock("apply", Duration::ZERO).expect("taken over");
        let record: serde_json::Value =
            serde_json::from_str(&std::fs::read_to_string(fixture.backend.lock_path()).expect("read")).expect("JSON");
        assert_eq!(record["id"], guard.info().id.as_str(), "this run's record replaced the old one");
        assert_eq!(fixture.backend.lock_info().expect("lock_info").map(|l| l.id), Some(guard.info().id.clone()));
        drop(guard);
        assert!(!fixture.backend.lock_path().exists());
    }
}

#[test]
fn leftover_temporary_files_are_ignored_and_removed_by_the_next_write() {
    let fixture = local_fixture();
    let backend = &fixture.backend;
    let mut state = sample_state();
    backend.write(&state).expect("write");
    let dir = backend.path().parent().expect("a folder").to_owned();
    // What a write killed before its rename leaves: a half-written temporary file of each kind.
    std::fs::write(dir.join("terrace.state.json.tmp-0123456789abcdef"), b"{\"format_vers").expect("leftover");
    std::fs::write(dir.join("terrace.state.json.backup.tmp-0123"), b"{").expect("leftover");
    std::fs::write(dir.join("unrelated.txt"), b"keep me").expect("unrelated file");

    assert_eq!(backend.read().expect("read").as_ref(), Some(&state));
    state.increment_serial();
    backend.write(&state).expect("write");
    assert_eq!(files(&dir), ["terrace.state.json", "terrace.state.json.backup", "unrelated.txt"]);
}

#[test]
fn a_terraform_state_in_place_is_named_and_never_overwritten() {
    let fixture = local_fixture();
    let tfstate = br#"{
  "version": 4,
  "terraform_version": "1.9.5",
  "serial": 12,
  "lineage": "3f0c1b2a-4d5e-6f70-8192-a3b4c5d6e7f8",
  "outputs": {},
  "resources": []
}
"#;
    std::fs::write(fixture.backend.path(), tfstate).expect("a tfstate");
    let error = fixture.backend.read().expect_err("not a terrace state");
    assert!(error.to_string().contains("is not a terrace state: it is a Terraform state"), "{error}");
    let mut state = sample_state();
    state.serial = 100;
    assert!(fixture.backend.write(&state).is_err());
    assert_eq!(std::fs::read(fixture.backend.path()).expect("read"), tfstate);
    assert!(!fixture.backend.backup_path().exists());
}

#[test]
fn a_missing_folder_is_an_error_naming_the_path() {
    let fixture = local_fixture();
    let path = fixture.backend.path().with_file_name("missing").join("terrace.state.json");
    let backend = LocalBackend::new(&path);
    assert_eq!(backend.read().expect("no state yet"), None);
    let error = backend.write(&sample_state()).expect_err("no folder");
    assert!(error.to_string().contains("missing"), "{error}");
}

#[test]
fn write_state_atomically_replaces_any_file() {
    let fixture = local_fixture();
    let path = fixture.backend.path();
    terrace_state::write_state_atomically(path, b"one\n").expect("first");
    terrace_state::write_state_atomically(path, b"two\n").expect("second");
    assert_eq!(std::fs::read(path).expect("read"), b"two\n");
    assert_eq!(std::fs::read(fixture.backend.backup_path()).expect("read"), b"one\n");
}

#[test]
fn a_write_by_another_run_since_this_backend_last_looked_is_noticed() {
    let fixture = local_fixture();
    let ours = &fixture.backend;
    let theirs = LocalBackend::new(ours.path());
    let mut state = sample_state();
    ours.write(&state).expect("serial 1");
    let mut newer = theirs.read().expect("read").expect("a state");
    newer.increment_serial();
    theirs.write(&newer).expect("serial 2 by the other run");

    state.increment_serial();
    match ours.write(&state) {
        Err(StateError::StaleSerial { stored: 2, writing: 2, .. }) => {}
        other => panic!("the other run's serial 2 must be seen, got {other:?}"),
    }
    state.increment_serial();
    ours.write(&state).expect("serial 3");
    assert_eq!(theirs.read().expect("read").map(|state| state.serial), Some(3));
}
