//! The Hetzner Cloud API client: one executor that sends every request, in this order (as
//! hcloud-go's handler chain): wait for the rate limit, send with the token, read the `RateLimit-*`
//! headers, turn Hetzner's error envelope into an [`ApiError`], and retry what is retryable with
//! jittered exponential backoff within a retry budget. Actions are awaited together, up to 25 per
//! `GET /actions` request. The token never appears in any output, error or log.
#![expect(
    clippy::result_large_err,
    reason = "an ApiError carries the operation, resource, code, message and field problems the user needs; errors are rare next to the requests"
)]

mod actions;
mod error;
mod ratelimit;
mod retry;
mod secret;

use std::sync::Arc;
use std::time::Duration;

use reqwest::{Method, StatusCode};
use serde_json::Value;
use tokio::sync::Mutex;

pub use actions::{ActionState, ActionWait};
pub use error::ApiError;
pub use ratelimit::RateLimit;
pub use retry::RetryPolicy;
pub use secret::Token;

/// `HCLOUD_ENDPOINT`'s default.
pub const DEFAULT_ENDPOINT: &str = "https://api.hetzner.cloud/v1";

/// Where and how to reach the API.
#[derive(Debug, Clone)]
pub struct ClientConfig {
    pub endpoint: String,
    pub token: Token,
    pub retry: RetryPolicy,
    pub actions: ActionWait,
    /// Per request.
    pub timeout: Duration,
    /// The longest terrace waits for the rate limit to recover before it gives up.
    pub max_rate_limit_wait: Duration,
}

impl ClientConfig {
    /// From `HCLOUD_TOKEN` and `HCLOUD_ENDPOINT`; `None` when there is no token.
    pub fn from_env() -> Option<ClientConfig> {
        let token = std::env::var("HCLOUD_TOKEN").ok().filter(|t| !t.is_empty())?;
        let endpoint = std::env::var("HCLOUD_ENDPOINT").ok().filter(|e| !e.is_empty());
        Some(ClientConfig::new(endpoint.as_deref().unwrap_or(DEFAULT_ENDPOINT), Token::new(token)))
    }

    pub fn new(endpoint: &str, token: Token) -> ClientConfig {
        ClientConfig {
            endpoint: endpoint.trim_end_matches('/').to_owned(),
            token,
            retry: RetryPolicy::default(),
            actions: ActionWait::default(),
            timeout: Duration::from_secs(60),
            max_rate_limit_wait: Duration::from_secs(3600),
        }
    }
}

/// The client. Cheap to clone; clones share the rate limit and the retry budget.
#[derive(Debug, Clone)]
pub struct Client {
    config: Arc<ClientConfig>,
    http: reqwest::Client,
    rate: Arc<Mutex<RateLimit>>,
    budget: Arc<retry::Budget>,
    watcher: Arc<actions::Watcher>,
}

/// What a request is for, so that an error can say it: "create server `fastbots-app`".
#[derive(Debug, Clone)]
pub struct Operation {
    pub what: String,
    pub resource: Option<String>,
}

impl Operation {
    pub fn new(what: impl Into<String>) -> Self {
        Self { what: what.into(), resource: None }
    }

    pub fn on(mut self, resource: impl Into<String>) -> Self {
        self.resource = Some(resource.into());
        self
    }
}

impl Client {
    pub fn new(config: ClientConfig) -> Result<Client, ApiError> {
        let http = reqwest::Client::builder()
            .use_rustls_tls()
            .timeout(config.timeout)
            .user_agent(concat!("terrace/", env!("CARGO_PKG_VERSION")))
            .build()
            .map_err(|e| ApiError::transport(&Operation::new("start the HTTP client"), &e))?;
        let budget = Arc::new(retry::Budget::new(config.retry.budget));
        Ok(Client {
            config: Arc::new(config),
            http,
            rate: Arc::new(Mutex::new(RateLimit::default())),
            budget,
            watcher: Arc::new(actions::Watcher::new()),
        })
    }

    pub fn endpoint(&self) -> &str {
        &self.config.endpoint
    }

    /// The last rate-limit headers seen.
    pub async fn rate_limit(&self) -> RateLimit {
        *self.rate.lock().await
    }

    /// Sends one request (with retries) and returns the response body (`null` for 204).
    pub async fn request(
        &self,
        method: Method,
        path: &str,
        query: &[(&str, String)],
        body: Option<&Value>,
        operation: &Operation,
    ) -> Result<Value, ApiError> {
        let url = format!("{}{}", self.config.endpoint, path);
        let mut attempt = 0u32;
        loop {
            self.wait_for_rate_limit(operation).await?;
            let mut request =
                self.http.request(method.clone(), &url).bearer_auth(self.config.token.expose()).query(query);
            if let Some(body) = body {
                request = request.json(body);
            }
            let error = match request.send().await {
                Ok(response) => {
                    self.rate.lock().await.update(response.headers());
                    let status = response.status();
                    match response.text().await {
                        Ok(text) if status.is_success() => {
                            if status == StatusCode::NO_CONTENT || text.trim().is_empty() {
                                return Ok(Value::Null);
                            }
                            return serde_json::from_str(&text)
                                .map_err(|e| ApiError::body(operation, status, &e.to_string()));
                        }
                        Ok(text) => ApiError::from_response(operation, status, &text),
                        // An error's status says whether to ask again. A GET is asked again (a
                        // broken connection); any other request was carried out, and asking
                        // again would do it twice: the error says so, and
                        // the next run's refresh finds what it made (by its labels).
                        Err(_) if !status.is_success() => ApiError::from_response(operation, status, ""),
                        Err(error) if method == Method::GET => ApiError::transport(operation, &error),
                        Err(error) => return Err(ApiError::unread(operation, status, &error)),
                    }
                }
                Err(error) => ApiError::transport(operation, &error),
            };
            let Some(delay) = self.config.retry.delay(attempt, &error) else { return Err(error) };
            if !self.budget.take() {
                return Err(error.with_note("the retry budget of this run is used up"));
            }
            attempt += 1;
            tokio::time::sleep(delay).await;
        }
    }

    /// GET every page of a list (`per_page = 50`), collecting the items under `key`.
    pub async fn list_all(
        &self,
        path: &str,
        key: &str,
        query: &[(&str, String)],
        operation: &Operation,
    ) -> Result<Vec<Value>, ApiError> {
        let mut items = Vec::new();
        let mut page = 1u64;
        loop {
            let mut paged: Vec<(&str, String)> = query.to_vec();
            paged.push(("page", page.to_string()));
            paged.push(("per_page", "50".to_owned()));
            let body = self.request(Method::GET, path, &paged, None, operation).await?;
            if let Some(list) = body.get(key).and_then(Value::as_array) {
                items.extend(list.iter().cloned());
            }
            match body.pointer("/meta/pagination/next_page").and_then(Value::as_u64) {
                Some(next) if next > page => page = next,
                _ => return Ok(items),
            }
        }
    }

    /// Waits for these actions to finish: `success` for all, or the first `error`.
    pub async fn wait_for_actions(&self, ids: &[u64], operation: &Operation) -> Result<Vec<Value>, ApiError> {
        actions::wait(self, ids, operation).await
    }

    /// When the budget is spent, waits until it recovers (bounded by `max_rate_limit_wait`).
    async fn wait_for_rate_limit(&self, operation: &Operation) -> Result<(), ApiError> {
        let wait = self.rate.lock().await.wait_needed(std::time::SystemTime::now());
        if let Some(wait) = wait {
            if wait > self.config.max_rate_limit_wait {
                return Err(ApiError::rate_limited(operation, wait));
            }
            tokio::time::sleep(wait).await;
            self.rate.lock().await.assume_recovered();
        }
        Ok(())
    }
}
