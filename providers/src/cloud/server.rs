//! Servers: create with networks, firewalls, placement group, SSH keys and cloud-init in one call;
//! in place: name and labels (`PUT`), `change_type` and placement group (powered off meanwhile),
//! network attachment, firewalls, backups and protection.

use serde_json::{Map, Value, json};

use super::wire::{as_id, id_at, name_of};
use super::{CloudKind, Desired, action, protect_if_changed, put_if_changed};
use crate::client::{ApiError, Client};

pub(super) async fn create(client: &Client, desired: &Desired) -> Result<u64, ApiError> {
    let mut body = Map::new();
    body.insert("name".into(), json!(desired.name()));
    body.insert("server_type".into(), json!(desired.str("server_type")));
    body.insert("image".into(), json!(desired.str("image").unwrap_or("ubuntu-24.04")));
    if let Some(location) = desired.str("location") {
        body.insert("location".into(), json!(location));
    }
    body.insert("labels".into(), desired.labels_json());
    if let Some(user_data) = desired.str("user_data") {
        body.insert("user_data".into(), json!(user_data));
    }
    body.insert("ssh_keys".into(), json!(desired.ids("ssh_keys")));
    // A fixed private IP needs `attach_to_network`, done by the update after the create.
    if let Some(network) = desired.id("network")
        && !desired.has("private_ip")
    {
        body.insert("networks".into(), json!([network]));
    }
    let firewalls: Vec<Value> = desired.ids("firewalls").into_iter().map(|id| json!({ "firewall": id })).collect();
    body.insert("firewalls".into(), Value::Array(firewalls));
    if let Some(group) = desired.id("placement_group") {
        body.insert("placement_group".into(), json!(group));
    }
    if let Some(public) = desired.blocks("public_net").first() {
        let mut net = Map::new();
        net.insert("enable_ipv4".into(), json!(public.get("ipv4_enabled").and_then(Value::as_bool).unwrap_or(true)));
        net.insert("enable_ipv6".into(), json!(public.get("ipv6_enabled").and_then(Value::as_bool).unwrap_or(true)));
        for key in ["ipv4", "ipv6"] {
            if let Some(id) = public.get(key).and_then(as_id) {
                net.insert(key.into(), json!(id));
            }
        }
        body.insert("public_net".into(), Value::Object(net));
    }
    super::post_create(client, desired, &Value::Object(body)).await
}

pub(super) async fn update(client: &Client, id: u64, live: &Value, desired: &Desired) -> Result<bool, ApiError> {
    let op = desired.operation("update");
    let mut changed = put_if_changed(client, id, live, desired, Map::new()).await?;
    let running = live.get("status").and_then(Value::as_str) == Some("running");
    let type_changes = desired
        .str("server_type")
        .is_some_and(|want| live.pointer("/server_type/name").and_then(Value::as_str) != Some(want));
    let live_group = live.pointer("/placement_group/id").and_then(Value::as_u64);
    let group_changes = desired.attrs.contains_key("placement_group") && desired.id("placement_group") != live_group;
    if type_changes || group_changes {
        if running {
            action(client, CloudKind::Server, id, "poweroff", json!({}), &op).await?;
        }
        if type_changes {
            let body = json!({ "server_type": desired.str("server_type"), "upgrade_disk": false });
            action(client, CloudKind::Server, id, "change_type", body, &op).await?;
        }
        if group_changes {
            if live_group.is_some() {
                action(client, CloudKind::Server, id, "remove_from_placement_group", json!({}), &op).await?;
            }
            if let Some(group) = desired.id("placement_group") {
                let body = json!({ "placement_group": group });
                action(client, CloudKind::Server, id, "add_to_placement_group", body, &op).await?;
            }
        }
        if running {
            action(client, CloudKind::Server, id, "poweron", json!({}), &op).await?;
        }
        changed = true;
    }
    if desired.attrs.contains_key("network") {
        let live_network = live.pointer("/private_net/0/network").and_then(Value::as_u64);
        let live_ip = live.pointer("/private_net/0/ip").and_then(Value::as_str);
        let want_network = desired.id("network");
        let want_ip = desired.str("private_ip");
        let ip_differs = want_ip.is_some() && want_ip != live_ip;
        if want_network != live_network || (want_network.is_some() && ip_differs) {
            if let Some(old) = live_network {
                action(client, CloudKind::Server, id, "detach_from_network", json!({ "network": old }), &op).await?;
            }
            if let Some(network) = want_network {
                let mut body = json!({ "network": network });
                if let Some(ip) = want_ip {
                    body["ip"] = json!(ip);
                }
                action(client, CloudKind::Server, id, "attach_to_network", body, &op).await?;
            }
            changed = true;
        }
    }
    if desired.attrs.contains_key("firewalls") {
        let live_ids: Vec<u64> = live
            .pointer("/public_net/firewalls")
            .and_then(Value::as_array)
            .map(|l| l.iter().filter_map(|f| f.get("id").and_then(Value::as_u64)).collect())
            .unwrap_or_default();
        let want = desired.ids("firewalls");
        let target = json!([{ "type": "server", "server": { "id": id } }]);
        for old in live_ids.iter().filter(|f| !want.contains(f)) {
            let body = json!({ "remove_from": target });
            action(client, CloudKind::Firewall, *old, "remove_from_resources", body, &op).await?;
            changed = true;
        }
        for new in want.iter().filter(|f| !live_ids.contains(f)) {
            action(client, CloudKind::Firewall, *new, "apply_to_resources", json!({ "apply_to": target }), &op).await?;
            changed = true;
        }
    }
    if let Some(want) = desired.bool("backups") {
        let have = live.get("backup_window").is_some_and(|w| !w.is_null());
        if want != have {
            let command = if want { "enable_backup" } else { "disable_backup" };
            action(client, CloudKind::Server, id, command, json!({}), &op).await?;
            changed = true;
        }
    }
    changed |= protect_if_changed(client, id, live, desired).await?;
    Ok(changed)
}

pub(super) fn observe(live: &Value) -> Map<String, Value> {
    let mut attrs = Map::new();
    attrs.insert("server_type".into(), name_of(live, "/server_type/name"));
    attrs.insert("image".into(), name_of(live, "/image/name"));
    attrs.insert("location".into(), name_of(live, "/location/name"));
    attrs.insert("network".into(), id_at(live, "/private_net/0/network"));
    attrs.insert("private_ip".into(), name_of(live, "/private_net/0/ip"));
    let firewalls: Vec<Value> = live
        .pointer("/public_net/firewalls")
        .and_then(Value::as_array)
        .map(|l| l.iter().filter_map(|f| f.get("id").cloned()).collect())
        .unwrap_or_default();
    attrs.insert("firewalls".into(), Value::Array(firewalls));
    attrs.insert("placement_group".into(), id_at(live, "/placement_group/id"));
    attrs.insert("backups".into(), json!(live.get("backup_window").is_some_and(|w| !w.is_null())));
    attrs.insert("delete_protection".into(), name_of(live, "/protection/delete"));
    attrs.insert("rebuild_protection".into(), name_of(live, "/protection/rebuild"));
    attrs.insert("ipv4_address".into(), name_of(live, "/public_net/ipv4/ip"));
    // Hetzner gives the /64; the server answers on its first address.
    let network = live.pointer("/public_net/ipv6/ip").and_then(Value::as_str);
    attrs.insert("ipv6_network".into(), network.map_or(Value::Null, |n| json!(n)));
    let address = network.and_then(|n| n.strip_suffix("/64")).map(|prefix| format!("{prefix}1"));
    attrs.insert("ipv6_address".into(), address.map_or(Value::Null, |a| json!(a)));
    attrs.insert("status".into(), name_of(live, "/status"));
    attrs
}
