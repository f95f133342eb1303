//! Phase migrations: with the state of phase N recorded, `terrace plan --phase M` shows the
//! migration. Every step of the seed's path, 1 -> 2 -> 3 -> 4 -> 5, then 5 -> destroy, in all three
//! formats; and a second plan of the recorded phase shows no changes.

use super::recorded::record_phase;
use super::support::{stack_copy, terrace};

const PATH: [&str; 5] = ["block-storage", "managed-db", "read-replicas", "sharding", "multi-region"];

#[test]
fn every_step_of_the_seed_path() {
    for pair in PATH.windows(2) {
        let (from, to) = (pair[0], pair[1]);
        let dir = stack_copy();
        record_phase(dir.path(), from);
        for format in ["text", "markdown", "json"] {
            let run = terrace(dir.path(), &["plan", "--phase", to, "--format", format, "--allow-data-loss"]);
            assert_eq!(run.code, 0, "{from} -> {to} ({format}):\n{}", run.stderr);
            insta::assert_snapshot!(format!("migrate_{from}_to_{to}_{format}"), run.stdout);
        }
    }
}

#[test]
fn destroying_the_last_phase() {
    let dir = stack_copy();
    record_phase(dir.path(), "multi-region");
    for format in ["text", "markdown", "json"] {
        let run = terrace(dir.path(), &["plan", "--destroy", "--format", format, "--allow-data-loss"]);
        assert_eq!(run.code, 0, "{}", run.stderr);
        insta::assert_snapshot!(format!("destroy_multi-region_{format}"), run.stdout);
    }
}

#[test]
fn a_recorded_phase_plans_no_changes() {
    for phase in PATH {
        let dir = stack_copy();
        record_phase(dir.path(), phase);
        let run = terrace(dir.path(), &["plan", "--detailed-exitcode", "--format", "json"]);
        let plan: serde_json::Value =
            serde_json::from_str(&run.stdout).unwrap_or_else(|_| panic!("{phase}: {}", run.stderr));
        let changed: Vec<&serde_json::Value> =
            plan["resource_changes"].as_array().expect("changes").iter().filter(|c| c["action"] != "no_op").collect();
        assert!(changed.is_empty(), "{phase}: a second plan changes {changed:#?}");
        assert_eq!(run.code, 0, "{phase}: --detailed-exitcode with no changes exits 0");
        assert_eq!(plan["phase"]["name"], phase, "the phase defaults to the recorded one");
    }
}

#[test]
fn data_loss_is_refused_without_the_flag() {
    let dir = stack_copy();
    record_phase(dir.path(), "block-storage");
    let run = terrace(dir.path(), &["plan", "--phase", "managed-db"]);
    assert_eq!(run.code, 1);
    assert!(
        run.stderr.contains("`postgres.main.volume.data`: this plan destroys it and loses its data"),
        "{}",
        run.stderr
    );
    assert!(run.stdout.contains("DATA LOSS"), "the plan is still shown:\n{}", run.stdout);
    let allowed = terrace(dir.path(), &["plan", "--phase", "managed-db", "--allow-data-loss", "--detailed-exitcode"]);
    assert_eq!(allowed.code, 2, "{}", allowed.stderr);
}
