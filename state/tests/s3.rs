//! The s3 backend against a real S3 server (moto, started once per test process): the conformance
//! suite every backend passes, then what only object storage shows: the server's conditional
//! writes the lock and the writes rely on, racing runs, the backup and lock objects, refusals, and
//! keys that never reach a message.

use std::io::Read as _;
use std::net::TcpListener;
use std::process::{Child, ChildStdin, Command, Stdio};
use std::sync::{Arc, Barrier, OnceLock};
use std::time::{Duration, Instant};

use rusty_s3::{Bucket, Credentials, S3Action as _, UrlStyle};
use terrace_state::conformance::{Fixture, sample_state};
use terrace_state::s3::{S3Error, Secret};
use terrace_state::{Backend, LockInfo, S3Backend, S3Config, State, StateError, to_json};

/// Keys that no message may show, in any of the forms a URL or a body would carry them.
const ACCESS_KEY: &str = "AKIATERRACETEST0001";
const SECRET_KEY: &str = "terrace/Test+Secret=Key0001";
const KEY: &str = "stacks/seed/terrace.state.json";

/// A moto S3 server on a free loopback port.
///
/// The test process keeps one in a static, and statics are never dropped, so the server is not
/// stopped by `Drop` but by its stdin: it runs under a small shell that waits for end-of-file on
/// the pipe this process holds, then stops it. When this process exits, however it exits (all
/// tests done, a panic, a kill), the pipe closes and the server goes with it. `Drop` closes the
/// pipe too, for a server that did not become ready.
struct Moto {
    endpoint: String,
    child: Child,
    stdin: Option<ChildStdin>,
    _log: tempfile::NamedTempFile,
}

impl Drop for Moto {
    fn drop(&mut self) {
        drop(self.stdin.take());
        let deadline = Instant::now() + Duration::from_secs(5);
        while Instant::now() < deadline {
            if let Ok(Some(_)) = self.child.try_wait() {
                return;
            }
            std::thread::sleep(Duration::from_millis(20));
        }
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

const SUPERVISOR: &str = r#"moto_server -H 127.0.0.1 -p "$1" < /dev/null > "$2" 2>&1 &
server=$!
cat > /dev/null
kill "$server" 2> /dev/null
wait "$server""#;

impl Moto {
    fn start() -> Moto {
        let found = std::env::var_os("PATH")
            .is_some_and(|path| std::env::split_paths(&path).any(|dir| dir.join("moto_server").is_file()));
        assert!(found, "moto_server is not on PATH: pip install 'moto[server]==5.2.1' (as .ci/setup does)");
        let mut failures = Vec::new();
        // Another process may take the free port before moto binds it; then moto exits and a new
        // port is tried.
        for _ in 0..3 {
            match Moto::try_start() {
                Ok(moto) => return moto,
                Err(failure) => failures.push(failure),
            }
        }
        panic!("moto_server did not start:\n{}", failures.join("\n---\n"));
    }

    fn try_start() -> Result<Moto, String> {
        let port = TcpListener::bind("127.0.0.1:0")
            .and_then(|listener| listener.local_addr())
            .map_err(|error| format!("no free port: {error}"))?
            .port();
        let log = tempfile::NamedTempFile::new().map_err(|error| format!("no log file: {error}"))?;
        let mut child = Command::new("sh")
            .args(["-c", SUPERVISOR, "sh", &port.to_string()])
            .arg(log.path())
            .stdin(Stdio::piped())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .map_err(|error| format!("cannot run sh: {error}"))?;
        let stdin = child.stdin.take();
        let mut moto = Moto { endpoint: format!("http://127.0.0.1:{port}"), child, stdin, _log: log };
        let deadline = Instant::now() + Duration::from_secs(60);
        while Instant::now() < deadline {
            if let Ok(Some(status)) = moto.child.try_wait() {
                return Err(format!("moto_server exited ({status}):\n{}", moto.log()));
            }
            let ready = http().get(format!("{}/", moto.endpoint)).timeout(Duration::from_secs(2)).send();
            if ready.is_ok_and(|answer| answer.status().is_success()) {
                return Ok(moto);
            }
            std::thread::sleep(Duration::from_millis(50));
        }
        Err(format!("moto_server was not ready after 60 s:\n{}", moto.log()))
    }

    fn log(&self) -> String {
        let mut text = String::new();
        let _ = std::fs::File::open(self._log.path()).and_then(|mut file| file.read_to_string(&mut text));
        text
    }
}

fn moto() -> &'static Moto {
    static MOTO: OnceLock<Moto> = OnceLock::new();
    MOTO.get_or_init(Moto::start)
}

fn http() -> &'static reqwest::blocking::Client {
    static HTTP: OnceLock<reqwest::blocking::Client> = OnceLock::new();
    HTTP.get_or_init(|| reqwest::blocking::Client::builder().build().expect("an HTTP client"))
}

/// Requests straight to the server, beside the backend, signed as the backend signs them.
/// Buckets are created in moto's default region, which is what it expects without a location
/// constraint; the backend then signs for `fsn1`, as it would for Hetzner.
struct Raw {
    bucket: Bucket,
    credentials: Credentials,
}

/// An answer: status, ETag and body.
struct Answer {
    status: u16,
    etag: Option<String>,
    body: Vec<u8>,
}

impl Answer {
    fn text(&self) -> String {
        String::from_utf8_lossy(&self.body).into_owned()
    }
}

impl Raw {
    fn new(bucket: &str) -> Raw {
        let endpoint = moto().endpoint.parse().expect("the endpoint is a URL");
        let bucket = Bucket::new(endpoint, UrlStyle::Path, bucket.to_owned(), "us-east-1").expect("a bucket");
        Raw { bucket, credentials: Credentials::new(ACCESS_KEY, SECRET_KEY) }
    }

    fn create_bucket(&self) {
        let url = self.bucket.create_bucket(&self.credentials).sign(Duration::from_secs(60));
        let answer = send(http().put(url).header("content-length", "0"));
        assert_eq!(answer.status, 200, "create bucket {}: {}", self.bucket.name(), answer.text());
    }

    fn get(&self, key: &str) -> Answer {
        send(http().get(self.bucket.get_object(Some(&self.credentials), key).sign(Duration::from_secs(60))))
    }

    /// A PUT with `headers` signed and sent.
    fn put(&self, key: &str, bytes: &[u8], headers: &[(&'static str, &str)]) -> Answer {
        let mut action = self.bucket.put_object(Some(&self.credentials), key);
        for (name, value) in headers {
            action.headers_mut().insert(*name, *value);
        }
        let mut request = http().put(action.sign(Duration::from_secs(60)));
        for (name, value) in headers {
            request = request.header(*name, *value);
        }
        send(request.header("content-length", bytes.len().to_string()).body(bytes.to_vec()))
    }

    /// The object's bytes, `None` when there is none.
    fn bytes(&self, key: &str) -> Option<Vec<u8>> {
        let answer = self.get(key);
        match answer.status {
            200 => Some(answer.body),
            404 => None,
            status => panic!("GET {key}: HTTP {status}: {}", answer.text()),
        }
    }
}

fn send(request: reqwest::blocking::RequestBuilder) -> Answer {
    let answer = request.send().expect("moto answers");
    let status = answer.status().as_u16();
    let etag = answer.headers().get("etag").and_then(|etag| etag.to_str().ok()).map(str::to_owned);
    Answer { status, etag, body: answer.bytes().expect("a body").to_vec() }
}

/// A new, empty bucket, so that tests running at once never share objects.
fn fresh_bucket() -> Raw {
    let raw = Raw::new(&format!("terrace-{}", uuid::Uuid::new_v4().simple()));
    raw.create_bucket();
    raw
}

fn config(bucket: &str) -> S3Config {
    S3Config {
        endpoint: moto().endpoint.clone(),
        region: "fsn1".to_owned(),
        bucket: bucket.to_owned(),
        key: KEY.to_owned(),
        access_key: Secret::new(ACCESS_KEY),
        secret_key: Secret::new(SECRET_KEY),
    }
}

fn backend(raw: &Raw) -> S3Backend {
    S3Backend::new(config(raw.bucket.name())).expect("a valid configuration")
}

/// An empty s3 backend in a bucket of its own; its stored bytes are read and replaced directly.
struct S3Fixture {
    raw: Raw,
    backend: S3Backend,
}

fn s3_fixture() -> S3Fixture {
    let raw = fresh_bucket();
    let backend = backend(&raw);
    S3Fixture { raw, backend }
}

impl Fixture for S3Fixture {
    fn backend(&self) -> &dyn Backend {
        &self.backend
    }

    fn stored_bytes(&self) -> Option<Vec<u8>> {
        self.raw.bytes(KEY)
    }

    fn replace_stored_bytes(&self, bytes: &[u8]) {
        let answer = self.raw.put(KEY, bytes, &[]);
        assert_eq!(answer.status, 200, "replace the state object: {}", answer.text());
    }
}

terrace_state::backend_conformance_tests!(s3_fixture());

#[test]
fn the_server_refuses_a_second_conditional_create_and_a_stale_if_match_with_412() {
    // What the lock and the writes rely on, shown on the server itself rather than assumed.
    let raw = fresh_bucket();
    let first = raw.put("k.lock", b"first", &[("if-none-match", "*")]);
    assert_eq!(first.status, 200, "{}", first.text());
    let second = raw.put("k.lock", b"second", &[("if-none-match", "*")]);
    assert_eq!(second.status, 412, "a second create of the same key is refused: {}", second.text());
    assert!(second.text().contains("<Code>PreconditionFailed</Code>"), "{}", second.text());
    assert_eq!(raw.bytes("k.lock").as_deref(), Some(&b"first"[..]), "the refused create changed nothing");

    let stale = first.etag.expect("an ETag");
    let changed = raw.put("k.lock", b"changed", &[]);
    assert_eq!(changed.status, 200);
    let refused = raw.put("k.lock", b"lost update", &[("if-match", &stale)]);
    assert_eq!(refused.status, 412, "a write against an old ETag is refused: {}", refused.text());
    let current = changed.etag.expect("an ETag");
    assert_eq!(raw.put("k.lock", b"next", &[("if-match", &current)]).status, 200, "the current ETag is accepted");
    assert_eq!(raw.bytes("k.lock").as_deref(), Some(&b"next"[..]));
}

#[test]
fn of_backends_racing_for_the_lock_exactly_one_wins_and_the_others_name_it() {
    let raw = fresh_bucket();
    for contenders in [2, 2, 2, 2, 2, 2, 2, 2, 2, 2, 8] {
        // Separate backends, each with its own HTTP thread and connections, as separate runs have.
        let backends: Vec<S3Backend> = (0..contenders).map(|_| backend(&raw)).collect();
        let start = Arc::new(Barrier::new(contenders));
        let results: Vec<_> = std::thread::scope(|scope| {
            let runs: Vec<_> = backends
                .iter()
                .enumerate()
                .map(|(run, backend)| {
                    let start = Arc::clone(&start);
                    scope.spawn(move || {
                        start.wait();
                        backend.lock(&format!("apply-{run}"), Duration::ZERO)
                    })
                })
                .collect();
            runs.into_iter().map(|run| run.join().expect("a run")).collect()
        });
        let winners: Vec<_> = results.iter().filter_map(|result| result.as_ref().ok()).collect();
        assert_eq!(winners.len(), 1, "exactly one of {contenders} takes the lock: {results:?}");
        let held = winners[0].info().clone();
        assert_eq!(backends[0].lock_info().expect("lock_info"), Some(held.clone()), "the winner's record is stored");
        for result in &results {
            match result {
                Ok(_) => {}
                Err(error @ StateError::Locked { lock, .. }) => {
                    assert_eq!(**lock, held, "the loser names the winner");
                    let message = error.to_string();
                    for part in [&held.holder, &held.operation, &held.id] {
                        assert!(message.contains(part.as_str()), "{message:?} names {part:?}");
                    }
                }
                Err(error) => panic!("a loser fails with Locked, not {error:?}"),
            }
        }
        drop(results);
        assert_eq!(backends[0].lock_info().expect("lock_info"), None, "the winner's guard released the lock");
    }
}

#[test]
fn concurrent_writes_over_the_same_state_lose_no_update() {
    // Runs that skip the lock and write from the same stored serial: with `If-Match` exactly one
    // write lands and the others are refused; without it several would "succeed", all but the
    // last lost.
    let raw = fresh_bucket();
    let mut stored = sample_state();
    backend(&raw).write(&stored).expect("the first state");
    let writers: Vec<S3Backend> = (0..8).map(|_| backend(&raw)).collect();
    for _ in 0..5 {
        let start = Arc::new(Barrier::new(writers.len()));
        let results: Vec<(State, Result<(), StateError>)> = std::thread::scope(|scope| {
            let runs: Vec<_> = writers
                .iter()
                .enumerate()
                .map(|(run, writer)| {
                    let start = Arc::clone(&start);
                    let mut next = stored.clone();
                    next.increment_serial();
                    next.phase = Some(format!("writer-{run}"));
                    scope.spawn(move || {
                        start.wait();
                        let result = writer.write(&next);
                        (next, result)
                    })
                })
                .collect();
            runs.into_iter().map(|run| run.join().expect("a writer")).collect()
        });
        let landed: Vec<&State> = results.iter().filter(|(_, result)| result.is_ok()).map(|(state, _)| state).collect();
        assert_eq!(
            landed.len(),
            1,
            "exactly one write lands: {:?}",
            results.iter().map(|(_, r)| r).collect::<Vec<_>>()
        );
        for (_, result) in &results {
            assert!(
                matches!(result, Ok(()) | Err(StateError::StaleSerial { .. })),
                "the others are refused as stale: {result:?}"
            );
        }
        stored = landed[0].clone();
        assert_eq!(writers[0].read().expect("read"), Some(stored.clone()), "the one that landed is stored");
    }
}

#[test]
fn objects_are_the_state_its_previous_version_and_the_lock() {
    let raw = fresh_bucket();
    let backend = backend(&raw);
    assert_eq!((backend.backup_key(), backend.lock_key()), (&*format!("{KEY}.backup"), &*format!("{KEY}.lock")));
    let mut state = sample_state();
    backend.write(&state).expect("write");
    assert_eq!(raw.bytes(KEY), Some(to_json(&state)), "the object holds the state file's bytes");
    assert_eq!(raw.bytes(backend.backup_key()), None, "a first write has nothing to back up");

    let first = to_json(&state);
    state.increment_serial();
    state.phase = Some("scale-out".to_owned());
    backend.write(&state).expect("write");
    assert_eq!(raw.bytes(KEY), Some(to_json(&state)));
    assert_eq!(raw.bytes(backend.backup_key()), Some(first), "the backup is the version replaced");

    let guard = backend.lock("apply", Duration::ZERO).expect("lock");
    let record = raw.bytes(backend.lock_key()).expect("a lock object while locked");
    let stored: LockInfo = serde_json::from_slice(&record).expect("the lock object is a LockInfo");
    assert_eq!(&stored, guard.info());
    guard.release().expect("release");
    assert_eq!(raw.bytes(backend.lock_key()), None, "releasing deletes the lock object");
}

#[test]
fn an_unreadable_lock_object_is_reported_and_left_alone() {
    let raw = fresh_bucket();
    let backend = backend(&raw);
    assert_eq!(raw.put(backend.lock_key(), b"{\"id\": ", &[]).status, 200);
    for result in [backend.lock("apply", Duration::ZERO).map(|_| ()), backend.lock_info().map(|_| ())] {
        match result {
            Err(error @ StateError::LockUnreadable { .. }) => {
                let message = error.to_string();
                assert!(message.contains(&format!("s3://{}/{KEY}.lock", raw.bucket.name())), "{message}");
            }
            other => panic!("an unreadable lock is an error, got {other:?}"),
        }
    }
    assert_eq!(raw.bytes(backend.lock_key()).as_deref(), Some(&b"{\"id\": "[..]), "nothing replaced it");
}

/// The S3 failure behind an error of this backend.
fn s3_error(error: &StateError) -> &S3Error {
    match error {
        StateError::Io { source, .. } => source
            .get_ref()
            .and_then(|inner| inner.downcast_ref::<S3Error>())
            .unwrap_or_else(|| panic!("an S3 failure: {error:?}")),
        other => panic!("an S3 failure, got {other:?}"),
    }
}

#[test]
fn a_missing_bucket_is_an_error_naming_the_object_operation_status_and_code() {
    let bucket = format!("terrace-missing-{}", uuid::Uuid::new_v4().simple());
    let backend = S3Backend::new(config(&bucket)).expect("valid");
    let error = backend.read().expect_err("a missing bucket is not an empty state");
    assert_eq!(
        error.to_string().split(": HTTP").next(),
        Some(&*format!("cannot read the state object s3://{bucket}/{KEY} at {}", moto().endpoint))
    );
    assert!(error.to_string().contains("HTTP 404, NoSuchBucket: "), "{error}");
    assert_eq!((s3_error(&error).status(), s3_error(&error).code()), (Some(404), Some("NoSuchBucket")));

    let error = backend.write(&sample_state()).expect_err("nothing to write to");
    assert!(error.to_string().starts_with(&format!("cannot read the state object before writing s3://{bucket}/")));
    let error = backend.lock("apply", Duration::ZERO).expect_err("nothing to lock");
    assert!(error.to_string().starts_with(&format!("cannot create the lock object s3://{bucket}/{KEY}.lock at ")));
    assert_eq!(s3_error(&error).code(), Some("NoSuchBucket"));
}

#[test]
fn the_keys_never_appear_in_debug_or_error_texts() {
    let raw = fresh_bucket();
    let backend = backend(&raw);
    let guard = backend.lock("apply", Duration::ZERO).expect("lock");
    let mut texts = vec![format!("{:?}", config("b")), format!("{backend:?}"), format!("{guard:?}")];

    // Answers from the server: a missing bucket, for every operation.
    let missing = S3Backend::new(config("terrace-no-such-bucket")).expect("valid");
    let mut errors = vec![
        missing.read().map(|_| ()).expect_err("read"),
        missing.write(&sample_state()).expect_err("write"),
        missing.lock("apply", Duration::ZERO).map(|_| ()).expect_err("lock"),
        missing.unlock("x").expect_err("unlock"),
        missing.lock_info().map(|_| ()).expect_err("lock_info"),
    ];
    // No answer at all: a port nothing listens on, so reqwest's own error, retried, is reported.
    let closed = TcpListener::bind("127.0.0.1:0").and_then(|l| l.local_addr()).expect("a free port").port();
    let unreachable =
        S3Backend::new(S3Config { endpoint: format!("http://127.0.0.1:{closed}"), ..config("b") }).expect("valid");
    let error = unreachable.read().expect_err("nothing listens");
    assert_eq!(s3_error(&error).status(), None);
    assert!(error.to_string().contains("no answer: "), "{error}");
    errors.push(error);
    for error in &errors {
        texts.push(error.to_string());
        texts.push(format!("{error:?}"));
    }

    let encoded_secret = SECRET_KEY.replace('/', "%2F").replace('+', "%2B").replace('=', "%3D");
    for text in &texts {
        for secret in [ACCESS_KEY, SECRET_KEY, &encoded_secret, "X-Amz-"] {
            assert!(!text.contains(secret), "{text:?} shows {secret:?}");
        }
    }
    drop(guard);
}

#[test]
fn the_backend_works_from_inside_tokio_runtimes_and_drops_there() {
    // The apply executor writes state from async tasks: nothing may block on a runtime there.
    let raw = fresh_bucket();
    let multi = tokio::runtime::Builder::new_multi_thread().worker_threads(2).enable_all().build().expect("runtime");
    let written = multi.block_on(async {
        let backend = Arc::new(backend(&raw));
        let task = Arc::clone(&backend);
        let state = tokio::spawn(async move {
            let guard = task.lock("apply", Duration::ZERO).expect("lock in a task");
            let state = sample_state();
            task.write(&state).expect("write in a task");
            guard.release().expect("release in a task");
            state
        })
        .await
        .expect("the task");
        assert_eq!(backend.read().expect("read in the runtime"), Some(state.clone()));
        drop(backend);
        state
    });
    drop(multi);

    // A current-thread runtime has no other thread to fall back on.
    let single = tokio::runtime::Builder::new_current_thread().enable_all().build().expect("runtime");
    single.block_on(async {
        let backend = backend(&raw);
        let _guard = backend.lock("apply", Duration::ZERO).expect("lock");
        let mut next = written.clone();
        next.increment_serial();
        backend.write(&next).expect("write");
        assert_eq!(backend.read().expect("read").map(|state| state.serial), Some(next.serial));
    });
    assert_eq!(raw.bytes(&format!("{KEY}.lock")), None, "the guard dropped inside the runtime released the lock");
}
