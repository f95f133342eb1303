//! Volumes: create (attached to a server, or in a location); in place: `resize` (grow only),
//! `detach`/`attach`, name and labels, protection. A volume is detached before it is deleted.

use serde_json::{Map, Value, json};

use super::wire::{id_at, name_of};
use super::{CloudKind, Desired, action, protect_if_changed, put_if_changed};
use crate::client::{ApiError, Client, Operation};

pub(super) async fn create(client: &Client, desired: &Desired) -> Result<u64, ApiError> {
    let mut body = Map::new();
    body.insert("name".into(), json!(desired.name()));
    body.insert("size".into(), desired.attrs.get("size").cloned().unwrap_or(json!(10)));
    body.insert("labels".into(), desired.labels_json());
    if let Some(format) = desired.str("format") {
        body.insert("format".into(), json!(format));
    }
    match desired.id("server") {
        Some(server) => {
            body.insert("server".into(), json!(server));
            body.insert("automount".into(), json!(desired.bool("automount").unwrap_or(false)));
        }
        None => {
            body.insert("location".into(), json!(desired.str("location")));
        }
    }
    super::post_create(client, desired, &Value::Object(body)).await
}

pub(super) async fn update(client: &Client, id: u64, live: &Value, desired: &Desired) -> Result<bool, ApiError> {
    let op = desired.operation("update");
    let mut changed = put_if_changed(client, id, live, desired, Map::new()).await?;
    let size = live.get("size").and_then(Value::as_u64).unwrap_or(0);
    if let Some(want) = desired.attrs.get("size").and_then(Value::as_u64)
        && want > size
    {
        action(client, CloudKind::Volume, id, "resize", json!({ "size": want }), &op).await?;
        changed = true;
    }
    if desired.attrs.contains_key("server") {
        let have = live.get("server").and_then(Value::as_u64);
        let want = desired.id("server");
        if have != want {
            if have.is_some() {
                action(client, CloudKind::Volume, id, "detach", json!({}), &op).await?;
            }
            if let Some(server) = want {
                let body = json!({ "server": server, "automount": desired.bool("automount").unwrap_or(false) });
                action(client, CloudKind::Volume, id, "attach", body, &op).await?;
            }
            changed = true;
        }
    }
    changed |= protect_if_changed(client, id, live, desired).await?;
    Ok(changed)
}

pub(super) async fn before_delete(client: &Client, id: u64, live: &Value, op: &Operation) -> Result<(), ApiError> {
    if live.get("server").is_some_and(|s| !s.is_null()) {
        action(client, CloudKind::Volume, id, "detach", json!({}), op).await?;
    }
    Ok(())
}

pub(super) fn observe(live: &Value) -> Map<String, Value> {
    let mut attrs = Map::new();
    attrs.insert("size".into(), name_of(live, "/size"));
    attrs.insert("location".into(), name_of(live, "/location/name"));
    attrs.insert("server".into(), id_at(live, "/server"));
    attrs.insert("delete_protection".into(), name_of(live, "/protection/delete"));
    attrs.insert("linux_device".into(), name_of(live, "/linux_device"));
    attrs
}
