//! Networks: RFC 1918 ranges of /24 or larger, subnets inside them (at least /30, not overlapping, one
//! network zone each), routes, ranges that only grow, and private IPs handed out from the subnets.

use std::net::Ipv4Addr;

use ipnet::Ipv4Net;

use super::super::errors::{ApiError, Code};
use super::super::wire::{ChangeProtection, CreateNetwork, IpRange, RouteWire, SubnetWire, Update, decode};
use super::{
    Kind, Network, Route, Started, Store, Subnet, apply_protection, check_deletable, check_name, check_unique, get,
    get_mut, update_common,
};

fn parse_net(text: &str, field: &str) -> Result<Ipv4Net, ApiError> {
    let net: Ipv4Net =
        text.parse().map_err(|_| ApiError::invalid_field(field, &format!("`{text}` is not an IPv4 CIDR range")))?;
    if net.network() != net.addr() {
        return Err(ApiError::invalid_field(field, &format!("`{text}` has host bits set")));
    }
    Ok(net)
}

fn is_private(net: &Ipv4Net) -> bool {
    ["10.0.0.0/8", "172.16.0.0/12", "192.168.0.0/16"]
        .iter()
        .filter_map(|r| r.parse::<Ipv4Net>().ok())
        .any(|r| r.contains(net))
}

fn overlaps(a: &Ipv4Net, b: &Ipv4Net) -> bool {
    a.contains(b) || b.contains(a)
}

impl Store {
    fn check_zone(&self, zone: &str) -> Result<(), ApiError> {
        if self.data.locations.iter().any(|l| l.network_zone == zone) {
            Ok(())
        } else {
            Err(ApiError::invalid_field("network_zone", &format!("network zone '{zone}' does not exist")))
        }
    }

    /// A subnet for a network: inside its range, at least /30, not overlapping the others. Without a range,
    /// the first free /24 (or the whole range, if smaller) is taken.
    fn new_subnet(&self, network: &Network, req: &SubnetWire) -> Result<Subnet, ApiError> {
        self.check_zone(&req.network_zone)?;
        if !matches!(req.kind.as_str(), "cloud" | "server" | "vswitch") {
            return Err(ApiError::invalid_field("type", "type must be cloud, server or vswitch"));
        }
        if req.kind == "vswitch" && req.vswitch_id.is_none() {
            return Err(ApiError::invalid_field("vswitch_id", "a vswitch subnet needs vswitch_id"));
        }
        let ip_range = match &req.ip_range {
            Some(r) => parse_net(r, "ip_range")?,
            None => {
                let prefix = network.ip_range.prefix_len().max(24);
                network
                    .ip_range
                    .subnets(prefix)
                    .ok()
                    .and_then(|mut all| all.find(|c| !network.subnets.iter().any(|s| overlaps(&s.ip_range, c))))
                    .ok_or_else(|| ApiError::invalid_field("ip_range", "no free range left in the network"))?
            }
        };
        if !network.ip_range.contains(&ip_range) {
            return Err(ApiError::invalid_field("ip_range", "subnet must be inside the network's ip_range"));
        }
        if ip_range.prefix_len() > 30 {
            return Err(ApiError::invalid_field("ip_range", "subnet must be /30 or larger"));
        }
        if network.subnets.iter().any(|s| overlaps(&s.ip_range, &ip_range)) {
            return Err(ApiError::invalid_field("ip_range", "subnet overlaps another subnet"));
        }
        // Hetzner's gateway is the network's first address, the same for every subnet.
        let gateway = network.ip_range.hosts().next().unwrap_or(network.ip_range.addr());
        Ok(Subnet {
            kind: req.kind.clone(),
            ip_range,
            network_zone: req.network_zone.clone(),
            gateway,
            vswitch_id: req.vswitch_id,
        })
    }

    fn new_route(network: &Network, req: &RouteWire) -> Result<Route, ApiError> {
        let destination = parse_net(&req.destination, "destination")?;
        let gateway: Ipv4Addr =
            req.gateway.parse().map_err(|_| ApiError::invalid_field("gateway", "gateway is not an IPv4 address"))?;
        if !network.ip_range.contains(&gateway) {
            return Err(ApiError::invalid_field("gateway", "gateway must be inside the network"));
        }
        if network.ip_range.hosts().next() == Some(gateway) {
            return Err(ApiError::invalid_field("gateway", "gateway cannot be the network's own gateway"));
        }
        if network.routes.iter().any(|r| r.destination == destination) {
            return Err(ApiError::invalid_field("destination", "a route to this destination exists"));
        }
        Ok(Route { destination, gateway })
    }

    pub(crate) fn create_network(&mut self, req: CreateNetwork, now: i64) -> Result<u64, ApiError> {
        check_name(&req.name)?;
        check_unique(self.networks.values(), &req.name, None)?;
        let ip_range = parse_net(&req.ip_range, "ip_range")?;
        if !is_private(&ip_range) || ip_range.prefix_len() > 24 {
            return Err(ApiError::invalid_field("ip_range", "ip_range must be an RFC 1918 range of /24 or larger"));
        }
        let common = self.common(req.name, req.labels, now)?;
        let mut network = Network {
            common,
            ip_range,
            subnets: Vec::new(),
            routes: Vec::new(),
            expose_routes_to_vswitch: req.expose_routes_to_vswitch,
        };
        for s in &req.subnets {
            let subnet = self.new_subnet(&network, s)?;
            network.subnets.push(subnet);
        }
        for r in &req.routes {
            let route = Self::new_route(&network, r)?;
            network.routes.push(route);
        }
        let id = network.common.id;
        self.networks.insert(id, network);
        Ok(id)
    }

    pub(crate) fn update_network(&mut self, id: u64, update: &Update) -> Result<(), ApiError> {
        let network = update_common(&mut self.networks, Kind::Network, id, update, |o| &mut o.common)?;
        if let Some(e) = update.expose_routes_to_vswitch {
            network.expose_routes_to_vswitch = e;
        }
        Ok(())
    }

    fn network_in_use(&self, id: u64) -> bool {
        self.servers.values().any(|s| s.private_net.iter().any(|p| p.network == id))
            || self.load_balancers.values().any(|lb| lb.private_net.iter().any(|(n, _)| *n == id))
    }

    pub(crate) fn delete_network(&mut self, id: u64, now: i64) -> Result<(), ApiError> {
        let network = get(&self.networks, Kind::Network, id)?;
        check_deletable(&network.common, Kind::Network)?;
        if self.network_in_use(id) {
            return Err(ApiError::new(
                Code::ResourceInUse,
                format!("network {id} is in use: detach its servers and load balancers first"),
            ));
        }
        self.check_unlocked(Kind::Network, id, now)?;
        self.networks.remove(&id);
        Ok(())
    }

    /// Every private IP in use in a network (servers, their alias IPs, load balancers).
    fn used_ips(&self, network: u64) -> Vec<Ipv4Addr> {
        let servers = self.servers.values().flat_map(|s| s.private_net.iter()).filter(|p| p.network == network);
        let mut used: Vec<Ipv4Addr> =
            servers.flat_map(|p| std::iter::once(p.ip).chain(p.alias_ips.iter().copied())).collect();
        used.extend(
            self.load_balancers
                .values()
                .flat_map(|lb| lb.private_net.iter())
                .filter(|(n, _)| *n == network)
                .map(|(_, ip)| *ip),
        );
        used
    }

    /// A private IP for a server or load balancer of `zone`: the wanted one if it is free and in such a
    /// subnet, otherwise the first free host of the first such subnet.
    pub(crate) fn free_ip(&self, network: u64, zone: &str, wanted: Option<Ipv4Addr>) -> Result<Ipv4Addr, ApiError> {
        let net = get(&self.networks, Kind::Network, network)?;
        let subnets: Vec<&Subnet> =
            net.subnets.iter().filter(|s| s.network_zone == zone && s.kind != "vswitch").collect();
        if subnets.is_empty() {
            return Err(ApiError::specific(
                "no_subnet_available",
                format!("network {network} has no subnet in network zone {zone}"),
            ));
        }
        let used = self.used_ips(network);
        let gateway = net.ip_range.hosts().next();
        let free = |ip: &Ipv4Addr| !used.contains(ip) && Some(*ip) != gateway;
        match wanted {
            Some(ip) => {
                if subnets.iter().any(|s| s.ip_range.contains(&ip)) && free(&ip) {
                    Ok(ip)
                } else {
                    Err(ApiError::specific("ip_not_available", format!("IP {ip} is not available")))
                }
            }
            None => subnets
                .iter()
                .flat_map(|s| s.ip_range.hosts())
                .find(free)
                .ok_or_else(|| ApiError::specific("no_subnet_available", "no free IP left in the subnets")),
        }
    }

    pub(crate) fn network_action(
        &mut self,
        id: u64,
        command: &str,
        body: &serde_json::Value,
        now: i64,
    ) -> Result<Started, ApiError> {
        let network = get(&self.networks, Kind::Network, id)?.clone();
        self.check_unlocked(Kind::Network, id, now)?;
        let command: &'static str = match command {
            "add_subnet" => {
                let req: SubnetWire = decode(body)?;
                let subnet = self.new_subnet(&network, &req)?;
                get_mut(&mut self.networks, Kind::Network, id)?.subnets.push(subnet);
                "add_subnet"
            }
            "delete_subnet" => {
                let req: IpRange = decode(body)?;
                let range = parse_net(&req.ip_range, "ip_range")?;
                if !network.subnets.iter().any(|s| s.ip_range == range) {
                    return Err(ApiError::invalid_field("ip_range", "no such subnet"));
                }
                if self.used_ips(id).iter().any(|ip| range.contains(ip)) {
                    return Err(ApiError::new(Code::ResourceInUse, "the subnet still has servers or load balancers"));
                }
                get_mut(&mut self.networks, Kind::Network, id)?.subnets.retain(|s| s.ip_range != range);
                "delete_subnet"
            }
            "add_route" => {
                let req: RouteWire = decode(body)?;
                let route = Self::new_route(&network, &req)?;
                get_mut(&mut self.networks, Kind::Network, id)?.routes.push(route);
                "add_route"
            }
            "delete_route" => {
                let req: RouteWire = decode(body)?;
                let destination = parse_net(&req.destination, "destination")?;
                let before = network.routes.len();
                let net = get_mut(&mut self.networks, Kind::Network, id)?;
                net.routes.retain(|r| !(r.destination == destination && r.gateway.to_string() == req.gateway));
                if net.routes.len() == before {
                    return Err(ApiError::invalid_field("destination", "no such route"));
                }
                "delete_route"
            }
            "change_ip_range" => {
                let req: IpRange = decode(body)?;
                let range = parse_net(&req.ip_range, "ip_range")?;
                if !is_private(&range) || !range.contains(&network.ip_range) || range == network.ip_range {
                    return Err(ApiError::invalid_field(
                        "ip_range",
                        "the new range must be a larger private range containing the current one",
                    ));
                }
                get_mut(&mut self.networks, Kind::Network, id)?.ip_range = range;
                "change_ip_range"
            }
            "change_protection" => {
                let req: ChangeProtection = decode(body)?;
                apply_protection(&mut get_mut(&mut self.networks, Kind::Network, id)?.common, &req)?;
                "change_protection"
            }
            _ => return Err(ApiError::not_found("action", 0)),
        };
        Ok(Started { action: Some(self.start_action(command, vec![(Kind::Network, id)], now)), ..Started::default() })
    }
}
