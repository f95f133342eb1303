//! `terrace plan` of each bundled phase from empty state, in all three formats.

use super::support::{stack_copy, terrace};

const PHASES: [&str; 5] = ["block-storage", "managed-db", "read-replicas", "sharding", "multi-region"];

fn plan(phase: &str, format: &str) -> String {
    let run = terrace(stack_copy().path(), &["plan", "--phase", phase, "--format", format]);
    assert_eq!(run.code, 0, "plan of {phase} failed:\n{}", run.stderr);
    run.stdout
}

#[test]
fn plans_of_the_seed_phases_as_text() {
    for phase in PHASES {
        insta::assert_snapshot!(format!("plan_text_{phase}"), plan(phase, "text"));
    }
}

#[test]
fn plans_of_the_seed_phases_as_markdown() {
    for phase in PHASES {
        insta::assert_snapshot!(format!("plan_markdown_{phase}"), plan(phase, "markdown"));
    }
}

#[test]
fn plans_of_the_seed_phases_as_json() {
    for phase in PHASES {
        let text = plan(phase, "json");
        let json: serde_json::Value = serde_json::from_str(&text).expect("the JSON plan parses");
        assert_eq!(json["format_version"], "1.0");
        assert_eq!(json["phase"]["name"], phase);
        insta::assert_snapshot!(format!("plan_json_{phase}"), text);
    }
}

#[test]
fn the_default_phase_is_the_first_one() {
    let run = terrace(stack_copy().path(), &["plan", "--format", "json"]);
    let json: serde_json::Value = serde_json::from_str(&run.stdout).expect("the JSON plan parses");
    assert_eq!(json["phase"]["name"], "block-storage");
}

#[test]
fn detailed_exitcode_reports_changes_with_2() {
    let run = terrace(stack_copy().path(), &["plan", "--detailed-exitcode"]);
    assert_eq!(run.code, 2, "{}", run.stderr);
    let plain = terrace(stack_copy().path(), &["plan"]);
    assert_eq!(plain.code, 0);
}

#[test]
fn every_plan_names_its_price_list() {
    for format in ["text", "markdown", "json"] {
        let out = plan("managed-db", format);
        assert!(out.contains("2026-06-15"), "{format} plan does not name the price list date:\n{out}");
    }
    let older = terrace(stack_copy().path(), &["plan", "--phase", "managed-db", "--pricing", "2026-04-01"]);
    assert_eq!(older.code, 0, "{}", older.stderr);
    assert!(older.stdout.contains("2026-04-01"));
    assert_ne!(older.stdout, plan("managed-db", "text"), "a different price list gives different costs");
}
