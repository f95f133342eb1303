//! Unit tests of the compiler: references, `count`, `extends`, variables and composite expansion,
//! on stacks written as `//- path` fixtures.

use std::collections::BTreeMap;

use terrace_providers::pricing::Catalog;

use super::VarInputs;
use crate::addr::Address;
use crate::diag::Diagnostic;
use crate::kind::Kind;
use crate::model::Compiled;
use crate::pipeline::{compile_phase, load};
use crate::value::Value;

const STACK: &str = "//- terrace.hcl\nstack \"s\" { phases = [\"one\", \"two\"] }\n";

/// Compiles `phase` of a fixture; returns the result and the rendered diagnostic summaries.
fn compile_with(fixture: &str, phase: &str, inputs: &VarInputs) -> (Option<Compiled>, Vec<Diagnostic>) {
    let dir = tempfile::tempdir().expect("temp dir");
    for part in fixture.split("//- ").filter(|p| !p.trim().is_empty()) {
        let (path, body) = part.split_once('\n').expect("a path line");
        std::fs::write(dir.path().join(path.trim()), body).expect("write");
    }
    let loaded = load(dir.path());
    let mut diags: Vec<Diagnostic> = loaded.diags.clone().into_sorted();
    let stack = loaded.stack.expect("the stack loads");
    let (compiled, more) = compile_phase(&stack, phase, inputs, &Catalog::embedded());
    diags.extend(more.into_sorted());
    (compiled, diags)
}

fn compile(fixture: &str, phase: &str) -> Compiled {
    let (compiled, diags) = compile_with(fixture, phase, &VarInputs::default());
    let errors: Vec<&str> = diags.iter().filter(|d| d.is_error()).map(|d| d.summary.as_str()).collect();
    compiled.unwrap_or_else(|| panic!("compilation failed: {errors:?}"))
}

fn addr(text: &str) -> Address {
    text.parse().expect("an address")
}

fn addresses(compiled: &Compiled) -> Vec<String> {
    compiled.resources.iter().map(|(a, _)| a.to_string()).collect()
}

fn attr<'c>(compiled: &'c Compiled, address: &str, name: &str) -> &'c Value {
    compiled.resource(&addr(address)).unwrap_or_else(|| panic!("no {address}")).attrs.get(name).unwrap_or(&Value::Null)
}

const TWO_PHASES: &str = r#"
//- one.hcl
phase "one" { users = "1-10" }
variable "type" { default = "cpx22" }
locals {
  base = "app"
  full = "${local.base}-web"
}
network "private" {
  ip_range = "10.0.0.0/16"
  subnet {
    network_zone = "eu-central"
    ip_range     = "10.0.1.0/24"
  }
}
server "app" {
  count       = 3
  name        = "${local.full}-${count.index}"
  server_type = var.type
  location    = "fsn1"
  network     = network.private
}
volume "data" {
  size   = 10
  server = server.app[1]
}
server "db" {
  server_type = "cpx32"
  location    = server.app[0].location
}
output "second" { value = server.app[1].name }
//- two.hcl
phase "two" {
  extends = "one"
  remove  = ["server.db", "output.second"]
}
server "app" {
  server_type = "cpx32"
  location    = "nbg1"
  network     = network.private
}
volume "data" {
  size   = 10
  server = server.app
}
bucket "b" { location = "fsn1" }
"#;

#[test]
fn references_become_graph_edges() {
    let compiled = compile(&format!("{STACK}{TWO_PHASES}"), "one");
    let deps = |a: &str| -> Vec<String> {
        compiled.resources.dependencies(&addr(a)).iter().map(ToString::to_string).collect()
    };
    assert_eq!(deps("server.app[0]"), ["network.private"]);
    assert_eq!(deps("volume.data"), ["server.app[1]"]);
    // Reading a configured attribute of another block gives its value (and an edge).
    assert_eq!(attr(&compiled, "server.db", "location"), &Value::str("fsn1"));
    assert_eq!(deps("server.db"), ["server.app[0]"]);
    let order: Vec<String> =
        compiled.resources.topological_order().expect("acyclic").iter().map(ToString::to_string).collect();
    let position = |a: &str| order.iter().position(|x| x == a).expect("in order");
    assert!(position("network.private") < position("server.app[0]"));
    assert!(position("server.app[1]") < position("volume.data"));
}

#[test]
fn count_makes_instances_with_their_index() {
    let compiled = compile(&format!("{STACK}{TWO_PHASES}"), "one");
    assert_eq!(
        addresses(&compiled),
        ["network.private", "server.app[0]", "server.app[1]", "server.app[2]", "server.db", "volume.data"]
    );
    assert_eq!(attr(&compiled, "server.app[2]", "name"), &Value::str("app-web-2"));
    assert_eq!(attr(&compiled, "server.app[0]", "server_type"), &Value::str("cpx22"));
    let output = compiled.outputs.iter().find(|o| o.name == "second").expect("output");
    assert_eq!(output.value, Value::str("app-web-1"));
}

#[test]
fn extends_adds_overrides_and_removes_blocks() {
    let compiled = compile(&format!("{STACK}{TWO_PHASES}"), "two");
    // server.app is overridden as a whole (no count any more), server.db is removed, bucket.b is
    // added, the network and the variable are inherited, and so is the volume, redefined here.
    assert_eq!(addresses(&compiled), ["bucket.b", "network.private", "server.app", "volume.data"]);
    assert_eq!(attr(&compiled, "server.app", "server_type"), &Value::str("cpx32"));
    assert_eq!(attr(&compiled, "server.app", "location"), &Value::str("nbg1"));
    assert_eq!(
        attr(&compiled, "volume.data", "server").as_ref().map(|r| r.address.to_string()),
        Some("server.app".into())
    );
    assert_eq!(compiled.phase.extends.as_deref(), Some("one"));
    assert_eq!(compiled.phase.users, None, "users is the phase's own, not inherited");
}

#[test]
fn variables_take_cli_then_environment_then_default() {
    let fixture = format!("{STACK}{TWO_PHASES}");
    let mut inputs = VarInputs::default();
    inputs.env.insert("type".into(), "cx33".into());
    let (compiled, _) = compile_with(&fixture, "one", &inputs);
    assert_eq!(attr(&compiled.expect("compiles"), "server.app[0]", "server_type"), &Value::str("cx33"));
    inputs.cli.insert("type".into(), "ccx13".into());
    let (compiled, _) = compile_with(&fixture, "one", &inputs);
    assert_eq!(attr(&compiled.expect("compiles"), "server.app[0]", "server_type"), &Value::str("ccx13"));
    inputs.cli.insert("nope".into(), "1".into());
    let (compiled, diags) = compile_with(&fixture, "one", &inputs);
    assert!(compiled.is_none());
    assert!(diags.iter().any(|d| d.summary.contains("no variable `nope`")), "{diags:?}");
}

const SERVICES: &str = r#"
//- one.hcl
phase "one" {}
network "private" {
  ip_range = "10.0.0.0/16"
  subnet {
    network_zone = "eu-central"
    ip_range     = "10.0.1.0/24"
  }
}
bucket "backups" { location = "fsn1" }
server "app" {
  server_type = "cpx22"
  location    = "hel1"
}
postgres "main" {
  server_type = "cpx22"
  location    = "fsn1"
  storage_gb  = 40
  replicas    = 2
  pgbouncer   = true
  network     = network.private
  backup {
    bucket = bucket.backups
  }
}
postgres "local" {
  on         = server.app
  storage_gb = 20
}
postgres "geo" {
  server_type         = "cpx22"
  location            = "fsn1"
  storage_gb          = 10
  replicas            = 1
  replica_location    = "ash"
  replica_server_type = "cpx21"
  network             = network.private
}
redis "cache" {
  memory_mb   = 256
  server_type = "cpx12"
  location    = "fsn1"
  network     = network.private
}
output "db" { value = postgres.main.primary_private_ip }
output "read" { value = postgres.main.replica_private_ips[1] }
//- two.hcl
phase "two" { extends = "one" }
"#;

fn members(compiled: &Compiled, composite: &str) -> Vec<String> {
    compiled.composite(&addr(composite)).expect("composite").members.iter().map(ToString::to_string).collect()
}

#[test]
fn postgres_expands_to_servers_volumes_firewall_and_placement_group() {
    let compiled = compile(&format!("{STACK}{SERVICES}"), "one");
    let mut main = members(&compiled, "postgres.main");
    main.sort();
    assert_eq!(
        main,
        [
            "postgres.main.firewall.postgres",
            "postgres.main.host.primary",
            "postgres.main.host.replica[0]",
            "postgres.main.host.replica[1]",
            "postgres.main.keypair.login",
            "postgres.main.keypair.primary",
            "postgres.main.keypair.replica[0]",
            "postgres.main.keypair.replica[1]",
            "postgres.main.placement_group.spread",
            "postgres.main.secret.password",
            "postgres.main.secret.replication",
            "postgres.main.server.primary",
            "postgres.main.server.replica[0]",
            "postgres.main.server.replica[1]",
            "postgres.main.volume.primary",
            "postgres.main.volume.replica[0]",
            "postgres.main.volume.replica[1]",
        ]
    );
    for volume in ["postgres.main.volume.primary", "postgres.main.volume.replica[1]"] {
        assert_eq!(attr(&compiled, volume, "size"), &Value::Number(40.0));
    }
    let replica = compiled.resource(&addr("postgres.main.server.replica[1]")).expect("replica");
    assert_eq!(replica.composite, Some(addr("postgres.main")));
    assert_eq!(replica.ref_attr("network"), Some(&addr("network.private")));
    assert_eq!(replica.ref_attr("placement_group"), Some(&addr("postgres.main.placement_group.spread")));
    assert_eq!(
        compiled.resource(&addr("postgres.main.volume.replica[1]")).and_then(|v| v.ref_attr("server")),
        Some(&replica.address)
    );
    // The firewall opens PostgreSQL and PgBouncer to the private network only.
    let firewall = compiled.resource(&addr("postgres.main.firewall.postgres")).expect("firewall");
    let open: BTreeMap<String, Value> = firewall
        .blocks("rule")
        .into_iter()
        .filter_map(|r| Some((r.get("port")?.as_str()?.to_owned(), r.get("source_ips")?.clone())))
        .collect();
    assert_eq!(open["5432"], Value::List(vec![Value::str("10.0.0.0/16")]));
    assert_eq!(open["6432"], Value::List(vec![Value::str("10.0.0.0/16")]));
    assert_eq!(firewall.blocks("apply_to").len(), 3);
    // The composite depends on its backup bucket through every member.
    assert!(compiled.resources.dependencies(&addr("postgres.main.server.primary")).contains(&&addr("bucket.backups")));
    // Outputs read the composite's exports.
    let db = compiled.outputs.iter().find(|o| o.name == "db").expect("db");
    assert_eq!(db.value.as_ref().map(|r| r.to_string()), Some("postgres.main.server.primary.private_ip".into()));
    let read = compiled.outputs.iter().find(|o| o.name == "read").expect("read");
    assert_eq!(read.value.as_ref().map(|r| r.to_string()), Some("postgres.main.server.replica[1].private_ip".into()));
}

#[test]
fn every_service_server_gets_a_host_that_terrace_reaches_with_pinned_keys() {
    let compiled = compile(&format!("{STACK}{SERVICES}"), "one");
    let host = compiled.resource(&addr("postgres.main.host.replica[1]")).expect("the replica's host");
    assert_eq!(host.kind, Kind::Host);
    assert_eq!(host.ref_attr("server"), Some(&addr("postgres.main.server.replica[1]")));
    assert_eq!(host.attr("address").map(ToString::to_string), Some("(known after apply)".into()));
    let refs = |name: &str| -> Vec<String> {
        host.attr(name).map(|v| v.references().iter().map(|r| r.to_string()).collect()).unwrap_or_default()
    };
    assert_eq!(refs("address"), ["postgres.main.server.replica[1].ipv4_address"]);
    assert_eq!(refs("host_key"), ["postgres.main.keypair.replica[1].public_key"]);
    assert_eq!(refs("login_key"), ["postgres.main.keypair.login.private_key"]);
    assert!(host.attr("login_key").is_some_and(Value::holds_sensitive), "the login key is a secret");
    // Every file the server's cloud-init writes is kept on the host afterwards.
    let paths: Vec<&str> = host.blocks("file").iter().filter_map(|f| f.get("path")?.as_str()).collect();
    for path in
        ["/etc/terrace/postgres/postgresql.conf", "/etc/terrace/postgres/pg_hba.conf", "/etc/pgbouncer/pgbouncer.ini"]
    {
        assert!(paths.contains(&path), "{path} in {paths:?}");
    }
    // A replica's host is converged after its primary's, which admits it and keeps its slot.
    let deps: Vec<String> = compiled.resources.dependencies(&host.address).iter().map(ToString::to_string).collect();
    assert!(deps.contains(&"postgres.main.host.primary".to_owned()), "{deps:?}");
    assert!(deps.contains(&"postgres.main.server.replica[1]".to_owned()), "{deps:?}");
    // The server's first boot is handed its host key and terrace's login key.
    let server = compiled.resource(&addr("postgres.main.server.replica[1]")).expect("server");
    let user_data = server.attr("user_data").expect("user_data");
    let user_data_refs: Vec<String> = user_data.references().iter().map(|r| r.to_string()).collect();
    assert!(user_data_refs.contains(&"postgres.main.keypair.replica[1].private_key_escaped".to_owned()));
    assert!(user_data_refs.contains(&"postgres.main.keypair.login.public_key".to_owned()));
    let Value::Template(parts) = user_data else { panic!("a template: {user_data:?}") };
    let text: String = parts.iter().filter_map(Value::as_str).collect();
    assert!(text.contains("ssh_genkeytypes: [ed25519]"), "only the given host key: no other is made");
    // The private key goes in escaped on one line: a double-quoted YAML string around its placeholder.
    assert!(text.contains("  ed25519_private: \""), "{text}");
}

#[test]
fn a_service_on_an_existing_server_gets_only_its_volume() {
    let compiled = compile(&format!("{STACK}{SERVICES}"), "one");
    assert_eq!(
        members(&compiled, "postgres.local"),
        [
            "postgres.local.volume.data",
            "postgres.local.secret.password",
            "postgres.local.secret.replication",
            "postgres.local.keypair.login",
            "postgres.local.keypair.shared",
            "postgres.local.host.shared",
        ]
    );
    // The host's configuration is stopped before its volume goes (deletes run dependents first).
    let deps = compiled.resources.dependencies(&addr("postgres.local.host.shared"));
    assert!(deps.contains(&&addr("postgres.local.volume.data")) && deps.contains(&&addr("server.app")), "{deps:?}");
    assert_eq!(attr(&compiled, "postgres.local.volume.data", "location"), &Value::str("hel1"));
    assert_eq!(attr(&compiled, "postgres.local.volume.data", "size"), &Value::Number(20.0));
    assert_eq!(compiled.resources.dependencies(&addr("postgres.local.volume.data")), [&addr("server.app")]);
}

#[test]
fn a_replica_in_another_zone_replicates_over_the_public_network() {
    let compiled = compile(&format!("{STACK}{SERVICES}"), "one");
    let replica = compiled.resource(&addr("postgres.geo.server.replica[0]")).expect("replica");
    assert_eq!(replica.str_attr("location"), Some("ash"));
    assert_eq!(replica.str_attr("server_type"), Some("cpx21"));
    assert_eq!(replica.ref_attr("network"), None, "a private network does not span zones");
    assert!(replica.attr("placement_group").is_none(), "a spread group is per location");
    let primary = compiled.resource(&addr("postgres.geo.server.primary")).expect("primary");
    assert_eq!(primary.ref_attr("placement_group"), Some(&addr("postgres.geo.placement_group.spread")));
    let firewall = compiled.resource(&addr("postgres.geo.firewall.postgres")).expect("firewall");
    let rule = firewall.blocks("rule").into_iter().find(|r| r.get("port") == Some(&Value::str("5432"))).expect("5432");
    let sources: Vec<String> = rule["source_ips"].as_list().expect("list").iter().map(ToString::to_string).collect();
    assert_eq!(sources[0], "\"10.0.0.0/16\"");
    assert_eq!(sources.len(), 3, "the network, and each peer's public address: {sources:?}");
}

#[test]
fn redis_expands_to_a_server_a_firewall_and_a_placement_group() {
    let compiled = compile(&format!("{STACK}{SERVICES}"), "one");
    let mut cache = members(&compiled, "redis.cache");
    cache.sort();
    assert_eq!(
        cache,
        [
            "redis.cache.firewall.redis",
            "redis.cache.host.primary",
            "redis.cache.keypair.login",
            "redis.cache.keypair.primary",
            "redis.cache.placement_group.spread",
            "redis.cache.secret.password",
            "redis.cache.server.primary"
        ]
    );
    // In its group from the start, without replicas: a replica added later joins a running
    // service, where a group made then would power the primary off to take it in.
    let primary = compiled.resource(&addr("redis.cache.server.primary")).expect("primary");
    assert_eq!(primary.ref_attr("placement_group"), Some(&addr("redis.cache.placement_group.spread")));
    // The password is generated at apply; the URL holds it and the host, so both are secret.
    let url = compiled.composites.iter().find(|c| c.address == addr("redis.cache")).map(|c| &c.exports["url"]);
    assert!(url.is_some_and(|u| matches!(u, Value::Template(_)) && u.holds_sensitive()), "{url:?}");
    let firewall = compiled.resource(&addr("redis.cache.firewall.redis")).expect("firewall");
    assert!(firewall.blocks("rule").iter().any(|r| r.get("port") == Some(&Value::str("6379"))));
    assert_eq!(compiled.resource(&addr("redis.cache.server.primary")).map(|r| r.kind), Some(Kind::Server));
}

#[test]
fn an_output_of_a_secret_must_say_it_is_sensitive() {
    let fixture = r#"
//- terrace.hcl
stack "s" { phases = ["one"] }
//- one.hcl
phase "one" {}
redis "cache" {
  memory_mb   = 256
  server_type = "cpx12"
  location    = "fsn1"
}
output "url" { value = redis.cache.url }
output "hidden" {
  value     = redis.cache.password
  sensitive = true
}
"#;
    let (compiled, diags) = compile_with(fixture, "one", &VarInputs::default());
    assert!(compiled.is_none());
    let errors: Vec<&str> = diags.iter().filter(|d| d.is_error()).map(|d| d.summary.as_str()).collect();
    assert_eq!(errors, ["output `url` holds a sensitive value"]);
}
