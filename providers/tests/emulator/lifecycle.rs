//! Actions run from `running` to `success` (or `error`) as the clock passes their end, and move the
//! objects they act on through their states.

use std::time::Duration;

use serde_json::json;

use crate::support::{Api, config, server_body};

fn slow() -> terrace_providers::emulator::EmulatorConfig {
    terrace_providers::emulator::EmulatorConfig { action_delay: Duration::from_millis(1000), ..config() }
}

#[tokio::test]
async fn a_server_initializes_then_runs_and_its_action_reports_progress() {
    let api = Api::start_with(slow()).await;
    let created = api.create("/servers", server_body("web")).await;
    let id = created["server"]["id"].as_u64().unwrap();
    let action = created["action"]["id"].as_u64().unwrap();
    assert_eq!(created["server"]["status"], "initializing");
    assert_eq!(created["action"]["status"], "running");
    assert_eq!(created["action"]["progress"], 0);
    assert_eq!(created["action"]["started"], "2026-01-01T00:00:00+00:00");
    assert_eq!(created["next_actions"][0]["command"], "start_server");
    assert_eq!(created["server"]["created"], "2026-01-01T00:00:00+00:00");
    // Ids come from the seeded counter: seed 1 starts at 200_000.
    assert_eq!(id, 200_001);

    api.emu.advance(Duration::from_millis(500));
    let half = api.ok(&format!("/actions/{action}")).await;
    assert_eq!((half["action"]["status"].as_str(), half["action"]["progress"].as_u64()), (Some("running"), Some(50)));
    assert_eq!(api.ok(&format!("/servers/{id}")).await["server"]["locked"], true);

    api.emu.advance(Duration::from_millis(500));
    let done = api.ok(&format!("/actions/{action}")).await;
    assert_eq!(done["action"]["status"], "success");
    assert_eq!(done["action"]["progress"], 100);
    assert_eq!(done["action"]["finished"], "2026-01-01T00:00:01+00:00");
    let server = api.ok(&format!("/servers/{id}")).await;
    assert_eq!(server["server"]["status"], "running");
    assert_eq!(server["server"]["locked"], false);

    let off = api.act(&format!("/servers/{id}/actions/poweroff"), json!({})).await;
    assert_eq!(api.ok(&format!("/servers/{id}")).await["server"]["status"], "stopping");
    // A second action on a busy server is refused until the first ends.
    api.fails("POST", &format!("/servers/{id}/actions/poweron"), Some(json!({})), 423, "locked").await;
    api.emu.advance(Duration::from_secs(1));
    assert_eq!(api.ok(&format!("/servers/{id}")).await["server"]["status"], "off");
    let off_id = off["action"]["id"].as_u64().unwrap();
    let both = api.ok(&format!("/actions?id={action}&id={off_id}")).await;
    assert_eq!(both["actions"].as_array().unwrap().len(), 2);
}

#[tokio::test]
async fn injected_action_errors_end_in_error_with_a_code() {
    let mut cfg = slow();
    cfg.faults = terrace_providers::emulator::parse_faults("action_error=1").unwrap();
    let api = Api::start_with(cfg).await;
    let created = api.create("/servers", server_body("web")).await;
    let id = created["server"]["id"].as_u64().unwrap();
    api.finish_actions();
    let action = api.ok(&format!("/actions/{}", created["action"]["id"])).await;
    assert_eq!(action["action"]["status"], "error");
    assert_eq!(action["action"]["error"]["code"], "action_failed");
    // A failed create leaves the server off rather than running.
    assert_eq!(api.ok(&format!("/servers/{id}")).await["server"]["status"], "off");
}

#[tokio::test]
async fn volumes_are_creating_until_their_action_ends() {
    let api = Api::start_with(slow()).await;
    let vol = api.create("/volumes", json!({ "name": "v", "size": 10, "location": "nbg1" })).await;
    assert_eq!(vol["volume"]["status"], "creating");
    let id = vol["volume"]["id"].as_u64().unwrap();
    api.fails("POST", &format!("/volumes/{id}/actions/resize"), Some(json!({ "size": 20 })), 423, "locked").await;
    api.finish_actions();
    assert_eq!(api.ok(&format!("/volumes/{id}")).await["volume"]["status"], "available");
}

#[tokio::test]
async fn the_emulator_records_the_requests_it_received() {
    let api = Api::start().await;
    api.ok("/locations?name=fsn1").await;
    api.create("/ssh_keys", json!({ "name": "k", "public_key": crate::support::ssh_public_key(1) })).await;
    let seen = api.emu.requests();
    assert_eq!(seen.len(), 2);
    assert_eq!(
        (seen[0].method.as_str(), seen[0].path.as_str(), seen[0].query.as_deref()),
        ("GET", "/v1/locations", Some("name=fsn1"))
    );
    assert_eq!((seen[1].method.as_str(), seen[1].path.as_str()), ("POST", "/v1/ssh_keys"));
}
