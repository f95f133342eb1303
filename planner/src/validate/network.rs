//! Networks, subnets and zones; attachments of servers and load balancers; load balancer limits;
//! primary IPs.

use std::collections::BTreeMap;
use std::net::IpAddr;

use ipnet::{IpNet, Ipv4Net};
use terrace_providers::pricing::Catalog;

use crate::addr::Address;
use crate::diag::{Diagnostic, Diagnostics};
use crate::kind::Kind;
use crate::model::{Compiled, Resource};
use crate::value::Value;

pub(super) struct NetworkChecker<'a> {
    pub compiled: &'a Compiled,
    pub catalog: &'a Catalog,
    pub diags: &'a mut Diagnostics,
}

const RFC1918: [&str; 3] = ["10.0.0.0/8", "172.16.0.0/12", "192.168.0.0/16"];

fn parse_v4(text: &str) -> Option<Ipv4Net> {
    text.parse::<Ipv4Net>().ok()
}

impl<'a> NetworkChecker<'a> {
    fn resources(&self, kind: Kind) -> impl Iterator<Item = &'a Resource> + use<'a> {
        let compiled: &'a Compiled = self.compiled;
        compiled.resources.iter().map(|(_, r)| r).filter(move |r| r.kind == kind)
    }

    fn zone_of(&self, location: &str) -> Option<String> {
        self.catalog.location(location).map(|l| l.network_zone)
    }

    /// (zone, range) of each subnet of a network.
    fn subnets(network: &Resource) -> Vec<(String, Option<Ipv4Net>)> {
        network
            .blocks("subnet")
            .into_iter()
            .map(|s| {
                let zone = s.get("network_zone").and_then(Value::as_str).unwrap_or_default().to_owned();
                let range = s.get("ip_range").and_then(Value::as_str).and_then(parse_v4);
                (zone, range)
            })
            .collect()
    }

    pub(super) fn networks(&mut self) {
        let zones = self.catalog.network_zones();
        let networks: Vec<&Resource> = self.resources(Kind::Network).collect();
        for network in networks {
            let range_text = network.str_attr("ip_range").unwrap_or_default();
            let range = match range_text.parse::<Ipv4Net>() {
                Ok(range) if range.trunc() != range => {
                    self.diags.push(
                        Diagnostic::error(format!("network range {range_text} has host bits set"))
                            .at(network.origin.attr("ip_range"))
                            .hint(format!("write the network address: {}", range.trunc())),
                    );
                    None
                }
                Ok(range) => {
                    let private = RFC1918.iter().filter_map(|r| parse_v4(r)).any(|block| block.contains(&range));
                    if !private {
                        self.diags.push(
                            Diagnostic::error(format!("network range {range_text} is not a private (RFC 1918) range"))
                                .at(network.origin.attr("ip_range"))
                                .hint("use a range inside 10.0.0.0/8, 172.16.0.0/12 or 192.168.0.0/16"),
                        );
                    } else if range.prefix_len() > 24 {
                        self.diags.push(
                            Diagnostic::error(format!("network range {range_text} is smaller than /24"))
                                .at(network.origin.attr("ip_range"))
                                .hint("a Hetzner network is a /24 or larger, e.g. 10.0.0.0/16"),
                        );
                    }
                    Some(range)
                }
                Err(_) if range_text.is_empty() => None,
                Err(_) => {
                    self.diags.push(
                        Diagnostic::error(format!("\"{range_text}\" is not an IPv4 CIDR range"))
                            .at(network.origin.attr("ip_range"))
                            .hint("write it as address/prefix, e.g. 10.0.0.0/16"),
                    );
                    None
                }
            };
            let mut seen: Vec<(Ipv4Net, usize)> = Vec::new();
            for (i, subnet) in network.blocks("subnet").into_iter().enumerate() {
                let path = format!("subnet[{i}].ip_range");
                let zone = subnet.get("network_zone").and_then(Value::as_str).unwrap_or_default();
                if !zones.iter().any(|z| z == zone) {
                    self.diags.push(
                        Diagnostic::error(format!("unknown network zone \"{zone}\" in `{}`", network.address))
                            .at(network.origin.attr(&format!("subnet[{i}].network_zone")))
                            .hint(format!("network zones: {}", zones.join(", "))),
                    );
                }
                let text = subnet.get("ip_range").and_then(Value::as_str).unwrap_or_default();
                let Some(sub) = parse_v4(text) else {
                    self.diags.push(
                        Diagnostic::error(format!("\"{text}\" is not an IPv4 CIDR range"))
                            .at(network.origin.attr(&path))
                            .hint("write it as address/prefix, e.g. 10.0.1.0/24"),
                    );
                    continue;
                };
                if sub.prefix_len() > 30 {
                    self.diags.push(
                        Diagnostic::error(format!("subnet {text} is smaller than /30"))
                            .at(network.origin.attr(&path))
                            .hint("a subnet is a /30 or larger"),
                    );
                }
                if let Some(range) = range
                    && !range.contains(&sub)
                {
                    self.diags.push(
                        Diagnostic::error(format!("subnet {text} lies outside the network range {range}"))
                            .at(network.origin.attr(&path))
                            .hint(format!(
                                "pick a subnet inside {range}, e.g. {}",
                                range
                                    .subnets(24.max(range.prefix_len()))
                                    .ok()
                                    .and_then(|mut s| s.next())
                                    .map_or(range.to_string(), |s| s.to_string())
                            )),
                    );
                }
                if let Some((other, j)) = seen.iter().find(|(other, _)| other.contains(&sub) || sub.contains(other)) {
                    self.diags.push(
                        Diagnostic::error(format!("subnet {text} overlaps subnet[{j}] {other}"))
                            .at(network.origin.attr(&path))
                            .hint("subnets of one network must not overlap"),
                    );
                }
                seen.push((sub, i));
            }
            for (i, route) in network.blocks("route").into_iter().enumerate() {
                let destination = route.get("destination").and_then(Value::as_str).unwrap_or_default();
                if destination.parse::<IpNet>().is_err() {
                    self.diags.push(
                        Diagnostic::error(format!("route destination \"{destination}\" is not a CIDR range"))
                            .at(network.origin.attr(&format!("route[{i}].destination"))),
                    );
                }
                let gateway = route.get("gateway").and_then(Value::as_str).unwrap_or_default();
                match (gateway.parse::<IpAddr>(), range) {
                    (Ok(IpAddr::V4(ip)), Some(range)) if range.contains(&ip) => {}
                    (_, Some(range)) => self.diags.push(
                        Diagnostic::error(format!("route gateway \"{gateway}\" is not an address inside {range}"))
                            .at(network.origin.attr(&format!("route[{i}].gateway")))
                            .hint("the gateway is a server's private IP in this network"),
                    ),
                    _ => {}
                }
            }
        }
    }

    /// A server (or load balancer) on a network needs a subnet in its location's zone.
    pub(super) fn attachments(&mut self) {
        let compiled: &'a Compiled = self.compiled;
        let attached: Vec<&Resource> = compiled
            .resources
            .iter()
            .map(|(_, r)| r)
            .filter(|r| matches!(r.kind, Kind::Server | Kind::LoadBalancer) && r.ref_attr("network").is_some())
            .collect();
        for resource in attached {
            let Some(network) = resource.ref_attr("network").and_then(|a| self.compiled.resource(a)) else {
                continue;
            };
            let location = resource.str_attr("location");
            let zone =
                location.and_then(|l| self.zone_of(l)).or_else(|| resource.str_attr("network_zone").map(str::to_owned));
            let Some(zone) = zone else { continue };
            let subnets = Self::subnets(network);
            let in_zone: Vec<Ipv4Net> = subnets.iter().filter(|(z, _)| *z == zone).filter_map(|(_, r)| *r).collect();
            if in_zone.is_empty() {
                let zones: Vec<&str> = subnets.iter().map(|(z, _)| z.as_str()).collect();
                self.diags.push(
                    Diagnostic::error(format!(
                        "`{}` is in {} (network zone {zone}) but `{}` has no subnet in {zone}",
                        resource.address,
                        location.unwrap_or("?"),
                        network.address
                    ))
                    .at(resource.origin.attr("network"))
                    .label("private networks do not span network zones")
                    .detail(format!("the network's subnets are in: {}", if zones.is_empty() { "none".to_owned() } else { zones.join(", ") }))
                    .hint(format!("add a subnet with network_zone = \"{zone}\" to the network, or reach the service over the public network (for a database replica in another zone: replica_location, which replicates over TLS)")),
                );
                continue;
            }
            if let Some(ip) = resource.str_attr("private_ip") {
                match ip.parse::<std::net::Ipv4Addr>() {
                    Ok(ip) if in_zone.iter().any(|s| s.contains(&ip)) => {}
                    _ => self.diags.push(
                        Diagnostic::error(format!(
                            "private IP {ip} is not inside a subnet of `{}` in {zone}",
                            network.address
                        ))
                        .at(resource.origin.attr("private_ip"))
                        .hint(format!(
                            "pick an address in {}",
                            in_zone.iter().map(ToString::to_string).collect::<Vec<_>>().join(" or ")
                        )),
                    ),
                }
            }
        }
    }

    /// A private IP is reachable only inside its network zone: a server (or load balancer) in one
    /// zone that is configured with the private address of an object in another zone (a database
    /// host in its user_data, an upstream) could never reach it.
    pub(super) fn private_reads(&mut self) {
        let compiled: &'a Compiled = self.compiled;
        for (_, resource) in compiled.resources.iter() {
            if !matches!(resource.kind, Kind::Server | Kind::LoadBalancer) {
                continue;
            }
            let Some(zone) = resource.str_attr("location").and_then(|l| self.zone_of(l)) else { continue };
            for (name, value) in &resource.attrs {
                for reference in value.references() {
                    if reference.attribute.as_deref() != Some("private_ip") {
                        continue;
                    }
                    let Some(target) = compiled.resource(&reference.address) else { continue };
                    let Some(target_zone) = target.str_attr("location").and_then(|l| self.zone_of(l)) else {
                        continue;
                    };
                    if target_zone == zone {
                        continue;
                    }
                    self.diags.push(
                        Diagnostic::error(format!(
                            "`{}` (network zone {zone}) reads the private IP of `{}` (network zone {target_zone})",
                            resource.address, reference.address
                        ))
                        .at(resource.origin.attr(name))
                        .label("private networks do not span network zones")
                        .hint(format!(
                            "read `{}.ipv4_address` and connect over the public network with TLS, or place both in one zone",
                            reference.address
                        )),
                    );
                }
            }
        }
    }

    pub(super) fn load_balancers(&mut self) {
        let lbs: Vec<&Resource> = self.resources(Kind::LoadBalancer).collect();
        for lb in lbs {
            if lb.str_attr("location").is_none() && lb.str_attr("network_zone").is_none() {
                self.diags.push(
                    Diagnostic::error(format!("load balancer `{}` needs `location` or `network_zone`", lb.address))
                        .at(lb.origin.block.clone())
                        .hint("set `location = \"fsn1\"`"),
                );
            }
            let services = lb.blocks("service");
            let mut ports: BTreeMap<u64, usize> = BTreeMap::new();
            for (i, service) in services.iter().enumerate() {
                let protocol = service.get("protocol").and_then(Value::as_str).unwrap_or("tcp");
                let default_port = match protocol {
                    "http" => Some(80),
                    "https" => Some(443),
                    _ => None,
                };
                let port = service.get("listen_port").and_then(Value::as_u64).or(default_port);
                let Some(port) = port else {
                    self.diags.push(
                        Diagnostic::error(format!("a tcp service of `{}` needs `listen_port`", lb.address))
                            .at(lb.origin.attr(&format!("service[{i}]")))
                            .hint("set `listen_port` and `destination_port`"),
                    );
                    continue;
                };
                if let Some(first) = ports.insert(port, i) {
                    self.diags.push(
                        Diagnostic::error(format!(
                            "services {first} and {i} of `{}` both listen on port {port}",
                            lb.address
                        ))
                        .at(lb.origin.attr(&format!("service[{i}].listen_port")))
                        .hint("each service listens on its own port"),
                    );
                }
                for key in ["listen_port", "destination_port"] {
                    if let Some(p) = service.get(key).and_then(Value::as_u64)
                        && !(1..=65535).contains(&p)
                    {
                        self.diags.push(
                            Diagnostic::error(format!("port {p} is out of range"))
                                .at(lb.origin.attr(&format!("service[{i}].{key}")))
                                .hint("ports run from 1 to 65535"),
                        );
                    }
                }
            }
            let lb_network = lb.ref_attr("network");
            let mut target_count = 0usize;
            for (i, target) in lb.blocks("target").into_iter().enumerate() {
                let servers: Vec<Address> = target
                    .get("server")
                    .and_then(Value::as_list)
                    .unwrap_or_default()
                    .iter()
                    .filter_map(|v| v.as_ref().map(|r| r.address.clone()))
                    .collect();
                let kinds = usize::from(!servers.is_empty())
                    + usize::from(target.contains_key("label_selector"))
                    + usize::from(target.contains_key("ip"));
                if kinds != 1 {
                    self.diags.push(
                        Diagnostic::error(format!(
                            "target {i} of `{}` must name exactly one of `server`, `label_selector`, `ip`",
                            lb.address
                        ))
                        .at(lb.origin.attr(&format!("target[{i}]"))),
                    );
                }
                target_count += servers.len().max(1);
                // Hetzner's default is the target's public IP, even for a load balancer on a network.
                let use_private = target.get("use_private_ip").and_then(Value::as_bool).unwrap_or(false);
                if use_private && !servers.is_empty() {
                    for server in &servers {
                        let server_network = self.compiled.resource(server).and_then(|s| s.ref_attr("network"));
                        if lb_network.is_none() || server_network != lb_network {
                            self.diags.push(
                                Diagnostic::error(format!(
                                    "target `{server}` of `{}` uses its private IP but they share no network",
                                    lb.address
                                ))
                                .at(lb.origin.attr(&format!("target[{i}].use_private_ip")).or_else(|| lb.origin.attr(&format!("target[{i}]"))))
                                .hint("put the load balancer and the server on one network, or set `use_private_ip = false`"),
                            );
                        }
                    }
                }
            }
            let Some(limits) = lb.str_attr("type").and_then(|t| self.catalog.load_balancer_limits(t)) else {
                continue;
            };
            let lb_type = lb.str_attr("type").unwrap_or_default();
            if services.len() as u64 > u64::from(limits.max_services) {
                self.diags.push(
                    Diagnostic::error(format!(
                        "`{}` has {} services; a {lb_type} allows {}",
                        lb.address,
                        services.len(),
                        limits.max_services
                    ))
                    .at(lb.origin.attr("type"))
                    .hint("pick a larger load balancer type"),
                );
            }
            if target_count as u64 > u64::from(limits.max_targets) {
                self.diags.push(
                    Diagnostic::error(format!(
                        "`{}` has {target_count} targets; a {lb_type} allows {}",
                        lb.address, limits.max_targets
                    ))
                    .at(lb.origin.attr("type"))
                    .hint("pick a larger load balancer type, or target servers with a label_selector"),
                );
            }
        }
    }

    /// One primary IPv4 and one IPv6 per server, each in the server's location.
    pub(super) fn primary_ips(&mut self) {
        let mut assigned: BTreeMap<(Address, String), Vec<Address>> = BTreeMap::new();
        let mut users: BTreeMap<Address, Vec<Address>> = BTreeMap::new();
        for ip in self.resources(Kind::PrimaryIp) {
            if let Some(server) = ip.ref_attr("assignee") {
                let ty = ip.str_attr("type").unwrap_or("ipv4").to_owned();
                assigned.entry((server.clone(), ty)).or_default().push(ip.address.clone());
                users.entry(ip.address.clone()).or_default().push(server.clone());
            }
        }
        for server in self.resources(Kind::Server) {
            for (key, ty) in [("ipv4", "ipv4"), ("ipv6", "ipv6")] {
                let Some(Value::Map(public_net)) = server.attr("public_net") else {
                    continue;
                };
                let Some(ip) = public_net.get(key).and_then(Value::as_ref) else {
                    continue;
                };
                let Some(ip_resource) = self.compiled.resource(&ip.address) else {
                    continue;
                };
                let actual = ip_resource.str_attr("type").unwrap_or("ipv4");
                if actual != ty {
                    self.diags.push(
                        Diagnostic::error(format!(
                            "`public_net.{key}` of `{}` names `{}`, an {actual} address",
                            server.address, ip.address
                        ))
                        .at(server.origin.attr(&format!("public_net.{key}")))
                        .hint(format!("refer to a primary_ip with type = \"{ty}\"")),
                    );
                }
                if let (Some(a), Some(b)) = (ip_resource.str_attr("location"), server.str_attr("location"))
                    && a != b
                {
                    self.diags.push(
                        Diagnostic::error(format!(
                            "primary IP `{}` is in {a} but server `{}` is in {b}",
                            ip.address, server.address
                        ))
                        .at(server.origin.attr(&format!("public_net.{key}")))
                        .hint("a primary IP is bound to its location"),
                    );
                }
                assigned.entry((server.address.clone(), actual.to_owned())).or_default().push(ip.address.clone());
                users.entry(ip.address.clone()).or_default().push(server.address.clone());
            }
        }
        for ((server, ty), ips) in assigned {
            let mut ips = ips;
            ips.sort();
            ips.dedup();
            if ips.len() > 1 {
                // Point at the second assignment: the `assignee` of the second IP, or the server's
                // `public_net` when that is where it is assigned.
                let span = self
                    .compiled
                    .resource(&ips[1])
                    .and_then(|r| r.origin.written("assignee"))
                    .or_else(|| self.compiled.resource(&server).and_then(|r| r.origin.attr("public_net")));
                let list: Vec<String> = ips.iter().map(ToString::to_string).collect();
                self.diags.push(
                    Diagnostic::error(format!(
                        "`{server}` would get {} primary {ty} addresses: {}",
                        ips.len(),
                        list.join(", ")
                    ))
                    .at(span)
                    .label("a second one assigned here")
                    .hint("a server has at most one primary IPv4 and one primary IPv6; use a floating_ip for more"),
                );
            }
        }
        for (ip, servers) in users {
            let mut servers = servers;
            servers.sort();
            servers.dedup();
            if servers.len() > 1 {
                let span = self.compiled.resource(&ip).and_then(|r| r.origin.block.clone());
                self.diags.push(
                    Diagnostic::error(format!("primary IP `{ip}` is assigned to {} servers", servers.len()))
                        .at(span)
                        .hint("a primary IP belongs to one server at a time"),
                );
            }
        }
    }
}
