//! Hetzner's rules and error codes: each test provokes one and checks the code the API would answer.

use std::time::Duration;

use serde_json::json;
use terrace_providers::emulator::EmulatorConfig;

use crate::support::{Api, config, server_body, ssh_public_key};

async fn server(api: &Api, name: &str, location: &str) -> u64 {
    let mut body = server_body(name);
    body["location"] = json!(location);
    if location != "fsn1" {
        body["server_type"] = json!("ccx13");
    }
    api.create("/servers", body).await["server"]["id"].as_u64().unwrap()
}

async fn network(api: &Api, name: &str, zone: &str) -> u64 {
    api.create(
        "/networks",
        json!({ "name": name, "ip_range": "10.0.0.0/16", "subnets": [{ "type": "cloud", "ip_range": "10.0.1.0/24", "network_zone": zone }] }),
    )
    .await["network"]["id"]
        .as_u64()
        .unwrap()
}

#[tokio::test]
async fn requests_need_a_bearer_token() {
    let api = Api::start().await.with_token(None);
    let r = api.fails("GET", "/servers", None, 401, "unauthorized").await;
    assert!(r.body["error"]["message"].is_string());
    let strict = Api::start_with(EmulatorConfig { token: Some("secret".into()), ..config() }).await;
    let strict = strict.with_token(Some("wrong"));
    strict.fails("GET", "/locations", None, 401, "unauthorized").await;
    let strict = strict.with_token(Some("secret"));
    assert_eq!(strict.get("/locations").await.status, 200);
}

#[tokio::test]
async fn the_hourly_budget_is_enforced_and_refills() {
    let api = Api::start_with(EmulatorConfig { hourly_budget: 3, ..config() }).await;
    for remaining in [2, 1, 0] {
        let r = api.get("/locations").await;
        assert_eq!((r.status, r.header("ratelimit-limit"), r.header("ratelimit-remaining")), (200, 3, remaining));
    }
    let refused = api.fails("GET", "/locations", None, 429, "rate_limit_exceeded").await;
    let reset = refused.header("ratelimit-reset");
    assert_eq!(reset, crate::support::START_MS / 1000 + 3);
    // The budget refills one request per second.
    api.emu.advance(Duration::from_millis(999));
    api.fails("GET", "/locations", None, 429, "rate_limit_exceeded").await;
    api.emu.advance(Duration::from_millis(1));
    assert_eq!(api.get("/locations").await.status, 200);
    api.fails("GET", "/locations", None, 429, "rate_limit_exceeded").await;
}

#[tokio::test]
async fn malformed_bodies_and_missing_fields() {
    let api = Api::start().await;
    let r = api.try_call("POST", "/ssh_keys", None).await.unwrap();
    assert_eq!((r.status, r.code()), (400, "invalid_input"));
    assert_eq!(r.body["error"]["details"]["fields"][0]["name"], "name");
    let raw = reqwest::Client::new()
        .post(format!("{}/ssh_keys", api.emu.url()))
        .bearer_auth("t")
        .body("{not json")
        .send()
        .await
        .unwrap();
    assert_eq!(raw.status().as_u16(), 400);
    let body: serde_json::Value = raw.json().await.unwrap();
    assert_eq!(body["error"]["code"], "json_error");
    crate::support::validate("/ssh_keys", "post", 400, &body);
    api.fails("GET", "/servers/12345", None, 404, "not_found").await;
    let unknown = api.try_call("GET", "/no_such_thing", None).await.unwrap();
    assert_eq!((unknown.status, unknown.code()), (404, "not_found"));
}

#[tokio::test]
async fn names_are_unique_per_kind() {
    let api = Api::start().await;
    api.create("/ssh_keys", json!({ "name": "k", "public_key": ssh_public_key(1) })).await;
    let r = api
        .fails(
            "POST",
            "/ssh_keys",
            Some(json!({ "name": "k", "public_key": ssh_public_key(2) })),
            409,
            "uniqueness_error",
        )
        .await;
    assert_eq!(r.body["error"]["details"]["fields"][0]["name"], "name");
    // Another kind may use the same name.
    api.create("/placement_groups", json!({ "name": "k", "type": "spread" })).await;
    server(&api, "web", "fsn1").await;
    api.fails("POST", "/servers", Some(server_body("web")), 409, "uniqueness_error").await;
    api.fails("POST", "/servers", Some(server_body("not a hostname")), 400, "invalid_input").await;
}

#[tokio::test]
async fn volume_sizes_locations_and_limits() {
    let api = Api::start().await;
    for size in [9, 10_241] {
        let r = api
            .fails(
                "POST",
                "/volumes",
                Some(json!({ "name": "v", "size": size, "location": "fsn1" })),
                400,
                "invalid_input",
            )
            .await;
        assert_eq!(r.body["error"]["details"]["fields"][0]["name"], "size");
    }
    let fsn = server(&api, "s1", "fsn1").await;
    let vol = api.create("/volumes", json!({ "name": "v", "size": 50, "location": "nbg1" })).await;
    let vid = vol["volume"]["id"].as_u64().unwrap();
    // Volume and server must share a location.
    api.fails("POST", &format!("/volumes/{vid}/actions/attach"), Some(json!({ "server": fsn })), 400, "invalid_input")
        .await;
    // Volumes only grow.
    api.fails("POST", &format!("/volumes/{vid}/actions/resize"), Some(json!({ "size": 40 })), 400, "invalid_input")
        .await;
    api.act(&format!("/volumes/{vid}/actions/resize"), json!({ "size": 60 })).await;
    assert_eq!(api.ok(&format!("/volumes/{vid}")).await["volume"]["size"], 60);
    // At most 16 per server.
    for i in 0..16 {
        api.create("/volumes", json!({ "name": format!("v{i}"), "size": 10, "server": fsn })).await;
    }
    api.fails(
        "POST",
        "/volumes",
        Some(json!({ "name": "v16", "size": 10, "server": fsn })),
        403,
        "resource_limit_exceeded",
    )
    .await;
    // An attached volume is not deleted; a protected one neither.
    let attached = api.ok("/volumes?name=v0").await["volumes"][0]["id"].as_u64().unwrap();
    api.fails("DELETE", &format!("/volumes/{attached}"), None, 422, "resource_in_use").await;
    api.act(&format!("/volumes/{vid}/actions/change_protection"), json!({ "delete": true })).await;
    api.fails("DELETE", &format!("/volumes/{vid}"), None, 423, "protected").await;
    api.act(&format!("/volumes/{vid}/actions/change_protection"), json!({ "delete": false })).await;
    assert_eq!(api.delete(&format!("/volumes/{vid}")).await.status, 204);
}

#[tokio::test]
async fn servers_join_networks_only_with_a_subnet_in_their_zone() {
    let api = Api::start().await;
    let eu = network(&api, "eu", "eu-central").await;
    let ash = server(&api, "us", "ash").await;
    api.fails(
        "POST",
        &format!("/servers/{ash}/actions/attach_to_network"),
        Some(json!({ "network": eu })),
        422,
        "no_subnet_available",
    )
    .await;
    let mut body = server_body("us2");
    body["location"] = json!("ash");
    body["server_type"] = json!("ccx13");
    body["networks"] = json!([eu]);
    api.fails("POST", "/servers", Some(body), 422, "no_subnet_available").await;

    // Private IPs come from the subnet, after the gateway.
    let fsn = server(&api, "eu1", "fsn1").await;
    api.act(&format!("/servers/{fsn}/actions/attach_to_network"), json!({ "network": eu })).await;
    let s = api.ok(&format!("/servers/{fsn}")).await;
    assert_eq!(s["server"]["private_net"][0]["ip"], "10.0.1.1");
    assert_eq!(api.ok(&format!("/networks/{eu}")).await["network"]["subnets"][0]["gateway"], "10.0.0.1");
    api.fails(
        "POST",
        &format!("/servers/{fsn}/actions/attach_to_network"),
        Some(json!({ "network": eu })),
        422,
        "server_already_attached",
    )
    .await;

    // A network in use is not deleted; a protected one neither.
    api.fails("DELETE", &format!("/networks/{eu}"), None, 422, "resource_in_use").await;
    api.act(&format!("/servers/{fsn}/actions/detach_from_network"), json!({ "network": eu })).await;
    api.act(&format!("/networks/{eu}/actions/change_protection"), json!({ "delete": true })).await;
    api.fails("DELETE", &format!("/networks/{eu}"), None, 423, "protected").await;

    // Ranges only grow; subnets stay inside and apart.
    api.fails(
        "POST",
        &format!("/networks/{eu}/actions/change_ip_range"),
        Some(json!({ "ip_range": "10.0.0.0/24" })),
        400,
        "invalid_input",
    )
    .await;
    api.fails(
        "POST",
        &format!("/networks/{eu}/actions/add_subnet"),
        Some(json!({ "type": "cloud", "ip_range": "10.9.0.0/24", "network_zone": "eu-central" })),
        400,
        "invalid_input",
    )
    .await;
    api.fails(
        "POST",
        &format!("/networks/{eu}/actions/add_subnet"),
        Some(json!({ "type": "cloud", "ip_range": "10.0.1.0/25", "network_zone": "eu-central" })),
        400,
        "invalid_input",
    )
    .await;
    api.fails("POST", "/networks", Some(json!({ "name": "public", "ip_range": "8.8.0.0/16" })), 400, "invalid_input")
        .await;
}

#[tokio::test]
async fn change_type_and_placement_need_a_stopped_server() {
    let api = Api::start().await;
    let id = server(&api, "s", "fsn1").await;
    api.fails(
        "POST",
        &format!("/servers/{id}/actions/change_type"),
        Some(json!({ "server_type": "cx33" })),
        422,
        "server_not_stopped",
    )
    .await;
    let pg = api.create("/placement_groups", json!({ "name": "pg", "type": "spread" })).await["placement_group"]["id"]
        .as_u64()
        .unwrap();
    api.fails(
        "POST",
        &format!("/servers/{id}/actions/add_to_placement_group"),
        Some(json!({ "placement_group": pg })),
        422,
        "server_not_stopped",
    )
    .await;
    api.act(&format!("/servers/{id}/actions/poweroff"), json!({})).await;
    // A smaller disk or another architecture does not fit.
    api.fails(
        "POST",
        &format!("/servers/{id}/actions/change_type"),
        Some(json!({ "server_type": "cax11" })),
        422,
        "invalid_server_type",
    )
    .await;
    api.act(&format!("/servers/{id}/actions/change_type"), json!({ "server_type": "cx33", "upgrade_disk": true }))
        .await;
    let s = api.ok(&format!("/servers/{id}")).await;
    assert_eq!(s["server"]["server_type"]["name"], "cx33");
    api.fails(
        "POST",
        &format!("/servers/{id}/actions/change_type"),
        Some(json!({ "server_type": "cx23" })),
        422,
        "invalid_server_type",
    )
    .await;
    api.act(&format!("/servers/{id}/actions/change_protection"), json!({ "delete": true })).await;
    api.fails("DELETE", &format!("/servers/{id}"), None, 423, "protected").await;
}

#[tokio::test]
async fn firewalls_are_limited_to_five_per_server() {
    let api = Api::start().await;
    let id = server(&api, "s", "fsn1").await;
    let mut ids = Vec::new();
    for i in 0..6 {
        let fw = api.create("/firewalls", json!({ "name": format!("fw{i}") })).await;
        ids.push(fw["firewall"]["id"].as_u64().unwrap());
    }
    for fw in &ids[..5] {
        api.act(
            &format!("/firewalls/{fw}/actions/apply_to_resources"),
            json!({ "apply_to": [{ "type": "server", "server": { "id": id } }] }),
        )
        .await;
    }
    api.fails(
        "POST",
        &format!("/firewalls/{}/actions/apply_to_resources", ids[5]),
        Some(json!({ "apply_to": [{ "type": "server", "server": { "id": id } }] })),
        403,
        "resource_limit_exceeded",
    )
    .await;
    api.fails(
        "POST",
        &format!("/firewalls/{}/actions/apply_to_resources", ids[0]),
        Some(json!({ "apply_to": [{ "type": "server", "server": { "id": id } }] })),
        422,
        "firewall_already_applied",
    )
    .await;
    api.fails("DELETE", &format!("/firewalls/{}", ids[0]), None, 422, "resource_in_use").await;
    api.fails(
        "POST",
        "/firewalls",
        Some(
            json!({ "name": "bad", "rules": [{ "direction": "in", "protocol": "tcp", "source_ips": ["0.0.0.0/0"] }] }),
        ),
        400,
        "invalid_input",
    )
    .await;
    let s = api.ok(&format!("/servers/{id}")).await;
    assert_eq!(s["server"]["public_net"]["firewalls"].as_array().unwrap().len(), 5);
}

#[tokio::test]
async fn private_load_balancer_targets_need_a_shared_network() {
    let api = Api::start().await;
    let net = network(&api, "n", "eu-central").await;
    let id = server(&api, "s", "fsn1").await;
    let lonely = api
        .create("/load_balancers", json!({ "name": "lonely", "load_balancer_type": "lb11", "location": "fsn1" }))
        .await;
    let lonely = lonely["load_balancer"]["id"].as_u64().unwrap();
    let target = json!({ "type": "server", "server": { "id": id }, "use_private_ip": true });
    api.fails(
        "POST",
        &format!("/load_balancers/{lonely}/actions/add_target"),
        Some(target.clone()),
        422,
        "load_balancer_not_attached_to_network",
    )
    .await;
    let lb = api
        .create(
            "/load_balancers",
            json!({ "name": "lb", "load_balancer_type": "lb11", "location": "fsn1", "network": net }),
        )
        .await;
    let lb = lb["load_balancer"]["id"].as_u64().unwrap();
    api.fails(
        "POST",
        &format!("/load_balancers/{lb}/actions/add_target"),
        Some(target.clone()),
        422,
        "server_not_attached_to_network",
    )
    .await;
    api.act(&format!("/servers/{id}/actions/attach_to_network"), json!({ "network": net })).await;
    api.act(&format!("/load_balancers/{lb}/actions/add_target"), target.clone()).await;
    api.fails("POST", &format!("/load_balancers/{lb}/actions/add_target"), Some(target), 422, "target_already_defined")
        .await;
    let svc = json!({ "protocol": "tcp", "listen_port": 22, "destination_port": 22, "proxyprotocol": false });
    api.act(&format!("/load_balancers/{lb}/actions/add_service"), svc.clone()).await;
    api.fails("POST", &format!("/load_balancers/{lb}/actions/add_service"), Some(svc), 422, "source_port_already_used")
        .await;
    api.act(&format!("/load_balancers/{lb}/actions/change_protection"), json!({ "delete": true })).await;
    api.fails("DELETE", &format!("/load_balancers/{lb}"), None, 423, "protected").await;
    // lb11 allows 5 services.
    for port in 1..=4 {
        api.act(
            &format!("/load_balancers/{lb}/actions/add_service"),
            json!({ "protocol": "tcp", "listen_port": 1000 + port, "destination_port": 80, "proxyprotocol": false }),
        )
        .await;
    }
    api.fails(
        "POST",
        &format!("/load_balancers/{lb}/actions/add_service"),
        Some(json!({ "protocol": "tcp", "listen_port": 2000, "destination_port": 80, "proxyprotocol": false })),
        403,
        "resource_limit_exceeded",
    )
    .await;
}

#[tokio::test]
async fn primary_and_floating_ips_follow_their_rules() {
    let api = Api::start().await;
    let id = server(&api, "s", "fsn1").await;
    let s = api.ok(&format!("/servers/{id}")).await;
    let v4 = s["server"]["public_net"]["ipv4"]["ip"].as_str().unwrap().to_owned();
    assert!(v4.starts_with("49.12."), "{v4}");
    assert!(s["server"]["public_net"]["ipv6"]["ip"].as_str().unwrap().ends_with("::/64"));
    let v4_id = s["server"]["public_net"]["ipv4"]["id"].as_u64().unwrap();
    api.fails("POST", &format!("/primary_ips/{v4_id}/actions/unassign"), Some(json!({})), 422, "server_not_stopped")
        .await;
    api.fails("DELETE", &format!("/primary_ips/{v4_id}"), None, 422, "must_be_unassigned").await;
    let other = api
        .create("/primary_ips", json!({ "name": "p", "type": "ipv4", "assignee_type": "server", "location": "fsn1" }))
        .await;
    let other = other["primary_ip"]["id"].as_u64().unwrap();
    api.act(&format!("/servers/{id}/actions/poweroff"), json!({})).await;
    api.fails(
        "POST",
        &format!("/primary_ips/{other}/actions/assign"),
        Some(json!({ "assignee_id": id, "assignee_type": "server" })),
        422,
        "server_has_ipv4",
    )
    .await;
    let fip = api.create("/floating_ips", json!({ "type": "ipv4", "home_location": "hel1", "server": id })).await;
    let fid = fip["floating_ip"]["id"].as_u64().unwrap();
    assert!(fip["action"].is_object());
    api.fails("DELETE", &format!("/floating_ips/{fid}"), None, 422, "must_be_unassigned").await;
    // Deleting the server releases what it held: its auto-deleted primary IPs go with it.
    assert_eq!(api.delete(&format!("/servers/{id}")).await.status, 200);
    api.fails("GET", &format!("/primary_ips/{v4_id}"), None, 404, "not_found").await;
    assert!(api.ok(&format!("/floating_ips/{fid}")).await["floating_ip"]["server"].is_null());
}
