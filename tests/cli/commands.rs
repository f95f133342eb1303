//! The commands' behaviour beyond the snapshots: validate, graph, variables from the environment,
//! price lists by date and by file, inherited problems, examples.

use std::path::Path;

use super::support::{fixture, phases_dir, terrace};

#[test]
fn the_bundled_phases_and_every_example_validate() {
    let run = terrace(&phases_dir(), &["validate"]);
    assert_eq!((run.code, run.stdout.as_str()), (0, "Success: 5 of 5 phases are valid.\n"), "{}", run.stderr);
    let examples = Path::new(env!("CARGO_MANIFEST_DIR")).join("../examples");
    let mut checked = 0;
    for entry in std::fs::read_dir(&examples).expect("examples/") {
        let dir = entry.expect("an entry").path();
        if dir.join("terrace.hcl").exists() {
            let run = terrace(&dir, &["validate"]);
            assert_eq!(run.code, 0, "{} does not validate:\n{}", dir.display(), run.stderr);
            checked += 1;
        }
    }
    assert!(checked > 0, "no example stack found");
}

#[test]
fn graph_as_dot_and_json() {
    let dot = terrace(&phases_dir(), &["graph", "--phase", "read-replicas"]);
    assert_eq!(dot.code, 0, "{}", dot.stderr);
    assert!(dot.stdout.starts_with("digraph \"fastbots/read-replicas\""));
    assert!(dot.stdout.contains("subgraph \"cluster_postgres.main\""));
    assert!(dot.stdout.contains("\"load_balancer.web\" -> \"server.app[1]\";"), "{}", dot.stdout);
    let json = terrace(&phases_dir(), &["graph", "--phase", "read-replicas", "--format", "json"]);
    let graph: serde_json::Value = serde_json::from_str(&json.stdout).expect("JSON");
    let nodes: Vec<&str> =
        graph["nodes"].as_array().expect("nodes").iter().filter_map(|n| n["address"].as_str()).collect();
    let position = |a: &str| nodes.iter().position(|n| *n == a).unwrap_or_else(|| panic!("{a} missing"));
    assert!(position("network.private") < position("server.app[0]"), "dependencies come first");
    assert!(position("postgres.main.server.primary") < position("postgres.main.volume.primary"));
    let edges = graph["edges"].as_array().expect("edges");
    assert!(
        edges
            .iter()
            .any(|e| e["from"] == "postgres.main.volume.replica[0]" && e["to"] == "postgres.main.server.replica[0]")
    );
}

const VARIABLE_STACK: &str = r#"
//- terrace.hcl
stack "v" { phases = ["p"] }
variable "size" { default = 10 }
//- p.hcl
phase "p" {}
volume "data" {
  size     = var.size
  location = "fsn1"
}
"#;

#[test]
fn variables_from_the_environment_and_the_command_line() {
    let dir = fixture(VARIABLE_STACK);
    let size = |run: &super::support::Run| {
        let plan: serde_json::Value = serde_json::from_str(&run.stdout).expect("JSON plan");
        plan["resource_changes"][0]["after"]["size"].as_i64()
    };
    let plain = terrace(dir.path(), &["plan", "--format", "json"]);
    assert_eq!(size(&plain), Some(10));
    let from_env =
        super::support::terrace_with_env(dir.path(), &["plan", "--format", "json"], &[("TERRACE_VAR_size", "30")]);
    assert_eq!(size(&from_env), Some(30), "{}", from_env.stderr);
    let from_cli = terrace(dir.path(), &["plan", "--format", "json", "--var", "size=40"]);
    assert_eq!(size(&from_cli), Some(40));
}

#[test]
fn price_lists_by_date_and_by_file() {
    let dir = fixture(VARIABLE_STACK);
    let net = |args: &[&str]| {
        let run = terrace(dir.path(), args);
        assert_eq!(run.code, 0, "{}", run.stderr);
        let plan: serde_json::Value = serde_json::from_str(&run.stdout).expect("JSON plan");
        (plan["cost"]["after_net"].as_str().map(str::to_owned), plan["pricing"]["label"].as_str().map(str::to_owned))
    };
    // 10 GB at 0.0572 since 2026-04-01, at 0.044 before.
    assert_eq!(net(&["plan", "--format", "json"]).0.as_deref(), Some("0.5720"));
    assert_eq!(net(&["plan", "--format", "json", "--pricing", "2026-03-31"]).0.as_deref(), Some("0.4400"));
    let file = dir.path().join("prices.json");
    std::fs::write(
        &file,
        r#"{"pricing": {"currency": "EUR", "vat_rate": "19.00", "image": {"price_per_gb_month": {"net": "0.01", "gross": "0.0119"}},
           "volume": {"price_per_gb_month": {"net": "0.1000", "gross": "0.1190"}}, "server_backup": {"percentage": "20.00"},
           "floating_ips": [], "primary_ips": [], "load_balancer_types": [], "server_types": []}}"#,
    )
    .expect("write the price file");
    let (after, label) = net(&["plan", "--format", "json", "--pricing", file.to_str().expect("utf-8")]);
    assert_eq!(after.as_deref(), Some("1.0000"));
    assert!(label.is_some_and(|l| l.contains("prices.json")));
    let bad = terrace(dir.path(), &["plan", "--pricing", "2020-01-01"]);
    assert_eq!(bad.code, 1);
    assert!(bad.stderr.contains("--pricing 2020-01-01"), "{}", bad.stderr);
}

#[test]
fn a_problem_in_an_inherited_definition_names_the_phases_it_breaks() {
    let dir = fixture(
        r#"
//- terrace.hcl
stack "s" { phases = ["a", "b"] }
//- a.hcl
phase "a" {}
server "app" {
  count       = 2
  server_type = "cpx22"
  location    = "fsn1"
}
output "ip" { value = server.app[1].ipv4_address }
//- b.hcl
phase "b" { extends = "a" }
server "app" {
  server_type = "cpx22"
  location    = "fsn1"
}
"#,
    );
    let run = terrace(dir.path(), &["validate"]);
    assert_eq!(run.code, 1);
    assert!(run.stderr.contains("`server.app` has no `count`, so it cannot be indexed"), "{}", run.stderr);
    assert!(run.stderr.contains("found while compiling phase `b`"), "{}", run.stderr);
    assert!(run.stderr.ends_with("1 error\n"), "{}", run.stderr);
}

#[test]
fn cost_gates_flag_budgets_and_stop_large_increases() {
    let dir = super::support::stack_copy();
    let over = terrace(dir.path(), &["plan", "--phase", "managed-db", "--max-cost-increase", "25"]);
    assert_eq!(over.code, 3, "{}", over.stderr);
    assert!(
        over.stderr.contains("raises the monthly cost by +€60.75 net, more than the allowed €25.00"),
        "{}",
        over.stderr
    );
    assert!(over.stderr.contains("postgres.main.server.primary (+€19.99)"), "names the resources: {}", over.stderr);
    let within = terrace(dir.path(), &["plan", "--phase", "managed-db", "--max-cost-increase", "100"]);
    assert_eq!(within.code, 0, "{}", within.stderr);
    let percent = terrace(dir.path(), &["plan", "--phase", "managed-db", "--max-cost-increase", "10%"]);
    assert_eq!(percent.code, 3, "from nothing, any increase is more than 10%: {}", percent.stderr);
    let bad = terrace(dir.path(), &["plan", "--max-cost-increase", "lots"]);
    assert_eq!(bad.code, 1, "a usage error is an error, not \"changes\": {}", bad.stderr);

    let budget = terrace(dir.path(), &["plan", "--phase", "read-replicas", "--format", "json"]);
    let plan: serde_json::Value = serde_json::from_str(&budget.stdout).expect("JSON");
    assert_eq!(plan["budget"]["budget_monthly"], 120.0);
    assert_eq!(plan["budget"]["over"], false);
    let tight = fixture(
        "//- terrace.hcl\nstack \"s\" { phases = [\"p\"] }\n//- p.hcl\nphase \"p\" { budget_monthly = 10 }\nserver \"a\" {\n  server_type = \"cpx22\"\n  location    = \"fsn1\"\n}\n",
    );
    let text = terrace(tight.path(), &["plan"]);
    assert!(text.stdout.contains("budget of phase `p`: €10.00 (OVER BUDGET)"), "{}", text.stdout);
    let markdown = terrace(tight.path(), &["plan", "--format", "markdown"]);
    assert!(markdown.stdout.contains("**Over budget:** €19.99 per month"), "{}", markdown.stdout);
    let cost = terrace(tight.path(), &["cost"]);
    assert!(cost.stdout.contains("over budget"), "{}", cost.stdout);
}
