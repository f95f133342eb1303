//! Serde types for `catalog/extras.json`: the sourced facts that Hetzner's `/pricing` shape does not carry
//! (server specs, locations, deprecations, load balancer limits, object storage, the list registry).

use std::collections::BTreeMap;

use rust_decimal::Decimal;
use serde::Deserialize;

use super::{Architecture, CpuType, StorageType};

#[derive(Debug, Deserialize)]
pub(crate) struct Extras {
    pub(crate) lists: Vec<ListEntry>,
    pub(crate) locations: Vec<LocationEntry>,
    pub(crate) server_types: Vec<ServerTypeEntry>,
    pub(crate) load_balancer_types: Vec<LbEntry>,
    /// Keyed by the id (valid-from date) of the list the price belongs to.
    pub(crate) object_storage: BTreeMap<String, ObjectStorageEntry>,
}

#[derive(Debug, Deserialize)]
pub(crate) struct ListEntry {
    pub(crate) id: String,
    pub(crate) file: String,
    pub(crate) description: String,
    pub(crate) sources: String,
}

#[derive(Debug, Deserialize)]
pub(crate) struct LocationEntry {
    pub(crate) name: String,
    pub(crate) city: String,
    pub(crate) country: String,
    pub(crate) network_zone: String,
}

#[derive(Debug, Deserialize)]
pub(crate) struct ServerTypeEntry {
    pub(crate) name: String,
    pub(crate) cores: u32,
    pub(crate) memory_gb: Decimal,
    pub(crate) disk_gb: u32,
    pub(crate) architecture: Architecture,
    pub(crate) cpu_type: CpuType,
    pub(crate) storage_type: StorageType,
    #[serde(default)]
    pub(crate) deprecation: Option<DeprecationFact>,
    /// Types that stopped being orderable at some locations without a deprecation notice.
    #[serde(default)]
    pub(crate) unavailable: Vec<DatedFact>,
    /// Capacity restrictions: the type is current, but creation may be refused.
    #[serde(default)]
    pub(crate) restricted: Option<DatedFact>,
}

#[derive(Debug, Deserialize)]
pub(crate) struct DeprecationFact {
    pub(crate) announced: String,
    pub(crate) unavailable_after: Option<String>,
    pub(crate) locations: Scope,
    pub(crate) note: String,
}

#[derive(Debug, Deserialize)]
pub(crate) struct DatedFact {
    pub(crate) since: String,
    pub(crate) locations: Scope,
    pub(crate) note: String,
}

/// Where a fact holds: the keyword `"all"` or a list of location names.
#[derive(Debug, Deserialize)]
#[serde(untagged)]
pub(crate) enum Scope {
    All(AllKeyword),
    Only(Vec<String>),
}

/// The only string a [`Scope`] accepts, so that a typo such as `"al"` is a parse error, not a silent "none".
#[derive(Debug, Deserialize)]
pub(crate) enum AllKeyword {
    #[serde(rename = "all")]
    All,
}

impl Scope {
    pub(crate) fn contains(&self, location: &str) -> bool {
        match self {
            Scope::All(AllKeyword::All) => true,
            Scope::Only(names) => names.iter().any(|n| n == location),
        }
    }
}

#[derive(Debug, Deserialize)]
pub(crate) struct LbEntry {
    pub(crate) name: String,
    pub(crate) max_services: u32,
    pub(crate) max_targets: u32,
    pub(crate) max_assigned_certificates: u32,
    pub(crate) max_connections: u32,
}

#[derive(Debug, Deserialize)]
pub(crate) struct ObjectStorageEntry {
    pub(crate) base_monthly_net: Decimal,
    pub(crate) included_storage_tb: Decimal,
    pub(crate) included_egress_tb: Decimal,
    pub(crate) extra_storage_per_tb_hour_net: Option<Decimal>,
    pub(crate) extra_egress_per_tb_net: Option<Decimal>,
}
