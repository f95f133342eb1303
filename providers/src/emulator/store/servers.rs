//! Servers: create, update, delete and the server actions, with Hetzner's rules (types and locations
//! from the catalog, stopped servers for type and placement changes, networks in the server's zone).

use std::net::Ipv4Addr;

use super::super::errors::{ApiError, Code};
use super::super::wire::{
    AttachToNetwork, ChangeProtection, ChangeType, CreateServer, IdOrName, NetworkRef, PlacementGroupRef, Rebuild,
    Update,
};
use super::{
    Kind, PrimaryIp, PrivateNet, Server, ServerStatus, Started, Store, Transition, check_deletable, check_unique, get,
    get_mut, update_common,
};

/// Hetzner allows 16 volumes per server and 5 firewalls per server; placement groups of type spread hold
/// at most 10 servers.
pub(crate) const MAX_VOLUMES_PER_SERVER: usize = 16;
pub(crate) const MAX_FIREWALLS_PER_SERVER: usize = 5;
const MAX_SERVERS_PER_SPREAD_GROUP: usize = 10;
const MAX_USER_DATA: usize = 32 * 1024;

/// A server name must be a valid host name (RFC 1123).
fn check_hostname(name: &str) -> Result<(), ApiError> {
    let ok = !name.is_empty()
        && name.len() <= 253
        && name.split('.').all(|label| {
            !label.is_empty()
                && label.len() <= 63
                && !label.starts_with('-')
                && !label.ends_with('-')
                && label.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'-')
        });
    if ok { Ok(()) } else { Err(ApiError::invalid_field("name", "server name must be a valid hostname")) }
}

impl Store {
    pub(crate) fn create_server(&mut self, req: CreateServer, now: i64) -> Result<(u64, Started), ApiError> {
        check_hostname(&req.name)?;
        check_unique(self.servers.values(), &req.name, None)?;
        let server_type = self
            .data
            .server_type_by_id_or_name(&req.server_type)
            .ok_or_else(|| ApiError::invalid_field("server_type", "server type not found"))?
            .clone();
        let location = match self.location_or_datacenter(req.location.as_deref(), req.datacenter.as_deref())? {
            Some(l) => l,
            // Hetzner picks a location when none is given; the first one the type is sold in is as good.
            None => server_type
                .locations
                .first()
                .map(|(l, _)| l.clone())
                .ok_or_else(|| ApiError::invalid_field("server_type", "server type is not sold anywhere"))?,
        };
        match server_type.locations.iter().find(|(l, _)| *l == location) {
            None => {
                return Err(ApiError::invalid_field(
                    "server_type",
                    &format!("server type {} is not available in location {location}", server_type.name),
                ));
            }
            Some((_, Some(dep))) if dep.unavailable_after < super::super::clock::day(now) => {
                return Err(ApiError::invalid_field(
                    "server_type",
                    &format!("server type {} is deprecated and no longer orderable", server_type.name),
                ));
            }
            Some(_) => {}
        }
        let image = self
            .data
            .image(&req.image, server_type.architecture)
            .ok_or_else(|| ApiError::invalid_field("image", "image not found"))?;
        if image.architecture != server_type.architecture {
            return Err(ApiError::invalid_field("image", "image architecture does not match the server type"));
        }
        let image_id = image.id;
        let ssh_keys = self.resolve_ssh_keys(&req.ssh_keys)?;
        if req.user_data.as_ref().is_some_and(|u| u.len() > MAX_USER_DATA) {
            return Err(ApiError::invalid_field("user_data", "user_data must be at most 32 KiB"));
        }
        let zone = self.data.zone_of(&location).to_owned();
        for &v in &req.volumes {
            let volume = get(&self.volumes, Kind::Volume, v)?;
            if volume.server.is_some() {
                return Err(ApiError::invalid_field("volumes", &format!("volume {v} is already attached")));
            }
            if volume.location != location {
                return Err(ApiError::invalid_field("volumes", &format!("volume {v} is in another location")));
            }
        }
        if req.volumes.len() > MAX_VOLUMES_PER_SERVER {
            return Err(ApiError::new(Code::ResourceLimitExceeded, "a server can have at most 16 volumes"));
        }
        for &n in &req.networks {
            let network = get(&self.networks, Kind::Network, n)?;
            if !network.subnets.iter().any(|s| s.network_zone == zone && s.kind != "vswitch") {
                return Err(ApiError::specific(
                    "no_subnet_available",
                    format!("network {n} has no subnet in network zone {zone}"),
                ));
            }
        }
        if req.firewalls.len() > MAX_FIREWALLS_PER_SERVER {
            return Err(ApiError::new(Code::ResourceLimitExceeded, "a server can have at most 5 firewalls"));
        }
        for f in &req.firewalls {
            get(&self.firewalls, Kind::Firewall, f.firewall)?;
        }
        if let Some(pg) = req.placement_group {
            get(&self.placement_groups, Kind::PlacementGroup, pg)?;
            if self.servers.values().filter(|s| s.placement_group == Some(pg)).count() >= MAX_SERVERS_PER_SPREAD_GROUP {
                return Err(ApiError::specific("placement_error", "the placement group is full"));
            }
        }
        let public = req.public_net.clone().unwrap_or(super::super::wire::PublicNetRequest {
            enable_ipv4: true,
            enable_ipv6: true,
            ipv4: None,
            ipv6: None,
        });
        for (id, want_v6) in [(public.ipv4, false), (public.ipv6, true)] {
            if let Some(id) = id {
                let ip = get(&self.primary_ips, Kind::PrimaryIp, id)?;
                if ip.assignee.is_some() {
                    return Err(ApiError::specific("primary_ip_assigned", format!("primary IP {id} is assigned")));
                }
                if ip.ipv6 != want_v6 {
                    return Err(ApiError::specific("primary_ip_version_mismatch", "primary IP has the wrong version"));
                }
                if ip.location != location {
                    return Err(ApiError::specific(
                        "primary_ip_datacenter_mismatch",
                        "primary IP is in a different datacenter",
                    ));
                }
            }
        }
        let has_v4 = public.enable_ipv4 || public.ipv4.is_some();
        let has_v6 = public.enable_ipv6 || public.ipv6.is_some();
        if !has_v4 && !has_v6 && req.networks.is_empty() {
            return Err(ApiError::invalid_field(
                "networks",
                "a server without public IPs must be attached to a network",
            ));
        }
        let new_ipv4s = usize::from(public.enable_ipv4 && public.ipv4.is_none());
        self.check_public_ipv4_left(new_ipv4s)?;
        let common = self.common(req.name.clone(), req.labels.clone(), now)?;
        let id = common.id;
        let ipv4 = if has_v4 { Some(self.server_primary_ip(public.ipv4, false, id, &location, now)) } else { None };
        let ipv6 = if has_v6 { Some(self.server_primary_ip(public.ipv6, true, id, &location, now)) } else { None };
        let create = self.start_action("create_server", vec![(Kind::Server, id)], now);
        let mut server = Server {
            common,
            protect_rebuild: false,
            primary_disk_size: server_type.disk,
            server_type: server_type.name.clone(),
            image: image_id,
            location: location.clone(),
            status: ServerStatus::Initializing,
            transition: Some(Transition {
                action: create,
                to: if req.start_after_create { ServerStatus::Running } else { ServerStatus::Off },
                back: ServerStatus::Off,
            }),
            ipv4,
            ipv6,
            private_net: Vec::new(),
            placement_group: req.placement_group,
            backup_window: None,
            ssh_keys: ssh_keys.clone(),
            user_data: req.user_data.clone(),
        };
        for &n in &req.networks {
            let ip = self.free_ip(n, &zone, None)?;
            server.private_net.push(PrivateNet { network: n, ip, alias_ips: Vec::new(), mac: mac_for(id, n) });
        }
        self.servers.insert(id, server);
        for &v in &req.volumes {
            if let Some(volume) = self.volumes.get_mut(&v) {
                volume.server = Some(id);
            }
        }
        for f in &req.firewalls {
            if let Some(fw) = self.firewalls.get_mut(&f.firewall) {
                fw.applied_to.push(super::FirewallTarget::Server(id));
            }
        }
        let mut next_actions = Vec::new();
        if req.start_after_create {
            next_actions.push(self.start_action("start_server", vec![(Kind::Server, id)], now));
        }
        let root_password = ssh_keys.is_empty().then(|| self.root_password());
        Ok((id, Started { action: Some(create), next_actions, root_password }))
    }

    /// Uses the given Primary IP or creates one (auto-deleted with the server), named as Hetzner names them.
    fn server_primary_ip(&mut self, given: Option<u64>, ipv6: bool, server: u64, location: &str, now: i64) -> u64 {
        if let Some(id) = given
            && let Some(ip) = self.primary_ips.get_mut(&id)
        {
            ip.assignee = Some(server);
            return id;
        }
        let zone = self.data.zone_of(location).to_owned();
        let ip = if ipv6 { self.public_ipv6_net(&zone) } else { self.public_ipv4(&zone) };
        let id = self.new_id();
        let common = super::Common {
            id,
            name: format!("primary_ip-{id}"),
            labels: Default::default(),
            created: now,
            protect_delete: false,
        };
        self.primary_ips.insert(
            id,
            PrimaryIp { common, ipv6, ip, location: location.to_owned(), assignee: Some(server), auto_delete: true },
        );
        id
    }

    fn resolve_ssh_keys(&self, keys: &[IdOrName]) -> Result<Vec<u64>, ApiError> {
        keys.iter()
            .map(|k| {
                self.ssh_keys
                    .values()
                    .find(|s| match k {
                        IdOrName::Id(id) => s.common.id == *id,
                        IdOrName::Name(name) => s.common.name == *name || s.common.id.to_string() == *name,
                    })
                    .map(|s| s.common.id)
                    .ok_or_else(|| ApiError::invalid_field("ssh_keys", "SSH key not found"))
            })
            .collect()
    }

    /// The `user_data` a server was created (or last rebuilt) with, for the emulator's inspection
    /// endpoint; `None` when it was given none.
    pub(crate) fn server_user_data(&self, id: u64) -> Result<Option<&str>, ApiError> {
        Ok(get(&self.servers, Kind::Server, id)?.user_data.as_deref())
    }

    pub(crate) fn update_server(&mut self, id: u64, update: &Update) -> Result<(), ApiError> {
        if let Some(name) = &update.name {
            check_hostname(name)?;
        }
        update_common(&mut self.servers, Kind::Server, id, update, |o| &mut o.common).map(|_| ())
    }

    pub(crate) fn delete_server(&mut self, id: u64, now: i64) -> Result<u64, ApiError> {
        let server = get(&self.servers, Kind::Server, id)?;
        check_deletable(&server.common, Kind::Server)?;
        let action = self.start_action("delete_server", vec![(Kind::Server, id)], now);
        self.servers.remove(&id);
        // What the server held is released: auto-deleted IPs go, the rest is detached.
        self.primary_ips.retain(|_, ip| !(ip.assignee == Some(id) && ip.auto_delete));
        for ip in self.primary_ips.values_mut().filter(|ip| ip.assignee == Some(id)) {
            ip.assignee = None;
        }
        for ip in self.floating_ips.values_mut().filter(|ip| ip.server == Some(id)) {
            ip.server = None;
        }
        for volume in self.volumes.values_mut().filter(|v| v.server == Some(id)) {
            volume.server = None;
        }
        for fw in self.firewalls.values_mut() {
            fw.applied_to.retain(|t| *t != super::FirewallTarget::Server(id));
        }
        for lb in self.load_balancers.values_mut() {
            lb.targets.retain(|t| !matches!(t, super::LbTarget::Server { id: s, .. } if *s == id));
        }
        Ok(action)
    }

    /// The server, unless an action on it is running.
    fn server_for_action(&mut self, id: u64, now: i64) -> Result<&mut Server, ApiError> {
        get(&self.servers, Kind::Server, id)?;
        self.check_unlocked(Kind::Server, id, now)?;
        get_mut(&mut self.servers, Kind::Server, id)
    }

    fn power(&mut self, id: u64, command: &'static str, on: bool, now: i64) -> Result<u64, ApiError> {
        let server = self.server_for_action(id, now)?;
        let before = server.status;
        let action = self.start_action(command, vec![(Kind::Server, id)], now);
        let server = get_mut(&mut self.servers, Kind::Server, id)?;
        let (during, to) = if on {
            (ServerStatus::Starting, ServerStatus::Running)
        } else {
            (ServerStatus::Stopping, ServerStatus::Off)
        };
        if before != to {
            server.status = during;
            server.transition = Some(Transition { action, to, back: before });
        }
        Ok(action)
    }

    pub(crate) fn server_action(
        &mut self,
        id: u64,
        command: &str,
        body: &serde_json::Value,
        now: i64,
    ) -> Result<Started, ApiError> {
        use super::super::wire::decode;
        let single = |a: u64| Started { action: Some(a), ..Started::default() };
        match command {
            "poweron" => self.power(id, "start_server", true, now).map(single),
            "poweroff" => self.power(id, "stop_server", false, now).map(single),
            "shutdown" => self.power(id, "shutdown_server", false, now).map(single),
            "reboot" | "reset" => {
                self.server_for_action(id, now)?;
                let name = if command == "reboot" { "reboot_server" } else { "reset_server" };
                Ok(single(self.start_action(name, vec![(Kind::Server, id)], now)))
            }
            "change_type" => {
                let req: ChangeType = decode(body)?;
                let new_type = self
                    .data
                    .server_type_by_id_or_name(&req.server_type)
                    .ok_or_else(|| ApiError::invalid_field("server_type", "server type not found"))?
                    .clone();
                let server = self.server_for_action(id, now)?;
                if server.status != ServerStatus::Off {
                    return Err(ApiError::specific("server_not_stopped", "the action requires a stopped server"));
                }
                let old = server.server_type.clone();
                let disk = server.primary_disk_size;
                let location = server.location.clone();
                let old_type = self.data.server_type(&old).cloned();
                let fits = new_type.disk >= disk
                    && old_type.as_ref().is_none_or(|o| {
                        o.architecture == new_type.architecture && o.storage_type == new_type.storage_type
                    })
                    && new_type.locations.iter().any(|(l, _)| *l == location);
                if !fits {
                    return Err(ApiError::specific(
                        "invalid_server_type",
                        format!("server type {} does not fit the server", new_type.name),
                    ));
                }
                let action = self.start_action("change_server_type", vec![(Kind::Server, id)], now);
                let server = get_mut(&mut self.servers, Kind::Server, id)?;
                server.server_type = new_type.name.clone();
                if req.upgrade_disk {
                    server.primary_disk_size = new_type.disk;
                }
                Ok(single(action))
            }
            "enable_backup" | "disable_backup" => {
                let server = self.server_for_action(id, now)?;
                server.backup_window = (command == "enable_backup").then(|| "22-02".to_owned());
                let name = if command == "enable_backup" { "enable_backup" } else { "disable_backup" };
                Ok(single(self.start_action(name, vec![(Kind::Server, id)], now)))
            }
            "attach_to_network" => {
                let req: AttachToNetwork = decode(body)?;
                let server = self.server_for_action(id, now)?;
                if server.private_net.iter().any(|p| p.network == req.network) {
                    return Err(ApiError::specific("server_already_attached", "server is already attached"));
                }
                let location = server.location.clone();
                get(&self.networks, Kind::Network, req.network)?;
                let zone = self.data.zone_of(&location).to_owned();
                let wanted = match &req.ip {
                    Some(ip) => {
                        Some(ip.parse::<Ipv4Addr>().map_err(|_| ApiError::invalid_field("ip", "not an IPv4 address"))?)
                    }
                    None => None,
                };
                let aliases = req
                    .alias_ips
                    .iter()
                    .map(|a| a.parse::<Ipv4Addr>().map_err(|_| ApiError::invalid_field("alias_ips", "not an IPv4")))
                    .collect::<Result<Vec<_>, _>>()?;
                let ip = self.free_ip(req.network, &zone, wanted)?;
                let action =
                    self.start_action("attach_to_network", vec![(Kind::Server, id), (Kind::Network, req.network)], now);
                let server = get_mut(&mut self.servers, Kind::Server, id)?;
                server.private_net.push(PrivateNet {
                    network: req.network,
                    ip,
                    alias_ips: aliases,
                    mac: mac_for(id, req.network),
                });
                Ok(single(action))
            }
            "detach_from_network" => {
                let req: NetworkRef = decode(body)?;
                let server = self.server_for_action(id, now)?;
                if !server.private_net.iter().any(|p| p.network == req.network) {
                    return Err(ApiError::specific(
                        "server_not_attached_to_network",
                        "the server is not attached to this network",
                    ));
                }
                server.private_net.retain(|p| p.network != req.network);
                let resources = vec![(Kind::Server, id), (Kind::Network, req.network)];
                Ok(single(self.start_action("detach_from_network", resources, now)))
            }
            "add_to_placement_group" => {
                let req: PlacementGroupRef = decode(body)?;
                get(&self.placement_groups, Kind::PlacementGroup, req.placement_group)?;
                let members = self.servers.values().filter(|s| s.placement_group == Some(req.placement_group)).count();
                let server = self.server_for_action(id, now)?;
                if server.status != ServerStatus::Off {
                    return Err(ApiError::specific("server_not_stopped", "the action requires a stopped server"));
                }
                if server.placement_group.is_some() {
                    return Err(ApiError::invalid_field("placement_group", "server is already in a placement group"));
                }
                if members >= MAX_SERVERS_PER_SPREAD_GROUP {
                    return Err(ApiError::specific("placement_error", "the placement group is full"));
                }
                server.placement_group = Some(req.placement_group);
                let resources = vec![(Kind::Server, id), (Kind::PlacementGroup, req.placement_group)];
                Ok(single(self.start_action("add_to_placement_group", resources, now)))
            }
            "remove_from_placement_group" => {
                let server = self.server_for_action(id, now)?;
                if server.status != ServerStatus::Off {
                    return Err(ApiError::specific("server_not_stopped", "the action requires a stopped server"));
                }
                let Some(pg) = server.placement_group.take() else {
                    return Err(ApiError::invalid_field("placement_group", "server is not in a placement group"));
                };
                let resources = vec![(Kind::Server, id), (Kind::PlacementGroup, pg)];
                Ok(single(self.start_action("remove_from_placement_group", resources, now)))
            }
            "change_protection" => {
                let req: ChangeProtection = decode(body)?;
                let server = self.server_for_action(id, now)?;
                if req.delete.is_none() && req.rebuild.is_none() {
                    return Err(ApiError::invalid_field("delete", "give delete, rebuild or both"));
                }
                if let Some(d) = req.delete {
                    server.common.protect_delete = d;
                }
                if let Some(r) = req.rebuild {
                    server.protect_rebuild = r;
                }
                Ok(single(self.start_action("change_protection", vec![(Kind::Server, id)], now)))
            }
            "rebuild" => {
                let req: Rebuild = decode(body)?;
                if req.user_data.as_ref().is_some_and(|u| u.len() > MAX_USER_DATA) {
                    return Err(ApiError::invalid_field("user_data", "user_data must be at most 32 KiB"));
                }
                let server = self.server_for_action(id, now)?;
                if server.protect_rebuild {
                    return Err(ApiError::protected("Server", id));
                }
                let server_type = server.server_type.clone();
                let arch = self.data.server_type(&server_type).map_or("x86", |t| t.architecture);
                let image = self
                    .data
                    .image(&req.image, arch)
                    .filter(|i| i.architecture == arch)
                    .ok_or_else(|| ApiError::invalid_field("image", "image not found"))?
                    .id;
                let no_keys = get(&self.servers, Kind::Server, id)?.ssh_keys.is_empty();
                let action = self.start_action("rebuild_server", vec![(Kind::Server, id)], now);
                let server = get_mut(&mut self.servers, Kind::Server, id)?;
                let back = server.status;
                server.image = image;
                if let Some(user_data) = req.user_data {
                    server.user_data = Some(user_data);
                }
                server.status = ServerStatus::Rebuilding;
                server.transition = Some(Transition { action, to: ServerStatus::Running, back });
                let root_password = no_keys.then(|| self.root_password());
                Ok(Started { action: Some(action), next_actions: Vec::new(), root_password })
            }
            _ => Err(ApiError::not_found("action", 0)),
        }
    }
}

/// A stable MAC address for a server's interface in a network.
fn mac_for(server: u64, network: u64) -> String {
    let b = (server ^ (network << 16)).to_be_bytes();
    format!("86:00:00:{:02x}:{:02x}:{:02x}", b[5], b[6], b[7])
}
