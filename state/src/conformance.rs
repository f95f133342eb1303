//! Test support: the one conformance suite every backend passes (Terraform's `statemgr.TestFull`).
//! Each check takes a fresh, empty backend and panics with a message when the backend breaks the
//! `Backend` contract. `backend_conformance_tests!` turns the suite into one `#[test]` per check,
//! so the local backend and every remote backend run exactly the same tests.

use std::time::{Duration, Instant};

use serde_json::json;

use crate::backend::Backend;
use crate::error::StateError;
use crate::model::{OutputState, ResourceState, State};

/// What a check needs besides the backend: the stored object's raw bytes, to damage them and to
/// see that a refused write left them unchanged.
pub trait Fixture {
    /// The backend under test, empty when the fixture is new.
    fn backend(&self) -> &dyn Backend;
    /// The stored object's bytes, `None` when there is none.
    fn stored_bytes(&self) -> Option<Vec<u8>>;
    /// Replaces the stored object's bytes behind the backend's back.
    fn replace_stored_bytes(&self, bytes: &[u8]);
}

/// One `#[test]` per conformance check; `$fresh` is evaluated once per test and gives a new
/// fixture (a value implementing `Fixture`) around an empty backend.
#[macro_export]
macro_rules! backend_conformance_tests {
    ($fresh:expr) => {
        #[test]
        fn conformance_read_of_empty_is_none() {
            let fixture = $fresh;
            $crate::conformance::read_of_empty_is_none($crate::conformance::Fixture::backend(&fixture));
        }
        #[test]
        fn conformance_write_then_read_round_trips() {
            let fixture = $fresh;
            $crate::conformance::write_then_read_round_trips($crate::conformance::Fixture::backend(&fixture));
        }
        #[test]
        fn conformance_serial_must_increase() {
            let fixture = $fresh;
            $crate::conformance::serial_must_increase($crate::conformance::Fixture::backend(&fixture));
        }
        #[test]
        fn conformance_lineage_mismatch_is_refused() {
            let fixture = $fresh;
            $crate::conformance::lineage_mismatch_is_refused($crate::conformance::Fixture::backend(&fixture));
        }
        #[test]
        fn conformance_second_lock_fails_fast_naming_the_holder() {
            let fixture = $fresh;
            $crate::conformance::second_lock_fails_fast_naming_the_holder($crate::conformance::Fixture::backend(
                &fixture,
            ));
        }
        #[test]
        fn conformance_lock_with_timeout_waits_for_release() {
            let fixture = $fresh;
            $crate::conformance::lock_with_timeout_waits_for_release($crate::conformance::Fixture::backend(&fixture));
        }
        #[test]
        fn conformance_unlock_needs_the_lock_id() {
            let fixture = $fresh;
            $crate::conformance::unlock_needs_the_lock_id($crate::conformance::Fixture::backend(&fixture));
        }
        #[test]
        fn conformance_damaged_object_is_reported_and_never_overwritten() {
            let fixture = $fresh;
            $crate::conformance::damaged_object_is_reported_and_never_overwritten(&fixture);
        }
    };
}

/// A state with several kinds, composite members, an unknown id, nested and non-ASCII
/// attributes, a sensitive attribute, and outputs of which one is sensitive.
pub fn sample_state() -> State {
    let mut state = State::new(Some("seed".to_owned()));
    state.serial = 1;
    state.phase = Some("read-replicas".to_owned());
    let mut add = |address: &str,
                   kind: &str,
                   id: Option<&str>,
                   composite: Option<&str>,
                   dependencies: &[&str],
                   attributes: serde_json::Value| {
        let serde_json::Value::Object(attributes) = attributes else {
            panic!("attributes of {address} must be an object");
        };
        let resource = ResourceState {
            kind: kind.to_owned(),
            id: id.map(str::to_owned),
            attributes,
            dependencies: dependencies.iter().map(|d| (*d).to_owned()).collect(),
            composite: composite.map(str::to_owned),
            sensitive_attributes: Vec::new(),
        };
        state.resources.insert(address.to_owned(), resource);
    };
    add(
        "network.private",
        "network",
        Some("1001"),
        None,
        &[],
        json!({"name": "private", "ip_range": "10.0.0.0/16", "labels": {"terrace-stack": "seed"}}),
    );
    add(
        "server.app[0]",
        "server",
        Some("4711"),
        None,
        &["network.private"],
        json!({"name": "app-0", "server_type": "cpx22", "location": "fsn1", "ipv4": "203.0.113.7",
               "user_data": "#cloud-config\npackages: [nginx]\n", "backups": false}),
    );
    add(
        "postgres.main.server.primary",
        "server",
        Some("4712"),
        Some("postgres.main"),
        &["network.private", "postgres.main.firewall.main"],
        json!({"name": "main-primary", "server_type": "ccx13", "location": "nbg1"}),
    );
    add(
        "postgres.main.firewall.main",
        "firewall",
        Some("88"),
        Some("postgres.main"),
        &[],
        json!({"rules": [{"direction": "in", "protocol": "tcp", "port": "5432",
                          "source_ips": ["10.0.0.0/16"]}]}),
    );
    add(
        "volume.data",
        "volume",
        None,
        None,
        &["server.app[0]"],
        json!({"size": 50, "format": "ext4", "ratio": 0.75, "note": "données ✓"}),
    );
    add("bucket.assets", "bucket", Some("seed-assets"), None, &[], json!({"location": "fsn1", "public": null}));
    if let Some(server) = state.resources.get_mut("server.app[0]") {
        server.sensitive_attributes = vec!["user_data".to_owned()];
    }
    state.outputs.insert("app_ip".to_owned(), OutputState { value: json!("203.0.113.7"), sensitive: false });
    state.outputs.insert("database_password".to_owned(), OutputState { value: json!("s3cr3t"), sensitive: true });
    state.migrations.insert(
        "postgres.main".to_owned(),
        json!({"step": "clone", "from": "postgres.main.host.shared", "kept": ["postgres.main.volume.data"]}),
    );
    state
}

fn stored(backend: &dyn Backend) -> Option<State> {
    match backend.read() {
        Ok(state) => state,
        Err(error) => panic!("{}: read failed: {error}", backend.describe()),
    }
}

fn write(backend: &dyn Backend, state: &State) {
    if let Err(error) = backend.write(state) {
        panic!("{}: write of serial {} failed: {error}", backend.describe(), state.serial);
    }
}

/// An empty backend has no state and no lock.
pub fn read_of_empty_is_none(backend: &dyn Backend) {
    assert_eq!(stored(backend), None, "an empty backend reads as no state");
    assert_eq!(backend.lock_info().expect("lock_info of an empty backend"), None, "an empty backend is not locked");
}

/// What is written is read back exactly, and a later write replaces it.
pub fn write_then_read_round_trips(backend: &dyn Backend) {
    let mut state = sample_state();
    write(backend, &state);
    assert_eq!(stored(backend).as_ref(), Some(&state));

    state.increment_serial();
    state.resources.remove("volume.data");
    state.phase = Some("scale-out".to_owned());
    write(backend, &state);
    assert_eq!(stored(backend).as_ref(), Some(&state));
}

/// A write whose serial is not above the stored one is refused and changes nothing.
pub fn serial_must_increase(backend: &dyn Backend) {
    let mut state = sample_state();
    state.serial = 5;
    write(backend, &state);

    let mut same = state.clone();
    same.phase = Some("other".to_owned());
    match backend.write(&same) {
        Err(StateError::StaleSerial { stored: 5, writing: 5, .. }) => {}
        other => panic!("a write of the stored serial must be refused, got {other:?}"),
    }
    let mut lower = state.clone();
    lower.serial = 3;
    match backend.write(&lower) {
        Err(error @ StateError::StaleSerial { .. }) => {
            let message = error.to_string();
            assert!(message.contains("serial 3") && message.contains("serial 5"), "{message}");
        }
        other => panic!("a write of a lower serial must be refused, got {other:?}"),
    }
    assert_eq!(stored(backend).as_ref(), Some(&state), "refused writes change nothing");

    state.increment_serial();
    write(backend, &state);
    assert_eq!(stored(backend).map(|s| s.serial), Some(6));
}

/// A state of another lineage never replaces the stored one, whatever its serial.
pub fn lineage_mismatch_is_refused(backend: &dyn Backend) {
    let state = sample_state();
    write(backend, &state);
    let mut other = sample_state();
    other.serial = 100;
    match backend.write(&other) {
        Err(error @ StateError::LineageMismatch { .. }) => {
            let message = error.to_string();
            assert!(
                message.contains(&state.lineage) && message.contains(&other.lineage),
                "the message names both lineages: {message}"
            );
        }
        other => panic!("a write of another lineage must be refused, got {other:?}"),
    }
    assert_eq!(stored(backend).as_ref(), Some(&state));
}

/// While one run holds the lock, a second fails at once, naming the holder, the operation, since
/// when and the lock id; with a timeout it fails only once the timeout has passed.
pub fn second_lock_fails_fast_naming_the_holder(backend: &dyn Backend) {
    let guard = backend.lock("apply", Duration::ZERO).expect("the first lock is taken");
    let held = guard.info().clone();
    assert_eq!(held.operation, "apply");
    assert_eq!(backend.lock_info().expect("lock_info"), Some(held.clone()));

    let start = Instant::now();
    let result = backend.lock("plan", Duration::ZERO);
    let took = start.elapsed();
    match result {
        Err(error @ StateError::Locked { .. }) => {
            let message = error.to_string();
            for part in [&held.holder, "apply", &held.created, &held.id] {
                assert!(message.contains(part), "{message:?} names {part:?}");
            }
        }
        other => panic!("a second lock must fail, got {other:?}"),
    }
    assert!(took < Duration::from_secs(1), "failing took {took:?}");

    let start = Instant::now();
    let result = backend.lock("plan", Duration::from_millis(300));
    let took = start.elapsed();
    assert!(matches!(result, Err(StateError::Locked { .. })), "{result:?}");
    assert!(took >= Duration::from_millis(300) && took < Duration::from_secs(2), "a 300 ms timeout took {took:?}");

    guard.release().expect("the lock is released");
    assert_eq!(backend.lock_info().expect("lock_info"), None);
    let again = backend.lock("plan", Duration::ZERO).expect("a released lock can be taken again");
    assert_ne!(again.info().id, held.id, "every lock has its own id");
}

/// A run that waits for the lock gets it once the holder lets go.
pub fn lock_with_timeout_waits_for_release(backend: &dyn Backend) {
    let guard = backend.lock("apply", Duration::ZERO).expect("the first lock is taken");
    let first = guard.info().id.clone();
    let start = Instant::now();
    let second = std::thread::scope(|scope| {
        scope.spawn(move || {
            std::thread::sleep(Duration::from_millis(300));
            drop(guard);
        });
        backend.lock("plan", Duration::from_secs(10))
    });
    let took = start.elapsed();
    let second = second.expect("the lock is taken once the first run releases it");
    assert!(took >= Duration::from_millis(250) && took < Duration::from_secs(5), "waited {took:?}");
    assert_eq!(second.info().operation, "plan");
    assert_ne!(second.info().id, first);
    assert_eq!(backend.lock_info().expect("lock_info").map(|lock| lock.id), Some(second.info().id.clone()));
}

/// `unlock` breaks the lock given its id and nothing else; the broken holder's guard, when it is
/// dropped later, does not release a lock taken since.
pub fn unlock_needs_the_lock_id(backend: &dyn Backend) {
    assert!(
        matches!(backend.unlock("nope"), Err(StateError::NotLocked { .. })),
        "unlocking an unlocked backend is an error"
    );
    let stale = backend.lock("apply", Duration::ZERO).expect("the first lock is taken");
    let id = stale.info().id.clone();
    match backend.unlock("00000000-0000-4000-8000-000000000000") {
        Err(error @ StateError::LockIdMismatch { .. }) => {
            let message = error.to_string();
            assert!(message.contains(&stale.info().holder) && message.contains(&id), "{message}");
        }
        other => panic!("unlock with another id must be refused, got {other:?}"),
    }
    assert_eq!(
        backend.lock_info().expect("lock_info").map(|lock| lock.id),
        Some(id.clone()),
        "a refused unlock leaves the lock"
    );

    backend.unlock(&id).expect("unlock with the lock's id");
    assert_eq!(backend.lock_info().expect("lock_info"), None);

    let current = backend.lock("plan", Duration::ZERO).expect("a broken lock can be taken");
    drop(stale);
    assert_eq!(
        backend.lock_info().expect("lock_info").map(|lock| lock.id),
        Some(current.info().id.clone()),
        "dropping the broken guard leaves the new lock alone"
    );
}

/// A stored object that is not a readable terrace state (truncated, another tool's, a newer
/// format) is a read error, and a write refuses to replace it.
pub fn damaged_object_is_reported_and_never_overwritten(fixture: &dyn Fixture) {
    let backend = fixture.backend();
    let state = sample_state();
    write(backend, &state);
    let good = fixture.stored_bytes().expect("a written state is stored");

    let truncated = good[..good.len() / 2].to_vec();
    let terraform =
        br#"{"version": 4, "terraform_version": "1.9.5", "serial": 3, "lineage": "x", "outputs": {}, "resources": []}"#
            .to_vec();
    let newer =
        String::from_utf8_lossy(&good).replacen("\"format_version\": 1", "\"format_version\": 99", 1).into_bytes();
    for damaged in [truncated, terraform, newer, b"".to_vec()] {
        fixture.replace_stored_bytes(&damaged);
        let read = backend.read();
        assert!(
            matches!(
                read,
                Err(StateError::Corrupt { .. } | StateError::NotTerraceState { .. } | StateError::NewerFormat { .. })
            ),
            "reading a damaged object must fail, got {read:?}"
        );
        let mut next = state.clone();
        next.serial = 2;
        let write = backend.write(&next);
        assert!(write.is_err(), "a write over a damaged object is refused");
        assert_eq!(
            fixture.stored_bytes(),
            Some(damaged),
            "a refused write leaves the stored object's bytes as they were"
        );
    }
}
