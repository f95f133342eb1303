//! `terrace apply` and `terrace destroy` against the emulator over HTTP: every seed phase from
//! empty, the whole migration path and back to nothing, a second plan with no changes after each
//! apply, approval, saved plans, and the token kept out of every output.

use serde_json::Value;
use terrace::compile::VarInputs;
use terrace::kind::Kind;
use terrace::pipeline::{compile_phase, load};
use terrace_providers::pricing::Catalog;

use super::cloud::{Cloud, S3_SECRET_KEY, TOKEN, assert_cloud_matches_state, state_json};
use super::support::{stack_copy, terrace};

const PHASES: [&str; 5] = ["block-storage", "managed-db", "read-replicas", "sharding", "multi-region"];

fn apply(cloud: &Cloud, dir: &std::path::Path, phase: &str) -> super::support::Run {
    let run = cloud.terrace(dir, &["apply", "--phase", phase, "--auto-approve", "--allow-data-loss"]);
    assert_eq!(run.code, 0, "apply {phase}:\n{}", run.transcript());
    run
}

/// A plan right after an apply has nothing to do.
fn assert_converged(cloud: &Cloud, dir: &std::path::Path) {
    let run = cloud.terrace(dir, &["plan", "--detailed-exitcode"]);
    assert_eq!(run.code, 0, "a second plan shows no changes:\n{}", run.transcript());
    assert!(run.stdout.contains("No changes."), "{}", run.stdout);
}

/// Every object of the compiled phase exists once, as compiled: types, locations, sizes,
/// attachments, targets and labels.
fn assert_phase_built(cloud: &Cloud, dir: &std::path::Path, phase: &str) {
    let loaded = load(dir);
    let stack = loaded.stack.expect("the stack loads");
    let (compiled, _) = compile_phase(&stack, phase, &VarInputs::default(), &Catalog::embedded());
    let compiled = compiled.expect("the phase compiles");
    let state = state_json(dir);
    let id_of = |address: &str| state["resources"][address]["id"].as_str().map(str::to_owned);
    let find = |collection: &str, address: &str| -> Value {
        let label = terrace_providers::cloud::label_value(address);
        let matching: Vec<Value> = cloud
            .list(collection)
            .into_iter()
            .filter(|o| o.pointer("/labels/terrace-address").and_then(Value::as_str) == Some(label.as_str()))
            .collect();
        assert_eq!(matching.len(), 1, "{phase}: one {collection} object for {address}");
        let object = matching.into_iter().next().expect("one");
        assert_eq!(object["labels"]["terrace-stack"], "fastbots", "{address} carries the stack label");
        object
    };
    let mut expected_servers = 0;
    for (address, resource) in compiled.resources.iter() {
        let name = address.to_string();
        match resource.kind {
            Kind::Server => {
                expected_servers += 1;
                let server = find("servers", &name);
                assert_eq!(server["server_type"]["name"].as_str(), resource.str_attr("server_type"), "{name}");
                assert_eq!(server["location"]["name"].as_str(), resource.str_attr("location"), "{name}");
                assert_eq!(server["name"].as_str(), resource.str_attr("name"), "{name}");
                if let Some(network) = resource.ref_attr("network") {
                    let attached = server["private_net"][0]["network"].as_u64().map(|n| n.to_string());
                    assert_eq!(attached, id_of(&network.to_string()), "{name} is attached to {network}");
                }
                if let Some(group) = resource.ref_attr("placement_group") {
                    let placed = server["placement_group"]["id"].as_u64().map(|n| n.to_string());
                    assert_eq!(placed, id_of(&group.to_string()), "{name} is in {group}");
                }
            }
            Kind::Volume => {
                let volume = find("volumes", &name);
                assert_eq!(volume["size"].as_f64(), resource.attr("size").and_then(|s| s.as_f64()), "{name}");
                if let Some(server) = resource.ref_attr("server") {
                    let attached = volume["server"].as_u64().map(|n| n.to_string());
                    assert_eq!(attached, id_of(&server.to_string()), "{name} is attached to {server}");
                }
            }
            Kind::LoadBalancer => {
                let lb = find("load_balancers", &name);
                let wanted: usize = resource
                    .blocks("target")
                    .iter()
                    .map(|t| match t.get("server") {
                        Some(terrace::value::Value::List(items)) => items.len(),
                        Some(_) => 1,
                        None => 0,
                    })
                    .sum();
                assert_eq!(lb["targets"].as_array().map(Vec::len), Some(wanted), "{name} targets");
                assert_eq!(lb["services"].as_array().map(Vec::len), Some(resource.blocks("service").len()));
                assert_eq!(lb["load_balancer_type"]["name"].as_str(), resource.str_attr("type"));
            }
            Kind::Network => {
                let network = find("networks", &name);
                assert_eq!(network["ip_range"].as_str(), resource.str_attr("ip_range"));
                assert_eq!(network["subnets"].as_array().map(Vec::len), Some(resource.blocks("subnet").len()));
            }
            Kind::Firewall => {
                let firewall = find("firewalls", &name);
                assert_eq!(firewall["rules"].as_array().map(Vec::len), Some(resource.blocks("rule").len()), "{name}");
            }
            Kind::PlacementGroup => {
                find("placement_groups", &name);
            }
            Kind::Bucket => {
                let bucket = resource.str_attr("name").expect("a bucket name");
                assert!(cloud.buckets().contains(&bucket.to_owned()), "bucket {bucket} exists");
            }
            _ => {}
        }
    }
    assert_eq!(cloud.list("servers").len(), expected_servers, "{phase}: no other servers");
}

#[test]
fn every_seed_phase_applies_from_empty_as_compiled() {
    for phase in PHASES {
        let cloud = Cloud::start(20);
        let dir = stack_copy();
        apply(&cloud, dir.path(), phase);
        assert_phase_built(&cloud, dir.path(), phase);
        assert_cloud_matches_state(&cloud, dir.path());
        assert_converged(&cloud, dir.path());
        assert_eq!(state_json(dir.path())["phase"], phase);
    }
}

#[test]
fn the_seed_path_migrates_phase_by_phase_and_destroy_leaves_nothing() {
    let cloud = Cloud::start(20);
    let dir = stack_copy();
    for phase in PHASES {
        apply(&cloud, dir.path(), phase);
        assert_phase_built(&cloud, dir.path(), phase);
        assert_cloud_matches_state(&cloud, dir.path());
        assert_converged(&cloud, dir.path());
        if phase == "managed-db" {
            assert_app_outputs(&cloud, dir.path());
        }
    }
    let outputs = cloud.terrace(dir.path(), &["output", "--format", "env"]);
    assert_eq!(outputs.code, 0, "{}", outputs.transcript());
    assert!(outputs.stdout.contains("LB_US_IPV4="), "{}", outputs.stdout);
    let destroyed = cloud.terrace(dir.path(), &["destroy", "--auto-approve", "--allow-data-loss"]);
    assert_eq!(destroyed.code, 0, "{}", destroyed.transcript());
    assert!(destroyed.stderr.contains("Destroy complete!"), "{}", destroyed.stderr);
    assert_eq!(cloud.census(), Default::default(), "the emulator is empty");
    let state = state_json(dir.path());
    assert_eq!(state["resources"].as_object().map(|r| r.len()), Some(0));
}

#[test]
fn destroy_refuses_to_lose_data_without_the_flag() {
    let cloud = Cloud::start(0);
    let dir = stack_copy();
    apply(&cloud, dir.path(), "block-storage");
    let run = cloud.terrace(dir.path(), &["destroy", "--auto-approve"]);
    assert_eq!(run.code, 1, "{}", run.transcript());
    assert!(run.stderr.contains("pass --allow-data-loss"), "{}", run.stderr);
    assert_eq!(cloud.list("volumes").len(), 1, "nothing was deleted");
}

#[test]
fn apply_asks_and_anything_but_yes_cancels() {
    let cloud = Cloud::start(0);
    let dir = stack_copy();
    let mut child = cloud
        .command(dir.path(), &["apply", "--phase", "block-storage"])
        .stdin(std::process::Stdio::piped())
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .expect("terrace starts");
    use std::io::Write as _;
    child.stdin.take().expect("stdin").write_all(b"no\n").expect("write");
    let output = child.wait_with_output().expect("terrace ends");
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert_eq!(output.status.code(), Some(1), "{stderr}");
    assert!(stderr.contains("Do you want to perform these actions?"), "{stderr}");
    assert!(stderr.contains("apply cancelled."), "{stderr}");
    assert_eq!(cloud.census(), Default::default(), "nothing was created");

    let mut child = cloud
        .command(dir.path(), &["apply", "--phase", "block-storage"])
        .stdin(std::process::Stdio::piped())
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .expect("terrace starts");
    child.stdin.take().expect("stdin").write_all(b"yes\n").expect("write");
    let output = child.wait_with_output().expect("terrace ends");
    assert_eq!(output.status.code(), Some(0), "{}", String::from_utf8_lossy(&output.stderr));
    assert_eq!(cloud.list("servers").len(), 1);
}

#[test]
fn a_saved_plan_is_applied_exactly_once_and_stale_plans_are_refused() {
    let cloud = Cloud::start(0);
    let dir = stack_copy();
    let plan = dir.path().join("plan.json");
    let plan_arg = plan.to_str().expect("a UTF-8 path");
    let made = cloud.terrace(dir.path(), &["plan", "--phase", "block-storage", "--out", plan_arg]);
    assert_eq!(made.code, 0, "{}", made.transcript());
    let applied = cloud.terrace(dir.path(), &["apply", plan_arg]);
    assert_eq!(applied.code, 0, "{}", applied.transcript());
    // The server, its volume, the bucket, the database's two secrets and its two key pairs (its
    // host key and terrace's login key).
    assert!(applied.stderr.contains("Apply complete! Resources: 7 added"), "{}", applied.stderr);
    // Once applied, the state moved on: the same plan is stale.
    let again = cloud.terrace(dir.path(), &["apply", plan_arg]);
    assert_eq!(again.code, 1, "{}", again.transcript());
    assert!(again.stderr.contains("the state changed since the plan was made"), "{}", again.stderr);
    assert_eq!(cloud.list("servers").len(), 1, "no second server");

    // A plan made before the definitions changed.
    let made = cloud.terrace(dir.path(), &["plan", "--phase", "managed-db", "--allow-data-loss", "--out", plan_arg]);
    assert_eq!(made.code, 0, "{}", made.transcript());
    let file = dir.path().join("managed-db.hcl");
    let text = std::fs::read_to_string(&file).expect("the phase file");
    std::fs::write(&file, format!("{text}\n# edited\n")).expect("edit");
    let stale = cloud.terrace(dir.path(), &["apply", plan_arg]);
    assert_eq!(stale.code, 1, "{}", stale.transcript());
    assert!(stale.stderr.contains("the definitions or variables changed"), "{}", stale.stderr);
    std::fs::write(&file, text).expect("undo the edit");

    // A plan edited by hand.
    let saved = std::fs::read_to_string(&plan).expect("the plan");
    std::fs::write(&plan, saved.replace("cpx22", "cpx62")).expect("tamper");
    let tampered = cloud.terrace(dir.path(), &["apply", plan_arg]);
    assert_eq!(tampered.code, 1, "{}", tampered.transcript());
    assert!(tampered.stderr.contains("edited after it was made"), "{}", tampered.stderr);

    // A plan made before someone changed the cloud by hand.
    std::fs::write(&plan, &saved).expect("restore");
    let server = &cloud.list("servers")[0];
    let id = server["id"].as_u64().expect("id");
    let mut labels = server["labels"].clone();
    labels["role"] = Value::from("edited-by-hand");
    cloud.call(reqwest::Method::PUT, &format!("/servers/{id}"), Some(serde_json::json!({ "labels": labels })));
    let drifted = cloud.terrace(dir.path(), &["apply", plan_arg]);
    assert_eq!(drifted.code, 1, "{}", drifted.transcript());
    assert!(drifted.stderr.contains("changed outside terrace since the plan was made"), "{}", drifted.stderr);
}

#[test]
fn the_token_never_appears_in_output_or_state() {
    let cloud = Cloud::start(0);
    let dir = stack_copy();
    let mut seen = String::new();
    for args in [
        &["apply", "--phase", "block-storage", "--auto-approve"][..],
        &["plan"],
        &["output", "--format", "env", "--show-sensitive"],
        &["state", "show", "server.app"],
        &["import", "server.other", "1"],
        &["destroy", "--auto-approve", "--allow-data-loss"],
    ] {
        let run = cloud.terrace(dir.path(), args);
        seen.push_str(&run.transcript());
    }
    // An endpoint that refuses connections: the error names the URL, never the token.
    let refused = super::support::terrace_with_env(
        dir.path(),
        &["apply", "--phase", "block-storage", "--auto-approve"],
        &[("HCLOUD_TOKEN", TOKEN), ("HCLOUD_ENDPOINT", "http://127.0.0.1:9/v1")],
    );
    assert_eq!(refused.code, 1);
    seen.push_str(&refused.transcript());
    // The Object Storage secret key is printed nowhere either (docs/apply.md); the state records
    // it, as a secret, for the database servers that back up into the bucket.
    assert!(!seen.contains(S3_SECRET_KEY), "the S3 secret key was printed:\n{seen}");
    seen.push_str(&std::fs::read_to_string(dir.path().join("terrace.state.json")).expect("state"));
    assert!(seen.contains("Apply complete!") && seen.contains("Destroy complete!"), "{seen}");
    assert!(!seen.contains(TOKEN), "the token leaked:\n{seen}");
}

#[test]
fn the_s3_keys_are_recorded_as_secrets_and_never_printed() {
    let cloud = Cloud::start(0);
    let dir = stack_copy();
    let mut seen = String::new();
    for args in
        [&["apply", "--phase", "managed-db", "--auto-approve"][..], &["plan"], &["state", "show", "bucket.backups"]]
    {
        let run = cloud.terrace(dir.path(), args);
        assert_eq!(run.code, 0, "{}", run.stderr);
        seen.push_str(&run.transcript());
    }
    assert!(!seen.contains(S3_SECRET_KEY), "the S3 secret key was printed:\n{seen}");
    let state = state_json(dir.path());
    let bucket = &state["resources"]["bucket.backups"];
    assert_eq!(bucket["attributes"]["secret_key"], S3_SECRET_KEY, "recorded for the backups: {bucket}");
    let sensitive: Vec<&str> =
        bucket["sensitive_attributes"].as_array().into_iter().flatten().filter_map(|v| v.as_str()).collect();
    assert!(sensitive.contains(&"secret_key") && sensitive.contains(&"access_key"), "{bucket}");
}

#[test]
fn apply_without_a_token_says_what_to_set() {
    let dir = stack_copy();
    let run = terrace(dir.path(), &["apply", "--auto-approve"]);
    assert_eq!(run.code, 1);
    assert!(run.stderr.contains("HCLOUD_TOKEN is not set"), "{}", run.stderr);
}

#[test]
fn pricing_pull_writes_a_catalog_that_cost_reads() {
    let cloud = Cloud::start(0);
    let dir = stack_copy();
    let run = cloud.terrace(dir.path(), &["pricing", "pull", "--out", "prices.json"]);
    assert_eq!(run.code, 0, "{}", run.transcript());
    let cost = terrace(dir.path(), &["cost", "--pricing", "prices.json"]);
    assert_eq!(cost.code, 0, "{}", cost.transcript());
    assert!(cost.stdout.contains("pricing file prices.json"), "{}", cost.stdout);
    assert!(cost.stdout.contains("€"), "{}", cost.stdout);
}

#[test]
fn refresh_reads_one_page_per_kind_not_one_request_per_object() {
    let cloud = Cloud::start(0);
    let dir = stack_copy();
    apply(&cloud, dir.path(), "multi-region");
    let state = state_json(dir.path());
    let kinds: std::collections::BTreeSet<&str> = state["resources"]
        .as_object()
        .expect("resources")
        .values()
        .filter_map(|r| r["kind"].as_str())
        .filter(|k| *k != "bucket" && *k != "secret" && *k != "keypair" && *k != "host")
        .collect();
    let objects = state["resources"].as_object().map(|r| r.len()).unwrap_or(0);
    let before = cloud.requests().len();
    assert_converged(&cloud, dir.path());
    let made: Vec<(String, String)> = cloud.requests()[before..].to_vec();
    let cloud_api: Vec<&(String, String)> = made.iter().filter(|(_, path)| path.starts_with("/v1/")).collect();
    assert_eq!(cloud_api.len(), kinds.len(), "one list request per kind for {objects} objects: {cloud_api:?}");
    assert!(cloud_api.iter().all(|(method, _)| method == "GET"));
    // Buckets are checked on the Object Storage endpoint, one request each.
    assert_eq!(made.len() - cloud_api.len(), 1, "{made:?}");
}

#[test]
fn a_targeted_apply_makes_only_its_targets_and_leaves_the_phase_unrecorded() {
    let cloud = Cloud::start(0);
    let dir = stack_copy();
    let run =
        cloud.terrace(dir.path(), &["apply", "--phase", "block-storage", "--target", "server.app", "--auto-approve"]);
    assert_eq!(run.code, 0, "{}", run.transcript());
    // The server, and what it depends on: the bucket, and the secrets and key pairs its database
    // configuration reads.
    assert_eq!(
        cloud.census(),
        [("buckets".to_owned(), 1), ("primary_ips".to_owned(), 2), ("servers".to_owned(), 1)].into()
    );
    let state = state_json(dir.path());
    assert!(state["phase"].is_null(), "part of a phase is not the phase");
    let recorded: Vec<&String> = state["resources"].as_object().expect("resources").keys().collect();
    assert_eq!(
        recorded,
        [
            "bucket.backups",
            "postgres.main.keypair.login",
            "postgres.main.keypair.shared",
            "postgres.main.secret.password",
            "postgres.main.secret.replication",
            "server.app"
        ]
    );
    apply(&cloud, dir.path(), "block-storage");
    assert_cloud_matches_state(&cloud, dir.path());
    assert_eq!(state_json(dir.path())["phase"], "block-storage");
}

#[test]
fn delete_protection_is_honoured_and_named() {
    let cloud = Cloud::start(0);
    let dir = super::support::fixture(
        r#"
//- terrace.hcl
stack "guarded" {
  phases = ["one"]
}
//- one.hcl
phase "one" {
  description = "a protected server"
}

server "db" {
  server_type       = "cpx22"
  location          = "fsn1"
  delete_protection = true
  rebuild_protection = true
}
"#,
    );
    let run = cloud.terrace(dir.path(), &["apply", "--auto-approve"]);
    assert_eq!(run.code, 0, "{}", run.transcript());
    let server = &cloud.list("servers")[0];
    assert_eq!(server["protection"]["delete"], true, "the protection was set after the create");
    assert_converged(&cloud, dir.path());
    let destroyed = cloud.terrace(dir.path(), &["destroy", "--auto-approve"]);
    assert_eq!(destroyed.code, 1, "{}", destroyed.transcript());
    assert!(destroyed.stderr.contains("delete server `server.db`"), "{}", destroyed.stderr);
    assert!(destroyed.stderr.contains("protected"), "{}", destroyed.stderr);
    assert_eq!(cloud.list("servers").len(), 1, "the protected server stays");
    assert!(state_json(dir.path())["resources"]["server.db"]["id"].is_string(), "and stays recorded");
}

#[test]
fn secrets_and_templates_are_resolved_at_apply_and_never_shown() {
    let cloud = Cloud::start(0);
    let dir = super::support::fixture(
        r##"
//- terrace.hcl
stack "templated" {
  phases = ["one"]
}
//- one.hcl
phase "one" {
  description = "a generated password and strings made of computed values"
}

secret "db" {
  length = 24
}

server "app" {
  server_type = "cpx22"
  location    = "fsn1"
  user_data   = "#cloud-config\n# password: ${secret.db.value}\n"
}

output "URL" {
  value = "http://${server.app.ipv4_address}:8080/"
}

output "PASSWORD" {
  value     = secret.db.value
  sensitive = true
}
"##,
    );
    let plan = cloud.terrace(dir.path(), &["plan"]);
    assert_eq!(plan.code, 0, "{}", plan.transcript());
    assert!(plan.stdout.contains("+ URL      = (known after apply)"), "{}", plan.stdout);
    let run = cloud.terrace(dir.path(), &["apply", "--auto-approve"]);
    assert_eq!(run.code, 0, "{}", run.transcript());
    let ip = cloud.list("servers")[0]["public_net"]["ipv4"]["ip"].as_str().expect("an IPv4").to_owned();
    let env = cloud.terrace(dir.path(), &["output", "--format", "env"]);
    assert!(env.stdout.contains(&format!("URL=http://{ip}:8080/")), "{}", env.stdout);
    assert!(env.stdout.contains("PASSWORD is sensitive"), "{}", env.stdout);
    let shown = cloud.terrace(dir.path(), &["output", "--format", "env", "--show-sensitive"]);
    let password = shown
        .stdout
        .lines()
        .find_map(|l| l.strip_prefix("PASSWORD="))
        .map(|p| p.trim_matches('"').to_owned())
        .expect("the password with --show-sensitive");
    assert_eq!(password.len(), 24, "{password}");
    assert!(password.chars().all(|c| c.is_ascii_alphanumeric()));
    // The server got the password in its cloud-init; no output but --show-sensitive shows it.
    let state = std::fs::read_to_string(dir.path().join("terrace.state.json")).expect("state");
    assert!(state.contains(&format!("# password: {password}")), "user_data was rendered with it");
    let replan = cloud.terrace(dir.path(), &["plan", "--detailed-exitcode"]);
    assert_eq!(replan.code, 0, "a second plan shows no changes:\n{}", replan.transcript());
    let shown_state = cloud.terrace(dir.path(), &["state", "show", "secret.db"]);
    let mut seen = vec![plan.stdout, run.stdout, run.stderr, env.stdout, replan.stdout, shown_state.stdout];
    // Plans that show the recorded values (a destroy shows every `before`), in every format.
    for format in ["text", "json", "markdown"] {
        let destroy = cloud.terrace(dir.path(), &["plan", "--destroy", "--format", format]);
        assert_eq!(destroy.code, 0, "{}", destroy.transcript());
        seen.push(destroy.stdout);
    }
    for text in &seen {
        assert!(!text.contains(&password), "the password leaked:\n{text}");
    }
}

/// What the app gets from a phase with a database service: the URL through PgBouncer with the
/// generated password (only when asked for), and how to restore the database.
fn assert_app_outputs(cloud: &Cloud, dir: &std::path::Path) {
    let hidden = cloud.terrace(dir, &["output", "DATABASE_URL"]);
    assert_eq!(hidden.code, 1, "{}", hidden.transcript());
    assert!(hidden.stderr.contains("is sensitive"), "{}", hidden.stderr);
    let url = cloud.terrace(dir, &["output", "DATABASE_URL", "--show-sensitive"]);
    assert_eq!(url.code, 0, "{}", url.transcript());
    let url = url.stdout.trim();
    let host = cloud
        .list("servers")
        .into_iter()
        .find(|s| s["labels"]["terrace-address"] == "postgres.main.server.primary")
        .and_then(|s| s["private_net"][0]["ip"].as_str().map(str::to_owned))
        .expect("the database server's private IP");
    let prefix = "postgres://business_logic_user:";
    assert!(url.starts_with(prefix), "{url}");
    assert!(url.ends_with(&format!("@{host}:6432/business_logic_app")), "through PgBouncer: {url}");
    let password = &url[prefix.len()..url.find('@').expect("an @")];
    assert_eq!(password.len(), 32, "a generated password: {password}");
    let restore = cloud.terrace(dir, &["output", "RESTORE_PROCEDURE"]);
    assert_eq!(restore.code, 0, "{}", restore.transcript());
    assert!(restore.stdout.contains("Restoring the PostgreSQL database business_logic_app"), "{}", restore.stdout);
    assert!(restore.stdout.contains("s3://fastbots-backups/"), "{}", restore.stdout);
    assert!(!restore.stdout.contains(password), "the procedure holds no secret");
}
