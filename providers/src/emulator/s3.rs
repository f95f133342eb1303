//! Hetzner Object Storage's bucket API (S3) in the emulator, served under `/s3/` with one endpoint for
//! every location: create, check, delete and list buckets, answering S3's XML errors.
//!
//! Two halves: [`Buckets`] holds the state and S3's rules and knows no HTTP, like the store; [`handle`]
//! is the S3 face that `http.rs` hands every `/s3` request to, since S3 authenticates, routes and answers
//! unlike the Cloud API (no bearer token, no rate-limit headers, XML). Requests must be signed with
//! SigV4, by header (`Authorization: AWS4-HMAC-SHA256 ...`) or by query string (presigned URLs, as
//! `rusty-s3` sends); the signature is not verified. A bucket's location is its `LocationConstraint`,
//! else the region of the signature's credential scope.

use std::collections::BTreeMap;

use axum::body::Body;
use axum::http::header::{AUTHORIZATION, CONTENT_TYPE};
use axum::http::{HeaderMap, HeaderName, HeaderValue, Method, StatusCode};
use axum::response::Response;

use super::http::percent_decode;

/// The locations that offer Object Storage.
const LOCATIONS: [&str; 3] = ["fsn1", "nbg1", "hel1"];

/// Where a bucket lives and when it was made (UNIX milliseconds).
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Bucket {
    pub(crate) location: String,
    pub(crate) created: i64,
}

/// The buckets, by name: names are unique across locations, as in S3.
#[derive(Debug, Default)]
pub(crate) struct Buckets(BTreeMap<String, Bucket>);

/// The S3 error codes the emulator answers.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Code {
    AccessDenied,
    InvalidBucketName,
    InvalidLocationConstraint,
    BucketAlreadyOwnedByYou,
    NoSuchBucket,
    MethodNotAllowed,
    NotImplemented,
}

impl Code {
    fn as_str(self) -> &'static str {
        match self {
            Code::AccessDenied => "AccessDenied",
            Code::InvalidBucketName => "InvalidBucketName",
            Code::InvalidLocationConstraint => "InvalidLocationConstraint",
            Code::BucketAlreadyOwnedByYou => "BucketAlreadyOwnedByYou",
            Code::NoSuchBucket => "NoSuchBucket",
            Code::MethodNotAllowed => "MethodNotAllowed",
            Code::NotImplemented => "NotImplemented",
        }
    }

    fn status(self) -> StatusCode {
        match self {
            Code::AccessDenied => StatusCode::FORBIDDEN,
            Code::InvalidBucketName | Code::InvalidLocationConstraint => StatusCode::BAD_REQUEST,
            Code::BucketAlreadyOwnedByYou => StatusCode::CONFLICT,
            Code::NoSuchBucket => StatusCode::NOT_FOUND,
            Code::MethodNotAllowed => StatusCode::METHOD_NOT_ALLOWED,
            Code::NotImplemented => StatusCode::NOT_IMPLEMENTED,
        }
    }
}

/// An S3 error: the code, a message, and the bucket it concerns.
#[derive(Debug, Clone, PartialEq, Eq)]
struct S3Error {
    code: Code,
    message: String,
    bucket: Option<String>,
}

impl S3Error {
    fn new(code: Code, message: impl Into<String>) -> Self {
        Self { code, message: message.into(), bucket: None }
    }

    fn on(mut self, bucket: &str) -> Self {
        self.bucket = Some(bucket.to_owned());
        self
    }
}

/// S3's bucket naming rules as Hetzner applies them: 3 to 63 lowercase letters, digits and hyphens,
/// starting and ending with a letter or a digit.
fn valid_name(name: &str) -> bool {
    let alnum = |b: u8| b.is_ascii_lowercase() || b.is_ascii_digit();
    (3..=63).contains(&name.len())
        && name.bytes().all(|b| alnum(b) || b == b'-')
        && name.bytes().next().is_some_and(alnum)
        && name.bytes().last().is_some_and(alnum)
}

impl Buckets {
    /// The bucket names, sorted.
    pub(crate) fn names(&self) -> Vec<String> {
        self.0.keys().cloned().collect()
    }

    fn create(&mut self, name: &str, location: &str, now: i64) -> Result<(), S3Error> {
        if !valid_name(name) {
            return Err(S3Error::new(
                Code::InvalidBucketName,
                "The specified bucket is not valid: use 3 to 63 lowercase letters, digits and hyphens, starting \
                 and ending with a letter or a digit.",
            )
            .on(name));
        }
        if !LOCATIONS.contains(&location) {
            return Err(S3Error::new(
                Code::InvalidLocationConstraint,
                format!("Object Storage is not offered in `{location}`; use one of {}.", LOCATIONS.join(", ")),
            )
            .on(name));
        }
        if self.0.contains_key(name) {
            return Err(S3Error::new(
                Code::BucketAlreadyOwnedByYou,
                "Your previous request to create the named bucket succeeded and you already own it.",
            )
            .on(name));
        }
        self.0.insert(name.to_owned(), Bucket { location: location.to_owned(), created: now });
        Ok(())
    }

    fn get(&self, name: &str) -> Result<&Bucket, S3Error> {
        self.0.get(name).ok_or_else(|| S3Error::new(Code::NoSuchBucket, "The specified bucket does not exist").on(name))
    }

    fn delete(&mut self, name: &str) -> Result<Bucket, S3Error> {
        self.0
            .remove(name)
            .ok_or_else(|| S3Error::new(Code::NoSuchBucket, "The specified bucket does not exist").on(name))
    }
}

/// Whether a path is served here: `/s3` and everything under `/s3/`.
pub(crate) fn serves(path: &str) -> bool {
    path == "/s3" || path.starts_with("/s3/")
}

/// Answers one `/s3` request. `now` is the emulator's clock in UNIX milliseconds.
pub(crate) fn handle(
    buckets: &mut Buckets,
    method: &Method,
    path: &str,
    query: Option<&str>,
    headers: &HeaderMap,
    body: &[u8],
    now: i64,
) -> Response {
    let head = method == Method::HEAD;
    let Some(region) = signed_region(headers, query) else {
        let error = S3Error::new(
            Code::AccessDenied,
            "Access Denied: sign the request with AWS Signature Version 4 (AWS4-HMAC-SHA256)",
        );
        return error_response(&error, head);
    };
    let rest = path.strip_prefix("/s3").unwrap_or(path).trim_matches('/');
    let answer = match rest.split_once('/') {
        None if rest.is_empty() => match *method {
            Method::GET => Ok(xml(StatusCode::OK, &list_xml(buckets))),
            _ => {
                Err(S3Error::new(Code::MethodNotAllowed, "The specified method is not allowed against this resource."))
            }
        },
        None => bucket_request(buckets, method, rest, region.as_deref(), body, now),
        Some((bucket, _key)) => {
            Err(S3Error::new(Code::NotImplemented, "Objects are not emulated, only buckets.").on(bucket))
        }
    };
    answer.unwrap_or_else(|error| error_response(&error, head))
}

fn bucket_request(
    buckets: &mut Buckets,
    method: &Method,
    name: &str,
    region: Option<&str>,
    body: &[u8],
    now: i64,
) -> Result<Response, S3Error> {
    match *method {
        Method::PUT => {
            let constraint = location_constraint(body);
            // Hetzner's default location, when neither the body nor the signature names one.
            let location = constraint.as_deref().or(region).unwrap_or("fsn1");
            buckets.create(name, location, now)?;
            let mut response = empty(StatusCode::OK);
            if let Ok(value) = HeaderValue::from_str(&format!("/{name}")) {
                response.headers_mut().insert(HeaderName::from_static("location"), value);
            }
            Ok(response)
        }
        Method::HEAD => {
            let bucket = buckets.get(name)?;
            let mut response = empty(StatusCode::OK);
            if let Ok(value) = HeaderValue::from_str(&bucket.location) {
                response.headers_mut().insert(HeaderName::from_static("x-amz-bucket-region"), value);
            }
            Ok(response)
        }
        Method::DELETE => {
            buckets.delete(name)?;
            Ok(empty(StatusCode::NO_CONTENT))
        }
        _ => {
            Err(S3Error::new(Code::MethodNotAllowed, "The specified method is not allowed against this resource.")
                .on(name))
        }
    }
}

/// `Some(region)` for a SigV4-signed request (the region of its credential scope, when it has one), `None`
/// for an unsigned one. The signature itself is not checked.
fn signed_region(headers: &HeaderMap, query: Option<&str>) -> Option<Option<String>> {
    if let Some(auth) = headers.get(AUTHORIZATION).and_then(|v| v.to_str().ok()) {
        let rest = auth.strip_prefix("AWS4-HMAC-SHA256")?;
        let credential =
            rest.split(',').map(str::trim).find_map(|part| part.strip_prefix("Credential=")).map(str::to_owned);
        return Some(credential.as_deref().and_then(scope_region));
    }
    let pairs: Vec<(String, String)> = query
        .unwrap_or("")
        .split('&')
        .filter_map(|pair| pair.split_once('='))
        .map(|(k, v)| (percent_decode(k), percent_decode(v)))
        .collect();
    let value = |key: &str| pairs.iter().find(|(k, _)| k == key).map(|(_, v)| v.as_str());
    if value("X-Amz-Algorithm") != Some("AWS4-HMAC-SHA256") || value("X-Amz-Signature").is_none_or(str::is_empty) {
        return None;
    }
    Some(value("X-Amz-Credential").and_then(scope_region))
}

/// The region of a credential scope: `AKID/20250101/fsn1/s3/aws4_request` -> `fsn1`.
fn scope_region(credential: &str) -> Option<String> {
    credential.split('/').nth(2).filter(|r| !r.is_empty()).map(str::to_owned)
}

/// The `LocationConstraint` of a `CreateBucketConfiguration` body, if any.
fn location_constraint(body: &[u8]) -> Option<String> {
    let text = std::str::from_utf8(body).ok()?;
    let start = text.find("<LocationConstraint>")? + "<LocationConstraint>".len();
    let end = text[start..].find("</LocationConstraint>")? + start;
    Some(text[start..end].trim().to_owned()).filter(|l| !l.is_empty())
}

fn escape(text: &str) -> String {
    text.replace('&', "&amp;").replace('<', "&lt;").replace('>', "&gt;").replace('"', "&quot;")
}

/// S3 writes times with milliseconds in UTC: `2025-01-01T00:00:00.000Z`.
fn s3_time(ms: i64) -> String {
    jiff::Timestamp::from_millisecond(ms)
        .map(|t| t.strftime("%Y-%m-%dT%H:%M:%S%.3fZ").to_string())
        .unwrap_or_else(|_| "9999-12-31T23:59:59.000Z".to_owned())
}

fn list_xml(buckets: &Buckets) -> String {
    let mut xml = String::from(
        "<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n<ListAllMyBucketsResult xmlns=\"http://s3.amazonaws.com/doc/2006-03-01/\">\
         <Owner><ID>terrace-emulator</ID><DisplayName>terrace-emulator</DisplayName></Owner><Buckets>",
    );
    for (name, bucket) in &buckets.0 {
        xml.push_str(&format!(
            "<Bucket><Name>{}</Name><CreationDate>{}</CreationDate><BucketRegion>{}</BucketRegion></Bucket>",
            escape(name),
            s3_time(bucket.created),
            escape(&bucket.location)
        ));
    }
    xml.push_str("</Buckets></ListAllMyBucketsResult>");
    xml
}

fn error_xml(error: &S3Error) -> String {
    let bucket = error.bucket.as_deref().map(|b| format!("<BucketName>{}</BucketName>", escape(b))).unwrap_or_default();
    format!(
        "<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n<Error><Code>{}</Code><Message>{}</Message>{bucket}\
         <RequestId>emulator</RequestId></Error>",
        error.code.as_str(),
        escape(&error.message)
    )
}

fn empty(status: StatusCode) -> Response {
    let mut response = Response::new(Body::empty());
    *response.status_mut() = status;
    response
}

fn xml(status: StatusCode, text: &str) -> Response {
    let mut response = Response::new(Body::from(text.to_owned()));
    *response.status_mut() = status;
    response.headers_mut().insert(CONTENT_TYPE, HeaderValue::from_static("application/xml"));
    response
}

/// An error as S3 answers it: XML, except for `HEAD`, whose answers have no body.
fn error_response(error: &S3Error, head: bool) -> Response {
    if head { empty(error.code.status()) } else { xml(error.code.status(), &error_xml(error)) }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn bucket_names_follow_the_rules() {
        for good in ["abc", "my-bucket-1", "0logs9", &"a".repeat(63)] {
            assert!(valid_name(good), "{good}");
        }
        for bad in ["ab", "My-Bucket", "under_score", "-start", "end-", "dot.ted", "", &"a".repeat(64)] {
            assert!(!valid_name(bad), "{bad}");
        }
    }

    #[test]
    fn buckets_are_created_once_and_deleted_once() {
        let mut buckets = Buckets::default();
        buckets.create("logs", "nbg1", 1_000).expect("created");
        let again = buckets.create("logs", "nbg1", 2_000).expect_err("exists");
        assert_eq!(again.code, Code::BucketAlreadyOwnedByYou);
        assert_eq!(buckets.get("logs").expect("there"), &Bucket { location: "nbg1".to_owned(), created: 1_000 });
        assert_eq!(
            buckets.create("other", "ash", 0).expect_err("no such location").code,
            Code::InvalidLocationConstraint
        );
        assert_eq!(buckets.names(), ["logs"]);
        buckets.delete("logs").expect("deleted");
        assert_eq!(buckets.delete("logs").expect_err("gone").code, Code::NoSuchBucket);
    }

    #[test]
    fn the_region_comes_from_the_header_or_the_presigned_query() {
        let mut headers = HeaderMap::new();
        headers.insert(
            AUTHORIZATION,
            HeaderValue::from_static(
                "AWS4-HMAC-SHA256 Credential=AKID/20250101/hel1/s3/aws4_request, SignedHeaders=host, Signature=abc",
            ),
        );
        assert_eq!(signed_region(&headers, None), Some(Some("hel1".to_owned())));
        let presigned = "X-Amz-Algorithm=AWS4-HMAC-SHA256&X-Amz-Credential=AKID%2F20250101%2Fnbg1%2Fs3%2Faws4_request\
                         &X-Amz-Signature=abc";
        assert_eq!(signed_region(&HeaderMap::new(), Some(presigned)), Some(Some("nbg1".to_owned())));
        assert_eq!(signed_region(&HeaderMap::new(), None), None, "unsigned");
        assert_eq!(signed_region(&HeaderMap::new(), Some("X-Amz-Algorithm=AWS4-HMAC-SHA256")), None, "no signature");
        let mut basic = HeaderMap::new();
        basic.insert(AUTHORIZATION, HeaderValue::from_static("Bearer token"));
        assert_eq!(signed_region(&basic, None), None, "a Cloud API token is not an S3 signature");
    }

    #[test]
    fn location_constraints_and_times_read_and_write_like_s3() {
        let body =
            b"<CreateBucketConfiguration><LocationConstraint>hel1</LocationConstraint></CreateBucketConfiguration>";
        assert_eq!(location_constraint(body).as_deref(), Some("hel1"));
        assert_eq!(location_constraint(b""), None);
        assert_eq!(s3_time(1_735_689_600_123), "2025-01-01T00:00:00.123Z");
    }
}
