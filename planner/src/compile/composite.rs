//! The composites `postgres` and `redis`: a database service built from Hetzner primitives, since
//! the Hetzner Cloud API has no managed database. A service gets a primary server (or runs `on` an
//! existing one), replicas, a data volume per database server, a firewall for its servers and a
//! spread placement group for them (from the start, so that a replica joins a running service),
//! generated passwords, and each server's cloud-init rendered by `configure` from the `services`
//! renderers.

use std::collections::{BTreeMap, BTreeSet};

use super::State;
use super::block::Instance;
use crate::addr::Address;
use crate::diag::Diagnostic;
use crate::kind::Kind;
use crate::model::{Admission, Composite, Endpoint, Lifecycle, Listen, Origin, Resource, Source};
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

impl Shape {
    /// The port the application connects to: PgBouncer's when the service has it.
    fn client_port(&self) -> u16 {
        self.ports.iter().find(|(_, what)| *what == "PgBouncer").unwrap_or(&self.ports[0]).0
    }
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
        let host = on.clone();
        let built = match on {
            Some(host) => self.on_host(&instance, &shape, host),
            None => self.own_servers(&instance, &shape),
        }?;
        let Built { resources, exports, summary, endpoints, mut deps } = built;
        let members: Vec<Address> = resources.iter().map(|r| r.address.clone()).collect();
        for resource in resources {
            // Generated secrets and keys depend on nothing (the host of a service `on` a server
            // reads them).
            let mut own = match resource.kind {
                Kind::Secret | Kind::Keypair => BTreeSet::new(),
                _ => instance.deps.clone(),
            };
            own.extend(deps.remove(&resource.address).unwrap_or_default());
            self.deps.insert(resource.address.clone(), own);
            self.resources.push(resource);
        }
        let mut readable = instance.attrs.clone();
        readable.extend(exports.clone());
        let clients = written_clients(&instance.attrs);
        // A service `on` a server is on that server's network.
        let network = match instance.attrs.get("network").and_then(Value::as_ref) {
            Some(network) => Some(network.address.clone()),
            None => host.as_ref().and_then(|host| {
                self.instance_attrs(host).get("network").and_then(Value::as_ref).map(|r| r.address.clone())
            }),
        };
        self.composites.push(Composite {
            address: instance.address.clone(),
            kind,
            attrs: instance.attrs,
            members,
            exports,
            summary,
            endpoints,
            clients,
            network,
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
        for attr in ["server_type", "location", "replica_location", "replica_server_type", "clients"] {
            if instance.attrs.contains_key(attr) {
                self.diags.push(
                    Diagnostic::error(format!("`{}` runs `on` {host}, so it cannot set `{attr}`", instance.address))
                        .at(instance.origin.attr(attr))
                        .hint(if attr == "clients" {
                            format!(
                                "drop `clients`: a service on {host} serves {host} itself, its containers and its private \
                                 network; or drop `on` to give it servers of its own, which clients anywhere reach"
                            )
                        } else {
                            format!("drop `{attr}`: the service uses {host}'s; or drop `on` to give it servers of its own")
                        }),
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
        // The host's containers are clients when it runs Docker: by default on Hetzner's Docker
        // CE image, as the seed's app server does.
        let docker = instance
            .attrs
            .get("docker_clients")
            .and_then(Value::as_bool)
            .unwrap_or_else(|| host_attrs.get("image").and_then(Value::as_str) == Some("docker-ce"));
        let mut resources = Vec::new();
        let mut deps: BTreeMap<Address, BTreeSet<Address>> = BTreeMap::new();
        // `volume.data`, not `volume.primary`: a database on a shared host is a different object
        // from a service's own primary volume, so moving to servers of its own creates new storage
        // (and the plan marks the old volume's loss) rather than moving a live data directory.
        let mut volume = None;
        if let Some(size) = shape.volume_gb {
            let member = self.member(instance, Kind::Volume, "data", None, volume_attrs(size, &host, location.clone()));
            volume = Some(member.address.clone());
            resources.push(member);
        }
        let secrets = self.secrets(instance, shape, &mut resources);
        // The service listens on the host's own addresses only: loopback, the docker0 bridge for
        // its containers, and every address when the host is on a private network (its Hetzner
        // firewall must then close the port to the internet; the reachability check says so).
        let range = host_attrs
            .get("network")
            .and_then(Value::as_ref)
            .and_then(|n| self.instance_attrs(&n.address).get("ip_range").and_then(Value::as_str).map(str::to_owned));
        let mut clients = vec!["127.0.0.1/32".to_owned()];
        let (mut listen, mut client_host) = if on_network {
            clients.extend(range.clone());
            (vec![everywhere(shape).to_owned()], attr_ref(&host, "private_ip"))
        } else {
            (vec!["127.0.0.1".to_owned()], Value::str("127.0.0.1"))
        };
        if docker {
            clients.push(crate::services::DOCKER_NETWORKS.to_owned());
            if !on_network {
                listen.push(crate::services::DOCKER_BRIDGE.to_owned());
                client_host = Value::str(crate::services::DOCKER_BRIDGE);
            }
        }
        let restore = self.configure_host(
            instance,
            shape,
            &host,
            &host_attrs,
            &secrets,
            listen.clone(),
            clients,
            docker,
            &mut resources,
        );
        if let Some(volume) = volume {
            // The host's configuration mounts the volume: it is kept while the volume is there,
            // and on a delete, stopped before the volume goes.
            deps.entry(instance.address.child(Kind::Host, SHARED, None)).or_default().insert(volume);
        }
        let mut exports = common_exports(shape);
        if let Some(restore) = restore {
            exports.insert("restore_procedure".into(), restore);
        }
        exports.insert("host".into(), client_host.clone());
        exports.insert("primary_private_ip".into(), client_host.clone());
        exports.insert("private_ip".into(), client_host.clone());
        exports.insert("primary_ipv4".into(), attr_ref(&host, "ipv4_address"));
        exports.insert("replica_private_ips".into(), Value::List(Vec::new()));
        connection_exports(instance, shape, &secrets, client_host, &mut exports);
        let summary = format!(
            "{}: on the existing {host}{}",
            describe_service(instance),
            shape.volume_gb.map_or(String::new(), |gb| format!(", data on a {gb} GB volume attached to it")),
        );
        let endpoints = vec![Endpoint {
            server: host.clone(),
            role: "primary".into(),
            ports: shape.ports.clone(),
            listen: if on_network { Listen::Everywhere } else { Listen::Local { docker } },
            admits: (shape.role == "postgres").then(|| {
                let mut admits = vec![admit(Source::Local, false, false)];
                if docker {
                    admits.push(admit(Source::Docker, false, false));
                }
                admits.extend(range.map(|range| admit(Source::Cidr(range), false, false)));
                admits
            }),
            replicates_from: None,
        }];
        Some(Built { resources, exports, summary, endpoints, deps })
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
        // A server joins the private network only where the network has a subnet in its zone; a
        // replica in another zone replicates over the public network (TLS, firewall limited to peers).
        let joins = |location: &Value| network.as_ref().is_some_and(|n| self.zone_has_subnet(n, location));
        let primary_joins = joins(&location);
        let replica_joins = joins(&replica_location);

        let mut resources = Vec::new();
        let mut deps: BTreeMap<Address, BTreeSet<Address>> = BTreeMap::new();
        let mut endpoints = Vec::new();
        let secrets = self.secrets(instance, shape, &mut resources);
        let login = self.keypair(instance, "login", None, &mut resources);
        // The servers written in `clients`, each with the private network it is on (where it has
        // a subnet in its zone): a client on a member's network reaches it there; any other
        // reaches it over the public internet, admitted by its public IPv4 and only with TLS.
        let clients: Vec<(Address, Option<Address>)> =
            written_clients(attrs).into_iter().map(|c| (c.clone(), self.joined_network(&c))).collect();
        // Every service server of its own is in a spread placement group from the start: a server
        // joins a group only while powered off, so a group made with the first replica would
        // stop the running primary (phase 2 -> 3). A replica in another location stays out.
        let spread = instance.address.child(Kind::PlacementGroup, "spread", None);
        let replicas_spread = replica_location == location;
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
            if primary || replicas_spread {
                server.insert("placement_group".into(), obj_ref(&spread));
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
            let client_cidrs: Vec<String> =
                network_range.iter().filter(|_| in_network).filter_map(|r| r.as_str().map(str::to_owned)).collect();
            let public_clients: Vec<&Address> = clients
                .iter()
                .filter(|(_, joined)| !(in_network && joined.is_some() && *joined == network))
                .map(|(client, _)| client)
                .collect();
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
            let address = instance.address.child(Kind::Server, role, index);
            let access = self.host_access(instance, role, index, &login, &mut resources);
            let mut admits: Vec<Admission> =
                client_cidrs.iter().map(|range| admit(Source::Cidr(range.clone()), false, false)).collect();
            admits.extend(public_clients.iter().map(|c| admit(Source::PublicIp((*c).clone()), true, false)));
            if primary {
                if replica_joins && let Some(Value::String(range)) = &network_range {
                    admits.push(admit(Source::Cidr(range.clone()), false, true));
                }
                for (i, ip) in replica_ips.iter().enumerate() {
                    if ip.is_some() {
                        let replica = instance.address.child(Kind::Server, "replica", Some(i as u32));
                        admits.push(admit(Source::PublicIp(replica), true, true));
                    }
                }
            }
            endpoints.push(Endpoint {
                server: address.clone(),
                role: index.map_or_else(|| role.to_owned(), |i| format!("{role}[{i}]")),
                ports: shape.ports.clone(),
                listen: Listen::Everywhere,
                admits: (shape.role == "postgres").then_some(admits),
                replicates_from: (!primary).then(|| (primary_address.clone(), !(in_network && primary_joins))),
            });
            let spec = super::configure::Server {
                attrs,
                memory_mb,
                cpus,
                primary,
                index,
                replicas,
                // The Hetzner firewall, pg_hba.conf and PgBouncer's decide who may connect.
                listen: vec![everywhere(shape).to_owned()],
                client_cidrs,
                // Redis has no TLS here: a client outside its network cannot be admitted safely,
                // which the reachability check reports.
                tls_clients: if shape.role == "postgres" {
                    public_clients.iter().map(|c| attr_ref(c, "ipv4_address")).collect()
                } else {
                    Vec::new()
                },
                docker: false,
                access: Some(access),
                peers,
                primary_host,
                password: secrets.password.clone(),
                replication_password: secrets.replication.clone().unwrap_or_else(|| secrets.password.clone()),
                backup: backup.clone(),
            };
            let configured = if shape.role == "postgres" {
                super::configure::postgres(&spec)
            } else {
                super::configure::redis(&spec)
            };
            if primary && shape.role == "postgres" {
                restore_procedure = Some(configured.restore.clone());
            }
            for problem in &configured.problems {
                self.diags.push(
                    Diagnostic::error(format!("`{}`: {problem}", instance.address)).at(instance.origin.block.clone()),
                );
            }
            let host = self.host_member(instance, shape, role, index, &address, &login, &configured);
            // A volume grown through the API before its filesystem is grown on the host.
            if shape.volume_gb.is_some() {
                deps.entry(host.address.clone()).or_default().insert(instance.address.child(Kind::Volume, role, index));
            }
            // A replica's host is converged after its primary's, which admits it and keeps its slot.
            if !primary {
                deps.entry(host.address.clone()).or_default().insert(instance.address.child(
                    Kind::Host,
                    "primary",
                    None,
                ));
            }
            resources.push(host);
            // A replica clones its primary at first boot: it is made once the primary's host
            // is converged (its slot made, its pg_hba.conf admitting the replica).
            if !primary && shape.role == "postgres" {
                deps.entry(address.clone()).or_default().insert(instance.address.child(Kind::Host, "primary", None));
            }
            server.insert("user_data".into(), configured.user_data);
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
        // Clients that reach some member over the public internet, by their public addresses.
        for (client, joined) in &clients {
            let public_to_some = servers.iter().any(|(_, member_joined)| !(*member_joined && *joined == network));
            if public_to_some && shape.role == "postgres" {
                sources.push(attr_ref(client, "ipv4_cidr"));
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
        let group = BTreeMap::from([
            ("type".to_owned(), Value::str("spread")),
            ("labels".to_owned(), Value::Map(BTreeMap::new())),
        ]);
        resources.push(self.member(instance, Kind::PlacementGroup, "spread", None, group));

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
        exports.insert("host".into(), ip_of(&servers[0]));
        if shape.role == "postgres" {
            // For clients outside its network (in another region), over its primary's public
            // address, which they must reach with TLS.
            let public = attr_ref(&servers[0].0, "ipv4_address");
            exports.insert(
                "public_database_url".into(),
                service_url(instance, shape, &secrets, public, "?sslmode=require"),
            );
        }
        Some(Built { resources, exports, summary, endpoints, deps })
    }

    /// The private network a server is on, where that network has a subnet in its zone.
    fn joined_network(&self, server: &Address) -> Option<Address> {
        let attrs = self.instance_attrs(server);
        let network = attrs.get("network").and_then(Value::as_ref)?.address.clone();
        let location = attrs.get("location")?;
        self.zone_has_subnet(&network, location).then_some(network)
    }

    /// Whether `network` has a subnet in the network zone of `location`, which a server there
    /// needs to join it.
    fn zone_has_subnet(&self, network: &Address, location: &Value) -> bool {
        let zone = location.as_str().and_then(|l| self.catalog.location(l)).map(|l| l.network_zone);
        zone.is_some_and(|zone| self.network_zones(network).contains(&zone))
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
    /// server's) and terrace keeps its files there (`host.primary`); when it does, the host's wins
    /// and a warning says the service is not configured. Returns the restore procedure of a
    /// database.
    #[expect(clippy::too_many_arguments, reason = "the parts of the host's configuration the caller worked out")]
    fn configure_host(
        &mut self,
        instance: &Instance,
        shape: &Shape,
        host: &Address,
        host_attrs: &BTreeMap<String, Value>,
        secrets: &Secrets,
        listen: Vec<String>,
        clients: Vec<String>,
        docker: bool,
        resources: &mut Vec<Resource>,
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
        let login = self.keypair(instance, "login", None, resources);
        // `shared`, not `primary`: the service on a shared host is another host (and another host
        // key) than its own primary server would be, so a move to servers of its own stops it here
        // and starts it there rather than mistaking one for the other.
        let access = self.host_access(instance, SHARED, None, &login, resources);
        let spec = super::configure::Server {
            attrs: &instance.attrs,
            memory_mb,
            cpus,
            primary: true,
            index: None,
            replicas: 0,
            listen,
            client_cidrs: clients,
            tls_clients: Vec::new(),
            docker,
            access: Some(access),
            peers: Vec::new(),
            primary_host: None,
            password: secrets.password.clone(),
            replication_password: secrets.replication.clone().unwrap_or_else(|| secrets.password.clone()),
            backup: self.backup_target(instance),
        };
        let configured =
            if shape.role == "postgres" { super::configure::postgres(&spec) } else { super::configure::redis(&spec) };
        for problem in &configured.problems {
            self.diags.push(
                Diagnostic::error(format!("`{}`: {problem}", instance.address)).at(instance.origin.block.clone()),
            );
        }
        resources.push(self.host_member(instance, shape, SHARED, None, host, &login, &configured));
        let resource = &mut self.resources[slot];
        resource.attrs.insert("user_data".into(), configured.user_data);
        resource.lifecycle.ignore_changes.extend(crate::schema::first_boot_attrs(Kind::Server));
        (shape.role == "postgres").then_some(configured.restore)
    }

    /// A generated SSH key pair, a member of the service (`keypair.login`, `keypair.replica[0]`).
    fn keypair(&self, instance: &Instance, name: &str, index: Option<u32>, resources: &mut Vec<Resource>) -> Address {
        let attrs = BTreeMap::from([("algorithm".to_owned(), Value::str("ed25519"))]);
        let mut member = self.member(instance, Kind::Keypair, name, index, attrs);
        // A key pair has no name in Hetzner: the member helper's name is not an attribute of it.
        member.attrs.remove("name");
        let address = member.address.clone();
        resources.push(member);
        address
    }

    /// The host key of one of the service's servers (a key pair of its own), with the login key:
    /// what its first boot is handed, so that terrace can pin the key from the first connection.
    fn host_access(
        &self,
        instance: &Instance,
        role: &str,
        index: Option<u32>,
        login: &Address,
        resources: &mut Vec<Resource>,
    ) -> super::configure::Access {
        let host_key = self.keypair(instance, role, index, resources);
        super::configure::Access {
            host_private_escaped: Value::Sensitive(Box::new(attr_ref(&host_key, "private_key_escaped"))),
            host_public: attr_ref(&host_key, "public_key"),
            login_public: attr_ref(login, "public_key"),
        }
    }

    /// What terrace keeps on one of the service's servers over SSH: the files and packages of its
    /// configuration, and how to reach it (the server's public address, its pinned host key and
    /// the login key).
    #[expect(clippy::too_many_arguments, reason = "one host's identity and configuration")]
    fn host_member(
        &self,
        instance: &Instance,
        shape: &Shape,
        role: &str,
        index: Option<u32>,
        server: &Address,
        login: &Address,
        configured: &super::configure::Configured,
    ) -> Resource {
        let host_key = instance.address.child(Kind::Keypair, role, index);
        let mut attrs = BTreeMap::from([
            ("server".to_owned(), obj_ref(server)),
            ("address".to_owned(), attr_ref(server, "ipv4_address")),
            ("host_key".to_owned(), attr_ref(&host_key, "public_key")),
            ("login_key".to_owned(), Value::Sensitive(Box::new(attr_ref(login, "private_key")))),
            ("service".to_owned(), Value::str(shape.role)),
            // The service's role on the server: a service on a shared host is its primary.
            (
                "role".to_owned(),
                Value::String(match index {
                    Some(i) => format!("{role}[{i}]"),
                    None if role == SHARED => "primary".to_owned(),
                    None => role.to_owned(),
                }),
            ),
            (
                "packages".to_owned(),
                Value::List(configured.packages.iter().map(|p| Value::String(p.clone())).collect()),
            ),
            ("file".to_owned(), Value::List(configured.files.clone())),
        ]);
        if shape.role == "postgres" {
            attrs.insert("version".into(), instance.attrs.get("version").cloned().unwrap_or(Value::Number(16.0)));
        }
        let mut member = self.member(instance, Kind::Host, role, index, attrs);
        member.attrs.remove("name");
        member
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
    let key = if shape.role == "postgres" { "database_url" } else { "url" };
    exports.insert(key.into(), service_url(instance, shape, secrets, host, ""));
}

/// The URL an application connects with, password and all: `postgres://user:...@host:port/db` (to
/// PgBouncer when the service has it, `query` appended) or Redis's `redis://default:...@host:port`
/// (Redis 6's ACL user `default`, whose password `requirepass` sets: every client reads it, while
/// an empty user name fails with some, redis-cli 7.0 among them).
fn service_url(instance: &Instance, shape: &Shape, secrets: &Secrets, host: Value, query: &str) -> Value {
    let port = shape.client_port();
    let text =
        |name: &str, default: &str| instance.attrs.get(name).and_then(Value::as_str).unwrap_or(default).to_owned();
    let (scheme_and_user, tail) = if shape.role == "postgres" {
        (format!("postgres://{}:", text("user", "app")), format!(":{port}/{}{query}", text("database", "app")))
    } else {
        ("redis://default:".to_owned(), format!(":{port}{query}"))
    };
    Value::Template(vec![
        Value::String(scheme_and_user),
        secrets.password.clone(),
        Value::String("@".into()),
        host,
        Value::String(tail),
    ])
}

/// The name of the host (and its key pair) of a service `on` another block's server.
const SHARED: &str = "shared";

struct Built {
    resources: Vec<Resource>,
    exports: BTreeMap<String, Value>,
    summary: String,
    endpoints: Vec<Endpoint>,
    /// Dependencies of members beyond the composite's own.
    deps: BTreeMap<Address, BTreeSet<Address>>,
}

/// The servers written in `clients`, each instance of a counted block on its own.
fn written_clients(attrs: &BTreeMap<String, Value>) -> Vec<Address> {
    fn collect(value: &Value, out: &mut Vec<Address>) {
        match value {
            Value::Ref(reference) if reference.attribute.is_none() => out.push(reference.address.clone()),
            Value::List(items) => items.iter().for_each(|item| collect(item, out)),
            _ => {}
        }
    }
    let mut out = Vec::new();
    if let Some(clients) = attrs.get("clients") {
        collect(clients, &mut out);
    }
    out.sort();
    out.dedup();
    out
}

/// The address a service listens on for every interface.
fn everywhere(shape: &Shape) -> &'static str {
    if shape.role == "postgres" { "*" } else { "0.0.0.0" }
}

fn admit(source: Source, tls_only: bool, replication: bool) -> Admission {
    Admission { source, tls_only, replication }
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
            let extensions = attrs.get("extensions").map(Value::texts).unwrap_or_default();
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
