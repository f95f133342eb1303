//! Real processes against one local state: a writer killed with SIGKILL at varied moments never
//! leaves a torn state file, and two processes racing for the lock end with one holder and one
//! clear refusal. The test binary re-runs itself as the child: `child_process_entry_point` does
//! nothing in a normal run, and plays the child when `TERRACE_STATE_TEST_CHILD` says so.
#![cfg(unix)]

use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use serde_json::json;
use terrace_state::{Backend, LocalBackend, OutputState, ResourceState, State};

const CHILD: &str = "TERRACE_STATE_TEST_CHILD";
const STATE_PATH: &str = "TERRACE_STATE_TEST_PATH";
const START_AT: &str = "TERRACE_STATE_TEST_START_AT";
const LINEAGE: &str = "TERRACE_STATE_TEST_LINEAGE";
const ROUND: &str = "TERRACE_STATE_TEST_ROUND";

/// The child's side of both tests; a no-op unless run as a child.
#[test]
fn child_process_entry_point() {
    let Ok(role) = std::env::var(CHILD) else {
        return;
    };
    let path = PathBuf::from(std::env::var(STATE_PATH).expect("the state path is given"));
    match role.as_str() {
        "writer" => write_forever(&path),
        "locker" => race_for_the_lock(&path),
        "holder" => hold_the_lock(&path),
        other => panic!("unknown child role {other}"),
    }
}

fn child(role: &str, path: &Path) -> Command {
    let mut command = Command::new(std::env::current_exe().expect("the test binary"));
    command
        .args(["--exact", "child_process_entry_point", "--nocapture", "--test-threads", "1"])
        .env(CHILD, role)
        .env(STATE_PATH, path);
    command
}

/// The serials of round `round` start here: ten digits throughout, so that a serial can be written
/// into a serialized state in place, and later rounds write higher serials.
fn first_serial(round: u64) -> u64 {
    1_000_000_000 + round * 1_000_000
}

/// The state a writer writes: `count` servers, each recording the serial, and the count as an
/// output, so that a file mixing two writes would show it.
fn state_at(lineage: &str, serial: u64, count: usize) -> State {
    let mut state = State::new(Some("kill".to_owned()));
    state.lineage = lineage.to_owned();
    state.serial = serial;
    for index in 0..count {
        let mut resource = ResourceState::new("server");
        resource.id = Some((100_000 + index).to_string());
        let serde_json::Value::Object(attributes) = json!({
            "name": format!("app-{index}"),
            "serial": serial,
            "server_type": "cpx22",
            "location": "fsn1",
            "labels": {"terrace-stack": "kill", "index": index.to_string()},
            "user_data": "#cloud-config\npackages: [nginx, postgresql-client, htop]\n",
        }) else {
            unreachable!("a JSON object literal");
        };
        resource.attributes = attributes;
        state.resources.insert(format!("server.app[{index}]"), resource);
    }
    state.outputs.insert("count".to_owned(), OutputState { value: json!(count), sensitive: false });
    state
}

/// Checks that `state` is whole: one of the states a writer writes.
fn assert_whole(state: &State, origin: &str) {
    assert_eq!(
        json!(state.resources.len()),
        state.outputs["count"].value,
        "{origin}: serial {} has all its resources",
        state.serial
    );
    for (address, resource) in &state.resources {
        assert_eq!(
            resource.attributes["serial"],
            json!(state.serial),
            "{origin}: {address} was written with serial {}",
            state.serial
        );
    }
}

/// Writes states of more resources in each round, as fast as it can: the state is serialized once
/// and each new serial is written into the bytes in place, so that nearly all of the child's time
/// is spent inside `write_state_atomically`, where a kill must not tear the file.
fn write_forever(path: &Path) {
    let lineage = std::env::var(LINEAGE).expect("the lineage is given");
    let round: u64 = std::env::var(ROUND).expect("the round is given").parse().expect("a number");
    let count = 1000 + 250 * round as usize;
    let mut serial = first_serial(round);
    let mut bytes = terrace_state::to_json(&state_at(&lineage, serial, count));
    let token = format!(": {serial}");
    let offsets: Vec<usize> = bytes
        .windows(token.len())
        .enumerate()
        .filter(|(_, window)| *window == token.as_bytes())
        .map(|(offset, _)| offset + 2)
        .collect();
    assert_eq!(offsets.len(), count + 1, "the top-level serial and one per resource");
    // A bound, so a child whose parent died does not write forever.
    let deadline = Instant::now() + Duration::from_secs(60);
    while Instant::now() < deadline {
        serial += 1;
        let digits = serial.to_string();
        for &offset in &offsets {
            bytes[offset..offset + digits.len()].copy_from_slice(digits.as_bytes());
        }
        terrace_state::write_state_atomically(path, &bytes).expect("the write succeeds");
        if serial == first_serial(round) + 1 {
            // The parent kills only after this: on a busy machine, starting takes longer than any
            // fixed wait.
            println!("written");
        }
    }
}

fn temporary_files(dir: &Path) -> Vec<String> {
    std::fs::read_dir(dir)
        .expect("list the folder")
        .map(|entry| entry.expect("an entry").file_name().to_string_lossy().into_owned())
        .filter(|name| name.contains(".tmp-"))
        .collect()
}

#[test]
fn sigkill_while_writing_leaves_the_previous_or_the_new_state() {
    let dir = tempfile::tempdir().expect("a temporary folder");
    let path = dir.path().join("terrace.state.json");
    let backup = dir.path().join("terrace.state.json.backup");
    let backend = LocalBackend::new(&path);
    let lineage = State::new(None).lineage;
    let mut last = None::<State>;
    let mut killed_mid_write = 0;
    let mut leftovers = 0;
    for round in 0..20u64 {
        let mut writer = child("writer", &path)
            .env(LINEAGE, &lineage)
            .env(ROUND, round.to_string())
            .stdout(Stdio::piped())
            .stderr(Stdio::null())
            .spawn()
            .expect("start the writer");
        // Varied moments, after the child has written its first state.
        let stdout = writer.stdout.take().expect("the writer's output");
        // The test harness prints its own text first, on the same line too.
        let started = std::io::BufRead::lines(std::io::BufReader::new(stdout))
            .map_while(Result::ok)
            .any(|line| line.trim().ends_with("written"));
        assert!(started, "round {round}: the writer ended without writing");
        std::thread::sleep(Duration::from_millis(20 + (round * 7 % 20) * 23));
        writer.kill().expect("SIGKILL the writer");
        writer.wait().expect("reap the writer");

        let now = temporary_files(dir.path()).len();
        if now > leftovers {
            killed_mid_write += 1;
        }
        leftovers = now;
        let origin = format!("round {round}");
        match backend.read() {
            Ok(Some(state)) => {
                assert_whole(&state, &origin);
                assert_eq!(state.lineage, lineage, "{origin}");
                assert!(state.serial > first_serial(round), "{origin}: this round wrote");
                assert!(state.serial < first_serial(round + 1), "{origin}: a serial of this round");
                if let Ok(bytes) = std::fs::read(&backup) {
                    let backup = terrace_state::from_json(&bytes, "backup")
                        .unwrap_or_else(|error| panic!("{origin}: the backup is torn: {error}"));
                    assert_whole(&backup, &format!("{origin} backup"));
                    // A kill between keeping the backup and the rename leaves both the same.
                    assert!(backup.serial <= state.serial, "{origin}: the backup is not newer");
                }
                last = Some(state);
            }
            Ok(None) => panic!("{origin}: no state after a kill"),
            Err(error) => panic!("{origin}: the state is torn: {error}"),
        }
    }
    eprintln!("{killed_mid_write} of 20 kills came while a temporary file existed");
    assert!(killed_mid_write > 0, "no kill came in the middle of a write");

    // The next write takes over, ignoring and removing what the killed writers left.
    let mut last = last.expect("a state");
    last.increment_serial();
    backend.write(&last).expect("a write after the kills");
    assert_eq!(temporary_files(dir.path()), Vec::<String>::new());
    assert_eq!(backend.read().expect("read").map(|state| state.serial), Some(last.serial));
}

fn race_for_the_lock(path: &Path) {
    let start_at: u128 = std::env::var(START_AT).expect("the start time is given").parse().expect("milliseconds");
    let now = SystemTime::now().duration_since(UNIX_EPOCH).expect("after 1970").as_millis();
    if let Some(wait) = start_at.checked_sub(now) {
        std::thread::sleep(Duration::from_millis(u64::try_from(wait).expect("a short wait")));
    }
    let backend = LocalBackend::new(path);
    let start = Instant::now();
    match backend.lock("apply", Duration::ZERO) {
        Ok(guard) => {
            // The leading newline keeps the marker off libtest's "test ... " line.
            println!("\nWON {}", guard.info().holder);
            // Held long enough that the other process certainly tries while it is held.
            std::thread::sleep(Duration::from_millis(1000));
            drop(guard);
        }
        Err(error) => println!("\nLOST {} ms: {error}", start.elapsed().as_millis()),
    }
}

#[test]
fn two_processes_locking_at_once_one_wins_the_other_fails_fast_naming_it() {
    for round in 0..3 {
        let dir = tempfile::tempdir().expect("a temporary folder");
        let path = dir.path().join("terrace.state.json");
        let start_at = SystemTime::now().duration_since(UNIX_EPOCH).expect("after 1970").as_millis() + 500;
        let children: Vec<_> = (0..2)
            .map(|_| {
                child("locker", &path)
                    .env(START_AT, start_at.to_string())
                    .stdout(Stdio::piped())
                    .stderr(Stdio::null())
                    .spawn()
                    .expect("start a locker")
            })
            .collect();
        let mut won = Vec::new();
        let mut lost = Vec::new();
        for child in children {
            let pid = child.id();
            let output = child.wait_with_output().expect("the locker ends");
            assert!(output.status.success(), "round {round}: locker {pid} failed");
            let stdout = String::from_utf8_lossy(&output.stdout).into_owned();
            for line in stdout.lines() {
                if let Some(holder) = line.strip_prefix("WON ") {
                    won.push((pid, holder.to_owned()));
                } else if let Some(message) = line.strip_prefix("LOST ") {
                    lost.push((pid, message.to_owned()));
                }
            }
        }
        assert_eq!((won.len(), lost.len()), (1, 1), "round {round}: {won:?} {lost:?}");
        let (winner, holder) = &won[0];
        assert!(holder.ends_with(&format!(" pid {winner}")), "{holder}");
        let (_, message) = &lost[0];
        let (took, message) = message.split_once(" ms: ").expect("time and message");
        assert!(took.parse::<u64>().expect("ms") < 1000, "failing took {took} ms");
        assert!(message.contains(&format!("is locked by {holder} for apply since ")), "round {round}: {message}");
        assert!(!path.with_extension("json.lock").exists(), "the winner released the lock");
    }
}

/// Takes the lock, says so, and holds it until killed.
fn hold_the_lock(path: &Path) {
    let guard = LocalBackend::new(path).lock("apply", Duration::ZERO).expect("the lock is free");
    println!("\nHELD {}", guard.info().id);
    loop {
        std::thread::sleep(Duration::from_secs(60));
    }
}

#[test]
fn a_lock_holder_killed_with_sigkill_blocks_no_later_run() {
    let dir = tempfile::tempdir().expect("a temporary folder");
    let path = dir.path().join("terrace.state.json");
    let backend = LocalBackend::new(&path);
    let mut holder = child("holder", &path).stdout(Stdio::null()).spawn().expect("the holder starts");
    let deadline = Instant::now() + Duration::from_secs(30);
    let held = loop {
        if let Some(lock) = backend.lock_info().expect("lock_info") {
            break lock;
        }
        assert!(Instant::now() < deadline, "the child never took the lock");
        std::thread::sleep(Duration::from_millis(20));
    };
    assert!(held.holder.ends_with(&format!("pid {}", holder.id())), "{held:?}");
    assert!(backend.lock("plan", Duration::ZERO).is_err(), "held while the holder lives");
    holder.kill().expect("SIGKILL");
    holder.wait().expect("reaped");
    // The kernel let go of the lock with the process; its record is still on disk.
    assert!(backend.lock_path().exists(), "the killed holder's record is left");
    assert_eq!(backend.lock_info().expect("lock_info"), None);
    let guard = backend.lock("apply", Duration::ZERO).expect("the next run takes the lock at once");
    assert_ne!(guard.info().id, held.id);
}
