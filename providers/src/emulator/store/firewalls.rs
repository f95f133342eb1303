//! Firewalls: rules, and the servers they apply to (directly or by label selector), at most 5 per server.

use super::super::errors::{ApiError, Code};
use super::super::labels::Selector;
use super::super::wire::{ApplyTo, ApplyToWire, CreateFirewall, RemoveFrom, RuleWire, SetRules, Update, decode};
use super::servers::MAX_FIREWALLS_PER_SERVER;
use super::{Firewall, FirewallTarget, Kind, Store, check_name, check_unique, get, get_mut, update_common};

fn check_rules(rules: &[RuleWire]) -> Result<(), ApiError> {
    for rule in rules {
        if !matches!(rule.direction.as_str(), "in" | "out") {
            return Err(ApiError::invalid_field("rules", "direction must be in or out"));
        }
        if !matches!(rule.protocol.as_str(), "tcp" | "udp" | "icmp" | "esp" | "gre") {
            return Err(ApiError::invalid_field("rules", "protocol must be tcp, udp, icmp, esp or gre"));
        }
        let needs_port = matches!(rule.protocol.as_str(), "tcp" | "udp");
        match (&rule.port, needs_port) {
            (None, true) => return Err(ApiError::invalid_field("rules", "tcp and udp rules need a port")),
            (Some(_), false) => return Err(ApiError::invalid_field("rules", "only tcp and udp rules have a port")),
            (Some(p), true) if !valid_port(p) => {
                return Err(ApiError::invalid_field("rules", &format!("`{p}` is not a port, a range or `any`")));
            }
            _ => {}
        }
        let ips = if rule.direction == "in" { &rule.source_ips } else { &rule.destination_ips };
        if ips.is_empty() {
            return Err(ApiError::invalid_field("rules", "in rules need source_ips and out rules destination_ips"));
        }
        if let Some(bad) = ips.iter().find(|ip| ip.parse::<ipnet::IpNet>().is_err()) {
            return Err(ApiError::invalid_field("rules", &format!("`{bad}` is not a CIDR range")));
        }
    }
    Ok(())
}

fn valid_port(p: &str) -> bool {
    let port = |s: &str| s.parse::<u16>().is_ok_and(|n| n >= 1);
    p == "any"
        || port(p)
        || p.split_once('-').is_some_and(|(a, b)| port(a) && port(b) && a.parse::<u16>().ok() <= b.parse::<u16>().ok())
}

impl Store {
    fn parse_targets(&self, apply: &[ApplyToWire]) -> Result<Vec<FirewallTarget>, ApiError> {
        apply
            .iter()
            .map(|a| match (a.kind.as_str(), &a.server, &a.label_selector) {
                ("server", Some(s), _) => {
                    if self.servers.contains_key(&s.id) {
                        Ok(FirewallTarget::Server(s.id))
                    } else {
                        Err(ApiError::specific("firewall_resource_not_found", format!("server {} not found", s.id)))
                    }
                }
                ("label_selector", _, Some(l)) => {
                    Selector::parse(&l.selector).map_err(|m| ApiError::invalid_field("label_selector", &m))?;
                    Ok(FirewallTarget::LabelSelector(l.selector.clone()))
                }
                _ => Err(ApiError::invalid_field("apply_to", "give type server with server, or label_selector")),
            })
            .collect()
    }

    /// The servers a firewall applies to, directly or through its selectors.
    pub(crate) fn firewall_servers(&self, fw: &Firewall) -> Vec<u64> {
        let mut ids: Vec<u64> = self
            .servers
            .values()
            .filter(|s| {
                fw.applied_to.iter().any(|t| match t {
                    FirewallTarget::Server(id) => *id == s.common.id,
                    FirewallTarget::LabelSelector(sel) => {
                        Selector::parse(sel).is_ok_and(|sel| sel.matches(&s.common.labels))
                    }
                })
            })
            .map(|s| s.common.id)
            .collect();
        ids.sort_unstable();
        ids
    }

    /// The firewalls applied to a server.
    pub(crate) fn server_firewalls(&self, server: u64) -> Vec<u64> {
        self.firewalls.values().filter(|f| self.firewall_servers(f).contains(&server)).map(|f| f.common.id).collect()
    }

    /// `resource_limit_exceeded` if applying `targets` of firewall `fw` would give a server a sixth firewall.
    fn check_firewall_limit(&self, fw: u64, targets: &[FirewallTarget]) -> Result<(), ApiError> {
        let probe = Firewall {
            common: super::Common {
                id: fw,
                name: String::new(),
                labels: Default::default(),
                created: 0,
                protect_delete: false,
            },
            rules: Vec::new(),
            applied_to: targets.to_vec(),
        };
        for server in self.firewall_servers(&probe) {
            let mut current = self.server_firewalls(server);
            if !current.contains(&fw) {
                current.push(fw);
            }
            if current.len() > MAX_FIREWALLS_PER_SERVER {
                return Err(ApiError::new(
                    Code::ResourceLimitExceeded,
                    format!("server {server} would have more than {MAX_FIREWALLS_PER_SERVER} firewalls"),
                ));
            }
        }
        Ok(())
    }

    pub(crate) fn create_firewall(&mut self, req: CreateFirewall, now: i64) -> Result<(u64, Vec<u64>), ApiError> {
        check_name(&req.name)?;
        check_unique(self.firewalls.values(), &req.name, None)?;
        check_rules(&req.rules)?;
        let targets = self.parse_targets(&req.apply_to)?;
        let common = self.common(req.name, req.labels, now)?;
        let id = common.id;
        self.check_firewall_limit(id, &targets)?;
        let mut actions = vec![self.start_action("set_firewall_rules", vec![(Kind::Firewall, id)], now)];
        for t in &targets {
            actions.push(self.start_action("apply_firewall", self.target_resources(id, t), now));
        }
        self.firewalls.insert(id, Firewall { common, rules: req.rules, applied_to: targets });
        Ok((id, actions))
    }

    fn target_resources(&self, fw: u64, target: &FirewallTarget) -> Vec<(Kind, u64)> {
        match target {
            FirewallTarget::Server(s) => vec![(Kind::Firewall, fw), (Kind::Server, *s)],
            FirewallTarget::LabelSelector(_) => vec![(Kind::Firewall, fw)],
        }
    }

    pub(crate) fn update_firewall(&mut self, id: u64, update: &Update) -> Result<(), ApiError> {
        update_common(&mut self.firewalls, Kind::Firewall, id, update, |o| &mut o.common).map(|_| ())
    }

    pub(crate) fn delete_firewall(&mut self, id: u64) -> Result<(), ApiError> {
        let fw = get(&self.firewalls, Kind::Firewall, id)?;
        if !fw.applied_to.is_empty() {
            return Err(ApiError::new(Code::ResourceInUse, format!("firewall {id} is still applied to resources")));
        }
        self.firewalls.remove(&id);
        Ok(())
    }

    pub(crate) fn firewall_action(
        &mut self,
        id: u64,
        command: &str,
        body: &serde_json::Value,
        now: i64,
    ) -> Result<Vec<u64>, ApiError> {
        let fw = get(&self.firewalls, Kind::Firewall, id)?.clone();
        self.check_unlocked(Kind::Firewall, id, now)?;
        match command {
            "set_rules" => {
                let req: SetRules = decode(body)?;
                check_rules(&req.rules)?;
                get_mut(&mut self.firewalls, Kind::Firewall, id)?.rules = req.rules;
                let mut actions = vec![self.start_action("set_firewall_rules", vec![(Kind::Firewall, id)], now)];
                for s in self.firewall_servers(&fw) {
                    actions.push(self.start_action(
                        "apply_firewall",
                        vec![(Kind::Firewall, id), (Kind::Server, s)],
                        now,
                    ));
                }
                Ok(actions)
            }
            "apply_to_resources" => {
                let req: ApplyTo = decode(body)?;
                let targets = self.parse_targets(&req.apply_to)?;
                if let Some(t) = targets.iter().find(|t| fw.applied_to.contains(t)) {
                    return Err(ApiError::specific(
                        "firewall_already_applied",
                        format!("firewall is already applied to {t:?}"),
                    ));
                }
                let mut all = fw.applied_to.clone();
                all.extend(targets.iter().cloned());
                self.check_firewall_limit(id, &all)?;
                get_mut(&mut self.firewalls, Kind::Firewall, id)?.applied_to = all;
                Ok(targets
                    .iter()
                    .map(|t| self.start_action("apply_firewall", self.target_resources(id, t), now))
                    .collect())
            }
            "remove_from_resources" => {
                let req: RemoveFrom = decode(body)?;
                let targets: Vec<FirewallTarget> = req
                    .remove_from
                    .iter()
                    .map(|a| match (a.kind.as_str(), &a.server, &a.label_selector) {
                        ("server", Some(s), _) => Ok(FirewallTarget::Server(s.id)),
                        ("label_selector", _, Some(l)) => Ok(FirewallTarget::LabelSelector(l.selector.clone())),
                        _ => Err(ApiError::invalid_field(
                            "remove_from",
                            "give type server with server, or label_selector",
                        )),
                    })
                    .collect::<Result<_, _>>()?;
                for t in &targets {
                    if !fw.applied_to.contains(t) {
                        if let FirewallTarget::Server(s) = t
                            && self.firewall_servers(&fw).contains(s)
                        {
                            return Err(ApiError::specific(
                                "firewall_managed_by_label_selector",
                                format!("server {s} gets the firewall through a label selector"),
                            ));
                        }
                        return Err(ApiError::specific(
                            "firewall_resource_not_found",
                            "the firewall is not applied there",
                        ));
                    }
                }
                get_mut(&mut self.firewalls, Kind::Firewall, id)?.applied_to.retain(|t| !targets.contains(t));
                Ok(targets
                    .iter()
                    .map(|t| self.start_action("remove_firewall", self.target_resources(id, t), now))
                    .collect())
            }
            _ => Err(ApiError::not_found("action", 0)),
        }
    }
}
