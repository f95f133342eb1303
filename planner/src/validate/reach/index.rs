//! The phase read once for the reachability check: every server's facts (zone, network, public
//! IPv4), servers by network and label, and the firewalls that apply to each server, with the
//! rules they open; label selectors parsed as Hetzner reads them.

use std::collections::{BTreeMap, HashMap};

use ipnet::{IpNet, Ipv4Net};
use terrace_providers::pricing::Catalog;

use crate::addr::Address;
use crate::kind::Kind;
use crate::model::{Compiled, Resource};
use crate::value::Value;

/// What the check needs to know of one server, read once.
pub(super) struct Facts<'a> {
    pub(super) address: &'a Address,
    pub(super) resource: &'a Resource,
    /// The network zone of its location; `None` when the location is unknown (reported elsewhere).
    pub(super) zone: Option<String>,
    /// The private network it is on, where that network has a subnet in its zone.
    pub(super) joined: Option<&'a Address>,
    /// That network's subnets in its zone: where its private address comes from.
    pub(super) subnets: Vec<Ipv4Net>,
    pub(super) public_ipv4: bool,
    /// The primary IPv4 object assigned to it, which firewall rules may name.
    pub(super) primary_ip: Option<&'a Address>,
}

/// The phase's servers and firewalls, indexed for the questions the check asks.
pub(super) struct Index<'a> {
    pub(super) servers: HashMap<&'a Address, Facts<'a>>,
    /// Servers that are no composite's member, by the network they are on and their zone, in
    /// address order.
    pub(super) on_network: HashMap<&'a Address, BTreeMap<String, Vec<&'a Address>>>,
    /// Every server, in address order, and by label (`key=value`) for label selectors.
    pub(super) all_servers: Vec<&'a Address>,
    pub(super) by_label: HashMap<(&'a str, &'a str), Vec<&'a Address>>,
    pub(super) firewalls: FirewallIndex<'a>,
}

/// Which firewalls apply to a server: named ones (`apply_to { server }`, the server's `firewalls`)
/// and label selectors, indexed by one `key=value` they require.
#[derive(Default)]
pub(super) struct FirewallIndex<'a> {
    pub(super) named: HashMap<&'a Address, Vec<&'a Resource>>,
    pub(super) selecting: Vec<(&'a Resource, Vec<Requirement>)>,
    pub(super) by_label: HashMap<(String, String), Vec<usize>>,
    /// Selectors without an equality, tried against every server asked about.
    pub(super) unindexed: Vec<usize>,
}

/// Consumers on one network in one zone (or on none).
pub(super) struct Group<'a> {
    pub(super) network: Option<&'a Address>,
    pub(super) zone: Option<&'a str>,
    pub(super) members: Vec<&'a Address>,
}

impl<'a> Group<'a> {
    /// Servers grouped by the network they are on and their zone.
    pub(super) fn of(servers: impl Iterator<Item = &'a Address>, index: &'a Index<'a>) -> Vec<Group<'a>> {
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
pub(super) struct Gate<'a> {
    pub(super) firewalls: Vec<&'a Address>,
    pub(super) rules: Vec<Rule<'a>>,
}

pub(super) struct Rule<'a> {
    pub(super) firewall: &'a Resource,
    pub(super) index: usize,
    /// The ports it opens, inclusive; `None` for every port.
    pub(super) ports: Option<(u16, u16)>,
    pub(super) sources: &'a [Value],
}

/// Whom a firewall rule or an access rule must let in.
#[derive(Clone, Copy)]
pub(super) enum Who<'a> {
    Server { address: &'a Address, primary_ip: Option<&'a Address> },
    LoadBalancer(&'a Address),
}

impl<'a> Index<'a> {
    /// Reads the phase once; `by_label` only when a load balancer selects its targets by label.
    pub(super) fn build(compiled: &'a Compiled, catalog: &Catalog, by_labels: bool) -> Self {
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
    pub(super) fn select(&self, requirements: &[Requirement]) -> Vec<&'a Address> {
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
    pub(super) fn gate(&self, server: &Facts<'a>) -> Gate<'a> {
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
    pub(super) fn add(&mut self, firewall: &'a Resource) {
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
    pub(super) fn names(&self) -> Vec<Address> {
        self.firewalls.iter().map(|a| (*a).clone()).collect()
    }

    /// Whether inbound TCP on `port` from `who`'s public address passes: with no firewall
    /// applied everything does; with some, a rule of any of them must open it (Hetzner combines
    /// the rules of every firewall applied to a server).
    pub(super) fn opens(&self, port: u16, who: Who<'_>) -> bool {
        self.firewalls.is_empty()
            || self.rules.iter().any(|rule| rule.covers_port(port) && rule.sources.iter().any(|s| covers(s, who)))
    }
}

impl Rule<'_> {
    pub(super) fn covers_port(&self, port: u16) -> bool {
        self.ports.is_none_or(|(low, high)| (low..=high).contains(&port))
    }
}

/// `5432` or `5000-6000`.
pub(super) fn parse_ports(text: &str) -> Option<(u16, u16)> {
    match text.split_once('-') {
        Some((low, high)) => Some((low.trim().parse().ok()?, high.trim().parse().ok()?)),
        None => text.trim().parse().ok().map(|port| (port, port)),
    }
}

/// Whether a `source_ips` entry covers `who`'s public IPv4: `0.0.0.0/0`, or a reference to its
/// address (`server.x.ipv4_cidr`, `"${server.x.ipv4_address}/32"`, its primary IP's `ip_address`,
/// a load balancer's `ipv4_address`).
pub(super) fn covers(source: &Value, who: Who<'_>) -> bool {
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
pub(super) enum Requirement {
    Exists(String),
    Absent(String),
    Equals(String, String),
    NotEquals(String, String),
    In(String, Vec<String>),
    NotIn(String, Vec<String>),
}

impl Requirement {
    pub(super) fn equality(&self) -> Option<(&str, &str)> {
        match self {
            Requirement::Equals(key, value) => Some((key, value)),
            _ => None,
        }
    }

    pub(super) fn matches(&self, labels: &BTreeMap<String, Value>) -> bool {
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

pub(super) fn matches_labels(requirements: &[Requirement], resource: &Resource) -> bool {
    let empty = BTreeMap::new();
    let labels = match resource.attr("labels") {
        Some(Value::Map(labels)) => labels,
        _ => &empty,
    };
    requirements.iter().all(|r| r.matches(labels))
}

/// Parses a label selector; `None` when it is not one (nothing is then selected).
pub(super) fn parse_selector(text: &str) -> Option<Vec<Requirement>> {
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

pub(super) fn requirement(text: &str) -> Option<Requirement> {
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
