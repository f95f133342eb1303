//! Serde types that mirror the body of Hetzner's `GET /pricing` (`list_prices_response` in the OpenAPI).
//!
//! They are kept apart from the catalog's domain types so that the JSON shape can follow Hetzner's schema
//! while the rest of terrace sees plain prices. Keys starting with `_` in our price lists are provenance
//! notes: serde ignores them on input, and they are never written back out, except `_specs` of a load
//! balancer type, which is read (it carries the type's limits) but never serialized.

use rust_decimal::Decimal;
use serde::{Deserialize, Serialize};

/// The whole response body: `{"pricing": {...}}`. Only ever written: input is unwrapped by hand, because
/// a pricing file may also hold the bare `pricing` object.
#[derive(Debug, Clone, Copy, Serialize)]
pub(crate) struct ListPricesResponse<'a> {
    pub(crate) pricing: &'a Pricing,
}

/// The `pricing` object. Field order follows Hetzner's responses so that a served body reads like theirs.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub(crate) struct Pricing {
    pub(crate) currency: String,
    pub(crate) vat_rate: Decimal,
    pub(crate) image: PerGbMonth,
    pub(crate) volume: PerGbMonth,
    pub(crate) server_backup: ServerBackup,
    /// Deprecated by Hetzner in favour of `floating_ips` (changelog 2024-08-29) but still required by the
    /// schema; optional here so that a future response without it still loads.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub(crate) floating_ip: Option<FloatingIpLegacy>,
    pub(crate) floating_ips: Vec<IpTypePrices<PricePerTimeMonthly>>,
    pub(crate) primary_ips: Vec<IpTypePrices<PricePerTimeWithoutTraffic>>,
    pub(crate) load_balancer_types: Vec<LoadBalancerTypePrices>,
    pub(crate) server_types: Vec<ServerTypePrices>,
    /// Not part of Hetzner's schema: a file may carry an object-storage price in this terrace-only shape.
    /// It is never served, so the emulator's body stays exactly Hetzner's schema.
    #[serde(default, skip_serializing)]
    pub(crate) object_storage: Option<ObjectStorageWire>,
}

/// A net/gross pair as Hetzner writes it: decimal strings such as `"5.4900"`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub(crate) struct WirePrice {
    pub(crate) net: Decimal,
    pub(crate) gross: Decimal,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
pub(crate) struct PerGbMonth {
    pub(crate) price_per_gb_month: WirePrice,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
pub(crate) struct ServerBackup {
    pub(crate) percentage: Decimal,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
pub(crate) struct FloatingIpLegacy {
    pub(crate) price_monthly: WirePrice,
}

/// The per-IP-type entries of `floating_ips` and `primary_ips`.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub(crate) struct IpTypePrices<P> {
    #[serde(rename = "type")]
    pub(crate) ip_type: String,
    pub(crate) prices: Vec<P>,
}

/// `price_per_time_monthly`: a location and its monthly price (floating IPs).
#[derive(Debug, Clone, Serialize, Deserialize)]
pub(crate) struct PricePerTimeMonthly {
    pub(crate) location: String,
    pub(crate) price_monthly: WirePrice,
}

/// `price_per_time_without_traffic`: hourly and monthly price at a location (primary IPs).
#[derive(Debug, Clone, Serialize, Deserialize)]
pub(crate) struct PricePerTimeWithoutTraffic {
    pub(crate) location: String,
    pub(crate) price_hourly: WirePrice,
    pub(crate) price_monthly: WirePrice,
}

/// `price_per_time`: the full entry of a server or load balancer type at one location.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub(crate) struct PricePerTime {
    pub(crate) location: String,
    /// The schema requires an object, but our lists write `null` where no source gave an hourly price
    /// (the monthly cap is not monthly/730, so none is made up). The null is kept, and served, as is.
    pub(crate) price_hourly: Option<WirePrice>,
    pub(crate) price_monthly: WirePrice,
    /// Bytes. Required by the schema, yet `null` in some of our entries where no source gave the included
    /// traffic; kept as null for the same reason as `price_hourly`.
    pub(crate) included_traffic: Option<u64>,
    pub(crate) price_per_tb_traffic: WirePrice,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
pub(crate) struct ServerTypePrices {
    /// Hetzner's id. Our lists omit it (no source gave real ids); the catalog fills in a stable synthetic
    /// id before serving, because the schema requires one.
    #[serde(default)]
    pub(crate) id: Option<u64>,
    pub(crate) name: String,
    pub(crate) prices: Vec<PricePerTime>,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
pub(crate) struct LoadBalancerTypePrices {
    /// See [`ServerTypePrices::id`]: lb31 has none in our list.
    #[serde(default)]
    pub(crate) id: Option<u64>,
    pub(crate) name: String,
    pub(crate) prices: Vec<PricePerTime>,
    /// Our lists' provenance block with the type's limits; read, never served.
    #[serde(rename = "_specs", default, skip_serializing)]
    pub(crate) specs: Option<LbSpecsWire>,
}

#[derive(Debug, Clone, Copy, Serialize, Deserialize)]
pub(crate) struct LbSpecsWire {
    pub(crate) max_connections: u32,
    pub(crate) max_services: u32,
    pub(crate) max_targets: u32,
    pub(crate) max_assigned_certificates: u32,
}

/// terrace's own shape for an object-storage price inside a pricing file (Hetzner's `/pricing` has none).
#[derive(Debug, Clone, Serialize, Deserialize)]
pub(crate) struct ObjectStorageWire {
    pub(crate) price_monthly: WirePrice,
    pub(crate) included_storage_tb: Decimal,
    pub(crate) included_egress_tb: Decimal,
    #[serde(default)]
    pub(crate) price_per_tb_hour_storage: Option<WirePrice>,
    #[serde(default)]
    pub(crate) price_per_tb_egress: Option<WirePrice>,
}
