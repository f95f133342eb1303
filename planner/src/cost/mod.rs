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
        let monthly_net = items
            .iter()
            .try_fold(Decimal::ZERO, |sum, item| item.monthly_net.map(|n| sum + n));
        Self { monthly_net, items }
    }

    pub fn free(what: &str) -> Self {
        Self::from_items(vec![CostItem {
            item: what.to_owned(),
            monthly_net: Some(Decimal::ZERO),
        }])
    }
}

/// Prices resources against one catalog. The Object Storage base fee is charged once per project,
/// whatever the number of buckets: the first bucket (by address) carries it.
pub struct Pricer<'a> {
    catalog: &'a Catalog,
    first_bucket: Option<Address>,
}

impl<'a> Pricer<'a> {
    pub fn new<'r>(
        catalog: &'a Catalog,
        resources: impl IntoIterator<Item = &'r Resource>,
    ) -> Self {
        let first_bucket = resources
            .into_iter()
            .filter(|r| r.kind == Kind::Bucket)
            .map(|r| r.address.clone())
            .min();
        Self {
            catalog,
            first_bucket,
        }
    }

    pub fn cost(&self, resource: &Resource) -> Cost {
        let catalog = self.catalog;
        let net = |price: Option<terrace_providers::pricing::Price>| price.map(|p| p.net);
        let location = resource.str_attr("location").unwrap_or_default();
        match resource.kind {
            Kind::Server => {
                let server_type = resource.str_attr("server_type").unwrap_or_default();
                let base = net(catalog.server_monthly(server_type, location));
                let mut items = vec![CostItem {
                    item: format!("server type {server_type} in {location}"),
                    monthly_net: base,
                }];
                let public_net = resource.attr("public_net").and_then(Value::as_map);
                for (ip, enabled_key, own_key) in [
                    ("ipv4", "ipv4_enabled", "ipv4"),
                    ("ipv6", "ipv6_enabled", "ipv6"),
                ] {
                    let enabled = public_net
                        .and_then(|p| p.get(enabled_key))
                        .and_then(Value::as_bool)
                        .unwrap_or(true);
                    // A primary IP declared as its own block is priced there.
                    let own = public_net
                        .and_then(|p| p.get(own_key))
                        .is_some_and(|v| !matches!(v, Value::Null));
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
                        monthly_net: base
                            .zip(percent)
                            .map(|(b, p)| (b * p / Decimal::ONE_HUNDRED).round_dp(4)),
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
                    item: format!(
                        "load balancer {lb_type} in {}",
                        if location.is_empty() { "?" } else { location }
                    ),
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
            Kind::Bucket => {
                if self.first_bucket.as_ref() == Some(&resource.address) {
                    let storage = catalog.object_storage();
                    let item = storage.as_ref().map_or_else(
                        || "Object Storage base fee".to_owned(),
                        |s| {
                            format!(
                                "Object Storage base fee (includes {} TB storage, {} TB egress)",
                                s.included_storage_tb, s.included_egress_tb
                            )
                        },
                    );
                    Cost::from_items(vec![CostItem {
                        item,
                        monthly_net: storage.map(|s| s.base_monthly.net),
                    }])
                } else {
                    Cost::free("covered by the Object Storage base fee of the project")
                }
            }
            Kind::Network
            | Kind::Firewall
            | Kind::PlacementGroup
            | Kind::SshKey
            | Kind::Certificate => Cost::free("no charge"),
            Kind::Postgres | Kind::Redis => {
                Cost::free("a composite costs what its primitives cost")
            }
        }
    }
}

/// Formats money as `€12.34` (two decimals, rounded half away from zero).
pub fn money(value: Decimal) -> String {
    let rounded =
        value.round_dp_with_strategy(2, rust_decimal::RoundingStrategy::MidpointAwayFromZero);
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
