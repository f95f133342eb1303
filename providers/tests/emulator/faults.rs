//! Fault injection is reproducible: the same seed and the same requests give the same faults.

use serde_json::json;
use terrace_providers::emulator::{EmulatorConfig, parse_faults};

use crate::support::{Api, config};

async fn statuses(seed: u64, spec: &str, n: usize) -> Vec<u16> {
    let api = Api::start_with(EmulatorConfig { seed, faults: parse_faults(spec).unwrap(), ..config() }).await;
    let mut out = Vec::new();
    for _ in 0..n {
        out.push(api.get("/locations").await.status);
    }
    out
}

#[tokio::test]
async fn the_same_seed_injects_the_same_faults() {
    let spec = "429=0.1,500=0.1,503=0.1,timeout=0.1";
    let a = statuses(7, spec, 200).await;
    let b = statuses(7, spec, 200).await;
    let c = statuses(8, spec, 200).await;
    assert_eq!(a, b);
    assert_ne!(a, c);
    for status in [429, 500, 503, 504, 200] {
        assert!(a.contains(&status), "{status} never drawn in {a:?}");
    }
    let failed = a.iter().filter(|s| **s != 200).count();
    assert!((40..=120).contains(&failed), "{failed} faults out of 200 at p=0.4");
}

#[tokio::test]
async fn each_fault_answers_like_the_real_thing() {
    let api = Api::start_with(EmulatorConfig { faults: parse_faults("503=1").unwrap(), ..config() }).await;
    api.fails("GET", "/locations", None, 503, "service_error").await;
    let api = Api::start_with(EmulatorConfig { faults: parse_faults("500=1").unwrap(), ..config() }).await;
    api.fails("GET", "/locations", None, 500, "server_error").await;
    let api = Api::start_with(EmulatorConfig { faults: parse_faults("429=1").unwrap(), ..config() }).await;
    api.fails("GET", "/locations", None, 429, "rate_limit_exceeded").await;
    let api = Api::start_with(EmulatorConfig { faults: parse_faults("timeout=1").unwrap(), ..config() }).await;
    api.fails("GET", "/locations", None, 504, "timeout").await;
    let api = Api::start_with(EmulatorConfig { faults: parse_faults("502=1").unwrap(), ..config() }).await;
    assert_eq!(api.try_call("GET", "/locations", None).await.unwrap().status, 502);
    // `locked` and `conflict` hit only changes; reads pass.
    let api = Api::start_with(EmulatorConfig { faults: parse_faults("locked=1").unwrap(), ..config() }).await;
    assert_eq!(api.get("/locations").await.status, 200);
    api.fails("POST", "/placement_groups", Some(json!({ "name": "p", "type": "spread" })), 423, "locked").await;
    let api = Api::start_with(EmulatorConfig { faults: parse_faults("conflict=1").unwrap(), ..config() }).await;
    api.fails("POST", "/placement_groups", Some(json!({ "name": "p", "type": "spread" })), 409, "conflict").await;
}

#[tokio::test]
async fn reset_closes_the_connection_without_an_answer() {
    let api = Api::start_with(EmulatorConfig { faults: parse_faults("reset=1").unwrap(), ..config() }).await;
    let err = api.try_call("GET", "/locations", None).await.unwrap_err();
    assert!(err.is_request() || err.is_connect() || err.is_body(), "{err:?}");
    // The emulator keeps serving other connections.
    let err2 = api.try_call("GET", "/locations", None).await;
    assert!(err2.is_err());
}

#[test]
fn fault_specs_parse() {
    let f = parse_faults("429=0.05,500=0.05,reset=0.02,action_error=0.01,locked=0.01,timeout=0.01").unwrap();
    assert_eq!(f.reset, 0.02);
    assert!(parse_faults("teapot=0.1").is_err());
}
