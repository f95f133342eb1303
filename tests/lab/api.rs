//! The lab's Hetzner Cloud API: `terrace emulator` (the binary under test) on 127.0.0.1 of the lab
//! namespace, handing out public IPv4s from the lab's range, and a blocking JSON client for it that
//! the watcher and the tests share.

use std::fs;
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::time::Duration;

use serde_json::Value;

use super::sys::wait_for;

/// The token the lab's emulator accepts, and its clients send (as `HCLOUD_TOKEN`).
pub(crate) const TOKEN: &str = "terrace-lab-token";

/// A running `terrace emulator`, stopped when dropped.
pub(crate) struct Emulator {
    child: Child,
    /// `http://127.0.0.1:PORT`, without `/v1`.
    pub(crate) base: String,
}

impl Emulator {
    /// Starts the emulator and waits until it says where it serves.
    pub(crate) fn start(dir: &Path, range: &str, action_delay: Duration, hourly_budget: u32) -> Emulator {
        let log = dir.join("emulator.log");
        let out = fs::File::create(&log).expect("lab: the emulator's log file");
        let child = Command::new(env!("CARGO_BIN_EXE_terrace"))
            .args(["emulator", "--listen", "127.0.0.1:0", "--public-ipv4-range", range, "--token", TOKEN])
            .arg("--action-delay")
            .arg(action_delay.as_millis().to_string())
            .arg("--hourly-budget")
            .arg(hourly_budget.to_string())
            .env_remove("TERRACE_EMULATOR_TOKEN")
            .stdin(Stdio::null())
            .stdout(out.try_clone().expect("lab: log file"))
            .stderr(out)
            .spawn()
            .expect("lab: cannot start `terrace emulator`");
        let base = wait_for("`terrace emulator` to serve (see emulator.log)", Duration::from_secs(30), || {
            let text = fs::read_to_string(&log).unwrap_or_default();
            let url = text.split_whitespace().find(|word| word.starts_with("http://") && word.ends_with("/v1"))?;
            Some(url.trim_end_matches("/v1").to_owned())
        });
        Emulator { child, base }
    }
}

impl Drop for Emulator {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// A blocking client of the lab's emulator: JSON in and out, bearer token, bounded.
pub(crate) struct Api {
    runtime: tokio::runtime::Runtime,
    client: reqwest::Client,
    base: String,
}

/// An answer: its status, its body as sent, and as JSON (the text as a JSON string when it is not JSON).
#[derive(Debug, Clone)]
pub(crate) struct Answer {
    pub(crate) status: u16,
    pub(crate) text: String,
    pub(crate) body: Value,
}

impl Api {
    pub(crate) fn new(base: &str) -> Api {
        let runtime = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(1)
            .enable_all()
            .build()
            .expect("lab: a tokio runtime for the API client");
        let client = reqwest::Client::builder().timeout(Duration::from_secs(20)).build().expect("lab: an HTTP client");
        Api { runtime, client, base: base.to_owned() }
    }

    /// The runtime the client runs on, for tests that call async APIs (terrace's own clients).
    pub(crate) fn runtime(&self) -> &tokio::runtime::Runtime {
        &self.runtime
    }

    /// Any request; `path` starts with `/` and is under the base URL (`/v1/servers`, `/_emulator/...`).
    pub(crate) fn request(&self, method: &str, path: &str, body: Option<&Value>) -> Result<Answer, String> {
        let url = format!("{}{path}", self.base);
        let method: reqwest::Method = method.parse().map_err(|_| format!("bad method {method}"))?;
        let mut request = self.client.request(method.clone(), &url).bearer_auth(TOKEN);
        if let Some(body) = body {
            request = request.json(body);
        }
        self.runtime.block_on(async {
            let resp = request.send().await.map_err(|err| format!("{method} {url}: {err}"))?;
            let status = resp.status().as_u16();
            let text = resp.text().await.map_err(|err| format!("{method} {url}: {err}"))?;
            let body = if text.is_empty() {
                Value::Null
            } else {
                serde_json::from_str(&text).unwrap_or_else(|_| Value::String(text.clone()))
            };
            Ok(Answer { status, text, body })
        })
    }

    fn expect(&self, method: &str, path: &str, body: Option<&Value>) -> Value {
        let answer = self.request(method, path, body).unwrap_or_else(|err| panic!("lab: {err}"));
        assert!(
            (200..300).contains(&answer.status),
            "lab: {method} {path} answered {}: {}",
            answer.status,
            answer.body
        );
        answer.body
    }

    /// `GET /v1{path}`, which must succeed.
    pub(crate) fn get(&self, path: &str) -> Value {
        self.expect("GET", &format!("/v1{path}"), None)
    }

    /// `POST /v1{path}`, which must succeed; waits for the actions it started.
    pub(crate) fn post(&self, path: &str, body: &Value) -> Value {
        let answer = self.expect("POST", &format!("/v1{path}"), Some(body));
        self.wait_actions(&answer);
        answer
    }

    /// `DELETE /v1{path}`, which must succeed; waits for its action, if any.
    pub(crate) fn delete(&self, path: &str) -> Value {
        let answer = self.expect("DELETE", &format!("/v1{path}"), None);
        self.wait_actions(&answer);
        answer
    }

    /// Every object of a collection (`servers`, `volumes`, ...), all pages.
    pub(crate) fn list(&self, collection: &str) -> Result<Vec<Value>, String> {
        let mut all = Vec::new();
        for page in 1.. {
            let path = format!("/v1/{collection}?per_page=50&page={page}");
            let answer = self.request("GET", &path, None)?;
            if answer.status != 200 {
                return Err(format!("GET {path} answered {}: {}", answer.status, answer.body));
            }
            all.extend(answer.body[collection].as_array().cloned().unwrap_or_default());
            if answer.body["meta"]["pagination"]["next_page"].is_null() {
                break;
            }
        }
        Ok(all)
    }

    /// The user_data a server was created with, from the emulator's inspection endpoint.
    pub(crate) fn user_data(&self, server: u64) -> Result<Option<String>, String> {
        let answer = self.request("GET", &format!("/_emulator/servers/{server}/user_data"), None)?;
        match answer.status {
            200 => Ok(Some(answer.text)),
            404 => Ok(None),
            status => Err(format!("user_data of server {server}: {status} {}", answer.text)),
        }
    }

    /// Waits until the actions an answer names (`action`, `actions`, `next_actions`) have ended; panics
    /// when one ends in error.
    pub(crate) fn wait_actions(&self, answer: &Value) {
        let mut ids: Vec<u64> = Vec::new();
        ids.extend(answer["action"]["id"].as_u64());
        for key in ["actions", "next_actions"] {
            ids.extend(answer[key].as_array().into_iter().flatten().filter_map(|a| a["id"].as_u64()));
        }
        for id in ids {
            let action = wait_for(&format!("action {id} to end"), Duration::from_secs(60), || {
                let action = self.get(&format!("/actions/{id}"))["action"].clone();
                (action["status"] != "running").then_some(action)
            });
            assert_eq!(action["status"], "success", "lab: action {id} failed: {action}");
        }
    }
}
