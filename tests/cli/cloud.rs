//! A Hetzner Cloud for tests: `terrace emulator`'s server started in this process on a free
//! loopback port (its own tokio runtime), the environment that points the `terrace` binary at it,
//! and readers of what it holds. Every apply test runs the real binary against it over HTTP.

use std::collections::BTreeMap;
use std::path::Path;
use std::time::Duration;

use serde_json::Value;
use terrace_providers::emulator::{Emulator, EmulatorConfig};

use super::support::{Run, terrace_with_env};

/// The token the tests use; a test checks it never appears anywhere.
pub(crate) const TOKEN: &str = "tok-9f3c2e71d4-never-printed";

/// The Object Storage secret key the tests use: recorded in state as a secret, never printed.
pub(crate) const S3_SECRET_KEY: &str = "s3-secret-5e1b7c-never-printed";

/// The object collections terrace manages.
pub(crate) const COLLECTIONS: [&str; 10] = [
    "certificates",
    "firewalls",
    "floating_ips",
    "load_balancers",
    "networks",
    "placement_groups",
    "primary_ips",
    "servers",
    "ssh_keys",
    "volumes",
];

pub(crate) struct Cloud {
    emulator: Option<Emulator>,
    runtime: tokio::runtime::Runtime,
    http: reqwest::Client,
}

impl Cloud {
    /// An emulator whose actions take `action_delay_ms`.
    pub(crate) fn start(action_delay_ms: u64) -> Cloud {
        Cloud::with(EmulatorConfig { action_delay: Duration::from_millis(action_delay_ms), ..Default::default() })
    }

    pub(crate) fn with(config: EmulatorConfig) -> Cloud {
        let runtime = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(2)
            .enable_all()
            .build()
            .expect("a runtime for the emulator");
        let emulator = runtime
            .block_on(Emulator::start("127.0.0.1:0".parse().expect("an address"), config))
            .expect("the emulator starts");
        Cloud { emulator: Some(emulator), runtime, http: reqwest::Client::new() }
    }

    fn emulator(&self) -> &Emulator {
        self.emulator.as_ref().expect("running")
    }

    /// The environment that points terrace at this cloud.
    pub(crate) fn env(&self) -> Vec<(String, String)> {
        vec![
            ("HCLOUD_ENDPOINT".into(), self.emulator().url()),
            ("HCLOUD_TOKEN".into(), TOKEN.into()),
            ("TERRACE_S3_ENDPOINT".into(), self.emulator().s3_url()),
            ("TERRACE_S3_ACCESS_KEY".into(), "test-access-key".into()),
            ("TERRACE_S3_SECRET_KEY".into(), S3_SECRET_KEY.into()),
            // The emulator's servers are API objects, not machines: these tests cover the cloud
            // side, and the lab tests (tests/day_two) cover what terrace does on the servers.
            ("TERRACE_HOSTS".into(), "false".into()),
        ]
    }

    /// Runs `terrace ARGS` in `dir` against this cloud.
    pub(crate) fn terrace(&self, dir: &Path, args: &[&str]) -> Run {
        let env = self.env();
        let pairs: Vec<(&str, &str)> = env.iter().map(|(k, v)| (k.as_str(), v.as_str())).collect();
        terrace_with_env(dir, args, &pairs)
    }

    /// A command for `terrace ARGS` against this cloud, to spawn and kill.
    pub(crate) fn command(&self, dir: &Path, args: &[&str]) -> std::process::Command {
        let mut command = std::process::Command::new(env!("CARGO_BIN_EXE_terrace"));
        command.args(args).current_dir(dir).env("NO_COLOR", "1");
        for (key, _) in std::env::vars() {
            if key.starts_with("TERRACE_") || key.starts_with("HCLOUD_") {
                command.env_remove(key);
            }
        }
        command.envs(self.env());
        command
    }

    /// One API call, as a user's script would make it, tried again (up to 20 times) on the
    /// faults an emulator may be injecting: a refused, reset or 5xx answer.
    pub(crate) fn call(&self, method: reqwest::Method, path: &str, body: Option<Value>) -> Value {
        let url = format!("{}{path}", self.emulator().url());
        self.runtime.block_on(async {
            for _ in 0..20 {
                let mut request = self.http.request(method.clone(), &url).bearer_auth("a-hand-edit");
                if let Some(body) = &body {
                    request = request.json(body);
                }
                let Ok(response) = request.send().await else { continue };
                let status = response.status();
                let retry = status.is_server_error()
                    || status == reqwest::StatusCode::TOO_MANY_REQUESTS
                    || status == reqwest::StatusCode::LOCKED
                    || status == reqwest::StatusCode::CONFLICT;
                let Ok(text) = response.text().await else { continue };
                if retry {
                    // A spent rate limit refills one request a second.
                    let pause = if status == reqwest::StatusCode::TOO_MANY_REQUESTS { 1000 } else { 20 };
                    tokio::time::sleep(Duration::from_millis(pause)).await;
                    continue;
                }
                return if text.trim().is_empty() { Value::Null } else { serde_json::from_str(&text).expect("JSON") };
            }
            panic!("{method} {path} failed 20 times")
        })
    }

    /// Every object of a collection (all pages).
    pub(crate) fn list(&self, collection: &str) -> Vec<Value> {
        let mut items = Vec::new();
        let mut page = 1;
        loop {
            let body = self.call(reqwest::Method::GET, &format!("/{collection}?page={page}&per_page=50"), None);
            items.extend(body[collection].as_array().cloned().unwrap_or_default());
            match body.pointer("/meta/pagination/next_page").and_then(Value::as_u64) {
                Some(next) => page = next,
                None => return items,
            }
        }
    }

    /// How many objects each collection holds (empty ones left out), and the buckets.
    /// Objects with no labels of terrace's (a server's automatic primary IPs) count too.
    pub(crate) fn census(&self) -> BTreeMap<String, usize> {
        let mut counts: BTreeMap<String, usize> =
            COLLECTIONS.iter().map(|c| ((*c).to_owned(), self.list(c).len())).filter(|(_, n)| *n > 0).collect();
        let buckets = self.emulator().buckets().len();
        if buckets > 0 {
            counts.insert("buckets".into(), buckets);
        }
        counts
    }

    pub(crate) fn buckets(&self) -> Vec<String> {
        self.emulator().buckets()
    }

    /// The requests the emulator received: (method, path).
    pub(crate) fn requests(&self) -> Vec<(String, String)> {
        self.emulator().requests().into_iter().map(|r| (r.method, r.path)).collect()
    }

    /// `terrace-address` label -> ids of the objects carrying it, over every collection.
    pub(crate) fn by_address(&self) -> BTreeMap<String, Vec<(String, u64)>> {
        let mut found: BTreeMap<String, Vec<(String, u64)>> = BTreeMap::new();
        for collection in COLLECTIONS {
            for object in self.list(collection) {
                let address = object.pointer("/labels/terrace-address").and_then(Value::as_str).unwrap_or("(none)");
                let id = object["id"].as_u64().expect("an id");
                found.entry(address.to_owned()).or_default().push((collection.to_owned(), id));
            }
        }
        found
    }
}

impl Drop for Cloud {
    fn drop(&mut self) {
        if let Some(emulator) = self.emulator.take() {
            self.runtime.block_on(emulator.shutdown());
        }
    }
}

/// The recorded state in `dir`, as JSON.
pub(crate) fn state_json(dir: &Path) -> Value {
    let text = std::fs::read_to_string(dir.join("terrace.state.json")).expect("a state file");
    serde_json::from_str(&text).expect("the state is valid JSON")
}

/// Checks that the cloud holds exactly what the state records: one object per recorded address,
/// with the recorded id, and nothing else labelled for the stack.
pub(crate) fn assert_cloud_matches_state(cloud: &Cloud, dir: &Path) {
    let state = state_json(dir);
    let resources = state["resources"].as_object().expect("resources");
    let by_address = cloud.by_address();
    let mut expected = 0;
    for (address, record) in resources {
        let kind = record["kind"].as_str().expect("a kind");
        let id = record["id"].as_str().unwrap_or_else(|| panic!("{address} is recorded without an id"));
        if kind == "bucket" {
            assert!(cloud.buckets().contains(&id.to_owned()), "bucket {id} of {address} exists");
            continue;
        }
        if kind == "secret" {
            // Generated by terrace and kept only in state.
            assert!(record["attributes"]["value"].as_str().is_some_and(|v| v.len() >= 8), "{address} has a value");
            continue;
        }
        if kind == "keypair" {
            // Generated by terrace and kept only in state: an OpenSSH ed25519 key pair.
            let attributes = &record["attributes"];
            assert!(
                attributes["private_key"]
                    .as_str()
                    .is_some_and(|k| k.starts_with("-----BEGIN OPENSSH PRIVATE KEY-----")),
                "{address} has a private key"
            );
            assert!(
                attributes["public_key"].as_str().is_some_and(|k| k.starts_with("ssh-ed25519 ")),
                "{address} has a public key"
            );
            assert!(record["sensitive_attributes"].as_array().is_some_and(|s| s.contains(&"private_key".into())));
            continue;
        }
        expected += 1;
        let label = terrace_providers::cloud::label_value(address);
        let objects = by_address.get(&label).cloned().unwrap_or_default();
        assert_eq!(objects.len(), 1, "exactly one object for {address}: {objects:?}");
        assert_eq!(objects[0].1.to_string(), id, "{address} is recorded with the id of its object");
    }
    // Primary IPs Hetzner made for servers carry no labels of terrace's and are not counted.
    let managed: usize = by_address.iter().filter(|(a, _)| *a != "(none)").map(|(_, v)| v.len()).sum();
    assert_eq!(managed, expected, "no object outside the state: {by_address:?}");
}
