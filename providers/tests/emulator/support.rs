//! The harness: an emulator per test (ephemeral port, seeded ids, frozen clock), a client, and the
//! OpenAPI response-schema validator every call goes through.

use std::collections::HashMap;
use std::path::PathBuf;
use std::sync::{Arc, Mutex, OnceLock};
use std::time::Duration;

use serde_json::{Map, Value, json};
use terrace_providers::emulator::{Emulator, EmulatorConfig};

/// 2026-01-01T00:00:00Z: every test's clock starts here.
pub(crate) const START_MS: i64 = 1_767_225_600_000;

/// Where the API description lives: `HCLOUD_OPENAPI`, or `../shared/hetzner/` beside the repository.
fn openapi_path() -> PathBuf {
    if let Ok(p) = std::env::var("HCLOUD_OPENAPI") {
        return PathBuf::from(p);
    }
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../shared/hetzner/hcloud-openapi.json")
}

/// OpenAPI 3.0's `nullable: true` is not JSON Schema: rewrite it as `anyOf [null, schema]`.
fn convert(value: &Value) -> Value {
    match value {
        Value::Object(map) => {
            let mut out: Map<String, Value> = map.iter().map(|(k, v)| (k.clone(), convert(v))).collect();
            if out.remove("nullable") == Some(Value::Bool(true)) {
                json!({ "anyOf": [{ "type": "null" }, Value::Object(out)] })
            } else {
                Value::Object(out)
            }
        }
        Value::Array(items) => Value::Array(items.iter().map(convert).collect()),
        other => other.clone(),
    }
}

/// Known deviations, applied to the schema so that they are visible here and nowhere else: the embedded
/// price lists have no hourly price and no included traffic for some types and locations, and serve
/// `null` there rather than a made-up number (see `providers/src/pricing/wire.rs`).
fn allow_known_deviations(value: &mut Value) {
    match value {
        Value::Object(map) => {
            let is_price_entry = map
                .get("properties")
                .and_then(Value::as_object)
                .is_some_and(|p| p.contains_key("price_hourly") && p.contains_key("price_per_tb_traffic"));
            if is_price_entry && let Some(props) = map.get_mut("properties").and_then(Value::as_object_mut) {
                for key in ["price_hourly", "included_traffic"] {
                    if let Some(schema) = props.get_mut(key) {
                        *schema = json!({ "anyOf": [{ "type": "null" }, schema.clone()] });
                    }
                }
            }
            for v in map.values_mut() {
                allow_known_deviations(v);
            }
        }
        Value::Array(items) => items.iter_mut().for_each(allow_known_deviations),
        _ => {}
    }
}

struct Spec {
    doc: Value,
    components: Value,
    templates: Vec<(String, Vec<String>)>,
    validators: Mutex<HashMap<(String, String, String), Arc<jsonschema::Validator>>>,
}

fn spec() -> &'static Spec {
    static SPEC: OnceLock<Spec> = OnceLock::new();
    SPEC.get_or_init(|| {
        let path = openapi_path();
        let text = std::fs::read_to_string(&path).unwrap_or_else(|e| {
            panic!(
                "cannot read the Hetzner OpenAPI description at {} ({e}); the tests need ../shared beside the \
                 repository, or HCLOUD_OPENAPI pointing at hcloud-openapi.json",
                path.display()
            )
        });
        let doc: Value = serde_json::from_str(&text).expect("hcloud-openapi.json is JSON");
        let mut components = convert(&doc["components"]);
        allow_known_deviations(&mut components);
        let templates = doc["paths"]
            .as_object()
            .expect("paths")
            .keys()
            .map(|k| (k.clone(), k.trim_start_matches('/').split('/').map(str::to_owned).collect()))
            .collect();
        Spec { doc, components, templates, validators: Mutex::new(HashMap::new()) }
    })
}

/// The OpenAPI path template a concrete path belongs to: same segments, most literal matches wins.
pub(crate) fn template_of(path: &str) -> String {
    let segs: Vec<&str> = path.trim_start_matches('/').split('/').collect();
    spec()
        .templates
        .iter()
        .filter(|(_, t)| t.len() == segs.len())
        .filter(|(_, t)| t.iter().zip(&segs).all(|(a, b)| a.starts_with('{') || a == b))
        .max_by_key(|(_, t)| t.iter().filter(|s| !s.starts_with('{')).count())
        .map(|(k, _)| k.clone())
        .unwrap_or_else(|| panic!("no operation in the OpenAPI description matches {path}"))
}

fn validator(template: &str, method: &str, status: &str) -> Arc<jsonschema::Validator> {
    let spec = spec();
    let key = (template.to_owned(), method.to_owned(), status.to_owned());
    if let Some(v) = spec.validators.lock().unwrap().get(&key) {
        return Arc::clone(v);
    }
    let responses = &spec.doc["paths"][template][method]["responses"];
    let response = responses.get(status).unwrap_or_else(|| {
        panic!("{method} {template} has no response {status} in the OpenAPI description (has {responses})")
    });
    let mut schema = convert(&response["content"]["application/json"]["schema"]);
    allow_known_deviations(&mut schema);
    let root = json!({ "allOf": [schema], "components": spec.components });
    let compiled = Arc::new(jsonschema::draft202012::new(&root).expect("the response schema compiles"));
    spec.validators.lock().unwrap().insert(key, Arc::clone(&compiled));
    compiled
}

/// Validates a body against the schema of `method template` for `status` (`4xx`/`5xx` for errors).
pub(crate) fn validate(template: &str, method: &str, status: u16, body: &Value) {
    let status_key = if status >= 500 {
        "5xx".to_owned()
    } else if status >= 400 {
        "4xx".to_owned()
    } else {
        status.to_string()
    };
    let v = validator(template, method, &status_key);
    let errors: Vec<String> = v.iter_errors(body).map(|e| format!("{} at {}", e, e.instance_path)).take(10).collect();
    assert!(
        errors.is_empty(),
        "{method} {template} ({status}) does not match the OpenAPI schema:\n{}\nbody: {}",
        errors.join("\n"),
        serde_json::to_string_pretty(body).unwrap()
    );
}

/// One answer.
#[derive(Debug)]
pub(crate) struct Resp {
    pub(crate) status: u16,
    pub(crate) headers: reqwest::header::HeaderMap,
    pub(crate) body: Value,
}

impl Resp {
    /// The error code of an error answer.
    pub(crate) fn code(&self) -> &str {
        self.body["error"]["code"].as_str().unwrap_or("")
    }

    pub(crate) fn header(&self, name: &str) -> i64 {
        self.headers.get(name).and_then(|v| v.to_str().ok()).and_then(|v| v.parse().ok()).unwrap_or(-1)
    }
}

/// A client bound to one emulator; records which operations it exercised.
pub(crate) struct Api {
    pub(crate) emu: Emulator,
    client: reqwest::Client,
    token: Option<String>,
    pub(crate) covered: Mutex<Vec<(String, String)>>,
}

pub(crate) fn config() -> EmulatorConfig {
    EmulatorConfig {
        action_delay: Duration::ZERO,
        seed: 1,
        start_time_ms: Some(START_MS),
        manual_clock: true,
        ..EmulatorConfig::default()
    }
}

impl Api {
    pub(crate) async fn start() -> Api {
        Api::start_with(config()).await
    }

    pub(crate) async fn start_with(config: EmulatorConfig) -> Api {
        let emu = Emulator::start("127.0.0.1:0".parse().unwrap(), config).await.expect("emulator starts");
        Api {
            emu,
            client: reqwest::Client::new(),
            token: Some("test-token".to_owned()),
            covered: Mutex::new(Vec::new()),
        }
    }

    pub(crate) fn with_token(mut self, token: Option<&str>) -> Api {
        self.token = token.map(str::to_owned);
        self
    }

    pub(crate) async fn try_call(&self, method: &str, path: &str, body: Option<Value>) -> reqwest::Result<Resp> {
        let url = format!("{}{path}", self.emu.url());
        let mut req = self.client.request(method.parse().unwrap(), &url);
        if let Some(t) = &self.token {
            req = req.bearer_auth(t);
        }
        if let Some(b) = body {
            req = req.json(&b);
        }
        let resp = req.send().await?;
        let status = resp.status().as_u16();
        let headers = resp.headers().clone();
        let text = resp.text().await?;
        let body =
            if text.is_empty() { Value::Null } else { serde_json::from_str(&text).unwrap_or(Value::String(text)) };
        Ok(Resp { status, headers, body })
    }

    /// Sends a request and validates the answer against the OpenAPI description.
    pub(crate) async fn call(&self, method: &str, path: &str, body: Option<Value>) -> Resp {
        let resp = self.try_call(method, path, body).await.expect("the emulator answers");
        let template = template_of(path.split('?').next().unwrap_or(path));
        let lower = method.to_lowercase();
        if resp.status == 204 {
            assert_eq!(resp.body, Value::Null, "204 has no body");
        } else if resp.status != 502 {
            validate(&template, &lower, resp.status, &resp.body);
        }
        for h in ["ratelimit-limit", "ratelimit-remaining", "ratelimit-reset"] {
            assert!(resp.headers.contains_key(h), "{method} {path}: no {h} header");
        }
        if resp.status < 300 {
            self.covered.lock().unwrap().push((lower, template));
        }
        resp
    }

    pub(crate) async fn get(&self, path: &str) -> Resp {
        self.call("GET", path, None).await
    }

    pub(crate) async fn post(&self, path: &str, body: Value) -> Resp {
        self.call("POST", path, Some(body)).await
    }

    pub(crate) async fn put(&self, path: &str, body: Value) -> Resp {
        self.call("PUT", path, Some(body)).await
    }

    pub(crate) async fn delete(&self, path: &str) -> Resp {
        self.call("DELETE", path, None).await
    }

    /// POST that must succeed with 201; returns the body.
    pub(crate) async fn create(&self, path: &str, body: Value) -> Value {
        let r = self.post(path, body).await;
        assert_eq!(r.status, 201, "POST {path}: {}", r.body);
        r.body
    }

    /// GET that must succeed; returns the body.
    pub(crate) async fn ok(&self, path: &str) -> Value {
        let r = self.get(path).await;
        assert_eq!(r.status, 200, "GET {path}: {}", r.body);
        r.body
    }

    /// A resource action that must be accepted (201).
    pub(crate) async fn act(&self, path: &str, body: Value) -> Value {
        let r = self.post(path, body).await;
        assert_eq!(r.status, 201, "POST {path}: {}", r.body);
        r.body
    }

    /// An answer that must be an error with this status and code.
    pub(crate) async fn fails(&self, method: &str, path: &str, body: Option<Value>, status: u16, code: &str) -> Resp {
        let r = self.call(method, path, body).await;
        assert_eq!((r.status, r.code()), (status, code), "{method} {path}: {}", r.body);
        r
    }

    /// Lets every running action finish (the clock is manual).
    pub(crate) fn finish_actions(&self) {
        self.emu.advance(Duration::from_secs(3600));
    }
}

/// A valid-looking OpenSSH public key, different per `n`.
pub(crate) fn ssh_public_key(n: u32) -> String {
    format!("ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAI{n:043} user{n}@example")
}

pub(crate) const CERT_PEM: &str =
    "-----BEGIN CERTIFICATE-----\nMIIBszCCAVmgAwIBAgIUZmFrZQ==\n-----END CERTIFICATE-----\n";
pub(crate) const KEY_PEM: &str =
    "-----BEGIN PRIVATE KEY-----\nMIGHAgEAMBMGByqGSM49AgEGCCqGSM49AwEHBG0wawIBAQQg\n-----END PRIVATE KEY-----\n";

/// The body of a minimal server in fsn1.
pub(crate) fn server_body(name: &str) -> Value {
    json!({ "name": name, "server_type": "cx23", "image": "ubuntu-24.04", "location": "fsn1" })
}
