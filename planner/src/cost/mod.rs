//! Monthly cost of resources from the price catalog. A month is priced at the monthly price
//! (Hetzner bills hourly, capped at the monthly price). A price the catalog lacks is unknown, never
//! zero: the resource's cost is then unknown and totals say how many are missing.

use rust_decimal::Decimal;
use serde::Serialize;
use terrace_providers::pricing::Catalog;

use crate::addr::Address;
use crate::kind::Kind;
use crate::model::Resource;
use crate::value::Value;

/// One priced part of a resource (the server type, its IPv4, its backups).
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct CostItem {
    pub item: String,
    /// Net EUR per month; `None` when the catalog has no price for it.
    #[serde(with = "rust_decimal::serde::str_option")]
    pub monthly_net: Option<Decimal>,
}

/// The monthly cost of one resource.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Cost {
    /// Net EUR per month; `None` when any part is unknown.
    #[serde(with = "rust_decimal::serde::str_option")]
    pub monthly_net: Option<Decimal>,
    pub items: Vec<CostItem>,
}

impl Cost {
    fn from_items(items: Vec<CostItem>) -> Self {
        let monthly_net = items.iter().try_fold(Decimal::ZERO, |sum, item| item.monthly_net.map(|n| sum + n));
        Self { monthly_net, items }
    }

    pub fn free(what: &str) -> Self {
        Self::from_items(vec![CostItem { item: what.to_owned(), monthly_net: Some(Decimal::ZERO) }])
    }
}

/// What pricing reads of a resource: its address, kind and attributes.
#[derive(Debug, Clone, Copy)]
pub struct Priced<'r> {
    pub address: &'r Address,
    pub kind: Kind,
    pub attrs: &'r std::collections::BTreeMap<String, Value>,
}

impl<'r> Priced<'r> {
    pub fn of(resource: &'r Resource) -> Self {
        Self { address: &resource.address, kind: resource.kind, attrs: &resource.attrs }
    }

    fn attr(&self, name: &str) -> Option<&'r Value> {
        self.attrs.get(name).filter(|value| !matches!(value, Value::Null))
    }

    fn str_attr(&self, name: &str) -> Option<&'r str> {
        self.attr(name).and_then(Value::as_str)
    }

    fn bool_attr(&self, name: &str) -> bool {
        self.attr(name).and_then(Value::as_bool).unwrap_or(false)
    }
}

/// Prices resources against one catalog. Object Storage is billed per project, whatever the number
/// of buckets: a base fee that includes some storage, and storage above that per TB-hour. The first
/// bucket (by address) carries the project's fee, with the storage all buckets declare.
pub struct Pricer<'a> {
    catalog: &'a Catalog,
    first_bucket: Option<Address>,
    /// The sum of the buckets' `storage_gb` and estimated `backups_gb`.
    declared_storage_gb: u64,
}

/// Hours in an average month (8760 / 12), for storage billed per TB-hour without a monthly cap.
const HOURS_PER_MONTH: u32 = 730;

impl<'a> Pricer<'a> {
    pub fn new<'r>(catalog: &'a Catalog, resources: impl IntoIterator<Item = &'r Resource>) -> Self {
        Self::of(catalog, resources.into_iter().map(Priced::of))
    }

    /// A pricer over resources seen through [`Priced`] (recorded ones have no `Resource`).
    pub fn of<'r>(catalog: &'a Catalog, resources: impl IntoIterator<Item = Priced<'r>>) -> Self {
        let buckets: Vec<Priced<'r>> = resources.into_iter().filter(|r| r.kind == Kind::Bucket).collect();
        let first_bucket = buckets.iter().map(|r| r.address.clone()).min();
        let declared_storage_gb = buckets
            .iter()
            .flat_map(|r| ["storage_gb", "backups_gb"].map(|name| r.attr(name).and_then(Value::as_u64).unwrap_or(0)))
            .sum();
        Self { catalog, first_bucket, declared_storage_gb }
    }

    pub fn cost(&self, resource: &Resource) -> Cost {
        self.cost_of(&Priced::of(resource))
    }

    /// The monthly cost of a resource of `kind` with these attributes.
    pub fn cost_of(&self, resource: &Priced<'_>) -> Cost {
        let catalog = self.catalog;
        let net = |price: Option<terrace_providers::pricing::Price>| price.map(|p| p.net);
        let location = resource.str_attr("location").unwrap_or_default();
        match resource.kind {
            Kind::Server => {
                let server_type = resource.str_attr("server_type").unwrap_or_default();
                let base = net(catalog.server_monthly(server_type, location));
                let mut items =
                    vec![CostItem { item: format!("server type {server_type} in {location}"), monthly_net: base }];
                let public_net = resource.attr("public_net").and_then(Value::as_map);
                for (ip, enabled_key, own_key) in [("ipv4", "ipv4_enabled", "ipv4"), ("ipv6", "ipv6_enabled", "ipv6")] {
                    let enabled = public_net.and_then(|p| p.get(enabled_key)).and_then(Value::as_bool).unwrap_or(true);
                    // A primary IP declared as its own block is priced there.
                    let own = public_net.and_then(|p| p.get(own_key)).is_some_and(|v| !matches!(v, Value::Null));
                    if enabled && !own {
                        items.push(CostItem {
                            item: format!("primary {}", if ip == "ipv4" { "IPv4" } else { "IPv6" }),
                            monthly_net: net(catalog.primary_ip_monthly(ip, location)),
                        });
                    }
                }
                if resource.bool_attr("backups") {
                    let percent = catalog.backup_percent();
                    items.push(CostItem {
                        item: format!(
                            "backups ({}% of the server price)",
                            percent.map_or("?".into(), |p| p.normalize().to_string())
                        ),
                        monthly_net: base.zip(percent).map(|(b, p)| (b * p / Decimal::ONE_HUNDRED).round_dp(4)),
                    });
                }
                Cost::from_items(items)
            }
            Kind::Volume => {
                let size = resource.attr("size").and_then(Value::as_u64).unwrap_or(0);
                let per_gb = net(catalog.volume_per_gb_monthly());
                Cost::from_items(vec![CostItem {
                    item: format!("volume {size} GB"),
                    monthly_net: per_gb.map(|p| (p * Decimal::from(size)).round_dp(4)),
                }])
            }
            Kind::LoadBalancer => {
                let lb_type = resource.str_attr("type").unwrap_or_default();
                Cost::from_items(vec![CostItem {
                    item: format!("load balancer {lb_type} in {}", if location.is_empty() { "?" } else { location }),
                    monthly_net: net(catalog.load_balancer_monthly(lb_type, location)),
                }])
            }
            Kind::PrimaryIp => {
                let ip = resource.str_attr("type").unwrap_or("ipv4");
                Cost::from_items(vec![CostItem {
                    item: format!("primary {ip} in {location}"),
                    monthly_net: net(catalog.primary_ip_monthly(ip, location)),
                }])
            }
            Kind::FloatingIp => {
                let ip = resource.str_attr("type").unwrap_or("ipv4");
                let home = resource.str_attr("home_location").unwrap_or_default();
                Cost::from_items(vec![CostItem {
                    item: format!("floating {ip} in {home}"),
                    monthly_net: net(catalog.floating_ip_monthly(ip, home)),
                }])
            }
            Kind::Bucket if self.first_bucket.as_ref() == Some(resource.address) => self.object_storage(),
            Kind::Bucket => Cost::free("covered by the project's Object Storage fee (see the first bucket)"),
            Kind::Network
            | Kind::Firewall
            | Kind::PlacementGroup
            | Kind::SshKey
            | Kind::Certificate
            | Kind::Secret
            | Kind::Keypair
            | Kind::Host => Cost::free("no charge"),
            Kind::Postgres | Kind::Redis => Cost::free("a composite costs what its primitives cost"),
        }
    }
}

impl Pricer<'_> {
    /// The project's Object Storage: the base fee, and declared storage above what it includes.
    fn object_storage(&self) -> Cost {
        let Some(storage) = self.catalog.object_storage() else {
            return Cost::from_items(vec![CostItem { item: "Object Storage base fee".into(), monthly_net: None }]);
        };
        let mut items = vec![CostItem {
            item: format!(
                "Object Storage base fee (includes {} TB storage, {} TB egress)",
                storage.included_storage_tb.normalize(),
                storage.included_egress_tb.normalize()
            ),
            monthly_net: Some(storage.base_monthly.net),
        }];
        let declared_tb = Decimal::from(self.declared_storage_gb) / Decimal::ONE_THOUSAND;
        let extra_tb = declared_tb - storage.included_storage_tb;
        if extra_tb > Decimal::ZERO {
            items.push(CostItem {
                item: format!(
                    "{} TB of storage above the included amount, {HOURS_PER_MONTH} hours",
                    extra_tb.normalize()
                ),
                monthly_net: storage
                    .extra_storage_per_tb_hour
                    .map(|p| (p.net * extra_tb * Decimal::from(HOURS_PER_MONTH)).round_dp(4)),
            });
        }
        Cost::from_items(items)
    }
}

/// Formats money as `€12.34` (two decimals, rounded half away from zero).
pub fn money(value: Decimal) -> String {
    let rounded = value.round_dp_with_strategy(2, rust_decimal::RoundingStrategy::MidpointAwayFromZero);
    if rounded.is_sign_negative() && !rounded.is_zero() {
        format!("-€{:.2}", rounded.abs())
    } else {
        format!("€{:.2}", rounded.abs())
    }
}

/// Formats a difference as `+€12.34` / `-€1.00` / `€0.00`.
pub fn delta(value: Decimal) -> String {
    if value.is_zero() {
        money(value)
    } else if value.is_sign_positive() {
        format!("+{}", money(value))
    } else {
        money(value)
    }
}

/// Money or `unknown`.
pub fn money_opt(value: Option<Decimal>) -> String {
    value.map_or_else(|| "unknown".to_owned(), money)
}

#[cfg(test)]
mod tests {
    use std::collections::BTreeMap;

    use super::*;
    use crate::model::{Lifecycle, Origin};

    fn resource(address: &str, attrs: &[(&str, Value)]) -> Resource {
        let address: Address = address.parse().expect("address");
        Resource {
            kind: address.kind(),
            address,
            attrs: attrs.iter().map(|(k, v)| ((*k).to_owned(), v.clone())).collect::<BTreeMap<_, _>>(),
            composite: None,
            lifecycle: Lifecycle::default(),
            origin: Origin::default(),
        }
    }

    fn net(cost: &Cost) -> Option<String> {
        cost.monthly_net.map(|n| n.normalize().to_string())
    }

    #[test]
    fn a_server_costs_its_type_its_ipv4_and_its_backups() {
        let catalog = Catalog::embedded();
        let server = resource(
            "server.app",
            &[("server_type", Value::str("cpx22")), ("location", Value::str("fsn1")), ("backups", Value::Bool(true))],
        );
        let cost = Pricer::new(&catalog, [&server]).cost(&server);
        // 19.49 for the type, 0.50 for the IPv4, 0 for the IPv6, 20% of 19.49 for backups.
        assert_eq!(net(&cost), Some("23.888".into()));
        assert_eq!(cost.items.len(), 4);
        let mut ipv6_only = server.clone();
        ipv6_only.attrs.insert("backups".into(), Value::Bool(false));
        ipv6_only
            .attrs
            .insert("public_net".into(), Value::Map(BTreeMap::from([("ipv4_enabled".to_owned(), Value::Bool(false))])));
        assert_eq!(net(&Pricer::new(&catalog, [&ipv6_only]).cost(&ipv6_only)), Some("19.49".into()));
    }

    #[test]
    fn a_missing_price_is_unknown_not_zero() {
        let catalog = Catalog::embedded();
        let lb = resource("load_balancer.us", &[("type", Value::str("lb11")), ("location", Value::str("ash"))]);
        let cost = Pricer::new(&catalog, [&lb]).cost(&lb);
        assert_eq!(cost.monthly_net, None);
        assert_eq!(money_opt(cost.monthly_net), "unknown");
    }

    #[test]
    fn object_storage_is_charged_once_per_project_with_declared_storage() {
        let catalog = Catalog::embedded();
        let a = resource("bucket.a", &[("location", Value::str("fsn1")), ("storage_gb", Value::Number(1500.0))]);
        let b = resource("bucket.b", &[("location", Value::str("fsn1")), ("storage_gb", Value::Number(500.0))]);
        let pricer = Pricer::new(&catalog, [&b, &a]);
        // 6.49 base (1 TB included) + 1 TB above it at 0.0087 per TB-hour for 730 hours.
        assert_eq!(net(&pricer.cost(&a)), Some("12.841".into()));
        assert_eq!(net(&pricer.cost(&b)), Some("0".into()));
    }

    #[test]
    fn volumes_cost_per_gb() {
        let catalog = Catalog::embedded();
        let volume = resource("volume.data", &[("size", Value::Number(40.0))]);
        assert_eq!(net(&Pricer::new(&catalog, [&volume]).cost(&volume)), Some("2.288".into()));
        assert_eq!(money(Decimal::new(2288, 3)), "€2.29");
        assert_eq!(delta(Decimal::new(-5, 1)), "-€0.50");
    }
}
