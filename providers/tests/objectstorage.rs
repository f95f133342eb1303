//! The Object Storage client against the emulator's S3 bucket API over real HTTP: create, check, list and
//! delete (both idempotent), S3 errors that name the bucket, refused unsigned requests, retries of server
//! errors, and keys that never show.

use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};

use axum::http::StatusCode;
use terrace_providers::emulator::{Emulator, EmulatorConfig};
use terrace_providers::objectstorage::{ObjectStorage, ObjectStorageConfig, Secret, StorageError};

const ACCESS_KEY: &str = "AKIATERRACEACCESSKEY";
const SECRET_KEY: &str = "terrace/secret+KEY/never-shown";

async fn emulator() -> Emulator {
    Emulator::start("127.0.0.1:0".parse().expect("address"), EmulatorConfig::default())
        .await
        .expect("the emulator starts")
}

fn config(endpoint_template: &str) -> ObjectStorageConfig {
    ObjectStorageConfig {
        endpoint_template: endpoint_template.to_owned(),
        access_key: Secret::new(ACCESS_KEY),
        secret_key: Secret::new(SECRET_KEY),
    }
}

fn storage(emulator: &Emulator) -> ObjectStorage {
    ObjectStorage::new(config(&emulator.s3_url())).expect("a client")
}

fn assert_no_secret(text: &str) {
    assert!(!text.contains(ACCESS_KEY), "the access key leaked: {text}");
    assert!(!text.contains(SECRET_KEY), "the secret key leaked: {text}");
}

#[tokio::test]
async fn buckets_are_created_checked_listed_and_deleted_idempotently() {
    let emulator = emulator().await;
    let storage = storage(&emulator);
    assert_eq!(storage.endpoint("nbg1"), emulator.s3_url(), "one endpoint for every location");

    assert!(!storage.bucket_exists("terrace-logs", "nbg1").await.expect("checked"));
    storage.create_bucket("terrace-logs", "nbg1").await.expect("created");
    assert_eq!(emulator.buckets(), ["terrace-logs"]);
    assert!(storage.bucket_exists("terrace-logs", "nbg1").await.expect("checked"));

    storage.create_bucket("terrace-logs", "nbg1").await.expect("creating again is no error");
    storage.create_bucket("terrace-backups", "hel1").await.expect("created");
    assert_eq!(emulator.buckets(), ["terrace-backups", "terrace-logs"]);
    assert_eq!(storage.list_buckets("fsn1").await.expect("listed"), ["terrace-backups", "terrace-logs"]);

    storage.delete_bucket("terrace-logs", "nbg1").await.expect("deleted");
    assert_eq!(emulator.buckets(), ["terrace-backups"]);
    assert!(!storage.bucket_exists("terrace-logs", "nbg1").await.expect("checked"));
    storage.delete_bucket("terrace-logs", "nbg1").await.expect("deleting again is no error");
    assert_eq!(emulator.buckets(), ["terrace-backups"], "the second delete touched nothing else");

    // The client sent path-style URLs under the endpoint's path, and the create was really repeated.
    let requests = emulator.requests();
    let puts: Vec<_> = requests.iter().filter(|r| r.method == "PUT").map(|r| r.path.as_str()).collect();
    assert_eq!(puts, ["/s3/terrace-logs/", "/s3/terrace-logs/", "/s3/terrace-backups/"]);
    assert!(requests.iter().all(|r| r.query.as_deref().is_some_and(|q| q.contains("X-Amz-Signature="))));
    emulator.shutdown().await;
}

#[tokio::test]
async fn the_location_is_the_signed_region() {
    let emulator = emulator().await;
    storage(&emulator).create_bucket("terrace-hel", "hel1").await.expect("created");
    // ListBuckets shows each bucket's region, which the emulator took from the signature's scope.
    let listing = reqwest::Client::new()
        .get(format!("{}/", emulator.s3_url()))
        .header("authorization", "AWS4-HMAC-SHA256 Credential=AKID/20250101/fsn1/s3/aws4_request, Signature=0")
        .send()
        .await
        .expect("answered");
    assert_eq!(listing.status(), StatusCode::OK);
    let body = listing.text().await.expect("a body");
    assert!(body.contains("<Name>terrace-hel</Name>") && body.contains("<BucketRegion>hel1</BucketRegion>"), "{body}");

    let error = storage(&emulator).create_bucket("terrace-ash", "ash").await.expect_err("no Object Storage in ash");
    assert_eq!(error.code(), Some("InvalidLocationConstraint"));
    assert!(error.to_string().contains("`terrace-ash`"), "{error}");
    emulator.shutdown().await;
}

#[tokio::test]
async fn a_bad_name_is_an_error_naming_the_bucket() {
    let emulator = emulator().await;
    let error = storage(&emulator).create_bucket("Bad_Bucket", "fsn1").await.expect_err("invalid name");
    assert!(
        matches!(&error, StorageError::Api { status: 400, code, bucket, .. }
        if code == "InvalidBucketName" && bucket == "Bad_Bucket"),
        "{error:?}"
    );
    let text = error.to_string();
    assert!(text.starts_with("create bucket `Bad_Bucket` in fsn1: InvalidBucketName: "), "{text}");
    assert!(emulator.buckets().is_empty());
    let requests = emulator.requests();
    assert_eq!(requests.len(), 1, "a 400 is not retried");
    emulator.shutdown().await;
}

#[tokio::test]
async fn unsigned_requests_are_refused() {
    let emulator = emulator().await;
    let http = reqwest::Client::new();
    let url = format!("{}/terrace-unsigned", emulator.s3_url());
    for request in [http.put(&url), http.put(&url).bearer_auth("a-cloud-api-token")] {
        let answer = request.send().await.expect("answered");
        assert_eq!(answer.status(), StatusCode::FORBIDDEN);
        let body = answer.text().await.expect("a body");
        assert!(body.contains("<Error><Code>AccessDenied</Code><Message>"), "{body}");
    }
    // Half a presigned URL (an algorithm but no signature) is not signed either.
    let half = http.put(format!("{url}?X-Amz-Algorithm=AWS4-HMAC-SHA256")).send().await.expect("answered");
    assert_eq!(half.status(), StatusCode::FORBIDDEN);
    assert!(emulator.buckets().is_empty(), "nothing was created");

    // The same request signed by header goes through: the signature is required, not verified.
    let signed = http
        .put(&url)
        .header("authorization", "AWS4-HMAC-SHA256 Credential=AKID/20250101/nbg1/s3/aws4_request, Signature=0")
        .send()
        .await
        .expect("answered");
    assert_eq!(signed.status(), StatusCode::OK);
    assert_eq!(emulator.buckets(), ["terrace-unsigned"]);
    emulator.shutdown().await;
}

#[tokio::test]
async fn keys_never_show_in_debug_output_or_errors() {
    let config = config("http://127.0.0.1:1/s3");
    assert_no_secret(&format!("{config:?}"));
    assert!(format!("{config:?}").contains("http://127.0.0.1:1/s3"), "the endpoint is shown");
    let storage = ObjectStorage::new(config).expect("a client");
    assert_no_secret(&format!("{storage:?}"));

    // Nothing listens on port 1: the transport error, after its retries, must not carry the signed URL.
    let error = storage.create_bucket("terrace-down", "fsn1").await.expect_err("connection refused");
    assert!(matches!(error, StorageError::Transport { .. }), "{error:?}");
    assert!(error.to_string().starts_with("create bucket `terrace-down` in fsn1: "), "{error}");
    assert_no_secret(&error.to_string());
    assert_no_secret(&format!("{error:?}"));

    // An S3 answer that echoes the access key has it scrubbed.
    let echo = axum::Router::new().fallback(|| async {
        let body = format!("<Error><Code>InvalidAccessKeyId</Code><Message>No key {ACCESS_KEY}</Message></Error>");
        (StatusCode::FORBIDDEN, body)
    });
    let (url, server) = serve(echo).await;
    let storage = ObjectStorage::new(self::config(&url)).expect("a client");
    let error = storage.delete_bucket("terrace-echo", "fsn1").await.expect_err("forbidden");
    assert_eq!(error.code(), Some("InvalidAccessKeyId"));
    assert_no_secret(&error.to_string());
    assert!(error.to_string().contains("No key ****"), "{error}");
    server.abort();
}

#[tokio::test]
async fn server_errors_are_retried_and_client_errors_are_not() {
    let calls = Arc::new(AtomicUsize::new(0));
    let counter = Arc::clone(&calls);
    // Two 503s, then success.
    let flaky = axum::Router::new().fallback(move || {
        let n = counter.fetch_add(1, Ordering::SeqCst);
        async move {
            if n < 2 {
                (StatusCode::SERVICE_UNAVAILABLE, "<Error><Code>SlowDown</Code><Message>later</Message></Error>")
            } else {
                (StatusCode::OK, "")
            }
        }
    });
    let (url, server) = serve(flaky).await;
    let storage = ObjectStorage::new(config(&url)).expect("a client");
    storage.create_bucket("terrace-flaky", "fsn1").await.expect("succeeds on the third attempt");
    assert_eq!(calls.load(Ordering::SeqCst), 3);
    server.abort();

    // Always 500: gives up after a few retries with the last answer.
    let calls = Arc::new(AtomicUsize::new(0));
    let counter = Arc::clone(&calls);
    let broken = axum::Router::new().fallback(move || {
        counter.fetch_add(1, Ordering::SeqCst);
        async {
            (StatusCode::INTERNAL_SERVER_ERROR, "<Error><Code>InternalError</Code><Message>oops</Message></Error>")
        }
    });
    let (url, server) = serve(broken).await;
    let storage = ObjectStorage::new(config(&url)).expect("a client");
    let error = storage.bucket_exists("terrace-broken", "fsn1").await.expect_err("gives up");
    assert_eq!(error.status(), Some(500));
    assert_eq!(calls.load(Ordering::SeqCst), 4, "one attempt and three retries");
    server.abort();

    // A 409 other than BucketAlreadyOwnedByYou is final at once.
    let calls = Arc::new(AtomicUsize::new(0));
    let counter = Arc::clone(&calls);
    let taken = axum::Router::new().fallback(move || {
        counter.fetch_add(1, Ordering::SeqCst);
        async { (StatusCode::CONFLICT, "<Error><Code>BucketAlreadyExists</Code><Message>taken</Message></Error>") }
    });
    let (url, server) = serve(taken).await;
    let storage = ObjectStorage::new(config(&url)).expect("a client");
    let error = storage.create_bucket("terrace-taken", "fsn1").await.expect_err("someone else's");
    assert_eq!(error.code(), Some("BucketAlreadyExists"));
    assert_eq!(calls.load(Ordering::SeqCst), 1);
    server.abort();
}

#[tokio::test]
async fn a_bucket_that_is_not_empty_is_not_deleted() {
    let not_empty = axum::Router::new().fallback(|| async {
        (StatusCode::CONFLICT, "<Error><Code>BucketNotEmpty</Code><Message>The bucket is not empty</Message></Error>")
    });
    let (url, server) = serve(not_empty).await;
    let storage = ObjectStorage::new(config(&url)).expect("a client");
    let error = storage.delete_bucket("terrace-full", "fsn1").await.expect_err("not empty");
    assert!(matches!(&error, StorageError::NotEmpty { bucket, .. } if bucket == "terrace-full"), "{error:?}");
    assert!(error.to_string().contains("`terrace-full`"), "{error}");
    server.abort();
}

/// Serves a stub S3 server on an ephemeral port; returns its endpoint and the task to abort.
async fn serve(router: axum::Router) -> (String, tokio::task::JoinHandle<()>) {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.expect("a port");
    let addr = listener.local_addr().expect("an address");
    let task = tokio::spawn(async move {
        let _ = axum::serve(listener, router).await;
    });
    (format!("http://{addr}"), task)
}
