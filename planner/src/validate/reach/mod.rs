//! Reachability: every consumer of a service reaches every server of it on every port it serves,
//! and no service is open to the internet. The consumers are a service's `clients` (or, without
//! them, the servers on its network, or its host), its replicas (replicating from the primary) and
//! load balancers (their targets). Each connection is followed through the layers it crosses:
//! network zones and private networks, Hetzner firewalls (which filter public interfaces only), the
//! addresses the service listens on, its access rules (pg_hba.conf, PgBouncer's) and TLS.
//!
//! The phase is read once into indexes (servers by network and label, firewalls by server and
//! label), so the check stays linear in the size of the phase; failures are grouped by reason, so
//! the instances of a counted consumer blocked for one reason make one diagnostic.

use std::collections::{BTreeMap, BTreeSet};

use ipnet::{IpNet, Ipv4Net};
use terrace_providers::pricing::Catalog;

use crate::addr::Address;
use crate::diag::{Diagnostic, Diagnostics, Span};
use crate::kind::Kind;
use crate::model::{Admission, Compiled, Composite, Endpoint, Listen, Origin, Resource, Source};
use crate::value::Value;

mod index;

use index::{Facts, Gate, Group, Index, Who, parse_selector};

pub(super) struct ReachChecker<'a> {
    pub compiled: &'a Compiled,
    pub catalog: &'a Catalog,
    pub diags: &'a mut Diagnostics,
}

/// How many consumers (or targets) a diagnostic names before it counts the rest.
const NAMED: usize = 3;

/// The layers a connection crosses, in the order they are reported.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
enum Layer {
    Network,
    Listen,
    Firewall,
    Access,
    Tls,
}

impl Layer {
    fn name(self) -> &'static str {
        match self {
            Layer::Network => "network/zone",
            Layer::Listen => "listen addresses",
            Layer::Firewall => "Hetzner firewall",
            Layer::Access => "access rules",
            Layer::Tls => "TLS",
        }
    }
}

/// How a connection travels.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord)]
enum Route {
    /// From the server to itself: its processes and its containers.
    Host,
    /// Over this private network, which the firewalls do not filter.
    Private(Address),
    /// Over the public internet.
    Public,
    /// None: a load balancer told to use the private IP of a target on no network it is on.
    Nowhere,
}

/// Where a connection comes from, as access rules see it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
enum Caller {
    Processes,
    Containers,
    PrivateNetwork,
    PublicAddress,
}

/// Why a connection is blocked.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord)]
enum Blocked {
    /// No shared private network, and this server has no public IPv4.
    NoPublicIpv4(Address),
    /// `use_private_ip = true` for a target on no network the load balancer is on.
    PrivateWithoutNetwork,
    /// The service listens on its host's loopback (and docker0 bridge) only.
    LocalOnly { host: Address, docker: bool },
    /// Redis over the public internet: terrace serves it without TLS.
    RedisInClear,
    /// None of these firewalls (those applied to the server) opens the port to the consumer.
    Firewall(Vec<Address>),
    /// No line of the access rules admits the consumer.
    NotAdmitted(Caller),
    /// Admitted over the public internet without TLS (`host`, not `hostssl`).
    Cleartext,
}

/// What a diagnostic is about: who fails to reach what.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord)]
enum Subject {
    /// Applications using a service, as they became its consumers.
    Service { composite: Address, why: Why },
    /// Replicas replicating from their primary.
    Replication { composite: Address },
    /// A load balancer reaching the servers of its target block.
    Targets { lb: Address, index: usize },
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
enum Why {
    /// Written in `clients`.
    Written,
    /// On the service's network, no `clients` written.
    OnNetwork,
    /// The host of a service `on` it.
    Host,
}

/// A port and what serves it (`PgBouncer`, or for a load balancer's target what it is used for).
type Port = (u16, &'static str);

/// A service open to the internet.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord)]
enum Exposure {
    NoFirewall,
    /// A rule of this firewall opens the port to this source.
    Open {
        firewall: Address,
        source: String,
    },
}

type BlockedKey = (Subject, Layer, Blocked, Route);

/// The ports a finding holds for, and where its diagnostic points.
type Ports = (BTreeSet<Port>, Option<Span>);

/// What failed, collected before it is grouped into diagnostics.
#[derive(Default)]
struct Findings {
    /// (what, endpoint server, consumer) -> the ports, and where to point.
    blocked: BTreeMap<(BlockedKey, Address, Address), Ports>,
    /// (service, server, why) -> the ports, and where to point.
    exposed: BTreeMap<(Address, Address, Exposure), Ports>,
}

impl<'a> ReachChecker<'a> {
    pub(super) fn reach(&mut self) {
        let compiled: &'a Compiled = self.compiled;
        let lbs: Vec<&Resource> =
            compiled.resources.iter().map(|(_, r)| r).filter(|r| r.kind == Kind::LoadBalancer).collect();
        if compiled.composites.is_empty() && lbs.is_empty() {
            // Nothing consumes anything: no index to build.
            return;
        }
        let selectors = lbs.iter().any(|lb| lb.blocks("target").iter().any(|t| t.contains_key("label_selector")));
        let index = Index::build(compiled, self.catalog, selectors);
        let mut findings = Findings::default();
        for composite in &self.compiled.composites {
            self.service(composite, &index, &mut findings);
        }
        for lb in lbs {
            self.load_balancer(lb, &index, &mut findings);
        }
        self.report(findings);
    }

    /// The composite's origin: any member carries the composite's spans.
    fn origin_of(&self, composite: &Composite) -> Option<&'a Origin> {
        let compiled: &'a Compiled = self.compiled;
        composite.members.iter().find_map(|m| compiled.resource(m)).map(|r| &r.origin)
    }

    fn service(&self, composite: &'a Composite, index: &Index<'a>, findings: &mut Findings) {
        let origin = self.origin_of(composite);
        let on_host = composite.attrs.get("on").and_then(Value::as_ref).map(|r| &r.address);
        // A service `on` a server is on that server's network.
        let network = composite
            .network
            .as_ref()
            .or_else(|| composite.endpoints.iter().find_map(|e| index.servers.get(&e.server).and_then(|f| f.joined)));
        let local = composite.endpoints.iter().any(|e| matches!(e.listen, Listen::Local { .. }));
        // The consumers, in groups that share a network and a zone: on a private path all of a
        // group fare alike, so one of them stands for the rest (thousands of servers on the
        // service's network are one check per server of the service and port).
        let (why, groups): (Why, Vec<Group<'_>>) = if !composite.clients.is_empty() {
            (Why::Written, Group::of(composite.clients.iter(), index))
        } else if local {
            (Why::Host, Group::of(composite.endpoints.iter().map(|e| &e.server), index))
        } else {
            let zones = network.and_then(|n| index.on_network.get(n).map(|zones| (n, zones)));
            let groups = zones
                .into_iter()
                .flat_map(|(n, zones)| {
                    zones.iter().map(move |(zone, members)| Group {
                        network: Some(n),
                        zone: Some(zone.as_str()),
                        members: members.clone(),
                    })
                })
                .collect();
            (Why::OnNetwork, groups)
        };
        let subject = Subject::Service { composite: composite.address.clone(), why };
        let span_of = |facts: &Facts<'_>| match why {
            Why::Written => origin.and_then(|o| o.attr("clients")),
            Why::OnNetwork => facts.resource.origin.attr("network"),
            Why::Host => origin.and_then(|o| o.attr("on")),
        };
        for endpoint in &composite.endpoints {
            let Some(server) = index.servers.get(&endpoint.server) else { continue };
            let gate = index.gate(server);
            if endpoint.listen == Listen::Everywhere {
                let span = match on_host {
                    Some(_) => origin.and_then(|o| o.attr("on")),
                    None => origin.and_then(|o| o.block.clone()),
                };
                exposure(composite, endpoint, &gate, span, findings);
            }
            // Without `clients`, a server of the service outside its network (a replica in another
            // zone, kept for disaster recovery) serves no one but its written clients.
            if why == Why::OnNetwork && server.joined != network {
                continue;
            }
            let mut record = |facts: &Facts<'_>, port: Port, (route, layer, blocked): (Route, Layer, Blocked)| {
                let key = ((subject.clone(), layer, blocked, route), endpoint.server.clone(), facts.address.clone());
                findings.blocked.entry(key).or_insert_with(|| (BTreeSet::new(), span_of(facts))).0.insert(port);
            };
            for group in &groups {
                let uniform = group.network.is_some()
                    && group.network == server.joined
                    && group.zone.is_some()
                    && group.zone == server.zone.as_deref();
                let members = group.members.iter().filter_map(|a| index.servers.get(a));
                if uniform {
                    // The server itself is on its own route; every other member on the private one,
                    // where the first stands for the rest (its verdict is only copied on a failure).
                    let itself = group.members.binary_search(&server.address).ok().map(|_| server);
                    let mut others = members.filter(|f| f.address != server.address);
                    if let Some(first) = others.next() {
                        for &port in &endpoint.ports {
                            if let Some(found) = verdict(endpoint, server, &gate, first, port.0, false) {
                                record(first, port, found.clone());
                                others.clone().for_each(|f| record(f, port, found.clone()));
                            }
                        }
                    }
                    for &port in itself.map(|_| endpoint.ports.as_slice()).unwrap_or_default() {
                        if let Some(found) = verdict(endpoint, server, &gate, server, port.0, false) {
                            record(server, port, found);
                        }
                    }
                    continue;
                }
                for facts in members {
                    for &port in &endpoint.ports {
                        if let Some(found) = verdict(endpoint, server, &gate, facts, port.0, false) {
                            record(facts, port, found);
                        }
                    }
                }
            }
        }
        // Replicas replicate from their primary on its first port (PostgreSQL's 5432, Redis's 6379).
        for replica in &composite.endpoints {
            let Some((primary, _)) = &replica.replicates_from else { continue };
            let Some(endpoint) = composite.endpoints.iter().find(|e| &e.server == primary) else { continue };
            let (Some(server), Some(facts)) = (index.servers.get(primary), index.servers.get(&replica.server)) else {
                continue;
            };
            let Some(&port) = endpoint.ports.first() else { continue };
            let gate = index.gate(server);
            if let Some((route, layer, blocked)) = verdict(endpoint, server, &gate, facts, port.0, true) {
                let subject = Subject::Replication { composite: composite.address.clone() };
                let span = facts.resource.origin.attr("replicas");
                let key = ((subject, layer, blocked, route), primary.clone(), replica.server.clone());
                findings.blocked.entry(key).or_insert_with(|| (BTreeSet::new(), span)).0.insert(port);
            }
        }
    }

    fn load_balancer(&self, lb: &'a Resource, index: &Index<'a>, findings: &mut Findings) {
        let ports = target_ports(lb);
        if ports.is_empty() {
            return;
        }
        for (i, target) in lb.blocks("target").into_iter().enumerate() {
            let servers: Vec<&Address> = match (target.get("server"), target.get("label_selector")) {
                (Some(list), _) => list
                    .as_list()
                    .unwrap_or_default()
                    .iter()
                    .filter_map(|v| v.as_ref().map(|r| &r.address))
                    .filter_map(|a| index.servers.get_key_value(a).map(|(k, _)| *k))
                    .collect(),
                (None, Some(selector)) => match selector.as_str().and_then(parse_selector) {
                    Some(requirements) => index.select(&requirements),
                    None => continue,
                },
                _ => continue,
            };
            // Hetzner's default is the target's public IP.
            let private = target.get("use_private_ip").and_then(Value::as_bool).unwrap_or(false);
            let span = lb.origin.attr(&format!("target[{i}]"));
            let subject = Subject::Targets { lb: lb.address.clone(), index: i };
            let named = target.contains_key("server");
            for address in servers {
                let Some(server) = index.servers.get(address) else { continue };
                let (route, blocked) = if private {
                    // A shared network carries it, unfiltered by the firewalls. Without one, a
                    // named server is reported by `network.rs`, a selected one here.
                    if named || (server.joined.is_some() && server.joined == lb.ref_attr("network")) {
                        continue;
                    }
                    let blocked = Blocked::PrivateWithoutNetwork;
                    (Route::Nowhere, ports.iter().map(|&port| (port, Layer::Network, blocked.clone())).collect())
                } else if server.public_ipv4 {
                    let gate = index.gate(server);
                    let who = Who::LoadBalancer(&lb.address);
                    let blocked = ports
                        .iter()
                        .filter(|(port, _)| !gate.opens(*port, who))
                        .map(|&port| (port, Layer::Firewall, Blocked::Firewall(gate.names())))
                        .collect::<Vec<_>>();
                    (Route::Public, blocked)
                } else {
                    let blocked = Blocked::NoPublicIpv4(address.clone());
                    (Route::Public, ports.iter().map(|&port| (port, Layer::Network, blocked.clone())).collect())
                };
                for (port, layer, blocked) in blocked {
                    let key = ((subject.clone(), layer, blocked, route.clone()), address.clone(), lb.address.clone());
                    findings.blocked.entry(key).or_insert_with(|| (BTreeSet::new(), span.clone())).0.insert(port);
                }
            }
        }
    }

    /// Groups the findings into diagnostics: the ports of one consumer and server, then the
    /// consumers blocked for one reason on the same ports, then the servers they fail alike.
    fn report(&mut self, findings: Findings) {
        type Step2 = BTreeMap<(BlockedKey, Address, Vec<Port>), (Vec<Address>, Option<Span>)>;
        let mut by_consumers: Step2 = BTreeMap::new();
        for ((key, server, consumer), (ports, span)) in findings.blocked {
            let ports: Vec<Port> = ports.into_iter().collect();
            let entry = by_consumers.entry((key, server, ports)).or_insert_with(|| (Vec::new(), span));
            entry.0.push(consumer);
        }
        type Step3 = BTreeMap<(BlockedKey, Vec<Port>, Vec<Address>), (Vec<Address>, Option<Span>)>;
        let mut by_servers: Step3 = BTreeMap::new();
        for ((key, server, ports), (consumers, span)) in by_consumers {
            let entry = by_servers.entry((key, ports, consumers)).or_insert_with(|| (Vec::new(), span));
            entry.0.push(server);
        }
        for (((subject, layer, blocked, route), ports, consumers), (servers, span)) in by_servers {
            let diagnostic = self.blocked_diagnostic(&subject, layer, &blocked, &route, &ports, &consumers, &servers);
            self.diags.push(diagnostic.at(span));
        }
        for ((composite, server, exposure), (ports, span)) in findings.exposed {
            let ports: Vec<Port> = ports.into_iter().collect();
            let numbers = numbers(&ports);
            let (reason, hint) = match &exposure {
                Exposure::NoFirewall => (
                    format!("no firewall applies to `{server}`, and the service listens on all its addresses"),
                    format!(
                        "apply a firewall to `{server}` (its `firewalls`, or a firewall's `apply_to`) that leaves {numbers} closed: a firewall filters only the public interface, so clients on the private network still reach it"
                    ),
                ),
                Exposure::Open { firewall, source } => (
                    format!("the firewall `{firewall}` opens {numbers} to {source}"),
                    "limit the rule's `source_ips` to the clients' public addresses (`server.NAME.ipv4_cidr`), or drop it: clients on the private network need no rule".to_owned(),
                ),
            };
            self.diags.push(
                Diagnostic::error(format!(
                    "`{composite}` ({}, {}) is reachable from the internet: {reason}",
                    relative(&server, &composite),
                    ports_text(&ports)
                ))
                .at(span)
                .label("open to the internet")
                .detail("only the service's password protects it from every address on the internet")
                .hint(hint),
            );
        }
    }

    #[expect(clippy::too_many_arguments, reason = "one group of findings, as grouped")]
    fn blocked_diagnostic(
        &self,
        subject: &Subject,
        layer: Layer,
        blocked: &Blocked,
        route: &Route,
        ports: &[Port],
        consumers: &[Address],
        servers: &[Address],
    ) -> Diagnostic {
        let numbers = numbers(ports);
        let plural = consumers.len() > 1;
        let (its, it) = if plural { ("their", "them") } else { ("its", "it") };
        let composite = match subject {
            Subject::Service { composite, .. } | Subject::Replication { composite } => {
                self.compiled.composite(composite)
            }
            Subject::Targets { .. } => None,
        };
        let on_host = composite.is_some_and(|c| c.attrs.get("on").and_then(Value::as_ref).is_some());
        let network = composite.and_then(|c| c.network.as_ref());
        let summary_head = match subject {
            Subject::Service { composite, .. } => format!(
                "{} cannot reach `{composite}` ({}, {})",
                listed(consumers),
                servers.iter().map(|s| relative(s, composite)).collect::<Vec<_>>().join(" and "),
                ports_text(ports)
            ),
            Subject::Replication { composite } => format!(
                "{} cannot replicate from `{composite}` ({}, {})",
                listed(consumers),
                servers.iter().map(|s| relative(s, composite)).collect::<Vec<_>>().join(" and "),
                ports_text(ports)
            ),
            Subject::Targets { lb, .. } => format!(
                "`{lb}` cannot reach its target{} {} on {}",
                if servers.len() > 1 { "s" } else { "" },
                listed(servers),
                ports_text(ports)
            ),
        };
        let first = consumers.first().map(ToString::to_string).unwrap_or_default();
        let (reason, hint) = match blocked {
            Blocked::PrivateWithoutNetwork => (
                "`use_private_ip = true`, but they share no network".to_owned(),
                "put the load balancer and its targets on one network, or set `use_private_ip = false` (the targets' firewalls must then open these ports to the load balancer)".to_owned(),
            ),
            Blocked::NoPublicIpv4(server) => (
                format!("they share no private network and `{server}` has no public IPv4"),
                match subject {
                    Subject::Targets { lb, .. } => format!(
                        "put `{lb}` on the target's network and set `use_private_ip = true`, or give `{server}` a public IPv4 (`public_net {{ ipv4_enabled = true }}`)"
                    ),
                    _ => format!(
                        "put both on one private network in one network zone{}, or give `{server}` a public IPv4 (`public_net {{ ipv4_enabled = true }}`)",
                        network.map(|n| format!(" (`{n}`)")).unwrap_or_default()
                    ),
                },
            ),
            Blocked::LocalOnly { host, docker } => (
                format!(
                    "it listens only on `{host}`'s loopback{}",
                    if *docker { " and docker0 bridge" } else { "" }
                ),
                format!(
                    "run the client on `{host}`, or put `{host}` and the client on one private network: the service then listens there too, and the host's firewall must keep {numbers} closed to the internet"
                ),
            ),
            Blocked::RedisInClear => (
                "they share no private network, and terrace serves Redis without TLS: its password and data would cross the internet in clear".to_owned(),
                format!(
                    "give each region its own Redis on its private network, as the bundled multi-region phase does (`redis \"cache_us\"`){}",
                    network.map(|n| format!(", or put the client on `{n}`")).unwrap_or_default()
                ),
            ),
            Blocked::Firewall(firewalls) => {
                let names: Vec<String> = firewalls.iter().map(|f| format!("`{f}`")).collect();
                let which = if names.len() == 1 {
                    format!("the firewall {} does not", names[0])
                } else {
                    format!("the firewalls {} do not", names.join(", "))
                };
                let to = match subject {
                    Subject::Targets { .. } => "the load balancer's public address".to_owned(),
                    _ if plural => "their public addresses".to_owned(),
                    _ => "its public address".to_owned(),
                };
                let own = composite.is_some_and(|c| firewalls.iter().all(|f| f.is_within(&c.address)));
                let hint = match (subject, composite) {
                    (Subject::Targets { lb, .. }, _) => format!(
                        "set `use_private_ip = true` with `{lb}` on the targets' network (a firewall filters only the public interface), or open {numbers} to `{lb}.ipv4_address` in {}",
                        names.join(", ")
                    ),
                    (Subject::Service { why: Why::OnNetwork, .. }, Some(c)) if own && c.kind == Kind::Postgres => {
                        format!(
                            "write {it} in `clients` of `{}`: its firewall then opens {numbers} to {its} public address{}, and its access rules admit {it} over TLS",
                            c.address,
                            if plural { "es" } else { "" }
                        )
                    }
                    _ => format!(
                        "open {numbers} to `{first}.ipv4_cidr` in a rule of {}, or put both on one private network, which firewalls do not filter",
                        names.join(", ")
                    ),
                };
                (format!("{which} open {numbers} to {to}"), hint)
            }
            Blocked::NotAdmitted(from) => {
                let files = if ports.iter().any(|(_, what)| *what == "PgBouncer") {
                    "pg_hba.conf and PgBouncer's"
                } else {
                    "pg_hba.conf"
                };
                let what = if matches!(subject, Subject::Replication { .. }) { "replication" } else { "connection" };
                let from_text = match from {
                    Caller::Processes => "the host's own processes".to_owned(),
                    Caller::Containers => "the host's Docker containers".to_owned(),
                    Caller::PrivateNetwork => format!("{its} private network"),
                    Caller::PublicAddress if plural => "their public addresses".to_owned(),
                    Caller::PublicAddress => "its public address".to_owned(),
                };
                let hint = match (from, composite) {
                    (Caller::PublicAddress, Some(c)) if on_host => format!(
                        "a service `on` a server admits its host and the host's private network only: put {it} on that network, or give `{}` servers of its own (drop `on`) and write {it} in `clients`",
                        c.address
                    ),
                    (Caller::PublicAddress, Some(c)) => format!(
                        "write {it} in `clients` of `{}`: {} then admitted by address, over TLS",
                        c.address,
                        if plural { "they are" } else { "it is" }
                    ),
                    (Caller::Containers, _) => "set `docker_clients = true` on the service".to_owned(),
                    _ => format!(
                        "put {it} on the service's network{}, whose range its access rules admit",
                        network.map(|n| format!(" `{n}`")).unwrap_or_default()
                    ),
                };
                (format!("its access rules ({files}) admit no {what} from {from_text}"), hint)
            }
            Blocked::Cleartext => (
                "it is admitted over the public internet without TLS (`host`, not `hostssl`): the password would cross the internet in clear".to_owned(),
                "admit clients outside the private network with `hostssl` lines only, as `clients` does".to_owned(),
            ),
        };
        let path = match route {
            Route::Host => "the host itself".to_owned(),
            Route::Private(network) => format!("the private network `{network}`"),
            Route::Public if matches!(subject, Subject::Targets { .. }) => {
                "the public internet, to the targets' public IPs (`use_private_ip = false`, Hetzner's default)"
                    .to_owned()
            }
            Route::Public => "the public internet (no shared private network)".to_owned(),
            Route::Nowhere => "none (a private IP, but no shared network)".to_owned(),
        };
        Diagnostic::error(format!("{summary_head}: {reason}"))
            .label(format!("blocked at: {}", layer.name()))
            .detail(format!("path: {path}; blocked at: {}", layer.name()))
            .hint(hint)
    }
}

/// The first layer that blocks `consumer` from `endpoint` (on `server`) on `port`, with the route.
fn verdict(
    endpoint: &Endpoint,
    server: &Facts<'_>,
    gate: &Gate<'_>,
    consumer: &Facts<'_>,
    port: u16,
    replication: bool,
) -> Option<(Route, Layer, Blocked)> {
    let (Some(zone), Some(consumer_zone)) = (&server.zone, &consumer.zone) else {
        // A location the catalog does not know is reported on its own.
        return None;
    };
    let lines = endpoint.admits.as_deref();
    let admits = |source: &dyn Fn(&Source) -> bool| -> Vec<&Admission> {
        lines.unwrap_or_default().iter().filter(|a| a.replication == replication && source(&a.source)).collect()
    };
    if consumer.address == server.address {
        let mut wanted = vec![(Source::Local, Caller::Processes)];
        if endpoint.listen == (Listen::Local { docker: true }) {
            wanted.push((Source::Docker, Caller::Containers));
        }
        for (source, from) in wanted {
            if lines.is_some() && admits(&|s| *s == source).is_empty() {
                return Some((Route::Host, Layer::Access, Blocked::NotAdmitted(from)));
            }
        }
        return None;
    }
    let route = match (server.joined, consumer.joined) {
        (Some(a), Some(b)) if a == b && zone == consumer_zone => Route::Private(a.clone()),
        _ => Route::Public,
    };
    if let Listen::Local { docker } = endpoint.listen {
        return Some((route, Layer::Listen, Blocked::LocalOnly { host: server.address.clone(), docker }));
    }
    if let Route::Private(_) = route {
        if lines.is_none() || consumer.subnets.is_empty() {
            return None;
        }
        let admitted = admits(&|s| match s {
            Source::Cidr(range) => {
                range.parse::<Ipv4Net>().is_ok_and(|range| consumer.subnets.iter().all(|s| range.contains(s)))
            }
            _ => false,
        });
        return admitted.is_empty().then_some((route, Layer::Access, Blocked::NotAdmitted(Caller::PrivateNetwork)));
    }
    for side in [server, consumer] {
        if !side.public_ipv4 {
            return Some((route, Layer::Network, Blocked::NoPublicIpv4(side.address.clone())));
        }
    }
    if lines.is_none() {
        return Some((route, Layer::Tls, Blocked::RedisInClear));
    }
    let who = Who::Server { address: consumer.address, primary_ip: consumer.primary_ip };
    if !gate.opens(port, who) {
        return Some((route, Layer::Firewall, Blocked::Firewall(gate.names())));
    }
    let admitted = admits(&|s| match s {
        Source::PublicIp(address) => address == consumer.address,
        Source::Cidr(range) => range.parse::<IpNet>().is_ok_and(|r| r.prefix_len() == 0 && matches!(r, IpNet::V4(_))),
        _ => false,
    });
    if admitted.is_empty() {
        return Some((route, Layer::Access, Blocked::NotAdmitted(Caller::PublicAddress)));
    }
    if admitted.iter().any(|a| !a.tls_only) {
        return Some((route, Layer::Tls, Blocked::Cleartext));
    }
    None
}

/// Records an endpoint that listens on every address and is open to the internet.
fn exposure(composite: &Composite, endpoint: &Endpoint, gate: &Gate<'_>, span: Option<Span>, findings: &mut Findings) {
    for &port in &endpoint.ports {
        let (exposure, span) = if gate.firewalls.is_empty() {
            (Exposure::NoFirewall, span.clone())
        } else {
            let open = gate.rules.iter().filter(|r| r.covers_port(port.0)).find_map(|rule| {
                let source = rule.sources.iter().find_map(|s| s.as_str().filter(|s| is_everyone(s)))?;
                Some((rule, source))
            });
            let Some((rule, source)) = open else { continue };
            let at = rule.firewall.origin.attr(&format!("rule[{}].source_ips", rule.index));
            (Exposure::Open { firewall: rule.firewall.address.clone(), source: source.to_owned() }, at)
        };
        let key = (composite.address.clone(), endpoint.server.clone(), exposure);
        findings.exposed.entry(key).or_insert_with(|| (BTreeSet::new(), span)).0.insert(port);
    }
}

/// `0.0.0.0/0` or `::/0`: every address.
fn is_everyone(source: &str) -> bool {
    source.parse::<IpNet>().is_ok_and(|net| net.prefix_len() == 0)
}

/// The ports a load balancer reaches its targets on: each service's destination port and its
/// health check's port.
fn target_ports(lb: &Resource) -> Vec<Port> {
    let mut uses: BTreeMap<u16, (bool, bool)> = BTreeMap::new();
    for service in lb.blocks("service") {
        let protocol = service.get("protocol").and_then(Value::as_str).unwrap_or("tcp");
        // Hetzner's default destination: 80 for HTTP and HTTPS, the listen port for TCP.
        let destination = service.get("destination_port").and_then(Value::as_u64).or(match protocol {
            "http" | "https" => Some(80),
            _ => service.get("listen_port").and_then(Value::as_u64),
        });
        let check = match service.get("health_check") {
            Some(Value::Map(check)) => Some(check),
            Some(Value::List(items)) => items.first().and_then(Value::as_map),
            _ => None,
        };
        let check_port = check.and_then(|c| c.get("port")).and_then(Value::as_u64);
        for (port, is_check) in [(destination, false), (check_port, true)] {
            let Some(port) = port.and_then(|p| u16::try_from(p).ok()).filter(|p| *p > 0) else { continue };
            let entry = uses.entry(port).or_default();
            if is_check {
                entry.1 = true;
            } else {
                entry.0 = true;
            }
        }
    }
    uses.into_iter()
        .map(|(port, uses)| {
            let what = match uses {
                (true, true) => "(service destination and health check)",
                (true, false) => "(service destination)",
                _ => "(health check)",
            };
            (port, what)
        })
        .collect()
}

/// `server.primary` for a member of `composite`; the whole address otherwise (a service's host).
fn relative(server: &Address, composite: &Address) -> String {
    let text = server.to_string();
    if server.is_within(composite) {
        let prefix = format!("{composite}.");
        if let Some(rest) = text.strip_prefix(&prefix) {
            return rest.to_owned();
        }
    }
    text
}

/// "`a`", "`a` and `b`", "`a`, `b`, `c` and 7 more".
fn listed(items: &[Address]) -> String {
    let named: Vec<String> = items.iter().take(NAMED).map(|a| format!("`{a}`")).collect();
    match (items.len(), named.as_slice()) {
        (_, []) => String::new(),
        (1, [one]) => one.clone(),
        (n, names) if n <= NAMED => {
            let (last, rest) = names.split_last().map(|(l, r)| (l.clone(), r.join(", "))).unwrap_or_default();
            format!("{rest} and {last}")
        }
        (n, names) => format!("{} and {} more", names.join(", "), n - NAMED),
    }
}

/// "port 6432 PgBouncer", "ports 5432 PostgreSQL and 6432 PgBouncer".
fn ports_text(ports: &[Port]) -> String {
    let items: Vec<String> = ports.iter().map(|(port, what)| format!("{port} {what}")).collect();
    match items.split_last() {
        Some((last, [])) => format!("port {last}"),
        Some((last, rest)) => format!("ports {} and {last}", rest.join(", ")),
        None => String::new(),
    }
}

/// "6432", "5432 and 6432".
fn numbers(ports: &[Port]) -> String {
    let items: Vec<String> = ports.iter().map(|(port, _)| port.to_string()).collect();
    match items.split_last() {
        Some((last, [])) => last.clone(),
        Some((last, rest)) => format!("{} and {last}", rest.join(", ")),
        None => String::new(),
    }
}

#[cfg(test)]
mod tests;
