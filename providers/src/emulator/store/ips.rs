//! Primary IPs (bound to a location, assigned to a stopped server, one per family) and Floating IPs
//! (bound to a home location, assigned to any server of its network zone).

use super::super::errors::ApiError;
use super::super::wire::{
    AssignFloatingIp, AssignPrimaryIp, ChangeProtection, CreateFloatingIp, CreatePrimaryIp, Update, decode,
};
use super::{
    FloatingIp, Kind, PrimaryIp, ServerStatus, Started, Store, apply_protection, check_deletable, check_name,
    check_unique, get, get_mut, update_common,
};

fn ip_type(t: &str) -> Result<bool, ApiError> {
    match t {
        "ipv4" => Ok(false),
        "ipv6" => Ok(true),
        _ => Err(ApiError::invalid_field("type", "type must be ipv4 or ipv6")),
    }
}

impl Store {
    /// The checks of assigning a Primary IP: a stopped server in the IP's location without one of its family.
    fn check_primary_assign(&self, ip: &PrimaryIp, server: u64) -> Result<(), ApiError> {
        let s = get(&self.servers, Kind::Server, server)?;
        if s.status != ServerStatus::Off {
            return Err(ApiError::specific("server_not_stopped", "the server must be powered off"));
        }
        if s.location != ip.location {
            return Err(ApiError::specific("primary_ip_datacenter_mismatch", "the server is in another location"));
        }
        match (ip.ipv6, s.ipv4, s.ipv6) {
            (false, Some(_), _) => Err(ApiError::specific("server_has_ipv4", "the server already has an IPv4")),
            (true, _, Some(_)) => Err(ApiError::specific("server_has_ipv6", "the server already has an IPv6")),
            _ => Ok(()),
        }
    }

    fn set_server_ip(&mut self, server: u64, ipv6: bool, ip: Option<u64>) {
        if let Some(s) = self.servers.get_mut(&server) {
            if ipv6 {
                s.ipv6 = ip;
            } else {
                s.ipv4 = ip;
            }
        }
    }

    pub(crate) fn create_primary_ip(&mut self, req: CreatePrimaryIp, now: i64) -> Result<(u64, Option<u64>), ApiError> {
        check_name(&req.name)?;
        check_unique(self.primary_ips.values(), &req.name, None)?;
        let ipv6 = ip_type(&req.ip_type)?;
        if req.assignee_type != "server" {
            return Err(ApiError::invalid_field("assignee_type", "assignee_type must be server"));
        }
        let location =
            match (self.location_or_datacenter(req.location.as_deref(), req.datacenter.as_deref())?, req.assignee_id) {
                (Some(l), _) => l,
                (None, Some(server)) => get(&self.servers, Kind::Server, server)?.location.clone(),
                (None, None) => return Err(ApiError::invalid_field("location", "give a location or an assignee_id")),
            };
        let zone = self.data.zone_of(&location).to_owned();
        self.check_public_ipv4_left(usize::from(!ipv6))?;
        let ip = if ipv6 { self.public_ipv6_net(&zone) } else { self.public_ipv4(&zone) };
        let common = self.common(req.name, req.labels, now)?;
        let id = common.id;
        let primary = PrimaryIp { common, ipv6, ip, location, assignee: None, auto_delete: req.auto_delete };
        if let Some(server) = req.assignee_id {
            self.check_primary_assign(&primary, server)?;
        }
        self.primary_ips.insert(id, primary);
        let action = match req.assignee_id {
            Some(server) => {
                self.set_server_ip(server, ipv6, Some(id));
                if let Some(p) = self.primary_ips.get_mut(&id) {
                    p.assignee = Some(server);
                }
                Some(self.start_action("create_primary_ip", vec![(Kind::PrimaryIp, id), (Kind::Server, server)], now))
            }
            None => None,
        };
        Ok((id, action))
    }

    pub(crate) fn update_primary_ip(&mut self, id: u64, update: &Update) -> Result<(), ApiError> {
        let ip = update_common(&mut self.primary_ips, Kind::PrimaryIp, id, update, |o| &mut o.common)?;
        if let Some(a) = update.auto_delete {
            ip.auto_delete = a;
        }
        Ok(())
    }

    pub(crate) fn delete_primary_ip(&mut self, id: u64) -> Result<(), ApiError> {
        let ip = get(&self.primary_ips, Kind::PrimaryIp, id)?;
        check_deletable(&ip.common, Kind::PrimaryIp)?;
        if ip.assignee.is_some() {
            return Err(ApiError::specific("must_be_unassigned", "unassign the primary IP first"));
        }
        self.primary_ips.remove(&id);
        Ok(())
    }

    pub(crate) fn primary_ip_action(
        &mut self,
        id: u64,
        command: &str,
        body: &serde_json::Value,
        now: i64,
    ) -> Result<Started, ApiError> {
        let ip = get(&self.primary_ips, Kind::PrimaryIp, id)?.clone();
        self.check_unlocked(Kind::PrimaryIp, id, now)?;
        let action = match command {
            "assign" => {
                let req: AssignPrimaryIp = decode(body)?;
                if req.assignee_type != "server" {
                    return Err(ApiError::invalid_field("assignee_type", "assignee_type must be server"));
                }
                if ip.assignee.is_some() {
                    return Err(ApiError::specific("primary_ip_already_assigned", "the primary IP is assigned"));
                }
                self.check_primary_assign(&ip, req.assignee_id)?;
                self.check_unlocked(Kind::Server, req.assignee_id, now)?;
                self.set_server_ip(req.assignee_id, ip.ipv6, Some(id));
                get_mut(&mut self.primary_ips, Kind::PrimaryIp, id)?.assignee = Some(req.assignee_id);
                self.start_action(
                    "assign_primary_ip",
                    vec![(Kind::PrimaryIp, id), (Kind::Server, req.assignee_id)],
                    now,
                )
            }
            "unassign" => {
                let Some(server) = ip.assignee else {
                    return Err(ApiError::invalid_field("assignee_id", "the primary IP is not assigned"));
                };
                if self.servers.get(&server).is_some_and(|s| s.status != ServerStatus::Off) {
                    return Err(ApiError::specific("server_not_stopped", "the server must be powered off"));
                }
                self.set_server_ip(server, ip.ipv6, None);
                get_mut(&mut self.primary_ips, Kind::PrimaryIp, id)?.assignee = None;
                self.start_action("unassign_primary_ip", vec![(Kind::PrimaryIp, id), (Kind::Server, server)], now)
            }
            "change_protection" => {
                let req: ChangeProtection = decode(body)?;
                apply_protection(&mut get_mut(&mut self.primary_ips, Kind::PrimaryIp, id)?.common, &req)?;
                self.start_action("change_protection", vec![(Kind::PrimaryIp, id)], now)
            }
            _ => return Err(ApiError::not_found("action", 0)),
        };
        Ok(Started { action: Some(action), ..Started::default() })
    }

    pub(crate) fn create_floating_ip(
        &mut self,
        req: CreateFloatingIp,
        now: i64,
    ) -> Result<(u64, Option<u64>), ApiError> {
        let ipv6 = ip_type(&req.ip_type)?;
        let home = match (&req.home_location, req.server) {
            (Some(l), _) => self.location(l, "home_location")?.name.clone(),
            (None, Some(s)) => get(&self.servers, Kind::Server, s)?.location.clone(),
            (None, None) => return Err(ApiError::invalid_field("home_location", "give a home_location or a server")),
        };
        if let Some(s) = req.server {
            self.check_floating_assign(&home, s)?;
        }
        let zone = self.data.zone_of(&home).to_owned();
        self.check_public_ipv4_left(usize::from(!ipv6))?;
        let ip = if ipv6 { self.public_ipv6_net(&zone) } else { self.public_ipv4(&zone) };
        let id_preview = self.next_id + 1;
        let name = req.name.clone().unwrap_or_else(|| id_preview.to_string());
        check_name(&name)?;
        check_unique(self.floating_ips.values(), &name, None)?;
        let common = self.common(name, req.labels, now)?;
        let id = common.id;
        self.floating_ips.insert(
            id,
            FloatingIp { common, description: req.description, ipv6, ip, home_location: home, server: req.server },
        );
        let action = req
            .server
            .map(|s| self.start_action("assign_floating_ip", vec![(Kind::FloatingIp, id), (Kind::Server, s)], now));
        Ok((id, action))
    }

    fn check_floating_assign(&self, home: &str, server: u64) -> Result<(), ApiError> {
        let s = get(&self.servers, Kind::Server, server)?;
        if self.data.zone_of(&s.location) != self.data.zone_of(home) {
            return Err(ApiError::invalid_field("server", "the server is in another network zone"));
        }
        Ok(())
    }

    pub(crate) fn update_floating_ip(&mut self, id: u64, update: &Update) -> Result<(), ApiError> {
        let ip = update_common(&mut self.floating_ips, Kind::FloatingIp, id, update, |o| &mut o.common)?;
        if let Some(d) = &update.description {
            ip.description = Some(d.clone());
        }
        Ok(())
    }

    pub(crate) fn delete_floating_ip(&mut self, id: u64) -> Result<(), ApiError> {
        let ip = get(&self.floating_ips, Kind::FloatingIp, id)?;
        check_deletable(&ip.common, Kind::FloatingIp)?;
        if ip.server.is_some() {
            return Err(ApiError::specific("must_be_unassigned", "unassign the floating IP first"));
        }
        self.floating_ips.remove(&id);
        Ok(())
    }

    pub(crate) fn floating_ip_action(
        &mut self,
        id: u64,
        command: &str,
        body: &serde_json::Value,
        now: i64,
    ) -> Result<Started, ApiError> {
        let ip = get(&self.floating_ips, Kind::FloatingIp, id)?.clone();
        self.check_unlocked(Kind::FloatingIp, id, now)?;
        let action = match command {
            "assign" => {
                let req: AssignFloatingIp = decode(body)?;
                if ip.server == Some(req.server) {
                    return Err(ApiError::specific(
                        "floating_ip_assigned",
                        "the floating IP is already assigned to this server",
                    ));
                }
                self.check_floating_assign(&ip.home_location, req.server)?;
                get_mut(&mut self.floating_ips, Kind::FloatingIp, id)?.server = Some(req.server);
                self.start_action("assign_floating_ip", vec![(Kind::FloatingIp, id), (Kind::Server, req.server)], now)
            }
            "unassign" => {
                let Some(server) = ip.server else {
                    return Err(ApiError::invalid_field("server", "the floating IP is not assigned"));
                };
                get_mut(&mut self.floating_ips, Kind::FloatingIp, id)?.server = None;
                self.start_action("unassign_floating_ip", vec![(Kind::FloatingIp, id), (Kind::Server, server)], now)
            }
            "change_protection" => {
                let req: ChangeProtection = decode(body)?;
                apply_protection(&mut get_mut(&mut self.floating_ips, Kind::FloatingIp, id)?.common, &req)?;
                self.start_action("change_protection", vec![(Kind::FloatingIp, id)], now)
            }
            _ => return Err(ApiError::not_found("action", 0)),
        };
        Ok(Started { action: Some(action), ..Started::default() })
    }
}
