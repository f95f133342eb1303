//! Serde types of the request bodies, mirroring Hetzner's JSON (`hcloud-openapi.json`). The store takes
//! these decoded bodies as plain data; answers are rendered from the store's domain types in `render.rs`.
//!
//! Unknown fields are ignored, as Hetzner does (so are `automount`, which has no visible effect in an
//! emulator); missing required fields and wrong types are reported by
//! `http.rs` as `invalid_input` with the field's name.

use serde::{Deserialize, Serialize};
use serde_json::Value;

use super::labels::Labels;

/// An id or a name, as `ssh_keys`, `image` and a few other fields accept.
#[derive(Debug, Clone, Deserialize, PartialEq, Eq)]
#[serde(untagged)]
pub(crate) enum IdOrName {
    Id(u64),
    Name(String),
}

#[derive(Debug, Clone, Deserialize)]
pub(crate) struct FirewallRef {
    pub(crate) firewall: u64,
}

#[derive(Debug, Clone, Default, Deserialize)]
pub(crate) struct PublicNetRequest {
    #[serde(default = "yes")]
    pub(crate) enable_ipv4: bool,
    #[serde(default = "yes")]
    pub(crate) enable_ipv6: bool,
    pub(crate) ipv4: Option<u64>,
    pub(crate) ipv6: Option<u64>,
}

fn yes() -> bool {
    true
}

fn server_kind() -> String {
    "server".to_owned()
}

#[derive(Debug, Clone, Deserialize)]
pub(crate) struct CreateServer {
    pub(crate) name: String,
    pub(crate) server_type: IdOrName,
    pub(crate) image: IdOrName,
    pub(crate) location: Option<String>,
    pub(crate) datacenter: Option<String>,
    #[serde(default)]
    pub(crate) ssh_keys: Vec<IdOrName>,
    #[serde(default)]
    pub(crate) volumes: Vec<u64>,
    #[serde(default)]
    pub(crate) networks: Vec<u64>,
    #[serde(default)]
    pub(crate) firewalls: Vec<FirewallRef>,
    pub(crate) placement_group: Option<u64>,
    pub(crate) user_data: Option<String>,
    #[serde(default)]
    pub(crate) labels: Labels,
    #[serde(default = "yes")]
    pub(crate) start_after_create: bool,
    pub(crate) public_net: Option<PublicNetRequest>,
}

/// `PUT /{kind}/{id}`: the fields every kind accepts, plus the few some kinds add.
#[derive(Debug, Clone, Default, Deserialize)]
pub(crate) struct Update {
    pub(crate) name: Option<String>,
    pub(crate) labels: Option<Labels>,
    /// Floating IPs.
    pub(crate) description: Option<String>,
    /// Primary IPs.
    pub(crate) auto_delete: Option<bool>,
    /// Networks.
    pub(crate) expose_routes_to_vswitch: Option<bool>,
}

#[derive(Debug, Clone, Deserialize)]
pub(crate) struct ChangeType {
    pub(crate) server_type: IdOrName,
    #[serde(default)]
    pub(crate) upgrade_disk: bool,
}

#[derive(Debug, Clone, Default, Deserialize)]
pub(crate) struct ChangeProtection {
    pub(crate) delete: Option<bool>,
    pub(crate) rebuild: Option<bool>,
}

#[derive(Debug, Clone, Deserialize)]
pub(crate) struct AttachToNetwork {
    pub(crate) network: u64,
    pub(crate) ip: Option<String>,
    #[serde(default)]
    pub(crate) alias_ips: Vec<String>,
}

#[derive(Debug, Clone, Deserialize)]
pub(crate) struct NetworkRef {
    pub(crate) network: u64,
}

#[derive(Debug, Clone, Deserialize)]
pub(crate) struct PlacementGroupRef {
    pub(crate) placement_group: u64,
}

#[derive(Debug, Clone, Deserialize)]
pub(crate) struct Rebuild {
    pub(crate) image: IdOrName,
    /// Replaces the server's `user_data`; without it the previous one is used again.
    pub(crate) user_data: Option<String>,
}

#[derive(Debug, Clone, Deserialize)]
pub(crate) struct CreateVolume {
    pub(crate) name: String,
    pub(crate) size: i64,
    pub(crate) location: Option<String>,
    pub(crate) server: Option<u64>,
    pub(crate) format: Option<String>,
    #[serde(default)]
    pub(crate) labels: Labels,
}

#[derive(Debug, Clone, Deserialize)]
pub(crate) struct AttachVolume {
    pub(crate) server: u64,
}

#[derive(Debug, Clone, Deserialize)]
pub(crate) struct ResizeVolume {
    pub(crate) size: i64,
}

#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, Eq)]
pub(crate) struct SubnetWire {
    #[serde(rename = "type")]
    pub(crate) kind: String,
    pub(crate) ip_range: Option<String>,
    pub(crate) network_zone: String,
    pub(crate) vswitch_id: Option<u64>,
}

#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, Eq)]
pub(crate) struct RouteWire {
    pub(crate) destination: String,
    pub(crate) gateway: String,
}

#[derive(Debug, Clone, Deserialize)]
pub(crate) struct CreateNetwork {
    pub(crate) name: String,
    pub(crate) ip_range: String,
    #[serde(default)]
    pub(crate) subnets: Vec<SubnetWire>,
    #[serde(default)]
    pub(crate) routes: Vec<RouteWire>,
    #[serde(default)]
    pub(crate) labels: Labels,
    #[serde(default)]
    pub(crate) expose_routes_to_vswitch: bool,
}

#[derive(Debug, Clone, Deserialize)]
pub(crate) struct IpRange {
    pub(crate) ip_range: String,
}

#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, Eq)]
pub(crate) struct RuleWire {
    pub(crate) direction: String,
    pub(crate) protocol: String,
    #[serde(default)]
    pub(crate) port: Option<String>,
    #[serde(default)]
    pub(crate) source_ips: Vec<String>,
    #[serde(default)]
    pub(crate) destination_ips: Vec<String>,
    #[serde(default)]
    pub(crate) description: Option<String>,
}

#[derive(Debug, Clone, Deserialize)]
pub(crate) struct SelectorWire {
    pub(crate) selector: String,
}

#[derive(Debug, Clone, Deserialize)]
pub(crate) struct IdWire {
    pub(crate) id: u64,
}

#[derive(Debug, Clone, Deserialize)]
pub(crate) struct ApplyToWire {
    #[serde(rename = "type")]
    pub(crate) kind: String,
    pub(crate) server: Option<IdWire>,
    pub(crate) label_selector: Option<SelectorWire>,
}

#[derive(Debug, Clone, Deserialize)]
pub(crate) struct CreateFirewall {
    pub(crate) name: String,
    #[serde(default)]
    pub(crate) labels: Labels,
    #[serde(default)]
    pub(crate) rules: Vec<RuleWire>,
    #[serde(default)]
    pub(crate) apply_to: Vec<ApplyToWire>,
}

#[derive(Debug, Clone, Deserialize)]
pub(crate) struct SetRules {
    pub(crate) rules: Vec<RuleWire>,
}

#[derive(Debug, Clone, Deserialize)]
pub(crate) struct ApplyTo {
    pub(crate) apply_to: Vec<ApplyToWire>,
}

#[derive(Debug, Clone, Deserialize)]
pub(crate) struct RemoveFrom {
    pub(crate) remove_from: Vec<ApplyToWire>,
}

#[derive(Debug, Clone, Deserialize)]
pub(crate) struct CreatePlacementGroup {
    pub(crate) name: String,
    #[serde(rename = "type")]
    pub(crate) kind: String,
    #[serde(default)]
    pub(crate) labels: Labels,
}

#[derive(Debug, Clone, Deserialize)]
pub(crate) struct CreatePrimaryIp {
    pub(crate) name: String,
    #[serde(rename = "type")]
    pub(crate) ip_type: String,
    /// Required by the OpenAPI description, yet omitted by hcloud-python without an assignee; Hetzner
    /// takes `server`.
    #[serde(default = "server_kind")]
    pub(crate) assignee_type: String,
    pub(crate) assignee_id: Option<u64>,
    pub(crate) location: Option<String>,
    pub(crate) datacenter: Option<String>,
    #[serde(default)]
    pub(crate) auto_delete: bool,
    #[serde(default)]
    pub(crate) labels: Labels,
}

#[derive(Debug, Clone, Deserialize)]
pub(crate) struct AssignPrimaryIp {
    pub(crate) assignee_id: u64,
    #[serde(default = "server_kind")]
    pub(crate) assignee_type: String,
}

#[derive(Debug, Clone, Deserialize)]
pub(crate) struct CreateFloatingIp {
    #[serde(rename = "type")]
    pub(crate) ip_type: String,
    pub(crate) name: Option<String>,
    pub(crate) description: Option<String>,
    pub(crate) home_location: Option<String>,
    pub(crate) server: Option<u64>,
    #[serde(default)]
    pub(crate) labels: Labels,
}

#[derive(Debug, Clone, Deserialize)]
pub(crate) struct AssignFloatingIp {
    pub(crate) server: u64,
}

#[derive(Debug, Clone, Deserialize)]
pub(crate) struct CreateSshKey {
    pub(crate) name: String,
    pub(crate) public_key: String,
    #[serde(default)]
    pub(crate) labels: Labels,
}

#[derive(Debug, Clone, Deserialize)]
pub(crate) struct CreateCertificate {
    pub(crate) name: String,
    #[serde(rename = "type", default)]
    pub(crate) kind: Option<String>,
    pub(crate) certificate: Option<String>,
    pub(crate) private_key: Option<String>,
    #[serde(default)]
    pub(crate) domain_names: Vec<String>,
    #[serde(default)]
    pub(crate) labels: Labels,
}

/// A load balancer health check, kept as sent (with defaults filled in) and rendered back unchanged.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub(crate) struct HealthCheckWire {
    pub(crate) protocol: String,
    pub(crate) port: u16,
    pub(crate) interval: u32,
    pub(crate) timeout: u32,
    pub(crate) retries: u32,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub(crate) http: Option<HealthCheckHttpWire>,
}

/// The HTTP part of a health check, with Hetzner's defaults for what the request leaves out (clients
/// such as hcloud-python read every field back).
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub(crate) struct HealthCheckHttpWire {
    #[serde(default)]
    pub(crate) domain: Option<String>,
    #[serde(default = "root_path")]
    pub(crate) path: String,
    #[serde(default)]
    pub(crate) response: String,
    #[serde(default = "status_codes")]
    pub(crate) status_codes: Vec<String>,
    #[serde(default)]
    pub(crate) tls: bool,
}

impl Default for HealthCheckHttpWire {
    fn default() -> Self {
        HealthCheckHttpWire {
            domain: None,
            path: root_path(),
            response: String::new(),
            status_codes: status_codes(),
            tls: false,
        }
    }
}

fn root_path() -> String {
    "/".to_owned()
}

fn status_codes() -> Vec<String> {
    vec!["2??".to_owned(), "3??".to_owned()]
}

#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub(crate) struct ServiceHttpWire {
    #[serde(default)]
    pub(crate) certificates: Vec<u64>,
    #[serde(default = "cookie_lifetime")]
    pub(crate) cookie_lifetime: u32,
    #[serde(default = "cookie_name")]
    pub(crate) cookie_name: String,
    #[serde(default)]
    pub(crate) redirect_http: bool,
    #[serde(default)]
    pub(crate) sticky_sessions: bool,
    /// Seconds an idle connection stays open; newer than the OpenAPI description, read by hcloud-python.
    #[serde(default = "timeout_idle")]
    pub(crate) timeout_idle: u32,
}

impl Default for ServiceHttpWire {
    fn default() -> Self {
        ServiceHttpWire {
            certificates: Vec::new(),
            cookie_lifetime: cookie_lifetime(),
            cookie_name: cookie_name(),
            redirect_http: false,
            sticky_sessions: false,
            timeout_idle: timeout_idle(),
        }
    }
}

fn timeout_idle() -> u32 {
    60
}

fn cookie_lifetime() -> u32 {
    300
}

fn cookie_name() -> String {
    "HCLBSTICKY".to_owned()
}

#[derive(Debug, Clone, Deserialize)]
pub(crate) struct ServiceWire {
    pub(crate) protocol: String,
    pub(crate) listen_port: Option<u16>,
    pub(crate) destination_port: Option<u16>,
    #[serde(default)]
    pub(crate) proxyprotocol: bool,
    pub(crate) health_check: Option<HealthCheckWire>,
    pub(crate) http: Option<ServiceHttpWire>,
}

/// `update_service`: every field but the listen port is optional.
#[derive(Debug, Clone, Deserialize)]
pub(crate) struct UpdateServiceWire {
    pub(crate) listen_port: u16,
    pub(crate) protocol: Option<String>,
    pub(crate) destination_port: Option<u16>,
    pub(crate) proxyprotocol: Option<bool>,
    pub(crate) health_check: Option<HealthCheckWire>,
    pub(crate) http: Option<ServiceHttpWire>,
}

#[derive(Debug, Clone, Deserialize)]
pub(crate) struct ListenPort {
    pub(crate) listen_port: u16,
}

#[derive(Debug, Clone, Deserialize)]
pub(crate) struct IpWire {
    pub(crate) ip: String,
}

#[derive(Debug, Clone, Deserialize)]
pub(crate) struct TargetWire {
    #[serde(rename = "type")]
    pub(crate) kind: String,
    pub(crate) server: Option<IdWire>,
    pub(crate) label_selector: Option<SelectorWire>,
    pub(crate) ip: Option<IpWire>,
    #[serde(default)]
    pub(crate) use_private_ip: bool,
}

#[derive(Debug, Clone, Deserialize)]
pub(crate) struct AlgorithmWire {
    #[serde(rename = "type")]
    pub(crate) kind: String,
}

#[derive(Debug, Clone, Deserialize)]
pub(crate) struct CreateLoadBalancer {
    pub(crate) name: String,
    pub(crate) load_balancer_type: IdOrName,
    pub(crate) location: Option<String>,
    pub(crate) network_zone: Option<String>,
    pub(crate) algorithm: Option<AlgorithmWire>,
    #[serde(default)]
    pub(crate) services: Vec<ServiceWire>,
    #[serde(default)]
    pub(crate) targets: Vec<TargetWire>,
    pub(crate) network: Option<u64>,
    #[serde(default = "yes")]
    pub(crate) public_interface: bool,
    #[serde(default)]
    pub(crate) labels: Labels,
}

#[derive(Debug, Clone, Deserialize)]
pub(crate) struct LbChangeType {
    pub(crate) load_balancer_type: IdOrName,
}

/// Decodes a request body already parsed as JSON. A missing field or a wrong type is `invalid_input`
/// naming the field (Hetzner's answer); syntax errors were answered as `json_error` before.
pub(crate) fn decode<T: serde::de::DeserializeOwned>(body: &Value) -> Result<T, super::errors::ApiError> {
    T::deserialize(body).map_err(|e| {
        let text = e.to_string();
        let field = text.strip_prefix("missing field `").and_then(|rest| rest.split('`').next()).map(str::to_owned);
        match field {
            Some(f) => super::errors::ApiError::invalid_field(&f, "Missing data for required field."),
            None => super::errors::ApiError::invalid_field("body", &text),
        }
    })
}
