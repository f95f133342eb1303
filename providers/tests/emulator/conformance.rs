//! Drives every implemented endpoint once through real HTTP; `support::Api::call` validates each answer
//! against its operation's response schema, and the test checks that every operation was reached.

use serde_json::json;

use crate::support::{Api, CERT_PEM, KEY_PEM, server_body, ssh_public_key};

/// The operations the emulator implements (and this test exercises), as `method path-template`.
const OPERATIONS: &[&str] = &[
    "get /locations",
    "get /locations/{id}",
    "get /datacenters",
    "get /datacenters/{id}",
    "get /server_types",
    "get /server_types/{id}",
    "get /load_balancer_types",
    "get /load_balancer_types/{id}",
    "get /images",
    "get /images/{id}",
    "get /pricing",
    "get /actions",
    "get /actions/{id}",
    "post /ssh_keys",
    "get /ssh_keys",
    "get /ssh_keys/{id}",
    "put /ssh_keys/{id}",
    "delete /ssh_keys/{id}",
    "post /networks",
    "get /networks",
    "get /networks/{id}",
    "put /networks/{id}",
    "delete /networks/{id}",
    "post /networks/{id}/actions/add_subnet",
    "post /networks/{id}/actions/delete_subnet",
    "post /networks/{id}/actions/add_route",
    "post /networks/{id}/actions/delete_route",
    "post /networks/{id}/actions/change_ip_range",
    "post /networks/{id}/actions/change_protection",
    "get /networks/{id}/actions",
    "post /placement_groups",
    "get /placement_groups",
    "get /placement_groups/{id}",
    "put /placement_groups/{id}",
    "delete /placement_groups/{id}",
    "post /firewalls",
    "get /firewalls",
    "get /firewalls/{id}",
    "put /firewalls/{id}",
    "delete /firewalls/{id}",
    "post /firewalls/{id}/actions/set_rules",
    "post /firewalls/{id}/actions/apply_to_resources",
    "post /firewalls/{id}/actions/remove_from_resources",
    "post /servers",
    "get /servers",
    "get /servers/{id}",
    "put /servers/{id}",
    "delete /servers/{id}",
    "get /servers/{id}/actions",
    "get /servers/{id}/actions/{action_id}",
    "get /servers/actions",
    "get /servers/actions/{id}",
    "post /servers/{id}/actions/poweron",
    "post /servers/{id}/actions/poweroff",
    "post /servers/{id}/actions/shutdown",
    "post /servers/{id}/actions/reboot",
    "post /servers/{id}/actions/reset",
    "post /servers/{id}/actions/change_type",
    "post /servers/{id}/actions/enable_backup",
    "post /servers/{id}/actions/disable_backup",
    "post /servers/{id}/actions/attach_to_network",
    "post /servers/{id}/actions/detach_from_network",
    "post /servers/{id}/actions/add_to_placement_group",
    "post /servers/{id}/actions/remove_from_placement_group",
    "post /servers/{id}/actions/change_protection",
    "post /servers/{id}/actions/rebuild",
    "post /volumes",
    "get /volumes",
    "get /volumes/{id}",
    "put /volumes/{id}",
    "delete /volumes/{id}",
    "post /volumes/{id}/actions/attach",
    "post /volumes/{id}/actions/detach",
    "post /volumes/{id}/actions/resize",
    "post /volumes/{id}/actions/change_protection",
    "get /volumes/{id}/actions",
    "post /primary_ips",
    "get /primary_ips",
    "get /primary_ips/{id}",
    "put /primary_ips/{id}",
    "delete /primary_ips/{id}",
    "post /primary_ips/{id}/actions/assign",
    "post /primary_ips/{id}/actions/unassign",
    "post /primary_ips/{id}/actions/change_protection",
    "post /floating_ips",
    "get /floating_ips",
    "get /floating_ips/{id}",
    "put /floating_ips/{id}",
    "delete /floating_ips/{id}",
    "post /floating_ips/{id}/actions/assign",
    "post /floating_ips/{id}/actions/unassign",
    "post /floating_ips/{id}/actions/change_protection",
    "post /certificates",
    "get /certificates",
    "get /certificates/{id}",
    "put /certificates/{id}",
    "delete /certificates/{id}",
    "post /load_balancers",
    "get /load_balancers",
    "get /load_balancers/{id}",
    "put /load_balancers/{id}",
    "delete /load_balancers/{id}",
    "post /load_balancers/{id}/actions/add_service",
    "post /load_balancers/{id}/actions/update_service",
    "post /load_balancers/{id}/actions/delete_service",
    "post /load_balancers/{id}/actions/add_target",
    "post /load_balancers/{id}/actions/remove_target",
    "post /load_balancers/{id}/actions/attach_to_network",
    "post /load_balancers/{id}/actions/detach_from_network",
    "post /load_balancers/{id}/actions/change_type",
    "post /load_balancers/{id}/actions/change_algorithm",
    "post /load_balancers/{id}/actions/change_protection",
    "post /load_balancers/{id}/actions/enable_public_interface",
    "post /load_balancers/{id}/actions/disable_public_interface",
    "get /load_balancers/{id}/actions",
];

#[tokio::test]
async fn every_endpoint_answers_in_the_shape_of_the_openapi_description() {
    let api = Api::start().await;

    // Catalog.
    for kind in ["locations", "datacenters", "server_types", "load_balancer_types", "images"] {
        let list = api.ok(&format!("/{kind}?per_page=50")).await;
        let first = list[kind][0]["id"].as_u64().unwrap();
        api.ok(&format!("/{kind}/{first}")).await;
    }
    let pricing = api.ok("/pricing").await;
    assert_eq!(pricing["pricing"]["currency"], "EUR");

    // SSH keys.
    let key =
        api.create("/ssh_keys", json!({ "name": "k1", "public_key": ssh_public_key(1), "labels": { "a": "b" } })).await;
    let key_id = key["ssh_key"]["id"].as_u64().unwrap();
    api.ok("/ssh_keys").await;
    api.ok(&format!("/ssh_keys/{key_id}")).await;
    assert_eq!(api.put(&format!("/ssh_keys/{key_id}"), json!({ "name": "k1b" })).await.status, 200);

    // Networks.
    let net = api
        .create(
            "/networks",
            json!({ "name": "private", "ip_range": "10.0.0.0/16",
                    "subnets": [{ "type": "cloud", "ip_range": "10.0.1.0/24", "network_zone": "eu-central" }] }),
        )
        .await;
    let net_id = net["network"]["id"].as_u64().unwrap();
    let n = format!("/networks/{net_id}");
    api.act(&format!("{n}/actions/add_subnet"), json!({ "type": "cloud", "network_zone": "eu-central" })).await;
    api.act(
        &format!("{n}/actions/add_subnet"),
        json!({ "type": "server", "ip_range": "10.0.9.0/24", "network_zone": "eu-central" }),
    )
    .await;
    api.act(&format!("{n}/actions/delete_subnet"), json!({ "ip_range": "10.0.9.0/24" })).await;
    api.act(&format!("{n}/actions/add_route"), json!({ "destination": "10.100.1.0/24", "gateway": "10.0.1.10" })).await;
    api.act(&format!("{n}/actions/delete_route"), json!({ "destination": "10.100.1.0/24", "gateway": "10.0.1.10" }))
        .await;
    api.act(&format!("{n}/actions/change_ip_range"), json!({ "ip_range": "10.0.0.0/15" })).await;
    api.act(&format!("{n}/actions/change_protection"), json!({ "delete": true })).await;
    api.act(&format!("{n}/actions/change_protection"), json!({ "delete": false })).await;
    api.ok(&format!("{n}/actions")).await;
    api.ok(&n).await;
    api.ok("/networks").await;
    assert_eq!(api.put(&n, json!({ "labels": { "env": "test" } })).await.status, 200);
    let other = api
        .create(
            "/networks",
            json!({ "name": "other", "ip_range": "192.168.0.0/16",
                    "subnets": [{ "type": "cloud", "ip_range": "192.168.1.0/24", "network_zone": "eu-central" }] }),
        )
        .await;
    let other_id = other["network"]["id"].as_u64().unwrap();

    // Placement group and firewall.
    let pg = api.create("/placement_groups", json!({ "name": "spread", "type": "spread" })).await;
    let pg_id = pg["placement_group"]["id"].as_u64().unwrap();
    api.ok("/placement_groups").await;
    api.ok(&format!("/placement_groups/{pg_id}")).await;
    assert_eq!(api.put(&format!("/placement_groups/{pg_id}"), json!({ "name": "spread2" })).await.status, 200);
    let fw = api
        .create(
            "/firewalls",
            json!({ "name": "web", "rules": [{ "direction": "in", "protocol": "tcp", "port": "80", "source_ips": ["0.0.0.0/0", "::/0"] }] }),
        )
        .await;
    let fw_id = fw["firewall"]["id"].as_u64().unwrap();
    let f = format!("/firewalls/{fw_id}");
    api.act(
        &format!("{f}/actions/set_rules"),
        json!({ "rules": [{ "direction": "in", "protocol": "icmp", "source_ips": ["0.0.0.0/0"], "description": "ping" }] }),
    )
    .await;

    // Server with everything.
    let mut body = server_body("app-1");
    body["networks"] = json!([net_id]);
    body["firewalls"] = json!([{ "firewall": fw_id }]);
    body["placement_group"] = json!(pg_id);
    body["labels"] = json!({ "role": "app" });
    body["user_data"] = json!("#cloud-config\n");
    let server = api.create("/servers", body).await;
    assert!(server["root_password"].is_string());
    let sid = server["server"]["id"].as_u64().unwrap();
    let s = format!("/servers/{sid}");
    api.ok("/servers").await;
    let got = api.ok(&s).await;
    assert_eq!(got["server"]["status"], "running");
    assert_eq!(api.put(&s, json!({ "name": "app-one", "labels": { "role": "app" } })).await.status, 200);
    let with_key = api.create("/servers", json!({ "name": "app-2", "server_type": "cx23", "image": "debian-12", "location": "fsn1", "ssh_keys": ["k1b"] })).await;
    assert!(with_key["root_password"].is_null());
    let sid2 = with_key["server"]["id"].as_u64().unwrap();

    for action in ["reboot", "reset", "shutdown", "poweron", "poweroff"] {
        api.act(&format!("{s}/actions/{action}"), json!({})).await;
    }
    api.act(&format!("{s}/actions/change_type"), json!({ "server_type": "cx33", "upgrade_disk": false })).await;
    api.act(&format!("{s}/actions/remove_from_placement_group"), json!({})).await;
    api.act(&format!("{s}/actions/add_to_placement_group"), json!({ "placement_group": pg_id })).await;
    api.act(&format!("{s}/actions/enable_backup"), json!({})).await;
    api.act(&format!("{s}/actions/disable_backup"), json!({})).await;
    api.act(&format!("{s}/actions/attach_to_network"), json!({ "network": other_id, "ip": "192.168.1.7" })).await;
    api.act(&format!("{s}/actions/detach_from_network"), json!({ "network": other_id })).await;
    api.act(&format!("{s}/actions/change_protection"), json!({ "delete": true, "rebuild": true })).await;
    api.act(&format!("{s}/actions/change_protection"), json!({ "delete": false, "rebuild": false })).await;
    let rebuilt = api.act(&format!("{s}/actions/rebuild"), json!({ "image": "ubuntu-22.04" })).await;
    assert!(rebuilt["root_password"].is_string());
    let actions = api.ok(&format!("{s}/actions?sort=id:desc")).await;
    let last = actions["actions"][0]["id"].as_u64().unwrap();
    api.ok(&format!("{s}/actions/{last}")).await;
    api.ok("/servers/actions").await;
    api.ok(&format!("/servers/actions/{last}")).await;
    api.ok(&format!("/actions/{last}")).await;
    let first = actions["actions"][1]["id"].as_u64().unwrap();
    let many = api.ok(&format!("/actions?id={first}&id={last}")).await;
    assert_eq!(many["actions"].as_array().unwrap().len(), 2);

    // Firewall application.
    api.act(
        &format!("{f}/actions/apply_to_resources"),
        json!({ "apply_to": [{ "type": "label_selector", "label_selector": { "selector": "role=app" } }] }),
    )
    .await;
    api.act(
        &format!("{f}/actions/remove_from_resources"),
        json!({ "remove_from": [{ "type": "server", "server": { "id": sid } }] }),
    )
    .await;
    api.act(
        &format!("{f}/actions/remove_from_resources"),
        json!({ "remove_from": [{ "type": "label_selector", "label_selector": { "selector": "role=app" } }] }),
    )
    .await;
    api.ok("/firewalls").await;
    api.ok(&f).await;
    assert_eq!(api.put(&f, json!({ "name": "web2" })).await.status, 200);

    // Volumes.
    let vol = api
        .create("/volumes", json!({ "name": "data", "size": 10, "server": sid, "automount": true, "format": "ext4" }))
        .await;
    assert_eq!(vol["next_actions"][0]["command"], "attach_volume");
    let vid = vol["volume"]["id"].as_u64().unwrap();
    let v = format!("/volumes/{vid}");
    api.act(&format!("{v}/actions/detach"), json!({})).await;
    api.act(&format!("{v}/actions/attach"), json!({ "server": sid, "automount": false })).await;
    api.act(&format!("{v}/actions/resize"), json!({ "size": 20 })).await;
    api.act(&format!("{v}/actions/change_protection"), json!({ "delete": false })).await;
    api.act(&format!("{v}/actions/detach"), json!({})).await;
    api.ok(&format!("{v}/actions")).await;
    api.ok("/volumes").await;
    api.ok(&v).await;
    assert_eq!(api.put(&v, json!({ "name": "data2" })).await.status, 200);

    // Primary IPs change only on a stopped server.
    api.act(&format!("{s}/actions/poweroff"), json!({})).await;
    let pip = api.create("/primary_ips", json!({ "name": "ip4", "type": "ipv4", "assignee_type": "server", "location": "fsn1", "auto_delete": false })).await;
    let pid = pip["primary_ip"]["id"].as_u64().unwrap();
    let p = format!("/primary_ips/{pid}");
    let old_v4 = api.ok(&s).await["server"]["public_net"]["ipv4"]["id"].as_u64().unwrap();
    api.act(&format!("/primary_ips/{old_v4}/actions/unassign"), json!({})).await;
    api.act(&format!("{p}/actions/assign"), json!({ "assignee_id": sid, "assignee_type": "server" })).await;
    api.act(&format!("{p}/actions/unassign"), json!({})).await;
    api.act(&format!("{p}/actions/change_protection"), json!({ "delete": false })).await;
    api.ok("/primary_ips").await;
    api.ok(&p).await;
    assert_eq!(api.put(&p, json!({ "auto_delete": true })).await.status, 200);

    // Floating IPs.
    let fip = api.create("/floating_ips", json!({ "type": "ipv4", "home_location": "fsn1", "name": "fip" })).await;
    let fid = fip["floating_ip"]["id"].as_u64().unwrap();
    let fl = format!("/floating_ips/{fid}");
    api.act(&format!("{fl}/actions/assign"), json!({ "server": sid })).await;
    api.act(&format!("{fl}/actions/unassign"), json!({})).await;
    api.act(&format!("{fl}/actions/change_protection"), json!({ "delete": false })).await;
    api.ok("/floating_ips").await;
    api.ok(&fl).await;
    assert_eq!(api.put(&fl, json!({ "description": "web" })).await.status, 200);

    // Certificates.
    let cert = api
        .create(
            "/certificates",
            json!({ "name": "tls", "type": "uploaded", "certificate": CERT_PEM, "private_key": KEY_PEM }),
        )
        .await;
    let cid = cert["certificate"]["id"].as_u64().unwrap();
    api.ok("/certificates").await;
    api.ok(&format!("/certificates/{cid}")).await;
    assert_eq!(api.put(&format!("/certificates/{cid}"), json!({ "labels": { "a": "b" } })).await.status, 200);

    // Load balancers.
    api.act(&format!("{s}/actions/poweron"), json!({})).await;
    let lb = api
        .create(
            "/load_balancers",
            json!({ "name": "web", "load_balancer_type": "lb11", "location": "fsn1", "network": net_id,
                    "algorithm": { "type": "round_robin" },
                    "services": [{ "protocol": "http", "listen_port": 80, "destination_port": 4000, "proxyprotocol": false,
                                   "health_check": { "protocol": "http", "port": 4000, "interval": 10, "timeout": 5, "retries": 3,
                                                     "http": { "domain": null, "path": "/health" } } }],
                    "targets": [{ "type": "server", "server": { "id": sid }, "use_private_ip": true }] }),
        )
        .await;
    let lid = lb["load_balancer"]["id"].as_u64().unwrap();
    let l = format!("/load_balancers/{lid}");
    api.act(&format!("{l}/actions/add_service"), json!({ "protocol": "https", "listen_port": 443, "destination_port": 4000, "proxyprotocol": false, "http": { "certificates": [cid] } })).await;
    api.act(&format!("{l}/actions/update_service"), json!({ "listen_port": 80, "destination_port": 4001 })).await;
    api.act(&format!("{l}/actions/delete_service"), json!({ "listen_port": 443 })).await;
    api.act(
        &format!("{l}/actions/add_target"),
        json!({ "type": "label_selector", "label_selector": { "selector": "role=app" } }),
    )
    .await;
    api.act(&format!("{l}/actions/add_target"), json!({ "type": "ip", "ip": { "ip": "203.0.113.5" } })).await;
    api.act(&format!("{l}/actions/remove_target"), json!({ "type": "ip", "ip": { "ip": "203.0.113.5" } })).await;
    api.act(&format!("{l}/actions/attach_to_network"), json!({ "network": other_id })).await;
    api.act(&format!("{l}/actions/detach_from_network"), json!({ "network": other_id })).await;
    api.act(&format!("{l}/actions/change_type"), json!({ "load_balancer_type": "lb21" })).await;
    api.act(&format!("{l}/actions/change_algorithm"), json!({ "type": "least_connections" })).await;
    api.act(&format!("{l}/actions/change_protection"), json!({ "delete": false })).await;
    api.act(&format!("{l}/actions/disable_public_interface"), json!({})).await;
    api.act(&format!("{l}/actions/enable_public_interface"), json!({})).await;
    api.ok(&format!("{l}/actions")).await;
    api.ok("/load_balancers").await;
    let got = api.ok(&l).await;
    assert_eq!(got["load_balancer"]["targets"][1]["targets"][0]["server"]["id"], sid);
    assert_eq!(api.put(&l, json!({ "name": "web2" })).await.status, 200);

    // Tear down.
    for path in [l.clone(), format!("/certificates/{cid}"), fl.clone(), v.clone(), format!("/ssh_keys/{key_id}")] {
        assert_eq!(api.delete(&path).await.status, 204, "DELETE {path}");
    }
    for server in [sid, sid2] {
        assert_eq!(api.delete(&format!("/servers/{server}")).await.status, 200);
    }
    for path in [p, f, format!("/placement_groups/{pg_id}"), n, format!("/networks/{other_id}")] {
        assert_eq!(api.delete(&path).await.status, 204, "DELETE {path}");
    }

    let covered = api.covered.lock().unwrap().clone();
    let missing: Vec<&&str> =
        OPERATIONS.iter().filter(|op| !covered.iter().any(|(m, t)| format!("{m} {t}") == **op)).collect();
    assert!(missing.is_empty(), "operations not exercised: {missing:?}");
}
