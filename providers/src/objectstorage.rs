//! Hetzner Object Storage buckets over the S3 API: create (idempotent), check, list and delete (idempotent).
//!
//! Requests are signed with AWS Signature Version 4 by `rusty-s3`, which does no I/O and signs by query
//! string (presigned URLs, `X-Amz-Algorithm=AWS4-HMAC-SHA256&...`); `reqwest` sends them. URLs are
//! path-style (`{endpoint}/{bucket}/`), which every S3 server accepts, and the region signed is the location
//! name (`fsn1`, `nbg1`, `hel1`), as Hetzner documents. Server errors (5xx) and broken connections are
//! retried a few times with jittered exponential backoff; S3 error bodies become a [`StorageError`] with
//! the bucket, the operation, the HTTP status and S3's `Code` and `Message`. The keys never appear in any
//! `Debug`, `Display` or error text: presigned URLs carry the access key, so transport errors drop their
//! URL.

use std::fmt;
use std::sync::Arc;
use std::time::Duration;

use reqwest::{Method, StatusCode, Url};
use rusty_s3::{Bucket, Credentials, S3Action as _, UrlStyle};

/// `TERRACE_S3_ENDPOINT`'s default: Hetzner's endpoint per location.
pub const DEFAULT_ENDPOINT_TEMPLATE: &str = "https://{location}.your-objectstorage.com";

/// How long a signed request stays valid; every attempt is signed anew.
const SIGNATURE_TTL: Duration = Duration::from_secs(300);
/// Retries of one request after a 5xx or a broken connection.
const MAX_RETRIES: u32 = 3;
/// The first retry waits up to this long, the next ones twice as long each.
const RETRY_BASE: Duration = Duration::from_millis(200);

/// An S3 key that never prints itself: `Debug` and `Display` show `****`. It is a small twin of
/// [`crate::client::Token`] rather than that type, so that the client's type and its output stay as
/// they are and a key is not called a token in debug output.
#[derive(Clone, PartialEq, Eq)]
pub struct Secret(String);

impl Secret {
    pub fn new(secret: impl Into<String>) -> Self {
        Self(secret.into())
    }

    /// The secret itself, for signing only.
    pub(crate) fn expose(&self) -> &str {
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

/// Where and with which keys to reach Object Storage.
#[derive(Debug, Clone)]
pub struct ObjectStorageConfig {
    /// The endpoint URL, with `{location}` replaced by the bucket's location; without `{location}` one
    /// endpoint serves every location (the emulator's `http://127.0.0.1:PORT/s3`).
    pub endpoint_template: String,
    pub access_key: Secret,
    pub secret_key: Secret,
}

impl ObjectStorageConfig {
    /// From `TERRACE_S3_ACCESS_KEY` and `TERRACE_S3_SECRET_KEY` (both required, else `None`) and
    /// `TERRACE_S3_ENDPOINT` (optional, default [`DEFAULT_ENDPOINT_TEMPLATE`]). Empty values count as unset.
    pub fn from_env() -> Option<Self> {
        Self::from_vars(|name| std::env::var(name).ok())
    }

    fn from_vars(var: impl Fn(&str) -> Option<String>) -> Option<Self> {
        let var = |name: &str| var(name).filter(|v| !v.trim().is_empty());
        let access_key = var("TERRACE_S3_ACCESS_KEY")?;
        let secret_key = var("TERRACE_S3_SECRET_KEY")?;
        let endpoint_template = var("TERRACE_S3_ENDPOINT").unwrap_or_else(|| DEFAULT_ENDPOINT_TEMPLATE.to_owned());
        Some(Self { endpoint_template, access_key: Secret::new(access_key), secret_key: Secret::new(secret_key) })
    }
}

/// What a request was doing, for error messages: "create bucket `logs` in fsn1".
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum BucketOperation {
    Create,
    Check,
    Delete,
    List,
}

impl fmt::Display for BucketOperation {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            BucketOperation::Create => "create",
            BucketOperation::Check => "check",
            BucketOperation::Delete => "delete",
            BucketOperation::List => "list",
        })
    }
}

/// Why a bucket operation failed. Every variant that concerns one bucket names it.
#[derive(thiserror::Error, Debug)]
pub enum StorageError {
    #[error("the Object Storage endpoint `{endpoint}` is not usable: {reason}")]
    InvalidEndpoint { endpoint: String, reason: String },
    #[error("{operation} bucket `{bucket}`: `{location}` is not a location name (lowercase letters, digits, `-`)")]
    InvalidLocation { operation: BucketOperation, bucket: String, location: String },
    #[error("cannot start the HTTP client for Object Storage: {reason}")]
    Client { reason: String },
    #[error(
        "{operation} bucket `{bucket}` in {location}: the bucket is not empty (BucketNotEmpty); delete its objects first"
    )]
    NotEmpty { operation: BucketOperation, bucket: String, location: String },
    #[error("{operation} bucket `{bucket}` in {location}: {code}: {message} (HTTP {status})")]
    Api {
        operation: BucketOperation,
        /// Empty for [`BucketOperation::List`].
        bucket: String,
        location: String,
        status: u16,
        /// S3's `<Code>`, or the status's reason when the answer has no S3 error body (HEAD never has).
        code: String,
        message: String,
    },
    #[error("{operation} bucket `{bucket}` in {location}: {reason}")]
    Transport { operation: BucketOperation, bucket: String, location: String, reason: String },
}

impl StorageError {
    /// The HTTP status of the answer, if there was one.
    pub fn status(&self) -> Option<u16> {
        match self {
            StorageError::Api { status, .. } => Some(*status),
            StorageError::NotEmpty { .. } => Some(409),
            _ => None,
        }
    }

    /// S3's error code (`AccessDenied`, `InvalidBucketName`, `BucketNotEmpty`, ...), if there was one.
    pub fn code(&self) -> Option<&str> {
        match self {
            StorageError::Api { code, .. } => Some(code),
            StorageError::NotEmpty { .. } => Some("BucketNotEmpty"),
            _ => None,
        }
    }

    /// Worth another attempt: a server error or a broken connection.
    fn retryable(&self) -> bool {
        match self {
            StorageError::Api { status, .. } => *status >= 500,
            StorageError::Transport { .. } => true,
            _ => false,
        }
    }
}

/// The Object Storage client. Cheap to clone: clones share the HTTP connection pool and the keys.
#[derive(Clone)]
pub struct ObjectStorage {
    inner: Arc<Inner>,
}

struct Inner {
    endpoint_template: String,
    credentials: Credentials,
    /// To scrub from S3 messages, which must never echo them.
    access_key: Secret,
    secret_key: Secret,
    http: reqwest::Client,
}

impl fmt::Debug for ObjectStorage {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        // Not `Credentials`' own `Debug`, which prints the access key.
        f.debug_struct("ObjectStorage")
            .field("endpoint_template", &self.inner.endpoint_template)
            .finish_non_exhaustive()
    }
}

/// One request's context, so that every error can say what it was about.
struct Target<'a> {
    operation: BucketOperation,
    bucket: &'a str,
    location: &'a str,
}

impl ObjectStorage {
    /// Checks the endpoint template (an `http` or `https` URL once `{location}` is replaced) and builds
    /// the HTTP client; no request is sent.
    pub fn new(config: ObjectStorageConfig) -> Result<Self, StorageError> {
        let endpoint_template = config.endpoint_template.trim().trim_end_matches('/').to_owned();
        let sample = endpoint_template.replace("{location}", "fsn1");
        let invalid = |reason: String| StorageError::InvalidEndpoint { endpoint: endpoint_template.clone(), reason };
        let url = Url::parse(&sample).map_err(|e| invalid(e.to_string()))?;
        if !matches!(url.scheme(), "http" | "https") {
            return Err(invalid(format!("the scheme must be http or https, not `{}`", url.scheme())));
        }
        if url.host_str().is_none_or(str::is_empty) {
            return Err(invalid("it has no host".to_owned()));
        }
        if url.query().is_some() || !url.username().is_empty() || url.password().is_some() {
            return Err(invalid("it must not have a query string or a user name".to_owned()));
        }
        let http = reqwest::Client::builder()
            .use_rustls_tls()
            .timeout(Duration::from_secs(60))
            .user_agent(concat!("terrace/", env!("CARGO_PKG_VERSION")))
            .build()
            .map_err(|e| StorageError::Client { reason: error_chain(&e.without_url()) })?;
        let credentials = Credentials::new(config.access_key.expose(), config.secret_key.expose());
        Ok(Self {
            inner: Arc::new(Inner {
                endpoint_template,
                credentials,
                access_key: config.access_key,
                secret_key: config.secret_key,
                http,
            }),
        })
    }

    /// The endpoint of a location: the template with `{location}` replaced, without a trailing `/`.
    /// The access key and secret key, for the one caller that must hand them on: the backups of
    /// a database server write to the bucket with them (recorded in state as sensitive, put in the
    /// server's cloud-init). Never printed.
    pub fn expose_credentials(&self) -> (String, String) {
        (self.inner.access_key.expose().to_owned(), self.inner.secret_key.expose().to_owned())
    }

    pub fn endpoint(&self, location: &str) -> String {
        self.inner.endpoint_template.replace("{location}", location)
    }

    /// Creates the bucket in `location`. A bucket this account already owns counts as created, so a
    /// retried or repeated create succeeds.
    pub async fn create_bucket(&self, name: &str, location: &str) -> Result<(), StorageError> {
        let target = Target { operation: BucketOperation::Create, bucket: name, location };
        let bucket = self.bucket(&target)?;
        // No `CreateBucketConfiguration` body: the endpoint's host chooses the location, and an empty
        // body is what every S3 server accepts.
        let answer =
            self.send(&target, Method::PUT, || bucket.create_bucket(&self.inner.credentials).sign(SIGNATURE_TTL)).await;
        match answer {
            Ok(_) => Ok(()),
            Err(e) if e.code() == Some("BucketAlreadyOwnedByYou") => Ok(()),
            Err(e) => Err(e),
        }
    }

    /// Whether the bucket exists (`HEAD` on it): `true` on 200, `false` on 404, an error otherwise
    /// (403 means it exists but belongs to someone else, or the keys are wrong).
    pub async fn bucket_exists(&self, name: &str, location: &str) -> Result<bool, StorageError> {
        let target = Target { operation: BucketOperation::Check, bucket: name, location };
        let bucket = self.bucket(&target)?;
        let answer = self
            .send(&target, Method::HEAD, || bucket.head_bucket(Some(&self.inner.credentials)).sign(SIGNATURE_TTL))
            .await;
        match answer {
            Ok(_) => Ok(true),
            Err(e) if e.status() == Some(404) => Ok(false),
            Err(e) => Err(e),
        }
    }

    /// Deletes the bucket. A bucket that does not exist counts as deleted; one that still holds objects
    /// is [`StorageError::NotEmpty`].
    pub async fn delete_bucket(&self, name: &str, location: &str) -> Result<(), StorageError> {
        let target = Target { operation: BucketOperation::Delete, bucket: name, location };
        let bucket = self.bucket(&target)?;
        let answer = self
            .send(&target, Method::DELETE, || bucket.delete_bucket(&self.inner.credentials).sign(SIGNATURE_TTL))
            .await;
        match answer {
            Ok(_) => Ok(()),
            Err(e) if e.status() == Some(404) || e.code() == Some("NoSuchBucket") => Ok(()),
            Err(e) => Err(e),
        }
    }

    /// The names of the account's buckets (`ListBuckets` at the location's endpoint), sorted.
    pub async fn list_buckets(&self, location: &str) -> Result<Vec<String>, StorageError> {
        let target = Target { operation: BucketOperation::List, bucket: "", location };
        check_location(&target)?;
        let root = self.endpoint_url(&target)?;
        let credentials = &self.inner.credentials;
        let body = self
            .send(&target, Method::GET, || {
                rusty_s3::signing::sign(
                    &jiff::Timestamp::now(),
                    rusty_s3::Method::Get,
                    root.clone(),
                    credentials.key(),
                    credentials.secret(),
                    None,
                    location,
                    SIGNATURE_TTL.as_secs(),
                    std::iter::empty(),
                    std::iter::empty(),
                )
            })
            .await?;
        let mut names = bucket_names(&body);
        names.sort();
        Ok(names)
    }

    /// The location's endpoint as a URL with a trailing `/`, so that paths are appended to it.
    fn endpoint_url(&self, target: &Target<'_>) -> Result<Url, StorageError> {
        let endpoint = self.endpoint(target.location);
        Url::parse(&format!("{endpoint}/"))
            .map_err(|e| StorageError::InvalidEndpoint { endpoint: endpoint.clone(), reason: e.to_string() })
    }

    /// The bucket's path-style URLs: `{endpoint}/{name}/`.
    fn bucket(&self, target: &Target<'_>) -> Result<Bucket, StorageError> {
        check_location(target)?;
        let endpoint = self.endpoint_url(target)?;
        Bucket::new(endpoint, UrlStyle::Path, target.bucket.to_owned(), target.location.to_owned()).map_err(|e| {
            StorageError::InvalidEndpoint { endpoint: self.endpoint(target.location), reason: format!("{e:?}") }
        })
    }

    /// Sends one request, signed anew for every attempt by `sign`, retrying 5xx answers and broken
    /// connections; returns the body of a 2xx answer.
    async fn send(&self, target: &Target<'_>, method: Method, sign: impl Fn() -> Url) -> Result<String, StorageError> {
        let mut attempt = 0u32;
        loop {
            let mut request = self.inner.http.request(method.clone(), sign());
            if method == Method::PUT {
                // A PUT without a body still says so: S3 (and moto) answer 411 Length Required to one
                // that sends no Content-Length at all.
                request = request.header(reqwest::header::CONTENT_LENGTH, "0").body(Vec::new());
            }
            let error = match request.send().await {
                Ok(response) => {
                    let status = response.status();
                    let body = response.text().await.unwrap_or_default();
                    if status.is_success() {
                        return Ok(body);
                    }
                    self.answer_error(target, status, &body)
                }
                Err(e) => StorageError::Transport {
                    operation: target.operation,
                    bucket: target.bucket.to_owned(),
                    location: target.location.to_owned(),
                    // The URL carries the access key in `X-Amz-Credential`.
                    reason: error_chain(&e.without_url()),
                },
            };
            if attempt >= MAX_RETRIES || !error.retryable() {
                return Err(error);
            }
            tokio::time::sleep(backoff(attempt)).await;
            attempt += 1;
        }
    }

    /// An S3 error answer as a [`StorageError`], with the keys scrubbed from the message.
    fn answer_error(&self, target: &Target<'_>, status: StatusCode, body: &str) -> StorageError {
        let mut error = error_from_answer(target, status, body);
        if let StorageError::Api { message, .. } = &mut error {
            for secret in [&self.inner.access_key, &self.inner.secret_key] {
                if !secret.expose().is_empty() {
                    *message = message.replace(secret.expose(), "****");
                }
            }
        }
        error
    }
}

/// Locations are substituted into the host, so only names that cannot change the URL's shape pass.
fn check_location(target: &Target<'_>) -> Result<(), StorageError> {
    let valid = !target.location.is_empty()
        && target.location.bytes().all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-');
    if valid {
        Ok(())
    } else {
        Err(StorageError::InvalidLocation {
            operation: target.operation,
            bucket: target.bucket.to_owned(),
            location: target.location.to_owned(),
        })
    }
}

/// Full jitter over an exponential bound, so that parallel workers do not retry in step.
fn backoff(attempt: u32) -> Duration {
    let bound = RETRY_BASE.saturating_mul(1u32 << attempt.min(10));
    let millis = u64::try_from(bound.as_millis()).unwrap_or(u64::MAX);
    Duration::from_millis(millis / 2 + fastrand::u64(0..=millis / 2))
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

fn error_from_answer(target: &Target<'_>, status: StatusCode, body: &str) -> StorageError {
    let code =
        xml_text(body, "Code").unwrap_or_else(|| status.canonical_reason().unwrap_or("HTTP error").replace(' ', ""));
    let message = xml_text(body, "Message").unwrap_or_default();
    if code == "BucketNotEmpty" {
        return StorageError::NotEmpty {
            operation: target.operation,
            bucket: target.bucket.to_owned(),
            location: target.location.to_owned(),
        };
    }
    StorageError::Api {
        operation: target.operation,
        bucket: target.bucket.to_owned(),
        location: target.location.to_owned(),
        status: status.as_u16(),
        message: if message.is_empty() { format!("the server answered {status}") } else { message },
        code,
    }
}

/// The text of the first `<tag>...</tag>` element, unescaped. S3's error and list bodies are flat
/// enough that this is all the XML reading bucket operations need.
fn xml_text(body: &str, tag: &str) -> Option<String> {
    xml_texts(body, tag).into_iter().next()
}

fn xml_texts(body: &str, tag: &str) -> Vec<String> {
    let (open, close) = (format!("<{tag}>"), format!("</{tag}>"));
    let mut found = Vec::new();
    let mut rest = body;
    while let Some(start) = rest.find(&open) {
        let after = &rest[start + open.len()..];
        let Some(end) = after.find(&close) else { break };
        found.push(unescape(after[..end].trim()));
        rest = &after[end + close.len()..];
    }
    found
}

/// The bucket names of a `ListAllMyBucketsResult`: each `<Name>` inside a `<Bucket>`, not the owner's.
fn bucket_names(body: &str) -> Vec<String> {
    xml_texts(body, "Bucket").iter().filter_map(|bucket| xml_text(bucket, "Name")).collect()
}

fn unescape(text: &str) -> String {
    text.replace("&lt;", "<").replace("&gt;", ">").replace("&quot;", "\"").replace("&apos;", "'").replace("&amp;", "&")
}

#[cfg(test)]
mod tests {
    use super::*;

    fn target(operation: BucketOperation) -> Target<'static> {
        Target { operation, bucket: "logs", location: "fsn1" }
    }

    #[test]
    fn secrets_never_print() {
        let secret = Secret::new("wJalrXUtnFEMI");
        assert_eq!(format!("{secret}"), "****");
        assert_eq!(format!("{secret:?}"), "Secret(****)");
        assert_eq!(secret.expose(), "wJalrXUtnFEMI");
    }

    #[test]
    fn the_environment_needs_both_keys_and_defaults_the_endpoint() {
        let env = |pairs: &'static [(&'static str, &'static str)]| {
            move |name: &str| pairs.iter().find(|(k, _)| *k == name).map(|(_, v)| (*v).to_owned())
        };
        let config = ObjectStorageConfig::from_vars(env(&[
            ("TERRACE_S3_ACCESS_KEY", "AKID"),
            ("TERRACE_S3_SECRET_KEY", "SECRET"),
        ]))
        .expect("both keys");
        assert_eq!(config.endpoint_template, DEFAULT_ENDPOINT_TEMPLATE);
        assert_eq!((config.access_key.expose(), config.secret_key.expose()), ("AKID", "SECRET"));
        let custom = ObjectStorageConfig::from_vars(env(&[
            ("TERRACE_S3_ACCESS_KEY", "AKID"),
            ("TERRACE_S3_SECRET_KEY", "SECRET"),
            ("TERRACE_S3_ENDPOINT", "http://127.0.0.1:9000/s3"),
        ]))
        .expect("both keys");
        assert_eq!(custom.endpoint_template, "http://127.0.0.1:9000/s3");
        assert!(ObjectStorageConfig::from_vars(env(&[("TERRACE_S3_ACCESS_KEY", "AKID")])).is_none());
        assert!(
            ObjectStorageConfig::from_vars(env(&[("TERRACE_S3_ACCESS_KEY", " "), ("TERRACE_S3_SECRET_KEY", "S")]))
                .is_none(),
            "a blank key is no key"
        );
    }

    fn storage(template: &str) -> Result<ObjectStorage, StorageError> {
        ObjectStorage::new(ObjectStorageConfig {
            endpoint_template: template.to_owned(),
            access_key: Secret::new("AKID"),
            secret_key: Secret::new("SECRET"),
        })
    }

    #[test]
    fn endpoints_replace_the_location_and_urls_are_path_style() {
        let hetzner = storage(DEFAULT_ENDPOINT_TEMPLATE).expect("valid");
        assert_eq!(hetzner.endpoint("nbg1"), "https://nbg1.your-objectstorage.com");
        let bucket = hetzner.bucket(&Target { operation: BucketOperation::Create, bucket: "logs", location: "hel1" });
        let bucket = bucket.expect("a bucket");
        assert_eq!(bucket.base_url().as_str(), "https://hel1.your-objectstorage.com/logs/");
        assert_eq!(bucket.region(), "hel1");

        // A base path is kept, with or without a trailing slash.
        for template in ["http://127.0.0.1:9000/s3", "http://127.0.0.1:9000/s3/"] {
            let emulator = storage(template).expect("valid");
            assert_eq!(emulator.endpoint("fsn1"), "http://127.0.0.1:9000/s3");
            let bucket = emulator.bucket(&target(BucketOperation::Create)).expect("a bucket");
            assert_eq!(bucket.base_url().as_str(), "http://127.0.0.1:9000/s3/logs/");
        }
    }

    #[test]
    fn signed_urls_carry_sigv4_for_the_location() {
        let storage = storage(DEFAULT_ENDPOINT_TEMPLATE).expect("valid");
        let bucket = storage.bucket(&target(BucketOperation::Create)).expect("a bucket");
        let url = bucket.create_bucket(&storage.inner.credentials).sign(SIGNATURE_TTL);
        let query = url.query().unwrap_or_default();
        assert!(query.contains("X-Amz-Algorithm=AWS4-HMAC-SHA256"), "{query}");
        assert!(query.contains("%2Ffsn1%2Fs3%2Faws4_request"), "region is the location: {query}");
        assert!(!query.contains("SECRET"), "the secret key is never sent");
    }

    #[test]
    fn bad_endpoints_and_locations_are_refused() {
        for bad in ["ftp://{location}.example.com", "not a url", "https://{location}.example.com/?x=1"] {
            let error = storage(bad).expect_err(bad);
            assert!(matches!(error, StorageError::InvalidEndpoint { .. }), "{bad}: {error}");
        }
        let storage = storage(DEFAULT_ENDPOINT_TEMPLATE).expect("valid");
        let error = storage
            .bucket(&Target { operation: BucketOperation::Create, bucket: "logs", location: "evil.com/x" })
            .expect_err("a location with a slash");
        assert!(error.to_string().contains("`logs`") && error.to_string().contains("evil.com/x"), "{error}");
    }

    #[test]
    fn s3_errors_keep_code_message_status_and_bucket() {
        let body = "<?xml version=\"1.0\"?><Error><Code>InvalidBucketName</Code><Message>The specified bucket \
                    is not valid &amp; so on.</Message><BucketName>Logs</BucketName></Error>";
        let error = error_from_answer(&target(BucketOperation::Create), StatusCode::BAD_REQUEST, body);
        assert_eq!(error.code(), Some("InvalidBucketName"));
        assert_eq!(error.status(), Some(400));
        assert_eq!(
            error.to_string(),
            "create bucket `logs` in fsn1: InvalidBucketName: The specified bucket is not valid & so on. (HTTP 400)"
        );
        assert!(!error.retryable());

        let not_empty = "<Error><Code>BucketNotEmpty</Code><Message>The bucket you tried to delete is not \
                         empty</Message></Error>";
        let error = error_from_answer(&target(BucketOperation::Delete), StatusCode::CONFLICT, not_empty);
        assert!(matches!(&error, StorageError::NotEmpty { bucket, .. } if bucket == "logs"), "{error:?}");
        assert!(error.to_string().contains("delete bucket `logs` in fsn1: the bucket is not empty"), "{error}");

        // HEAD answers have no body: the status names the problem.
        let error = error_from_answer(&target(BucketOperation::Check), StatusCode::FORBIDDEN, "");
        assert_eq!(error.code(), Some("Forbidden"));
        assert!(error.to_string().contains("HTTP 403"), "{error}");

        let error = error_from_answer(&target(BucketOperation::Create), StatusCode::SERVICE_UNAVAILABLE, "<html/>");
        assert!(error.retryable(), "5xx is retried");
    }

    #[test]
    fn bucket_lists_read_names_of_buckets_only() {
        let body = "<ListAllMyBucketsResult><Owner><ID>o</ID><DisplayName>owner</DisplayName></Owner><Buckets>\
                    <Bucket><Name>b-two</Name><CreationDate>2025-01-01T00:00:00.000Z</CreationDate></Bucket>\
                    <Bucket><Name>a-one</Name><CreationDate>2025-01-01T00:00:00.000Z</CreationDate></Bucket>\
                    </Buckets></ListAllMyBucketsResult>";
        assert_eq!(bucket_names(body), ["b-two", "a-one"]);
        assert!(bucket_names("<ListAllMyBucketsResult><Buckets/></ListAllMyBucketsResult>").is_empty());
    }

    #[test]
    fn backoff_grows_with_jitter() {
        for attempt in 0..MAX_RETRIES {
            let bound = RETRY_BASE * (1 << attempt);
            let delay = backoff(attempt);
            assert!(delay >= bound / 2 && delay <= bound, "attempt {attempt}: {delay:?}");
        }
    }
}
