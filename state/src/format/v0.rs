//! format_version 0, the first layout: resources in a list, each with its `address`; numeric
//! Hetzner ids; `depends_on` for dependencies; no record of sensitive attributes. Read only, and
//! carried to format_version 1 by `upgrade`.

use std::collections::BTreeMap;

use serde::de::IgnoredAny;
use serde::{Deserialize, Deserializer};
use serde_json::{Map, Value};

use super::v1;

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct File {
    #[serde(rename = "format_version")]
    _format_version: IgnoredAny,
    #[serde(deserialize_with = "super::lineage")]
    lineage: String,
    serial: u64,
    #[serde(default)]
    stack: Option<String>,
    #[serde(default)]
    phase: Option<String>,
    resources: Vec<Resource>,
    #[serde(default)]
    outputs: BTreeMap<String, Output>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct Resource {
    address: String,
    kind: String,
    #[serde(default, deserialize_with = "id")]
    id: Option<String>,
    #[serde(default)]
    composite: Option<String>,
    #[serde(default)]
    depends_on: Vec<String>,
    attributes: Map<String, Value>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct Output {
    value: Value,
    #[serde(default)]
    sensitive: bool,
}

/// Version 0 wrote Hetzner's numeric ids as numbers; version 1 keeps ids as strings, since an
/// Object Storage bucket is known by its name.
fn id<'de, D: Deserializer<'de>>(deserializer: D) -> Result<Option<String>, D::Error> {
    match Option::<Value>::deserialize(deserializer)? {
        None | Some(Value::Null) => Ok(None),
        Some(Value::Number(number)) if number.is_u64() => Ok(Some(number.to_string())),
        Some(Value::String(text)) => Ok(Some(text)),
        Some(other) => Err(serde::de::Error::custom(format!("id {other} is neither a whole number nor a string"))),
    }
}

/// Carries a version 0 state to version 1: the list becomes a map by address (an address twice is
/// an error, as the two records could not both be kept), `depends_on` becomes `dependencies`, and
/// sensitive attributes start unrecorded, to be recorded by the next apply.
pub(super) fn upgrade(file: File) -> Result<v1::File, String> {
    let mut resources = BTreeMap::new();
    for resource in file.resources {
        let upgraded = v1::Resource {
            kind: resource.kind,
            id: resource.id,
            composite: resource.composite,
            dependencies: resource.depends_on,
            sensitive_attributes: Vec::new(),
            attributes: resource.attributes,
        };
        if resources.insert(resource.address.clone(), upgraded).is_some() {
            return Err(format!("resource {} appears more than once", resource.address));
        }
    }
    Ok(v1::File {
        _format_version: IgnoredAny,
        lineage: file.lineage,
        serial: file.serial,
        stack: file.stack,
        phase: file.phase,
        resources,
        outputs: file
            .outputs
            .into_iter()
            .map(|(name, output)| {
                let output = v1::Output { value: output.value, sensitive: output.sensitive };
                (name, output)
            })
            .collect(),
        migrations: BTreeMap::new(),
    })
}
