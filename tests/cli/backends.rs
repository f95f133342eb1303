//! State backends from the command line: choosing one in terrace.hcl (settings from the file or
//! `TERRACE_BACKEND_*`), clear errors for a wrong one, and `terrace state migrate` between them.

use super::cloud::{Cloud, state_json};
use super::support::{fixture, stack_copy, terrace, terrace_with_env};

#[test]
fn a_backend_block_is_checked_and_missing_settings_name_their_variable() {
    let unknown = fixture(
        "//- terrace.hcl\nstack \"s\" {\n  phases = [\"p\"]\n  backend \"dynamo\" {\n    table = \"x\"\n  }\n}\n//- p.hcl\nphase \"p\" {}\n",
    );
    let run = terrace(unknown.path(), &["plan"]);
    assert_eq!(run.code, 1);
    assert!(run.stderr.contains("there is no state backend `dynamo`"), "{}", run.stderr);

    let s3 = fixture(
        "//- terrace.hcl\nstack \"s\" {\n  phases = [\"p\"]\n  backend \"s3\" {\n    bucket = \"state\"\n    key = \"s.json\"\n    region = \"fsn1\"\n  }\n}\n//- p.hcl\nphase \"p\" {}\n",
    );
    let run = terrace(s3.path(), &["plan"]);
    assert_eq!(run.code, 1);
    assert!(run.stderr.contains("backend \"s3\" needs `endpoint`"), "{}", run.stderr);
    assert!(run.stderr.contains("TERRACE_BACKEND_ENDPOINT"), "{}", run.stderr);

    let typo = fixture(
        "//- terrace.hcl\nstack \"s\" {\n  phases = [\"p\"]\n  backend \"local\" {\n    file = \"x.json\"\n  }\n}\n//- p.hcl\nphase \"p\" {}\n",
    );
    let run = terrace(typo.path(), &["plan"]);
    assert_eq!(run.code, 1);
    assert!(run.stderr.contains("has no setting `file`; it takes path"), "{}", run.stderr);
}

#[test]
fn the_local_path_can_come_from_the_environment() {
    let dir = stack_copy();
    // The bundled stack writes its path; a value in the file wins, so take it out.
    let file = dir.path().join("terrace.hcl");
    let text = std::fs::read_to_string(&file).expect("terrace.hcl");
    std::fs::write(&file, text.replace("    path = \"terrace.state.json\"\n", "")).expect("write");
    let run = terrace_with_env(dir.path(), &["state", "list"], &[("TERRACE_BACKEND_PATH", "elsewhere.json")]);
    assert_eq!(run.code, 0, "{}", run.transcript());
    let cloud = Cloud::start(0);
    let mut env: Vec<(String, String)> = cloud.env();
    env.push(("TERRACE_BACKEND_PATH".into(), "elsewhere.json".into()));
    let pairs: Vec<(&str, &str)> = env.iter().map(|(k, v)| (k.as_str(), v.as_str())).collect();
    let applied = terrace_with_env(dir.path(), &["apply", "--phase", "block-storage", "--auto-approve"], &pairs);
    assert_eq!(applied.code, 0, "{}", applied.transcript());
    assert!(dir.path().join("elsewhere.json").exists());
    assert!(!dir.path().join("terrace.state.json").exists());
}

#[test]
fn state_migrate_copies_the_state_with_its_lineage_and_serial() {
    let cloud = Cloud::start(0);
    let dir = stack_copy();
    let applied = cloud.terrace(dir.path(), &["apply", "--phase", "block-storage", "--auto-approve"]);
    assert_eq!(applied.code, 0, "{}", applied.transcript());
    let before = state_json(dir.path());
    let run = terrace(
        dir.path(),
        &["state", "migrate", "--to-backend", "local", "--backend-config", "path=moved/state.json"],
    );
    assert_eq!(run.code, 0, "{}", run.transcript());
    assert!(run.stdout.contains("Copied the state"), "{}", run.stdout);
    let moved: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(dir.path().join("moved/state.json")).expect("moved"))
            .expect("JSON");
    assert_eq!(moved["lineage"], before["lineage"]);
    assert_eq!(moved["serial"], before["serial"]);
    assert_eq!(moved["resources"], before["resources"]);
    // Again: the target already holds it.
    let again = terrace(
        dir.path(),
        &["state", "migrate", "--to-backend", "local", "--backend-config", "path=moved/state.json"],
    );
    assert_eq!(again.code, 0, "{}", again.transcript());
    assert!(again.stdout.contains("already holds this state"), "{}", again.stdout);
}

#[test]
fn every_command_refuses_another_stacks_state() {
    let cloud = Cloud::start(0);
    let dir = stack_copy();
    let applied = cloud.terrace(dir.path(), &["apply", "--phase", "block-storage", "--auto-approve"]);
    assert_eq!(applied.code, 0, "{}", applied.transcript());
    let file = dir.path().join("terrace.state.json");
    let text = std::fs::read_to_string(&file).expect("state");
    std::fs::write(&file, text.replace("\"stack\": \"fastbots\"", "\"stack\": \"other\"")).expect("write");
    for args in [&["plan"][..], &["apply", "--auto-approve"], &["destroy", "--auto-approve", "--allow-data-loss"]] {
        let run = cloud.terrace(dir.path(), args);
        assert_eq!(run.code, 1, "{args:?}: {}", run.transcript());
        assert!(run.stderr.contains("records stack `other`, not `fastbots`"), "{args:?}: {}", run.stderr);
    }
    assert_eq!(cloud.list("servers").len(), 1, "nothing was destroyed");
}
