//! The composites `postgres` and `redis`: a database service built from Hetzner primitives, since
//! the Hetzner Cloud API has no managed database. A service gets a primary server (or runs `on` an
//! existing one), replicas, a data volume per database server, a firewall for its servers and a
//! spread placement group when it has replicas, generated passwords, and each server's cloud-init
//! rendered by `configure` from the `services` renderers.

use std::collections::{BTreeMap, BTreeSet};

use super::State;
use super::block::Instance;
use crate::addr::Address;
use crate::diag::Diagnostic;
use crate::kind::Kind;
use crate::model::{Composite, Lifecycle, Origin, Resource};
use crate::value::{Reference, Value};

/// What differs between the service kinds.
struct Shape {
    /// The Hetzner firewall ports the service opens to its network, with what they are for.
    ports: Vec<(u16, &'static str)>,
    /// A data volume per database server, in GB.
    volume_gb: Option<u64>,
    /// The label `role` of its servers, and the firewall's name part.
    role: &'static str,
}

impl State<'_> {
    /// Expands one composite instance; returns the attributes other blocks can read from it.
    pub(super) fn expand(&mut self, instance: Instance) -> Option<BTreeMap<String, Value>> {
        let kind = instance.address.kind();
        let attrs = &instance.attrs;
        let shape = match kind {
            Kind::Postgres => {
                let mut ports = vec![(5432, "PostgreSQL")];
                if attrs.get("pgbouncer").and_then(Value::as_bool) == Some(true) {
                    ports.push((6432, "PgBouncer"));
                }
                Shape { ports, volume_gb: attrs.get("storage_gb").and_then(Value::as_u64), role: "postgres" }
            }
            _ => Shape { ports: vec![(6379, "Redis")], volume_gb: None, role: "redis" },
        };
        let on = attrs.get("on").and_then(Value::as_ref).map(|r| r.address.clone());
        let built = match on {
            Some(host) => self.on_host(&instance, &shape, host),
            None => self.own_servers(&instance, &shape),
        }?;
        let Built { resources, exports, summary } = built;
        let members: Vec<Address> = resources.iter().map(|r| r.address.clone()).collect();
        for resource in resources {
            // A secret depends on nothing (the host of a service `on` a server reads it).
            let deps = if resource.kind == Kind::Secret { BTreeSet::new() } else { instance.deps.clone() };
            self.deps.insert(resource.address.clone(), deps);
            self.resources.push(resource);
        }
        let mut readable = instance.attrs.clone();
        readable.extend(exports.clone());
        self.composites.push(Composite {
            address: instance.address.clone(),
            kind,
            attrs: instance.attrs,
            members,
            exports,
            summary,
        });
        Some(readable)
    }

    /// The instances of a counted `postgres` block with `shard_key` are the shards of one map:
    /// each exports the same `shard_map`, naming every shard in order.
    pub(super) fn share_shard_map(&mut self, instances: &mut [BTreeMap<String, Value>]) {
        let Some(key) = instances.first().and_then(|i| i.get("shard_key")).and_then(Value::as_str).map(str::to_owned)
        else {
            return;
        };
        let shards: Vec<super::shard::Shard> = instances
            .iter()
            .map(|exports| {
                let port = exports
                    .get("pgbouncer_port")
                    .or_else(|| exports.get("port"))
                    .and_then(Value::as_u64)
                    .unwrap_or(5432) as u16;
                super::shard::Shard {
                    host: exports.get("primary_private_ip").cloned().unwrap_or(Value::Unknown),
                    port,
                    database: exports.get("database").and_then(Value::as_str).unwrap_or("app").to_owned(),
                }
            })
            .collect();
        let map = super::shard::shard_map(&key, &shards);
        for exports in instances.iter_mut() {
            exports.insert("shard_map".into(), map.clone());
        }
    }

    /// `on = server.X`: the service runs on that server; a database gets its volume attached there.
    fn on_host(&mut self, instance: &Instance, shape: &Shape, host: Address) -> Option<Built> {
        let mut ok = true;
        for attr in ["server_type", "location", "replica_location", "replica_server_type"] {
            if instance.attrs.contains_key(attr) {
                self.diags.push(
                    Diagnostic::error(format!("`{}` runs `on` {host}, so it cannot set `{attr}`", instance.address))
                        .at(instance.origin.attr(attr))
                        .hint(format!(
                            "drop `{attr}`: the service uses {host}'s; or drop `on` to give it servers of its own"
                        )),
                );
                ok = false;
            }
        }
        if instance.attrs.get("replicas").and_then(Value::as_u64).unwrap_or(0) > 0 {
            self.diags.push(
                Diagnostic::error(format!(
                    "`{}` runs `on` {host}, which leaves no servers for replicas",
                    instance.address
                ))
                .at(instance.origin.attr("replicas"))
                .hint("set `replicas = 0`, or drop `on` to give the service servers of its own"),
            );
            ok = false;
        }
        if !ok {
            return None;
        }
        let host_attrs = self.instance_attrs(&host);
        let location = host_attrs.get("location").cloned().unwrap_or(Value::Unknown);
        let on_network = host_attrs.get("network").is_some_and(|n| !matches!(n, Value::Null));
        let ip_attr = if on_network { "private_ip" } else { "ipv4_address" };
        let mut resources = Vec::new();
        // `volume.data`, not `volume.primary`: a database on a shared host is a different object
        // from a service's own primary volume, so moving to servers of its own creates new storage
        // (and the plan marks the old volume's loss) rather than moving a live data directory.
        if let Some(size) = shape.volume_gb {
            resources.push(self.member(
                instance,
                Kind::Volume,
                "data",
                None,
                volume_attrs(size, &host, location.clone()),
            ));
        }
        let secrets = self.secrets(instance, shape, &mut resources);
        let restore = self.configure_host(instance, shape, &host, &host_attrs, &secrets);
        let mut exports = common_exports(shape);
        if let Some(restore) = restore {
            exports.insert("restore_procedure".into(), restore);
        }
        exports.insert("primary_private_ip".into(), attr_ref(&host, ip_attr));
        exports.insert("private_ip".into(), attr_ref(&host, ip_attr));
        exports.insert("primary_ipv4".into(), attr_ref(&host, "ipv4_address"));
        exports.insert("replica_private_ips".into(), Value::List(Vec::new()));
        connection_exports(instance, shape, &secrets, attr_ref(&host, ip_attr), &mut exports);
        let summary = format!(
            "{}: on the existing {host}{}",
            describe_service(instance),
            shape.volume_gb.map_or(String::new(), |gb| format!(", data on a {gb} GB volume attached to it")),
        );
        Some(Built { resources, exports, summary })
    }

    fn own_servers(&mut self, instance: &Instance, shape: &Shape) -> Option<Built> {
        let attrs = &instance.attrs;
        let mut missing = false;
        for attr in ["server_type", "location"] {
            if !attrs.contains_key(attr) {
                self.diags.push(
                    Diagnostic::error(format!("`{}` needs `{attr}`", instance.address))
                        .at(instance.origin.block.clone())
                        .hint(format!(
                            "set `{attr}`, or run the service on an existing server with `on = server.NAME`"
                        )),
                );
                missing = true;
            }
        }
        if missing {
            return None;
        }
        let location = attrs["location"].clone();
        let server_type = attrs["server_type"].clone();
        let replicas = attrs.get("replicas").and_then(Value::as_u64).unwrap_or(0) as u32;
        let replica_location = attrs.get("replica_location").cloned().unwrap_or_else(|| location.clone());
        let replica_type = attrs.get("replica_server_type").cloned().unwrap_or_else(|| server_type.clone());
        let network = attrs.get("network").and_then(Value::as_ref).map(|r| r.address.clone());
        let zone_of =
            |location: &Value| location.as_str().and_then(|l| self.catalog.location(l)).map(|l| l.network_zone);
        let primary_zone = zone_of(&location);
        let network_zones = network.as_ref().map(|n| self.network_zones(n)).unwrap_or_default();
        // A server joins the private network only where the network has a subnet in its zone; a
        // replica in another zone replicates over the public network (TLS, firewall limited to peers).
        let joins =
            |zone: &Option<String>| network.is_some() && zone.as_ref().is_some_and(|z| network_zones.contains(z));
        let replica_zone = zone_of(&replica_location);
        let primary_joins = joins(&primary_zone);
        let replica_joins = joins(&replica_zone);

        let mut resources = Vec::new();
        let secrets = self.secrets(instance, shape, &mut resources);
        let spread = (replicas > 0 && replica_location == location)
            .then(|| instance.address.child(Kind::PlacementGroup, "spread", None));
        let network_range = network.as_ref().and_then(|n| self.instance_attrs(n).get("ip_range").cloned());
        let backup = self.backup_target(instance);
        let primary_address = instance.address.child(Kind::Server, "primary", None);
        // A replica outside the private network gets a primary IP of its own, made before both
        // servers, so the primary's pg_hba.conf can name it without a cycle between the two.
        let mut replica_ips: Vec<Option<Address>> = Vec::new();
        for i in 0..replicas {
            if replica_joins || shape.role != "postgres" {
                replica_ips.push(None);
                continue;
            }
            let ip = BTreeMap::from([
                ("type".to_owned(), Value::str("ipv4")),
                ("location".to_owned(), replica_location.clone()),
                ("labels".to_owned(), Value::Map(BTreeMap::new())),
            ]);
            let member = self.member(instance, Kind::PrimaryIp, "replica", Some(i), ip);
            replica_ips.push(Some(member.address.clone()));
            resources.push(member);
        }
        let mut servers = Vec::new();
        let mut restore_procedure: Option<Value> = None;
        let roles: Vec<(&str, Option<u32>)> =
            std::iter::once(("primary", None)).chain((0..replicas).map(|i| ("replica", Some(i)))).collect();
        for (role, index) in roles {
            let primary = role == "primary";
            let (loc, ty, in_network) = if primary {
                (&location, &server_type, primary_joins)
            } else {
                (&replica_location, &replica_type, replica_joins)
            };
            let mut server = BTreeMap::new();
            server.insert("server_type".into(), ty.clone());
            server.insert("location".into(), loc.clone());
            server.insert("image".into(), attrs.get("image").cloned().unwrap_or_else(|| Value::str("ubuntu-24.04")));
            server.insert("backups".into(), Value::Bool(false));
            if in_network && let Some(network) = &network {
                server.insert("network".into(), obj_ref(network));
            }
            if let Some(group) = &spread {
                server.insert("placement_group".into(), obj_ref(group));
            }
            let mut labels = BTreeMap::new();
            labels.insert("role".into(), Value::str(format!("{}-{role}", shape.role)));
            if let Some(Value::Map(user)) = attrs.get("labels") {
                labels.extend(user.clone());
            }
            server.insert("labels".into(), Value::Map(labels));
            let own_ip = index.and_then(|i| replica_ips.get(i as usize).cloned().flatten());
            if let Some(ip) = &own_ip {
                server.insert(
                    "public_net".into(),
                    Value::Map(BTreeMap::from([
                        ("ipv4_enabled".to_owned(), Value::Bool(true)),
                        ("ipv6_enabled".to_owned(), Value::Bool(true)),
                        ("ipv4".to_owned(), obj_ref(ip)),
                    ])),
                );
            }
            let (memory_mb, cpus) = self.server_size(ty.as_str().unwrap_or_default());
            let clients: Vec<String> =
                network_range.iter().filter(|_| in_network).filter_map(|r| r.as_str().map(str::to_owned)).collect();
            let mut peers: Vec<(Value, bool)> = Vec::new();
            if primary {
                if replica_joins && let Some(range) = &network_range {
                    peers.push((range.clone(), false));
                }
                for ip in replica_ips.iter().flatten() {
                    peers.push((attr_ref(ip, "ip_address"), true));
                }
            }
            let primary_host = (!primary).then(|| {
                if in_network && primary_joins {
                    (attr_ref(&primary_address, "private_ip"), false)
                } else {
                    (attr_ref(&primary_address, "ipv4_address"), true)
                }
            });
            let spec = super::configure::Server {
                attrs,
                memory_mb,
                cpus,
                primary,
                index,
                replicas,
                client_cidrs: clients,
                peers,
                primary_host,
                password: secrets.password.clone(),
                replication_password: secrets.replication.clone().unwrap_or_else(|| secrets.password.clone()),
                backup: backup.clone(),
            };
            let (user_data, problems) = if shape.role == "postgres" {
                let (user_data, problems, restore) = super::configure::postgres(&spec);
                if primary {
                    restore_procedure = Some(restore);
                }
                (user_data, problems)
            } else {
                super::configure::redis(&spec)
            };
            for problem in problems {
                self.diags.push(
                    Diagnostic::error(format!("`{}`: {problem}", instance.address)).at(instance.origin.block.clone()),
                );
            }
            server.insert("user_data".into(), user_data);
            let address = instance.address.child(Kind::Server, role, index);
            servers.push((address.clone(), in_network));
            resources.push(self.member(instance, Kind::Server, role, index, server));
            if let Some(size) = shape.volume_gb {
                resources.push(self.member(
                    instance,
                    Kind::Volume,
                    role,
                    index,
                    volume_attrs(size, &address, loc.clone()),
                ));
            }
        }

        // The firewall: SSH and ICMP from anywhere, the service's ports only from the private network
        // (and, for servers outside it, only from their peers' public addresses).
        let mut rules = vec![rule("tcp", Some("22"), vec![Value::str("0.0.0.0/0"), Value::str("::/0")], "SSH")];
        rules.push(rule("icmp", None, vec![Value::str("0.0.0.0/0"), Value::str("::/0")], "ping"));
        let network_range = network.as_ref().and_then(|n| self.instance_attrs(n).get("ip_range").cloned());
        let mut sources: Vec<Value> = network_range.into_iter().filter(|_| primary_joins || replica_joins).collect();
        if servers.iter().any(|(_, joined)| !joined) {
            for (address, _) in &servers {
                sources.push(attr_ref(address, "ipv4_cidr"));
            }
        }
        if !sources.is_empty() {
            for (port, what) in &shape.ports {
                rules.push(rule("tcp", Some(&port.to_string()), sources.clone(), what));
            }
        }
        let mut fw = BTreeMap::new();
        fw.insert("rule".into(), Value::List(rules));
        let apply_to: Vec<Value> = servers
            .iter()
            .map(|(address, _)| {
                Value::Map(BTreeMap::from([("server".to_owned(), Value::List(vec![obj_ref(address)]))]))
            })
            .collect();
        fw.insert("apply_to".into(), Value::List(apply_to));
        fw.insert("labels".into(), Value::Map(BTreeMap::new()));
        resources.push(self.member(instance, Kind::Firewall, shape.role, None, fw));
        if spread.is_some() {
            let group = BTreeMap::from([
                ("type".to_owned(), Value::str("spread")),
                ("labels".to_owned(), Value::Map(BTreeMap::new())),
            ]);
            resources.push(self.member(instance, Kind::PlacementGroup, "spread", None, group));
        }

        let ip_of = |(address, joined): &(Address, bool)| {
            attr_ref(address, if *joined { "private_ip" } else { "ipv4_address" })
        };
        let mut exports = common_exports(shape);
        connection_exports(instance, shape, &secrets, ip_of(&servers[0]), &mut exports);
        if let Some(restore) = restore_procedure {
            exports.insert("restore_procedure".into(), restore);
        }
        exports.insert("primary_private_ip".into(), ip_of(&servers[0]));
        exports.insert("private_ip".into(), ip_of(&servers[0]));
        exports.insert("primary_ipv4".into(), attr_ref(&servers[0].0, "ipv4_address"));
        exports.insert("replica_private_ips".into(), Value::List(servers[1..].iter().map(ip_of).collect()));
        exports.insert(
            "replica_ipv4s".into(),
            Value::List(servers[1..].iter().map(|(a, _)| attr_ref(a, "ipv4_address")).collect()),
        );
        let text = |value: &Value| value.as_str().unwrap_or("?").to_owned();
        let mut summary =
            format!("{}: primary {} in {}", describe_service(instance), text(&server_type), text(&location));
        if replicas > 0 {
            summary.push_str(&format!(
                ", {replicas} replica{} {} in {}",
                if replicas == 1 { "" } else { "s" },
                text(&replica_type),
                text(&replica_location)
            ));
        }
        if let Some(gb) = shape.volume_gb {
            summary.push_str(&format!(", {gb} GB volume{}", if replicas > 0 { " each" } else { "" }));
        }
        Some(Built { resources, exports, summary })
    }

    /// A server type's memory in MB and its vCPUs, which size a service's settings; a type the
    /// catalog lacks (the validator reports it) is taken as 2 GB and 2 vCPUs.
    fn server_size(&self, server_type: &str) -> (u64, u32) {
        self.catalog
            .server_type(server_type)
            .map(|spec| {
                let mb = (spec.memory_gb * rust_decimal::Decimal::from(1024)).trunc();
                (u64::try_from(mb.mantissa()).unwrap_or(2048), spec.cores)
            })
            .unwrap_or((2048, 2))
    }

    /// A service `on` a server configures that server: when the host block gives no `user_data`
    /// of its own, the service's cloud-init becomes the host's (kept once made, like a service
    /// server's); when it does, the host's wins and a warning says the service is not configured.
    /// Returns the restore procedure of a database.
    fn configure_host(
        &mut self,
        instance: &Instance,
        shape: &Shape,
        host: &Address,
        host_attrs: &BTreeMap<String, Value>,
        secrets: &Secrets,
    ) -> Option<Value> {
        let slot = self.resources.iter().position(|r| &r.address == host)?;
        if self.resources[slot].attr("user_data").is_some() {
            self.diags.push(
                Diagnostic::warning(format!(
                    "`{}` runs on `{host}`, whose own user_data wins: terrace does not configure the service there",
                    instance.address
                ))
                .at(instance.origin.attr("on"))
                .hint(format!("drop `user_data` from `{host}` to let the service configure it")),
            );
            return None;
        }
        let server_type = host_attrs.get("server_type").and_then(Value::as_str).unwrap_or_default();
        let (memory_mb, cpus) = self.server_size(server_type);
        // The application runs on the same server: clients come from the host itself, and from
        // its private network when it is on one.
        let mut clients = vec!["127.0.0.1/32".to_owned()];
        if let Some(network) = host_attrs.get("network").and_then(Value::as_ref)
            && let Some(range) = self.instance_attrs(&network.address).get("ip_range").and_then(Value::as_str)
        {
            clients.push(range.to_owned());
        }
        let spec = super::configure::Server {
            attrs: &instance.attrs,
            memory_mb,
            cpus,
            primary: true,
            index: None,
            replicas: 0,
            client_cidrs: clients,
            peers: Vec::new(),
            primary_host: None,
            password: secrets.password.clone(),
            replication_password: secrets.replication.clone().unwrap_or_else(|| secrets.password.clone()),
            backup: self.backup_target(instance),
        };
        let (user_data, problems, restore) = if shape.role == "postgres" {
            super::configure::postgres(&spec)
        } else {
            let (user_data, problems) = super::configure::redis(&spec);
            (user_data, problems, Value::Null)
        };
        for problem in problems {
            self.diags.push(
                Diagnostic::error(format!("`{}`: {problem}", instance.address)).at(instance.origin.block.clone()),
            );
        }
        let resource = &mut self.resources[slot];
        resource.attrs.insert("user_data".into(), user_data);
        resource.lifecycle.ignore_changes.extend(crate::schema::first_boot_attrs(Kind::Server));
        (shape.role == "postgres").then_some(restore)
    }

    /// Where a database's backups go: the bucket its `backup` block names, with the credentials
    /// terrace recorded for it.
    fn backup_target(&self, instance: &Instance) -> Option<super::configure::Backup> {
        let Some(Value::Map(backup)) = instance.attrs.get("backup") else { return None };
        let bucket = backup.get("bucket").and_then(Value::as_ref)?.address.clone();
        let bucket_attrs = self.instance_attrs(&bucket);
        let number = |name: &str, default: u64| backup.get(name).and_then(Value::as_u64).unwrap_or(default) as u32;
        let prefix: String = instance
            .address
            .to_string()
            .chars()
            .map(|c| if c.is_ascii_alphanumeric() { c } else { '-' })
            .collect::<String>()
            .trim_matches('-')
            .to_owned();
        Some(super::configure::Backup {
            bucket_name: bucket_attrs.get("name").cloned().unwrap_or(Value::Unknown),
            location: bucket_attrs.get("location").and_then(Value::as_str).unwrap_or("fsn1").to_owned(),
            access_key: Value::Sensitive(Box::new(attr_ref(&bucket, "access_key"))),
            secret_key: Value::Sensitive(Box::new(attr_ref(&bucket, "secret_key"))),
            prefix,
            schedule: if backup.get("schedule").and_then(Value::as_str) == Some("hourly") {
                crate::services::BackupSchedule::Hourly
            } else {
                crate::services::BackupSchedule::Daily
            },
            retention_days: number("retention_days", 30),
            continuous: backup.get("continuous").and_then(Value::as_bool) == Some(true),
            pitr_days: number("pitr_days", 7),
        })
    }

    /// The service's generated secrets, as members (`secret.password`, and for PostgreSQL
    /// `secret.replication`): made once at apply, kept in state, never shown.
    fn secrets(&self, instance: &Instance, shape: &Shape, resources: &mut Vec<Resource>) -> Secrets {
        let mut make = |name: &str| {
            let attrs = BTreeMap::from([("length".to_owned(), Value::Number(32.0))]);
            let mut member = self.member(instance, Kind::Secret, name, None, attrs);
            // A secret has no name in Hetzner: the member helper's name is not an attribute of it.
            member.attrs.remove("name");
            let address = member.address.clone();
            resources.push(member);
            Value::Sensitive(Box::new(attr_ref(&address, "value")))
        };
        let password = make("password");
        // Always made, so that adding replicas later does not change the primary's configuration.
        let replication = (shape.role == "postgres").then(|| make("replication"));
        Secrets { password, replication }
    }

    /// A primitive inside a composite, with the composite's spans and lifecycle.
    fn member(
        &self,
        instance: &Instance,
        kind: Kind,
        name: &str,
        index: Option<u32>,
        mut attrs: BTreeMap<String, Value>,
    ) -> Resource {
        let address = instance.address.child(kind, name, index);
        super::block::apply_defaults(crate::schema::of(kind), &mut attrs);
        attrs.insert("name".into(), Value::String(self.name_of(&BTreeMap::new(), &address)));
        let mut origin = Origin { block: instance.origin.block.clone(), attrs: Vec::new() };
        for (key, span) in &instance.origin.attrs {
            let mapped = match key.as_str() {
                "storage_gb" => "size",
                "replica_location" | "replica_server_type" if name == "replica" => key.trim_start_matches("replica_"),
                other => other,
            };
            origin.attrs.push((mapped.to_owned(), span.clone()));
        }
        Resource {
            address,
            kind,
            attrs,
            composite: Some(instance.address.clone()),
            // A service's servers keep their cloud-init once made: it runs at first boot only, and
            // replacing a database server for a new rendering would lose its data (the plan notes
            // the change instead; see docs/services.md).
            lifecycle: Lifecycle {
                ignore_changes: crate::schema::first_boot_attrs(kind),
                ..instance.lifecycle.clone()
            },
            origin,
        }
    }

    /// The readable attributes of an instance evaluated before (empty when unknown).
    fn instance_attrs(&self, address: &Address) -> BTreeMap<String, Value> {
        let slot = address.index().unwrap_or(0) as usize;
        self.objects
            .get(&(address.kind(), address.name().to_owned()))
            .and_then(|entry| entry.instances.get(slot))
            .cloned()
            .unwrap_or_default()
    }

    /// The network zones in which a network has subnets.
    fn network_zones(&self, network: &Address) -> BTreeSet<String> {
        let attrs = self.instance_attrs(network);
        attrs
            .get("subnet")
            .and_then(Value::as_list)
            .unwrap_or_default()
            .iter()
            .filter_map(|subnet| subnet.as_map()?.get("network_zone")?.as_str().map(str::to_owned))
            .collect()
    }
}

/// A service's secrets, as references to their generated values.
struct Secrets {
    password: Value,
    replication: Option<Value>,
}

/// What an application needs to connect: the password, and the URL with it (through PgBouncer
/// when the service has it). Both are sensitive.
fn connection_exports(
    instance: &Instance,
    shape: &Shape,
    secrets: &Secrets,
    host: Value,
    exports: &mut BTreeMap<String, Value>,
) {
    exports.insert("password".into(), secrets.password.clone());
    if let Some(replication) = &secrets.replication {
        exports.insert("replication_password".into(), replication.clone());
    }
    let port = shape.ports.iter().find(|(_, what)| *what == "PgBouncer").unwrap_or(&shape.ports[0]).0;
    let text =
        |name: &str, default: &str| instance.attrs.get(name).and_then(Value::as_str).unwrap_or(default).to_owned();
    let url = if shape.role == "postgres" {
        let (user, database) = (text("user", "app"), text("database", "app"));
        Value::Template(vec![
            Value::String(format!("postgres://{user}:")),
            secrets.password.clone(),
            Value::String("@".into()),
            host,
            Value::String(format!(":{port}/{database}")),
        ])
    } else {
        Value::Template(vec![
            Value::String("redis://:".into()),
            secrets.password.clone(),
            Value::String("@".into()),
            host,
            Value::String(format!(":{port}")),
        ])
    };
    let key = if shape.role == "postgres" { "database_url" } else { "url" };
    exports.insert(key.into(), url);
}

struct Built {
    resources: Vec<Resource>,
    exports: BTreeMap<String, Value>,
    summary: String,
}

/// What every service exports: its port(s) (the secrets and URLs come from `connection_exports`).
fn common_exports(shape: &Shape) -> BTreeMap<String, Value> {
    let mut exports = BTreeMap::new();
    exports.insert("port".into(), Value::Number(f64::from(shape.ports[0].0)));
    if let Some((port, _)) = shape.ports.iter().find(|(_, what)| *what == "PgBouncer") {
        exports.insert("pgbouncer_port".into(), Value::Number(f64::from(*port)));
    }
    if shape.role == "postgres" {
        // Filled in once every shard of a counted block is known (`share_shard_map`).
        exports.insert("shard_map".into(), Value::Null);
    }
    exports
}

fn obj_ref(address: &Address) -> Value {
    Value::Ref(Reference { address: address.clone(), attribute: None })
}

fn attr_ref(address: &Address, attribute: &str) -> Value {
    Value::Ref(Reference { address: address.clone(), attribute: Some(attribute.to_owned()) })
}

fn volume_attrs(size: u64, server: &Address, location: Value) -> BTreeMap<String, Value> {
    BTreeMap::from([
        ("size".to_owned(), Value::Number(size as f64)),
        ("server".to_owned(), obj_ref(server)),
        ("location".to_owned(), location),
        ("format".to_owned(), Value::str("ext4")),
        ("automount".to_owned(), Value::Bool(false)),
        ("delete_protection".to_owned(), Value::Bool(false)),
        ("labels".to_owned(), Value::Map(BTreeMap::new())),
    ])
}

fn rule(protocol: &str, port: Option<&str>, sources: Vec<Value>, description: &str) -> Value {
    let mut rule = BTreeMap::from([
        ("direction".to_owned(), Value::str("in")),
        ("protocol".to_owned(), Value::str(protocol)),
        ("source_ips".to_owned(), Value::List(sources)),
        ("description".to_owned(), Value::str(description)),
    ]);
    if let Some(port) = port {
        rule.insert("port".into(), Value::str(port));
    }
    Value::Map(rule)
}

/// "PostgreSQL 16 (vector) with PgBouncer, daily backups kept 30 days" or "Redis 256 MB".
fn describe_service(instance: &Instance) -> String {
    let attrs = &instance.attrs;
    match instance.address.kind() {
        Kind::Postgres => {
            let mut text = format!("PostgreSQL {}", attrs.get("version").map(ToString::to_string).unwrap_or_default());
            let extensions: Vec<String> = attrs
                .get("extensions")
                .and_then(Value::as_list)
                .unwrap_or_default()
                .iter()
                .filter_map(|e| e.as_str().map(str::to_owned))
                .collect();
            if !extensions.is_empty() {
                text.push_str(&format!(" ({})", extensions.join(", ")));
            }
            if attrs.get("pgbouncer").and_then(Value::as_bool) == Some(true) {
                text.push_str(" with PgBouncer");
            }
            if let Some(Value::Map(backup)) = attrs.get("backup") {
                let schedule = backup.get("schedule").and_then(Value::as_str).unwrap_or("daily");
                let days = backup.get("retention_days").map(ToString::to_string).unwrap_or_default();
                let continuous = backup.get("continuous").and_then(Value::as_bool) == Some(true);
                text.push_str(&format!(", {schedule} backups kept {days} days"));
                if continuous {
                    let window = backup.get("pitr_days").map(ToString::to_string).unwrap_or_default();
                    text.push_str(&format!(" + WAL archiving ({window}-day point-in-time recovery)"));
                }
                if let Some(bucket) = backup.get("bucket").and_then(Value::as_ref) {
                    text.push_str(&format!(" in {}", bucket.address));
                }
            }
            text
        }
        _ => format!("Redis {} MB", attrs.get("memory_mb").map(ToString::to_string).unwrap_or_default()),
    }
}
