//! [`Catalog`]: one price list joined with the facts of `extras.json`, chosen by date or read from a file.

use std::collections::BTreeSet;
use std::fmt;
use std::path::{Path, PathBuf};
use std::sync::{Arc, OnceLock};

use rust_decimal::{Decimal, RoundingStrategy};
use serde_json::Value;

use super::error::CatalogError;
use super::extras::{Extras, ServerTypeEntry};
use super::wire::{ListPricesResponse, Pricing, WirePrice};
use super::{Availability, LbLimits, ListInfo, LocationInfo, ObjectStoragePrice, Price, ServerTypeSpec};

/// The name of the facts file, for error messages.
const EXTRAS_FILE: &str = "extras.json";
const EXTRAS_JSON: &str = include_str!("../../catalog/extras.json");

/// The price lists compiled into the crate, by file name. `extras.json` says which date each one starts.
pub(super) const EMBEDDED_LISTS: [(&str, &str); 4] = [
    ("pricing-2025-08.json", include_str!("../../catalog/pricing-2025-08.json")),
    ("pricing-2025-10.json", include_str!("../../catalog/pricing-2025-10.json")),
    ("pricing-2026-04.json", include_str!("../../catalog/pricing-2026-04.json")),
    ("pricing.json", include_str!("../../catalog/pricing.json")),
];

/// The embedded data, parsed once per process.
struct Embedded {
    extras: Extras,
    /// Oldest first.
    lists: Vec<EmbeddedList>,
}

struct EmbeddedList {
    info: ListInfo,
    pricing: Arc<Pricing>,
}

static EMBEDDED: OnceLock<Embedded> = OnceLock::new();

fn embedded_data() -> Result<&'static Embedded, CatalogError> {
    if let Some(data) = EMBEDDED.get() {
        return Ok(data);
    }
    let parsed = parse_embedded()?;
    Ok(EMBEDDED.get_or_init(|| parsed))
}

fn embedded_or_panic() -> &'static Embedded {
    // The embedded files are compiled in and parsed by this crate's tests, so a failure here is a defect
    // of the build that no user input can cause or fix; the infallible constructors may therefore panic.
    embedded_data().expect("the embedded price catalog parses (checked by the crate's tests)")
}

fn embedded_error(file: &str, message: impl fmt::Display) -> CatalogError {
    CatalogError::Embedded { file: file.to_owned(), message: message.to_string() }
}

fn parse_embedded() -> Result<Embedded, CatalogError> {
    let extras: Extras = serde_json::from_str(EXTRAS_JSON).map_err(|e| embedded_error(EXTRAS_FILE, e))?;
    check_extras_dates(&extras)?;
    let mut lists = Vec::with_capacity(extras.lists.len());
    for entry in &extras.lists {
        let text = EMBEDDED_LISTS
            .iter()
            .find(|(file, _)| *file == entry.file)
            .map(|(_, text)| *text)
            .ok_or_else(|| embedded_error(EXTRAS_FILE, format!("list {} is not embedded", entry.file)))?;
        let mut pricing = parse_pricing(text).map_err(|failure| match failure {
            ParseFailure::Syntax(e) | ParseFailure::Shape(e) => embedded_error(&entry.file, e),
        })?;
        fill_missing_ids(&mut pricing, &extras);
        lists.push(EmbeddedList {
            info: ListInfo {
                id: entry.id.clone(),
                file: entry.file.clone(),
                description: entry.description.clone(),
                sources: entry.sources.clone(),
            },
            pricing: Arc::new(pricing),
        });
    }
    Ok(Embedded { extras, lists })
}

/// Facts are compared as `YYYY-MM-DD` strings, which only orders correctly if every date has that shape.
fn check_extras_dates(extras: &Extras) -> Result<(), CatalogError> {
    let mut dates: Vec<&str> = Vec::new();
    let mut previous: Option<&str> = None;
    for list in &extras.lists {
        if previous.is_some_and(|p| p >= list.id.as_str()) {
            return Err(embedded_error(EXTRAS_FILE, format!("lists are not oldest first at {}", list.id)));
        }
        previous = Some(&list.id);
        dates.push(&list.id);
    }
    if extras.lists.is_empty() {
        return Err(embedded_error(EXTRAS_FILE, "no price lists"));
    }
    for t in &extras.server_types {
        if let Some(dep) = &t.deprecation {
            dates.push(&dep.announced);
            dates.extend(dep.unavailable_after.as_deref());
        }
        dates.extend(t.unavailable.iter().map(|f| f.since.as_str()));
        dates.extend(t.restricted.iter().map(|f| f.since.as_str()));
    }
    dates.extend(extras.object_storage.keys().map(String::as_str));
    match dates.into_iter().find(|d| !is_calendar_date(d)) {
        Some(bad) => Err(embedded_error(EXTRAS_FILE, format!("`{bad}` is not a YYYY-MM-DD date"))),
        None => Ok(()),
    }
}

enum ParseFailure {
    Syntax(serde_json::Error),
    Shape(serde_json::Error),
}

/// Reads either a full `GET /pricing` response or its bare `pricing` object.
fn parse_pricing(text: &str) -> Result<Pricing, ParseFailure> {
    let value: Value = serde_json::from_str(text).map_err(ParseFailure::Syntax)?;
    // A full response wraps the object in `pricing`; the bare object never has a key of that name.
    let body = match value {
        Value::Object(mut map) if map.get("pricing").is_some_and(Value::is_object) => {
            map.remove("pricing").unwrap_or_default()
        }
        other => other,
    };
    serde_json::from_value(body).map_err(ParseFailure::Shape)
}

/// Gives every server and load balancer type an id, because the schema requires one and our lists
/// (unlike Hetzner's responses) omit them. A type known to `extras.json` gets its 1-based position there,
/// so an id is the same in every list; ids already present are kept and never reused.
fn fill_missing_ids(pricing: &mut Pricing, extras: &Extras) {
    let server_order: Vec<&str> = extras.server_types.iter().map(|t| t.name.as_str()).collect();
    let entries = pricing.server_types.iter_mut().map(|t| (&mut t.id, t.name.as_str())).collect();
    fill_ids(entries, &server_order);
    let lb_order: Vec<&str> = extras.load_balancer_types.iter().map(|t| t.name.as_str()).collect();
    let entries = pricing.load_balancer_types.iter_mut().map(|t| (&mut t.id, t.name.as_str())).collect();
    fill_ids(entries, &lb_order);
}

fn fill_ids(entries: Vec<(&mut Option<u64>, &str)>, known: &[&str]) {
    let mut used: BTreeSet<u64> = entries.iter().filter_map(|(id, _)| **id).collect();
    let mut next_free = (known.len() as u64).max(used.last().copied().unwrap_or(0)) + 1;
    for (id, name) in entries {
        if id.is_some() {
            continue;
        }
        let preferred = known.iter().position(|k| *k == name).map(|p| p as u64 + 1).filter(|p| !used.contains(p));
        let chosen = preferred.unwrap_or_else(|| {
            while used.contains(&next_free) {
                next_free += 1;
            }
            next_free
        });
        used.insert(chosen);
        *id = Some(chosen);
    }
}

/// True for strings shaped `DDDD-DD-DD`, which `Catalog::load` takes as dates rather than paths.
pub(super) fn looks_like_date(s: &str) -> bool {
    let b = s.as_bytes();
    b.len() == 10
        && b.iter().enumerate().all(|(i, c)| match i {
            4 | 7 => *c == b'-',
            _ => c.is_ascii_digit(),
        })
}

/// True for a real `YYYY-MM-DD` calendar date (Gregorian leap years).
pub(super) fn is_calendar_date(s: &str) -> bool {
    if !looks_like_date(s) {
        return false;
    }
    let number = |range: std::ops::Range<usize>| s.get(range).and_then(|p| p.parse::<u32>().ok());
    let (Some(year), Some(month), Some(day)) = (number(0..4), number(5..7), number(8..10)) else {
        return false;
    };
    let leap = (year % 4 == 0 && year % 100 != 0) || year % 400 == 0;
    let days = match month {
        1 | 3 | 5 | 7 | 8 | 10 | 12 => 31,
        4 | 6 | 9 | 11 => 30,
        2 if leap => 29,
        2 => 28,
        _ => return false,
    };
    (1..=days).contains(&day)
}

fn round_money(value: Decimal) -> Decimal {
    // Commercial rounding, as the lists' gross values were computed; banker's rounding would differ on
    // exact midpoints.
    value.round_dp_with_strategy(4, RoundingStrategy::MidpointAwayFromZero)
}

fn gross_at(vat_rate_percent: Decimal, net: Decimal) -> Decimal {
    round_money(net * (Decimal::ONE + vat_rate_percent / Decimal::ONE_HUNDRED))
}

impl From<WirePrice> for Price {
    fn from(p: WirePrice) -> Self {
        Price { net: p.net, gross: p.gross }
    }
}

#[derive(Clone, Debug)]
enum Origin {
    Embedded { id: String },
    File { path: PathBuf },
}

/// Hetzner's prices from one price list, with the specs, locations and availability facts terrace knows.
///
/// Cloning is cheap: the list is shared.
#[derive(Clone)]
pub struct Catalog {
    pricing: Arc<Pricing>,
    extras: &'static Extras,
    origin: Origin,
    /// Deprecations and restrictions dated after this day are not applied; `None` applies all of them.
    facts_as_of: Option<String>,
    object_storage: Option<ObjectStoragePrice>,
}

impl fmt::Debug for Catalog {
    // The full list is thousands of lines; what identifies a catalog is where it came from.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Catalog")
            .field("origin", &self.origin)
            .field("facts_as_of", &self.facts_as_of)
            .field("currency", &self.pricing.currency)
            .field("server_types", &self.pricing.server_types.len())
            .finish_non_exhaustive()
    }
}

impl Catalog {
    fn from_embedded(data: &'static Embedded, list: &EmbeddedList, facts_as_of: Option<String>) -> Catalog {
        let vat = list.pricing.vat_rate;
        let price = |net: Decimal| Price { net, gross: gross_at(vat, net) };
        let object_storage = data.extras.object_storage.get(&list.info.id).map(|o| ObjectStoragePrice {
            base_monthly: price(o.base_monthly_net),
            included_storage_tb: o.included_storage_tb,
            included_egress_tb: o.included_egress_tb,
            extra_storage_per_tb_hour: o.extra_storage_per_tb_hour_net.map(price),
            extra_egress_per_tb: o.extra_egress_per_tb_net.map(price),
        });
        Catalog {
            pricing: Arc::clone(&list.pricing),
            extras: &data.extras,
            origin: Origin::Embedded { id: list.info.id.clone() },
            facts_as_of,
            object_storage,
        }
    }

    /// The newest embedded list (new orders since 2026-06-15), with every known availability fact.
    ///
    /// # Panics
    ///
    /// Only if the embedded data is broken, which the crate's tests rule out.
    pub fn embedded() -> Catalog {
        let data = embedded_or_panic();
        match data.lists.last() {
            Some(newest) => Catalog::from_embedded(data, newest, None),
            // `parse_embedded` rejects an empty registry, so this arm cannot run.
            None => unreachable!("the embedded catalog has at least one list"),
        }
    }

    /// The embedded lists, oldest first.
    ///
    /// # Panics
    ///
    /// Only if the embedded data is broken, which the crate's tests rule out.
    pub fn lists() -> Vec<ListInfo> {
        embedded_or_panic().lists.iter().map(|l| l.info.clone()).collect()
    }

    /// Loads a catalog from a spec.
    ///
    /// `YYYY-MM-DD` picks the embedded list in force on that day (the newest whose id is on or before it)
    /// and applies only the availability facts known by that day. Anything else is a path to a JSON file
    /// holding either a full `GET /pricing` response or its bare `pricing` object; such a catalog takes
    /// specs, locations and availability (all facts) from `extras.json` and has an object-storage price
    /// only if the file carries one.
    pub fn load(spec: &str) -> Result<Catalog, CatalogError> {
        if looks_like_date(spec) { Self::load_date(spec) } else { Self::load_file(Path::new(spec)) }
    }

    fn load_date(date: &str) -> Result<Catalog, CatalogError> {
        if !is_calendar_date(date) {
            return Err(CatalogError::InvalidDate { spec: date.to_owned() });
        }
        let data = embedded_data()?;
        match data.lists.iter().rev().find(|l| l.info.id.as_str() <= date) {
            Some(list) => Ok(Catalog::from_embedded(data, list, Some(date.to_owned()))),
            None => Err(CatalogError::DateBeforeOldestList {
                date: date.to_owned(),
                oldest: data.lists.first().map(|l| l.info.id.clone()).unwrap_or_default(),
                available: data
                    .lists
                    .iter()
                    .map(|l| format!("{} ({})", l.info.id, l.info.file))
                    .collect::<Vec<_>>()
                    .join(", "),
            }),
        }
    }

    fn load_file(path: &Path) -> Result<Catalog, CatalogError> {
        let text =
            std::fs::read_to_string(path).map_err(|error| CatalogError::Read { path: path.to_owned(), error })?;
        let mut pricing = parse_pricing(&text).map_err(|failure| match failure {
            ParseFailure::Syntax(error) => CatalogError::Syntax { path: path.to_owned(), error },
            ParseFailure::Shape(error) => CatalogError::Shape { path: path.to_owned(), error },
        })?;
        let data = embedded_data()?;
        fill_missing_ids(&mut pricing, &data.extras);
        let object_storage = pricing.object_storage.as_ref().map(|o| ObjectStoragePrice {
            base_monthly: o.price_monthly.into(),
            included_storage_tb: o.included_storage_tb,
            included_egress_tb: o.included_egress_tb,
            extra_storage_per_tb_hour: o.price_per_tb_hour_storage.map(Price::from),
            extra_egress_per_tb: o.price_per_tb_egress.map(Price::from),
        });
        Ok(Catalog {
            pricing: Arc::new(pricing),
            extras: &data.extras,
            origin: Origin::File { path: path.to_owned() },
            facts_as_of: None,
            object_storage,
        })
    }

    /// Where the prices come from, for the user: e.g. `Hetzner public list prices of 2026-06-15 (embedded)`
    /// or `pricing file ./p.json`.
    pub fn label(&self) -> String {
        match &self.origin {
            Origin::Embedded { id } => format!("Hetzner public list prices of {id} (embedded)"),
            Origin::File { path } => format!("pricing file {}", path.display()),
        }
    }

    /// The list's id (its valid-from date, `YYYY-MM-DD`); `None` for a catalog read from a file.
    pub fn date(&self) -> Option<String> {
        match &self.origin {
            Origin::Embedded { id } => Some(id.clone()),
            Origin::File { .. } => None,
        }
    }

    /// The currency of every price, e.g. `EUR`.
    pub fn currency(&self) -> &str {
        &self.pricing.currency
    }

    /// The VAT rate the gross prices use, in percent (19.00 in the embedded lists).
    pub fn vat_rate_percent(&self) -> Decimal {
        self.pricing.vat_rate
    }

    /// `net` with VAT added at this catalog's rate, rounded half away from zero to 4 decimal places.
    pub fn gross(&self, net: Decimal) -> Decimal {
        gross_at(self.pricing.vat_rate, net)
    }

    /// The server types that have at least one price in this list, sorted.
    pub fn server_type_names(&self) -> Vec<String> {
        let names: BTreeSet<&str> =
            self.pricing.server_types.iter().filter(|t| !t.prices.is_empty()).map(|t| t.name.as_str()).collect();
        names.into_iter().map(str::to_owned).collect()
    }

    /// The size of a server type, known for every type in any embedded list (not only this one).
    pub fn server_type(&self, name: &str) -> Option<ServerTypeSpec> {
        self.server_type_entry(name).map(|t| ServerTypeSpec {
            name: t.name.clone(),
            cores: t.cores,
            memory_gb: t.memory_gb,
            disk_gb: t.disk_gb,
            architecture: t.architecture,
            cpu_type: t.cpu_type,
            storage_type: t.storage_type,
        })
    }

    fn server_type_entry(&self, name: &str) -> Option<&'static ServerTypeEntry> {
        self.extras.server_types.iter().find(|t| t.name == name)
    }

    /// The id the catalog serves for a server type in [`Catalog::pricing_response_json`]: Hetzner's if the
    /// list has one, otherwise a stable synthetic id (our lists carry none).
    pub fn server_type_id(&self, name: &str) -> Option<u64> {
        self.pricing.server_types.iter().find(|t| t.name == name).and_then(|t| t.id)
    }

    /// The monthly price (cap) of a server type at a location, without the Primary IPv4.
    pub fn server_monthly(&self, server_type: &str, location: &str) -> Option<Price> {
        self.pricing
            .server_types
            .iter()
            .find(|t| t.name == server_type)?
            .prices
            .iter()
            .find(|p| p.location == location)
            .map(|p| p.price_monthly.into())
    }

    /// Whether a server type can be ordered at a location. An unpriced type is [`Availability::NotPriced`];
    /// otherwise a deprecation wins over a reported unavailability, which wins over a capacity
    /// restriction. Only facts dated on or before the date the catalog was loaded for apply; the newest
    /// embedded list ([`Catalog::embedded`]) and file catalogs apply all of them.
    pub fn availability(&self, server_type: &str, location: &str) -> Availability {
        if self.server_monthly(server_type, location).is_none() {
            return Availability::NotPriced;
        }
        let Some(entry) = self.server_type_entry(server_type) else {
            // A type only a pricing file knows: no facts, so nothing speaks against it.
            return Availability::Available;
        };
        if let Some(dep) =
            entry.deprecation.as_ref().filter(|d| d.locations.contains(location) && self.fact_applies(&d.announced))
        {
            return Availability::Deprecated {
                announced: dep.announced.clone(),
                unavailable_after: dep.unavailable_after.clone(),
                note: dep.note.clone(),
            };
        }
        let restriction = entry
            .unavailable
            .iter()
            .chain(entry.restricted.iter())
            .find(|f| f.locations.contains(location) && self.fact_applies(&f.since));
        match restriction {
            Some(fact) => Availability::Restricted { since: fact.since.clone(), note: fact.note.clone() },
            None => Availability::Available,
        }
    }

    fn fact_applies(&self, fact_date: &str) -> bool {
        self.facts_as_of.as_deref().is_none_or(|as_of| fact_date <= as_of)
    }

    /// Every location terrace knows, sorted by name.
    pub fn locations(&self) -> Vec<LocationInfo> {
        let mut all: Vec<LocationInfo> = self
            .extras
            .locations
            .iter()
            .map(|l| LocationInfo {
                name: l.name.clone(),
                city: l.city.clone(),
                country: l.country.clone(),
                network_zone: l.network_zone.clone(),
            })
            .collect();
        all.sort_by(|a, b| a.name.cmp(&b.name));
        all
    }

    /// One location by name.
    pub fn location(&self, name: &str) -> Option<LocationInfo> {
        // Called per resource by the validator: find first, then copy only the one found.
        self.extras.locations.iter().find(|l| l.name == name).map(|l| LocationInfo {
            name: l.name.clone(),
            city: l.city.clone(),
            country: l.country.clone(),
            network_zone: l.network_zone.clone(),
        })
    }

    /// The network zones of the known locations, sorted.
    pub fn network_zones(&self) -> Vec<String> {
        let zones: BTreeSet<&str> = self.extras.locations.iter().map(|l| l.network_zone.as_str()).collect();
        zones.into_iter().map(str::to_owned).collect()
    }

    /// The monthly price of a Primary IP (`ipv4` or `ipv6`) at a location; IPv6 is a real zero.
    pub fn primary_ip_monthly(&self, ip_type: &str, location: &str) -> Option<Price> {
        self.pricing
            .primary_ips
            .iter()
            .find(|t| t.ip_type == ip_type)?
            .prices
            .iter()
            .find(|p| p.location == location)
            .map(|p| p.price_monthly.into())
    }

    /// The monthly price of a Floating IP at a location, from the per-location `floating_ips` (the
    /// location-less `floating_ip` is deprecated and not used). `None` where the list has no entry.
    pub fn floating_ip_monthly(&self, ip_type: &str, location: &str) -> Option<Price> {
        self.pricing
            .floating_ips
            .iter()
            .find(|t| t.ip_type == ip_type)?
            .prices
            .iter()
            .find(|p| p.location == location)
            .map(|p| p.price_monthly.into())
    }

    /// The price of one GB of volume per month.
    pub fn volume_per_gb_monthly(&self) -> Option<Price> {
        Some(self.pricing.volume.price_per_gb_month.into())
    }

    /// Backups cost this percentage of the server's price.
    pub fn backup_percent(&self) -> Option<Decimal> {
        Some(self.pricing.server_backup.percentage)
    }

    /// The load balancer types this list names, priced or not (lb31 has no price), sorted.
    pub fn load_balancer_type_names(&self) -> Vec<String> {
        let names: BTreeSet<&str> = self.pricing.load_balancer_types.iter().map(|t| t.name.as_str()).collect();
        names.into_iter().map(str::to_owned).collect()
    }

    /// The id served for a load balancer type; see [`Catalog::server_type_id`].
    pub fn load_balancer_type_id(&self, name: &str) -> Option<u64> {
        self.pricing.load_balancer_types.iter().find(|t| t.name == name).and_then(|t| t.id)
    }

    /// The monthly price of a load balancer type at a location; `None` if the list has none there.
    pub fn load_balancer_monthly(&self, lb_type: &str, location: &str) -> Option<Price> {
        self.pricing
            .load_balancer_types
            .iter()
            .find(|t| t.name == lb_type)?
            .prices
            .iter()
            .find(|p| p.location == location)
            .map(|p| p.price_monthly.into())
    }

    /// The limits of a load balancer type: from the list's `_specs` where it has them, else from
    /// `extras.json`.
    pub fn load_balancer_limits(&self, lb_type: &str) -> Option<LbLimits> {
        let from_list = self.pricing.load_balancer_types.iter().find(|t| t.name == lb_type).and_then(|t| t.specs);
        if let Some(s) = from_list {
            return Some(LbLimits {
                max_services: s.max_services,
                max_targets: s.max_targets,
                max_assigned_certificates: s.max_assigned_certificates,
                max_connections: s.max_connections,
            });
        }
        self.extras.load_balancer_types.iter().find(|t| t.name == lb_type).map(|t| LbLimits {
            max_services: t.max_services,
            max_targets: t.max_targets,
            max_assigned_certificates: t.max_assigned_certificates,
            max_connections: t.max_connections,
        })
    }

    /// The Object Storage price belonging to this list; `None` if unknown (e.g. a file without one).
    pub fn object_storage(&self) -> Option<ObjectStoragePrice> {
        self.object_storage.clone()
    }

    /// The body of `GET /pricing` in Hetzner's schema, `{"pricing": {...}}`, without our `_`-prefixed
    /// provenance keys. Server and load balancer types without an id get the synthetic ids of
    /// [`Catalog::server_type_id`]; `price_hourly` and `included_traffic` stay `null` where the list has
    /// no value, which the schema does not allow but which is the honest answer.
    pub fn pricing_response_json(&self) -> Value {
        // Serializing to a `Value` fails only for maps with non-string keys or failing `Serialize` impls;
        // the wire types have neither.
        serde_json::to_value(ListPricesResponse { pricing: &self.pricing })
            .expect("the pricing wire types serialize to JSON")
    }
}
