//! Load balancers: create with services, targets and a network; in place: `change_type`,
//! `change_algorithm`, network attachment, the public interface, services keyed by listen port
//! (`add_service` / `update_service` / `delete_service`), targets (`add_target` /
//! `remove_target`), name and labels, protection.

use serde_json::{Map, Value, json};

use super::wire::{as_ids, id_at, name_of};
use super::{CloudKind, Desired, action, protect_if_changed, put_if_changed};
use crate::client::{ApiError, Client};

fn ports(protocol: &str) -> (u64, u64) {
    match protocol {
        "https" => (443, 80),
        "http" => (80, 80),
        _ => (0, 0),
    }
}

/// A desired service in the API's shape.
fn service(block: &Map<String, Value>) -> Value {
    let protocol = block.get("protocol").and_then(Value::as_str).unwrap_or("tcp");
    let (listen_default, destination_default) = ports(protocol);
    let listen = block.get("listen_port").and_then(Value::as_u64).unwrap_or(listen_default);
    let destination = block.get("destination_port").and_then(Value::as_u64).unwrap_or(if protocol == "tcp" {
        listen
    } else {
        destination_default
    });
    let flag = |key: &str| block.get(key).and_then(Value::as_bool).unwrap_or(false);
    let mut wire = json!({
        "protocol": protocol,
        "listen_port": listen,
        "destination_port": destination,
        "proxyprotocol": flag("proxyprotocol"),
    });
    if protocol != "tcp" {
        wire["http"] = json!({
            "certificates": block.get("certificates").map(as_ids).unwrap_or_default(),
            "redirect_http": flag("redirect_http"),
            "sticky_sessions": flag("sticky_sessions"),
        });
    }
    if let Some(check) = block.get("health_check").and_then(|c| c.as_object().or_else(|| c.get(0)?.as_object())) {
        let check_protocol = check.get("protocol").and_then(Value::as_str).unwrap_or("tcp");
        let number = |key: &str, default: u64| check.get(key).and_then(Value::as_u64).unwrap_or(default);
        let mut health = json!({
            "protocol": check_protocol,
            "port": number("port", destination),
            "interval": number("interval", 15),
            "timeout": number("timeout", 10),
            "retries": number("retries", 3),
        });
        if check_protocol != "tcp" {
            let mut http = json!({
                "path": check.get("path").and_then(Value::as_str).unwrap_or("/"),
                "tls": check.get("tls").and_then(Value::as_bool).unwrap_or(false),
            });
            for key in ["domain", "response", "status_codes"] {
                if let Some(value) = check.get(key).filter(|v| !v.is_null()) {
                    http[key] = value.clone();
                }
            }
            health["http"] = http;
        }
        wire["health_check"] = health;
    }
    wire
}

/// The parts of a service both sides state, for comparing a live service with a desired one.
fn comparable(service: &Value, with_health: bool) -> Value {
    let mut out = json!({
        "protocol": service.get("protocol"),
        "listen_port": service.get("listen_port"),
        "destination_port": service.get("destination_port"),
        "proxyprotocol": service.get("proxyprotocol"),
        "redirect_http": service.pointer("/http/redirect_http").cloned().unwrap_or(json!(false)),
        "sticky_sessions": service.pointer("/http/sticky_sessions").cloned().unwrap_or(json!(false)),
        "certificates": service.pointer("/http/certificates").cloned().unwrap_or(json!([])),
    });
    if with_health {
        for key in ["protocol", "port", "interval", "timeout", "retries"] {
            out[format!("health_{key}")] =
                service.pointer(&format!("/health_check/{key}")).cloned().unwrap_or(Value::Null);
        }
        out["health_path"] = service.pointer("/health_check/http/path").cloned().unwrap_or(Value::Null);
    }
    out
}

fn targets(desired: &Desired) -> Vec<Value> {
    let mut out = Vec::new();
    for block in desired.blocks("target") {
        let private = block.get("use_private_ip").and_then(Value::as_bool).unwrap_or(false);
        if let Some(servers) = block.get("server") {
            out.extend(
                as_ids(servers)
                    .into_iter()
                    .map(|id| json!({ "type": "server", "server": { "id": id }, "use_private_ip": private })),
            );
        }
        if let Some(selector) = block.get("label_selector").and_then(Value::as_str) {
            out.push(
                json!({ "type": "label_selector", "label_selector": { "selector": selector }, "use_private_ip": private }),
            );
        }
        if let Some(ip) = block.get("ip").and_then(Value::as_str) {
            out.push(json!({ "type": "ip", "ip": { "ip": ip } }));
        }
    }
    out
}

fn live_targets(live: &Value) -> Vec<Value> {
    let list = live.get("targets").and_then(Value::as_array).cloned().unwrap_or_default();
    list.iter()
        .filter_map(|t| {
            let private = t.get("use_private_ip").and_then(Value::as_bool).unwrap_or(false);
            match t.get("type").and_then(Value::as_str) {
                Some("server") => Some(
                    json!({ "type": "server", "server": { "id": t.pointer("/server/id") }, "use_private_ip": private }),
                ),
                Some("label_selector") => Some(json!({
                    "type": "label_selector",
                    "label_selector": { "selector": t.pointer("/label_selector/selector") },
                    "use_private_ip": private,
                })),
                Some("ip") => Some(json!({ "type": "ip", "ip": { "ip": t.pointer("/ip/ip") } })),
                _ => None,
            }
        })
        .collect()
}

pub(super) async fn create(client: &Client, desired: &Desired) -> Result<u64, ApiError> {
    let mut body = json!({
        "name": desired.name(),
        "load_balancer_type": desired.str("type"),
        "labels": desired.labels_json(),
        "algorithm": { "type": desired.str("algorithm").unwrap_or("round_robin") },
        "public_interface": desired.bool("public_interface").unwrap_or(true),
        "services": desired.blocks("service").into_iter().map(service).collect::<Vec<_>>(),
        "targets": targets(desired),
    });
    if let Some(location) = desired.str("location") {
        body["location"] = json!(location);
    } else if let Some(zone) = desired.str("network_zone") {
        body["network_zone"] = json!(zone);
    }
    if let Some(network) = desired.id("network") {
        body["network"] = json!(network);
    }
    super::post_create(client, desired, &body).await
}

pub(super) async fn update(client: &Client, id: u64, live: &Value, desired: &Desired) -> Result<bool, ApiError> {
    let op = desired.operation("update");
    let lb = CloudKind::LoadBalancer;
    let mut changed = put_if_changed(client, id, live, desired, Map::new()).await?;
    if let Some(want) = desired.str("type")
        && live.pointer("/load_balancer_type/name").and_then(Value::as_str) != Some(want)
    {
        action(client, lb, id, "change_type", json!({ "load_balancer_type": want }), &op).await?;
        changed = true;
    }
    if let Some(want) = desired.str("algorithm")
        && live.pointer("/algorithm/type").and_then(Value::as_str) != Some(want)
    {
        action(client, lb, id, "change_algorithm", json!({ "type": want }), &op).await?;
        changed = true;
    }
    if desired.attrs.contains_key("network") {
        let have = live.pointer("/private_net/0/network").and_then(Value::as_u64);
        let want = desired.id("network");
        if have != want {
            if let Some(old) = have {
                action(client, lb, id, "detach_from_network", json!({ "network": old }), &op).await?;
            }
            if let Some(network) = want {
                action(client, lb, id, "attach_to_network", json!({ "network": network }), &op).await?;
            }
            changed = true;
        }
    }
    if let Some(want) = desired.bool("public_interface")
        && live.pointer("/public_net/enabled").and_then(Value::as_bool) != Some(want)
    {
        let command = if want { "enable_public_interface" } else { "disable_public_interface" };
        action(client, lb, id, command, json!({}), &op).await?;
        changed = true;
    }
    if desired.attrs.contains_key("service") {
        let have: Vec<Value> = live.get("services").and_then(Value::as_array).cloned().unwrap_or_default();
        let want: Vec<Value> = desired.blocks("service").into_iter().map(service).collect();
        let port = |s: &Value| s.get("listen_port").and_then(Value::as_u64);
        for old in &have {
            if !want.iter().any(|w| port(w) == port(old)) {
                action(client, lb, id, "delete_service", json!({ "listen_port": port(old) }), &op).await?;
                changed = true;
            }
        }
        for new in &want {
            match have.iter().find(|h| port(h) == port(new)) {
                None => {
                    action(client, lb, id, "add_service", new.clone(), &op).await?;
                    changed = true;
                }
                Some(old) => {
                    let with_health = new.get("health_check").is_some();
                    if comparable(old, with_health) != comparable(new, with_health) {
                        action(client, lb, id, "update_service", new.clone(), &op).await?;
                        changed = true;
                    }
                }
            }
        }
    }
    if desired.attrs.contains_key("target") {
        let have = live_targets(live);
        let want = targets(desired);
        for old in have.iter().filter(|t| !want.contains(t)) {
            let mut body = old.clone();
            if let Some(map) = body.as_object_mut() {
                map.remove("use_private_ip");
            }
            action(client, lb, id, "remove_target", body, &op).await?;
            changed = true;
        }
        for new in want.iter().filter(|t| !have.contains(t)) {
            action(client, lb, id, "add_target", new.clone(), &op).await?;
            changed = true;
        }
    }
    changed |= protect_if_changed(client, id, live, desired).await?;
    Ok(changed)
}

pub(super) fn observe(live: &Value) -> Map<String, Value> {
    let mut attrs = Map::new();
    attrs.insert("type".into(), name_of(live, "/load_balancer_type/name"));
    attrs.insert("location".into(), name_of(live, "/location/name"));
    attrs.insert("network".into(), id_at(live, "/private_net/0/network"));
    attrs.insert("algorithm".into(), name_of(live, "/algorithm/type"));
    attrs.insert("public_interface".into(), name_of(live, "/public_net/enabled"));
    attrs.insert("delete_protection".into(), name_of(live, "/protection/delete"));
    attrs.insert("ipv4_address".into(), name_of(live, "/public_net/ipv4/ip"));
    attrs.insert("ipv6_address".into(), name_of(live, "/public_net/ipv6/ip"));
    attrs.insert("private_ip".into(), name_of(live, "/private_net/0/ip"));
    attrs
}
