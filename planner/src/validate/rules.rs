//! Catalog rules (types, locations, availability), sizes, names, labels and per-server limits.

use std::collections::{BTreeMap, BTreeSet};

use terrace_providers::pricing::{Availability, Catalog};

use crate::addr::Address;
use crate::diag::{Diagnostic, Diagnostics};
use crate::kind::Kind;
use crate::model::{Compiled, Resource};
use crate::schema::suggest;
use crate::value::Value;

pub(super) struct Checker<'a> {
    pub compiled: &'a Compiled,
    pub catalog: &'a Catalog,
    pub diags: &'a mut Diagnostics,
}

/// Hetzner limits (../shared/hetzner/RESOURCE-SEMANTICS.md, SOURCES.md section 8).
pub(super) const VOLUMES_PER_SERVER: usize = 16;
pub(super) const FIREWALLS_PER_SERVER: usize = 5;
pub(super) const SERVERS_PER_PLACEMENT_GROUP: usize = 10;

impl<'a> Checker<'a> {
    fn resources(&self) -> impl Iterator<Item = &'a Resource> + use<'a> {
        let compiled: &'a Compiled = self.compiled;
        compiled.resources.iter().map(|(_, resource)| resource)
    }

    /// Where a resource's problem should point: composites' members point into the composite block.
    fn at(resource: &Resource, attr: &str) -> Option<crate::diag::Span> {
        resource.origin.attr(attr)
    }

    pub(super) fn catalog_rules(&mut self) {
        let locations: Vec<String> = self.catalog.locations().into_iter().map(|l| l.name).collect();
        let types = self.catalog.server_type_names();
        let lb_types = self.catalog.load_balancer_type_names();
        let mut reported = BTreeSet::new();
        for resource in self.resources() {
            for attr in ["location", "home_location"] {
                let Some(location) = resource.str_attr(attr) else {
                    continue;
                };
                if !locations.iter().any(|l| l == location) {
                    let key = (resource.composite.clone().unwrap_or(resource.address.clone()), attr);
                    if reported.insert(key) {
                        self.diags.push(
                            Diagnostic::error(format!("unknown location \"{location}\" for `{}`", resource.address))
                                .at(Self::at(resource, attr))
                                .label("not a Hetzner location")
                                .hint(hint_list(location, &locations, "locations")),
                        );
                    }
                }
            }
            match resource.kind {
                Kind::Server => self.server_type(resource, &types, &locations, &mut reported),
                Kind::LoadBalancer => {
                    let Some(lb_type) = resource.str_attr("type") else {
                        continue;
                    };
                    if !lb_types.iter().any(|t| t == lb_type) {
                        self.diags.push(
                            Diagnostic::error(format!("unknown load balancer type \"{lb_type}\""))
                                .at(Self::at(resource, "type"))
                                .hint(hint_list(lb_type, &lb_types, "load balancer types")),
                        );
                    }
                }
                _ => {}
            }
        }
    }

    fn server_type(
        &mut self,
        resource: &Resource,
        types: &[String],
        locations: &[String],
        reported: &mut BTreeSet<(Address, &'static str)>,
    ) {
        let Some(server_type) = resource.str_attr("server_type") else {
            return;
        };
        let key = resource.composite.clone().unwrap_or_else(|| resource.address.block());
        let known = types.iter().any(|t| t == server_type) || self.catalog.server_type(server_type).is_some();
        if !known {
            if reported.insert((key, "server_type")) {
                self.diags.push(
                    Diagnostic::error(format!("unknown server type \"{server_type}\""))
                        .at(Self::at(resource, "server_type"))
                        .label("not a Hetzner server type")
                        .hint(hint_list(server_type, types, "server types")),
                );
            }
            return;
        }
        let Some(location) = resource.str_attr("location") else {
            return;
        };
        if !locations.iter().any(|l| l == location) || !reported.insert((key, "availability")) {
            return;
        }
        let diagnostic = match self.catalog.availability(server_type, location) {
            Availability::Available => return,
            Availability::NotPriced if sold_anywhere_in_time(server_type, location) => Diagnostic::warning(format!(
                "the price list has no price for \"{server_type}\" in {location}: its cost is unknown"
            ))
            .hint("other price lists price it there; pick one with --pricing DATE, or a current type"),
            Availability::NotPriced => {
                let sold: Vec<String> = locations
                    .iter()
                    .filter(|l| self.catalog.server_monthly(server_type, l).is_some())
                    .cloned()
                    .collect();
                Diagnostic::error(format!("server type \"{server_type}\" is not sold in {location}")).hint(format!(
                    "{server_type} is sold in: {}",
                    if sold.is_empty() { "no location of this price list".to_owned() } else { sold.join(", ") }
                ))
            }
            Availability::Deprecated { announced, unavailable_after, note } => Diagnostic::warning(format!(
                "server type \"{server_type}\" is deprecated in {location} (announced {announced}{})",
                unavailable_after.map(|d| format!(", not orderable after {d}")).unwrap_or_default(),
            ))
            .detail(note)
            .hint("existing servers keep running; pick a current type for new ones"),
            Availability::Restricted { since, note } => Diagnostic::warning(format!(
                "server type \"{server_type}\" has restricted availability in {location} since {since}"
            ))
            .detail(note)
            .hint("creating new servers of this type may fail; a CPX or CCX type is more likely to be available"),
        };
        self.diags.push(diagnostic.at(Self::at(resource, "server_type")));
    }

    pub(super) fn volumes(&mut self) {
        let mut per_server: BTreeMap<Address, Vec<Address>> = BTreeMap::new();
        for resource in self.resources().filter(|r| r.kind == Kind::Volume) {
            let server = resource.ref_attr("server").and_then(|a| self.compiled.resource(a));
            match (resource.str_attr("location"), server) {
                (Some(location), Some(server)) => {
                    if let Some(server_location) = server.str_attr("location")
                        && server_location != location
                    {
                        self.diags.push(
                                Diagnostic::error(format!(
                                    "volume `{}` is in {location} but its server `{}` is in {server_location}",
                                    resource.address, server.address
                                ))
                                .at(Self::at(resource, "location"))
                                .hint("a volume attaches only to a server in its own location; drop `location` to follow the server"),
                            );
                    }
                }
                (None, None) if resource.attr("location").is_none() => {
                    self.diags.push(
                        Diagnostic::error(format!("volume `{}` has neither `location` nor `server`", resource.address))
                            .at(resource.origin.block.clone())
                            .hint("set `server = server.NAME` to attach it, or `location = \"fsn1\"` for a detached volume"),
                    );
                }
                _ => {}
            }
            if let Some(server) = resource.ref_attr("server") {
                per_server.entry(server.clone()).or_default().push(resource.address.clone());
            }
        }
        for (server, volumes) in per_server {
            if volumes.len() > VOLUMES_PER_SERVER {
                let span = self.compiled.resource(&volumes[VOLUMES_PER_SERVER]).and_then(|r| r.origin.block.clone());
                self.diags.push(
                    Diagnostic::error(format!(
                        "{} volumes are attached to `{server}`; Hetzner allows {VOLUMES_PER_SERVER}",
                        volumes.len()
                    ))
                    .at(span)
                    .hint("use fewer, larger volumes (up to 10 TB each)"),
                );
            }
        }
    }

    pub(super) fn names_and_labels(&mut self) {
        let mut names: BTreeMap<(Kind, String), Address> = BTreeMap::new();
        for resource in self.resources() {
            if let Some(name) = resource.str_attr("name") {
                if let Some(first) = names.insert((resource.kind, name.to_owned()), resource.address.clone()) {
                    self.diags.push(
                        Diagnostic::error(format!("`{}` and `{first}` are both named \"{name}\"", resource.address))
                            .at(Self::at(resource, "name"))
                            .hint(format!("Hetzner names are unique per {}; give one another `name`", resource.kind)),
                    );
                }
                if resource.kind == Kind::Server && !is_hostname(name) {
                    self.diags.push(
                        Diagnostic::error(format!("server name \"{name}\" is not a valid host name"))
                            .at(Self::at(resource, "name"))
                            .hint(
                                "use letters, digits and `-`, at most 63 characters, not starting or ending with `-`",
                            ),
                    );
                }
            }
            if let Some(Value::Map(labels)) = resource.attr("labels") {
                for (key, value) in labels {
                    let (what, problem) = match label_key_problem(key) {
                        Some(problem) => ("key", problem),
                        None => match value.as_str().and_then(label_value_problem) {
                            Some(problem) => ("value", problem),
                            None => continue,
                        },
                    };
                    let at = resource.origin.written(&format!("labels.{key}")).or_else(|| Self::at(resource, "labels"));
                    self.diags.push(
                        Diagnostic::error(format!("invalid label {what} on `{}`: `{key}`", resource.address))
                            .at(at)
                            .label(problem)
                            .hint("Hetzner label keys are an optional DNS prefix and `/`, then up to 63 letters, digits, `-`, `_` or `.`, starting and ending with a letter or digit; values likewise, or empty"),
                    );
                }
            }
        }
    }

    /// Firewalls per server, volumes, placement groups (a volume's size is checked where it is
    /// written: `schema`'s domain).
    pub(super) fn servers(&mut self) {
        let mut firewalls: BTreeMap<Address, BTreeSet<Address>> = BTreeMap::new();
        let mut groups: BTreeMap<Address, Vec<Address>> = BTreeMap::new();
        for resource in self.resources() {
            match resource.kind {
                Kind::Server => {
                    let list = resource.attr("firewalls").and_then(Value::as_list).unwrap_or_default();
                    for firewall in list.iter().filter_map(Value::as_ref) {
                        firewalls.entry(resource.address.clone()).or_default().insert(firewall.address.clone());
                    }
                    if let Some(group) = resource.ref_attr("placement_group") {
                        groups.entry(group.clone()).or_default().push(resource.address.clone());
                    }
                }
                Kind::Firewall => {
                    for apply in resource.blocks("apply_to") {
                        for server in apply.get("server").and_then(Value::as_list).unwrap_or_default() {
                            if let Some(server) = server.as_ref() {
                                firewalls.entry(server.address.clone()).or_default().insert(resource.address.clone());
                            }
                        }
                    }
                }
                _ => {}
            }
        }
        for (server, set) in firewalls {
            if set.len() > FIREWALLS_PER_SERVER {
                let span = self.compiled.resource(&server).and_then(|r| r.origin.attr("firewalls"));
                let list: Vec<String> = set.iter().map(ToString::to_string).collect();
                self.diags.push(
                    Diagnostic::error(format!(
                        "{} firewalls apply to `{server}`; Hetzner allows {FIREWALLS_PER_SERVER}",
                        set.len()
                    ))
                    .at(span)
                    .detail(list.join(", "))
                    .hint("merge rules into fewer firewalls"),
                );
            }
        }
        for (group, servers) in groups {
            if servers.len() > SERVERS_PER_PLACEMENT_GROUP {
                let span = self.compiled.resource(&group).and_then(|r| r.origin.block.clone());
                self.diags.push(
                    Diagnostic::error(format!("{} servers are in placement group `{group}`; a spread group holds {SERVERS_PER_PLACEMENT_GROUP}", servers.len()))
                        .at(span)
                        .hint("split the servers over more placement groups"),
                );
            }
        }
    }

    /// Service sizing that the catalog's server specs can check.
    pub(super) fn composites(&mut self) {
        for composite in &self.compiled.composites {
            if composite.kind != Kind::Redis {
                continue;
            }
            let Some(memory_mb) = composite.attrs.get("memory_mb").and_then(Value::as_u64) else {
                continue;
            };
            let host_type = composite
                .members
                .iter()
                .filter_map(|m| self.compiled.resource(m))
                .find_map(|r| r.str_attr("server_type"));
            let host_type = host_type.or_else(|| {
                let host = composite.attrs.get("on").and_then(Value::as_ref)?;
                self.compiled.resource(&host.address)?.str_attr("server_type")
            });
            let Some(spec) = host_type.and_then(|t| self.catalog.server_type(t)) else {
                continue;
            };
            let available_mb =
                (spec.memory_gb * rust_decimal::Decimal::from(768)).trunc().to_string().parse::<u64>().unwrap_or(0);
            if memory_mb > available_mb {
                let span = self
                    .compiled
                    .resources
                    .iter()
                    .find(|(a, _)| a.is_within(&composite.address))
                    .and_then(|(_, r)| r.origin.written("memory_mb"));
                self.diags.push(
                    Diagnostic::error(format!(
                        "`{}` asks for {memory_mb} MB, more than 75% of the {} GB of its server",
                        composite.address, spec.memory_gb
                    ))
                    .at(span.or_else(|| {
                        self.compiled
                            .resources
                            .iter()
                            .find(|(a, _)| a.is_within(&composite.address))
                            .and_then(|(_, r)| r.origin.block.clone())
                    }))
                    .hint("leave a quarter of the memory to the system, or pick a larger server type"),
                );
            }
        }
    }
}

fn hint_list(written: &str, known: &[String], what: &str) -> String {
    match suggest(written, known.iter().map(String::as_str)) {
        Some(similar) => format!("did you mean \"{similar}\"?"),
        None => format!("the catalog's {what}: {}", known.join(", ")),
    }
}

/// RFC 1123 host name label rules, as Hetzner applies them to server names.
pub(super) fn is_hostname(name: &str) -> bool {
    !name.is_empty()
        && name.len() <= 63
        && name.chars().all(|c| c.is_ascii_alphanumeric() || c == '-' || c == '.')
        && !name.starts_with('-')
        && !name.ends_with('-')
}

fn label_part_ok(part: &str) -> bool {
    part.len() <= 63
        && part.chars().all(|c| c.is_ascii_alphanumeric() || matches!(c, '-' | '_' | '.'))
        && part.chars().next().is_none_or(|c| c.is_ascii_alphanumeric())
        && part.chars().last().is_none_or(|c| c.is_ascii_alphanumeric())
}

fn label_key_problem(key: &str) -> Option<String> {
    let (prefix, name) = match key.rsplit_once('/') {
        Some((prefix, name)) => (Some(prefix), name),
        None => (None, key),
    };
    if name.is_empty() || !label_part_ok(name) {
        return Some("up to 63 letters, digits, `-`, `_` or `.`, starting and ending with a letter or digit".into());
    }
    if let Some(prefix) = prefix
        && (prefix.is_empty()
            || prefix.len() > 253
            || !prefix.split('.').all(|p| !p.is_empty() && label_part_ok(p) && !p.contains('_')))
    {
        return Some("the key's prefix must be a DNS subdomain".into());
    }
    None
}

fn label_value_problem(value: &str) -> Option<String> {
    (!label_part_ok(value))
        .then(|| "up to 63 letters, digits, `-`, `_` or `.`, starting and ending with a letter or digit".into())
}

/// Whether any embedded price list prices the type at the location: a list that lacks the price
/// then lacks a fact, rather than the type not being sold there.
fn sold_anywhere_in_time(server_type: &str, location: &str) -> bool {
    static LISTS: std::sync::OnceLock<Vec<Catalog>> = std::sync::OnceLock::new();
    let lists = LISTS.get_or_init(|| Catalog::lists().iter().filter_map(|list| Catalog::load(&list.id).ok()).collect());
    lists.iter().any(|catalog| catalog.server_monthly(server_type, location).is_some())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn labels_follow_hetzner_syntax() {
        assert_eq!(label_key_problem("role"), None);
        assert_eq!(label_key_problem("example.com/role"), None);
        assert!(label_key_problem("-role").is_some());
        assert!(label_key_problem("bad key").is_some());
        assert!(label_key_problem("/role").is_some());
        assert_eq!(label_value_problem(""), None);
        assert!(label_value_problem("a b").is_some());
        assert!(label_value_problem(&"x".repeat(64)).is_some());
    }

    #[test]
    fn host_names() {
        assert!(is_hostname("fastbots-app-0"));
        assert!(!is_hostname("app_0"));
        assert!(!is_hostname("-app"));
        assert!(!is_hostname(&"a".repeat(64)));
    }
}
