//! The diagnostics corpus: broken stacks, one problem each, across every rule. Each must fail
//! `terrace validate` with exit code 1, name its problem, and print the snapshotted diagnostic.

use std::panic::{AssertUnwindSafe, catch_unwind};

use super::support::{Run, fixture, terrace};

/// A fixture that does not start with a `//-` marker is the body of `p.hcl`, after the
/// `phase "p" {}` line, in a stack whose only phase is `p`.
const ONE_PHASE_STACK: &str = "//- terrace.hcl\nstack \"s\" { phases = [\"p\"] }\n//- p.hcl\nphase \"p\" {}\n";

/// (snapshot name, phrases stderr must hold, fixture). Each fixture holds exactly one problem.
const CASES: &[(&str, &[&str], &str)] = &[
    // A private address used across network zones.
    (
        "private_ip_read_across_network_zones",
        &["reads the private IP of `server.db`", "private networks do not span network zones"],
        r#"
network "eu" {
  ip_range = "10.0.0.0/16"
  subnet {
    network_zone = "eu-central"
    ip_range     = "10.0.1.0/24"
  }
}

server "db" {
  server_type = "cpx22"
  location    = "fsn1"
  network     = network.eu
}

server "app_us" {
  server_type = "cpx21"
  location    = "ash"
  user_data   = "DB_HOST=${server.db.private_ip}"
}
"#,
    ),
    // Syntax.
    (
        "syntax_unclosed_brace",
        &["syntax error"],
        r#"
server "app" {
  server_type = "cpx22"
  location    = "fsn1"
"#,
    ),
    (
        "syntax_bad_token",
        &["syntax error"],
        r#"
server "app" {
  server_type = "cpx22" @
  location    = "fsn1"
}
"#,
    ),
    // Unknown names.
    (
        "unknown_block_kind",
        &["unknown block kind `sever`", "did you mean `server`?"],
        r#"
sever "app" {
  server_type = "cpx22"
  location    = "fsn1"
}
"#,
    ),
    (
        "unknown_attribute",
        &["unknown attribute `imgae`", "did you mean `image`?"],
        r#"
server "app" {
  server_type = "cpx22"
  location    = "fsn1"
  imgae       = "ubuntu-24.04"
}
"#,
    ),
    (
        "attribute_written_as_block",
        &["`labels`"],
        r#"
server "app" {
  server_type = "cpx22"
  location    = "fsn1"
  labels {
    role = "app"
  }
}
"#,
    ),
    (
        "block_written_as_attribute",
        &["`public_net`"],
        r#"
server "app" {
  server_type = "cpx22"
  location    = "fsn1"
  public_net = {
    ipv6_enabled = false
  }
}
"#,
    ),
    (
        "unknown_nested_block",
        &["unknown block `subnets`", "did you mean `subnet`?"],
        r#"
network "private" {
  ip_range = "10.0.0.0/16"
  subnets {
    network_zone = "eu-central"
    ip_range     = "10.0.1.0/24"
  }
}
"#,
    ),
    // Types.
    (
        "wrong_type_string_for_number",
        &["wrong type for `size`", "a whole number"],
        r#"
volume "data" {
  size     = "large"
  location = "fsn1"
}
"#,
    ),
    (
        "wrong_type_number_for_string",
        &["wrong type for `server_type`", "a string"],
        r#"
server "app" {
  server_type = 22
  location    = "fsn1"
}
"#,
    ),
    (
        "wrong_type_bool",
        &["wrong type for `backups`", "true or false"],
        r#"
server "app" {
  server_type = "cpx22"
  location    = "fsn1"
  backups     = "yes"
}
"#,
    ),
    (
        "wrong_type_enum_value",
        &["invalid value for `format`", "\"ext4\", \"xfs\""],
        r#"
volume "data" {
  size     = 10
  location = "fsn1"
  format   = "ntfs"
}
"#,
    ),
    (
        "wrong_type_labels_not_a_map",
        &["wrong type for `labels`", "a map of labels"],
        r#"
server "app" {
  server_type = "cpx22"
  location    = "fsn1"
  labels      = ["app"]
}
"#,
    ),
    (
        "wrong_type_reference_of_another_kind",
        &["wrong type for `network`", "a reference to a network"],
        r#"
server "web" {
  server_type = "cpx22"
  location    = "fsn1"
}

server "app" {
  server_type = "cpx22"
  location    = "fsn1"
  network     = server.web
}
"#,
    ),
    (
        "attribute_where_an_object_is_expected",
        &["wrong type for `network`", "a reference to a network"],
        r#"
network "private" {
  ip_range = "10.0.0.0/16"
  subnet {
    network_zone = "eu-central"
    ip_range     = "10.0.1.0/24"
  }
}

server "app" {
  server_type = "cpx22"
  location    = "fsn1"
  network     = network.private.ip_range
}
"#,
    ),
    // References.
    (
        "dangling_reference_to_a_block",
        &["reference to undeclared `network.private`"],
        r#"
server "app" {
  server_type = "cpx22"
  location    = "fsn1"
  network     = network.private
}
"#,
    ),
    (
        "dangling_reference_to_a_variable",
        &["reference to undeclared variable `var.region`"],
        r#"
server "app" {
  server_type = "cpx22"
  location    = var.region
}
"#,
    ),
    (
        "dangling_reference_to_a_local",
        &["reference to undeclared local value `local.region`"],
        r#"
server "app" {
  server_type = "cpx22"
  location    = local.region
}
"#,
    ),
    (
        "count_index_outside_count",
        &["`count.index` outside a block with `count`"],
        r#"
server "app" {
  name        = "app-${count.index}"
  server_type = "cpx22"
  location    = "fsn1"
}
"#,
    ),
    (
        "index_out_of_range",
        &["`server.app[2]` does not exist", "count = 2"],
        r#"
server "app" {
  count       = 2
  server_type = "cpx22"
  location    = "fsn1"
}

volume "data" {
  size   = 10
  server = server.app[2]
}
"#,
    ),
    (
        "counted_block_without_index",
        &["`server.app` has count, so it names 2 objects"],
        r#"
server "app" {
  count       = 2
  server_type = "cpx22"
  location    = "fsn1"
}

volume "data" {
  size   = 10
  server = server.app
}
"#,
    ),
    // Cycles and duplicates.
    (
        "cycle_between_locals",
        &["dependency cycle", "local.a", "local.b"],
        r#"
locals {
  a = local.b
  b = local.a
}

server "app" {
  server_type = "cpx22"
  location    = local.a
}
"#,
    ),
    (
        "cycle_between_resources",
        &["dependency cycle", "firewall.web", "server.app"],
        r#"
firewall "web" {
  rule {
    direction  = "in"
    protocol   = "tcp"
    port       = "22"
    source_ips = ["0.0.0.0/0"]
  }
  apply_to {
    server = server.app
  }
}

server "app" {
  server_type = "cpx22"
  location    = "fsn1"
  firewalls   = [firewall.web]
}
"#,
    ),
    (
        "duplicate_address",
        &["duplicate address `server.app`", "defined again here"],
        r#"
server "app" {
  server_type = "cpx22"
  location    = "fsn1"
}

server "app" {
  server_type = "cpx32"
  location    = "fsn1"
}
"#,
    ),
    (
        "duplicate_attribute",
        &["attribute `server_type` is set twice"],
        r#"
server "app" {
  server_type = "cpx22"
  location    = "fsn1"
  server_type = "cpx32"
}
"#,
    ),
    (
        "missing_required_attribute",
        &["missing the required attribute `size`"],
        r#"
volume "data" {
  location = "fsn1"
}
"#,
    ),
    // Phases and variables.
    (
        "extends_unknown_phase",
        &["`extends` names an unknown phase `base`"],
        r#"
//- terrace.hcl
stack "s" { phases = ["p"] }
//- p.hcl
phase "p" {
  extends = "base"
}
"#,
    ),
    (
        "extends_cycle",
        &["phases extend each other in a cycle"],
        r#"
//- terrace.hcl
stack "s" { phases = ["a", "b"] }
//- a.hcl
phase "a" {
  extends = "b"
}
//- b.hcl
phase "b" {
  extends = "a"
}
"#,
    ),
    (
        "remove_names_nothing",
        &["`remove` names `server.db`, which the extended phases do not define"],
        r#"
//- terrace.hcl
stack "s" { phases = ["base", "p"] }
//- base.hcl
phase "base" {}

server "app" {
  server_type = "cpx22"
  location    = "fsn1"
}
//- p.hcl
phase "p" {
  extends = "base"
  remove  = ["server.db"]
}
"#,
    ),
    (
        "phase_file_missing",
        &["phase `q` has no file q.hcl"],
        r#"
//- terrace.hcl
stack "s" { phases = ["p", "q"] }
//- p.hcl
phase "p" {}
"#,
    ),
    (
        "phase_block_name_mismatch",
        &["phase `q` is in the file of phase `p`"],
        r#"
//- terrace.hcl
stack "s" { phases = ["p"] }
//- p.hcl
phase "q" {}
"#,
    ),
    (
        "variable_without_value",
        &["variable `region` has no value"],
        r#"
variable "region" {
  description = "Where the servers run"
}

server "app" {
  server_type = "cpx22"
  location    = var.region
}
"#,
    ),
    (
        "unknown_function",
        &["unknown function `uppr`", "did you mean `upper`?"],
        r#"
server "app" {
  name        = uppr("app")
  server_type = "cpx22"
  location    = "fsn1"
}
"#,
    ),
    // Hetzner: servers and volumes.
    (
        "unknown_server_type",
        &["unknown server type \"cpx99\""],
        r#"
server "app" {
  server_type = "cpx99"
  location    = "fsn1"
}
"#,
    ),
    (
        "unknown_location",
        &["unknown location \"fsn2\""],
        r#"
server "app" {
  server_type = "cpx22"
  location    = "fsn2"
}
"#,
    ),
    (
        "server_type_not_sold_in_location",
        &["server type \"cx23\" is not sold in ash"],
        r#"
server "app" {
  server_type = "cx23"
  location    = "ash"
}
"#,
    ),
    (
        "volume_too_small",
        &["`size` must be a whole number from 10 to 10240, not 5"],
        r#"
volume "data" {
  size     = 5
  location = "fsn1"
}
"#,
    ),
    (
        "volume_too_large",
        &["`size` must be a whole number from 10 to 10240, not 20000"],
        r#"
volume "data" {
  size     = 20000
  location = "fsn1"
}
"#,
    ),
    // Numbers outside their attribute's domain, refused where they are written (before a
    // composite expands anything from them).
    (
        "volume_size_negative",
        &["`size` must be a whole number from 10 to 10240, not a number that far below it"],
        r#"
volume "data" {
  size     = -9223372036854775807
  location = "fsn1"
}
"#,
    ),
    (
        "postgres_storage_gb_negative",
        &["`storage_gb` must be a whole number from 10 to 10240, not -20"],
        r#"
postgres "main" {
  server_type = "cpx22"
  location    = "fsn1"
  storage_gb  = -20
}
"#,
    ),
    (
        "postgres_storage_gb_of_39_digits",
        &["`storage_gb` must be a whole number from 10 to 10240, not a number that large"],
        r#"
postgres "main" {
  server_type = "cpx22"
  location    = "fsn1"
  storage_gb  = 100000000000000000000000000000000000000
}
"#,
    ),
    (
        "postgres_replicas_beyond_32_bits",
        &["`replicas` must be a whole number from 0 to 16, not 4294967297"],
        r#"
postgres "main" {
  server_type = "cpx22"
  location    = "fsn1"
  storage_gb  = 20
  replicas    = 4294967297
}
"#,
    ),
    (
        "postgres_replicas_negative",
        &["`replicas` must be a whole number from 0 to 16, not -5"],
        r#"
postgres "main" {
  server_type = "cpx22"
  location    = "fsn1"
  storage_gb  = 20
  replicas    = -5
}
"#,
    ),
    (
        "postgres_replicas_a_million",
        &["`replicas` must be a whole number from 0 to 16, not 1000000"],
        r#"
postgres "main" {
  server_type = "cpx22"
  location    = "fsn1"
  storage_gb  = 20
  replicas    = 1000000
}
"#,
    ),
    (
        "postgres_migration_keep_days_negative",
        &["`migration_keep_days` must be a whole number from 0 to 3650, not -7"],
        r#"
postgres "main" {
  server_type = "cpx22"
  location    = "fsn1"
  storage_gb  = 20
  migration_keep_days = -7
}
"#,
    ),
    (
        "backup_retention_days_negative",
        &["`backup.retention_days` must be a whole number from 1 to 3650, not -30"],
        r#"
bucket "backups" {
  name     = "s-backups"
  location = "fsn1"
}

postgres "main" {
  server_type = "cpx22"
  location    = "fsn1"
  storage_gb  = 20
  backup {
    bucket         = bucket.backups
    retention_days = -30
  }
}
"#,
    ),
    (
        "redis_memory_mb_negative",
        &["`memory_mb` must be a whole number from 16 to 1048576, not -256"],
        r#"
redis "cache" {
  memory_mb   = -256
  server_type = "cpx12"
  location    = "fsn1"
}
"#,
    ),
    (
        "postgres_count_times_replicas_beyond_the_block_limit",
        &["`postgres.main` would make 170000 servers (count times 1 + replicas)"],
        r#"
postgres "main" {
  count       = 10000
  server_type = "cpx22"
  location    = "fsn1"
  storage_gb  = 20
  replicas    = 16
}
"#,
    ),
    (
        "volume_in_another_location_than_its_server",
        &["volume `volume.data` is in nbg1 but its server `server.app` is in fsn1"],
        r#"
server "app" {
  server_type = "cpx22"
  location    = "fsn1"
}

volume "data" {
  size     = 10
  location = "nbg1"
  server   = server.app
}
"#,
    ),
    // Hetzner: networks.
    (
        "network_range_not_private",
        &["network range 8.8.0.0/16 is not a private (RFC 1918) range"],
        r#"
network "private" {
  ip_range = "8.8.0.0/16"
}
"#,
    ),
    (
        "network_range_smaller_than_24",
        &["network range 10.0.0.0/25 is smaller than /24"],
        r#"
network "private" {
  ip_range = "10.0.0.0/25"
}
"#,
    ),
    (
        "subnet_outside_the_network",
        &["subnet 10.1.0.0/24 lies outside the network range 10.0.0.0/16"],
        r#"
network "private" {
  ip_range = "10.0.0.0/16"
  subnet {
    network_zone = "eu-central"
    ip_range     = "10.1.0.0/24"
  }
}
"#,
    ),
    (
        "overlapping_subnets",
        &["subnet 10.0.1.0/25 overlaps subnet[0] 10.0.1.0/24"],
        r#"
network "private" {
  ip_range = "10.0.0.0/16"
  subnet {
    network_zone = "eu-central"
    ip_range     = "10.0.1.0/24"
  }
  subnet {
    network_zone = "eu-central"
    ip_range     = "10.0.1.0/25"
  }
}
"#,
    ),
    (
        "unknown_network_zone",
        &["unknown network zone \"eu-west\""],
        r#"
network "private" {
  ip_range = "10.0.0.0/16"
  subnet {
    network_zone = "eu-west"
    ip_range     = "10.0.1.0/24"
  }
}
"#,
    ),
    (
        "server_outside_the_zones_of_its_network",
        &["`server.app` is in ash (network zone us-east)", "has no subnet in"],
        r#"
network "private" {
  ip_range = "10.0.0.0/16"
  subnet {
    network_zone = "eu-central"
    ip_range     = "10.0.1.0/24"
  }
}

server "app" {
  server_type = "cpx21"
  location    = "ash"
  network     = network.private
}
"#,
    ),
    (
        "private_ip_outside_the_subnet",
        &["private IP 10.0.2.5 is not inside a subnet of `network.private`"],
        r#"
network "private" {
  ip_range = "10.0.0.0/16"
  subnet {
    network_zone = "eu-central"
    ip_range     = "10.0.1.0/24"
  }
}

server "app" {
  server_type = "cpx22"
  location    = "fsn1"
  network     = network.private
  private_ip  = "10.0.2.5"
}
"#,
    ),
    // Hetzner: firewalls, load balancers, IPs.
    (
        "more_than_five_firewalls_on_a_server",
        &["6 firewalls apply to `server.app`; Hetzner allows 5"],
        r#"
firewall "a" {}
firewall "b" {}
firewall "c" {}
firewall "d" {}
firewall "e" {}
firewall "f" {}

server "app" {
  server_type = "cpx22"
  location    = "fsn1"
  firewalls   = [firewall.a, firewall.b, firewall.c, firewall.d, firewall.e, firewall.f]
}
"#,
    ),
    (
        "load_balancer_with_too_many_services",
        &["`load_balancer.web` has 6 services; a lb11 allows 5"],
        r#"
load_balancer "web" {
  type     = "lb11"
  location = "fsn1"
  service {
    protocol    = "tcp"
    listen_port = 81
  }
  service {
    protocol    = "tcp"
    listen_port = 82
  }
  service {
    protocol    = "tcp"
    listen_port = 83
  }
  service {
    protocol    = "tcp"
    listen_port = 84
  }
  service {
    protocol    = "tcp"
    listen_port = 85
  }
  service {
    protocol    = "tcp"
    listen_port = 86
  }
}
"#,
    ),
    (
        "load_balancer_with_too_many_targets",
        &["`load_balancer.web` has 26 targets; a lb11 allows 25"],
        r#"
server "app" {
  count       = 26
  server_type = "cpx22"
  location    = "fsn1"
}

load_balancer "web" {
  type     = "lb11"
  location = "fsn1"
  target {
    server = server.app
  }
}
"#,
    ),
    (
        "private_target_without_a_shared_network",
        &["target `server.app` of `load_balancer.web` uses its private IP"],
        r#"
network "private" {
  ip_range = "10.0.0.0/16"
  subnet {
    network_zone = "eu-central"
    ip_range     = "10.0.1.0/24"
  }
}

server "app" {
  server_type = "cpx22"
  location    = "fsn1"
}

load_balancer "web" {
  type     = "lb11"
  location = "fsn1"
  network  = network.private
  target {
    server         = server.app
    use_private_ip = true
  }
}
"#,
    ),
    (
        "duplicate_listen_ports",
        &["both listen on port 80"],
        r#"
load_balancer "web" {
  type     = "lb11"
  location = "fsn1"
  service {
    protocol         = "http"
    listen_port      = 80
    destination_port = 4000
  }
  service {
    protocol         = "tcp"
    listen_port      = 80
    destination_port = 5000
  }
}
"#,
    ),
    (
        "two_primary_ipv4_for_one_server",
        &["`server.app` would get 2 primary ipv4 addresses"],
        r#"
server "app" {
  server_type = "cpx22"
  location    = "fsn1"
}

primary_ip "a" {
  type     = "ipv4"
  location = "fsn1"
  assignee = server.app
}

primary_ip "b" {
  type     = "ipv4"
  location = "fsn1"
  assignee = server.app
}
"#,
    ),
    (
        "invalid_label_key",
        &["invalid label key on `server.app`: `-role`"],
        r#"
server "app" {
  server_type = "cpx22"
  location    = "fsn1"
  labels      = { "-role" = "app" }
}
"#,
    ),
    (
        "server_name_not_a_host_name",
        &["server name \"app_1\" is not a valid host name"],
        r#"
server "app" {
  name        = "app_1"
  server_type = "cpx22"
  location    = "fsn1"
}
"#,
    ),
    // Composites and lifecycle.
    (
        "postgres_without_servers_or_on",
        &["`postgres.main` needs `server_type`"],
        r#"
postgres "main" {
  location   = "fsn1"
  storage_gb = 20
}
"#,
    ),
    (
        "postgres_on_a_server_with_replicas",
        &["`postgres.main` runs `on` server.app, which leaves no servers for replicas"],
        r#"
server "app" {
  server_type = "cpx22"
  location    = "fsn1"
}

postgres "main" {
  on         = server.app
  storage_gb = 20
  replicas   = 1
}
"#,
    ),
    (
        "redis_memory_larger_than_its_server",
        &["`redis.cache` asks for 2048 MB, more than 75% of the 2 GB of its server"],
        r#"
redis "cache" {
  memory_mb   = 2048
  server_type = "cpx12"
  location    = "fsn1"
}
"#,
    ),
    // Reachability: one case per layer that blocks a consumer, and a service open to the internet.
    (
        "reach_without_a_network_or_a_public_ipv4",
        &["`server.worker` cannot reach `postgres.db`", "`server.worker` has no public IPv4", "network/zone"],
        r#"
network "eu" {
  ip_range = "10.0.0.0/16"
  subnet {
    network_zone = "eu-central"
    ip_range     = "10.0.1.0/24"
  }
}

server "worker" {
  server_type = "cpx21"
  location    = "ash"
  public_net {
    ipv4_enabled = false
  }
}

postgres "db" {
  server_type = "cpx22"
  location    = "fsn1"
  storage_gb  = 20
  network     = network.eu
  clients     = [server.worker]
}
"#,
    ),
    (
        "load_balancer_target_public_by_default_behind_a_firewall",
        &[
            "`load_balancer.web` cannot reach its target `server.app` on port 4000 (health check)",
            "the firewall `firewall.web` does not open 4000 to the load balancer's public address",
        ],
        r#"
network "eu" {
  ip_range = "10.0.0.0/16"
  subnet {
    network_zone = "eu-central"
    ip_range     = "10.0.1.0/24"
  }
}

server "app" {
  server_type = "cpx22"
  location    = "fsn1"
  network     = network.eu
  firewalls   = [firewall.web]
}

firewall "web" {
  rule {
    direction  = "in"
    protocol   = "tcp"
    port       = "80"
    source_ips = ["0.0.0.0/0", "::/0"]
  }
}

load_balancer "web" {
  type     = "lb11"
  location = "fsn1"
  network  = network.eu
  target {
    server = server.app
  }
  service {
    protocol         = "http"
    listen_port      = 80
    destination_port = 80
    health_check {
      protocol = "http"
      port     = 4000
      path     = "/health"
    }
  }
}
"#,
    ),
    (
        "service_on_a_server_with_clients",
        &[
            "`redis.cache` runs `on` server.app, so it cannot set `clients`",
            "a service on server.app serves server.app itself",
        ],
        r#"
server "app" {
  server_type = "cpx22"
  location    = "fsn1"
}

server "worker" {
  server_type = "cpx22"
  location    = "fsn1"
}

redis "cache" {
  on        = server.app
  memory_mb = 256
  clients   = [server.worker]
}
"#,
    ),
    (
        "reach_redis_over_the_public_internet",
        &[
            "`server.worker` cannot reach `redis.cache` (server.primary, port 6379 Redis)",
            "terrace serves Redis without TLS",
        ],
        r#"
network "eu" {
  ip_range = "10.0.0.0/16"
  subnet {
    network_zone = "eu-central"
    ip_range     = "10.0.1.0/24"
  }
}

server "worker" {
  server_type = "cpx21"
  location    = "ash"
}

redis "cache" {
  memory_mb   = 256
  server_type = "cpx12"
  location    = "fsn1"
  network     = network.eu
  clients     = [server.worker]
}
"#,
    ),
    (
        "service_reachable_from_the_internet",
        &["`postgres.main` (server.db, port 5432 PostgreSQL) is reachable from the internet", "applies to `server.db`"],
        r#"
network "eu" {
  ip_range = "10.0.0.0/16"
  subnet {
    network_zone = "eu-central"
    ip_range     = "10.0.1.0/24"
  }
}

server "db" {
  server_type = "cpx22"
  location    = "fsn1"
  network     = network.eu
}

postgres "main" {
  on         = server.db
  storage_gb = 20
}
"#,
    ),
    (
        "ignore_changes_names_an_unknown_attribute",
        &["`ignore_changes` names `user_dta`"],
        r#"
server "app" {
  server_type = "cpx22"
  location    = "fsn1"
  lifecycle {
    ignore_changes = [user_dta]
  }
}
"#,
    ),
];

/// Writes the fixture, runs `terrace ARGS` in it and checks what every case must show: exit code
/// 1, each phrase on stderr, and a count line of exactly `errors` errors (no follow-on errors).
/// Returns the run and what is wrong with it.
fn check(fixture_text: &str, args: &[&str], phrases: &[&str], errors: usize) -> (Run, Vec<String>) {
    let text = fixture_text.trim_start();
    let text = if text.starts_with("//-") { text.to_owned() } else { format!("{ONE_PHASE_STACK}\n{text}") };
    let dir = fixture(&text);
    let run = terrace(dir.path(), args);
    let mut problems = Vec::new();
    if run.code != 1 {
        problems.push(format!("exit code {}, not 1", run.code));
    }
    for phrase in phrases {
        if !run.stderr.contains(phrase) {
            problems.push(format!("stderr does not contain {phrase:?}"));
        }
    }
    let count = format!("{errors} error{}", if errors == 1 { "" } else { "s" });
    let last = run.stderr.lines().last().unwrap_or_default();
    if last != count && !last.starts_with(&format!("{count},")) {
        problems.push(format!("the count line is {last:?}, not {count:?}"));
    }
    (run, problems)
}

#[test]
fn each_broken_definition_gets_its_diagnostic() {
    let mut failures = Vec::new();
    for (name, phrases, fixture_text) in CASES {
        let (run, mut problems) = check(fixture_text, &["validate"], phrases, 1);
        // A differing snapshot must not hide the cases after it: insta's panic becomes a problem.
        let snapshot = catch_unwind(AssertUnwindSafe(|| {
            insta::assert_snapshot!(*name, run.transcript());
        }));
        if snapshot.is_err() {
            problems.push("the snapshot differs".to_owned());
        }
        if !problems.is_empty() {
            failures.push(format!("{name}: {}\n{}", problems.join("; "), run.stderr));
        }
    }
    assert!(failures.is_empty(), "{} of {} cases failed:\n\n{}", failures.len(), CASES.len(), failures.join("\n"));
}

#[test]
fn a_var_for_an_undeclared_variable() {
    let (run, problems) = check(
        r#"
server "app" {
  server_type = "cpx22"
  location    = "fsn1"
}
"#,
        &["plan", "--var", "nope=1"],
        &["--var nope: no variable `nope` is declared"],
        1,
    );
    insta::assert_snapshot!("var_for_an_undeclared_variable", run.transcript());
    assert!(problems.is_empty(), "{}\n{}", problems.join("; "), run.stderr);
}

#[test]
fn every_problem_is_reported_at_once() {
    let (run, problems) = check(
        r#"
sever "app" {
  server_type = "cpx22"
  location    = "fsn1"
}

volume "data" {
  size     = 10
  location = "mars1"
}

network "private" {
  ip_range = "8.8.0.0/16"
}
"#,
        &["validate"],
        &["unknown block kind `sever`", "mars1", "network range 8.8.0.0/16 is not a private (RFC 1918) range"],
        3,
    );
    insta::assert_snapshot!("three_problems_at_once", run.transcript());
    assert!(problems.is_empty(), "{}\n{}", problems.join("; "), run.stderr);
}
