//! The API client against the project's emulator over real HTTP: pagination, action waits, error
//! messages, retries through injected faults, and the rate limit.

use std::time::{Duration, Instant};

use reqwest::Method;
use serde_json::json;
use terrace_providers::client::{Client, ClientConfig, Operation, RetryPolicy, Token};
use terrace_providers::emulator::{Emulator, EmulatorConfig, parse_faults};

const TOKEN: &str = "test-token-0123456789";

async fn emulator(config: EmulatorConfig) -> Emulator {
    Emulator::start("127.0.0.1:0".parse().expect("address"), config).await.expect("the emulator starts")
}

async fn emulator_with_token() -> Emulator {
    emulator(EmulatorConfig { action_delay: Duration::ZERO, token: Some(TOKEN.to_owned()), ..Default::default() }).await
}

fn client(emulator: &Emulator, retry: RetryPolicy) -> Client {
    let mut config = ClientConfig::new(&emulator.url(), Token::new(TOKEN));
    config.retry = retry;
    config.actions.first_poll = Duration::from_millis(20);
    config.actions.max_poll = Duration::from_millis(100);
    Client::new(config).expect("a client")
}

fn fast_retries() -> RetryPolicy {
    RetryPolicy { max_retries: 8, base: Duration::from_millis(5), cap: Duration::from_millis(50), budget: 1000 }
}

#[tokio::test]
async fn lists_follow_every_page() {
    let emulator = emulator(EmulatorConfig { action_delay: Duration::ZERO, ..Default::default() }).await;
    let client = client(&emulator, RetryPolicy::default());
    for i in 0..120 {
        let key = json!({ "name": format!("key-{i}"), "public_key": format!("ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAI{i:040} k{i}"), "labels": { "terrace-stack": "t" } });
        client
            .request(Method::POST, "/ssh_keys", &[], Some(&key), &Operation::new("create ssh key"))
            .await
            .expect("created");
    }
    let before = emulator.requests().len();
    let all = client
        .list_all(
            "/ssh_keys",
            "ssh_keys",
            &[("label_selector", "terrace-stack=t".to_owned())],
            &Operation::new("list ssh keys"),
        )
        .await
        .expect("listed");
    assert_eq!(all.len(), 120);
    assert_eq!(emulator.requests().len() - before, 3, "three pages of 50");
    emulator.shutdown().await;
}

#[tokio::test]
async fn actions_are_awaited_together() {
    let emulator = emulator(EmulatorConfig { action_delay: Duration::from_millis(150), ..Default::default() }).await;
    let client = client(&emulator, RetryPolicy::default());
    let mut ids = Vec::new();
    for i in 0..3 {
        let body = json!({ "name": format!("net-{i}"), "ip_range": format!("10.{i}.0.0/16") });
        let created = client
            .request(Method::POST, "/networks", &[], Some(&body), &Operation::new("create network"))
            .await
            .expect("network");
        let id = created["network"]["id"].as_u64().expect("an id");
        let change = json!({ "labels": { "x": "y" } });
        let _ = client
            .request(Method::PUT, &format!("/networks/{id}"), &[], Some(&change), &Operation::new("update"))
            .await;
        let action = client
            .request(
                Method::POST,
                &format!("/networks/{id}/actions/change_protection"),
                &[],
                Some(&json!({ "delete": true })),
                &Operation::new("protect network"),
            )
            .await
            .expect("an action");
        ids.push(action["action"]["id"].as_u64().expect("an action id"));
    }
    let start = Instant::now();
    let done = client.wait_for_actions(&ids, &Operation::new("wait")).await.expect("the actions succeed");
    assert_eq!(done.len(), 3);
    assert!(done.iter().all(|a| a["status"] == "success"));
    assert!(start.elapsed() >= Duration::from_millis(100), "waited for the running actions");
    // One request per poll for every action still running: the first asks for all three, later
    // ones only for those not finished yet.
    let polls: Vec<Vec<String>> = emulator
        .requests()
        .iter()
        .filter(|r| r.path == "/v1/actions")
        .map(|r| r.query.clone().unwrap_or_default().split('&').map(str::to_owned).collect())
        .collect();
    assert_eq!(polls.first().map(Vec::len), Some(3), "{polls:?}");
    assert!(polls.windows(2).all(|pair| pair[1].iter().all(|id| pair[0].contains(id))), "{polls:?}");
    emulator.shutdown().await;
}

#[tokio::test]
async fn errors_name_the_operation_and_never_the_token() {
    let emulator = emulator(EmulatorConfig { action_delay: Duration::ZERO, ..Default::default() }).await;
    let client = client(&emulator, RetryPolicy::default());
    let key = json!({ "name": "dup", "public_key": "ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIDupDupDupDupDupDupDupDupDupDupDupDupDupDup dup" });
    let op = Operation::new("create ssh key").on("ssh_key.admin");
    client.request(Method::POST, "/ssh_keys", &[], Some(&key), &op).await.expect("first");
    let error = client.request(Method::POST, "/ssh_keys", &[], Some(&key), &op).await.expect_err("a duplicate");
    let text = error.to_string();
    assert!(text.starts_with("create ssh key `ssh_key.admin`: Hetzner answered"), "{text}");
    assert_eq!(error.code, "uniqueness_error", "{text}");
    assert!(!text.contains(TOKEN) && !format!("{error:?}").contains(TOKEN) && !format!("{client:?}").contains(TOKEN));
    let missing = client
        .request(Method::GET, "/servers/999999", &[], None, &Operation::new("read server"))
        .await
        .expect_err("404");
    assert_eq!((missing.status, missing.code.as_str()), (Some(404), "not_found"));
    let guarded = emulator_with_token().await;
    let wrong = Client::new(ClientConfig::new(&guarded.url(), Token::new("not-the-token"))).expect("client");
    let refused =
        wrong.request(Method::GET, "/locations", &[], None, &Operation::new("list locations")).await.expect_err("401");
    assert_eq!((refused.status, refused.code.as_str()), (Some(401), "unauthorized"));
    assert_eq!(guarded.requests().len(), 1, "an authentication error is not retried");
    assert!(!refused.to_string().contains("not-the-token"));
    emulator.shutdown().await;
    guarded.shutdown().await;
}

#[tokio::test]
async fn injected_faults_are_retried_until_the_request_succeeds() {
    let faults = parse_faults("500=0.2,502=0.1,503=0.1,429=0.1").expect("a fault spec");
    let emulator =
        emulator(EmulatorConfig { action_delay: Duration::ZERO, faults, seed: 7, ..Default::default() }).await;
    let client = client(&emulator, fast_retries());
    for _ in 0..30 {
        let locations = client
            .request(Method::GET, "/locations", &[], None, &Operation::new("list locations"))
            .await
            .expect("eventually");
        assert!(locations["locations"].as_array().is_some_and(|l| !l.is_empty()));
    }
    let sent = emulator.requests().len();
    assert!(sent > 30, "faults made the client retry: {sent} requests for 30 answers");
    emulator.shutdown().await;
}

#[tokio::test]
async fn final_errors_are_not_retried_and_the_budget_bounds_retries() {
    let faults = parse_faults("500=1").expect("a fault spec");
    let emulator =
        emulator(EmulatorConfig { action_delay: Duration::ZERO, faults, seed: 1, ..Default::default() }).await;
    let mut retry = fast_retries();
    retry.budget = 3;
    let client = client(&emulator, retry);
    let error = client
        .request(Method::GET, "/locations", &[], None, &Operation::new("list locations"))
        .await
        .expect_err("always 500");
    assert!(error.to_string().contains("retry budget"), "{error}");
    assert_eq!(emulator.requests().len(), 4, "one request and three retries");
    emulator.shutdown().await;
}

#[tokio::test]
async fn a_spent_rate_limit_is_waited_for() {
    let emulator =
        emulator(EmulatorConfig { action_delay: Duration::ZERO, hourly_budget: 3, ..Default::default() }).await;
    let client = client(&emulator, RetryPolicy::default());
    let start = Instant::now();
    for _ in 0..5 {
        client
            .request(Method::GET, "/locations", &[], None, &Operation::new("list locations"))
            .await
            .expect("waits, then succeeds");
    }
    assert!(start.elapsed() >= Duration::from_millis(900), "the client waited for the budget to refill");
    assert_eq!(client.rate_limit().await.limit, Some(3));
    emulator.shutdown().await;
}

#[tokio::test]
async fn operations_in_flight_share_one_poller() {
    let emulator = emulator(EmulatorConfig { action_delay: Duration::from_millis(300), ..Default::default() }).await;
    let client = client(&emulator, RetryPolicy::default());
    let mut tasks = tokio::task::JoinSet::new();
    for i in 0..10 {
        let client = client.clone();
        tasks.spawn(async move {
            let body = json!({ "name": format!("vol-{i}"), "size": 10, "location": "fsn1" });
            let created = client
                .request(Method::POST, "/volumes", &[], Some(&body), &Operation::new("create volume"))
                .await
                .expect("a volume");
            let id = created["action"]["id"].as_u64().expect("an action");
            client.wait_for_actions(&[id], &Operation::new("wait")).await.expect("it succeeds").len()
        });
    }
    while let Some(done) = tasks.join_next().await {
        assert_eq!(done.expect("the task ends"), 1);
    }
    let polls: Vec<usize> = emulator
        .requests()
        .iter()
        .filter(|r| r.path == "/v1/actions")
        .map(|r| r.query.clone().unwrap_or_default().matches("id=").count())
        .collect();
    // Ten waits polled one by one would take at least ten requests, each for one action.
    assert!(polls.len() < 10, "{polls:?}");
    assert!(polls.iter().any(|ids| *ids >= 5), "one request reads many actions: {polls:?}");
    emulator.shutdown().await;
}

#[tokio::test]
async fn an_answer_cut_halfway_is_an_error_never_an_empty_success() {
    let faults = parse_faults("truncate=1").expect("a fault spec");
    let emulator =
        emulator(EmulatorConfig { action_delay: Duration::ZERO, faults, seed: 7, ..Default::default() }).await;
    let retry = RetryPolicy { max_retries: 2, ..fast_retries() };
    let client = client(&emulator, retry);
    // A create was carried out, but its answer was lost: final, never repeated (which would make
    // a second key), and never an empty success.
    let key = json!({ "name": "cut", "public_key": format!("ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAI{:040} k", 1) });
    let error = client
        .request(Method::POST, "/ssh_keys", &[], Some(&key), &Operation::new("create ssh key cut"))
        .await
        .expect_err("an unread answer is an error");
    assert_eq!(error.code, "response_unread", "{error}");
    assert_eq!(error.status, Some(201), "{error}");
    assert!(error.to_string().contains("create ssh key cut"), "{error}");
    let posts = emulator.requests().iter().filter(|r| r.method == "POST").count();
    assert_eq!(posts, 1, "asked once");
    // A read is asked again, each time cut: it fails as a connection error after the retries.
    let before = emulator.requests().len();
    let error = client
        .request(Method::GET, "/ssh_keys", &[], None, &Operation::new("list ssh keys"))
        .await
        .expect_err("every answer is cut");
    assert_eq!(error.code, "connection", "{error}");
    assert_eq!(emulator.requests().len() - before, 3, "asked three times");
    emulator.shutdown().await;
}
