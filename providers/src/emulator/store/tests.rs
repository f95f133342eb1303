//! Tests of the store without HTTP: the rules work on plain data and a given time.

#![expect(clippy::unwrap_used, reason = "a test should stop at the first unexpected value")]

use serde_json::json;

use super::super::wire::decode;
use super::{ActionStatus, ServerStatus, StaticData, Store};
use crate::pricing::Catalog;

fn store(delay_ms: i64) -> Store {
    Store::new(StaticData::from_catalog(&Catalog::embedded()), 3, delay_ms)
}

#[test]
fn ids_follow_the_seed() {
    let mut s = store(0);
    let id = s.create_placement_group(decode(&json!({ "name": "pg", "type": "spread" })).unwrap(), 0).unwrap();
    assert_eq!(id, 400_001);
}

#[test]
fn actions_progress_with_the_clock_and_settle_the_server() {
    let mut s = store(1000);
    let body = json!({ "name": "web", "server_type": "cx23", "image": "ubuntu-24.04", "location": "fsn1" });
    let (id, started) = s.create_server(decode(&body).unwrap(), 10_000).unwrap();
    let action = &s.actions[&started.action.unwrap()];
    assert_eq!(action.status(10_000), ActionStatus::Running { progress: 0 });
    assert_eq!(action.status(10_250), ActionStatus::Running { progress: 25 });
    assert_eq!(action.status(11_000), ActionStatus::Success);
    s.settle(10_999);
    assert_eq!(s.servers[&id].status, ServerStatus::Initializing);
    s.settle(11_000);
    assert_eq!(s.servers[&id].status, ServerStatus::Running);
}

#[test]
fn private_ips_skip_the_gateway_and_used_addresses() {
    let mut s = store(0);
    let body = json!({ "name": "n", "ip_range": "10.0.0.0/24",
        "subnets": [{ "type": "cloud", "ip_range": "10.0.0.0/30", "network_zone": "eu-central" }] });
    let net = s.create_network(decode(&body).unwrap(), 0).unwrap();
    // 10.0.0.0/30 has hosts .1 and .2; .1 is the gateway.
    assert_eq!(s.free_ip(net, "eu-central", None).unwrap().to_string(), "10.0.0.2");
    let server =
        json!({ "name": "a", "server_type": "cx23", "image": "ubuntu-24.04", "location": "fsn1", "networks": [net] });
    s.create_server(decode(&server).unwrap(), 0).unwrap();
    let err = s.free_ip(net, "eu-central", None).unwrap_err();
    assert_eq!(err.code.as_str(), "no_subnet_available");
    assert_eq!(s.free_ip(net, "us-east", None).unwrap_err().code.as_str(), "no_subnet_available");
}
