//! What the emulator offers test labs beyond the API: public IPv4s from a given range
//! (`--public-ipv4-range`) and a server's `user_data` under `/_emulator/`, which the API itself never
//! answers.

use serde_json::json;
use terrace_providers::emulator::EmulatorConfig;

use crate::support::{Api, config, server_body};

fn in_range(cidr: &str) -> EmulatorConfig {
    EmulatorConfig { public_ipv4_range: Some(cidr.parse().unwrap()), ..config() }
}

/// A raw request to the emulator outside `/v1`, with or without the bearer token: (status, content type,
/// `RateLimit-Remaining`, body).
async fn inspect(api: &Api, path: &str, token: Option<&str>) -> (u16, String, i64, String) {
    let url = format!("http://{}{path}", api.emu.local_addr());
    let mut request = reqwest::Client::new().get(&url);
    if let Some(token) = token {
        request = request.bearer_auth(token);
    }
    let resp = request.send().await.expect("the emulator answers");
    let status = resp.status().as_u16();
    let header = |name: &str| resp.headers().get(name).and_then(|v| v.to_str().ok()).unwrap_or("").to_owned();
    let content_type = header("content-type");
    let remaining = header("ratelimit-remaining").parse().unwrap_or(-1);
    (status, content_type, remaining, resp.text().await.unwrap())
}

#[tokio::test]
async fn public_ipv4s_come_from_the_given_range_until_it_is_used_up() {
    // 198.18.0.0/29 holds .1 to .6; the network and broadcast addresses are never handed out.
    let api = Api::start_with(in_range("198.18.0.0/29")).await;
    let a = api.create("/servers", server_body("a")).await;
    assert_eq!(a["server"]["public_net"]["ipv4"]["ip"], "198.18.0.1");
    // Every location draws from the same range, and so do the other kinds with a public IPv4.
    let mut b = server_body("b");
    b["location"] = json!("ash");
    b["server_type"] = json!("cpx11");
    let b = api.create("/servers", b).await;
    assert_eq!(b["server"]["public_net"]["ipv4"]["ip"], "198.18.0.2");
    let primary = api
        .create("/primary_ips", json!({ "name": "p", "type": "ipv4", "location": "nbg1", "assignee_type": "server" }))
        .await;
    assert_eq!(primary["primary_ip"]["ip"], "198.18.0.3");
    let floating = api.create("/floating_ips", json!({ "type": "ipv4", "home_location": "fsn1" })).await;
    assert_eq!(floating["floating_ip"]["ip"], "198.18.0.4");
    let lb =
        api.create("/load_balancers", json!({ "name": "lb", "load_balancer_type": "lb11", "location": "fsn1" })).await;
    assert_eq!(lb["load_balancer"]["public_net"]["ipv4"]["ip"], "198.18.0.5");
    // IPv6 is not drawn from the range and does not use it up.
    let v6 = api.create("/floating_ips", json!({ "type": "ipv6", "home_location": "fsn1" })).await;
    assert!(v6["floating_ip"]["ip"].as_str().unwrap().contains(':'), "{v6}");
    api.create("/servers", server_body("c")).await;

    let full = api.fails("POST", "/servers", Some(server_body("d")), 422, "resource_unavailable").await;
    assert!(full.body["error"]["message"].as_str().unwrap().contains("198.18.0.0/29"), "{}", full.body);
    api.fails(
        "POST",
        "/floating_ips",
        Some(json!({ "type": "ipv4", "home_location": "fsn1" })),
        422,
        "resource_unavailable",
    )
    .await;
    // A server without a public IPv4 needs none of the range.
    let mut private = server_body("v6-only");
    private["public_net"] = json!({ "enable_ipv4": false, "enable_ipv6": true });
    api.create("/servers", private).await;

    // A deleted server's Primary IP goes with it, and its address is handed out again.
    api.finish_actions();
    api.delete(&format!("/servers/{}", a["server"]["id"])).await;
    let d = api.create("/servers", server_body("d")).await;
    assert_eq!(d["server"]["public_net"]["ipv4"]["ip"], "198.18.0.1");
}

#[tokio::test]
async fn without_a_range_public_ipv4s_come_from_hetzners_blocks() {
    let api = Api::start().await;
    let a = api.create("/servers", server_body("a")).await;
    assert!(a["server"]["public_net"]["ipv4"]["ip"].as_str().unwrap().starts_with("49.12."), "{a}");
}

#[tokio::test]
async fn a_servers_user_data_is_inspectable_outside_the_api_only() {
    let api = Api::start().await;
    let user_data = "#cloud-config\nruncmd:\n  - [\"sh\", \"-c\", \"echo 'ü' > /root/x\"]\n";
    let mut body = server_body("with");
    body["user_data"] = json!(user_data);
    let with = api.create("/servers", body).await["server"]["id"].as_u64().unwrap();
    let without = api.create("/servers", server_body("without")).await["server"]["id"].as_u64().unwrap();
    // The API never answers it.
    let server = api.ok(&format!("/servers/{with}")).await;
    assert!(!server.to_string().contains("cloud-config"), "{server}");

    let (status, content_type, remaining, text) =
        inspect(&api, &format!("/_emulator/servers/{with}/user_data"), Some("test-token")).await;
    assert_eq!((status, content_type.as_str(), text.as_str()), (200, "text/plain; charset=utf-8", user_data));
    // Watching the project costs no requests of its budget.
    let (_, _, again, _) = inspect(&api, &format!("/_emulator/servers/{with}/user_data"), Some("test-token")).await;
    assert_eq!(again, remaining, "inspection is not counted against the rate limit");

    let (status, _, _, text) = inspect(&api, &format!("/_emulator/servers/{without}/user_data"), Some("t")).await;
    assert_eq!(status, 404, "{text}");
    let error: serde_json::Value = serde_json::from_str(&text).unwrap();
    assert_eq!(error["error"]["code"], "not_found");
    assert_eq!(inspect(&api, "/_emulator/servers/999/user_data", Some("t")).await.0, 404);
    assert_eq!(inspect(&api, "/_emulator/servers/x/user_data", Some("t")).await.0, 400);
    assert_eq!(inspect(&api, "/_emulator/servers", Some("t")).await.0, 404);
    assert_eq!(inspect(&api, &format!("/_emulator/servers/{with}/user_data"), None).await.0, 401);

    // A rebuild with user_data replaces it; one without keeps the previous, as Hetzner documents.
    api.finish_actions();
    let path = format!("/servers/{with}/actions/rebuild");
    api.act(&path, json!({ "image": "debian-12", "user_data": "#cloud-config\n{}\n" })).await;
    let after = inspect(&api, &format!("/_emulator/servers/{with}/user_data"), Some("t")).await;
    assert_eq!((after.0, after.3.as_str()), (200, "#cloud-config\n{}\n"));
    api.finish_actions();
    api.act(&path, json!({ "image": "debian-12" })).await;
    assert_eq!(
        inspect(&api, &format!("/_emulator/servers/{with}/user_data"), Some("t")).await.3,
        "#cloud-config\n{}\n"
    );
    api.finish_actions();
    api.act(&format!("/servers/{without}/actions/rebuild"), json!({ "image": "debian-12", "user_data": "x" })).await;
    assert_eq!(inspect(&api, &format!("/_emulator/servers/{without}/user_data"), Some("t")).await.3, "x");
    api.fails(
        "POST",
        &path,
        Some(json!({ "image": "debian-12", "user_data": "x".repeat(32 * 1024 + 1) })),
        400,
        "invalid_input",
    )
    .await;
}
