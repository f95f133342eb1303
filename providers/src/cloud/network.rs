//! Networks: create with subnets and routes; in place: `change_ip_range` (grow only), subnets and
//! routes added and deleted one by one, name, labels and route exposure, protection.

use serde_json::{Map, Value, json};

use super::wire::name_of;
use super::{CloudKind, Desired, action, protect_if_changed, put_if_changed};
use crate::client::{ApiError, Client};

fn subnet_wire(block: &Map<String, Value>) -> Value {
    let mut subnet = json!({
        "type": block.get("type").and_then(Value::as_str).unwrap_or("cloud"),
        "network_zone": block.get("network_zone"),
        "ip_range": block.get("ip_range"),
    });
    if let Some(vswitch) = block.get("vswitch_id").filter(|v| !v.is_null()) {
        subnet["vswitch_id"] = vswitch.clone();
    }
    subnet
}

fn route_wire(block: &Map<String, Value>) -> Value {
    json!({ "destination": block.get("destination"), "gateway": block.get("gateway") })
}

pub(super) async fn create(client: &Client, desired: &Desired) -> Result<u64, ApiError> {
    let body = json!({
        "name": desired.name(),
        "ip_range": desired.str("ip_range"),
        "labels": desired.labels_json(),
        "subnets": desired.blocks("subnet").into_iter().map(subnet_wire).collect::<Vec<_>>(),
        "routes": desired.blocks("route").into_iter().map(route_wire).collect::<Vec<_>>(),
        "expose_routes_to_vswitch": desired.bool("expose_routes_to_vswitch").unwrap_or(false),
    });
    super::post_create(client, desired, &body).await
}

pub(super) async fn update(client: &Client, id: u64, live: &Value, desired: &Desired) -> Result<bool, ApiError> {
    let op = desired.operation("update");
    let mut extra = Map::new();
    if let Some(expose) = desired.bool("expose_routes_to_vswitch")
        && live.get("expose_routes_to_vswitch").and_then(Value::as_bool) != Some(expose)
    {
        extra.insert("expose_routes_to_vswitch".into(), json!(expose));
    }
    let mut changed = put_if_changed(client, id, live, desired, extra).await?;
    if let Some(range) = desired.str("ip_range")
        && live.get("ip_range").and_then(Value::as_str) != Some(range)
    {
        action(client, CloudKind::Network, id, "change_ip_range", json!({ "ip_range": range }), &op).await?;
        changed = true;
    }
    if desired.attrs.contains_key("subnet") {
        let key = |s: &Value| s.get("ip_range").and_then(Value::as_str).map(str::to_owned);
        let live_subnets: Vec<Value> = live.get("subnets").and_then(Value::as_array).cloned().unwrap_or_default();
        let want: Vec<Value> = desired.blocks("subnet").into_iter().map(subnet_wire).collect();
        for old in &live_subnets {
            if !want.iter().any(|w| key(w) == key(old)) {
                let body = json!({ "ip_range": old.get("ip_range") });
                action(client, CloudKind::Network, id, "delete_subnet", body, &op).await?;
                changed = true;
            }
        }
        for new in &want {
            if !live_subnets.iter().any(|l| key(l) == key(new)) {
                action(client, CloudKind::Network, id, "add_subnet", new.clone(), &op).await?;
                changed = true;
            }
        }
    }
    if desired.attrs.contains_key("route") {
        let live_routes: Vec<Value> = live.get("routes").and_then(Value::as_array).cloned().unwrap_or_default();
        let want: Vec<Value> = desired.blocks("route").into_iter().map(route_wire).collect();
        for old in live_routes.iter().filter(|r| !want.contains(r)) {
            action(client, CloudKind::Network, id, "delete_route", old.clone(), &op).await?;
            changed = true;
        }
        for new in want.iter().filter(|r| !live_routes.contains(r)) {
            action(client, CloudKind::Network, id, "add_route", new.clone(), &op).await?;
            changed = true;
        }
    }
    changed |= protect_if_changed(client, id, live, desired).await?;
    Ok(changed)
}

pub(super) fn observe(live: &Value) -> Map<String, Value> {
    let mut attrs = Map::new();
    attrs.insert("ip_range".into(), name_of(live, "/ip_range"));
    attrs.insert("expose_routes_to_vswitch".into(), name_of(live, "/expose_routes_to_vswitch"));
    attrs.insert("delete_protection".into(), name_of(live, "/protection/delete"));
    attrs
}
