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

use std::collections::{BTreeMap, BTreeSet, HashMap};

use ipnet::{IpNet, Ipv4Net};
use terrace_providers::pricing::Catalog;

use crate::addr::Address;
use crate::diag::{Diagnostic, Diagnostics, Span};
use crate::kind::Kind;
use crate::model::{Admission, Compiled, Composite, Endpoint, Listen, Origin, Resource, Source};
use crate::value::Value;

pub(super) struct ReachChecker<'a> {
    pub compiled: &'a Compiled,
    pub catalog: &'a Catalog,
    pub diags: &'a mut Diagnostics,
}

/// How many consumers (or targets) a diagnostic names before it counts the rest.
const NAMED: usize = 3;

/// What the check needs to know of one server, read once.
struct Facts<'a> {
    address: &'a Address,
    resource: &'a Resource,
    /// The network zone of its location; `None` when the location is unknown (reported elsewhere).
    zone: Option<String>,
    /// The private network it is on, where that network has a subnet in its zone.
    joined: Option<&'a Address>,
    /// That network's subnets in its zone: where its private address comes from.
    subnets: Vec<Ipv4Net>,
    public_ipv4: bool,
    /// The primary IPv4 object assigned to it, which firewall rules may name.
    primary_ip: Option<&'a Address>,
}

/// The phase's servers and firewalls, indexed for the questions the check asks.
struct Index<'a> {
    servers: HashMap<&'a Address, Facts<'a>>,
    /// Servers that are no composite's member, by the network they are on and their zone, in
    /// address order.
    on_network: HashMap<&'a Address, BTreeMap<String, Vec<&'a Address>>>,
    /// Every server, in address order, and by label (`key=value`) for label selectors.
    all_servers: Vec<&'a Address>,
    by_label: HashMap<(&'a str, &'a str), Vec<&'a Address>>,
    firewalls: FirewallIndex<'a>,
}

/// Which firewalls apply to a server: named ones (`apply_to { server }`, the server's `firewalls`)
/// and label selectors, indexed by one `key=value` they require.
#[derive(Default)]
struct FirewallIndex<'a> {
    named: HashMap<&'a Address, Vec<&'a Resource>>,
    selecting: Vec<(&'a Resource, Vec<Requirement>)>,
    by_label: HashMap<(String, String), Vec<usize>>,
    /// Selectors without an equality, tried against every server asked about.
    unindexed: Vec<usize>,
}

/// Consumers on one network in one zone (or on none).
struct Group<'a> {
    network: Option<&'a Address>,
    zone: Option<&'a str>,
    members: Vec<&'a Address>,
}

impl<'a> Group<'a> {
    /// Servers grouped by the network they are on and their zone.
    fn of(servers: impl Iterator<Item = &'a Address>, index: &'a Index<'a>) -> Vec<Group<'a>> {
        let mut groups: BTreeMap<(Option<&Address>, Option<&str>), Vec<&Address>> = BTreeMap::new();
        for address in servers {
            let Some(facts) = index.servers.get(address) else { continue };
            groups.entry((facts.joined, facts.zone.as_deref())).or_default().push(facts.address);
        }
        groups
            .into_iter()
            .map(|((network, zone), mut members)| {
                // Sorted, so that the check can find the service's own server among them.
                members.sort();
                members.dedup();
                Group { network, zone, members }
            })
            .collect()
    }
}

/// The inbound TCP rules of the firewalls applied to one server.
struct Gate<'a> {
    firewalls: Vec<&'a Address>,
    rules: Vec<Rule<'a>>,
}

struct Rule<'a> {
    firewall: &'a Resource,
    index: usize,
    /// The ports it opens, inclusive; `None` for every port.
    ports: Option<(u16, u16)>,
    sources: &'a [Value],
}

/// Whom a firewall rule or an access rule must let in.
#[derive(Clone, Copy)]
enum Who<'a> {
    Server { address: &'a Address, primary_ip: Option<&'a Address> },
    LoadBalancer(&'a Address),
}

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

impl<'a> Index<'a> {
    /// Reads the phase once; `by_label` only when a load balancer selects its targets by label.
    fn build(compiled: &'a Compiled, catalog: &Catalog, by_labels: bool) -> Self {
        let mut zones: HashMap<&str, Option<String>> = HashMap::new();
        let mut zone_of = |location: Option<&'a str>| -> Option<String> {
            let location = location?;
            zones.entry(location).or_insert_with(|| catalog.location(location).map(|l| l.network_zone)).clone()
        };
        let mut subnets: HashMap<&Address, Vec<(&str, Option<Ipv4Net>)>> = HashMap::new();
        let mut primary_ips: HashMap<&Address, &Address> = HashMap::new();
        let mut firewalls = FirewallIndex::default();
        for (address, resource) in compiled.resources.iter() {
            match resource.kind {
                Kind::Network => {
                    let list = resource
                        .blocks("subnet")
                        .into_iter()
                        .map(|s| {
                            let zone = s.get("network_zone").and_then(Value::as_str).unwrap_or_default();
                            let range = s.get("ip_range").and_then(Value::as_str).and_then(|r| r.parse().ok());
                            (zone, range)
                        })
                        .collect();
                    subnets.insert(address, list);
                }
                Kind::PrimaryIp if resource.str_attr("type").unwrap_or("ipv4") == "ipv4" => {
                    if let Some(server) = resource.ref_attr("assignee") {
                        primary_ips.insert(server, address);
                    }
                }
                Kind::Firewall => firewalls.add(resource),
                _ => {}
            }
        }
        let mut servers = HashMap::new();
        let mut on_network: HashMap<&Address, BTreeMap<String, Vec<&Address>>> = HashMap::new();
        let mut all_servers = Vec::new();
        let mut by_label: HashMap<(&str, &str), Vec<&Address>> = HashMap::new();
        for (address, resource) in compiled.resources.iter() {
            if resource.kind != Kind::Server {
                continue;
            }
            let zone = zone_of(resource.str_attr("location"));
            let network = resource.ref_attr("network");
            let in_zone: Vec<Ipv4Net> = match (network.and_then(|n| subnets.get(n)), &zone) {
                (Some(list), Some(zone)) => list.iter().filter(|(z, _)| z == zone).filter_map(|(_, r)| *r).collect(),
                _ => Vec::new(),
            };
            let has_subnet = match (network.and_then(|n| subnets.get(n)), &zone) {
                (Some(list), Some(zone)) => list.iter().any(|(z, _)| z == zone),
                _ => false,
            };
            let joined = network.filter(|_| has_subnet);
            let public_net = resource.attr("public_net").and_then(|p| match p {
                Value::Map(map) => Some(map),
                Value::List(items) => items.first().and_then(Value::as_map),
                _ => None,
            });
            let public_ipv4 = public_net.and_then(|p| p.get("ipv4_enabled")).and_then(Value::as_bool).unwrap_or(true);
            let primary_ip = public_net
                .and_then(|p| p.get("ipv4"))
                .and_then(Value::as_ref)
                .map(|r| &r.address)
                .or_else(|| primary_ips.get(address).copied());
            if by_labels && let Some(Value::Map(labels)) = resource.attr("labels") {
                for (key, value) in labels {
                    if let Some(value) = value.as_str() {
                        by_label.entry((key.as_str(), value)).or_default().push(address);
                    }
                }
            }
            if let (Some(network), Some(zone)) = (joined, &zone)
                && resource.composite.is_none()
            {
                on_network.entry(network).or_default().entry(zone.clone()).or_default().push(address);
            }
            if let Some(list) = resource.attr("firewalls").and_then(Value::as_list) {
                for firewall in list.iter().filter_map(Value::as_ref) {
                    if let Some(firewall) = compiled.resource(&firewall.address) {
                        firewalls.named.entry(address).or_default().push(firewall);
                    }
                }
            }
            all_servers.push(address);
            servers
                .insert(address, Facts { address, resource, zone, joined, subnets: in_zone, public_ipv4, primary_ip });
        }
        all_servers.sort();
        for list in on_network.values_mut().flat_map(BTreeMap::values_mut) {
            list.sort();
        }
        Index { servers, on_network, all_servers, by_label, firewalls }
    }

    /// The servers a label selector picks, in address order.
    fn select(&self, requirements: &[Requirement]) -> Vec<&'a Address> {
        let candidates: &[&Address] = match requirements.iter().find_map(Requirement::equality) {
            Some(pair) => self.by_label.get(&pair).map(Vec::as_slice).unwrap_or_default(),
            None => &self.all_servers,
        };
        let mut picked: Vec<&Address> = candidates
            .iter()
            .copied()
            .filter(|a| self.servers.get(a).is_some_and(|f| matches_labels(requirements, f.resource)))
            .collect();
        picked.sort();
        picked
    }

    /// The firewalls applied to a server and their inbound TCP rules.
    fn gate(&self, server: &Facts<'a>) -> Gate<'a> {
        let mut applied: Vec<&Resource> = self.firewalls.named.get(server.address).cloned().unwrap_or_default();
        let mut candidates: Vec<usize> = self.firewalls.unindexed.clone();
        if let Some(Value::Map(labels)) = server.resource.attr("labels") {
            for (key, value) in labels {
                if let Some(value) = value.as_str()
                    && let Some(list) = self.firewalls.by_label.get(&(key.clone(), value.to_owned()))
                {
                    candidates.extend(list);
                }
            }
        }
        for i in candidates {
            let (firewall, requirements) = &self.firewalls.selecting[i];
            if matches_labels(requirements, server.resource) {
                applied.push(firewall);
            }
        }
        applied.sort_by(|a, b| a.address.cmp(&b.address));
        applied.dedup_by(|a, b| a.address == b.address);
        let mut rules = Vec::new();
        for firewall in &applied {
            for (index, rule) in firewall.blocks("rule").into_iter().enumerate() {
                let text = |name: &str| rule.get(name).and_then(Value::as_str);
                if text("direction") != Some("in") || text("protocol") != Some("tcp") {
                    continue;
                }
                let ports = match text("port") {
                    None | Some("any") => None,
                    Some(port) => match parse_ports(port) {
                        Some(range) => Some(range),
                        None => continue,
                    },
                };
                let sources = rule.get("source_ips").and_then(Value::as_list).unwrap_or_default();
                rules.push(Rule { firewall, index, ports, sources });
            }
        }
        Gate { firewalls: applied.iter().map(|f| &f.address).collect(), rules }
    }
}

impl<'a> FirewallIndex<'a> {
    fn add(&mut self, firewall: &'a Resource) {
        for apply in firewall.blocks("apply_to") {
            for server in apply.get("server").and_then(Value::as_list).unwrap_or_default() {
                if let Some(server) = server.as_ref() {
                    self.named.entry(&server.address).or_default().push(firewall);
                }
            }
            if let Some(requirements) = apply.get("label_selector").and_then(Value::as_str).and_then(parse_selector) {
                let i = self.selecting.len();
                match requirements.iter().find_map(Requirement::equality) {
                    Some((key, value)) => {
                        self.by_label.entry((key.to_owned(), value.to_owned())).or_default().push(i);
                    }
                    None => self.unindexed.push(i),
                }
                self.selecting.push((firewall, requirements));
            }
        }
    }
}

impl Gate<'_> {
    fn names(&self) -> Vec<Address> {
        self.firewalls.iter().map(|a| (*a).clone()).collect()
    }

    /// Whether inbound TCP on `port` from `who`'s public address passes: with no firewall
    /// applied everything does; with some, a rule of any of them must open it (Hetzner combines
    /// the rules of every firewall applied to a server).
    fn opens(&self, port: u16, who: Who<'_>) -> bool {
        self.firewalls.is_empty()
            || self.rules.iter().any(|rule| rule.covers_port(port) && rule.sources.iter().any(|s| covers(s, who)))
    }
}

impl Rule<'_> {
    fn covers_port(&self, port: u16) -> bool {
        self.ports.is_none_or(|(low, high)| (low..=high).contains(&port))
    }
}

/// `5432` or `5000-6000`.
fn parse_ports(text: &str) -> Option<(u16, u16)> {
    match text.split_once('-') {
        Some((low, high)) => Some((low.trim().parse().ok()?, high.trim().parse().ok()?)),
        None => text.trim().parse().ok().map(|port| (port, port)),
    }
}

/// Whether a `source_ips` entry covers `who`'s public IPv4: `0.0.0.0/0`, or a reference to its
/// address (`server.x.ipv4_cidr`, `"${server.x.ipv4_address}/32"`, its primary IP's `ip_address`,
/// a load balancer's `ipv4_address`).
fn covers(source: &Value, who: Who<'_>) -> bool {
    match source {
        Value::String(text) => text.parse::<IpNet>().is_ok_and(|n| n.prefix_len() == 0 && matches!(n, IpNet::V4(_))),
        Value::Ref(reference) => {
            let attribute = reference.attribute.as_deref();
            match who {
                Who::Server { address, primary_ip } => {
                    (&reference.address == address && matches!(attribute, Some("ipv4_address" | "ipv4_cidr")))
                        || (Some(&reference.address) == primary_ip && attribute == Some("ip_address"))
                }
                Who::LoadBalancer(address) => &reference.address == address && attribute == Some("ipv4_address"),
            }
        }
        Value::Template(parts) => {
            let refs = parts.iter().filter(|p| matches!(p, Value::Ref(_))).count();
            refs == 1
                && parts.iter().all(|p| match p {
                    Value::Ref(_) => covers(p, who),
                    Value::String(text) => text.is_empty() || text == "/32",
                    _ => false,
                })
        }
        Value::Sensitive(inner) => covers(inner, who),
        Value::List(items) => items.iter().any(|item| covers(item, who)),
        _ => false,
    }
}

/// One requirement of a Hetzner label selector (`role=app,env!=test,!legacy,tier in (a,b)`).
#[derive(Debug, Clone, PartialEq, Eq)]
enum Requirement {
    Exists(String),
    Absent(String),
    Equals(String, String),
    NotEquals(String, String),
    In(String, Vec<String>),
    NotIn(String, Vec<String>),
}

impl Requirement {
    fn equality(&self) -> Option<(&str, &str)> {
        match self {
            Requirement::Equals(key, value) => Some((key, value)),
            _ => None,
        }
    }

    fn matches(&self, labels: &BTreeMap<String, Value>) -> bool {
        let get = |key: &str| labels.get(key).and_then(Value::as_str);
        match self {
            Requirement::Exists(key) => labels.contains_key(key),
            Requirement::Absent(key) => !labels.contains_key(key),
            Requirement::Equals(key, value) => get(key) == Some(value),
            Requirement::NotEquals(key, value) => get(key) != Some(value),
            Requirement::In(key, values) => get(key).is_some_and(|v| values.iter().any(|x| x == v)),
            Requirement::NotIn(key, values) => get(key).is_none_or(|v| !values.iter().any(|x| x == v)),
        }
    }
}

fn matches_labels(requirements: &[Requirement], resource: &Resource) -> bool {
    let empty = BTreeMap::new();
    let labels = match resource.attr("labels") {
        Some(Value::Map(labels)) => labels,
        _ => &empty,
    };
    requirements.iter().all(|r| r.matches(labels))
}

/// Parses a label selector; `None` when it is not one (nothing is then selected).
fn parse_selector(text: &str) -> Option<Vec<Requirement>> {
    let mut parts = Vec::new();
    let (mut depth, mut start) = (0usize, 0usize);
    for (i, c) in text.char_indices() {
        match c {
            '(' => depth += 1,
            ')' => depth = depth.saturating_sub(1),
            ',' if depth == 0 => {
                parts.push(&text[start..i]);
                start = i + 1;
            }
            _ => {}
        }
    }
    parts.push(&text[start..]);
    parts.into_iter().map(|part| requirement(part.trim())).collect()
}

fn requirement(text: &str) -> Option<Requirement> {
    let word = |s: &str| {
        let s = s.trim();
        (!s.is_empty() && !s.contains(char::is_whitespace)).then(|| s.to_owned())
    };
    if let Some(key) = text.strip_prefix('!') {
        return word(key).map(Requirement::Absent);
    }
    if let Some((key, value)) = text.split_once("!=") {
        return Some(Requirement::NotEquals(word(key)?, value.trim().to_owned()));
    }
    if let Some((key, value)) = text.split_once("==").or_else(|| text.split_once('=')) {
        return Some(Requirement::Equals(word(key)?, value.trim().to_owned()));
    }
    if let Some((key, rest)) = text.split_once(char::is_whitespace) {
        let rest = rest.trim();
        let (negated, list) = match rest.strip_prefix("notin") {
            Some(list) => (true, list),
            None => (false, rest.strip_prefix("in")?),
        };
        let list = list.trim().strip_prefix('(')?.strip_suffix(')')?;
        let values: Vec<String> = list.split(',').map(|v| v.trim().to_owned()).collect();
        let key = word(key)?;
        return Some(if negated { Requirement::NotIn(key, values) } else { Requirement::In(key, values) });
    }
    word(text).map(Requirement::Exists)
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
mod tests {
    use std::path::Path;

    use terrace_providers::pricing::Catalog;

    use super::{Requirement, parse_selector};
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
        super::super::validate(compiled, &Catalog::embedded())
            .into_sorted()
            .into_iter()
            .filter(|d| d.is_error())
            .collect()
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
                sources.retain(|source| {
                    !source.references().iter().any(|r| r.address.to_string().starts_with("server.app"))
                });
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
        check(
            &web("label_selector = \"role=app\"", ""),
            &["cannot reach its targets `server.app[0]` and `server.app[1]`"],
        );
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
}
