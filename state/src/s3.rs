//! The `s3` backend: state in one object of an S3-compatible object storage (Hetzner Object Storage
//! first), its previous version in `<key>.backup`, and the lock in `<key>.lock`.
//!
//! Object layout, for `bucket` and `key` (e.g. `stacks/seed/terrace.state.json`):
//!
//! - `<key>`: the state, exactly the bytes `format::to_json` gives (the same as the local file);
//! - `<key>.backup`: the state this object held before the last write;
//! - `<key>.lock`: while a run holds the lock, its `LockInfo` as JSON; absent otherwise.
//!
//! The lock is created with a conditional write (`If-None-Match: *`), which S3 servers perform
//! atomically: of two runs creating it, one gets `200` and the other `412 Precondition Failed`,
//! reads the object and names its holder. A write reads the stored object first (refusing another
//! lineage, a serial not above the stored one, or an object that is not a readable state, exactly
//! as the local backend does), stores the bytes it read as `<key>.backup`, and replaces the object
//! with `If-Match: <etag of what it read>`, so that an object changed in between is read again
//! rather than overwritten.
//!
//! Requests are signed with AWS Signature Version 4 by `rusty-s3` (presigned, path-style URLs,
//! `{endpoint}/{bucket}/{key}`) and sent by `reqwest`. Presigned URLs carry the access key in their
//! query string, so errors name objects as `s3://bucket/key at endpoint`, never by URL, and the
//! keys are scrubbed from anything a server says.

use std::fmt;
use std::io;
use std::path::PathBuf;
use std::sync::{Arc, mpsc};
use std::time::Duration;

use reqwest::{Method, StatusCode, Url};
use rusty_s3::{Bucket, Credentials, S3Action, UrlStyle};

use crate::backend::{Backend, LockGuard, LockInfo};
use crate::error::StateError;
use crate::format::{from_json, to_json};
use crate::model::State;

/// The variables the keys are read from, in order of preference: terrace's own pair, then the
/// pair every S3 tool reads.
pub const CREDENTIAL_VARIABLES: [(&str, &str); 2] =
    [("TERRACE_BACKEND_ACCESS_KEY", "TERRACE_BACKEND_SECRET_KEY"), ("AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY")];

/// How often a run waiting for the lock looks again. Longer than the local backend's, since every
/// look is two requests to a server that others share.
const LOCK_POLL: Duration = Duration::from_millis(200);
/// How long a signed request stays valid; every attempt is signed anew.
const SIGNATURE_TTL: Duration = Duration::from_secs(300);
/// Retries of one request after a server error or a broken connection.
const MAX_RETRIES: u32 = 3;
/// The first retry waits this long, the next ones twice as long each. Without jitter: one run
/// writes its state from one place, so there is no crowd of clients to spread out.
const RETRY_BASE: Duration = Duration::from_millis(200);
/// How often a write starts over when the object changed between its read and its write.
const WRITE_ATTEMPTS: u32 = 5;
/// How often taking the lock starts over when the lock vanished between a refused create and the
/// read of its holder (the holder released it just then).
const LOCK_ATTEMPTS: u32 = 20;

/// An S3 key that never prints itself: `Debug` and `Display` show `****`.
#[derive(Clone, PartialEq, Eq)]
pub struct Secret(String);

impl Secret {
    /// Wraps a key, which from then on only signing sees.
    pub fn new(secret: impl Into<String>) -> Self {
        Secret(secret.into())
    }

    /// The secret itself, for signing and scrubbing only.
    fn expose(&self) -> &str {
        &self.0
    }
}

impl fmt::Debug for Secret {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("Secret(****)")
    }
}

impl fmt::Display for Secret {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("****")
    }
}

/// Where the state object is and with which keys to reach it.
#[derive(Debug, Clone)]
pub struct S3Config {
    /// The server's URL, e.g. `https://fsn1.your-objectstorage.com`; a path is kept as a prefix.
    pub endpoint: String,
    /// The region signed into requests; Hetzner's is the location (`fsn1`, `nbg1`, `hel1`).
    pub region: String,
    pub bucket: String,
    /// The state object's key, e.g. `stacks/seed/terrace.state.json`.
    pub key: String,
    pub access_key: Secret,
    pub secret_key: Secret,
}

impl S3Config {
    /// The configuration with the keys from the environment: `TERRACE_BACKEND_ACCESS_KEY` and
    /// `TERRACE_BACKEND_SECRET_KEY`, or else `AWS_ACCESS_KEY_ID` and `AWS_SECRET_ACCESS_KEY`.
    pub fn from_env(
        endpoint: impl Into<String>,
        region: impl Into<String>,
        bucket: impl Into<String>,
        key: impl Into<String>,
    ) -> Result<S3Config, StateError> {
        let (endpoint, bucket, key) = (endpoint.into(), bucket.into(), key.into());
        let Some((access_key, secret_key)) = credentials_from(|name| std::env::var(name).ok()) else {
            let [(access, secret), (aws_access, aws_secret)] = CREDENTIAL_VARIABLES;
            return Err(StateError::Io {
                action: "find the keys for",
                path: PathBuf::from(object_name(&bucket, &key, endpoint.trim().trim_end_matches('/'))),
                source: io::Error::new(
                    io::ErrorKind::NotFound,
                    format!("set {access} and {secret}, or {aws_access} and {aws_secret}"),
                ),
            });
        };
        Ok(S3Config { endpoint, region: region.into(), bucket, key, access_key, secret_key })
    }
}

/// The first pair of variables of which either is set; both of that pair must then be. A pair is
/// never mixed with the other, which would sign with one account's key and another's secret.
/// Empty values count as unset.
fn credentials_from(var: impl Fn(&str) -> Option<String>) -> Option<(Secret, Secret)> {
    let var = |name: &str| var(name).filter(|value| !value.trim().is_empty());
    for (access, secret) in CREDENTIAL_VARIABLES {
        match (var(access), var(secret)) {
            (Some(access), Some(secret)) => return Some((Secret::new(access), Secret::new(secret))),
            (None, None) => {}
            _ => return None,
        }
    }
    None
}

/// Why one S3 request failed. It is the `source` of the [`StateError::Io`] this backend returns,
/// whose `path` names the object (`s3://bucket/key at endpoint`) and whose `action` the operation;
/// reach it with `source.get_ref()` and `downcast_ref::<S3Error>()`.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{}", self.text())]
pub struct S3Error {
    status: Option<u16>,
    code: Option<String>,
    message: String,
}

impl S3Error {
    /// The HTTP status of the answer, `None` when there was no answer.
    pub fn status(&self) -> Option<u16> {
        self.status
    }

    /// S3's error code (`AccessDenied`, `NoSuchBucket`, ...), or the status's reason when the
    /// answer had no S3 error body.
    pub fn code(&self) -> Option<&str> {
        self.code.as_deref()
    }

    fn text(&self) -> String {
        match (self.status, &self.code) {
            (Some(status), Some(code)) => format!("HTTP {status}, {code}: {}", self.message),
            (Some(status), None) => format!("HTTP {status}: {}", self.message),
            (None, _) => format!("no answer: {}", self.message),
        }
    }

    fn transport(message: String) -> S3Error {
        S3Error { status: None, code: None, message }
    }

    /// Worth another attempt: a server error other than "not implemented", or no answer.
    fn retryable(&self) -> bool {
        self.status.is_none_or(|status| status >= 500 && status != 501)
    }
}

/// State in an object of an S3-compatible storage. Cheap to clone: clones share the HTTP thread.
#[derive(Clone)]
pub struct S3Backend {
    inner: Arc<Inner>,
}

struct Inner {
    endpoint: String,
    bucket: Bucket,
    key: String,
    backup_key: String,
    lock_key: String,
    credentials: Credentials,
    /// To scrub from what servers say, which must never reach a message.
    secrets: [Secret; 2],
    http: HttpThread,
}

impl fmt::Debug for S3Backend {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        // Not `Credentials`' own `Debug`, which prints the access key.
        f.debug_struct("S3Backend")
            .field("object", &self.describe())
            .field("region", &self.inner.bucket.region())
            .finish_non_exhaustive()
    }
}

impl S3Backend {
    /// Checks the configuration and starts the thread that sends requests; nothing is sent yet.
    pub fn new(config: S3Config) -> Result<Self, StateError> {
        let endpoint = config.endpoint.trim().trim_end_matches('/').to_owned();
        let name = PathBuf::from(object_name(&config.bucket, &config.key, &endpoint));
        let invalid = |reason: String| StateError::Io {
            action: "use",
            path: name.clone(),
            source: io::Error::new(io::ErrorKind::InvalidInput, reason),
        };
        let url = Url::parse(&format!("{endpoint}/")).map_err(|error| invalid(format!("the endpoint: {error}")))?;
        if !matches!(url.scheme(), "http" | "https") {
            return Err(invalid(format!("the endpoint's scheme must be http or https, not {}", url.scheme())));
        }
        if url.host_str().is_none_or(str::is_empty) {
            return Err(invalid("the endpoint has no host".to_owned()));
        }
        if url.query().is_some() || url.fragment().is_some() || !url.username().is_empty() || url.password().is_some() {
            return Err(invalid("the endpoint must not have a query, a fragment or a user name".to_owned()));
        }
        if config.region.trim().is_empty() {
            return Err(invalid("the region is empty".to_owned()));
        }
        if config.bucket.is_empty() || config.bucket.contains('/') {
            return Err(invalid("the bucket must be a name without `/`".to_owned()));
        }
        if config.key.is_empty() || config.key.ends_with('/') {
            return Err(invalid("the key must name an object, not be empty or end with `/`".to_owned()));
        }
        if config.access_key.expose().is_empty() || config.secret_key.expose().is_empty() {
            return Err(invalid("the access key and the secret key must not be empty".to_owned()));
        }
        let bucket = Bucket::new(url, UrlStyle::Path, config.bucket.clone(), config.region.trim().to_owned())
            .map_err(|error| invalid(format!("the bucket's URL: {error}")))?;
        let http = HttpThread::start().map_err(|source| StateError::Io {
            action: "start the client of",
            path: name.clone(),
            source,
        })?;
        Ok(S3Backend {
            inner: Arc::new(Inner {
                endpoint,
                bucket,
                backup_key: format!("{}.backup", config.key),
                lock_key: format!("{}.lock", config.key),
                key: config.key,
                credentials: Credentials::new(config.access_key.expose(), config.secret_key.expose()),
                secrets: [config.access_key, config.secret_key],
                http,
            }),
        })
    }

    /// The state object's key.
    pub fn key(&self) -> &str {
        &self.inner.key
    }

    /// The previous version's key, `<key>.backup`.
    pub fn backup_key(&self) -> &str {
        &self.inner.backup_key
    }

    /// The lock's key, `<key>.lock`.
    pub fn lock_key(&self) -> &str {
        &self.inner.lock_key
    }
}

impl Backend for S3Backend {
    fn describe(&self) -> String {
        self.inner.name(&self.inner.key)
    }

    fn read(&self) -> Result<Option<State>, StateError> {
        let inner = &self.inner;
        let Some(object) = inner.get(&inner.key).map_err(|e| inner.failed("read the state object", &inner.key, e))?
        else {
            return Ok(None);
        };
        from_json(&object.bytes, &self.describe()).map(Some)
    }

    fn write(&self, state: &State) -> Result<(), StateError> {
        let inner = &self.inner;
        let bytes = to_json(state);
        let mut conflicted = false;
        for _ in 0..WRITE_ATTEMPTS {
            let stored = inner
                .get(&inner.key)
                .map_err(|e| inner.failed("read the state object before writing", &inner.key, e))?;
            let condition = match &stored {
                // A conditional write refused after a retry may have been refused because its first
                // attempt landed, its answer lost: the object then holds exactly these bytes.
                Some(object) if conflicted && object.bytes == bytes => return Ok(()),
                Some(object) => {
                    // Reading first is what keeps a corrupted, foreign or newer object from being
                    // overwritten: its read error is returned and nothing is written.
                    let current = from_json(&object.bytes, &self.describe())?;
                    if current.lineage != state.lineage {
                        return Err(StateError::LineageMismatch {
                            backend: self.describe(),
                            stored: current.lineage,
                            writing: state.lineage.clone(),
                        });
                    }
                    if current.serial >= state.serial {
                        return Err(StateError::StaleSerial {
                            backend: self.describe(),
                            lineage: current.lineage,
                            stored: current.serial,
                            writing: state.serial,
                        });
                    }
                    // The bytes just read, not a server-side copy: they are exactly the version
                    // the `If-Match` below replaces, whereas a copy could pick up a newer one.
                    inner
                        .put(&inner.backup_key, &object.bytes, Condition::None)
                        .map_err(|e| inner.failed("write the backup object", &inner.backup_key, e))?;
                    // A server that sends no ETag cannot be asked for a conditional write; the
                    // lock, which every writing run holds, is then all that keeps writers apart.
                    object.etag.as_deref().map_or(Condition::None, Condition::IfMatch)
                }
                None => Condition::IfNoneMatch,
            };
            // A server that ignores `If-Match`/`If-None-Match` writes unconditionally: the lock
            // still keeps runs apart, and only a writer that skipped the lock could be lost.
            match inner.put(&inner.key, &bytes, condition) {
                Ok(Outcome::Done) => return Ok(()),
                // Changed since it was read: read again, and the checks above decide.
                Ok(Outcome::Conflict) => conflicted = true,
                Err(e) => return Err(inner.failed("write the state object", &inner.key, e)),
            }
        }
        Err(StateError::Io {
            action: "write the state object",
            path: PathBuf::from(self.describe()),
            source: io::Error::other(format!(
                "it changed between every read and write of {WRITE_ATTEMPTS} attempts; is a run writing without the lock?"
            )),
        })
    }

    fn lock(&self, operation: &str, timeout: Duration) -> Result<LockGuard, StateError> {
        let info = LockInfo::new(operation);
        crate::backend::wait_for_lock(|| self.describe(), timeout, LOCK_POLL, || self.inner.try_lock(&info))?;
        let inner = Arc::clone(&self.inner);
        Ok(LockGuard::new(info, move |info| inner.release(&info.id)))
    }

    fn unlock(&self, id: &str) -> Result<(), StateError> {
        let inner = &self.inner;
        for _ in 0..LOCK_ATTEMPTS {
            let Some((lock, etag)) = inner.read_lock()? else {
                return Err(StateError::NotLocked { backend: self.describe(), given: id.to_owned() });
            };
            if lock.id != id {
                return Err(StateError::LockIdMismatch {
                    backend: self.describe(),
                    given: id.to_owned(),
                    lock: Box::new(lock),
                });
            }
            // Conditional, so that a lock taken again between the read and the delete survives;
            // then the loop reads the new one and refuses its id.
            match inner.delete(&inner.lock_key, etag.as_deref()) {
                Ok(Outcome::Done) => return Ok(()),
                Ok(Outcome::Conflict) => {}
                Err(e) => return Err(inner.failed("delete the lock object", &inner.lock_key, e)),
            }
        }
        Err(inner.changing("delete the lock object"))
    }

    fn lock_info(&self) -> Result<Option<LockInfo>, StateError> {
        Ok(self.inner.read_lock()?.map(|(lock, _)| lock))
    }
}

/// A stored object and the ETag it was read with.
struct Object {
    bytes: Vec<u8>,
    etag: Option<String>,
}

/// What a write or delete must find to go ahead.
#[derive(Clone, Copy)]
enum Condition<'a> {
    None,
    /// The object is still the one with this ETag.
    IfMatch(&'a str),
    /// There is no object yet.
    IfNoneMatch,
}

/// How a conditional write or delete went.
enum Outcome {
    Done,
    /// The condition did not hold: the object was changed (or created) by someone else.
    Conflict,
}

impl Inner {
    /// An object of this backend for messages: `s3://bucket/key at endpoint`.
    fn name(&self, key: &str) -> String {
        object_name(self.bucket.name(), key, &self.endpoint)
    }

    /// The error for a failed request of `action` on `key`.
    fn failed(&self, action: &'static str, key: &str, error: S3Error) -> StateError {
        StateError::Io { action, path: PathBuf::from(self.name(key)), source: io::Error::other(error) }
    }

    fn changing(&self, action: &'static str) -> StateError {
        StateError::Io {
            action,
            path: PathBuf::from(self.name(&self.lock_key)),
            source: io::Error::other(format!("the lock object changed on each of {LOCK_ATTEMPTS} attempts")),
        }
    }

    /// The object, or `None` when the bucket has no such key. Any other 404 (no such bucket) is an
    /// error, so that a wrong bucket name never reads as an empty stack.
    fn get(&self, key: &str) -> Result<Option<Object>, S3Error> {
        let answer = self.exchange(Method::GET, key, Condition::None, None)?;
        if answer.status.is_success() {
            return Ok(Some(Object { bytes: answer.body, etag: answer.etag }));
        }
        let error = self.answer_error(&answer);
        if answer.status == StatusCode::NOT_FOUND && error.code() == Some("NoSuchKey") {
            return Ok(None);
        }
        Err(error)
    }

    fn put(&self, key: &str, bytes: &[u8], condition: Condition<'_>) -> Result<Outcome, S3Error> {
        let answer = self.exchange(Method::PUT, key, condition, Some(bytes))?;
        if answer.status.is_success() {
            return Ok(Outcome::Done);
        }
        let error = self.answer_error(&answer);
        // AWS answers 409 ConditionalRequestConflict to a conditional write racing another one.
        if !matches!(condition, Condition::None)
            && (answer.status == StatusCode::PRECONDITION_FAILED || error.code() == Some("ConditionalRequestConflict"))
        {
            return Ok(Outcome::Conflict);
        }
        Err(error)
    }

    /// Deletes `key`, only while it still has `etag` when one is given. An object already gone
    /// counts as deleted.
    fn delete(&self, key: &str, etag: Option<&str>) -> Result<Outcome, S3Error> {
        let condition = etag.map_or(Condition::None, Condition::IfMatch);
        let mut answer = self.exchange(Method::DELETE, key, condition, None)?;
        if answer.status == StatusCode::NOT_IMPLEMENTED && etag.is_some() {
            // Conditional deletes are recent in S3; a server that refuses them outright gets the
            // plain delete, and the read just before it is the check.
            answer = self.exchange(Method::DELETE, key, Condition::None, None)?;
        }
        match answer.status {
            status if status.is_success() || status == StatusCode::NOT_FOUND => Ok(Outcome::Done),
            StatusCode::PRECONDITION_FAILED => Ok(Outcome::Conflict),
            _ => Err(self.answer_error(&answer)),
        }
    }

    /// The current lock and its ETag, `None` when there is no lock object.
    fn read_lock(&self) -> Result<Option<(LockInfo, Option<String>)>, StateError> {
        let Some(object) =
            self.get(&self.lock_key).map_err(|e| self.failed("read the lock object", &self.lock_key, e))?
        else {
            return Ok(None);
        };
        // The lock object is written whole by one PUT, so unlike a lock file it is never seen
        // half-written: what does not parse now never will.
        match serde_json::from_slice::<LockInfo>(&object.bytes) {
            Ok(lock) => Ok(Some((lock, object.etag))),
            Err(error) => Err(StateError::LockUnreadable {
                path: PathBuf::from(self.name(&self.lock_key)),
                detail: error.to_string(),
            }),
        }
    }

    /// Takes the lock if it is free; otherwise returns who holds it.
    fn try_lock(&self, info: &LockInfo) -> Result<Option<LockInfo>, StateError> {
        let mut record = serde_json::to_vec_pretty(info).map_err(|error| StateError::Io {
            action: "encode the lock for",
            path: PathBuf::from(self.name(&self.lock_key)),
            source: io::Error::other(error),
        })?;
        record.push(b'\n');
        for _ in 0..LOCK_ATTEMPTS {
            match self.put(&self.lock_key, &record, Condition::IfNoneMatch) {
                Ok(Outcome::Done) => return Ok(None),
                Ok(Outcome::Conflict) => match self.read_lock()? {
                    // A create retried after a lost answer is refused by its own first attempt.
                    Some((holder, _)) if holder.id == info.id => return Ok(None),
                    Some((holder, _)) => return Ok(Some(holder)),
                    // Released between the refused create and the read: the lock is free again.
                    None => {}
                },
                Err(e) => return Err(self.failed("create the lock object", &self.lock_key, e)),
            }
        }
        Err(self.changing("create the lock object"))
    }

    /// Gives back the lock `id` when a guard is released. A lock that is gone or has another id was
    /// broken with `unlock`, perhaps taken by another run since, and is left alone.
    fn release(&self, id: &str) -> Result<(), StateError> {
        match self.read_lock()? {
            Some((lock, etag)) if lock.id == id => match self.delete(&self.lock_key, etag.as_deref()) {
                // A conflict means the lock was broken and taken again since the read: not ours.
                Ok(Outcome::Done | Outcome::Conflict) => Ok(()),
                Err(e) => Err(self.failed("delete the lock object", &self.lock_key, e)),
            },
            _ => Ok(()),
        }
    }

    /// Sends one request, signed anew for every attempt, retrying server errors and broken
    /// connections; returns the answer whatever its status.
    fn exchange(
        &self,
        method: Method,
        key: &str,
        condition: Condition<'_>,
        body: Option<&[u8]>,
    ) -> Result<Answer, S3Error> {
        let mut headers: Vec<(&'static str, String)> = Vec::new();
        if body.is_some() {
            headers.push(("content-type", "application/json".to_owned()));
        }
        match condition {
            Condition::None => {}
            Condition::IfMatch(etag) => headers.push(("if-match", etag.to_owned())),
            Condition::IfNoneMatch => headers.push(("if-none-match", "*".to_owned())),
        }
        let mut attempt = 0;
        loop {
            let url = self.sign(&method, key, &headers);
            let request =
                Request { method: method.clone(), url, headers: headers.clone(), body: body.map(<[u8]>::to_vec) };
            let result = self.http.send(request).map_err(|message| S3Error::transport(self.scrub(message)));
            let error = match result {
                Ok(answer) if answer.status.is_server_error() => self.answer_error(&answer),
                Ok(answer) => return Ok(answer),
                Err(error) => error,
            };
            if attempt >= MAX_RETRIES || !error.retryable() {
                return Err(error);
            }
            std::thread::sleep(RETRY_BASE.saturating_mul(1 << attempt));
            attempt += 1;
        }
    }

    /// A presigned URL for `method` on `key`; the headers are signed, and must be sent as given.
    fn sign(&self, method: &Method, key: &str, headers: &[(&'static str, String)]) -> Url {
        let credentials = Some(&self.credentials);
        if *method == Method::PUT {
            signed(self.bucket.put_object(credentials, key), headers)
        } else if *method == Method::DELETE {
            signed(self.bucket.delete_object(credentials, key), headers)
        } else {
            signed(self.bucket.get_object(credentials, key), headers)
        }
    }

    /// An error answer as an [`S3Error`], with S3's `Code` and `Message` and the keys scrubbed.
    fn answer_error(&self, answer: &Answer) -> S3Error {
        let body = String::from_utf8_lossy(&answer.body);
        let code = xml_text(&body, "Code")
            .or_else(|| answer.status.canonical_reason().map(|reason| reason.replace(' ', "")))
            .map(|code| self.scrub(code));
        let message = xml_text(&body, "Message")
            .filter(|message| !message.is_empty())
            .unwrap_or_else(|| format!("the server answered {}", answer.status));
        S3Error { status: Some(answer.status.as_u16()), code, message: self.scrub(message) }
    }

    /// `text` without the keys: a server may echo the access key, and a transport error may
    /// quote a request.
    fn scrub(&self, mut text: String) -> String {
        for secret in &self.secrets {
            if !secret.expose().is_empty() {
                text = text.replace(secret.expose(), "****");
            }
        }
        text
    }
}

/// Signs `action` with `headers`.
fn signed<'a>(mut action: impl S3Action<'a>, headers: &'a [(&'static str, String)]) -> Url {
    for (name, value) in headers {
        action.headers_mut().insert(*name, value.as_str());
    }
    action.sign(SIGNATURE_TTL)
}

/// `s3://bucket/key at endpoint`: how messages name an object, never by its signed URL.
fn object_name(bucket: &str, key: &str, endpoint: &str) -> String {
    format!("s3://{bucket}/{key} at {endpoint}")
}

/// The text of the first `<tag>...</tag>` element, unescaped. S3's error bodies are flat enough
/// that this is all the XML the backend reads.
fn xml_text(body: &str, tag: &str) -> Option<String> {
    let (open, close) = (format!("<{tag}>"), format!("</{tag}>"));
    let start = body.find(&open)? + open.len();
    let end = body[start..].find(&close)? + start;
    Some(
        body[start..end]
            .trim()
            .replace("&lt;", "<")
            .replace("&gt;", ">")
            .replace("&quot;", "\"")
            .replace("&apos;", "'")
            .replace("&amp;", "&"),
    )
}

/// One request for the HTTP thread, signed by the caller.
struct Request {
    method: Method,
    url: Url,
    headers: Vec<(&'static str, String)>,
    body: Option<Vec<u8>>,
}

/// An HTTP answer of any status.
struct Answer {
    status: StatusCode,
    etag: Option<String>,
    body: Vec<u8>,
}

struct Job {
    request: Request,
    reply: mpsc::SyncSender<Result<Answer, String>>,
}

/// The thread that sends this backend's requests, with a runtime of its own.
///
/// `Backend` is synchronous, and it is called from inside a tokio runtime (the apply executor
/// writes state from async tasks). Blocking on a future there, with the caller's runtime or a new
/// one, panics ("Cannot start a runtime from within a runtime"). `reqwest::blocking` is no way out:
/// it checks for a runtime by building and dropping one on every new client and every request,
/// which inside a runtime panics in debug builds ("Cannot drop a runtime in a context where
/// blocking is not allowed"; checked with reqwest 0.12.28), and in release builds skips the check.
/// So the async client lives on this thread, which owns a current-thread runtime and runs one task
/// per request; callers hand it signed requests over a channel and wait for the answer on a
/// standard channel. That blocks only the calling thread, as the local backend's file I/O does,
/// never needs the caller's runtime (so a current-thread runtime cannot deadlock), and works
/// whether or not the caller is inside one. The thread ends once the backend, its clones and its
/// lock guards are dropped.
struct HttpThread {
    jobs: tokio::sync::mpsc::UnboundedSender<Job>,
}

impl HttpThread {
    fn start() -> io::Result<HttpThread> {
        let (jobs, mut queue) = tokio::sync::mpsc::unbounded_channel::<Job>();
        let (ready, started) = mpsc::sync_channel::<io::Result<()>>(1);
        std::thread::Builder::new().name("terrace-state-s3".to_owned()).spawn(move || {
            let setup = tokio::runtime::Builder::new_current_thread().enable_all().build().and_then(|runtime| {
                let client = reqwest::Client::builder()
                    .use_rustls_tls()
                    .connect_timeout(Duration::from_secs(10))
                    .timeout(Duration::from_secs(60))
                    .user_agent(concat!("terrace/", env!("CARGO_PKG_VERSION")))
                    .build()
                    .map_err(|error| io::Error::other(error_chain(&error.without_url())))?;
                Ok((runtime, client))
            });
            let (runtime, client) = match setup {
                Ok(setup) => setup,
                Err(error) => {
                    let _ = ready.send(Err(error));
                    return;
                }
            };
            let _ = ready.send(Ok(()));
            runtime.block_on(async move {
                while let Some(job) = queue.recv().await {
                    let client = client.clone();
                    tokio::spawn(async move {
                        // The caller may have given up waiting; then nobody needs the answer.
                        let _ = job.reply.send(perform(&client, job.request).await);
                    });
                }
            });
        })?;
        started.recv().map_err(|_| io::Error::other("the HTTP thread ended while starting"))??;
        Ok(HttpThread { jobs })
    }

    /// Sends `request` and waits for its answer; an error text when there was none.
    fn send(&self, request: Request) -> Result<Answer, String> {
        let (reply, answer) = mpsc::sync_channel(1);
        let stopped = || "the HTTP thread of the state backend has stopped".to_owned();
        self.jobs.send(Job { request, reply }).map_err(|_| stopped())?;
        answer.recv().map_err(|_| stopped())?
    }
}

async fn perform(client: &reqwest::Client, request: Request) -> Result<Answer, String> {
    let mut builder = client.request(request.method, request.url);
    for (name, value) in request.headers {
        builder = builder.header(name, value);
    }
    if let Some(body) = request.body {
        // Set even for an empty body, which S3 would otherwise refuse with 411 Length Required.
        builder = builder.header(reqwest::header::CONTENT_LENGTH, body.len()).body(body);
    }
    // The URL carries the access key in `X-Amz-Credential`, so errors drop it.
    let response = builder.send().await.map_err(|error| error_chain(&error.without_url()))?;
    let status = response.status();
    let etag = response.headers().get(reqwest::header::ETAG).and_then(|etag| etag.to_str().ok()).map(str::to_owned);
    let body = response.bytes().await.map_err(|error| error_chain(&error.without_url()))?;
    Ok(Answer { status, etag, body: body.to_vec() })
}

/// An error and its causes on one line: reqwest's own message is only the outermost layer.
fn error_chain(error: &dyn std::error::Error) -> String {
    let mut text = error.to_string();
    let mut source = error.source();
    while let Some(cause) = source {
        let cause_text = cause.to_string();
        if !text.contains(&cause_text) {
            text.push_str(": ");
            text.push_str(&cause_text);
        }
        source = cause.source();
    }
    text
}

#[cfg(test)]
mod tests {
    use super::*;

    fn config(endpoint: &str, bucket: &str, key: &str) -> S3Config {
        S3Config {
            endpoint: endpoint.to_owned(),
            region: "fsn1".to_owned(),
            bucket: bucket.to_owned(),
            key: key.to_owned(),
            access_key: Secret::new("AKIDEXAMPLE"),
            secret_key: Secret::new("wJalrXUtnFEMI/K7MDENG"),
        }
    }

    #[test]
    fn secrets_never_print() {
        let secret = Secret::new("wJalrXUtnFEMI");
        assert_eq!(format!("{secret}"), "****");
        assert_eq!(format!("{secret:?}"), "Secret(****)");
        let config = format!("{:?}", config("https://fsn1.your-objectstorage.com", "b", "k"));
        assert!(!config.contains("AKIDEXAMPLE") && !config.contains("wJalr"), "{config}");
    }

    #[test]
    fn keys_come_from_one_pair_of_variables_terrace_first() {
        let env = |pairs: &'static [(&'static str, &'static str)]| {
            move |name: &str| pairs.iter().find(|(k, _)| *k == name).map(|(_, v)| (*v).to_owned())
        };
        let keys = |pairs| credentials_from(env(pairs)).map(|(a, s)| (a.expose().to_owned(), s.expose().to_owned()));
        let both: &'static [(&str, &str)] = &[
            ("TERRACE_BACKEND_ACCESS_KEY", "T-A"),
            ("TERRACE_BACKEND_SECRET_KEY", "T-S"),
            ("AWS_ACCESS_KEY_ID", "A-A"),
            ("AWS_SECRET_ACCESS_KEY", "A-S"),
        ];
        assert_eq!(keys(both), Some(("T-A".to_owned(), "T-S".to_owned())));
        assert_eq!(keys(&both[2..]), Some(("A-A".to_owned(), "A-S".to_owned())));
        assert_eq!(keys(&[]), None);
        assert_eq!(keys(&both[1..]), None, "half of terrace's pair is not completed with AWS's");
        assert_eq!(keys(&[("AWS_ACCESS_KEY_ID", "A-A")]), None);
        assert_eq!(
            keys(&[
                ("TERRACE_BACKEND_ACCESS_KEY", " "),
                ("AWS_ACCESS_KEY_ID", "A-A"),
                ("AWS_SECRET_ACCESS_KEY", "A-S")
            ]),
            Some(("A-A".to_owned(), "A-S".to_owned())),
            "a blank value is unset"
        );
    }

    #[test]
    fn urls_are_path_style_with_the_keys_suffixed_and_signed_for_the_region() {
        let backend =
            S3Backend::new(config("https://fsn1.your-objectstorage.com/", "terrace", "stacks/seed/state.json"))
                .expect("a valid configuration");
        assert_eq!(backend.describe(), "s3://terrace/stacks/seed/state.json at https://fsn1.your-objectstorage.com");
        assert_eq!(
            (backend.backup_key(), backend.lock_key()),
            ("stacks/seed/state.json.backup", "stacks/seed/state.json.lock")
        );
        let url = backend.inner.sign(&Method::PUT, backend.lock_key(), &[("if-none-match", "*".to_owned())]);
        assert_eq!(
            url.as_str().split('?').next(),
            Some("https://fsn1.your-objectstorage.com/terrace/stacks/seed/state.json.lock")
        );
        let query = url.query().unwrap_or_default();
        assert!(query.contains("%2Ffsn1%2Fs3%2Faws4_request"), "{query}");
        assert!(query.contains("X-Amz-SignedHeaders=host%3Bif-none-match"), "the condition is signed: {query}");
        assert!(!query.contains("wJalr"), "the secret key is never sent");
        let debug = format!("{backend:?}");
        assert!(debug.contains("s3://terrace/") && !debug.contains("AKIDEXAMPLE"), "{debug}");
    }

    #[test]
    fn bad_configurations_are_refused_naming_the_backend() {
        for (endpoint, bucket, key, reason) in [
            ("ftp://example.com", "b", "k", "http or https"),
            ("not a url", "b", "k", "endpoint"),
            ("https://example.com/?x=1", "b", "k", "query"),
            ("https://user@example.com", "b", "k", "user name"),
            ("https://example.com", "", "k", "bucket"),
            ("https://example.com", "a/b", "k", "bucket"),
            ("https://example.com", "b", "", "key"),
            ("https://example.com", "b", "stacks/", "key"),
        ] {
            let error = S3Backend::new(config(endpoint, bucket, key)).expect_err(endpoint);
            let message = error.to_string();
            assert!(message.starts_with("cannot use s3://"), "{message}");
            assert!(message.contains(reason), "{message} names {reason}");
        }
        let mut no_region = config("https://example.com", "b", "k");
        no_region.region = " ".to_owned();
        assert!(S3Backend::new(no_region).expect_err("no region").to_string().contains("region"));
    }

    #[test]
    fn s3_error_bodies_give_code_and_message_without_the_keys() {
        let backend = S3Backend::new(config("http://127.0.0.1:9", "b", "k")).expect("valid");
        let body = b"<?xml version=\"1.0\"?><Error><Code>InvalidAccessKeyId</Code><Message>Key AKIDEXAMPLE \
                     &amp; more</Message></Error>"
            .to_vec();
        let error = backend.inner.answer_error(&Answer { status: StatusCode::FORBIDDEN, etag: None, body });
        assert_eq!(error.to_string(), "HTTP 403, InvalidAccessKeyId: Key **** & more");
        assert_eq!((error.status(), error.code()), (Some(403), Some("InvalidAccessKeyId")));
        assert!(!error.retryable());
        let error = backend.inner.answer_error(&Answer {
            status: StatusCode::SERVICE_UNAVAILABLE,
            etag: None,
            body: Vec::new(),
        });
        assert_eq!(error.code(), Some("ServiceUnavailable"));
        assert!(error.retryable());
        assert!(S3Error::transport("connection refused".to_owned()).to_string().starts_with("no answer: "));
    }
}
