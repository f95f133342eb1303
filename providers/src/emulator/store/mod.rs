//! The emulator's in-memory state: every object, the actions, the id counters and Hetzner's rules. It
//! knows no HTTP types: operations take decoded request bodies and the current time and return domain
//! objects or an [`ApiError`]; `http.rs` turns those into responses.

mod catalog;
mod firewalls;
mod ips;
mod load_balancers;
mod networks;
mod others;
mod servers;
mod volumes;

use std::collections::BTreeMap;
use std::net::Ipv4Addr;

use ipnet::Ipv4Net;

pub(crate) use catalog::{Datacenter, Deprecation, Image, LbType, Location, ServerType, StaticData};

use super::errors::ApiError;
use super::faults::SeededRng;
use super::labels::{Labels, check_labels};
use super::pagination::Listed;
use super::wire::{ChangeProtection, Update};

/// The kinds of objects actions refer to, spelled as in `resources[].type`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub(crate) enum Kind {
    Server,
    Volume,
    Network,
    LoadBalancer,
    Firewall,
    FloatingIp,
    PrimaryIp,
    Certificate,
    PlacementGroup,
    SshKey,
    Image,
}

impl Kind {
    pub(crate) fn as_str(self) -> &'static str {
        match self {
            Kind::Server => "server",
            Kind::Volume => "volume",
            Kind::Network => "network",
            Kind::LoadBalancer => "load_balancer",
            Kind::Firewall => "firewall",
            Kind::FloatingIp => "floating_ip",
            Kind::PrimaryIp => "primary_ip",
            Kind::Certificate => "certificate",
            Kind::PlacementGroup => "placement_group",
            Kind::SshKey => "ssh_key",
            Kind::Image => "image",
        }
    }

    /// The kind served under a path's first segment (`servers` -> server).
    pub(crate) fn from_collection(segment: &str) -> Option<Kind> {
        Some(match segment {
            "servers" => Kind::Server,
            "volumes" => Kind::Volume,
            "networks" => Kind::Network,
            "load_balancers" => Kind::LoadBalancer,
            "firewalls" => Kind::Firewall,
            "floating_ips" => Kind::FloatingIp,
            "primary_ips" => Kind::PrimaryIp,
            "certificates" => Kind::Certificate,
            "placement_groups" => Kind::PlacementGroup,
            "ssh_keys" => Kind::SshKey,
            "images" => Kind::Image,
            _ => return None,
        })
    }

    /// How messages name the kind: `Server`, `Load Balancer`.
    pub(crate) fn title(self) -> &'static str {
        match self {
            Kind::Server => "Server",
            Kind::Volume => "Volume",
            Kind::Network => "Network",
            Kind::LoadBalancer => "Load Balancer",
            Kind::Firewall => "Firewall",
            Kind::FloatingIp => "Floating IP",
            Kind::PrimaryIp => "Primary IP",
            Kind::Certificate => "Certificate",
            Kind::PlacementGroup => "Placement Group",
            Kind::SshKey => "SSH Key",
            Kind::Image => "Image",
        }
    }
}

/// An action's state at a given time, computed from its start, its duration and whether it fails.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum ActionStatus {
    Running { progress: u8 },
    Success,
    Error,
}

#[derive(Debug, Clone)]
pub(crate) struct Action {
    pub(crate) id: u64,
    pub(crate) command: &'static str,
    pub(crate) started: i64,
    pub(crate) finishes: i64,
    pub(crate) resources: Vec<(Kind, u64)>,
    /// Decided when the action starts (fault injection); it still runs its full time.
    pub(crate) fails: bool,
}

impl Action {
    pub(crate) fn status(&self, now: i64) -> ActionStatus {
        if now >= self.finishes {
            if self.fails { ActionStatus::Error } else { ActionStatus::Success }
        } else {
            let total = (self.finishes - self.started).max(1);
            let done = (now - self.started).clamp(0, total);
            // Never 100 while running: clients treat 100 as done.
            ActionStatus::Running { progress: u8::try_from(done * 100 / total).unwrap_or(99).min(99) }
        }
    }
}

impl Listed for Action {
    fn id(&self) -> u64 {
        self.id
    }
    fn name(&self) -> &str {
        self.command
    }
    fn created(&self) -> i64 {
        self.started
    }
}

/// Fields every user-created object has.
#[derive(Debug, Clone)]
pub(crate) struct Common {
    pub(crate) id: u64,
    pub(crate) name: String,
    pub(crate) labels: Labels,
    pub(crate) created: i64,
    pub(crate) protect_delete: bool,
}

macro_rules! listed {
    ($($t:ty),*) => {$(
        impl Listed for $t {
            fn id(&self) -> u64 { self.common.id }
            fn name(&self) -> &str { &self.common.name }
            fn labels(&self) -> Option<&Labels> { Some(&self.common.labels) }
            fn created(&self) -> i64 { self.common.created }
        }
    )*};
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum ServerStatus {
    Initializing,
    Starting,
    Running,
    Stopping,
    Off,
    Rebuilding,
}

impl ServerStatus {
    pub(crate) fn as_str(self) -> &'static str {
        match self {
            ServerStatus::Initializing => "initializing",
            ServerStatus::Starting => "starting",
            ServerStatus::Running => "running",
            ServerStatus::Stopping => "stopping",
            ServerStatus::Off => "off",
            ServerStatus::Rebuilding => "rebuilding",
        }
    }
}

/// A status change that lands when its action ends: `to` on success, `back` on error.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Transition<S> {
    pub(crate) action: u64,
    pub(crate) to: S,
    pub(crate) back: S,
}

#[derive(Debug, Clone)]
pub(crate) struct PrivateNet {
    pub(crate) network: u64,
    pub(crate) ip: Ipv4Addr,
    pub(crate) alias_ips: Vec<Ipv4Addr>,
    pub(crate) mac: String,
}

#[derive(Debug, Clone)]
pub(crate) struct Server {
    pub(crate) common: Common,
    pub(crate) protect_rebuild: bool,
    pub(crate) server_type: String,
    pub(crate) image: u64,
    pub(crate) location: String,
    pub(crate) status: ServerStatus,
    pub(crate) transition: Option<Transition<ServerStatus>>,
    pub(crate) ipv4: Option<u64>,
    pub(crate) ipv6: Option<u64>,
    pub(crate) private_net: Vec<PrivateNet>,
    pub(crate) placement_group: Option<u64>,
    pub(crate) backup_window: Option<String>,
    pub(crate) primary_disk_size: u32,
    pub(crate) ssh_keys: Vec<u64>,
    /// The cloud-init `user_data` given at create (or at the latest rebuild that gave one). The API never
    /// answers it; the emulator's inspection endpoint does, for hypervisor-like test harnesses.
    pub(crate) user_data: Option<String>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum VolumeStatus {
    Creating,
    Available,
}

#[derive(Debug, Clone)]
pub(crate) struct Volume {
    pub(crate) common: Common,
    pub(crate) size: u32,
    pub(crate) location: String,
    pub(crate) server: Option<u64>,
    pub(crate) format: Option<String>,
    pub(crate) status: VolumeStatus,
    pub(crate) transition: Option<Transition<VolumeStatus>>,
}

#[derive(Debug, Clone)]
pub(crate) struct Subnet {
    pub(crate) kind: String,
    pub(crate) ip_range: Ipv4Net,
    pub(crate) network_zone: String,
    pub(crate) gateway: Ipv4Addr,
    pub(crate) vswitch_id: Option<u64>,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Route {
    pub(crate) destination: Ipv4Net,
    pub(crate) gateway: Ipv4Addr,
}

#[derive(Debug, Clone)]
pub(crate) struct Network {
    pub(crate) common: Common,
    pub(crate) ip_range: Ipv4Net,
    pub(crate) subnets: Vec<Subnet>,
    pub(crate) routes: Vec<Route>,
    pub(crate) expose_routes_to_vswitch: bool,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum FirewallTarget {
    Server(u64),
    LabelSelector(String),
}

#[derive(Debug, Clone)]
pub(crate) struct Firewall {
    pub(crate) common: Common,
    pub(crate) rules: Vec<super::wire::RuleWire>,
    pub(crate) applied_to: Vec<FirewallTarget>,
}

#[derive(Debug, Clone)]
pub(crate) struct PlacementGroup {
    pub(crate) common: Common,
}

#[derive(Debug, Clone)]
pub(crate) struct PrimaryIp {
    pub(crate) common: Common,
    pub(crate) ipv6: bool,
    pub(crate) ip: String,
    pub(crate) location: String,
    pub(crate) assignee: Option<u64>,
    pub(crate) auto_delete: bool,
}

#[derive(Debug, Clone)]
pub(crate) struct FloatingIp {
    pub(crate) common: Common,
    pub(crate) description: Option<String>,
    pub(crate) ipv6: bool,
    pub(crate) ip: String,
    pub(crate) home_location: String,
    pub(crate) server: Option<u64>,
}

#[derive(Debug, Clone)]
pub(crate) struct SshKey {
    pub(crate) common: Common,
    pub(crate) public_key: String,
    pub(crate) fingerprint: String,
}

#[derive(Debug, Clone)]
pub(crate) struct Certificate {
    pub(crate) common: Common,
    pub(crate) certificate: String,
    pub(crate) fingerprint: String,
    pub(crate) not_valid_before: i64,
    pub(crate) not_valid_after: i64,
}

#[derive(Debug, Clone)]
pub(crate) struct LbService {
    pub(crate) protocol: String,
    pub(crate) listen_port: u16,
    pub(crate) destination_port: u16,
    pub(crate) proxyprotocol: bool,
    pub(crate) health_check: super::wire::HealthCheckWire,
    pub(crate) http: Option<super::wire::ServiceHttpWire>,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum LbTarget {
    Server { id: u64, use_private_ip: bool },
    LabelSelector { selector: String, use_private_ip: bool },
    Ip { ip: String },
}

#[derive(Debug, Clone)]
pub(crate) struct LoadBalancer {
    pub(crate) common: Common,
    pub(crate) lb_type: String,
    pub(crate) location: String,
    pub(crate) algorithm: String,
    pub(crate) services: Vec<LbService>,
    pub(crate) targets: Vec<LbTarget>,
    pub(crate) public_interface: bool,
    pub(crate) ipv4: String,
    pub(crate) ipv6: String,
    pub(crate) private_net: Vec<(u64, Ipv4Addr)>,
}

listed!(Server, Volume, Network, Firewall, PlacementGroup, PrimaryIp, FloatingIp, SshKey, Certificate, LoadBalancer);

/// The answer of an operation that starts actions: the object it made or changed (if any) and the actions.
#[derive(Debug, Clone, Default)]
pub(crate) struct Started {
    pub(crate) action: Option<u64>,
    pub(crate) next_actions: Vec<u64>,
    pub(crate) root_password: Option<String>,
}

/// The whole emulated project.
pub(crate) struct Store {
    pub(crate) data: StaticData,
    action_delay_ms: i64,
    next_id: u64,
    next_action_id: u64,
    next_public: u32,
    /// Where public IPv4s come from when set (`--public-ipv4-range`), instead of Hetzner's blocks per zone.
    public_ipv4_range: Option<Ipv4Net>,
    /// The offset in `public_ipv4_range` the next search for a free address starts at.
    next_in_range: u32,
    /// Decides generated secrets (root passwords); apart from the fault generator so that injected faults
    /// do not change them.
    rng: SeededRng,
    /// Set by the HTTP layer before an operation when fault injection decided the next action fails.
    pub(crate) fail_next_action: bool,
    pub(crate) actions: BTreeMap<u64, Action>,
    /// Actions that may still be running, to answer `locked` without scanning every action.
    running: Vec<u64>,
    pub(crate) servers: BTreeMap<u64, Server>,
    pub(crate) volumes: BTreeMap<u64, Volume>,
    pub(crate) networks: BTreeMap<u64, Network>,
    pub(crate) firewalls: BTreeMap<u64, Firewall>,
    pub(crate) placement_groups: BTreeMap<u64, PlacementGroup>,
    pub(crate) primary_ips: BTreeMap<u64, PrimaryIp>,
    pub(crate) floating_ips: BTreeMap<u64, FloatingIp>,
    pub(crate) ssh_keys: BTreeMap<u64, SshKey>,
    pub(crate) certificates: BTreeMap<u64, Certificate>,
    pub(crate) load_balancers: BTreeMap<u64, LoadBalancer>,
}

impl Store {
    /// Ids of created objects start at `100_000 * (1 + seed % 9)` and actions at ten times that, so one
    /// seed always gives the same ids and ids of different runs rarely look alike.
    pub(crate) fn new(data: StaticData, seed: u64, action_delay_ms: i64) -> Store {
        let base = 100_000 * (1 + seed % 9);
        Store {
            data,
            action_delay_ms,
            next_id: base,
            next_action_id: base * 10,
            next_public: 0,
            public_ipv4_range: None,
            next_in_range: 0,
            rng: SeededRng::new(seed ^ 0x5EED),
            fail_next_action: false,
            actions: BTreeMap::new(),
            running: Vec::new(),
            servers: BTreeMap::new(),
            volumes: BTreeMap::new(),
            networks: BTreeMap::new(),
            firewalls: BTreeMap::new(),
            placement_groups: BTreeMap::new(),
            primary_ips: BTreeMap::new(),
            floating_ips: BTreeMap::new(),
            ssh_keys: BTreeMap::new(),
            certificates: BTreeMap::new(),
            load_balancers: BTreeMap::new(),
        }
    }

    fn new_id(&mut self) -> u64 {
        self.next_id += 1;
        self.next_id
    }

    fn common(&mut self, name: String, labels: Labels, now: i64) -> Result<Common, ApiError> {
        check_labels(&labels).map_err(|m| ApiError::invalid_field("labels", &m))?;
        Ok(Common { id: self.new_id(), name, labels, created: now, protect_delete: false })
    }

    /// Starts an action on some resources; it ends after the configured delay.
    fn start_action(&mut self, command: &'static str, resources: Vec<(Kind, u64)>, now: i64) -> u64 {
        self.next_action_id += 1;
        let id = self.next_action_id;
        let fails = std::mem::take(&mut self.fail_next_action);
        self.actions
            .insert(id, Action { id, command, started: now, finishes: now + self.action_delay_ms, resources, fails });
        self.running.push(id);
        id
    }

    /// Applies every status change whose action has ended. Called before each request is served.
    pub(crate) fn settle(&mut self, now: i64) {
        if self.running.is_empty() {
            return;
        }
        let actions = &self.actions;
        self.running.retain(|id| actions.get(id).is_some_and(|a| now < a.finishes));
        let status_of = |id: u64| actions.get(&id).map(|a| a.status(now));
        for server in self.servers.values_mut() {
            if let Some(t) = server.transition {
                match status_of(t.action) {
                    Some(ActionStatus::Running { .. }) => {}
                    Some(ActionStatus::Success) => (server.status, server.transition) = (t.to, None),
                    Some(ActionStatus::Error) | None => (server.status, server.transition) = (t.back, None),
                }
            }
        }
        for volume in self.volumes.values_mut() {
            if let Some(t) = volume.transition {
                match status_of(t.action) {
                    Some(ActionStatus::Running { .. }) => {}
                    Some(ActionStatus::Success) => (volume.status, volume.transition) = (t.to, None),
                    Some(ActionStatus::Error) | None => (volume.status, volume.transition) = (t.back, None),
                }
            }
        }
    }

    /// `locked` when an action on the object is still running.
    pub(crate) fn check_unlocked(&self, kind: Kind, id: u64, now: i64) -> Result<(), ApiError> {
        let busy = self
            .running
            .iter()
            .filter_map(|a| self.actions.get(a))
            .any(|a| now < a.finishes && a.resources.iter().any(|(k, i)| *k == kind && *i == id));
        if busy { Err(ApiError::locked(kind.title(), id)) } else { Ok(()) }
    }

    /// Whether an object is locked (for the `locked` field of servers).
    pub(crate) fn is_locked(&self, kind: Kind, id: u64, now: i64) -> bool {
        self.check_unlocked(kind, id, now).is_err()
    }

    /// A new root password, as Hetzner sends for servers created or rebuilt without SSH keys.
    fn root_password(&mut self) -> String {
        const ALPHABET: &[u8] = b"abcdefghijkmnopqrstuvwxyzABCDEFGHJKLMNPQRSTUVWXYZ23456789";
        (0..20)
            .map(|_| {
                let i = usize::try_from(self.rng.next_u64() % ALPHABET.len() as u64).unwrap_or(0);
                char::from(ALPHABET[i])
            })
            .collect()
    }

    /// Hands out public IPv4s from `range` (in every zone) instead of Hetzner's blocks: the first free
    /// address after the last one handed out, skipping the network and broadcast addresses.
    pub(crate) fn with_public_ipv4_range(mut self, range: Option<Ipv4Net>) -> Store {
        self.public_ipv4_range = range;
        self
    }

    /// The next public IPv4 of a network zone, from address blocks Hetzner announces there, or from the
    /// configured range. Callers check [`Store::check_public_ipv4_left`] first, so a range never hands
    /// out an address in use.
    fn public_ipv4(&mut self, zone: &str) -> String {
        if let Some(range) = self.public_ipv4_range {
            let used = self.public_ipv4s_in_use();
            let (first, count) = range_hosts(range);
            for step in 0..count {
                let offset = (self.next_in_range + step) % count;
                let ip = Ipv4Addr::from(first + offset);
                if !used.contains(&ip) {
                    self.next_in_range = offset + 1;
                    return ip.to_string();
                }
            }
            // Unreachable after check_public_ipv4_left; repeat an address rather than panic.
            return Ipv4Addr::from(first).to_string();
        }
        self.next_public += 1;
        let (a, b) = match zone {
            "us-east" => (5, 161),
            "us-west" => (5, 78),
            "ap-southeast" => (5, 223),
            _ => (49, 12),
        };
        let n = self.next_public;
        format!("{a}.{b}.{}.{}", (n / 250) % 256, n % 250 + 2)
    }

    /// The public IPv4s held by Primary IPs, Floating IPs and Load Balancers.
    fn public_ipv4s_in_use(&self) -> std::collections::BTreeSet<Ipv4Addr> {
        let primary = self.primary_ips.values().filter(|ip| !ip.ipv6).map(|ip| ip.ip.as_str());
        let floating = self.floating_ips.values().filter(|ip| !ip.ipv6).map(|ip| ip.ip.as_str());
        let balancers = self.load_balancers.values().map(|lb| lb.ipv4.as_str());
        primary.chain(floating).chain(balancers).filter_map(|ip| ip.parse().ok()).collect()
    }

    /// `resource_unavailable` when a configured range has no free address for `wanted` more IPv4s.
    pub(crate) fn check_public_ipv4_left(&self, wanted: usize) -> Result<(), ApiError> {
        let Some(range) = self.public_ipv4_range else { return Ok(()) };
        let (_, count) = range_hosts(range);
        let used = self.public_ipv4s_in_use().iter().filter(|ip| range.contains(*ip)).count();
        let free = usize::try_from(count).unwrap_or(usize::MAX).saturating_sub(used);
        if free < wanted {
            return Err(ApiError::specific(
                "resource_unavailable",
                format!("no public IPv4 address is left in {range}"),
            ));
        }
        Ok(())
    }

    /// The next public IPv6 /64 of a network zone.
    fn public_ipv6_net(&mut self, zone: &str) -> String {
        self.next_public += 1;
        let prefix = match zone {
            "us-east" | "us-west" => "2a01:4ff:f0",
            "ap-southeast" => "2a01:4ff:2f0",
            _ => "2a01:4f8:c0c",
        };
        format!("{prefix}:{:x}::/64", self.next_public)
    }

    fn location(&self, name: &str, field: &str) -> Result<&Location, ApiError> {
        self.data
            .location(name)
            .ok_or_else(|| ApiError::invalid_field(field, &format!("location '{name}' does not exist")))
    }

    /// The location named by `location` or `datacenter` (either may be given; `location` wins).
    fn location_or_datacenter(
        &self,
        location: Option<&str>,
        datacenter: Option<&str>,
    ) -> Result<Option<String>, ApiError> {
        if let Some(l) = location {
            return Ok(Some(self.location(l, "location")?.name.clone()));
        }
        if let Some(d) = datacenter {
            let dc =
                self.data.datacenters.iter().find(|dc| dc.name == d || dc.id.to_string() == d).ok_or_else(|| {
                    ApiError::invalid_field("datacenter", &format!("datacenter '{d}' does not exist"))
                })?;
            return Ok(Some(dc.location.clone()));
        }
        Ok(None)
    }
}

/// The first address a range hands out and how many it has: every address but the network and
/// broadcast addresses (all of a /31 or /32).
fn range_hosts(range: Ipv4Net) -> (u32, u32) {
    let network = u32::from(range.network());
    let size = 1u64 << (32 - u32::from(range.prefix_len()));
    if size <= 2 {
        (network, u32::try_from(size).unwrap_or(1))
    } else {
        (network + 1, u32::try_from(size - 2).unwrap_or(u32::MAX))
    }
}

/// Finds an object or answers `not_found`.
fn get_mut<T>(map: &mut BTreeMap<u64, T>, kind: Kind, id: u64) -> Result<&mut T, ApiError> {
    map.get_mut(&id).ok_or_else(|| ApiError::not_found(kind.as_str(), id))
}

fn get<T>(map: &BTreeMap<u64, T>, kind: Kind, id: u64) -> Result<&T, ApiError> {
    map.get(&id).ok_or_else(|| ApiError::not_found(kind.as_str(), id))
}

/// `uniqueness_error` if another object of the map has the name.
fn check_unique<'a, T: Listed + 'a>(
    items: impl IntoIterator<Item = &'a T>,
    name: &str,
    except: Option<u64>,
) -> Result<(), ApiError> {
    if items.into_iter().any(|t| t.name() == name && Some(t.id()) != except) {
        Err(ApiError::not_unique("name", name))
    } else {
        Ok(())
    }
}

/// Names of most objects: 1..255 characters, no control characters, not blank.
fn check_name(name: &str) -> Result<(), ApiError> {
    if name.trim().is_empty() || name.len() > 255 || name.chars().any(char::is_control) {
        Err(ApiError::invalid_field("name", "name must be 1 to 255 printable characters"))
    } else {
        Ok(())
    }
}

/// Applies a `PUT` to the common fields of object `id` of `map`: the name is checked against the
/// other objects of the map in place (no copies of them), then the name and labels are set.
fn update_common<'m, T: Listed>(
    map: &'m mut BTreeMap<u64, T>,
    kind: Kind,
    id: u64,
    update: &Update,
    common: fn(&mut T) -> &mut Common,
) -> Result<&'m mut T, ApiError> {
    get(map, kind, id)?;
    if let Some(name) = &update.name {
        check_name(name)?;
        check_unique(map.values(), name, Some(id))?;
    }
    if let Some(labels) = &update.labels {
        check_labels(labels).map_err(|m| ApiError::invalid_field("labels", &m))?;
    }
    let object = get_mut(map, kind, id)?;
    let fields = common(object);
    if let Some(name) = &update.name {
        fields.name.clone_from(name);
    }
    if let Some(labels) = &update.labels {
        fields.labels.clone_from(labels);
    }
    Ok(object)
}

/// `protected` if the object may not be deleted.
fn check_deletable(common: &Common, kind: Kind) -> Result<(), ApiError> {
    if common.protect_delete { Err(ApiError::protected(kind.title(), common.id)) } else { Ok(()) }
}

fn apply_protection(common: &mut Common, change: &ChangeProtection) -> Result<(), ApiError> {
    match change.delete {
        Some(delete) => {
            common.protect_delete = delete;
            Ok(())
        }
        None => Err(ApiError::invalid_field("delete", "Missing data for required field.")),
    }
}

#[cfg(test)]
mod tests;
