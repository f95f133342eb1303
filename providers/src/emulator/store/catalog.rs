//! The read-only part of the API (locations, datacenters, server types, load balancer types, images),
//! built once from the price catalog so that what the emulator sells is what terrace prices.

use rust_decimal::prelude::ToPrimitive;
use serde_json::Value;

use crate::pricing::{Architecture, Availability, Catalog, CpuType, StorageType};

use super::super::pagination::Listed;

#[derive(Debug, Clone)]
pub(crate) struct Location {
    pub(crate) id: u64,
    pub(crate) name: String,
    pub(crate) description: String,
    pub(crate) city: String,
    pub(crate) country: String,
    pub(crate) latitude: f64,
    pub(crate) longitude: f64,
    pub(crate) network_zone: String,
}

#[derive(Debug, Clone)]
pub(crate) struct Datacenter {
    pub(crate) id: u64,
    pub(crate) name: String,
    pub(crate) description: String,
    pub(crate) location: String,
}

#[derive(Debug, Clone)]
pub(crate) struct Deprecation {
    pub(crate) announced: String,
    pub(crate) unavailable_after: String,
}

#[derive(Debug, Clone)]
pub(crate) struct ServerType {
    pub(crate) id: u64,
    pub(crate) name: String,
    pub(crate) description: String,
    pub(crate) category: &'static str,
    pub(crate) cores: u32,
    pub(crate) memory: f64,
    pub(crate) disk: u32,
    pub(crate) architecture: &'static str,
    pub(crate) cpu_type: &'static str,
    pub(crate) storage_type: &'static str,
    /// The `prices` entries of the catalog's `GET /pricing` body, served unchanged.
    pub(crate) prices: Vec<Value>,
    /// Where it is priced, with the deprecation there, if any.
    pub(crate) locations: Vec<(String, Option<Deprecation>)>,
    /// Set when it is deprecated everywhere it is priced.
    pub(crate) deprecation: Option<Deprecation>,
}

#[derive(Debug, Clone)]
pub(crate) struct LbType {
    pub(crate) id: u64,
    pub(crate) name: String,
    pub(crate) max_services: u32,
    pub(crate) max_targets: u32,
    pub(crate) max_assigned_certificates: u32,
    pub(crate) max_connections: u32,
    pub(crate) prices: Vec<Value>,
}

#[derive(Debug, Clone)]
pub(crate) struct Image {
    pub(crate) id: u64,
    pub(crate) name: String,
    pub(crate) description: String,
    pub(crate) kind: &'static str,
    pub(crate) os_flavor: &'static str,
    pub(crate) os_version: String,
    pub(crate) architecture: &'static str,
    pub(crate) created: i64,
}

impl Listed for Location {
    fn id(&self) -> u64 {
        self.id
    }
    fn name(&self) -> &str {
        &self.name
    }
}

impl Listed for Datacenter {
    fn id(&self) -> u64 {
        self.id
    }
    fn name(&self) -> &str {
        &self.name
    }
}

impl Listed for ServerType {
    fn id(&self) -> u64 {
        self.id
    }
    fn name(&self) -> &str {
        &self.name
    }
}

impl Listed for LbType {
    fn id(&self) -> u64 {
        self.id
    }
    fn name(&self) -> &str {
        &self.name
    }
}

impl Listed for Image {
    fn id(&self) -> u64 {
        self.id
    }
    fn name(&self) -> &str {
        &self.name
    }
    fn created(&self) -> i64 {
        self.created
    }
}

/// Everything read-only, derived from one [`Catalog`].
#[derive(Debug, Clone)]
pub(crate) struct StaticData {
    pub(crate) locations: Vec<Location>,
    pub(crate) datacenters: Vec<Datacenter>,
    pub(crate) server_types: Vec<ServerType>,
    pub(crate) lb_types: Vec<LbType>,
    pub(crate) images: Vec<Image>,
    /// The body of `GET /pricing`.
    pub(crate) pricing: Value,
}

/// Hetzner's ids, descriptions, coordinates and datacenters of the locations (public API answers).
const KNOWN_LOCATIONS: &[(&str, u64, &str, f64, f64, u64, &str)] = &[
    ("fsn1", 1, "Falkenstein DC Park 1", 50.47612, 12.370071, 4, "fsn1-dc14"),
    ("nbg1", 2, "Nuremberg DC Park 1", 49.452102, 11.076665, 2, "nbg1-dc3"),
    ("hel1", 3, "Helsinki DC Park 1", 60.169855, 24.938379, 3, "hel1-dc2"),
    ("ash", 4, "Ashburn, VA", 39.045821, -77.487073, 5, "ash-dc1"),
    ("hil", 5, "Hillsboro, OR", 45.54222, -122.951924, 6, "hil-dc1"),
    ("sin", 6, "Singapore", 1.283333, 103.833333, 7, "sin-dc1"),
];

/// One row of [`IMAGES`]: id, name, description, type, flavor, version, architecture, created.
type ImageRow = (u64, &'static str, &'static str, &'static str, &'static str, &'static str, &'static str, &'static str);

/// System and app images; ids of the x86 builds are Hetzner's, the arm ones are made up.
const IMAGES: &[ImageRow] = &[
    (161_547_269, "ubuntu-24.04", "Ubuntu 24.04", "system", "ubuntu", "24.04", "x86", "2024-04-25T12:00:00Z"),
    (161_547_270, "ubuntu-24.04", "Ubuntu 24.04", "system", "ubuntu", "24.04", "arm", "2024-04-25T12:00:00Z"),
    (67_794_396, "ubuntu-22.04", "Ubuntu 22.04", "system", "ubuntu", "22.04", "x86", "2022-04-21T12:00:00Z"),
    (103_908_070, "ubuntu-22.04", "Ubuntu 22.04", "system", "ubuntu", "22.04", "arm", "2023-03-01T12:00:00Z"),
    (114_690_387, "debian-12", "Debian 12", "system", "debian", "12", "x86", "2023-06-13T12:00:00Z"),
    (114_690_389, "debian-12", "Debian 12", "system", "debian", "12", "arm", "2023-06-13T12:00:00Z"),
    (76_766_499, "rocky-9", "Rocky Linux 9", "system", "rocky", "9", "x86", "2022-07-14T12:00:00Z"),
    (76_766_502, "alma-9", "AlmaLinux 9", "system", "alma", "9", "x86", "2022-07-14T12:00:00Z"),
    (200_000_001, "fedora-42", "Fedora 42", "system", "fedora", "42", "x86", "2025-04-15T12:00:00Z"),
    (40_093_140, "docker-ce", "Docker CE", "app", "ubuntu", "24.04", "x86", "2021-06-01T12:00:00Z"),
    (40_093_190, "docker-ce", "Docker CE", "app", "ubuntu", "24.04", "arm", "2021-06-01T12:00:00Z"),
];

fn parse_ms(rfc3339: &str) -> i64 {
    rfc3339.parse::<jiff::Timestamp>().map(|t| t.as_millisecond()).unwrap_or(0)
}

/// The `prices` arrays of a kind in the pricing body, by type name.
fn prices_of(pricing: &Value, kind: &str, name: &str) -> Vec<Value> {
    pricing["pricing"][kind]
        .as_array()
        .and_then(|types| types.iter().find(|t| t["name"] == name))
        .and_then(|t| t["prices"].as_array().cloned())
        .unwrap_or_default()
}

impl StaticData {
    pub(crate) fn from_catalog(catalog: &Catalog) -> StaticData {
        let pricing = catalog.pricing_response_json();
        let locations: Vec<Location> = catalog
            .locations()
            .into_iter()
            .enumerate()
            .map(|(i, l)| {
                let known = KNOWN_LOCATIONS.iter().find(|k| k.0 == l.name);
                Location {
                    id: known.map_or(100 + i as u64, |k| k.1),
                    description: known.map_or_else(|| l.city.clone(), |k| k.2.to_owned()),
                    latitude: known.map_or(0.0, |k| k.3),
                    longitude: known.map_or(0.0, |k| k.4),
                    name: l.name,
                    city: l.city,
                    country: l.country,
                    network_zone: l.network_zone,
                }
            })
            .collect();
        let datacenters = locations
            .iter()
            .map(|l| {
                let known = KNOWN_LOCATIONS.iter().find(|k| k.0 == l.name);
                let name = known.map_or_else(|| format!("{}-dc1", l.name), |k| k.6.to_owned());
                Datacenter {
                    id: known.map_or(l.id + 100, |k| k.5),
                    description: format!("{} virtual DC {}", l.city, name.rsplit("-dc").next().unwrap_or("1")),
                    name,
                    location: l.name.clone(),
                }
            })
            .collect();
        let server_types = catalog
            .server_type_names()
            .into_iter()
            .enumerate()
            .filter_map(|(i, name)| {
                let spec = catalog.server_type(&name)?;
                let mut where_priced = Vec::new();
                for l in &locations {
                    match catalog.availability(&name, &l.name) {
                        Availability::NotPriced => {}
                        Availability::Deprecated { announced, unavailable_after, .. } => where_priced.push((
                            l.name.clone(),
                            Some(Deprecation {
                                unavailable_after: unavailable_after.unwrap_or_else(|| announced.clone()),
                                announced,
                            }),
                        )),
                        Availability::Available | Availability::Restricted { .. } => {
                            where_priced.push((l.name.clone(), None));
                        }
                    }
                }
                let deprecation = if !where_priced.is_empty() && where_priced.iter().all(|(_, d)| d.is_some()) {
                    where_priced[0].1.clone()
                } else {
                    None
                };
                let family: String = name.chars().take_while(char::is_ascii_alphabetic).collect();
                Some(ServerType {
                    id: catalog.server_type_id(&name).unwrap_or(1000 + i as u64),
                    description: name.to_uppercase(),
                    category: match (spec.cpu_type, family.as_str()) {
                        (CpuType::Dedicated, _) => "general_purpose",
                        (_, "cpx") => "regular_purpose",
                        _ => "cost_optimized",
                    },
                    cores: spec.cores,
                    memory: spec.memory_gb.to_f64().unwrap_or(0.0),
                    disk: spec.disk_gb,
                    architecture: match spec.architecture {
                        Architecture::X86 => "x86",
                        Architecture::Arm => "arm",
                    },
                    cpu_type: match spec.cpu_type {
                        CpuType::Shared => "shared",
                        CpuType::Dedicated => "dedicated",
                    },
                    storage_type: match spec.storage_type {
                        StorageType::Local => "local",
                        StorageType::Network => "network",
                    },
                    prices: prices_of(&pricing, "server_types", &name),
                    locations: where_priced,
                    deprecation,
                    name,
                })
            })
            .collect();
        let lb_types = catalog
            .load_balancer_type_names()
            .into_iter()
            .enumerate()
            .filter_map(|(i, name)| {
                let limits = catalog.load_balancer_limits(&name)?;
                Some(LbType {
                    id: catalog.load_balancer_type_id(&name).unwrap_or(100 + i as u64),
                    max_services: limits.max_services,
                    max_targets: limits.max_targets,
                    max_assigned_certificates: limits.max_assigned_certificates,
                    max_connections: limits.max_connections,
                    prices: prices_of(&pricing, "load_balancer_types", &name),
                    name,
                })
            })
            .collect();
        let images = IMAGES
            .iter()
            .map(|&(id, name, description, kind, os_flavor, os_version, architecture, created)| Image {
                id,
                name: name.to_owned(),
                description: description.to_owned(),
                kind,
                os_flavor,
                os_version: os_version.to_owned(),
                architecture,
                created: parse_ms(created),
            })
            .collect();
        StaticData { locations, datacenters, server_types, lb_types, images, pricing }
    }

    pub(crate) fn location(&self, name: &str) -> Option<&Location> {
        self.locations.iter().find(|l| l.name == name)
    }

    pub(crate) fn datacenter_of(&self, location: &str) -> Option<&Datacenter> {
        self.datacenters.iter().find(|d| d.location == location)
    }

    pub(crate) fn zone_of(&self, location: &str) -> &str {
        self.location(location).map_or("eu-central", |l| l.network_zone.as_str())
    }

    pub(crate) fn server_type(&self, name: &str) -> Option<&ServerType> {
        self.server_types.iter().find(|t| t.name == name)
    }

    pub(crate) fn server_type_by_id_or_name(&self, key: &super::super::wire::IdOrName) -> Option<&ServerType> {
        use super::super::wire::IdOrName;
        match key {
            IdOrName::Id(id) => self.server_types.iter().find(|t| t.id == *id),
            IdOrName::Name(name) => self.server_type(name),
        }
    }

    pub(crate) fn lb_type(&self, key: &super::super::wire::IdOrName) -> Option<&LbType> {
        use super::super::wire::IdOrName;
        match key {
            IdOrName::Id(id) => self.lb_types.iter().find(|t| t.id == *id),
            IdOrName::Name(name) => self.lb_types.iter().find(|t| t.name == *name),
        }
    }

    /// An image by id, or by name for the given architecture (names are shared by the x86 and arm builds).
    pub(crate) fn image(&self, key: &super::super::wire::IdOrName, architecture: &str) -> Option<&Image> {
        use super::super::wire::IdOrName;
        match key {
            IdOrName::Id(id) => self.images.iter().find(|i| i.id == *id),
            IdOrName::Name(name) => self.images.iter().find(|i| i.name == *name && i.architecture == architecture),
        }
    }

    pub(crate) fn image_by_id(&self, id: u64) -> Option<&Image> {
        self.images.iter().find(|i| i.id == id)
    }
}
