//! Renders the store's objects as Hetzner's JSON (the schemas of `hcloud-openapi.json`). Kept apart from
//! the store so that the domain types need not follow the wire format's nesting.

use serde_json::{Value, json};

use super::clock::rfc3339;
use super::pagination::Pagination;
use super::store::{
    Action, ActionStatus, Certificate, Datacenter, Firewall, FirewallTarget, FloatingIp, Image, LbTarget, LbType,
    LoadBalancer, Location, Network, PlacementGroup, PrimaryIp, ServerType, SshKey, Store, Volume, VolumeStatus,
};

/// Included traffic of a load balancer where the price list has none: 20 TB, Hetzner's lb11 allowance.
const DEFAULT_LB_TRAFFIC: u64 = 20 * 1024 * 1024 * 1024 * 1024;

pub(crate) fn meta(p: &Pagination) -> Value {
    json!({ "pagination": {
        "page": p.page,
        "per_page": p.per_page,
        "previous_page": p.previous_page,
        "next_page": p.next_page,
        "last_page": p.last_page,
        "total_entries": p.total_entries,
    }})
}

pub(crate) fn action(a: &Action, now: i64) -> Value {
    let status = a.status(now);
    let (status_text, progress, finished, error) = match status {
        ActionStatus::Running { progress } => ("running", progress, Value::Null, Value::Null),
        ActionStatus::Success => ("success", 100, json!(rfc3339(a.finishes)), Value::Null),
        ActionStatus::Error => (
            "error",
            100,
            json!(rfc3339(a.finishes)),
            json!({ "code": "action_failed", "message": "Action failed (injected fault)" }),
        ),
    };
    json!({
        "id": a.id,
        "command": a.command,
        "status": status_text,
        "progress": progress,
        "started": rfc3339(a.started),
        "finished": finished,
        "resources": a.resources.iter().map(|(k, id)| json!({ "id": id, "type": k.as_str() })).collect::<Vec<_>>(),
        "error": error,
    })
}

pub(crate) fn location(l: &Location) -> Value {
    json!({
        "id": l.id,
        "name": l.name,
        "description": l.description,
        "country": l.country,
        "city": l.city,
        "latitude": l.latitude,
        "longitude": l.longitude,
        "network_zone": l.network_zone,
    })
}

fn location_named(store: &Store, name: &str) -> Value {
    store.data.location(name).map_or(Value::Null, location)
}

pub(crate) fn datacenter(store: &Store, d: &Datacenter) -> Value {
    let mut supported = Vec::new();
    let mut available = Vec::new();
    for t in &store.data.server_types {
        if let Some((_, dep)) = t.locations.iter().find(|(l, _)| *l == d.location) {
            supported.push(t.id);
            if dep.is_none() {
                available.push(t.id);
            }
        }
    }
    json!({
        "id": d.id,
        "name": d.name,
        "description": d.description,
        "location": location_named(store, &d.location),
        "server_types": { "supported": supported, "available": available, "available_for_migration": available },
    })
}

fn datacenter_of(store: &Store, location: &str) -> Value {
    store.data.datacenter_of(location).map_or(Value::Null, |d| datacenter(store, d))
}

fn deprecation(d: Option<&super::store::Deprecation>) -> Value {
    d.map_or(Value::Null, |d| json!({ "announced": format!("{}T00:00:00+00:00", d.announced), "unavailable_after": format!("{}T00:00:00+00:00", d.unavailable_after) }))
}

pub(crate) fn server_type(store: &Store, t: &ServerType) -> Value {
    json!({
        "id": t.id,
        "name": t.name,
        "description": t.description,
        "category": t.category,
        "cores": t.cores,
        "memory": t.memory,
        "disk": t.disk,
        "deprecated": t.deprecation.is_some(),
        "deprecation": deprecation(t.deprecation.as_ref()),
        "prices": t.prices,
        "storage_type": t.storage_type,
        "cpu_type": t.cpu_type,
        "architecture": t.architecture,
        "locations": t.locations.iter().filter_map(|(name, dep)| {
            // `available` and `recommended` are newer than the OpenAPI description but the official
            // Python client requires them.
            store.data.location(name).map(|l| json!({
                "id": l.id,
                "name": l.name,
                "deprecation": deprecation(dep.as_ref()),
                "available": dep.is_none(),
                "recommended": dep.is_none(),
            }))
        }).collect::<Vec<_>>(),
    })
}

pub(crate) fn lb_type(t: &LbType) -> Value {
    json!({
        "id": t.id,
        "name": t.name,
        "description": t.name.to_uppercase(),
        "max_connections": t.max_connections,
        "max_services": t.max_services,
        "max_targets": t.max_targets,
        "max_assigned_certificates": t.max_assigned_certificates,
        "deprecated": null,
        "prices": t.prices,
    })
}

pub(crate) fn image(i: &Image) -> Value {
    json!({
        "id": i.id,
        "type": i.kind,
        "status": "available",
        "name": i.name,
        "description": i.description,
        "image_size": null,
        "disk_size": 5,
        "created": rfc3339(i.created),
        "created_from": null,
        "bound_to": null,
        "os_flavor": i.os_flavor,
        "os_version": i.os_version,
        "rapid_deploy": true,
        "protection": { "delete": false },
        "deprecated": null,
        "deleted": null,
        "labels": {},
        "architecture": i.architecture,
    })
}

pub(crate) fn server(store: &Store, s: &super::store::Server, now: i64) -> Value {
    let ipv4 = s.ipv4.and_then(|id| store.primary_ips.get(&id)).map_or(Value::Null, |ip| {
        json!({ "id": ip.common.id, "ip": ip.ip, "blocked": false, "dns_ptr": format!("static.{}.clients.your-server.de", ip.ip.split('.').rev().collect::<Vec<_>>().join(".")) })
    });
    let ipv6 = s
        .ipv6
        .and_then(|id| store.primary_ips.get(&id))
        .map_or(Value::Null, |ip| json!({ "id": ip.common.id, "ip": ip.ip, "blocked": false, "dns_ptr": [] }));
    let floating: Vec<u64> =
        store.floating_ips.values().filter(|f| f.server == Some(s.common.id)).map(|f| f.common.id).collect();
    let firewalls: Vec<Value> =
        store.server_firewalls(s.common.id).into_iter().map(|id| json!({ "id": id, "status": "applied" })).collect();
    let volumes: Vec<u64> =
        store.volumes.values().filter(|v| v.server == Some(s.common.id)).map(|v| v.common.id).collect();
    let load_balancers: Vec<u64> = store
        .load_balancers
        .values()
        .filter(|lb| lb_server_ids(store, lb).contains(&s.common.id))
        .map(|lb| lb.common.id)
        .collect();
    let included_traffic = store
        .data
        .server_type(&s.server_type)
        .and_then(|t| t.prices.iter().find(|p| p["location"] == s.location.as_str()))
        .and_then(|p| p["included_traffic"].as_u64());
    json!({
        "id": s.common.id,
        "name": s.common.name,
        "status": s.status.as_str(),
        "created": rfc3339(s.common.created),
        "public_net": { "ipv4": ipv4, "ipv6": ipv6, "floating_ips": floating, "firewalls": firewalls },
        "private_net": s.private_net.iter().map(|p| json!({
            "network": p.network,
            "ip": p.ip.to_string(),
            "alias_ips": p.alias_ips.iter().map(ToString::to_string).collect::<Vec<_>>(),
            "mac_address": p.mac,
        })).collect::<Vec<_>>(),
        "server_type": store.data.server_type(&s.server_type).map_or(Value::Null, |t| server_type(store, t)),
        "datacenter": datacenter_of(store, &s.location),
        "location": location_named(store, &s.location),
        "image": store.data.image_by_id(s.image).map_or(Value::Null, image),
        "iso": null,
        "rescue_enabled": false,
        "locked": store.is_locked(super::store::Kind::Server, s.common.id, now),
        "backup_window": s.backup_window,
        "outgoing_traffic": 0,
        "ingoing_traffic": 0,
        "included_traffic": included_traffic,
        "protection": { "delete": s.common.protect_delete, "rebuild": s.protect_rebuild },
        "labels": s.common.labels,
        "volumes": volumes,
        "load_balancers": load_balancers,
        "primary_disk_size": s.primary_disk_size,
        "placement_group": s.placement_group.and_then(|id| store.placement_groups.get(&id)).map_or(Value::Null, |pg| placement_group(store, pg)),
    })
}

pub(crate) fn volume(store: &Store, v: &Volume) -> Value {
    json!({
        "id": v.common.id,
        "created": rfc3339(v.common.created),
        "name": v.common.name,
        "server": v.server,
        "location": location_named(store, &v.location),
        "size": v.size,
        "linux_device": format!("/dev/disk/by-id/scsi-0HC_Volume_{}", v.common.id),
        "protection": { "delete": v.common.protect_delete },
        "labels": v.common.labels,
        "status": if v.status == VolumeStatus::Creating { "creating" } else { "available" },
        "format": v.format,
    })
}

pub(crate) fn network(store: &Store, n: &Network) -> Value {
    let id = n.common.id;
    json!({
        "id": id,
        "name": n.common.name,
        "ip_range": n.ip_range.to_string(),
        "subnets": n.subnets.iter().map(|s| {
            let mut v = json!({
                "type": s.kind,
                "ip_range": s.ip_range.to_string(),
                "network_zone": s.network_zone,
                "gateway": s.gateway.to_string(),
            });
            if s.kind == "vswitch" {
                v["vswitch_id"] = json!(s.vswitch_id);
            }
            v
        }).collect::<Vec<_>>(),
        "routes": n.routes.iter().map(|r| json!({ "destination": r.destination.to_string(), "gateway": r.gateway.to_string() })).collect::<Vec<_>>(),
        "servers": store.servers.values().filter(|s| s.private_net.iter().any(|p| p.network == id)).map(|s| s.common.id).collect::<Vec<_>>(),
        "load_balancers": store.load_balancers.values().filter(|lb| lb.private_net.iter().any(|(net, _)| *net == id)).map(|lb| lb.common.id).collect::<Vec<_>>(),
        "protection": { "delete": n.common.protect_delete },
        "labels": n.common.labels,
        "created": rfc3339(n.common.created),
        "expose_routes_to_vswitch": n.expose_routes_to_vswitch,
    })
}

pub(crate) fn firewall(store: &Store, f: &Firewall) -> Value {
    let applied: Vec<Value> = f
        .applied_to
        .iter()
        .map(|t| match t {
            FirewallTarget::Server(id) => json!({ "type": "server", "server": { "id": id } }),
            FirewallTarget::LabelSelector(sel) => json!({
                "type": "label_selector",
                "label_selector": { "selector": sel },
                "applied_to_resources": store.selector_servers(sel).into_iter().map(|id| json!({ "type": "server", "server": { "id": id } })).collect::<Vec<_>>(),
            }),
        })
        .collect();
    json!({
        "id": f.common.id,
        "name": f.common.name,
        "labels": f.common.labels,
        "created": rfc3339(f.common.created),
        "rules": f.rules.iter().map(|r| json!({
            "direction": r.direction,
            "protocol": r.protocol,
            "port": r.port,
            "source_ips": r.source_ips,
            "destination_ips": r.destination_ips,
            "description": r.description,
        })).collect::<Vec<_>>(),
        "applied_to": applied,
    })
}

pub(crate) fn placement_group(store: &Store, pg: &PlacementGroup) -> Value {
    json!({
        "id": pg.common.id,
        "name": pg.common.name,
        "labels": pg.common.labels,
        "type": "spread",
        "created": rfc3339(pg.common.created),
        "servers": store.servers.values().filter(|s| s.placement_group == Some(pg.common.id)).map(|s| s.common.id).collect::<Vec<_>>(),
    })
}

pub(crate) fn primary_ip(store: &Store, p: &PrimaryIp) -> Value {
    json!({
        "id": p.common.id,
        "name": p.common.name,
        "labels": p.common.labels,
        "created": rfc3339(p.common.created),
        "blocked": false,
        "datacenter": datacenter_of(store, &p.location),
        "location": location_named(store, &p.location),
        "ip": p.ip,
        "dns_ptr": [],
        "protection": { "delete": p.common.protect_delete },
        "type": if p.ipv6 { "ipv6" } else { "ipv4" },
        "auto_delete": p.auto_delete,
        "assignee_type": "server",
        "assignee_id": p.assignee,
    })
}

pub(crate) fn floating_ip(store: &Store, f: &FloatingIp) -> Value {
    json!({
        "id": f.common.id,
        "name": f.common.name,
        "description": f.description,
        "ip": f.ip,
        "type": if f.ipv6 { "ipv6" } else { "ipv4" },
        "server": f.server,
        "dns_ptr": [],
        "home_location": location_named(store, &f.home_location),
        "blocked": false,
        "protection": { "delete": f.common.protect_delete },
        "labels": f.common.labels,
        "created": rfc3339(f.common.created),
    })
}

pub(crate) fn ssh_key(k: &SshKey) -> Value {
    json!({
        "id": k.common.id,
        "name": k.common.name,
        "fingerprint": k.fingerprint,
        "public_key": k.public_key,
        "labels": k.common.labels,
        "created": rfc3339(k.common.created),
    })
}

pub(crate) fn certificate(store: &Store, c: &Certificate) -> Value {
    let used_by: Vec<Value> = store
        .load_balancers
        .values()
        .filter(|lb| lb.services.iter().any(|s| s.http.as_ref().is_some_and(|h| h.certificates.contains(&c.common.id))))
        .map(|lb| json!({ "id": lb.common.id, "type": "load_balancer" }))
        .collect();
    json!({
        "id": c.common.id,
        "name": c.common.name,
        "labels": c.common.labels,
        "type": "uploaded",
        "certificate": c.certificate,
        "created": rfc3339(c.common.created),
        "not_valid_before": rfc3339(c.not_valid_before),
        "not_valid_after": rfc3339(c.not_valid_after),
        "domain_names": [],
        "fingerprint": c.fingerprint,
        "status": null,
        "used_by": used_by,
    })
}

/// The servers a load balancer sends traffic to, directly or through selectors.
fn lb_server_ids(store: &Store, lb: &LoadBalancer) -> Vec<u64> {
    lb.targets
        .iter()
        .flat_map(|t| match t {
            LbTarget::Server { id, .. } => vec![*id],
            LbTarget::LabelSelector { selector, .. } => store.selector_servers(selector),
            LbTarget::Ip { .. } => Vec::new(),
        })
        .collect()
}

pub(crate) fn load_balancer(store: &Store, lb: &LoadBalancer) -> Value {
    let health = |_: u64| -> Vec<Value> {
        lb.services.iter().map(|s| json!({ "listen_port": s.listen_port, "status": "healthy" })).collect()
    };
    let targets: Vec<Value> = lb
        .targets
        .iter()
        .map(|t| match t {
            LbTarget::Server { id, use_private_ip } => json!({
                "type": "server", "server": { "id": id }, "use_private_ip": use_private_ip, "health_status": health(*id),
            }),
            LbTarget::LabelSelector { selector, use_private_ip } => json!({
                "type": "label_selector",
                "label_selector": { "selector": selector },
                "use_private_ip": use_private_ip,
                "targets": store.selector_servers(selector).into_iter().map(|id| json!({
                    "type": "server", "server": { "id": id }, "use_private_ip": use_private_ip, "health_status": health(id),
                })).collect::<Vec<_>>(),
            }),
            LbTarget::Ip { ip } => json!({ "type": "ip", "ip": { "ip": ip }, "health_status": health(0) }),
        })
        .collect();
    let lb_type_value = store.data.lb_types.iter().find(|t| t.name == lb.lb_type).map_or(Value::Null, lb_type);
    let included_traffic = store
        .data
        .lb_types
        .iter()
        .find(|t| t.name == lb.lb_type)
        .and_then(|t| t.prices.iter().find(|p| p["location"] == lb.location.as_str()))
        .and_then(|p| p["included_traffic"].as_u64())
        .unwrap_or(DEFAULT_LB_TRAFFIC);
    json!({
        "id": lb.common.id,
        "name": lb.common.name,
        "public_net": {
            "enabled": lb.public_interface,
            "ipv4": { "ip": lb.ipv4, "dns_ptr": format!("static.{}.clients.your-server.de", lb.ipv4.split('.').rev().collect::<Vec<_>>().join(".")) },
            "ipv6": { "ip": lb.ipv6, "dns_ptr": null },
        },
        "private_net": lb.private_net.iter().map(|(n, ip)| json!({ "network": n, "ip": ip.to_string() })).collect::<Vec<_>>(),
        "location": location_named(store, &lb.location),
        "load_balancer_type": lb_type_value,
        "protection": { "delete": lb.common.protect_delete },
        "labels": lb.common.labels,
        "created": rfc3339(lb.common.created),
        "services": lb.services.iter().map(|s| {
            let mut v = json!({
                "protocol": s.protocol,
                "listen_port": s.listen_port,
                "destination_port": s.destination_port,
                "proxyprotocol": s.proxyprotocol,
                "health_check": s.health_check,
            });
            if let Some(http) = &s.http {
                v["http"] = json!(http);
            }
            v
        }).collect::<Vec<_>>(),
        "targets": targets,
        "algorithm": { "type": lb.algorithm },
        "outgoing_traffic": 0,
        "ingoing_traffic": 0,
        "included_traffic": included_traffic,
    })
}
