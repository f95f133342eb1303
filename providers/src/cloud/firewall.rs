//! Firewalls: create with rules and the resources they apply to; in place: `set_rules`,
//! `apply_to_resources` / `remove_from_resources`, name and labels. A firewall is removed from its
//! resources before it is deleted, as the API demands.

use serde_json::{Map, Value, json};

use super::wire::as_ids;
use super::{CloudKind, Desired, action, put_if_changed};
use crate::client::{ApiError, Client, Operation};

/// A rule in the API's shape, with absent and empty settings made equal so live and desired
/// rules compare.
fn rule(block: &Map<String, Value>) -> Value {
    let list = |key: &str| block.get(key).and_then(Value::as_array).cloned().unwrap_or_default();
    let text = |key: &str| block.get(key).filter(|v| !v.is_null() && v.as_str() != Some("")).cloned();
    json!({
        "direction": block.get("direction"),
        "protocol": block.get("protocol"),
        "port": text("port"),
        "source_ips": list("source_ips"),
        "destination_ips": list("destination_ips"),
        "description": text("description"),
    })
}

fn wire_rule(canonical: &Value) -> Value {
    let mut wire = canonical.clone();
    if let Some(map) = wire.as_object_mut() {
        map.retain(|_, v| !v.is_null());
    }
    wire
}

/// The `apply_to` entries of the desired blocks: one per server, one per label selector.
fn targets(desired: &Desired) -> Vec<Value> {
    let mut out = Vec::new();
    for block in desired.blocks("apply_to") {
        if let Some(servers) = block.get("server") {
            out.extend(as_ids(servers).into_iter().map(|id| json!({ "type": "server", "server": { "id": id } })));
        }
        if let Some(selector) = block.get("label_selector").and_then(Value::as_str) {
            out.push(json!({ "type": "label_selector", "label_selector": { "selector": selector } }));
        }
    }
    out
}

/// A live `applied_to` entry in the shape of [`targets`].
fn live_target(entry: &Value) -> Option<Value> {
    match entry.get("type").and_then(Value::as_str) {
        Some("server") => Some(json!({ "type": "server", "server": { "id": entry.pointer("/server/id") } })),
        Some("label_selector") => Some(json!({
            "type": "label_selector",
            "label_selector": { "selector": entry.pointer("/label_selector/selector") },
        })),
        _ => None,
    }
}

pub(super) async fn create(client: &Client, desired: &Desired) -> Result<u64, ApiError> {
    let rules: Vec<Value> = desired.blocks("rule").into_iter().map(|b| wire_rule(&rule(b))).collect();
    let body = json!({
        "name": desired.name(),
        "labels": desired.labels_json(),
        "rules": rules,
        "apply_to": targets(desired),
    });
    super::post_create(client, desired, &body).await
}

pub(super) async fn update(client: &Client, id: u64, live: &Value, desired: &Desired) -> Result<bool, ApiError> {
    let op = desired.operation("update");
    let mut changed = put_if_changed(client, id, live, desired, Map::new()).await?;
    if desired.attrs.contains_key("rule") {
        let want: Vec<Value> = desired.blocks("rule").into_iter().map(rule).collect();
        let have: Vec<Value> = live
            .get("rules")
            .and_then(Value::as_array)
            .map(|l| l.iter().filter_map(Value::as_object).map(rule).collect())
            .unwrap_or_default();
        if want != have {
            let rules: Vec<Value> = want.iter().map(wire_rule).collect();
            action_list(client, id, "set_rules", json!({ "rules": rules }), &op).await?;
            changed = true;
        }
    }
    if desired.attrs.contains_key("apply_to") {
        let want = targets(desired);
        let have: Vec<Value> = applied(live);
        let stale: Vec<Value> = have.iter().filter(|t| !want.contains(t)).cloned().collect();
        let missing: Vec<Value> = want.iter().filter(|t| !have.contains(t)).cloned().collect();
        if !stale.is_empty() {
            action_list(client, id, "remove_from_resources", json!({ "remove_from": stale }), &op).await?;
            changed = true;
        }
        if !missing.is_empty() {
            action_list(client, id, "apply_to_resources", json!({ "apply_to": missing }), &op).await?;
            changed = true;
        }
    }
    Ok(changed)
}

fn applied(live: &Value) -> Vec<Value> {
    live.get("applied_to")
        .and_then(Value::as_array)
        .map(|l| l.iter().filter_map(live_target).collect())
        .unwrap_or_default()
}

/// Firewall actions answer with a list of actions; [`action`] waits for all of them.
async fn action_list(client: &Client, id: u64, command: &str, body: Value, op: &Operation) -> Result<(), ApiError> {
    action(client, CloudKind::Firewall, id, command, body, op).await
}

pub(super) async fn before_delete(client: &Client, id: u64, live: &Value, op: &Operation) -> Result<(), ApiError> {
    let applied = applied(live);
    if applied.is_empty() {
        return Ok(());
    }
    action_list(client, id, "remove_from_resources", json!({ "remove_from": applied }), op).await
}

pub(super) fn observe(_live: &Value) -> Map<String, Value> {
    // Rules and targets are compared when updating, not shown as drift (see docs/apply.md).
    Map::new()
}
