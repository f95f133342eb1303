//! Between the planner's values and the API's: a compiled resource becomes a [`Desired`] object
//! (references resolved to the Hetzner ids and attributes recorded in state), and what the API
//! answered becomes the resource's record in state, exactly as the diff expects to read it back.

use std::collections::BTreeMap;

use serde_json::{Map, Value as Json, json};
use terrace_providers::cloud::{ADDRESS_LABEL, CloudKind, Desired, Observed, STACK_LABEL, label_value};
use terrace_state::{ResourceState, State};

use crate::addr::Address;
use crate::diff::{json_to_value, value_to_json};
use crate::kind::Kind;
use crate::model::{Compiled, Resource};
use crate::schema;
use crate::value::{Reference, Value};

/// A reference that cannot be resolved yet: the object it names is not recorded (it was not
/// created, or its create failed).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Unresolved(pub String);

/// Attribute `attribute` of the recorded object `address` (`id` is its Hetzner id).
pub fn read(state: &State, address: &Address, attribute: &str) -> Option<Value> {
    let recorded = state.resources.get(&address.to_string())?;
    if attribute == "id" {
        return recorded.id.clone().map(|id| id.parse::<f64>().map_or(Value::String(id), Value::Number));
    }
    let read = |name: &str| {
        let value = recorded.attributes.get(name).filter(|v| !v.is_null()).map(json_to_value)?;
        // A secret read from state stays a secret wherever it goes.
        Some(if recorded.sensitive_attributes.iter().any(|s| s == name) {
            Value::Sensitive(Box::new(value))
        } else {
            value
        })
    };
    schema::read_attribute(address.kind(), attribute, read)
}

/// A value as state records it: references to objects stay references (recorded as their
/// address), references to attributes become the recorded values.
pub fn for_state(value: &Value, state: &State) -> Result<Value, Unresolved> {
    Ok(match value {
        Value::Ref(Reference { address, attribute: Some(attribute) }) => read(state, address, attribute)
            .ok_or_else(|| Unresolved(format!("{address}.{attribute} is not recorded")))?,
        Value::List(items) => Value::List(items.iter().map(|i| for_state(i, state)).collect::<Result<_, _>>()?),
        Value::Map(map) => Value::Map(
            map.iter().map(|(k, v)| Ok((k.clone(), for_state(v, state)?))).collect::<Result<_, Unresolved>>()?,
        ),
        Value::Sensitive(inner) => Value::Sensitive(Box::new(for_state(inner, state)?)),
        Value::Template(_) => {
            let missing = std::cell::RefCell::new(None);
            value
                .render_text(&|reference| {
                    let found = match &reference.attribute {
                        Some(attribute) => read(state, &reference.address, attribute),
                        None => None,
                    };
                    if found.is_none() {
                        missing.borrow_mut().get_or_insert_with(|| reference.to_string());
                    }
                    found
                })
                .ok_or_else(|| {
                    let what = missing.borrow().clone().unwrap_or_else(|| "a value".into());
                    Unresolved(format!("{what} is not recorded"))
                })?
        }
        other => other.clone(),
    })
}

/// A value as the API takes it: references to objects become their Hetzner ids.
fn for_api(value: &Value, state: &State) -> Result<Json, Unresolved> {
    Ok(match value {
        Value::Ref(Reference { address, attribute: None }) => {
            let id = state
                .resources
                .get(&address.to_string())
                .and_then(|r| r.id.clone())
                .ok_or_else(|| Unresolved(format!("{address} is not created yet")))?;
            id.parse::<u64>().map_or(Json::String(id), |n| json!(n))
        }
        Value::List(items) => Json::Array(items.iter().map(|i| for_api(i, state)).collect::<Result<_, _>>()?),
        Value::Map(map) => Json::Object(
            map.iter().map(|(k, v)| Ok((k.clone(), for_api(v, state)?))).collect::<Result<_, Unresolved>>()?,
        ),
        Value::Sensitive(inner) => for_api(inner, state)?,
        other => value_to_json(&for_state(other, state)?),
    })
}

/// The Cloud API kind of a planner kind (`None` for buckets and composites).
pub fn cloud_kind(kind: Kind) -> Option<CloudKind> {
    kind.as_str().parse().ok()
}

/// The labels every object of the stack carries.
pub fn own_labels(stack: &str, address: &Address) -> BTreeMap<String, String> {
    BTreeMap::from([
        (STACK_LABEL.to_owned(), label_value(stack)),
        (ADDRESS_LABEL.to_owned(), label_value(&address.to_string())),
    ])
}

/// The object the API should hold for `resource`.
pub fn desired(resource: &Resource, kind: CloudKind, state: &State, stack: &str) -> Result<Desired, Unresolved> {
    let mut attrs = Map::new();
    for (name, value) in &resource.attrs {
        if matches!(value, Value::Null) || name == "labels" {
            continue;
        }
        attrs.insert(name.clone(), for_api(value, state)?);
    }
    let mut labels = own_labels(stack, &resource.address);
    if let Some(Value::Map(own)) = resource.attrs.get("labels") {
        for (key, value) in own {
            if let Value::String(text) = for_state(value, state)? {
                labels.insert(key.clone(), text);
            }
        }
    }
    Ok(Desired { kind, address: resource.address.to_string(), attrs, labels })
}

/// The record of `resource` in state: its attributes as configured (references as addresses,
/// referenced attributes as their values) and what the API computed. Without `observed`, a record
/// of an object being created, with no id yet.
pub fn record(
    resource: &Resource,
    compiled: &Compiled,
    observed: Option<(&str, &Map<String, Json>)>,
    state: &State,
) -> Result<ResourceState, Unresolved> {
    let mut attributes = Map::new();
    let mut sensitive = Vec::new();
    for (name, value) in &resource.attrs {
        let resolved = for_state(value, state)?;
        // A value with a secret inside (user_data rendered with a password) is a secret.
        if value.holds_sensitive() || resolved.holds_sensitive() {
            sensitive.push(name.clone());
        }
        attributes.insert(name.clone(), value_to_json(&resolved));
    }
    if let Some((_, seen)) = observed {
        for name in schema::computed_for(resource.kind, &resource.attrs) {
            if let Some(value) = seen.get(name).filter(|v| !v.is_null()) {
                attributes.insert(name.to_owned(), value.clone());
            }
        }
    }
    // Generated or handed-on secrets the API computed for terrace.
    match resource.kind {
        Kind::Secret => sensitive.push("value".to_owned()),
        Kind::Keypair => sensitive.push("private_key".to_owned()),
        Kind::Bucket => sensitive.extend(["access_key".to_owned(), "secret_key".to_owned()]),
        _ => {}
    }
    Ok(ResourceState {
        kind: resource.kind.to_string(),
        id: observed.map(|(id, _)| id.to_owned()),
        attributes,
        dependencies: compiled.resources.dependencies(&resource.address).iter().map(ToString::to_string).collect(),
        composite: resource.composite.as_ref().map(ToString::to_string),
        sensitive_attributes: sensitive,
    })
}

/// (kind, Hetzner id) -> address of every recorded object with an id: how ids the API shows are
/// turned back into the addresses state records.
pub fn id_index(state: &State) -> BTreeMap<(String, String), String> {
    state.resources.iter().filter_map(|(address, r)| Some(((r.kind.clone(), r.id.clone()?), address.clone()))).collect()
}

/// Lays what the API shows over a record: the attributes the record holds (and the computed
/// ones), ids of referenced objects turned back into their addresses. Returns the attributes that
/// changed, as `name: before -> after`, for the drift report.
pub fn overlay(
    record: &mut ResourceState,
    observed: &Observed,
    ids: &BTreeMap<(String, String), String>,
) -> Vec<String> {
    let Ok(kind) = record.kind.parse::<Kind>() else { return Vec::new() };
    let schema = schema::of(kind);
    let mut drift = Vec::new();
    for (name, seen) in &observed.attrs {
        let computed = schema.computed.contains(&name.as_str());
        let Some(before) = record.attributes.get(name) else {
            if computed && !seen.is_null() {
                record.attributes.insert(name.clone(), seen.clone());
            }
            continue;
        };
        let reference = schema.attr(name).and_then(|a| match a.ty {
            schema::Ty::Ref(kinds) | schema::Ty::Refs(kinds) => Some(kinds),
            _ => None,
        });
        let after = match reference {
            Some(kinds) => {
                let to_address = |id: &Json| {
                    let id = match id {
                        Json::Number(n) => n.to_string(),
                        Json::String(s) => s.clone(),
                        _ => return Json::Null,
                    };
                    kinds
                        .iter()
                        .find_map(|k| ids.get(&(k.to_string(), id.clone())))
                        .map_or_else(|| Json::String(id.clone()), |a| Json::String(a.clone()))
                };
                match seen {
                    Json::Array(items) => {
                        let mapped: Vec<Json> = items.iter().map(to_address).collect();
                        // The API's order is not the definition's: a permutation is no change.
                        match before.as_array() {
                            Some(old) if old.len() == mapped.len() && mapped.iter().all(|m| old.contains(m)) => {
                                before.clone()
                            }
                            _ => Json::Array(mapped),
                        }
                    }
                    Json::Null => Json::Null,
                    one => to_address(one),
                }
            }
            // A value the API does not show (an image since deleted) is no drift.
            None if seen.is_null() => continue,
            None => seen.clone(),
        };
        if !same(before, &after) {
            if !computed && !record.sensitive_attributes.contains(name) {
                drift.push(format!("{name}: {} -> {}", short(before), short(&after)));
            }
            record.attributes.insert(name.clone(), after);
        }
    }
    drift
}

/// Equal as the diff sees it: numbers by value.
fn same(a: &Json, b: &Json) -> bool {
    match (a, b) {
        (Json::Number(x), Json::Number(y)) => x.as_f64() == y.as_f64(),
        (Json::Array(x), Json::Array(y)) => x.len() == y.len() && x.iter().zip(y).all(|(p, q)| same(p, q)),
        (Json::Object(x), Json::Object(y)) => {
            x.len() == y.len() && x.iter().all(|(k, v)| y.get(k).is_some_and(|w| same(v, w)))
        }
        _ => a == b,
    }
}

fn short(value: &Json) -> String {
    let text = value.to_string();
    if text.chars().count() > 60 { format!("{}…", text.chars().take(60).collect::<String>()) } else { text }
}
