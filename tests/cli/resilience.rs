//! Apply when things go wrong: changes made by hand (drift), objects adopted with `terrace import`,
//! runs killed with SIGKILL at several moments, injected API faults, a rate limit smaller than the
//! apply needs, and a failure that stops the walk. Each ends with the cloud matching the state.

use std::time::Duration;

use serde_json::{Value, json};
use terrace_providers::emulator::{EmulatorConfig, parse_faults};

use super::cloud::{Cloud, assert_cloud_matches_state, state_json};
use super::support::stack_copy;

fn apply(cloud: &Cloud, dir: &std::path::Path, phase: &str) -> super::support::Run {
    cloud.terrace(dir, &["apply", "--phase", phase, "--auto-approve", "--allow-data-loss"])
}

fn assert_converged(cloud: &Cloud, dir: &std::path::Path) {
    let run = cloud.terrace(dir, &["plan", "--detailed-exitcode"]);
    assert_eq!(run.code, 0, "a second plan shows no changes:\n{}", run.transcript());
}

fn server_id(dir: &std::path::Path, address: &str) -> u64 {
    state_json(dir)["resources"][address]["id"].as_str().and_then(|id| id.parse().ok()).expect("a recorded id")
}

#[test]
fn changes_made_by_hand_show_as_drift_and_apply_repairs_them() {
    let cloud = Cloud::start(0);
    let dir = stack_copy();
    assert_eq!(apply(&cloud, dir.path(), "block-storage").code, 0);

    // A label edited in the console.
    let id = server_id(dir.path(), "server.app");
    let mut labels = cloud.call(reqwest::Method::GET, &format!("/servers/{id}"), None)["server"]["labels"].clone();
    labels["role"] = json!("edited-by-hand");
    cloud.call(reqwest::Method::PUT, &format!("/servers/{id}"), Some(json!({ "labels": labels })));
    let plan = cloud.terrace(dir.path(), &["plan", "--detailed-exitcode"]);
    assert_eq!(plan.code, 2, "{}", plan.transcript());
    assert!(plan.stdout.contains("changed outside terrace: server.app: labels"), "{}", plan.stdout);
    assert!(plan.stdout.contains("server.app will be updated in place"), "{}", plan.stdout);
    // Without refresh, the recorded state is all there is: no changes.
    let unrefreshed = cloud.terrace(dir.path(), &["plan", "--detailed-exitcode", "--refresh=false"]);
    assert_eq!(unrefreshed.code, 0, "{}", unrefreshed.transcript());
    assert_eq!(apply(&cloud, dir.path(), "block-storage").code, 0);
    let repaired = cloud.call(reqwest::Method::GET, &format!("/servers/{id}"), None);
    assert_eq!(repaired["server"]["labels"]["role"], "app");
    assert_converged(&cloud, dir.path());

    // A server deleted by hand is created again, and its volume attached to the new one.
    cloud.call(reqwest::Method::DELETE, &format!("/servers/{id}"), None);
    let plan = cloud.terrace(dir.path(), &["plan"]);
    assert!(plan.stdout.contains("`server.app` was deleted outside terrace"), "{}", plan.stdout);
    assert!(plan.stdout.contains("server.app will be created"), "{}", plan.stdout);
    let run = apply(&cloud, dir.path(), "block-storage");
    assert_eq!(run.code, 0, "{}", run.transcript());
    let new_id = server_id(dir.path(), "server.app");
    assert_ne!(new_id, id);
    let volume = &cloud.list("volumes")[0];
    assert_eq!(volume["server"].as_u64(), Some(new_id), "the volume follows the new server");
    assert_cloud_matches_state(&cloud, dir.path());
    assert_converged(&cloud, dir.path());

    // A volume grown by hand cannot be shrunk back: the plan says so and refuses.
    let volume_id = volume["id"].as_u64().expect("id");
    cloud.call(reqwest::Method::POST, &format!("/volumes/{volume_id}/actions/resize"), Some(json!({ "size": 30 })));
    let plan = cloud.terrace(dir.path(), &["plan"]);
    assert_eq!(plan.code, 1, "{}", plan.transcript());
    assert!(plan.stdout.contains("postgres.main.volume.data: size: 20 -> 30"), "{}", plan.stdout);
    assert!(plan.stderr.contains("a volume cannot shrink (30 GB -> 20 GB)"), "{}", plan.stderr);
}

#[test]
fn import_adopts_an_existing_object_instead_of_creating_another() {
    let cloud = Cloud::start(0);
    let dir = stack_copy();
    let made = cloud.call(
        reqwest::Method::POST,
        "/servers",
        Some(json!({ "name": "fastbots-app", "server_type": "cpx22", "image": "docker-ce", "location": "fsn1",
                     "labels": { "role": "app" } })),
    );
    let id = made["server"]["id"].as_u64().expect("the server was made");
    let id_text = id.to_string();
    let missing = cloud.terrace(dir.path(), &["import", "server.app", "999999"]);
    assert_eq!(missing.code, 1);
    assert!(missing.stderr.contains("there is no server with id 999999"), "{}", missing.stderr);
    let unknown = cloud.terrace(dir.path(), &["import", "server.nope", &id_text]);
    assert_eq!(unknown.code, 1);
    assert!(unknown.stderr.contains("`server.nope` is not in phase `block-storage`"), "{}", unknown.stderr);

    let run = cloud.terrace(dir.path(), &["import", "server.app", &id_text]);
    assert_eq!(run.code, 0, "{}", run.transcript());
    assert!(run.stderr.contains(&format!("Imported server {id} as `server.app`")), "{}", run.stderr);
    let again = cloud.terrace(dir.path(), &["import", "server.app", &id_text]);
    assert_eq!(again.code, 1);
    assert!(again.stderr.contains("already recorded"), "{}", again.stderr);

    let plan = cloud.terrace(dir.path(), &["plan", "--phase", "block-storage"]);
    assert!(!plan.stdout.contains("server.app will be created"), "{}", plan.stdout);
    assert!(plan.stdout.contains("bucket.backups will be created"), "{}", plan.stdout);
    assert_eq!(apply(&cloud, dir.path(), "block-storage").code, 0);
    assert_eq!(cloud.list("servers").len(), 1, "the imported server, and no other");
    assert_eq!(server_id(dir.path(), "server.app"), id);
    assert_cloud_matches_state(&cloud, dir.path());
    assert_converged(&cloud, dir.path());
}

/// A killed run blocks no later one: the OS let go of its lock with the process (its record may
/// stay on disk), so nothing needs breaking by hand.
fn assert_not_blocked(cloud: &Cloud, dir: &std::path::Path) {
    let run = cloud.terrace(dir, &["plan", "--phase", "managed-db", "--refresh=false", "--lock-timeout", "0s"]);
    assert_eq!(run.code, 0, "{}", run.transcript());
}

#[test]
fn unlock_refuses_a_lock_whose_holder_still_runs_unless_forced() {
    let cloud = Cloud::start(2000);
    let dir = stack_copy();
    let mut child = cloud
        .command(dir.path(), &["apply", "--phase", "block-storage", "--auto-approve"])
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::null())
        .spawn()
        .expect("terrace starts");
    let lock = dir.path().join("terrace.state.json.lock");
    let deadline = std::time::Instant::now() + Duration::from_secs(30);
    let id = loop {
        let record = std::fs::read_to_string(&lock).ok().and_then(|t| serde_json::from_str::<Value>(&t).ok());
        if let Some(id) = record.and_then(|r| r["id"].as_str().map(str::to_owned)) {
            break id;
        }
        assert!(std::time::Instant::now() < deadline, "the apply never took the lock");
        std::thread::sleep(Duration::from_millis(20));
    };
    let blocked = cloud.terrace(dir.path(), &["plan", "--refresh=false"]);
    assert_eq!(blocked.code, 1, "{}", blocked.transcript());
    assert!(blocked.stderr.contains(" ago (lock id "), "the lock's age is shown: {}", blocked.stderr);
    let refused = cloud.terrace(dir.path(), &["state", "unlock", &id]);
    assert_eq!(refused.code, 1, "{}", refused.transcript());
    assert!(
        refused.stderr.contains("is held by a run that is still going")
            && refused.stderr.contains(&format!("pid {} on this host", child.id())),
        "{}",
        refused.stderr
    );
    assert!(lock.exists(), "the refused unlock leaves the lock");
    let forced = cloud.terrace(dir.path(), &["state", "unlock", &id, "--force"]);
    assert_eq!(forced.code, 0, "{}", forced.transcript());
    assert!(!lock.exists(), "broken");
    child.kill().expect("kill");
    child.wait().expect("reaped");
}

#[test]
fn an_apply_killed_at_any_moment_converges_without_duplicates() {
    let cloud = Cloud::start(300);
    let dir = stack_copy();
    for (round, after_ms) in [150u64, 500, 1100, 1900, 2900, 4200].into_iter().enumerate() {
        let mut child = cloud
            .command(dir.path(), &["apply", "--phase", "managed-db", "--auto-approve"])
            .stdout(std::process::Stdio::null())
            .stderr(std::process::Stdio::null())
            .spawn()
            .expect("terrace starts");
        std::thread::sleep(Duration::from_millis(after_ms));
        // SIGKILL: no handler runs.
        child.kill().expect("kill -9");
        child.wait().expect("reaped");
        if dir.path().join("terrace.state.json").exists() {
            let state = state_json(dir.path());
            assert!(state["serial"].as_u64().is_some(), "round {round}: the state is whole");
        }
        assert_not_blocked(&cloud, dir.path());
    }
    let run = apply(&cloud, dir.path(), "managed-db");
    assert_eq!(run.code, 0, "{}", run.transcript());
    assert_cloud_matches_state(&cloud, dir.path());
    assert_converged(&cloud, dir.path());
}

#[test]
fn injected_faults_on_a_tenth_of_requests_still_converge() {
    let spec =
        "429=0.02,500=0.02,502=0.01,503=0.01,reset=0.01,timeout=0.01,locked=0.01,conflict=0.01,action_error=0.01";
    for seed in [3u64, 11] {
        let cloud = Cloud::with(EmulatorConfig {
            action_delay: Duration::from_millis(10),
            faults: parse_faults(spec).expect("a fault spec"),
            seed,
            ..Default::default()
        });
        let dir = stack_copy();
        let mut runs = Vec::new();
        // A failed action stops an apply (the object may be half made); running it again
        // continues from the state. Each run makes progress.
        for _ in 0..6 {
            let run = apply(&cloud, dir.path(), "read-replicas");
            let ok = run.code == 0;
            runs.push(run.transcript());
            if ok {
                break;
            }
        }
        assert!(runs.last().is_some_and(|r| r.starts_with("exit code: 0")), "seed {seed}: {}", runs.join("\n"));
        assert_cloud_matches_state(&cloud, dir.path());
        // The plan itself may meet a fault; it retries like apply does.
        assert_converged(&cloud, dir.path());
    }
}

#[test]
fn a_rate_limit_smaller_than_the_apply_waits_instead_of_failing() {
    let budget = 12;
    let cloud =
        Cloud::with(EmulatorConfig { action_delay: Duration::ZERO, hourly_budget: budget, ..Default::default() });
    let dir = stack_copy();
    let run = apply(&cloud, dir.path(), "managed-db");
    assert_eq!(run.code, 0, "{}", run.transcript());
    let cloud_requests = cloud.requests().iter().filter(|(_, path)| !path.starts_with("/s3")).count();
    assert!(cloud_requests > budget as usize, "the apply needed more than the budget: {cloud_requests}");
    assert_cloud_matches_state(&cloud, dir.path());
}

#[test]
fn a_failure_stops_new_work_and_leaves_a_state_the_next_run_continues_from() {
    // Every action fails: the first creates fail, nothing that depends on them is tried.
    let cloud = Cloud::with(EmulatorConfig {
        action_delay: Duration::from_millis(10),
        faults: parse_faults("action_error=1").expect("a fault spec"),
        ..Default::default()
    });
    let dir = stack_copy();
    let run = apply(&cloud, dir.path(), "block-storage");
    assert_eq!(run.code, 1, "{}", run.transcript());
    assert!(run.stderr.contains("Apply stopped before it finished"), "{}", run.stderr);
    // The summary says why, not only what.
    assert!(run.stderr.contains("failed:      server.app: create server `server.app`"), "{}", run.stderr);
    assert!(run.stderr.contains("postgres.main.volume.data (something it depends on failed)"), "{}", run.stderr);
    let state = state_json(dir.path());
    assert!(state["resources"]["postgres.main.volume.data"].is_null(), "never started, never recorded");
    assert!(state["phase"].is_null(), "the phase is recorded only when all of it is applied");
}

#[test]
fn ctrl_c_finishes_what_is_in_flight_saves_state_and_exits_non_zero() {
    let cloud = Cloud::start(400);
    let dir = stack_copy();
    let mut child = cloud
        .command(dir.path(), &["apply", "--phase", "managed-db", "--auto-approve", "--parallelism", "2"])
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .expect("terrace starts");
    // Interrupt once the walk is under way (the handler is installed by then).
    use std::io::BufRead as _;
    let mut lines = std::io::BufReader::new(child.stderr.take().expect("stderr")).lines();
    let mut seen = Vec::new();
    for line in lines.by_ref() {
        let line = line.expect("a line");
        let started = line.contains("Creating...");
        seen.push(line);
        if started {
            break;
        }
    }
    std::thread::sleep(Duration::from_millis(200));
    let status =
        // The shell's own `kill`, so the test needs no procps.
        std::process::Command::new("sh").args(["-c", &format!("kill -INT {}", child.id())]).status().expect("kill runs");
    assert!(status.success());
    seen.extend(lines.map(|l| l.expect("a line")));
    let code = child.wait().expect("terrace ends").code();
    let stderr = seen.join("\n");
    assert_eq!(code, Some(1), "{stderr}");
    assert!(stderr.contains("Interrupt received"), "{stderr}");
    assert!(stderr.contains("Apply stopped before it finished (interrupted)"), "{stderr}");
    assert!(stderr.contains("not started:"), "work was left: {stderr}");
    // Everything started was finished and recorded: no record without an id, no lock left.
    let state = state_json(dir.path());
    for (address, record) in state["resources"].as_object().expect("resources") {
        assert!(record["id"].is_string(), "{address} finished and was recorded");
    }
    assert!(!dir.path().join("terrace.state.json.lock").exists(), "the lock is released");
    let run = apply(&cloud, dir.path(), "managed-db");
    assert_eq!(run.code, 0, "{}", run.transcript());
    assert_cloud_matches_state(&cloud, dir.path());
    assert_converged(&cloud, dir.path());
}

#[test]
fn two_applies_at_once_one_wins_and_the_other_fails_fast_naming_the_holder() {
    let cloud = Cloud::start(300);
    let dir = stack_copy();
    let spawn = || {
        cloud
            .command(dir.path(), &["apply", "--phase", "block-storage", "--auto-approve"])
            .stdout(std::process::Stdio::null())
            .stderr(std::process::Stdio::piped())
            .spawn()
            .expect("terrace starts")
    };
    let (first, second) = (spawn(), spawn());
    let outputs = [first.wait_with_output().expect("ends"), second.wait_with_output().expect("ends")];
    let codes: Vec<Option<i32>> = outputs.iter().map(|o| o.status.code()).collect();
    let texts: Vec<String> = outputs.iter().map(|o| String::from_utf8_lossy(&o.stderr).into_owned()).collect();
    assert!(codes.contains(&Some(0)) && codes.contains(&Some(1)), "one wins, one fails: {codes:?} {texts:?}");
    let loser = &texts[codes.iter().position(|c| *c == Some(1)).expect("a loser")];
    assert!(loser.contains("is locked") && loser.contains(" pid ") && loser.contains("apply"), "{loser}");
    let winner = &texts[codes.iter().position(|c| *c == Some(0)).expect("a winner")];
    let serial = state_json(dir.path())["serial"].as_u64().expect("a serial");
    assert!(winner.contains(&format!("State serial {serial}.")), "the winner's last write is the state: {winner}");
    assert_cloud_matches_state(&cloud, dir.path());
}

#[test]
fn state_push_puts_a_kept_state_back_with_lineage_and_serial_checked() {
    let cloud = Cloud::start(0);
    let dir = stack_copy();
    assert_eq!(apply(&cloud, dir.path(), "block-storage").code, 0);
    let mut kept = state_json(dir.path());
    let serial = kept["serial"].as_u64().expect("a serial");
    kept["serial"] = json!(serial + 5);
    let file = dir.path().join("kept.json");
    std::fs::write(&file, serde_json::to_string_pretty(&kept).expect("JSON")).expect("write");
    let file_arg = file.to_str().expect("UTF-8");
    let pushed = cloud.terrace(dir.path(), &["state", "push", file_arg]);
    assert_eq!(pushed.code, 0, "{}", pushed.transcript());
    assert_eq!(state_json(dir.path())["serial"], serial + 5);
    // The same file again is not newer than the stored state.
    let again = cloud.terrace(dir.path(), &["state", "push", file_arg]);
    assert_eq!(again.code, 1, "{}", again.transcript());
    assert!(again.stderr.contains("serial"), "{}", again.stderr);
    // Another stack's history is refused.
    kept["lineage"] = json!("00000000-0000-4000-8000-000000000000");
    kept["serial"] = json!(serial + 9);
    std::fs::write(&file, serde_json::to_string_pretty(&kept).expect("JSON")).expect("write");
    let foreign = cloud.terrace(dir.path(), &["state", "push", file_arg]);
    assert_eq!(foreign.code, 1, "{}", foreign.transcript());
    assert!(foreign.stderr.contains("lineage"), "{}", foreign.stderr);
    assert_eq!(state_json(dir.path())["serial"], serial + 5, "nothing was overwritten");
}

#[test]
fn a_state_that_would_turn_terrace_against_the_cloud_is_refused_naming_the_addresses() {
    let cloud = Cloud::start(0);
    let dir = stack_copy();
    assert_eq!(apply(&cloud, dir.path(), "block-storage").code, 0);
    let path = dir.path().join("terrace.state.json");
    let good = std::fs::read_to_string(&path).expect("the state");
    let servers = cloud.list("servers").len();
    let damaged = |edit: &dyn Fn(&mut Value), says: &str| {
        let mut state: Value = serde_json::from_str(&good).expect("JSON");
        edit(&mut state);
        std::fs::write(&path, serde_json::to_string_pretty(&state).expect("JSON")).expect("write");
        for args in
            [&["plan", "--phase", "block-storage"][..], &["apply", "--phase", "block-storage", "--auto-approve"]]
        {
            let run = cloud.terrace(dir.path(), args);
            assert_eq!(run.code, 1, "{args:?}: {}", run.transcript());
            assert!(run.stderr.contains("cannot be acted on") && run.stderr.contains(says), "{}", run.stderr);
        }
        assert_eq!(cloud.list("servers").len(), servers, "nothing was deleted");
    };
    // server.app's entry copied to server.other: one object under two addresses.
    damaged(
        &|state| {
            let app = state["resources"]["server.app"].clone();
            state["resources"]["server.other"] = app;
        },
        "`server.app` and `server.other` record the same server",
    );
    damaged(
        &|state| state["resources"]["server.app"]["kind"] = json!("spaceship"),
        "`server.app` is recorded as a spaceship, but its address names a server",
    );
    damaged(
        &|state| {
            // server.app depends on what depends on it.
            let dependent = state["resources"]
                .as_object()
                .and_then(|all| {
                    all.iter()
                        .find(|(_, r)| r["dependencies"].as_array().is_some_and(|d| d.contains(&json!("server.app"))))
                })
                .map(|(address, _)| address.clone())
                .expect("something depends on server.app");
            state["resources"]["server.app"]["dependencies"] = json!([dependent]);
        },
        "its dependencies go round in a cycle",
    );
    damaged(&|state| state["serial"] = json!(u64::MAX), "the largest there is");
    // The state put back, all is well.
    std::fs::write(&path, &good).expect("write");
    let run = cloud.terrace(dir.path(), &["plan", "--phase", "block-storage"]);
    assert_eq!(run.code, 0, "{}", run.transcript());
}
