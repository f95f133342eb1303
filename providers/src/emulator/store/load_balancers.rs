//! Load balancers: services, targets (server, label selector, IP), networks, type and algorithm, with the
//! type's limits and the rule that private-IP targets need a network shared with the load balancer.

use std::net::Ipv4Addr;

use super::super::errors::{ApiError, Code};
use super::super::labels::Selector;
use super::super::wire::{
    AlgorithmWire, AttachToNetwork, ChangeProtection, CreateLoadBalancer, HealthCheckHttpWire, HealthCheckWire,
    LbChangeType, ListenPort, NetworkRef, ServiceWire, TargetWire, Update, UpdateServiceWire, decode,
};
use super::{
    Kind, LbService, LbTarget, LoadBalancer, Started, Store, apply_protection, check_deletable, check_name,
    check_unique, get, update_common,
};

fn check_algorithm(a: &str) -> Result<(), ApiError> {
    if matches!(a, "round_robin" | "least_connections") {
        Ok(())
    } else {
        Err(ApiError::invalid_field("algorithm", "algorithm must be round_robin or least_connections"))
    }
}

fn default_health_check(protocol: &str, port: u16) -> HealthCheckWire {
    let http = (protocol != "tcp").then(HealthCheckHttpWire::default);
    HealthCheckWire {
        protocol: if protocol == "tcp" { "tcp".to_owned() } else { "http".to_owned() },
        port,
        interval: 15,
        timeout: 10,
        retries: 3,
        http,
    }
}

fn service_from(req: ServiceWire) -> Result<LbService, ApiError> {
    let (listen_default, dest_default) = match req.protocol.as_str() {
        "http" => (80, 80),
        "https" => (443, 80),
        "tcp" => (0, 0),
        _ => return Err(ApiError::invalid_field("protocol", "protocol must be http, https or tcp")),
    };
    let listen_port = req.listen_port.unwrap_or(listen_default);
    let destination_port = req.destination_port.unwrap_or(dest_default);
    if listen_port == 0 || destination_port == 0 {
        return Err(ApiError::invalid_field("listen_port", "tcp services need listen_port and destination_port"));
    }
    let http = (req.protocol != "tcp").then(|| req.http.unwrap_or_default());
    if req.protocol == "https" && http.as_ref().is_none_or(|h| h.certificates.is_empty()) {
        return Err(ApiError::invalid_field("http", "https services need at least one certificate"));
    }
    let mut health_check = req.health_check.unwrap_or_else(|| default_health_check(&req.protocol, destination_port));
    if health_check.protocol == "http" && health_check.http.is_none() {
        health_check.http = Some(HealthCheckHttpWire::default());
    }
    Ok(LbService {
        health_check,
        protocol: req.protocol,
        listen_port,
        destination_port,
        proxyprotocol: req.proxyprotocol,
        http,
    })
}

impl Store {
    fn check_certificates(&self, service: &LbService) -> Result<(), ApiError> {
        for c in service.http.iter().flat_map(|h| h.certificates.iter()) {
            get(&self.certificates, Kind::Certificate, *c)?;
        }
        Ok(())
    }

    /// Turns a target request into a target of `lb`, checking the private-network rule and duplicates.
    fn target_from(&self, lb: &LoadBalancer, req: &TargetWire) -> Result<LbTarget, ApiError> {
        let target = match (req.kind.as_str(), &req.server, &req.label_selector, &req.ip) {
            ("server", Some(s), _, _) => {
                let server = get(&self.servers, Kind::Server, s.id)?;
                if req.use_private_ip {
                    if lb.private_net.is_empty() {
                        return Err(ApiError::specific(
                            "load_balancer_not_attached_to_network",
                            "the load balancer is not attached to a network",
                        ));
                    }
                    let shared = server.private_net.iter().any(|p| lb.private_net.iter().any(|(n, _)| *n == p.network));
                    if !shared {
                        return Err(ApiError::specific(
                            "server_not_attached_to_network",
                            "the server is not attached to the load balancer's network",
                        ));
                    }
                } else if server.ipv4.is_none() {
                    return Err(ApiError::specific("missing_ipv4", "the server has no public IPv4"));
                }
                LbTarget::Server { id: s.id, use_private_ip: req.use_private_ip }
            }
            ("label_selector", _, Some(l), _) => {
                Selector::parse(&l.selector).map_err(|m| ApiError::invalid_field("label_selector", &m))?;
                if req.use_private_ip && lb.private_net.is_empty() {
                    return Err(ApiError::specific(
                        "load_balancer_not_attached_to_network",
                        "the load balancer is not attached to a network",
                    ));
                }
                LbTarget::LabelSelector { selector: l.selector.clone(), use_private_ip: req.use_private_ip }
            }
            ("ip", _, _, Some(ip)) => {
                ip.ip.parse::<std::net::IpAddr>().map_err(|_| ApiError::invalid_field("ip", "not an IP address"))?;
                let cloud = self.primary_ips.values().any(|p| p.ip == ip.ip)
                    || self.floating_ips.values().any(|p| p.ip == ip.ip);
                if cloud {
                    return Err(ApiError::specific(
                        "cloud_resource_ip_not_allowed",
                        "the IP belongs to a Hetzner Cloud resource",
                    ));
                }
                LbTarget::Ip { ip: ip.ip.clone() }
            }
            _ => return Err(ApiError::invalid_field("type", "give type server, label_selector or ip with its object")),
        };
        let same = |t: &LbTarget| match (t, &target) {
            (LbTarget::Server { id: a, .. }, LbTarget::Server { id: b, .. }) => a == b,
            (LbTarget::LabelSelector { selector: a, .. }, LbTarget::LabelSelector { selector: b, .. }) => a == b,
            (a, b) => a == b,
        };
        if lb.targets.iter().any(same) {
            return Err(ApiError::specific("target_already_defined", "the target is already defined"));
        }
        Ok(target)
    }

    /// The servers a label-selector target picks.
    pub(crate) fn selector_servers(&self, selector: &str) -> Vec<u64> {
        match Selector::parse(selector) {
            Ok(sel) => self.servers.values().filter(|s| sel.matches(&s.common.labels)).map(|s| s.common.id).collect(),
            Err(_) => Vec::new(),
        }
    }

    fn check_lb_limits(&self, lb: &LoadBalancer) -> Result<(), ApiError> {
        if let Some(t) = self.data.lb_types.iter().find(|t| t.name == lb.lb_type) {
            if lb.services.len() > t.max_services as usize {
                return Err(ApiError::new(
                    Code::ResourceLimitExceeded,
                    format!("{} allows {} services", t.name, t.max_services),
                ));
            }
            if lb.targets.len() > t.max_targets as usize {
                return Err(ApiError::new(
                    Code::ResourceLimitExceeded,
                    format!("{} allows {} targets", t.name, t.max_targets),
                ));
            }
        }
        Ok(())
    }

    pub(crate) fn create_load_balancer(&mut self, req: CreateLoadBalancer, now: i64) -> Result<(u64, u64), ApiError> {
        check_name(&req.name)?;
        check_unique(self.load_balancers.values(), &req.name, None)?;
        let lb_type = self
            .data
            .lb_type(&req.load_balancer_type)
            .ok_or_else(|| ApiError::invalid_field("load_balancer_type", "load balancer type not found"))?
            .name
            .clone();
        let location = match (&req.location, &req.network_zone) {
            (Some(l), _) => self.location(l, "location")?.name.clone(),
            (None, Some(zone)) => self
                .data
                .locations
                .iter()
                .find(|l| l.network_zone == *zone)
                .map(|l| l.name.clone())
                .ok_or_else(|| ApiError::invalid_field("network_zone", "network zone not found"))?,
            (None, None) => return Err(ApiError::invalid_field("location", "give a location or a network_zone")),
        };
        let algorithm = req.algorithm.map_or_else(|| "round_robin".to_owned(), |a| a.kind);
        check_algorithm(&algorithm)?;
        let zone = self.data.zone_of(&location).to_owned();
        let common = self.common(req.name, req.labels, now)?;
        let id = common.id;
        let mut lb = LoadBalancer {
            common,
            lb_type,
            location,
            algorithm,
            services: Vec::new(),
            targets: Vec::new(),
            public_interface: req.public_interface,
            ipv4: String::new(),
            ipv6: String::new(),
            private_net: Vec::new(),
        };
        if let Some(n) = req.network {
            let ip = self.free_ip(n, &zone, None)?;
            lb.private_net.push((n, ip));
        }
        for s in req.services {
            let service = service_from(s)?;
            self.check_certificates(&service)?;
            if lb.services.iter().any(|x| x.listen_port == service.listen_port) {
                return Err(ApiError::specific("source_port_already_used", "the listen port is already used"));
            }
            lb.services.push(service);
        }
        for t in &req.targets {
            let target = self.target_from(&lb, t)?;
            lb.targets.push(target);
        }
        self.check_lb_limits(&lb)?;
        self.check_public_ipv4_left(1)?;
        lb.ipv4 = self.public_ipv4(&zone);
        lb.ipv6 = self.public_ipv6_net(&zone).replace("::/64", "::1");
        self.load_balancers.insert(id, lb);
        let action = self.start_action("create_load_balancer", vec![(Kind::LoadBalancer, id)], now);
        Ok((id, action))
    }

    pub(crate) fn update_load_balancer(&mut self, id: u64, update: &Update) -> Result<(), ApiError> {
        update_common(&mut self.load_balancers, Kind::LoadBalancer, id, update, |o| &mut o.common).map(|_| ())
    }

    pub(crate) fn delete_load_balancer(&mut self, id: u64, now: i64) -> Result<(), ApiError> {
        let lb = get(&self.load_balancers, Kind::LoadBalancer, id)?;
        check_deletable(&lb.common, Kind::LoadBalancer)?;
        self.check_unlocked(Kind::LoadBalancer, id, now)?;
        self.load_balancers.remove(&id);
        Ok(())
    }

    pub(crate) fn load_balancer_action(
        &mut self,
        id: u64,
        command: &str,
        body: &serde_json::Value,
        now: i64,
    ) -> Result<Started, ApiError> {
        let mut lb = get(&self.load_balancers, Kind::LoadBalancer, id)?.clone();
        self.check_unlocked(Kind::LoadBalancer, id, now)?;
        let mut resources = vec![(Kind::LoadBalancer, id)];
        let name: &'static str = match command {
            "add_service" => {
                let service = service_from(decode::<ServiceWire>(body)?)?;
                self.check_certificates(&service)?;
                if lb.services.iter().any(|s| s.listen_port == service.listen_port) {
                    return Err(ApiError::specific("source_port_already_used", "the listen port is already used"));
                }
                lb.services.push(service);
                "add_service"
            }
            "update_service" => {
                let req: UpdateServiceWire = decode(body)?;
                let Some(service) = lb.services.iter_mut().find(|s| s.listen_port == req.listen_port) else {
                    return Err(ApiError::invalid_field("listen_port", "no service listens on this port"));
                };
                if let Some(p) = req.protocol {
                    service.protocol = p;
                }
                if let Some(p) = req.destination_port {
                    service.destination_port = p;
                }
                if let Some(p) = req.proxyprotocol {
                    service.proxyprotocol = p;
                }
                if let Some(mut h) = req.health_check {
                    if h.protocol == "http" && h.http.is_none() {
                        h.http = Some(HealthCheckHttpWire::default());
                    }
                    service.health_check = h;
                }
                if let Some(h) = req.http {
                    service.http = Some(h);
                }
                let service = service.clone();
                self.check_certificates(&service)?;
                "update_service"
            }
            "delete_service" => {
                let req: ListenPort = decode(body)?;
                let before = lb.services.len();
                lb.services.retain(|s| s.listen_port != req.listen_port);
                if lb.services.len() == before {
                    return Err(ApiError::invalid_field("listen_port", "no service listens on this port"));
                }
                "delete_service"
            }
            "add_target" => {
                let req: TargetWire = decode(body)?;
                let target = self.target_from(&lb, &req)?;
                lb.targets.push(target);
                "add_target"
            }
            "remove_target" => {
                let req: TargetWire = decode(body)?;
                let before = lb.targets.len();
                lb.targets.retain(|t| match (t, req.kind.as_str()) {
                    (LbTarget::Server { id, .. }, "server") => req.server.as_ref().is_none_or(|s| s.id != *id),
                    (LbTarget::LabelSelector { selector, .. }, "label_selector") => {
                        req.label_selector.as_ref().is_none_or(|l| l.selector != *selector)
                    }
                    (LbTarget::Ip { ip }, "ip") => req.ip.as_ref().is_none_or(|i| i.ip != *ip),
                    _ => true,
                });
                if lb.targets.len() == before {
                    return Err(ApiError::invalid_field("target", "no such target"));
                }
                "remove_target"
            }
            "attach_to_network" => {
                let req: AttachToNetwork = decode(body)?;
                get(&self.networks, Kind::Network, req.network)?;
                if lb.private_net.iter().any(|(n, _)| *n == req.network) {
                    return Err(ApiError::specific(
                        "load_balancer_already_attached",
                        "already attached to this network",
                    ));
                }
                let wanted = match &req.ip {
                    Some(ip) => {
                        Some(ip.parse::<Ipv4Addr>().map_err(|_| ApiError::invalid_field("ip", "not an IPv4 address"))?)
                    }
                    None => None,
                };
                let zone = self.data.zone_of(&lb.location).to_owned();
                let ip = self.free_ip(req.network, &zone, wanted)?;
                lb.private_net.push((req.network, ip));
                resources.push((Kind::Network, req.network));
                "attach_to_network"
            }
            "detach_from_network" => {
                let req: NetworkRef = decode(body)?;
                if !lb.private_net.iter().any(|(n, _)| *n == req.network) {
                    return Err(ApiError::specific(
                        "load_balancer_not_attached_to_network",
                        "not attached to this network",
                    ));
                }
                lb.private_net.retain(|(n, _)| *n != req.network);
                resources.push((Kind::Network, req.network));
                "detach_from_network"
            }
            "change_type" => {
                let req: LbChangeType = decode(body)?;
                lb.lb_type = self
                    .data
                    .lb_type(&req.load_balancer_type)
                    .ok_or_else(|| ApiError::invalid_field("load_balancer_type", "load balancer type not found"))?
                    .name
                    .clone();
                "change_load_balancer_type"
            }
            "change_algorithm" => {
                let req: AlgorithmWire = decode(body)?;
                check_algorithm(&req.kind)?;
                lb.algorithm = req.kind;
                "change_algorithm"
            }
            "change_protection" => {
                let req: ChangeProtection = decode(body)?;
                apply_protection(&mut lb.common, &req)?;
                "change_protection"
            }
            "enable_public_interface" | "disable_public_interface" => {
                lb.public_interface = command == "enable_public_interface";
                if lb.public_interface { "enable_public_interface" } else { "disable_public_interface" }
            }
            _ => return Err(ApiError::not_found("action", 0)),
        };
        self.check_lb_limits(&lb)?;
        self.load_balancers.insert(id, lb);
        Ok(Started { action: Some(self.start_action(name, resources, now)), ..Started::default() })
    }
}
