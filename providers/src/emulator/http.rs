//! The HTTP face of the emulator: one axum fallback handler that authenticates, counts the request against
//! the rate limit, injects faults, routes `/v1/...` to the store and renders the answer, and serves the
//! emulator's own inspection endpoints under `/_emulator/`. It is the only module that knows HTTP types,
//! apart from `s3.rs`, to which it hands Object Storage's `/s3/...`.

use std::collections::VecDeque;
use std::sync::{Arc, Mutex, MutexGuard};

use axum::body::{Body, Bytes};
use axum::extract::State;
use axum::http::header::{AUTHORIZATION, CONTENT_TYPE};
use axum::http::{HeaderMap, HeaderName, HeaderValue, Method, StatusCode, Uri};
use axum::response::Response;
use serde_json::{Map, Value, json};

use super::RecordedRequest;
use super::clock::Clock;
use super::errors::{ApiError, Code};
use super::faults::{Fault, FaultSpec, SeededRng};
use super::pagination::{self, ListQuery, Listed};
use super::ratelimit::{RateLimiter, RateState};
use super::render;
use super::s3;
use super::store::{Kind, Started, Store};
use super::wire::{self, Update};

/// Everything a request may change, behind one lock: requests are short and the store is small, so one
/// lock keeps every answer consistent without costing throughput that matters here.
pub(crate) struct Inner {
    pub(crate) store: Store,
    pub(crate) limiter: RateLimiter,
    pub(crate) fault_rng: SeededRng,
    pub(crate) requests: VecDeque<RecordedRequest>,
    /// Object Storage's buckets, served under `/s3/` by `s3.rs`.
    pub(crate) buckets: s3::Buckets,
}

pub(crate) struct Shared {
    pub(crate) inner: Mutex<Inner>,
    pub(crate) clock: Clock,
    pub(crate) faults: FaultSpec,
    pub(crate) token: Option<String>,
    pub(crate) record_limit: usize,
    pub(crate) read_timeout: std::time::Duration,
}

impl Shared {
    /// A poisoned lock only means a handler panicked mid-request; the store is still usable for tests.
    pub(crate) fn lock(&self) -> MutexGuard<'_, Inner> {
        self.inner.lock().unwrap_or_else(std::sync::PoisonError::into_inner)
    }
}

/// Marks a response that must not be sent: the connection is closed instead (fault `reset`).
#[derive(Debug, Clone, Copy)]
pub(crate) struct ResetConnection;

impl std::fmt::Display for ResetConnection {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("connection reset by fault injection")
    }
}

impl std::error::Error for ResetConnection {}

fn status_of(code: Code) -> StatusCode {
    match code {
        Code::Unauthorized => StatusCode::UNAUTHORIZED,
        Code::NotFound => StatusCode::NOT_FOUND,
        Code::InvalidInput | Code::JsonError => StatusCode::BAD_REQUEST,
        Code::UniquenessError | Code::Conflict => StatusCode::CONFLICT,
        Code::Locked | Code::Protected => StatusCode::LOCKED,
        Code::ResourceLimitExceeded => StatusCode::FORBIDDEN,
        Code::RateLimitExceeded => StatusCode::TOO_MANY_REQUESTS,
        Code::ServiceError => StatusCode::SERVICE_UNAVAILABLE,
        Code::ServerError => StatusCode::INTERNAL_SERVER_ERROR,
        Code::Timeout => StatusCode::GATEWAY_TIMEOUT,
        Code::ResourceInUse | Code::Specific(_) => StatusCode::UNPROCESSABLE_ENTITY,
    }
}

fn respond(status: StatusCode, body: Option<&Value>, rate: RateState) -> Response {
    let bytes = body.map(|b| serde_json::to_vec(b).unwrap_or_default()).unwrap_or_default();
    let has_body = body.is_some();
    let mut resp = Response::new(Body::from(bytes));
    *resp.status_mut() = status;
    let headers = resp.headers_mut();
    if has_body {
        headers.insert(CONTENT_TYPE, HeaderValue::from_static("application/json"));
    }
    headers.insert(HeaderName::from_static("ratelimit-limit"), HeaderValue::from(rate.limit));
    headers.insert(HeaderName::from_static("ratelimit-remaining"), HeaderValue::from(rate.remaining));
    headers.insert(HeaderName::from_static("ratelimit-reset"), HeaderValue::from(rate.reset));
    resp
}

fn error_response(e: &ApiError, rate: RateState) -> Response {
    respond(status_of(e.code), Some(&e.body()), rate)
}

/// Decodes `%XX` and `+` of a query component.
pub(super) fn percent_decode(s: &str) -> String {
    let bytes = s.as_bytes();
    let hex = |b: u8| char::from(b).to_digit(16).and_then(|d| u8::try_from(d).ok());
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        match bytes[i] {
            b'+' => out.push(b' '),
            b'%' if i + 2 < bytes.len() => match (hex(bytes[i + 1]), hex(bytes[i + 2])) {
                (Some(h), Some(l)) => {
                    out.push(h * 16 + l);
                    i += 2;
                }
                _ => out.push(b'%'),
            },
            b => out.push(b),
        }
        i += 1;
    }
    String::from_utf8_lossy(&out).into_owned()
}

/// The query string as pairs, in order (`id` and `sort` may repeat).
struct Query(Vec<(String, String)>);

impl Query {
    fn parse(raw: Option<&str>) -> Query {
        Query(
            raw.unwrap_or("")
                .split('&')
                .filter(|p| !p.is_empty())
                .map(|p| {
                    let (k, v) = p.split_once('=').unwrap_or((p, ""));
                    (percent_decode(k), percent_decode(v))
                })
                .collect(),
        )
    }

    fn one(&self, key: &str) -> Option<&str> {
        self.0.iter().find(|(k, _)| k == key).map(|(_, v)| v.as_str())
    }

    fn all(&self, key: &str) -> Vec<String> {
        self.0.iter().filter(|(k, _)| k == key).map(|(_, v)| v.clone()).collect()
    }

    fn list(&self) -> ListQuery {
        ListQuery {
            name: self.one("name").map(str::to_owned),
            label_selector: self.one("label_selector").map(str::to_owned),
            sort: self.all("sort").iter().flat_map(|s| s.split(',').map(str::to_owned).collect::<Vec<_>>()).collect(),
            page: self.one("page").map(str::to_owned),
            per_page: self.one("per_page").map(str::to_owned),
        }
    }
}

/// The most a request's URI, headers and body may hold; more is refused (414, 431, 413).
const MAX_URI_BYTES: usize = 8 << 10;
const MAX_HEADER_BYTES: usize = 16 << 10;
const MAX_BODY_BYTES: usize = 1 << 20;

/// The axum handler for every path.
pub(crate) async fn handle(
    State(shared): State<Arc<Shared>>,
    method: Method,
    uri: Uri,
    headers: HeaderMap,
    body: Body,
) -> Response {
    // The HTTP layer's refusals, in Hetzner's error shape like every other error, before
    // anything is counted.
    let refuse = |status: StatusCode, code: Code, message: &str| {
        let body = serde_json::to_vec(&ApiError::new(code, message).body()).unwrap_or_default();
        let mut resp = Response::new(Body::from(body));
        *resp.status_mut() = status;
        resp.headers_mut().insert(CONTENT_TYPE, HeaderValue::from_static("application/json"));
        resp.headers_mut().insert(axum::http::header::CONNECTION, HeaderValue::from_static("close"));
        resp
    };
    if uri.to_string().len() > MAX_URI_BYTES {
        return refuse(StatusCode::URI_TOO_LONG, Code::InvalidInput, "the request URI is too long");
    }
    let header_bytes: usize = headers.iter().map(|(name, value)| name.as_str().len() + value.len() + 4).sum();
    if header_bytes > MAX_HEADER_BYTES {
        return refuse(
            StatusCode::REQUEST_HEADER_FIELDS_TOO_LARGE,
            Code::InvalidInput,
            "the request headers are too large",
        );
    }
    // A body that stops coming (a Content-Length larger than what is sent) is given up on.
    let body = match tokio::time::timeout(shared.read_timeout, axum::body::to_bytes(body, MAX_BODY_BYTES)).await {
        Ok(Ok(body)) => body,
        Ok(Err(_)) => {
            return refuse(StatusCode::PAYLOAD_TOO_LARGE, Code::InvalidInput, "the request body is too large");
        }
        Err(_) => return refuse(StatusCode::REQUEST_TIMEOUT, Code::Timeout, "the request body did not arrive in time"),
    };
    let now = shared.clock.now_ms();
    let mut guard = shared.lock();
    let inner = &mut *guard;
    if shared.record_limit > 0 {
        if inner.requests.len() >= shared.record_limit {
            inner.requests.pop_front();
        }
        inner.requests.push_back(RecordedRequest {
            method: method.as_str().to_owned(),
            path: uri.path().to_owned(),
            query: uri.query().map(str::to_owned),
        });
    }
    // Object Storage speaks S3: its own signatures and XML, outside the Cloud API's token, rate limit
    // and faults.
    if s3::serves(uri.path()) {
        return s3::handle(&mut inner.buckets, &method, uri.path(), uri.query(), &headers, &body, now);
    }
    let token = headers
        .get(AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.strip_prefix("Bearer "))
        .map(str::trim)
        .filter(|t| !t.is_empty());
    let authorized = match (&shared.token, token) {
        (_, None) => false,
        (None, Some(_)) => true,
        (Some(want), Some(got)) => want == got,
    };
    if !authorized {
        let rate = inner.limiter.peek(now);
        return error_response(&ApiError::new(Code::Unauthorized, "unable to authenticate"), rate);
    }
    // The emulator's own inspection endpoints, outside `/v1`: what a hypervisor knows and the API never
    // answers, for test harnesses that play the machines. Authorized like the API, but not counted
    // against the budget nor given faults, so that watching the project does not change it.
    if let Some(rest) = uri.path().strip_prefix("/_emulator/") {
        let rate = inner.limiter.peek(now);
        return inspect(&inner.store, &method, rest, rate);
    }
    let rate = match inner.limiter.take(now) {
        Ok(rate) => rate,
        Err(rate) => {
            return error_response(&ApiError::new(Code::RateLimitExceeded, "limit of requests per hour reached"), rate);
        }
    };
    // One draw for the request fault and one for action failure, always, so the sequence of faults
    // depends only on the seed and the number of authorized requests within the budget.
    let fault = shared.faults.pick(inner.fault_rng.next_f64());
    let action_fails = inner.fault_rng.next_f64() < shared.faults.action_error;
    let mutating = method != Method::GET && method != Method::HEAD;
    match fault {
        Some(Fault::TooManyRequests) => {
            return error_response(&ApiError::new(Code::RateLimitExceeded, "limit of requests per hour reached"), rate);
        }
        Some(Fault::InternalError) => {
            return error_response(&ApiError::new(Code::ServerError, "internal server error (injected fault)"), rate);
        }
        Some(Fault::BadGateway) => {
            // What the proxy in front of the API sends: HTML, not Hetzner's JSON.
            let mut resp = Response::new(Body::from("<html><body><h1>502 Bad Gateway</h1></body></html>"));
            *resp.status_mut() = StatusCode::BAD_GATEWAY;
            resp.headers_mut().insert(CONTENT_TYPE, HeaderValue::from_static("text/html"));
            return resp;
        }
        Some(Fault::Unavailable) => {
            return error_response(&ApiError::new(Code::ServiceError, "service unavailable (injected fault)"), rate);
        }
        Some(Fault::Timeout) => {
            return error_response(&ApiError::new(Code::Timeout, "the request timed out (injected fault)"), rate);
        }
        Some(Fault::Reset) => {
            let mut resp = Response::new(Body::empty());
            resp.extensions_mut().insert(ResetConnection);
            return resp;
        }
        Some(Fault::Locked) if mutating => {
            return error_response(&ApiError::new(Code::Locked, "resource is locked (injected fault)"), rate);
        }
        Some(Fault::Conflict) if mutating => {
            return error_response(&ApiError::new(Code::Conflict, "resource changed meanwhile (injected fault)"), rate);
        }
        Some(Fault::Locked | Fault::Conflict | Fault::Truncate) | None => {}
    }
    let Some(path) = uri.path().strip_prefix("/v1/") else {
        return error_response(&ApiError::new(Code::NotFound, "not found"), rate);
    };
    let segments: Vec<&str> = path.trim_end_matches('/').split('/').collect();
    let body = if body.iter().all(u8::is_ascii_whitespace) {
        Value::Object(Map::new())
    } else {
        match serde_json::from_slice::<Value>(&body) {
            Ok(v @ Value::Object(_)) => v,
            Ok(_) => return error_response(&ApiError::new(Code::JsonError, "the body must be a JSON object"), rate),
            Err(e) => return error_response(&ApiError::new(Code::JsonError, format!("invalid JSON: {e}")), rate),
        }
    };
    let query = Query::parse(uri.query());
    inner.store.settle(now);
    inner.store.fail_next_action = action_fails;
    let result = route(&mut inner.store, &method, &segments, &query, &body, now);
    inner.store.fail_next_action = false;
    let (status, value) = match result {
        Ok((status, value)) => (status, value),
        Err(e) => (status_of(e.code), Some(e.body())),
    };
    if fault == Some(Fault::Truncate) {
        truncated(status, value.as_ref(), rate)
    } else {
        respond(status, value.as_ref(), rate)
    }
}

/// The answer `respond` gives, with a `Content-Length` of its whole body, but a body that stops
/// halfway with an error: hyper then closes the connection (fault `truncate`).
fn truncated(status: StatusCode, body: Option<&Value>, rate: RateState) -> Response {
    let bytes = Bytes::from(body.map(|b| serde_json::to_vec(b).unwrap_or_default()).unwrap_or_default());
    let (mut parts, _) = respond(status, body, rate).into_parts();
    parts.headers.insert(axum::http::header::CONTENT_LENGTH, HeaderValue::from(bytes.len()));
    let cut = std::io::Error::new(std::io::ErrorKind::ConnectionAborted, "truncated by fault injection");
    use futures_util::StreamExt;
    let half = futures_util::stream::iter([Ok::<Bytes, std::io::Error>(bytes.slice(..bytes.len() / 2))]);
    // The cut comes a moment later, so that hyper has sent the status, the headers and the half.
    let cut = futures_util::stream::once(async move {
        tokio::time::sleep(std::time::Duration::from_millis(50)).await;
        Err(cut)
    });
    Response::from_parts(parts, Body::from_stream(half.chain(cut)))
}

/// `GET /_emulator/servers/{id}/user_data`: the server's `user_data` as given, as text; `404` when the
/// server does not exist or was given none.
fn inspect(store: &Store, method: &Method, path: &str, rate: RateState) -> Response {
    let segments: Vec<&str> = path.trim_end_matches('/').split('/').collect();
    let answer = match segments.as_slice() {
        ["servers", id, "user_data"] if method == Method::GET => parse_id(id).and_then(|id| {
            store
                .server_user_data(id)?
                .map(str::to_owned)
                .ok_or_else(|| ApiError::new(Code::NotFound, format!("server with ID '{id}' was given no user_data")))
        }),
        _ => Err(ApiError::new(Code::NotFound, "not found")),
    };
    match answer {
        Ok(text) => {
            let mut resp = respond(StatusCode::OK, None, rate);
            *resp.body_mut() = Body::from(text);
            resp.headers_mut().insert(CONTENT_TYPE, HeaderValue::from_static("text/plain; charset=utf-8"));
            resp
        }
        Err(e) => error_response(&e, rate),
    }
}

type Answer = Result<(StatusCode, Option<Value>), ApiError>;

fn ok(value: Value) -> Answer {
    Ok((StatusCode::OK, Some(value)))
}

fn created(value: Value) -> Answer {
    Ok((StatusCode::CREATED, Some(value)))
}

fn parse_id(text: &str) -> Result<u64, ApiError> {
    text.parse().map_err(|_| ApiError::invalid_field("id", &format!("`{text}` is not an ID")))
}

fn object(key: &str, value: Value) -> Value {
    let mut m = Map::new();
    m.insert(key.to_owned(), value);
    Value::Object(m)
}

fn list_json<'a, T: Listed + 'a>(
    items: impl Iterator<Item = &'a T>,
    query: &ListQuery,
    key: &str,
    render: impl Fn(&T) -> Value,
) -> Answer {
    let (page, p) = pagination::list(items, query)?;
    let mut m = Map::new();
    m.insert(key.to_owned(), Value::Array(page.into_iter().map(render).collect()));
    m.insert("meta".to_owned(), render::meta(&p));
    ok(Value::Object(m))
}

fn find<'a, T: Listed>(items: &'a [T], id: &str, kind: &str) -> Result<&'a T, ApiError> {
    let id = parse_id(id)?;
    items.iter().find(|t| t.id() == id).ok_or_else(|| ApiError::not_found(kind, id))
}

fn action_value(store: &Store, id: u64, now: i64) -> Value {
    store.actions.get(&id).map_or(Value::Null, |a| render::action(a, now))
}

fn started(store: &Store, s: &Started, now: i64) -> Value {
    json!({ "action": s.action.map_or(Value::Null, |a| action_value(store, a, now)) })
}

/// Routes one request, already authenticated and counted.
fn route(store: &mut Store, method: &Method, segs: &[&str], q: &Query, body: &Value, now: i64) -> Answer {
    let get = method == Method::GET;
    let data = &store.data;
    match (method.clone(), segs) {
        (_, ["locations"]) if get => list_json(data.locations.iter(), &q.list(), "locations", render::location),
        (_, ["locations", id]) if get => {
            ok(object("location", render::location(find(&data.locations, id, "location")?)))
        }
        (_, ["datacenters"]) if get => {
            let s = &*store;
            let (status, body) =
                list_json(data.datacenters.iter(), &q.list(), "datacenters", |d| render::datacenter(s, d))?;
            // The datacenter Hetzner recommends for new servers; Falkenstein, the default location.
            let recommended = data.datacenter_of("fsn1").or(data.datacenters.first()).map_or(0, |d| d.id);
            Ok((
                status,
                body.map(|mut b| {
                    b["recommendation"] = json!(recommended);
                    b
                }),
            ))
        }
        (_, ["datacenters", id]) if get => {
            ok(object("datacenter", render::datacenter(store, find(&data.datacenters, id, "datacenter")?)))
        }
        (_, ["server_types"]) if get => {
            let s = &*store;
            list_json(data.server_types.iter(), &q.list(), "server_types", |t| render::server_type(s, t))
        }
        (_, ["server_types", id]) if get => {
            ok(object("server_type", render::server_type(store, find(&data.server_types, id, "server_type")?)))
        }
        (_, ["load_balancer_types"]) if get => {
            list_json(data.lb_types.iter(), &q.list(), "load_balancer_types", render::lb_type)
        }
        (_, ["load_balancer_types", id]) if get => {
            ok(object("load_balancer_type", render::lb_type(find(&data.lb_types, id, "load_balancer_type")?)))
        }
        (_, ["images"]) if get => {
            let kinds = q.all("type");
            let arch = q.one("architecture");
            let images = data
                .images
                .iter()
                .filter(|i| kinds.is_empty() || kinds.iter().any(|k| k == i.kind))
                .filter(|i| arch.is_none_or(|a| a == i.architecture));
            list_json(images, &q.list(), "images", render::image)
        }
        (_, ["images", id]) if get => ok(object("image", render::image(find(&data.images, id, "image")?))),
        (_, ["pricing"]) if get => ok(data.pricing.clone()),
        (_, ["actions"]) if get => {
            let ids = q.all("id").iter().map(|i| parse_id(i)).collect::<Result<Vec<_>, _>>()?;
            if ids.is_empty() {
                return Err(ApiError::invalid_field("id", "give at least one action id"));
            }
            actions_list(store, q, now, |a| ids.contains(&a.id))
        }
        (_, ["actions", id]) if get => one_action(store, parse_id(id)?, now, |_| true),
        (_, [coll, "actions"]) if get && Kind::from_collection(coll).is_some() => {
            let kind = Kind::from_collection(coll);
            let ids = q.all("id").iter().map(|i| parse_id(i)).collect::<Result<Vec<_>, _>>()?;
            actions_list(store, q, now, |a| {
                a.resources.iter().any(|(k, _)| Some(*k) == kind) && (ids.is_empty() || ids.contains(&a.id))
            })
        }
        (_, [coll, "actions", id]) if get && Kind::from_collection(coll).is_some() => {
            let kind = Kind::from_collection(coll);
            one_action(store, parse_id(id)?, now, |a| a.resources.iter().any(|(k, _)| Some(*k) == kind))
        }
        (_, [coll, id, "actions"]) if get => {
            let (kind, id) = existing(store, coll, id)?;
            actions_list(store, q, now, |a| a.resources.contains(&(kind, id)))
        }
        (_, [coll, id, "actions", action]) if get => {
            let (kind, id) = existing(store, coll, id)?;
            one_action(store, parse_id(action)?, now, |a| a.resources.contains(&(kind, id)))
        }
        (Method::POST, [coll, id, "actions", command]) => {
            let (kind, id) = existing(store, coll, id)?;
            resource_action(store, kind, id, command, body, now)
        }
        (_, [coll]) if get => list_kind(store, coll, q, now),
        (Method::POST, [coll]) => create(store, coll, body, now),
        (_, [coll, id]) if get => {
            let (kind, id) = existing(store, coll, id)?;
            ok(render_one(store, kind, id, now))
        }
        (Method::PUT, [coll, id]) => {
            let (kind, id) = existing(store, coll, id)?;
            let update: Update = wire::decode(body)?;
            match kind {
                Kind::Server => store.update_server(id, &update)?,
                Kind::Volume => store.update_volume(id, &update)?,
                Kind::Network => store.update_network(id, &update)?,
                Kind::Firewall => store.update_firewall(id, &update)?,
                Kind::PlacementGroup => store.update_placement_group(id, &update)?,
                Kind::PrimaryIp => store.update_primary_ip(id, &update)?,
                Kind::FloatingIp => store.update_floating_ip(id, &update)?,
                Kind::SshKey => store.update_ssh_key(id, &update)?,
                Kind::Certificate => store.update_certificate(id, &update)?,
                Kind::LoadBalancer => store.update_load_balancer(id, &update)?,
                Kind::Image => {
                    return Err(ApiError::new(Code::Specific("forbidden"), "system images cannot be changed"));
                }
            }
            ok(render_one(store, kind, id, now))
        }
        (Method::DELETE, [coll, id]) => {
            let (kind, id) = existing(store, coll, id)?;
            match kind {
                Kind::Server => {
                    let action = store.delete_server(id, now)?;
                    return ok(json!({ "action": action_value(store, action, now) }));
                }
                Kind::Volume => store.delete_volume(id, now)?,
                Kind::Network => store.delete_network(id, now)?,
                Kind::Firewall => store.delete_firewall(id)?,
                Kind::PlacementGroup => store.delete_placement_group(id)?,
                Kind::PrimaryIp => store.delete_primary_ip(id)?,
                Kind::FloatingIp => store.delete_floating_ip(id)?,
                Kind::SshKey => store.delete_ssh_key(id)?,
                Kind::Certificate => store.delete_certificate(id)?,
                Kind::LoadBalancer => store.delete_load_balancer(id, now)?,
                Kind::Image => {
                    return Err(ApiError::new(Code::Specific("forbidden"), "system images cannot be deleted"));
                }
            }
            Ok((StatusCode::NO_CONTENT, None))
        }
        _ => Err(ApiError::new(Code::NotFound, "not found")),
    }
}

fn actions_list(store: &Store, q: &Query, now: i64, keep: impl Fn(&super::store::Action) -> bool) -> Answer {
    let status = q.all("status");
    let mut list = q.list();
    // Actions sort by `command` and `started` too; they map onto the generic name and created keys.
    list.sort = list
        .sort
        .iter()
        .map(|s| s.replace("command", "name").replace("started", "created").replace("finished", "created"))
        .collect();
    let items = store.actions.values().filter(|a| keep(a)).filter(|a| {
        let text = match a.status(now) {
            super::store::ActionStatus::Running { .. } => "running",
            super::store::ActionStatus::Success => "success",
            super::store::ActionStatus::Error => "error",
        };
        status.is_empty() || status.iter().any(|s| s == text)
    });
    list_json(items, &list, "actions", |a| render::action(a, now))
}

fn one_action(store: &Store, id: u64, now: i64, keep: impl Fn(&super::store::Action) -> bool) -> Answer {
    match store.actions.get(&id).filter(|a| keep(a)) {
        Some(a) => ok(json!({ "action": render::action(a, now) })),
        None => Err(ApiError::not_found("action", id)),
    }
}

/// The kind of a collection and an id that exists in it.
fn existing(store: &Store, coll: &str, id: &str) -> Result<(Kind, u64), ApiError> {
    let kind = Kind::from_collection(coll).ok_or_else(|| ApiError::new(Code::NotFound, "not found"))?;
    let id = parse_id(id)?;
    let exists = match kind {
        Kind::Server => store.servers.contains_key(&id),
        Kind::Volume => store.volumes.contains_key(&id),
        Kind::Network => store.networks.contains_key(&id),
        Kind::Firewall => store.firewalls.contains_key(&id),
        Kind::PlacementGroup => store.placement_groups.contains_key(&id),
        Kind::PrimaryIp => store.primary_ips.contains_key(&id),
        Kind::FloatingIp => store.floating_ips.contains_key(&id),
        Kind::SshKey => store.ssh_keys.contains_key(&id),
        Kind::Certificate => store.certificates.contains_key(&id),
        Kind::LoadBalancer => store.load_balancers.contains_key(&id),
        Kind::Image => store.data.image_by_id(id).is_some(),
    };
    if exists { Ok((kind, id)) } else { Err(ApiError::not_found(kind.as_str(), id)) }
}

fn render_one(store: &Store, kind: Kind, id: u64, now: i64) -> Value {
    let (key, value) = match kind {
        Kind::Server => ("server", store.servers.get(&id).map(|s| render::server(store, s, now))),
        Kind::Volume => ("volume", store.volumes.get(&id).map(|v| render::volume(store, v))),
        Kind::Network => ("network", store.networks.get(&id).map(|n| render::network(store, n))),
        Kind::Firewall => ("firewall", store.firewalls.get(&id).map(|f| render::firewall(store, f))),
        Kind::PlacementGroup => {
            ("placement_group", store.placement_groups.get(&id).map(|p| render::placement_group(store, p)))
        }
        Kind::PrimaryIp => ("primary_ip", store.primary_ips.get(&id).map(|p| render::primary_ip(store, p))),
        Kind::FloatingIp => ("floating_ip", store.floating_ips.get(&id).map(|f| render::floating_ip(store, f))),
        Kind::SshKey => ("ssh_key", store.ssh_keys.get(&id).map(render::ssh_key)),
        Kind::Certificate => ("certificate", store.certificates.get(&id).map(|c| render::certificate(store, c))),
        Kind::LoadBalancer => ("load_balancer", store.load_balancers.get(&id).map(|l| render::load_balancer(store, l))),
        Kind::Image => ("image", store.data.image_by_id(id).map(render::image)),
    };
    object(key, value.unwrap_or(Value::Null))
}

fn list_kind(store: &Store, coll: &str, q: &Query, now: i64) -> Answer {
    let list = q.list();
    match coll {
        "servers" => {
            let status = q.all("status");
            let items =
                store.servers.values().filter(|s| status.is_empty() || status.iter().any(|x| x == s.status.as_str()));
            list_json(items, &list, "servers", |s| render::server(store, s, now))
        }
        "volumes" => list_json(store.volumes.values(), &list, "volumes", |v| render::volume(store, v)),
        "networks" => list_json(store.networks.values(), &list, "networks", |n| render::network(store, n)),
        "firewalls" => list_json(store.firewalls.values(), &list, "firewalls", |f| render::firewall(store, f)),
        "placement_groups" => {
            list_json(store.placement_groups.values(), &list, "placement_groups", |p| render::placement_group(store, p))
        }
        "primary_ips" => {
            let ip = q.one("ip");
            let items = store.primary_ips.values().filter(|p| ip.is_none_or(|ip| p.ip == ip));
            list_json(items, &list, "primary_ips", |p| render::primary_ip(store, p))
        }
        "floating_ips" => {
            list_json(store.floating_ips.values(), &list, "floating_ips", |f| render::floating_ip(store, f))
        }
        "ssh_keys" => {
            let fp = q.one("fingerprint");
            let items = store.ssh_keys.values().filter(|k| fp.is_none_or(|fp| k.fingerprint == fp));
            list_json(items, &list, "ssh_keys", render::ssh_key)
        }
        "certificates" => {
            list_json(store.certificates.values(), &list, "certificates", |c| render::certificate(store, c))
        }
        "load_balancers" => {
            list_json(store.load_balancers.values(), &list, "load_balancers", |l| render::load_balancer(store, l))
        }
        _ => Err(ApiError::new(Code::NotFound, "not found")),
    }
}

fn create(store: &mut Store, coll: &str, body: &Value, now: i64) -> Answer {
    match coll {
        "servers" => {
            let (id, s) = store.create_server(wire::decode(body)?, now)?;
            created(json!({
                "server": render::server(store, &store.servers[&id], now),
                "action": s.action.map_or(Value::Null, |a| action_value(store, a, now)),
                "next_actions": s.next_actions.iter().map(|a| action_value(store, *a, now)).collect::<Vec<_>>(),
                "root_password": s.root_password,
            }))
        }
        "volumes" => {
            let (id, s) = store.create_volume(wire::decode(body)?, now)?;
            created(json!({
                "volume": render::volume(store, &store.volumes[&id]),
                "action": s.action.map_or(Value::Null, |a| action_value(store, a, now)),
                "next_actions": s.next_actions.iter().map(|a| action_value(store, *a, now)).collect::<Vec<_>>(),
            }))
        }
        "networks" => {
            let id = store.create_network(wire::decode(body)?, now)?;
            created(json!({ "network": render::network(store, &store.networks[&id]) }))
        }
        "firewalls" => {
            let (id, actions) = store.create_firewall(wire::decode(body)?, now)?;
            created(json!({
                "firewall": render::firewall(store, &store.firewalls[&id]),
                "actions": actions.iter().map(|a| action_value(store, *a, now)).collect::<Vec<_>>(),
            }))
        }
        "placement_groups" => {
            let id = store.create_placement_group(wire::decode(body)?, now)?;
            created(json!({
                "placement_group": render::placement_group(store, &store.placement_groups[&id]),
                "action": null,
            }))
        }
        "primary_ips" => {
            let (id, action) = store.create_primary_ip(wire::decode(body)?, now)?;
            let mut v = json!({ "primary_ip": render::primary_ip(store, &store.primary_ips[&id]) });
            if let Some(a) = action {
                v["action"] = action_value(store, a, now);
            }
            created(v)
        }
        "floating_ips" => {
            let (id, action) = store.create_floating_ip(wire::decode(body)?, now)?;
            let mut v = json!({ "floating_ip": render::floating_ip(store, &store.floating_ips[&id]) });
            if let Some(a) = action {
                v["action"] = action_value(store, a, now);
            }
            created(v)
        }
        "ssh_keys" => {
            let id = store.create_ssh_key(wire::decode(body)?, now)?;
            created(json!({ "ssh_key": render::ssh_key(&store.ssh_keys[&id]) }))
        }
        "certificates" => {
            let id = store.create_certificate(wire::decode(body)?, now)?;
            created(json!({ "certificate": render::certificate(store, &store.certificates[&id]), "action": null }))
        }
        "load_balancers" => {
            let (id, action) = store.create_load_balancer(wire::decode(body)?, now)?;
            created(json!({
                "load_balancer": render::load_balancer(store, &store.load_balancers[&id]),
                "action": action_value(store, action, now),
            }))
        }
        _ => Err(ApiError::new(Code::NotFound, "not found")),
    }
}

fn resource_action(store: &mut Store, kind: Kind, id: u64, command: &str, body: &Value, now: i64) -> Answer {
    let s = match kind {
        Kind::Server => store.server_action(id, command, body, now)?,
        Kind::Volume => store.volume_action(id, command, body, now)?,
        Kind::Network => store.network_action(id, command, body, now)?,
        Kind::PrimaryIp => store.primary_ip_action(id, command, body, now)?,
        Kind::FloatingIp => store.floating_ip_action(id, command, body, now)?,
        Kind::LoadBalancer => store.load_balancer_action(id, command, body, now)?,
        Kind::Firewall => {
            let actions = store.firewall_action(id, command, body, now)?;
            return created(
                json!({ "actions": actions.iter().map(|a| action_value(store, *a, now)).collect::<Vec<_>>() }),
            );
        }
        _ => return Err(ApiError::new(Code::NotFound, "not found")),
    };
    let mut v = started(store, &s, now);
    if kind == Kind::Server && command == "rebuild" {
        v["root_password"] = json!(s.root_password);
    }
    created(v)
}
