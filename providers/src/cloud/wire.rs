//! Small readers of Hetzner's JSON shared by the kinds: ids, id lists, labels, nested names.

use std::collections::BTreeMap;

use serde_json::{Value, json};

/// An id written as a number or a numeric string.
pub(crate) fn as_id(value: &Value) -> Option<u64> {
    match value {
        Value::Number(n) => n.as_u64(),
        Value::String(s) => s.parse().ok(),
        _ => None,
    }
}

/// One id or a list of ids.
pub(crate) fn as_ids(value: &Value) -> Vec<u64> {
    match value {
        Value::Array(items) => items.iter().filter_map(as_id).collect(),
        other => as_id(other).into_iter().collect(),
    }
}

pub(crate) fn labels_of(live: &Value) -> BTreeMap<String, String> {
    live.get("labels")
        .and_then(Value::as_object)
        .map(|m| m.iter().map(|(k, v)| (k.clone(), v.as_str().unwrap_or_default().to_owned())).collect())
        .unwrap_or_default()
}

/// `live.<key>.name`: a location, a type.
pub(crate) fn name_of(live: &Value, pointer: &str) -> Value {
    live.pointer(pointer).cloned().filter(|v| !v.is_null()).unwrap_or(Value::Null)
}

/// The `/id` of a nested object, or null.
pub(crate) fn id_at(live: &Value, pointer: &str) -> Value {
    live.pointer(pointer).and_then(as_id).map_or(Value::Null, |id| json!(id))
}
