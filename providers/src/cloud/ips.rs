//! Primary and floating IPs: create (assigned, or in a location); in place: assignment (a primary
//! IP only to a server that is off, so terrace powers it off and on again), name, labels,
//! description, `auto_delete`, protection. A primary IP is unassigned before it is deleted.

use reqwest::Method;
use serde_json::{Map, Value, json};

use super::wire::{id_at, name_of};
use super::{CloudKind, Desired, action, protect_if_changed, put_if_changed};
use crate::client::{ApiError, Client, Operation};

pub(super) async fn create_primary(client: &Client, desired: &Desired) -> Result<u64, ApiError> {
    let mut body = json!({
        "name": desired.name(),
        "type": desired.str("type"),
        "assignee_type": "server",
        "auto_delete": desired.bool("auto_delete").unwrap_or(false),
        "labels": desired.labels_json(),
    });
    // Assigned after creation (the server must be off), so the IP is made in its location.
    if let Some(location) = desired.str("location") {
        body["location"] = json!(location);
    }
    super::post_create(client, desired, &body).await
}

pub(super) async fn update_primary(
    client: &Client,
    id: u64,
    live: &Value,
    desired: &Desired,
) -> Result<bool, ApiError> {
    let op = desired.operation("update");
    let mut extra = Map::new();
    if let Some(auto) = desired.bool("auto_delete")
        && live.get("auto_delete").and_then(Value::as_bool) != Some(auto)
    {
        extra.insert("auto_delete".into(), json!(auto));
    }
    let mut changed = put_if_changed(client, id, live, desired, extra).await?;
    if desired.attrs.contains_key("assignee") {
        let have = live.get("assignee_id").and_then(Value::as_u64);
        let want = desired.id("assignee");
        if have != want {
            if let Some(old) = have {
                with_server_off(client, old, &op, async {
                    action(client, CloudKind::PrimaryIp, id, "unassign", json!({}), &op).await
                })
                .await?;
            }
            if let Some(server) = want {
                with_server_off(client, server, &op, async {
                    let body = json!({ "assignee_id": server, "assignee_type": "server" });
                    action(client, CloudKind::PrimaryIp, id, "assign", body, &op).await
                })
                .await?;
            }
            changed = true;
        }
    }
    changed |= protect_if_changed(client, id, live, desired).await?;
    Ok(changed)
}

/// Runs `work` with the server powered off, powering it on again after when it was running.
async fn with_server_off(
    client: &Client,
    server: u64,
    op: &Operation,
    work: impl std::future::Future<Output = Result<(), ApiError>>,
) -> Result<(), ApiError> {
    let status = client
        .request(Method::GET, &format!("/servers/{server}"), &[], None, op)
        .await?
        .pointer("/server/status")
        .and_then(Value::as_str)
        .map(str::to_owned);
    let running = status.as_deref() == Some("running");
    if running {
        action(client, CloudKind::Server, server, "poweroff", json!({}), op).await?;
    }
    work.await?;
    if running {
        action(client, CloudKind::Server, server, "poweron", json!({}), op).await?;
    }
    Ok(())
}

pub(super) async fn before_delete_primary(
    client: &Client,
    id: u64,
    live: &Value,
    op: &Operation,
) -> Result<(), ApiError> {
    if let Some(server) = live.get("assignee_id").and_then(Value::as_u64) {
        with_server_off(client, server, op, async {
            action(client, CloudKind::PrimaryIp, id, "unassign", json!({}), op).await
        })
        .await?;
    }
    Ok(())
}

pub(super) fn observe_primary(live: &Value) -> Map<String, Value> {
    let mut attrs = Map::new();
    attrs.insert("type".into(), name_of(live, "/type"));
    attrs.insert("location".into(), name_of(live, "/location/name"));
    attrs.insert("assignee".into(), id_at(live, "/assignee_id"));
    attrs.insert("auto_delete".into(), name_of(live, "/auto_delete"));
    attrs.insert("delete_protection".into(), name_of(live, "/protection/delete"));
    attrs.insert("ip_address".into(), name_of(live, "/ip"));
    attrs
}

pub(super) async fn create_floating(client: &Client, desired: &Desired) -> Result<u64, ApiError> {
    let mut body = json!({
        "name": desired.name(),
        "type": desired.str("type"),
        "home_location": desired.str("home_location"),
        "labels": desired.labels_json(),
    });
    if let Some(description) = desired.str("description") {
        body["description"] = json!(description);
    }
    if let Some(server) = desired.id("server") {
        body["server"] = json!(server);
    }
    super::post_create(client, desired, &body).await
}

pub(super) async fn update_floating(
    client: &Client,
    id: u64,
    live: &Value,
    desired: &Desired,
) -> Result<bool, ApiError> {
    let op = desired.operation("update");
    let mut extra = Map::new();
    if desired.attrs.contains_key("description") && live.get("description") != desired.attrs.get("description") {
        extra.insert("description".into(), desired.attrs.get("description").cloned().unwrap_or(Value::Null));
    }
    let mut changed = put_if_changed(client, id, live, desired, extra).await?;
    if desired.attrs.contains_key("server") {
        let have = live.get("server").and_then(Value::as_u64);
        let want = desired.id("server");
        if have != want {
            match want {
                Some(server) => {
                    action(client, CloudKind::FloatingIp, id, "assign", json!({ "server": server }), &op).await?
                }
                None => action(client, CloudKind::FloatingIp, id, "unassign", json!({}), &op).await?,
            }
            changed = true;
        }
    }
    changed |= protect_if_changed(client, id, live, desired).await?;
    Ok(changed)
}

pub(super) fn observe_floating(live: &Value) -> Map<String, Value> {
    let mut attrs = Map::new();
    attrs.insert("type".into(), name_of(live, "/type"));
    attrs.insert("home_location".into(), name_of(live, "/home_location/name"));
    attrs.insert("server".into(), id_at(live, "/server"));
    attrs.insert("description".into(), name_of(live, "/description"));
    attrs.insert("delete_protection".into(), name_of(live, "/protection/delete"));
    attrs.insert("ip_address".into(), name_of(live, "/ip"));
    attrs
}
