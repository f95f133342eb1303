//! `terrace cost`: the phases side by side, in all three formats.

use super::support::{phases_dir, terrace};

#[test]
fn cost_comparison_of_the_seed_phases() {
    for format in ["text", "markdown", "json"] {
        let run = terrace(&phases_dir(), &["cost", "--format", format]);
        assert_eq!(run.code, 0, "{}", run.stderr);
        insta::assert_snapshot!(format!("cost_{format}"), run.stdout);
    }
}

#[test]
fn cost_json_deltas_add_up() {
    let run = terrace(&phases_dir(), &["cost", "--format", "json"]);
    let json: serde_json::Value = serde_json::from_str(&run.stdout).expect("JSON");
    let phases = json["phases"].as_array().expect("phases");
    assert_eq!(phases.len(), 5);
    let number =
        |value: &serde_json::Value| -> f64 { value.as_str().expect("a decimal string").parse().expect("a number") };
    for pair in phases.windows(2) {
        let (previous, phase) = (&pair[0], &pair[1]);
        let delta = number(&phase["delta_net"]);
        let expected = number(&phase["monthly_net"]) - number(&previous["monthly_net"]);
        assert!((expected - delta).abs() < 1e-9, "{}: delta does not match", phase["name"]);
    }
    assert!(phases[0]["delta_net"].is_null());
}
