//! Kinds with only a create, a `PUT` of name and labels, and a delete: placement groups, SSH keys
//! and certificates (everything else about them is fixed at creation).

use serde_json::{Map, Value, json};

use super::wire::name_of;
use super::{CloudKind, Desired, put_if_changed};
use crate::client::{ApiError, Client};

pub(super) async fn create(client: &Client, desired: &Desired) -> Result<u64, ApiError> {
    let name = desired.name();
    let body = match desired.kind {
        CloudKind::PlacementGroup => json!({
            "name": name, "type": desired.str("type").unwrap_or("spread"), "labels": desired.labels_json(),
        }),
        CloudKind::SshKey => json!({
            "name": name, "public_key": desired.str("public_key"), "labels": desired.labels_json(),
        }),
        _ if desired.str("type") == Some("managed") => json!({
            "name": name, "type": "managed", "domain_names": desired.attrs.get("domain_names"),
            "labels": desired.labels_json(),
        }),
        _ => json!({
            "name": name, "type": "uploaded", "certificate": desired.str("certificate"),
            "private_key": desired.str("private_key"), "labels": desired.labels_json(),
        }),
    };
    super::post_create(client, desired, &body).await
}

pub(super) async fn update(client: &Client, id: u64, live: &Value, desired: &Desired) -> Result<bool, ApiError> {
    put_if_changed(client, id, live, desired, Map::new()).await
}

pub(super) fn observe(kind: CloudKind, live: &Value) -> Map<String, Value> {
    let mut attrs = Map::new();
    match kind {
        CloudKind::PlacementGroup => {
            attrs.insert("type".into(), name_of(live, "/type"));
        }
        CloudKind::SshKey => {
            attrs.insert("public_key".into(), name_of(live, "/public_key"));
            attrs.insert("fingerprint".into(), name_of(live, "/fingerprint"));
        }
        _ => {
            attrs.insert("type".into(), name_of(live, "/type"));
            attrs.insert("fingerprint".into(), name_of(live, "/fingerprint"));
            attrs.insert("not_valid_after".into(), name_of(live, "/not_valid_after"));
        }
    }
    attrs
}
