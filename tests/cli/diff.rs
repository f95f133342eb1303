//! The diff engine through the real binary: a stack recorded as applied, then edited, then planned.

use std::path::Path;
use std::time::{Duration, Instant};

use terrace_state::{Backend as _, LocalBackend};

use super::recorded::record_phase;
use super::support::{fixture, terrace};

const STACK: &str = r##"
//- terrace.hcl
stack "s" { phases = ["p"] }
//- p.hcl
phase "p" {}
server "web" {
  server_type = "cpx22"
  image       = "ubuntu-24.04"
  location    = "fsn1"
  labels      = { role = "web" }
  user_data   = "#cloud-config\npackages:\n  - nginx\n  - curl\n"
}
volume "data" {
  size   = 20
  server = server.web
}
network "net" {
  ip_range = "10.0.0.0/16"
  subnet {
    network_zone = "eu-central"
    ip_range     = "10.0.1.0/24"
  }
}
"##;

/// The stack recorded as applied, with `p.hcl` then edited by `edit`.
fn recorded_then(edit: impl Fn(&str) -> String) -> tempfile::TempDir {
    let dir = fixture(STACK);
    record_phase(dir.path(), "p");
    let path = dir.path().join("p.hcl");
    let text = std::fs::read_to_string(&path).expect("read p.hcl");
    let edited = edit(&text);
    assert_ne!(edited, text, "the edit changes the file");
    std::fs::write(&path, edited).expect("write p.hcl");
    dir
}

fn plan_json(dir: &Path, extra: &[&str]) -> (i32, serde_json::Value, String) {
    let mut args = vec!["plan", "--format", "json"];
    args.extend_from_slice(extra);
    let run = terrace(dir, &args);
    let json = serde_json::from_str(&run.stdout).unwrap_or(serde_json::Value::Null);
    (run.code, json, run.stderr)
}

fn change<'p>(plan: &'p serde_json::Value, address: &str) -> &'p serde_json::Value {
    plan["resource_changes"]
        .as_array()
        .and_then(|changes| changes.iter().find(|c| c["address"] == address))
        .unwrap_or_else(|| panic!("no change for {address} in {plan:#}"))
}

#[test]
fn an_unchanged_stack_has_no_changes() {
    let dir = fixture(STACK);
    record_phase(dir.path(), "p");
    let run = terrace(dir.path(), &["plan", "--detailed-exitcode"]);
    assert_eq!(run.code, 0, "{}\n{}", run.stdout, run.stderr);
    assert!(run.stdout.contains("No changes."), "{}", run.stdout);
}

#[test]
fn a_server_type_change_is_in_place_and_powers_the_server_off() {
    let dir = recorded_then(|t| t.replace("server_type = \"cpx22\"", "server_type = \"cpx32\""));
    let (code, plan, stderr) = plan_json(dir.path(), &["--detailed-exitcode"]);
    assert_eq!(code, 2, "{stderr}");
    let web = change(&plan, "server.web");
    assert_eq!(web["action"], "update");
    assert_eq!(web["power_off"], true);
    assert_eq!(web["api_actions"], serde_json::json!(["poweroff", "change_type", "poweron"]));
    assert_eq!(web["cost_before"]["monthly_net"], "19.9900");
    assert_eq!(web["cost_after"]["monthly_net"], "35.9900");
    assert_eq!(change(&plan, "volume.data")["action"], "no_op");
    let markdown = terrace(dir.path(), &["plan", "--format", "markdown"]);
    assert!(markdown.stdout.contains("**Powered off during the change:** `server.web`"), "{}", markdown.stdout);
}

#[test]
fn an_image_change_replaces_the_server_and_names_the_attribute() {
    let dir = recorded_then(|t| t.replace("image       = \"ubuntu-24.04\"", "image       = \"debian-12\""));
    let (code, plan, _) = plan_json(dir.path(), &[]);
    assert_eq!(code, 0);
    let web = change(&plan, "server.web");
    assert_eq!(web["action"], "replace");
    assert_eq!(web["actions"], serde_json::json!(["delete", "create"]));
    assert_eq!(web["reasons"][0], "`image` forces replacement");
    assert!(web["after_unknown"].as_array().expect("list").contains(&"ipv4_address".into()));
    // The volume follows its server: a new server id means detach and attach.
    let data = change(&plan, "volume.data");
    assert_eq!(data["action"], "update");
    assert_eq!(data["api_actions"], serde_json::json!(["detach", "attach"]));
}

#[test]
fn create_before_destroy_reverses_the_steps_of_a_replacement() {
    let dir = recorded_then(|t| {
        t.replace(
            "image       = \"ubuntu-24.04\"",
            "image       = \"debian-12\"\n  lifecycle {\n    create_before_destroy = true\n  }",
        )
    });
    let (_, plan, _) = plan_json(dir.path(), &[]);
    assert_eq!(change(&plan, "server.web")["actions"], serde_json::json!(["create", "delete"]));
}

#[test]
fn user_data_changes_show_as_a_unified_diff() {
    let dir = recorded_then(|t| t.replace("  - curl\\n", "  - curl\\n  - htop\\n"));
    let run = terrace(dir.path(), &["plan"]);
    assert!(run.stdout.contains("# (`user_data` forces replacement)"), "{}", run.stdout);
    assert!(run.stdout.contains("@@ -2,3 +2,4 @@"), "{}", run.stdout);
    assert!(run.stdout.contains("+  - htop"), "{}", run.stdout);
    let ignored = recorded_then(|t| {
        t.replace("  - curl\\n", "  - curl\\n  - htop\\n").replace(
            "labels      = { role = \"web\" }",
            "labels      = { role = \"web\" }\n  lifecycle {\n    ignore_changes = [user_data]\n  }",
        )
    });
    let run = terrace(ignored.path(), &["plan", "--detailed-exitcode"]);
    assert_eq!(run.code, 0, "ignore_changes hides the change:\n{}", run.stdout);
}

#[test]
fn volumes_grow_in_place_and_never_shrink() {
    let grown = recorded_then(|t| t.replace("size   = 20", "size   = 40"));
    let (_, plan, _) = plan_json(grown.path(), &[]);
    let data = change(&plan, "volume.data");
    assert_eq!((data["action"].as_str(), data["api_actions"][0].as_str()), (Some("update"), Some("resize")));
    let shrunk = recorded_then(|t| t.replace("size   = 20", "size   = 10"));
    let run = terrace(shrunk.path(), &["plan"]);
    assert_eq!(run.code, 1);
    assert!(run.stderr.contains("a volume cannot shrink (20 GB -> 10 GB)"), "{}", run.stderr);
}

#[test]
fn a_removed_block_is_destroyed_after_what_depends_on_it() {
    let dir = recorded_then(|t| {
        t.split("server \"web\"").next().unwrap_or_default().to_owned()
            + "network \"net\" {\n  ip_range = \"10.0.0.0/16\"\n  subnet {\n    network_zone = \"eu-central\"\n    ip_range     = \"10.0.1.0/24\"\n  }\n}\n"
    });
    let refused = terrace(dir.path(), &["plan"]);
    assert_eq!(refused.code, 1, "deleting a volume is data loss");
    let (code, plan, stderr) = plan_json(dir.path(), &["--allow-data-loss"]);
    assert_eq!(code, 0, "{stderr}");
    let order: Vec<&str> = plan["resource_changes"]
        .as_array()
        .expect("changes")
        .iter()
        .filter(|c| c["action"] == "delete")
        .filter_map(|c| c["address"].as_str())
        .collect();
    assert_eq!(order, ["volume.data", "server.web"], "the volume goes before its server");
    assert_eq!(plan["cost"]["after_net"], "0", "only the free network is left");
}

#[test]
fn prevent_destroy_refuses_even_with_allow_data_loss() {
    let dir = recorded_then(|t| {
        t.replace(
            "size   = 20\n",
            "size   = 20\n  location = \"nbg1\"\n  lifecycle {\n    prevent_destroy = true\n  }\n",
        )
        .replace("  server = server.web\n", "")
    });
    let run = terrace(dir.path(), &["plan", "--allow-data-loss"]);
    assert_eq!(run.code, 1, "{}", run.stdout);
    assert!(run.stderr.contains("`volume.data` has lifecycle.prevent_destroy"), "{}", run.stderr);
}

#[test]
fn target_limits_the_plan_to_an_address_and_its_dependencies() {
    let dir = recorded_then(|t| t.replace("role = \"web\"", "role = \"www\"").replace("size   = 20", "size   = 30"));
    let (_, plan, _) = plan_json(dir.path(), &["--target", "server.web"]);
    let addresses: Vec<&str> =
        plan["resource_changes"].as_array().expect("changes").iter().filter_map(|c| c["address"].as_str()).collect();
    assert_eq!(addresses, ["server.web"]);
    let (_, plan, _) = plan_json(dir.path(), &["--target", "volume.data"]);
    let addresses: Vec<&str> =
        plan["resource_changes"].as_array().expect("changes").iter().filter_map(|c| c["address"].as_str()).collect();
    assert_eq!(addresses, ["server.web", "volume.data"], "a target brings its dependencies");
}

#[test]
fn a_held_lock_fails_fast_naming_its_holder_or_is_waited_for() {
    let dir = fixture(STACK);
    let backend = LocalBackend::new(dir.path().join("terrace.state.json"));
    let guard = backend.lock("apply", Duration::ZERO).expect("lock");
    let start = Instant::now();
    let run = terrace(dir.path(), &["plan"]);
    assert!(start.elapsed() < Duration::from_secs(2), "fails fast");
    assert_eq!(run.code, 1);
    assert!(run.stderr.contains("is locked by") && run.stderr.contains("for apply"), "{}", run.stderr);
    assert!(run.stderr.contains(&guard.info().id), "the lock id, for `terrace state unlock`: {}", run.stderr);
    let releaser = std::thread::spawn(move || {
        std::thread::sleep(Duration::from_millis(700));
        drop(guard);
    });
    let waited = terrace(dir.path(), &["plan", "--lock-timeout", "20s"]);
    releaser.join().expect("the releasing thread");
    assert_eq!(waited.code, 0, "{}", waited.stderr);
    // A lock whose holder (this test's process) still runs is broken only with --force.
    let held = backend.lock("apply", Duration::ZERO).expect("lock again");
    let id = held.info().id.clone();
    assert_eq!(terrace(dir.path(), &["plan"]).code, 1);
    let refused = terrace(dir.path(), &["state", "unlock", &id]);
    assert_eq!(refused.code, 1, "{}", refused.stderr);
    assert!(refused.stderr.contains(&format!("pid {} on this host", std::process::id())), "{}", refused.stderr);
    let unlock = terrace(dir.path(), &["state", "unlock", &id, "--force"]);
    assert_eq!(unlock.code, 0, "{}", unlock.stderr);
    assert_eq!(terrace(dir.path(), &["plan"]).code, 0);
    drop(held);
}

#[test]
fn a_corrupted_or_newer_state_is_reported_and_left_alone() {
    let dir = fixture(STACK);
    let path = dir.path().join("terrace.state.json");
    std::fs::write(&path, "{\"format_version\": 1, \"lineage\": ").expect("write");
    let run = terrace(dir.path(), &["plan"]);
    assert_eq!(run.code, 1);
    assert!(run.stderr.contains("terrace.state.json"), "names the file: {}", run.stderr);
    assert_eq!(
        std::fs::read_to_string(&path).expect("read"),
        "{\"format_version\": 1, \"lineage\": ",
        "not overwritten"
    );
    std::fs::remove_file(&path).expect("remove the corrupted file");
    record_phase(dir.path(), "p");
    let text =
        std::fs::read_to_string(&path).expect("read").replacen("\"format_version\": 1", "\"format_version\": 99", 1);
    std::fs::write(&path, &text).expect("write");
    let run = terrace(dir.path(), &["plan"]);
    assert_eq!(run.code, 1);
    assert!(run.stderr.contains("99"), "names the newer version: {}", run.stderr);
}

#[test]
fn state_commands_and_outputs() {
    let dir = fixture(&format!(
        "{STACK}output \"ip\" {{ value = server.web.ipv4_address }}\noutput \"secret\" {{\n  value     = \"s3cr3t\"\n  sensitive = true\n}}\n"
    ));
    record_phase(dir.path(), "p");
    let list = terrace(dir.path(), &["state", "list"]);
    assert_eq!(list.stdout, "network.net\nserver.web\nvolume.data\n");
    let show = terrace(dir.path(), &["state", "show", "server.web"]);
    let shown: serde_json::Value = serde_json::from_str(&show.stdout).expect("JSON");
    assert_eq!(shown["attributes"]["server_type"], "cpx22");
    assert!(shown["id"].is_string());
    let env = terrace(dir.path(), &["output", "--format", "env"]);
    assert!(env.stdout.contains("ip=203.0.113."), "{}", env.stdout);
    assert!(!env.stdout.contains("s3cr3t"), "sensitive values stay hidden: {}", env.stdout);
    let shown = terrace(dir.path(), &["output", "--format", "env", "--show-sensitive"]);
    assert!(shown.stdout.contains("secret=s3cr3t"), "{}", shown.stdout);
    let mv = terrace(dir.path(), &["state", "mv", "volume.data", "volume.db"]);
    assert_eq!(mv.code, 0, "{}", mv.stderr);
    let (_, plan, _) = plan_json(dir.path(), &["--allow-data-loss"]);
    assert_eq!(change(&plan, "volume.db")["action"], "delete", "the moved record is no longer in the definitions");
    let rm = terrace(dir.path(), &["state", "rm", "volume.db"]);
    assert_eq!(rm.code, 0, "{}", rm.stderr);
    assert_eq!(terrace(dir.path(), &["state", "list"]).stdout, "network.net\nserver.web\n");
    let state = LocalBackend::new(dir.path().join("terrace.state.json")).read().expect("read").expect("a state");
    assert_eq!(state.serial, 3, "each edit is one write");
}

#[test]
fn a_saved_plan_records_the_state_it_was_made_against() {
    let dir = recorded_then(|t| t.replace("size   = 20", "size   = 30"));
    let out = dir.path().join("plan.json");
    let run = terrace(dir.path(), &["plan", "--out", out.to_str().expect("utf-8")]);
    assert_eq!(run.code, 0, "{}", run.stderr);
    let saved: serde_json::Value = serde_json::from_str(&std::fs::read_to_string(&out).expect("read")).expect("JSON");
    let state = LocalBackend::new(dir.path().join("terrace.state.json")).read().expect("read").expect("a state");
    assert_eq!(saved["lineage"], state.lineage.as_str());
    assert_eq!(saved["serial"], state.serial);
    assert_eq!(saved["plan"]["format_version"], "1.0");
    assert_eq!(saved["definitions_digest"].as_str().map(str::len), Some(64));
}
