//! The reachability check against small phases, one layer at a time.

use std::path::Path;

use terrace_providers::pricing::Catalog;

use super::index::{Requirement, parse_selector};
use crate::compile::VarInputs;
use crate::diag::Diagnostic;
use crate::model::{Compiled, Source};
use crate::pipeline::load;

const EU: &str = r#"
network "eu" {
  ip_range = "10.0.0.0/16"
  subnet {
network_zone = "eu-central"
ip_range     = "10.0.1.0/24"
  }
}
"#;

/// Compiles the only phase of a stack whose `p.hcl` holds `body` after its phase block.
fn compile(body: &str) -> Compiled {
    let dir = tempfile::tempdir().expect("temp dir");
    std::fs::write(dir.path().join("terrace.hcl"), "stack \"s\" { phases = [\"p\"] }\n").expect("write");
    std::fs::write(dir.path().join("p.hcl"), format!("phase \"p\" {{}}\n{body}")).expect("write");
    let stack = load(dir.path()).stack.expect("the stack loads");
    let (compiled, diags) = crate::compile::compile(&stack, "p", &VarInputs::default(), &Catalog::embedded());
    compiled.unwrap_or_else(|| panic!("the phase compiles: {:?}", diags.into_sorted()))
}

/// The validator's errors on a compiled phase.
fn errors_of(compiled: &Compiled) -> Vec<Diagnostic> {
    super::super::validate(compiled, &Catalog::embedded()).into_sorted().into_iter().filter(|d| d.is_error()).collect()
}

fn errors(body: &str) -> Vec<Diagnostic> {
    errors_of(&compile(body))
}

/// Exactly one error, holding every phrase (in its summary, label, detail or hint).
fn check(body: &str, phrases: &[&str]) -> Diagnostic {
    let found = errors(body);
    assert_eq!(found.len(), 1, "one error expected: {found:#?}");
    let diagnostic = found.into_iter().next().expect("one error");
    let text = format!(
        "{}\n{}\n{}\n{}",
        diagnostic.summary,
        diagnostic.label.as_deref().unwrap_or_default(),
        diagnostic.detail.as_deref().unwrap_or_default(),
        diagnostic.hint.as_deref().unwrap_or_default()
    );
    for phrase in phrases {
        assert!(text.contains(phrase), "{phrase:?} not in:\n{text}");
    }
    diagnostic
}

fn passes(body: &str) {
    let found = errors(body);
    assert!(found.is_empty(), "no error expected: {found:#?}");
}

#[test]
fn every_bundled_phase_reaches_its_services() {
    let catalog = Catalog::embedded();
    let stack = load(&Path::new(env!("CARGO_MANIFEST_DIR")).join("../phases")).stack.expect("the phases load");
    for phase in &stack.phases {
        let (compiled, diags) = crate::compile::compile(&stack, phase, &VarInputs::default(), &catalog);
        let compiled = compiled.unwrap_or_else(|| panic!("{phase} compiles: {:?}", diags.into_sorted()));
        let found = errors_of(&compiled);
        assert!(found.is_empty(), "{phase}: {found:#?}");
    }
}

fn replica_in_ashburn(clients: &str) -> String {
    format!(
        r#"{EU}
server "app" {{
  count       = 2
  server_type = "cpx22"
  location    = "fsn1"
  network     = network.eu
}}
postgres "db" {{
  server_type      = "cpx22"
  location         = "fsn1"
  storage_gb       = 20
  pgbouncer        = true
  replicas         = 1
  replica_location = "ash"
  network          = network.eu
  {clients}
}}
"#
    )
}

#[test]
fn a_replica_in_another_zone_serves_its_written_clients_through_its_firewall() {
    // Without `clients`, a replica outside the network (kept for disaster recovery) serves no
    // one, and nothing is required of it.
    passes(&replica_in_ashburn(""));
    // Written in `clients`, the app servers are let through its firewall and admitted over TLS;
    // the replica replicates over TLS from the primary's address.
    let mut compiled = compile(&replica_in_ashburn("clients = [server.app]"));
    assert!(errors_of(&compiled).is_empty());
    // A firewall that does not open the ports to them blocks them, and says where.
    let firewall: crate::addr::Address = "postgres.db.firewall.postgres".parse().expect("an address");
    let rules = compiled.resources.get_mut(&firewall).and_then(|f| f.attrs.get_mut("rule")).expect("rules");
    let crate::value::Value::List(rules) = rules else { panic!("a list of rules") };
    for rule in rules.iter_mut() {
        if let crate::value::Value::Map(rule) = rule
            && let Some(crate::value::Value::List(sources)) = rule.get_mut("source_ips")
        {
            sources
                .retain(|source| !source.references().iter().any(|r| r.address.to_string().starts_with("server.app")));
        }
    }
    let found = errors_of(&compiled);
    assert_eq!(found.len(), 1, "{found:#?}");
    let text = format!("{}\n{}", found[0].summary, found[0].detail.as_deref().unwrap_or_default());
    for phrase in [
        "`server.app[0]` and `server.app[1]` cannot reach `postgres.db` (server.replica[0], ports 5432 PostgreSQL and 6432 PgBouncer)",
        "the firewall `postgres.db.firewall.postgres` does not open 5432 and 6432 to their public addresses",
        "blocked at: Hetzner firewall",
    ] {
        assert!(text.contains(phrase), "{phrase:?} not in:\n{text}");
    }
    assert!(found[0].span.is_some());
}

fn redis_with_a_client_in(location: &str, network: &str) -> String {
    format!(
        r#"{EU}
server "worker" {{
  server_type = "cpx21"
  location    = "{location}"
  {network}
}}
redis "cache" {{
  memory_mb   = 256
  server_type = "cpx12"
  location    = "fsn1"
  network     = network.eu
  clients     = [server.worker]
}}
"#
    )
}

#[test]
fn redis_is_not_reached_over_the_public_internet() {
    check(
        &redis_with_a_client_in("ash", ""),
        &[
            "`server.worker` cannot reach `redis.cache` (server.primary, port 6379 Redis)",
            "terrace serves Redis without TLS",
            "blocked at: TLS",
            "give each region its own Redis",
        ],
    );
    passes(&redis_with_a_client_in("nbg1", "network = network.eu"));
}

fn service_on_a_host(clients: &str) -> String {
    format!(
        r#"
server "app" {{
  server_type = "cpx22"
  image       = "docker-ce"
  location    = "fsn1"
}}
server "worker" {{
  server_type = "cpx22"
  location    = "fsn1"
}}
postgres "main" {{
  on         = server.app
  storage_gb = 20
  {clients}
}}
"#
    )
}

#[test]
fn a_service_on_a_host_without_a_network_serves_that_host_only() {
    // Its host's processes and containers are admitted on the loopback and docker0.
    passes(&service_on_a_host(""));
    // `clients` cannot be written with `on` (the compiler says so); were there another
    // consumer, it would be blocked where the service listens.
    let mut compiled = compile(&service_on_a_host(""));
    compiled.composites[0].clients = vec!["server.worker".parse().expect("an address")];
    let found = errors_of(&compiled);
    assert_eq!(found.len(), 1, "{found:#?}");
    let text = format!("{}\n{}", found[0].summary, found[0].detail.as_deref().unwrap_or_default());
    for phrase in [
        "`server.worker` cannot reach `postgres.main` (server.app, port 5432 PostgreSQL)",
        "it listens only on `server.app`'s loopback and docker0 bridge",
        "blocked at: listen addresses",
    ] {
        assert!(text.contains(phrase), "{phrase:?} not in:\n{text}");
    }
}

#[test]
fn a_client_without_a_public_ipv4_outside_the_network() {
    let body = |enabled: bool| {
        format!(
            r#"{EU}
server "worker" {{
  server_type = "cpx21"
  location    = "ash"
  public_net {{
ipv4_enabled = {enabled}
  }}
}}
postgres "db" {{
  server_type = "cpx22"
  location    = "fsn1"
  storage_gb  = 20
  network     = network.eu
  clients     = [server.worker]
}}
"#
        )
    };
    check(
        &body(false),
        &["they share no private network and `server.worker` has no public IPv4", "blocked at: network/zone"],
    );
    // With its IPv4, it is let through the firewall by its address and admitted over TLS.
    passes(&body(true));
}

fn web(target: &str, extra_rule: &str) -> String {
    format!(
        r#"{EU}
server "app" {{
  count       = 2
  server_type = "cpx22"
  location    = "fsn1"
  network     = network.eu
  labels      = {{ role = "app" }}
}}
firewall "web" {{
  rule {{
direction  = "in"
protocol   = "tcp"
port       = "80"
source_ips = ["0.0.0.0/0", "::/0"]
  }}
  {extra_rule}
  apply_to {{
label_selector = "role=app"
  }}
}}
load_balancer "web" {{
  type     = "lb11"
  location = "fsn1"
  network  = network.eu
  target {{
{target}
  }}
  service {{
protocol         = "http"
listen_port      = 80
destination_port = 80
health_check {{
  protocol = "http"
  port     = 4000
  path     = "/health"
}}
  }}
}}
"#
    )
}

#[test]
fn a_load_balancer_reaches_its_targets_on_their_public_ips_by_default() {
    check(
        &web("server = server.app", ""),
        &[
            "`load_balancer.web` cannot reach its targets `server.app[0]` and `server.app[1]` on port 4000 (health check)",
            "the firewall `firewall.web` does not open 4000 to the load balancer's public address",
            "set `use_private_ip = true`",
        ],
    );
    // A label selector picks the same servers.
    check(&web("label_selector = \"role=app\"", ""), &["cannot reach its targets `server.app[0]` and `server.app[1]`"]);
    // Their private IPs, over the network, which firewalls do not filter.
    passes(&web("server = server.app\n    use_private_ip = true", ""));
    // Or a rule for the load balancer's address, in a port range.
    let rule = r#"rule {
direction  = "in"
protocol   = "tcp"
port       = "3000-4999"
source_ips = ["${load_balancer.web.ipv4_address}/32"]
  }"#;
    passes(&web("server = server.app", rule));
}

#[test]
fn selected_targets_on_their_private_ips_need_the_load_balancers_network() {
    let selected = "label_selector = \"role=app\"\n    use_private_ip = true";
    passes(&web(selected, ""));
    let elsewhere = web(selected, "").replace("  network  = network.eu\n  target", "  target");
    check(
        &elsewhere,
        &[
            "`load_balancer.web` cannot reach its targets `server.app[0]` and `server.app[1]` on ports 80 (service destination) and 4000 (health check)",
            "`use_private_ip = true`, but they share no network",
            "blocked at: network/zone",
        ],
    );
}

#[test]
fn a_public_target_needs_a_public_ipv4() {
    let body = r#"
server "app" {
  server_type = "cpx22"
  location    = "fsn1"
  public_net {
ipv4_enabled = false
  }
}
load_balancer "web" {
  type     = "lb11"
  location = "fsn1"
  target {
server = server.app
  }
  service {
protocol         = "tcp"
listen_port      = 443
destination_port = 8443
  }
}
"#;
    check(
        body,
        &[
            "`load_balancer.web` cannot reach its target `server.app` on port 8443 (service destination)",
            "`server.app` has no public IPv4",
        ],
    );
}

fn database_on_a_networked_host(firewall: &str) -> String {
    format!(
        r#"{EU}
server "db" {{
  server_type = "cpx22"
  location    = "fsn1"
  network     = network.eu
  {firewall}
}}
firewall "db" {{
  rule {{
direction  = "in"
protocol   = "tcp"
port       = "22"
source_ips = ["0.0.0.0/0", "::/0"]
  }}
}}
firewall "open" {{
  rule {{
direction  = "in"
protocol   = "tcp"
port       = "5432"
source_ips = ["0.0.0.0/0"]
  }}
}}
postgres "main" {{
  on         = server.db
  storage_gb = 20
}}
"#
    )
}

#[test]
fn a_service_listening_everywhere_is_not_open_to_the_internet() {
    check(
        &database_on_a_networked_host(""),
        &[
            "`postgres.main` (server.db, port 5432 PostgreSQL) is reachable from the internet",
            "no firewall applies to `server.db`",
        ],
    );
    check(
        &database_on_a_networked_host("firewalls = [firewall.db, firewall.open]"),
        &["is reachable from the internet: the firewall `firewall.open` opens 5432 to 0.0.0.0/0"],
    );
    passes(&database_on_a_networked_host("firewalls = [firewall.db]"));
}

#[test]
fn a_firewall_opened_by_label_exposes_a_service_server() {
    let body = format!(
        r#"{EU}
firewall "everyone" {{
  rule {{
direction  = "in"
protocol   = "tcp"
port       = "6000-6999"
source_ips = ["::/0"]
  }}
  apply_to {{
label_selector = "tier in (cache, queue),!legacy"
  }}
}}
redis "cache" {{
  memory_mb   = 256
  server_type = "cpx12"
  location    = "fsn1"
  network     = network.eu
  labels      = {{ tier = "cache" }}
}}
"#
    );
    check(
        &body,
        &[
            "`redis.cache` (server.primary, port 6379 Redis) is reachable from the internet: the firewall `firewall.everyone` opens 6379 to ::/0",
        ],
    );
}

fn client_of_a_networked_host() -> String {
    format!(
        r#"{EU}
server "db" {{
  server_type = "cpx22"
  location    = "fsn1"
  network     = network.eu
  firewalls   = [firewall.db]
}}
server "worker" {{
  server_type = "cpx21"
  location    = "ash"
}}
firewall "db" {{
  rule {{
direction  = "in"
protocol   = "tcp"
port       = "5432"
source_ips = [server.worker.ipv4_cidr]
  }}
}}
postgres "main" {{
  on         = server.db
  storage_gb = 20
  clients    = [server.worker]
}}
"#
    )
}

#[test]
fn access_rules_of_a_service_on_a_host_admit_no_public_client() {
    // `clients` cannot be written with `on` (the compiler says so); were there one outside the
    // host's network, its access rules would not admit it.
    let mut compiled = compile(&client_of_a_networked_host().replace("  clients    = [server.worker]\n", ""));
    assert!(errors_of(&compiled).is_empty());
    compiled.composites[0].clients = vec!["server.worker".parse().expect("an address")];
    let found = errors_of(&compiled);
    assert_eq!(found.len(), 1, "{found:#?}");
    let text = format!(
        "{}\n{}\n{}",
        found[0].summary,
        found[0].detail.as_deref().unwrap_or_default(),
        found[0].hint.as_deref().unwrap_or_default()
    );
    for phrase in [
        "`server.worker` cannot reach `postgres.main` (server.db, port 5432 PostgreSQL)",
        "its access rules (pg_hba.conf) admit no connection from its public address",
        "blocked at: access rules",
        "drop `on`",
    ] {
        assert!(text.contains(phrase), "{phrase:?} not in:\n{text}");
    }
    // Servers of its own admit a client written in `clients` by its address, over TLS.
    let own = client_of_a_networked_host().replace(
        "on         = server.db",
        "server_type = \"cpx22\"\n  location    = \"fsn1\"\n  network     = network.eu",
    );
    passes(&own);
}

#[test]
fn replication_and_tls_are_read_from_the_access_rules() {
    let mut compiled = compile(&replica_in_ashburn("clients = [server.app]"));
    assert!(errors_of(&compiled).is_empty());
    let composite = &mut compiled.composites[0];
    let primary = composite.endpoints.iter_mut().find(|e| e.role == "primary").expect("a primary");
    let admits = primary.admits.as_mut().expect("access rules");
    // The replica's line lost: it cannot replicate.
    let replication: Vec<_> = admits.iter().filter(|a| a.replication).cloned().collect();
    admits.retain(|a| !a.replication);
    let found = errors_of(&compiled);
    assert_eq!(found.len(), 1, "{found:#?}");
    assert!(
        found[0].summary.starts_with(
            "`postgres.db.server.replica[0]` cannot replicate from `postgres.db` (server.primary, port 5432 PostgreSQL): its access rules (pg_hba.conf) admit no replication from its public address"
        ),
        "{}",
        found[0].summary
    );
    // Back, but as `host` rather than `hostssl`: the password would cross the internet in clear.
    let composite = &mut compiled.composites[0];
    let primary = composite.endpoints.iter_mut().find(|e| e.role == "primary").expect("a primary");
    let admits = primary.admits.as_mut().expect("access rules");
    admits.extend(replication.into_iter().map(|mut a| {
        assert!(matches!(a.source, Source::PublicIp(_)) && a.tls_only);
        a.tls_only = false;
        a
    }));
    let found = errors_of(&compiled);
    assert_eq!(found.len(), 1, "{found:#?}");
    assert!(found[0].summary.contains("without TLS (`host`, not `hostssl`)"), "{}", found[0].summary);
    assert!(found[0].detail.as_deref().is_some_and(|d| d.contains("blocked at: TLS")));
}

#[test]
fn the_instances_of_a_counted_consumer_make_one_diagnostic() {
    let body = format!(
        r#"{EU}
server "worker" {{
  count       = 40
  server_type = "cpx21"
  location    = "ash"
}}
redis "cache" {{
  memory_mb   = 256
  server_type = "cpx12"
  location    = "fsn1"
  network     = network.eu
  clients     = [server.worker]
}}
"#
    );
    check(
        &body,
        &["`server.worker[0]`, `server.worker[1]`, `server.worker[2]` and 37 more cannot reach `redis.cache`"],
    );
}

#[test]
fn label_selectors() {
    assert_eq!(
        parse_selector("role=app, env!=test,!legacy,tier in (a, b),zone notin (x),managed"),
        Some(vec![
            Requirement::Equals("role".into(), "app".into()),
            Requirement::NotEquals("env".into(), "test".into()),
            Requirement::Absent("legacy".into()),
            Requirement::In("tier".into(), vec!["a".into(), "b".into()]),
            Requirement::NotIn("zone".into(), vec!["x".into()]),
            Requirement::Exists("managed".into()),
        ])
    );
    assert_eq!(parse_selector("role==app"), Some(vec![Requirement::Equals("role".into(), "app".into())]));
    assert_eq!(parse_selector("a b"), None);
    assert_eq!(parse_selector(""), None);
}
