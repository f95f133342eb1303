//! format_version 1, the current layout: resources in an object keyed by address, string ids,
//! `dependencies` and `sensitive_attributes` per resource. Read into owned types; written straight
//! from the model through borrowing serializers, so a large state is not copied to be saved.

use std::collections::BTreeMap;

use serde::de::IgnoredAny;
use serde::ser::{SerializeMap, SerializeStruct};
use serde::{Deserialize, Serialize, Serializer};
use serde_json::{Map, Value};

use super::{FORMAT_VERSION, normalized};
use crate::model::{OutputState, ResourceState, State};

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct File {
    /// Checked before this layout is read.
    #[serde(rename = "format_version")]
    pub(super) _format_version: IgnoredAny,
    #[serde(deserialize_with = "super::lineage")]
    pub(super) lineage: String,
    pub(super) serial: u64,
    #[serde(default)]
    pub(super) stack: Option<String>,
    #[serde(default)]
    pub(super) phase: Option<String>,
    pub(super) resources: BTreeMap<String, Resource>,
    #[serde(default)]
    pub(super) outputs: BTreeMap<String, Output>,
    /// Written only when a migration is recorded, so a state without one reads the same as before
    /// (and a terrace that does not know migrations refuses a state with one: unknown field).
    #[serde(default)]
    pub(super) migrations: BTreeMap<String, Value>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct Resource {
    pub(super) kind: String,
    #[serde(default)]
    pub(super) id: Option<String>,
    #[serde(default)]
    pub(super) composite: Option<String>,
    #[serde(default)]
    pub(super) dependencies: Vec<String>,
    #[serde(default)]
    pub(super) sensitive_attributes: Vec<String>,
    pub(super) attributes: Map<String, Value>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct Output {
    pub(super) value: Value,
    #[serde(default)]
    pub(super) sensitive: bool,
}

impl File {
    pub(super) fn into_state(self) -> State {
        State {
            lineage: self.lineage,
            serial: self.serial,
            stack: self.stack,
            phase: self.phase,
            resources: self
                .resources
                .into_iter()
                .map(|(address, resource)| {
                    let resource = ResourceState {
                        kind: resource.kind,
                        id: resource.id,
                        attributes: resource.attributes,
                        dependencies: normalized(resource.dependencies),
                        composite: resource.composite,
                        sensitive_attributes: normalized(resource.sensitive_attributes),
                    };
                    (address, resource)
                })
                .collect(),
            outputs: self
                .outputs
                .into_iter()
                .map(|(name, output)| {
                    let output = OutputState { value: output.value, sensitive: output.sensitive };
                    (name, output)
                })
                .collect(),
            migrations: self.migrations,
        }
    }
}

pub(super) fn to_json(state: &State) -> Vec<u8> {
    let file = FileOut {
        format_version: FORMAT_VERSION,
        lineage: &state.lineage,
        serial: state.serial,
        stack: state.stack.as_deref(),
        phase: state.phase.as_deref(),
        resources: Resources(&state.resources),
        outputs: Outputs(&state.outputs),
        migrations: (!state.migrations.is_empty()).then_some(Migrations(&state.migrations)),
    };
    // Roughly what a resource with ten attributes takes, so that a large state is not regrown.
    let mut bytes = Vec::with_capacity(1024 + 768 * state.resources.len());
    // Serializing to a Vec cannot fail: writes to a Vec do not fail, and every map key is a string.
    serde_json::to_writer_pretty(&mut bytes, &file).expect("state serializes to JSON");
    bytes.push(b'\n');
    bytes
}

/// The fields in the order of the documented layout: identity first, resources and outputs last.
#[derive(Serialize)]
struct FileOut<'a> {
    format_version: u32,
    lineage: &'a str,
    serial: u64,
    stack: Option<&'a str>,
    phase: Option<&'a str>,
    resources: Resources<'a>,
    outputs: Outputs<'a>,
    #[serde(skip_serializing_if = "Option::is_none")]
    migrations: Option<Migrations<'a>>,
}

struct Migrations<'a>(&'a BTreeMap<String, Value>);

impl Serialize for Migrations<'_> {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.collect_map(self.0.iter().map(|(service, record)| (service, SortedValue(record))))
    }
}

/// A `BTreeMap` iterates in key order, so resources and outputs come out sorted as they are.
struct Resources<'a>(&'a BTreeMap<String, ResourceState>);

impl Serialize for Resources<'_> {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.collect_map(self.0.iter().map(|(address, resource)| (address, ResourceOut(resource))))
    }
}

struct ResourceOut<'a>(&'a ResourceState);

impl Serialize for ResourceOut<'_> {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        let resource = self.0;
        let mut out = serializer.serialize_struct("Resource", 6)?;
        out.serialize_field("kind", &resource.kind)?;
        out.serialize_field("id", &resource.id)?;
        out.serialize_field("composite", &resource.composite)?;
        out.serialize_field("dependencies", &SortedStrings(&resource.dependencies))?;
        out.serialize_field("sensitive_attributes", &SortedStrings(&resource.sensitive_attributes))?;
        out.serialize_field("attributes", &SortedObject(&resource.attributes))?;
        out.end()
    }
}

struct Outputs<'a>(&'a BTreeMap<String, OutputState>);

impl Serialize for Outputs<'_> {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.collect_map(self.0.iter().map(|(name, output)| (name, OutputOut(output))))
    }
}

struct OutputOut<'a>(&'a OutputState);

impl Serialize for OutputOut<'_> {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        let mut out = serializer.serialize_struct("Output", 2)?;
        out.serialize_field("value", &SortedValue(&self.0.value))?;
        out.serialize_field("sensitive", &self.0.sensitive)?;
        out.end()
    }
}

/// A list written sorted and without duplicates, whatever order the model holds it in.
struct SortedStrings<'a>(&'a [String]);

impl Serialize for SortedStrings<'_> {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        if self.0.windows(2).all(|pair| pair[0] < pair[1]) {
            return serializer.collect_seq(self.0);
        }
        let mut sorted: Vec<&String> = self.0.iter().collect();
        sorted.sort_unstable();
        sorted.dedup();
        serializer.collect_seq(sorted)
    }
}

/// A JSON value with every object's keys sorted: serde_json keeps insertion order here (the
/// workspace enables `preserve_order`), which would make the bytes depend on how a map was built.
struct SortedValue<'a>(&'a Value);

impl Serialize for SortedValue<'_> {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        match self.0 {
            Value::Object(object) => SortedObject(object).serialize(serializer),
            Value::Array(items) => serializer.collect_seq(items.iter().map(SortedValue)),
            scalar => scalar.serialize(serializer),
        }
    }
}

struct SortedObject<'a>(&'a Map<String, Value>);

impl Serialize for SortedObject<'_> {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        let mut entries: Vec<(&String, &Value)> = self.0.iter().collect();
        // A state read from a file is already sorted, and the sort then costs one pass.
        if !entries.is_sorted_by(|a, b| a.0 <= b.0) {
            entries.sort_unstable_by(|a, b| a.0.cmp(b.0));
        }
        let mut map = serializer.serialize_map(Some(entries.len()))?;
        for (key, value) in entries {
            map.serialize_entry(key, &SortedValue(value))?;
        }
        map.end()
    }
}
