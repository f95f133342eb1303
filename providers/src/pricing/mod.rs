//! The price catalog: Hetzner's public price lists (embedded, chosen by date) or a pricing file, plus the
//! sourced facts (specs, locations, deprecations, limits) that the lists' shape does not carry.
//!
//! Money is exact ([`Decimal`]); every price is EUR per month unless its name says otherwise. A price
//! that the list does not carry is `None` (unknown), never zero; a real zero (Primary IPv6) is `Some(0)`.
//! The data lives in `providers/catalog/`: four copies of `shared/hetzner/pricing/*.json` and
//! `extras.json`, each value of which names its source ids from `SOURCES.md`.

mod catalog;
mod error;
mod extras;
mod wire;

#[cfg(test)]
mod tests;

pub use catalog::Catalog;
pub use error::CatalogError;

use rust_decimal::Decimal;
use serde::{Deserialize, Serialize};

/// A net price and its gross at the catalog's VAT rate.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize)]
pub struct Price {
    /// Excluding VAT.
    pub net: Decimal,
    /// Including VAT, as the list states it (or as [`Catalog::gross`] computes it where the list has none).
    pub gross: Decimal,
}

/// One embedded price list.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct ListInfo {
    /// The date from which the list applies, `YYYY-MM-DD`; for the oldest list, the day it was observed.
    pub id: String,
    /// The file name under `providers/catalog/` (the same as under `shared/hetzner/pricing/`).
    pub file: String,
    /// One line about what the list is.
    pub description: String,
    /// The `SOURCES.md` ids the list's values come from, summarised.
    pub sources: String,
}

/// CPU architecture of a server type, spelled as Hetzner's API spells it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Architecture {
    /// `x86`.
    X86,
    /// `arm` (Ampere Altra, the CAX family).
    Arm,
}

/// Whether the vCPUs are shared or dedicated.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum CpuType {
    /// Shared vCPUs (CX, CAX, CPX).
    Shared,
    /// Dedicated vCPUs (CCX).
    Dedicated,
}

/// Where the server's disk lives.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum StorageType {
    /// Local NVMe; every type in the catalog has it.
    Local,
    /// Network (Ceph) storage, as Hetzner's API may report for other types.
    Network,
}

/// The size of a server type.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct ServerTypeSpec {
    /// The type's name, e.g. `cpx22`.
    pub name: String,
    /// vCPUs.
    pub cores: u32,
    /// Memory in GB (a decimal, because Hetzner has had types with half gigabytes).
    pub memory_gb: Decimal,
    /// Local disk in GB.
    pub disk_gb: u32,
    /// CPU architecture.
    pub architecture: Architecture,
    /// Shared or dedicated vCPUs.
    pub cpu_type: CpuType,
    /// Local or network disk.
    pub storage_type: StorageType,
}

/// Whether a server type can be ordered at a location, as far as the catalog knows.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(tag = "status", rename_all = "snake_case")]
pub enum Availability {
    /// Priced there, and no deprecation or restriction is known.
    Available,
    /// The list has no price for the type at that location (not sold there, or the price was not found).
    NotPriced,
    /// Hetzner deprecated the type at that location.
    Deprecated {
        /// When the deprecation was announced, `YYYY-MM-DD`.
        announced: String,
        /// The last day it could be ordered, `YYYY-MM-DD`, where known.
        unavailable_after: Option<String>,
        /// What was announced, for the user.
        note: String,
    },
    /// The type is current, but creation is restricted (capacity), or it was reported unorderable there.
    Restricted {
        /// Since when, `YYYY-MM-DD`.
        since: String,
        /// What is known, for the user.
        note: String,
    },
}

/// A Hetzner location.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct LocationInfo {
    /// e.g. `fsn1`.
    pub name: String,
    /// e.g. `Falkenstein`.
    pub city: String,
    /// ISO 3166 alpha-2 code, e.g. `DE`.
    pub country: String,
    /// e.g. `eu-central`; networks, load balancers and floating IPs are bound to one zone.
    pub network_zone: String,
}

/// The limits of a load balancer type.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
pub struct LbLimits {
    /// Services (listening ports).
    pub max_services: u32,
    /// Targets.
    pub max_targets: u32,
    /// TLS certificates.
    pub max_assigned_certificates: u32,
    /// Concurrent connections.
    pub max_connections: u32,
}

/// The price of Object Storage, which Hetzner bills per project rather than per resource.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct ObjectStoragePrice {
    /// The monthly base price, billed once storage is used.
    pub base_monthly: Price,
    /// Storage the base price includes, in TB.
    pub included_storage_tb: Decimal,
    /// Egress the base price includes, in TB.
    pub included_egress_tb: Decimal,
    /// Storage above the included amount, per TB-hour, where a source gave it.
    pub extra_storage_per_tb_hour: Option<Price>,
    /// Egress above the included amount, per TB, where a source gave it.
    pub extra_egress_per_tb: Option<Price>,
}
