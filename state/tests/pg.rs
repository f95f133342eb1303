//! The PostgreSQL backend against a real PostgreSQL: the conformance suite every backend passes,
//! then what only a database shows: the row with its previous version, stacks and schemas sharing a
//! database, first writes racing, locks held by another process (which end with it, or are broken
//! by id), a lock without a record, a lost connection, calls from inside tokio runtimes, and a
//! password that never shows.
//!
//! The tests share one throwaway cluster per test process, started by the first test that needs it
//! (`initdb` in a tempdir, the server on a free loopback port with its socket in that tempdir), and
//! each test works on stacks of its own. Starting a cluster takes a second or more here (creating
//! its thousand files is slow on this machine), which per test would triple the suite's time.
//! A static is never dropped, so the cluster is not stopped by a `Drop` guard but by a supervisor
//! shell that holds the server and reads its standard input from this process: when this process
//! ends, however it ends (a panic, an abort, SIGKILL), the pipe closes and the supervisor stops the
//! server and removes the tempdir. As root (CI), the supervisor and the server run as the
//! `postgres` user through `runuser`.
#![cfg(unix)]

use std::io::{BufRead as _, BufReader, Read as _, Write as _};
use std::net::TcpListener;
use std::os::unix::fs::{MetadataExt as _, chown};
use std::path::{Path, PathBuf};
use std::process::{Child, ChildStdout, Command, Stdio};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Barrier, Mutex, OnceLock};
use std::time::{Duration, Instant};

use terrace_state::conformance::{Fixture, sample_state};
use terrace_state::{Backend, PgBackend, StateError};

/// The password of the test cluster's user; the tests look for it in every message.
const PASSWORD: &str = "Only-In-This-Test-7f3a";
const USER: &str = "terrace";

/// The server's supervisor: starts the server in the background, then waits for its own standard
/// input to end (`read` returns at end of file, or after a second to look whether the server still
/// runs), then stops the server at once and removes the folder. A server that ends by itself (its
/// port taken) ends the supervisor and leaves the folder, for the next try.
const SUPERVISOR: &str = r#"
"$0" -D "$1/data" -p "$2" -k "$1" -c listen_addresses=127.0.0.1 -c fsync=off -c synchronous_commit=off \
    -c full_page_writes=off > "$1/server.log" 2>&1 &
server=$!
while kill -0 "$server" 2> /dev/null; do
  read -r -t 1 _
  if [ "$?" -le 128 ]; then
    kill -QUIT "$server"
    wait "$server"
    rm -rf "$1"
    exit 0
  fi
done
"#;

/// The test process's cluster.
struct Cluster {
    port: u16,
    /// The supervisor, whose standard input stays open until this process ends.
    _supervisor: Mutex<Child>,
}

/// The cluster, started on first use.
fn cluster() -> &'static Cluster {
    static CLUSTER: OnceLock<Cluster> = OnceLock::new();
    CLUSTER.get_or_init(Cluster::start)
}

impl Cluster {
    fn start() -> Cluster {
        let bin = pg_bin();
        // Kept: the supervisor removes it once the server has stopped.
        let dir = tempfile::Builder::new().prefix("terrace-pg-").tempdir().expect("a temporary folder").keep();
        let as_postgres = std::fs::metadata(&dir).expect("the folder's owner").uid() == 0;
        let password_file = dir.join("password");
        std::fs::write(&password_file, PASSWORD).expect("write the password file");
        if as_postgres {
            let (uid, gid) = postgres_ids();
            for path in [dir.as_path(), password_file.as_path()] {
                chown(path, Some(uid), Some(gid)).expect("chown to postgres");
            }
        }
        let as_server_user = |program: &Path| {
            let mut command = Command::new(if as_postgres { Path::new("runuser") } else { program });
            if as_postgres {
                command.args(["-u", "postgres", "--"]).arg(program);
            }
            command
        };
        let initdb = as_server_user(&bin.join("initdb"))
            .arg("--pgdata")
            .arg(dir.join("data"))
            .arg(format!("--username={USER}"))
            .arg("--pwfile")
            .arg(&password_file)
            .args(["--auth-local=trust", "--auth-host=scram-sha-256", "--no-sync", "--encoding=UTF8", "--locale=C"])
            .output()
            .expect("run initdb");
        assert!(initdb.status.success(), "initdb failed: {}", String::from_utf8_lossy(&initdb.stderr));
        // Another process can take a free port before the server binds it; then another is tried.
        for _ in 0..5 {
            let port = free_port();
            let mut supervisor = as_server_user(Path::new("/bin/bash"))
                .arg("-c")
                .arg(SUPERVISOR)
                .arg(bin.join("postgres"))
                .arg(&dir)
                .arg(port.to_string())
                .stdin(Stdio::piped())
                .stdout(Stdio::null())
                .stderr(Stdio::null())
                .spawn()
                .expect("start the supervisor");
            if wait_until_ready(&dir, port, &mut supervisor) {
                return Cluster { port, _supervisor: Mutex::new(supervisor) };
            }
        }
        let log = std::fs::read_to_string(dir.join("server.log")).unwrap_or_default();
        panic!("PostgreSQL did not start:\n{log}");
    }

    /// The connection string of the cluster's `postgres` database over TCP, with the password.
    fn url(&self) -> String {
        format!("postgres://{USER}:{PASSWORD}@127.0.0.1:{}/postgres", self.port)
    }

    fn sql(&self) -> Sql {
        Sql::connect(&self.url())
    }
}

/// Waits until the server of `dir` accepts connections on `port`, as its `postmaster.pid` says
/// (the port on its fourth line, `ready` on its eighth), which tells this server from another on
/// the same port; `false` when the server ended instead.
fn wait_until_ready(dir: &Path, port: u16, supervisor: &mut Child) -> bool {
    let start = Instant::now();
    while start.elapsed() < Duration::from_secs(60) {
        if supervisor.try_wait().expect("look at the supervisor").is_some() {
            return false;
        }
        let status = std::fs::read_to_string(dir.join("data/postmaster.pid")).unwrap_or_default();
        let lines: Vec<&str> = status.lines().map(str::trim).collect();
        if lines.get(3) == Some(&port.to_string().as_str()) && lines.get(7) == Some(&"ready") {
            return true;
        }
        std::thread::sleep(Duration::from_millis(20));
    }
    panic!("PostgreSQL did not get ready within a minute");
}

/// The newest PostgreSQL's binaries under /usr/lib/postgresql (.ci/setup installs it).
fn pg_bin() -> PathBuf {
    let mut found: Vec<(u32, PathBuf)> = std::fs::read_dir("/usr/lib/postgresql")
        .expect("PostgreSQL is installed under /usr/lib/postgresql (.ci/setup installs it)")
        .filter_map(|entry| {
            let entry = entry.ok()?;
            let version = entry.file_name().to_str()?.parse().ok()?;
            let bin = entry.path().join("bin");
            bin.join("initdb").exists().then_some((version, bin))
        })
        .collect();
    found.sort();
    found.pop().expect("a PostgreSQL with initdb under /usr/lib/postgresql/*/bin").1
}

fn postgres_ids() -> (u32, u32) {
    let id = |flag: &str| -> u32 {
        let output = Command::new("id").args([flag, "postgres"]).output().expect("run id");
        String::from_utf8_lossy(&output.stdout).trim().parse().expect("the postgres user exists")
    };
    (id("-u"), id("-g"))
}

/// A free port on loopback; another process could take it before the server binds it.
fn free_port() -> u16 {
    let listener = TcpListener::bind("127.0.0.1:0").expect("bind an ephemeral port");
    listener.local_addr().expect("local address").port()
}

/// A plain client for looking at and changing the tables behind the backend's back.
struct Sql {
    runtime: tokio::runtime::Runtime,
    client: tokio_postgres::Client,
}

impl Sql {
    fn connect(url: &str) -> Sql {
        let runtime = tokio::runtime::Builder::new_current_thread().enable_all().build().expect("a runtime");
        let (client, connection) =
            runtime.block_on(tokio_postgres::connect(url, tokio_postgres::NoTls)).expect("connect to the cluster");
        runtime.spawn(connection);
        Sql { runtime, client }
    }

    fn query(&self, sql: &str, params: &[&(dyn tokio_postgres::types::ToSql + Sync)]) -> Vec<tokio_postgres::Row> {
        self.runtime.block_on(self.client.query(sql, params)).unwrap_or_else(|error| panic!("{sql}: {error:?}"))
    }

    fn execute(&self, sql: &str, params: &[&(dyn tokio_postgres::types::ToSql + Sync)]) -> u64 {
        self.runtime.block_on(self.client.execute(sql, params)).unwrap_or_else(|error| panic!("{sql}: {error:?}"))
    }
}

/// A stack name no other test of this process uses.
fn fresh_stack() -> String {
    static NEXT: AtomicUsize = AtomicUsize::new(0);
    format!("shop-{}", NEXT.fetch_add(1, Ordering::SeqCst))
}

/// An empty PostgreSQL backend: a stack no other test uses, on the shared cluster.
struct PgFixture {
    backend: PgBackend,
    sql: Sql,
    stack: String,
    cluster: &'static Cluster,
}

fn pg_fixture() -> PgFixture {
    let cluster = cluster();
    let stack = fresh_stack();
    let backend = PgBackend::new(&cluster.url(), &stack).expect("a valid connection string");
    let sql = cluster.sql();
    PgFixture { backend, sql, stack, cluster }
}

impl Fixture for PgFixture {
    fn backend(&self) -> &dyn Backend {
        &self.backend
    }

    fn stored_bytes(&self) -> Option<Vec<u8>> {
        if self.sql.query("SELECT to_regclass('terrace_state') IS NULL", &[])[0].get(0) {
            return None;
        }
        let rows = self.sql.query("SELECT state FROM terrace_state WHERE stack = $1", &[&self.stack]);
        rows.first().map(|row| row.get(0))
    }

    fn replace_stored_bytes(&self, bytes: &[u8]) {
        let changed = self.sql.execute("UPDATE terrace_state SET state = $2 WHERE stack = $1", &[&self.stack, &bytes]);
        assert_eq!(changed, 1, "the stack has a row to replace");
    }
}

terrace_state::backend_conformance_tests!(pg_fixture());

#[test]
fn describes_itself_by_stack_and_database_without_the_password() {
    let fixture = pg_fixture();
    let port = fixture.cluster.port;
    let describe = fixture.backend.describe();
    assert_eq!(describe, format!("postgres backend (stack {}, terrace@127.0.0.1:{port}/postgres)", fixture.stack));
    let other = PgBackend::with_schema(&fixture.cluster.url(), "shop", "ops").expect("valid");
    assert_eq!(
        other.describe(),
        format!("postgres backend (stack shop, terrace@127.0.0.1:{port}/postgres, schema ops)")
    );
    for text in [describe, format!("{:?}", fixture.backend), format!("{other:?}")] {
        assert!(!text.contains(PASSWORD), "{text}");
    }
}

#[test]
fn every_write_keeps_the_previous_version_in_the_row() {
    let fixture = pg_fixture();
    let backend = &fixture.backend;
    let first = sample_state();
    backend.write(&first).expect("first write");
    let mut second = first.clone();
    second.increment_serial();
    second.resources.remove("volume.data");
    backend.write(&second).expect("second write");

    let rows = fixture.sql.query(
        "SELECT state, lineage, serial, updated_by, previous_state, previous_lineage, previous_serial, \
         previous_updated_at <= updated_at FROM terrace_state WHERE stack = $1",
        &[&fixture.stack],
    );
    let row = &rows[0];
    assert_eq!(row.get::<_, Vec<u8>>(0), terrace_state::to_json(&second), "the state's exact bytes");
    assert_eq!(row.get::<_, String>(1), second.lineage);
    assert_eq!(row.get::<_, i64>(2), 2);
    let writer: String = row.get(3);
    assert!(writer.ends_with(&format!(" pid {}", std::process::id())), "{writer}");
    assert_eq!(row.get::<_, Vec<u8>>(4), terrace_state::to_json(&first), "the replaced version is kept");
    assert_eq!(row.get::<_, String>(5), first.lineage);
    assert_eq!(row.get::<_, i64>(6), 1);
    assert!(row.get::<_, bool>(7));
}

#[test]
fn a_write_after_another_backend_wrote_reads_the_new_row() {
    // Each backend remembers the digest of what it last saw; a row changed by another run is read
    // again, so the check uses the stored serial, not the remembered one.
    let fixture = pg_fixture();
    let other = PgBackend::new(&fixture.cluster.url(), &fixture.stack).expect("valid");
    let mut state = sample_state();
    fixture.backend.write(&state).expect("write serial 1");
    state.serial = 5;
    other.write(&state).expect("the other run writes serial 5");
    state.serial = 3;
    match fixture.backend.write(&state) {
        Err(StateError::StaleSerial { stored: 5, writing: 3, .. }) => {}
        other => panic!("a write below the other run's serial must be refused, got {other:?}"),
    }
    state.serial = 6;
    fixture.backend.write(&state).expect("write serial 6");
    assert_eq!(other.read().expect("read").map(|state| state.serial), Some(6));
}

#[test]
fn stacks_and_schemas_share_a_database_and_nothing_else() {
    let fixture = pg_fixture();
    let url = fixture.cluster.url();
    let (stack_a, stack_b) = (fixture.stack.clone(), fresh_stack());
    let a = PgBackend::new(&url, &stack_a).expect("valid");
    let b = PgBackend::new(&url, &stack_b).expect("valid");
    let elsewhere = PgBackend::with_schema(&url, &stack_a, "Ops \"State\"").expect("valid");
    let (state_a, state_b, state_elsewhere) = (sample_state(), sample_state(), sample_state());
    a.write(&state_a).expect("write a");
    b.write(&state_b).expect("write b, of another lineage");
    elsewhere.write(&state_elsewhere).expect("write a in the other schema");
    assert_eq!(a.read().expect("read a"), Some(state_a));
    assert_eq!(b.read().expect("read b"), Some(state_b));
    assert_eq!(elsewhere.read().expect("read the other a"), Some(state_elsewhere));

    let _lock_a = a.lock("apply", Duration::ZERO).expect("lock a");
    let _lock_b = b.lock("apply", Duration::ZERO).expect("b is not locked by a's lock");
    let _lock_elsewhere = elsewhere.lock("apply", Duration::ZERO).expect("nor is a in another schema");
    let tables = fixture.sql.query(
        "SELECT count(*) FROM pg_tables WHERE schemaname = 'Ops \"State\"' \
         AND tablename IN ('terrace_state', 'terrace_locks')",
        &[],
    );
    assert_eq!(tables[0].get::<_, i64>(0), 2, "the schema and its tables were created");
}

#[test]
fn first_writes_racing_for_an_empty_stack_leave_one_state() {
    let fixture = pg_fixture();
    let url = fixture.cluster.url();
    for round in 0..10 {
        let stack = format!("{}-race-{round}", fixture.stack);
        let backends = [PgBackend::new(&url, &stack).expect("valid"), PgBackend::new(&url, &stack).expect("valid")];
        // Connected and with the tables in place, so that the writes start together.
        for backend in &backends {
            assert_eq!(backend.read().expect("read"), None);
        }
        let barrier = Barrier::new(2);
        let results: Vec<_> = std::thread::scope(|scope| {
            let writers: Vec<_> = backends
                .iter()
                .map(|backend| {
                    let barrier = &barrier;
                    scope.spawn(move || {
                        let state = sample_state();
                        barrier.wait();
                        backend.write(&state).map(|()| state)
                    })
                })
                .collect();
            writers.into_iter().map(|writer| writer.join().expect("the writer ends")).collect()
        });
        let won: Vec<_> = results.iter().filter_map(|result| result.as_ref().ok()).collect();
        assert_eq!(won.len(), 1, "round {round}: exactly one first write wins: {results:?}");
        assert!(
            results.iter().any(|result| matches!(result, Err(StateError::LineageMismatch { .. }))),
            "round {round}: the other is refused as another lineage: {results:?}"
        );
        assert_eq!(backends[0].read().expect("read").as_ref(), Some(won[0]), "round {round}");
    }
}

// --- Another process holding the lock ---

const CHILD: &str = "TERRACE_PG_TEST_CHILD";
const CHILD_URL: &str = "TERRACE_PG_TEST_URL";
const CHILD_STACK: &str = "TERRACE_PG_TEST_STACK";

/// The child's side of the tests below; a no-op unless run as a child. It takes the lock, says so
/// with the lock's id, and holds it until its standard input closes, then releases it.
#[test]
fn child_process_entry_point() {
    if std::env::var(CHILD).is_err() {
        return;
    }
    let url = std::env::var(CHILD_URL).expect("the connection string is given");
    let stack = std::env::var(CHILD_STACK).expect("the stack is given");
    let backend = PgBackend::new(&url, &stack).expect("valid");
    let guard = backend.lock("apply", Duration::ZERO).expect("the child takes the lock");
    // The leading newline keeps the marker off libtest's "test ... " line.
    println!("\nLOCKED {}", guard.info().id);
    std::io::stdout().flush().expect("flush");
    // Bounded, so a child whose parent died does not wait forever.
    let (closed, stdin_closed) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        let _ = std::io::stdin().read_to_end(&mut Vec::new());
        let _ = closed.send(());
    });
    let _ = stdin_closed.recv_timeout(Duration::from_secs(60));
    println!("\nRELEASED {:?}", guard.release());
}

/// Starts a child holding the lock of `stack`; returns it, its lock id and its stdout.
fn child_holding_the_lock(url: &str, stack: &str) -> (Child, String, BufReader<ChildStdout>) {
    let mut child = Command::new(std::env::current_exe().expect("the test binary"))
        .args(["--exact", "child_process_entry_point", "--nocapture", "--test-threads", "1"])
        .env(CHILD, "locker")
        .env(CHILD_URL, url)
        .env(CHILD_STACK, stack)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .expect("start the child");
    let mut stdout = BufReader::new(child.stdout.take().expect("the child's stdout"));
    let id = marker(&mut stdout, "LOCKED ");
    (child, id, stdout)
}

/// The rest of the first line of `stdout` that starts with `prefix`.
fn marker(stdout: &mut BufReader<ChildStdout>, prefix: &str) -> String {
    let mut line = String::new();
    loop {
        line.clear();
        let read = stdout.read_line(&mut line).expect("read the child's output");
        assert!(read > 0, "the child ended without printing {prefix:?}");
        if let Some(rest) = line.trim_end().strip_prefix(prefix) {
            return rest.to_owned();
        }
    }
}

#[test]
fn a_lock_held_by_another_process_stops_this_one_naming_it_and_ends_with_it() {
    let fixture = pg_fixture();
    let (mut child, id, _stdout) = child_holding_the_lock(&fixture.cluster.url(), &fixture.stack);
    let holder = format!(" pid {}", child.id());

    let start = Instant::now();
    let refused = fixture.backend.lock("plan", Duration::ZERO);
    let took = start.elapsed();
    match refused {
        Err(error @ StateError::Locked { .. }) => {
            let message = error.to_string();
            assert!(message.contains(&holder) && message.contains(&id) && message.contains("for apply"), "{message}");
        }
        other => panic!("the child holds the lock, got {other:?}"),
    }
    assert!(took < Duration::from_secs(1), "failing took {took:?}");
    assert_eq!(fixture.backend.lock_info().expect("lock_info").map(|lock| lock.id), Some(id.clone()));

    // A run killed outright leaves no lock behind: its connection closes, and PostgreSQL gives
    // the advisory lock back.
    child.kill().expect("SIGKILL the child");
    child.wait().expect("reap the child");
    let start = Instant::now();
    let guard = fixture.backend.lock("apply", Duration::from_secs(10)).expect("the lock is free once the holder died");
    assert!(start.elapsed() < Duration::from_secs(5), "took {:?}", start.elapsed());
    assert_eq!(fixture.backend.lock_info().expect("lock_info"), Some(guard.info().clone()), "its record replaced");
}

#[test]
fn unlock_breaks_a_lock_held_by_a_live_session_of_another_process() {
    let fixture = pg_fixture();
    let backend = &fixture.backend;
    let (mut child, id, mut stdout) = child_holding_the_lock(&fixture.cluster.url(), &fixture.stack);

    match backend.unlock("00000000-0000-4000-8000-000000000000") {
        Err(error @ StateError::LockIdMismatch { .. }) => {
            let message = error.to_string();
            assert!(message.contains(&format!(" pid {}", child.id())) && message.contains(&id), "{message}");
        }
        other => panic!("unlock with another id must be refused, got {other:?}"),
    }
    backend.unlock(&id).expect("unlock with the child's lock id");
    assert_eq!(backend.lock_info().expect("lock_info"), None);
    let guard = backend.lock("apply", Duration::ZERO).expect("the broken lock can be taken at once");

    // The child, whose session was ended, releases without error and without touching our lock.
    drop(child.stdin.take());
    assert_eq!(marker(&mut stdout, "RELEASED "), "Ok(())");
    assert!(child.wait().expect("the child ends").success());
    assert_eq!(backend.lock_info().expect("lock_info"), Some(guard.info().clone()));
}

#[test]
fn a_lock_without_a_record_is_named_by_its_session_and_can_be_broken() {
    let fixture = pg_fixture();
    let backend = &fixture.backend;
    // The stack's advisory key, as pg_locks shows it while the backend holds the lock.
    let guard = backend.lock("apply", Duration::ZERO).expect("lock");
    let key = fixture.sql.query(
        "SELECT (h.classid::bigint << 32) | h.objid::bigint FROM pg_locks h JOIN terrace_locks l ON l.pid = h.pid \
         WHERE h.locktype = 'advisory' AND l.stack = $1",
        &[&fixture.stack],
    );
    let key: i64 = key[0].get(0);
    guard.release().expect("release");

    // Another program (or a record deleted by hand) holds the key without a terrace record.
    let other = fixture.cluster.sql();
    let pid: i32 = other.query("SELECT pg_backend_pid()", &[])[0].get(0);
    assert!(other.query("SELECT pg_try_advisory_lock($1)", &[&key])[0].get::<_, bool>(0));
    let expected_id = format!("session-{pid}");
    match backend.lock("plan", Duration::ZERO) {
        Err(error @ StateError::Locked { .. }) => {
            let message = error.to_string();
            assert!(
                message.contains(&format!("PostgreSQL session {pid} of user terrace"))
                    && message.contains(&expected_id),
                "{message}"
            );
        }
        other => panic!("the other session holds the lock, got {other:?}"),
    }
    assert_eq!(backend.lock_info().expect("lock_info").map(|lock| lock.id), Some(expected_id.clone()));
    backend.unlock(&expected_id).expect("unlock by the session's id");
    backend.lock("apply", Duration::ZERO).expect("the lock is free");
}

// --- The connection and the runtime ---

#[test]
fn a_lost_connection_is_made_again_on_the_next_call() {
    let fixture = pg_fixture();
    let mut state = sample_state();
    fixture.backend.write(&state).expect("write");
    // The backend names its connection for state after its stack; other tests' are left alone.
    let name = format!("terrace state ({})", fixture.stack);
    let ended = fixture
        .sql
        .query("SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE application_name = $1", &[&name]);
    assert_eq!(ended.len(), 1, "the backend's one connection for state");
    let start = Instant::now();
    while !fixture.sql.query("SELECT pid FROM pg_stat_activity WHERE application_name = $1", &[&name]).is_empty() {
        assert!(start.elapsed() < Duration::from_secs(10), "the terminated session did not end");
        std::thread::sleep(Duration::from_millis(10));
    }
    // The client notices the closed socket on its own; give its task a moment to run.
    std::thread::sleep(Duration::from_millis(100));
    assert_eq!(fixture.backend.read().expect("read on a new connection"), Some(state.clone()));
    state.increment_serial();
    fixture.backend.write(&state).expect("write on the new connection");
}

#[test]
fn calls_from_inside_tokio_runtimes_neither_panic_nor_stall() {
    let fixture = pg_fixture();
    let backend = Arc::new(PgBackend::new(&fixture.cluster.url(), &fixture.stack).expect("valid"));

    // On a current-thread runtime, as a sync call inside an async block: the backend's work runs on
    // its own thread, so nothing blocks on this runtime's progress.
    let current = tokio::runtime::Builder::new_current_thread().enable_all().build().expect("a runtime");
    let mut state = sample_state();
    current.block_on(async {
        let guard = backend.lock("apply", Duration::ZERO).expect("lock");
        backend.write(&state).expect("write");
        assert_eq!(backend.read().expect("read").as_ref(), Some(&state));
        let first = guard.info().id.clone();
        // A release from another thread while this task waits for the lock.
        let waited = std::thread::scope(|scope| {
            scope.spawn(move || {
                std::thread::sleep(Duration::from_millis(300));
                drop(guard);
            });
            backend.lock("plan", Duration::from_secs(10)).expect("the lock once released")
        });
        assert_ne!(waited.info().id, first);
    });

    // On the multi-threaded runtime the apply executor uses, from tasks writing one after another
    // and reading at once.
    let multi = tokio::runtime::Builder::new_multi_thread().worker_threads(2).enable_all().build().expect("a runtime");
    state.increment_serial();
    let last = multi.block_on(async {
        let mut readers = Vec::new();
        for _ in 0..8 {
            let backend = Arc::clone(&backend);
            readers.push(tokio::spawn(async move { backend.read().expect("read").map(|state| state.serial) }));
        }
        for serial in 2..=6 {
            let backend = Arc::clone(&backend);
            let mut next = state.clone();
            next.serial = serial;
            tokio::spawn(async move { backend.write(&next).expect("write") }).await.expect("the writer task");
        }
        for reader in readers {
            let serial = reader.await.expect("the reader task");
            assert!(matches!(serial, Some(1..=6)), "{serial:?}");
        }
        backend.read().expect("read").map(|state| state.serial)
    });
    assert_eq!(last, Some(6));
}

// --- The password ---

#[test]
fn the_password_never_shows_in_errors_debug_or_descriptions() {
    let fixture = pg_fixture();
    let port = fixture.cluster.port;
    let wrong = "Wrong-Secret-91c2";
    let backend =
        PgBackend::new(&format!("postgres://{USER}:{wrong}@127.0.0.1:{port}/postgres"), "shop").expect("valid");
    let error = backend.read().expect_err("a wrong password is refused");
    let message = error.to_string();
    assert!(matches!(error, StateError::Remote { action: "connect", .. }), "{error:?}");
    assert!(message.contains("password authentication failed"), "{message}");
    assert!(message.starts_with("postgres backend (stack shop, terrace@127.0.0.1:"), "{message}");
    for text in [message, format!("{error:?}"), format!("{backend:?}"), backend.describe()] {
        assert!(!text.contains(wrong), "{text}");
    }

    // Nothing listens on a port just freed: refused at once, naming where.
    let closed = free_port();
    let backend =
        PgBackend::new(&format!("postgres://{USER}:{PASSWORD}@127.0.0.1:{closed}/postgres"), "shop").expect("valid");
    let start = Instant::now();
    let error = backend.lock("apply", Duration::ZERO).expect_err("no server");
    assert!(start.elapsed() < Duration::from_secs(5));
    let message = error.to_string();
    assert!(message.contains(&format!("127.0.0.1:{closed}")) && message.contains("cannot connect"), "{message}");
    assert!(!message.contains(PASSWORD) && !format!("{error:?}").contains(PASSWORD), "{message}");

    // Connection strings that do not parse, or ask for what this backend does not do.
    for (conn_str, says) in [
        (format!("postgres://{USER}:{PASSWORD}@127.0.0.1:notaport/postgres"), "`port`"),
        (format!("host=127.0.0.1 user={USER} password='{PASSWORD}"), "neither a postgres:// URL"),
        (format!("host=127.0.0.1 password={PASSWORD} sslmode=require"), "sslmode=require"),
    ] {
        let error = PgBackend::new(&conn_str, "shop").expect_err("refused");
        let message = error.to_string();
        assert!(message.contains(says), "{message}");
        assert!(!message.contains(PASSWORD) && !format!("{error:?}").contains(PASSWORD), "{message}");
    }

    // A working backend: its errors and descriptions leave the password out too.
    let guard = fixture.backend.lock("apply", Duration::ZERO).expect("lock");
    let locked = fixture.backend.lock("plan", Duration::ZERO).expect_err("locked");
    for text in [locked.to_string(), format!("{locked:?}"), format!("{:?}", fixture.backend), format!("{guard:?}")] {
        assert!(!text.contains(PASSWORD), "{text}");
    }
}
