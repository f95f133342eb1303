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
    let net = |i: usize| {
        phases[i]["monthly_net"]
            .as_str()
            .expect("a decimal string")
            .parse::<f64>()
            .expect("number")
    };
    for i in 1..phases.len() {
        let delta: f64 = phases[i]["delta_net"]
            .as_str()
            .expect("delta")
            .parse()
            .expect("number");
        assert!(
            (net(i) - net(i - 1) - delta).abs() < 1e-9,
            "phase {i}: delta does not match"
        );
    }
    assert!(phases[0]["delta_net"].is_null());
}
