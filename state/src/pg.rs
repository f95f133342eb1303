//! The PostgreSQL backend: each stack's state in one row of a table, with its previous version in
//! the same row, and the lock a PostgreSQL advisory lock held by a connection of its own, with a
//! row naming its holder (the advisory lock is what Terraform's `pg` backend locks with).
//!
//! The tables, created when missing in the schema given (`public` by default):
//!
//! ```sql
//! CREATE TABLE terrace_state (
//!     stack text PRIMARY KEY,
//!     state bytea NOT NULL,              -- the state file's exact bytes
//!     lineage text, serial bigint,       -- copies for people querying the table
//!     updated_at timestamptz NOT NULL DEFAULT now(), updated_by text,
//!     previous_state bytea, previous_lineage text, previous_serial bigint,
//!     previous_updated_at timestamptz    -- the version the last write replaced
//! );
//! CREATE TABLE terrace_locks (
//!     stack text PRIMARY KEY, id text NOT NULL, info jsonb NOT NULL,
//!     pid integer NOT NULL,              -- the session holding the advisory lock
//!     locked_at timestamptz NOT NULL DEFAULT now()
//! );
//! ```
//!
//! The state is kept as the bytes of the state file (`bytea`, not `jsonb`) so that what is read is
//! exactly what was written, and a damaged object is reported by the format's reader like a
//! damaged file. A write checks those bytes, never the `lineage` and `serial` copies, so a row
//! edited by hand is never overwritten unread.
//!
//! The `Backend` trait is synchronous, and it is called from inside tokio runtimes (the apply
//! executor writes from async tasks), where blocking on a future would panic or stall the caller's
//! runtime. So every backend owns a thread running a current-thread runtime with the async client
//! (`tokio-postgres`); a call sends that thread a job over a channel and waits for the answer on a
//! plain channel, which is safe on any thread. The sync `postgres` crate would need a thread of its
//! own all the same (it blocks on a runtime of its own), and it runs one request at a time, while a
//! run waiting for the lock must not stop the holder's guard from releasing it: here both are tasks
//! on the one runtime.

use std::collections::HashMap;
use std::fmt::Write as _;
use std::future::Future;
use std::pin::Pin;
use std::str::FromStr as _;
use std::sync::{Arc, Mutex, PoisonError};
use std::time::{Duration, Instant};

use tokio::sync::mpsc::{UnboundedSender, unbounded_channel};
use tokio::sync::{MappedMutexGuard, MutexGuard};
use tokio_postgres::config::{Host, SslMode};
use tokio_postgres::error::SqlState;
use tokio_postgres::types::FromSql;
use tokio_postgres::{Client, Config, NoTls, Row, Transaction};

use crate::backend::{Backend, LockGuard, LockInfo, holder};
use crate::error::StateError;
use crate::format::{from_json, to_json};
use crate::model::State;

/// The schema the tables are in unless another is given.
pub const DEFAULT_SCHEMA: &str = "public";
/// The table of states, one row per stack.
pub const STATE_TABLE: &str = "terrace_state";
/// The table of lock records, one row per stack that is or was locked.
pub const LOCK_TABLE: &str = "terrace_locks";

/// How often a run waiting for the lock looks again.
const LOCK_POLL: Duration = Duration::from_millis(100);
/// How long a holder may take between taking the advisory lock and recording itself, after which
/// a lock without a record is described by its session alone.
const RECORD_WAIT: Duration = Duration::from_millis(500);
/// How long `unlock` waits for the session it terminated to end.
const TERMINATE_WAIT: Duration = Duration::from_secs(10);
/// A server that does not answer within this time is reported, unless the connection string sets
/// its own `connect_timeout`.
const CONNECT_TIMEOUT: Duration = Duration::from_secs(10);
/// The advisory lock that serialises creating the tables, in the space of two-int keys, apart from
/// the one-bigint keys of the stacks' locks ("terr", "ace" in ASCII).
const SETUP_LOCK: (i32, i32) = (0x7465_7272, 0x0061_6365);

/// State in a table of a PostgreSQL database, one row per stack.
pub struct PgBackend {
    shared: Arc<Shared>,
    jobs: UnboundedSender<Job>,
}

/// What the backend and its worker thread both use.
struct Shared {
    /// Holds the password; `Config`'s own `Debug` leaves it out, and nothing here prints it.
    config: Config,
    tls: Tls,
    stack: String,
    schema: String,
    /// The tables' names, schema-qualified and quoted, ready for SQL text.
    state_table: String,
    lock_table: String,
    /// The stack's advisory lock key.
    key: i64,
    describe: String,
    /// The password, removed from every message in case a server or client error quotes it.
    secret: Option<String>,
    /// The stored state as this backend last wrote or read it: its digest as the server computes it
    /// (`sha256(state)`), and the lineage and serial it holds. A write whose row still has that
    /// digest knows them without fetching and parsing the state, which for a large state is most of
    /// a write's time.
    known: Mutex<Option<Known>>,
}

#[derive(Clone)]
struct Known {
    digest: Vec<u8>,
    lineage: String,
    serial: u64,
}

/// How connections are secured. Only plain connections exist for now. TLS becomes a variant holding
/// a connector (`tokio_postgres_rustls::MakeRustlsConnect`, say) with an arm in `Shared::connect`;
/// nothing else changes, since everything past `connect` sees only a `Client`.
#[derive(Clone, Copy, Debug)]
enum Tls {
    Off,
}

/// Work for the worker thread: a future made from the worker, which sends its own answer.
type Job = Box<dyn FnOnce(Arc<Worker>) -> Pin<Box<dyn Future<Output = ()> + Send>> + Send>;

/// The worker thread's side: its connections.
struct Worker {
    shared: Arc<Shared>,
    /// The connection that reads and writes state, made on first use and again after it is lost.
    main: tokio::sync::Mutex<Option<Client>>,
    /// The sessions holding this backend's locks, by lock id. A session is the lock: PostgreSQL
    /// gives an advisory lock back when the session that took it ends, however it ends.
    sessions: Mutex<HashMap<String, Client>>,
}

impl PgBackend {
    /// The backend of stack `stack` in the database `conn_str` names (a `postgres://` URL or
    /// `key=value` pairs), with its tables in the `public` schema. Nothing is connected to until the
    /// backend is used; an error here is a connection string that does not parse.
    pub fn new(conn_str: &str, stack: &str) -> Result<PgBackend, StateError> {
        PgBackend::with_schema(conn_str, stack, DEFAULT_SCHEMA)
    }

    /// As `new`, with the tables in `schema`, which is created when missing.
    pub fn with_schema(conn_str: &str, stack: &str, schema: &str) -> Result<PgBackend, StateError> {
        let refuse = |detail: String| StateError::Remote {
            backend: format!("postgres backend (stack {stack})"),
            action: "use its settings",
            detail,
        };
        let mut config = Config::from_str(conn_str).map_err(|error| refuse(parse_detail(&error)))?;
        if stack.is_empty() {
            return Err(refuse("the stack name is empty".to_owned()));
        }
        if schema.is_empty() {
            return Err(refuse("the schema name is empty".to_owned()));
        }
        if config.get_ssl_mode() == SslMode::Require {
            return Err(refuse(
                "sslmode=require asks for TLS, which this backend does not offer yet; \
                 use sslmode=disable or sslmode=prefer"
                    .to_owned(),
            ));
        }
        if config.get_connect_timeout().is_none() {
            config.connect_timeout(CONNECT_TIMEOUT);
        }
        let secret = config
            .get_password()
            .map(|password| String::from_utf8_lossy(password).into_owned())
            .filter(|p| !p.is_empty());
        let mut describe = format!("postgres backend (stack {stack}, {}", location(&config));
        if schema != DEFAULT_SCHEMA {
            let _ = write!(describe, ", schema {schema}");
        }
        describe.push(')');
        let shared = Arc::new(Shared {
            state_table: format!("{}.{}", quote(schema), quote(STATE_TABLE)),
            lock_table: format!("{}.{}", quote(schema), quote(LOCK_TABLE)),
            key: lock_key(schema, stack),
            config,
            tls: Tls::Off,
            stack: stack.to_owned(),
            schema: schema.to_owned(),
            describe,
            secret,
            known: Mutex::new(None),
        });
        let jobs = start_worker(&shared)?;
        Ok(PgBackend { shared, jobs })
    }

    /// The stack whose state this backend keeps.
    pub fn stack(&self) -> &str {
        &self.shared.stack
    }

    /// The schema holding the tables.
    pub fn schema(&self) -> &str {
        &self.shared.schema
    }

    /// Runs `work` on the worker thread and waits for its answer.
    fn call<T, F, Fut>(&self, work: F) -> Result<T, StateError>
    where
        T: Send + 'static,
        F: FnOnce(Arc<Worker>) -> Fut + Send + 'static,
        Fut: Future<Output = Result<T, StateError>> + Send + 'static,
    {
        call(&self.jobs, &self.shared, work)
    }
}

impl std::fmt::Debug for PgBackend {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("PgBackend").field("backend", &self.shared.describe).finish_non_exhaustive()
    }
}

impl Backend for PgBackend {
    fn describe(&self) -> String {
        self.shared.describe.clone()
    }

    fn read(&self) -> Result<Option<State>, StateError> {
        let Some((bytes, digest)) = self.call(|worker| async move { worker.read().await })? else {
            return Ok(None);
        };
        // Parsed here rather than on the worker thread, which serves the backend's other callers.
        let state = from_json(&bytes, &self.shared.describe)?;
        self.shared.remember(Known { digest, lineage: state.lineage.clone(), serial: state.serial });
        Ok(Some(state))
    }

    fn write(&self, state: &State) -> Result<(), StateError> {
        let bytes = to_json(state);
        let lineage = state.lineage.clone();
        let serial = state.serial;
        self.call(move |worker| async move { worker.write(bytes, lineage, serial).await })
    }

    fn lock(&self, operation: &str, timeout: Duration) -> Result<LockGuard, StateError> {
        let info = LockInfo::new(operation);
        let taking = info.clone();
        self.call(move |worker| async move { worker.lock(taking, timeout).await })?;
        let jobs = self.jobs.clone();
        let shared = Arc::clone(&self.shared);
        Ok(LockGuard::new(info, move |info| {
            let id = info.id.clone();
            call(&jobs, &shared, move |worker| async move { worker.release(id).await })
        }))
    }

    fn unlock(&self, id: &str) -> Result<(), StateError> {
        let id = id.to_owned();
        self.call(move |worker| async move { worker.unlock(id).await })
    }

    fn lock_info(&self) -> Result<Option<LockInfo>, StateError> {
        self.call(|worker| async move { worker.lock_info().await })
    }
}

/// Starts the worker thread, which runs every job as a task of its own until the last sender (the
/// backend and its lock guards) is gone; then its runtime ends, closing the connections, which
/// gives back any lock still held.
fn start_worker(shared: &Arc<Shared>) -> Result<UnboundedSender<Job>, StateError> {
    let failed = |error: std::io::Error| shared.remote("start its worker thread", error.to_string());
    let runtime = tokio::runtime::Builder::new_current_thread().enable_all().build().map_err(failed)?;
    let (jobs, mut queue) = unbounded_channel::<Job>();
    let worker = Arc::new(Worker {
        shared: Arc::clone(shared),
        main: tokio::sync::Mutex::new(None),
        sessions: Mutex::new(HashMap::new()),
    });
    std::thread::Builder::new()
        .name("terrace-pg".to_owned())
        .spawn(move || {
            runtime.block_on(async move {
                while let Some(job) = queue.recv().await {
                    // A task per job, so that a run polling for the lock does not hold up the
                    // release that would free it.
                    tokio::spawn(job(Arc::clone(&worker)));
                }
            });
        })
        .map_err(failed)?;
    Ok(jobs)
}

/// Sends `work` to the worker thread and waits for its answer. The wait blocks this thread only;
/// the worker runs on its own, so this is safe inside any runtime.
fn call<T, F, Fut>(jobs: &UnboundedSender<Job>, shared: &Shared, work: F) -> Result<T, StateError>
where
    T: Send + 'static,
    F: FnOnce(Arc<Worker>) -> Fut + Send + 'static,
    Fut: Future<Output = Result<T, StateError>> + Send + 'static,
{
    let (reply, answer) = std::sync::mpsc::sync_channel(1);
    let job: Job = Box::new(move |worker| {
        Box::pin(async move {
            // The caller waits for the answer, so sending fails only if it is gone, when the
            // answer is of no use.
            let _ = reply.send(work(worker).await);
        })
    });
    let stopped =
        || shared.remote("reach its worker thread", "the thread has stopped, or the request's task failed".to_owned());
    jobs.send(job).map_err(|_| stopped())?;
    answer.recv().map_err(|_| stopped())?
}

impl Worker {
    /// The connection for state, connected (again) when there is none or it was lost, with the
    /// tables in place.
    async fn main(&self) -> Result<MappedMutexGuard<'_, Client>, StateError> {
        let mut slot = self.main.lock().await;
        if slot.as_ref().is_none_or(Client::is_closed) {
            let mut client = self.shared.connect("state").await?;
            self.shared.create_tables(&mut client).await?;
            *slot = Some(client);
        }
        MutexGuard::try_map(slot, Option::as_mut)
            .map_err(|_| self.shared.remote("connect", "no connection was made".to_owned()))
    }

    fn sessions(&self) -> std::sync::MutexGuard<'_, HashMap<String, Client>> {
        // Entries are inserted and removed whole, so a panic elsewhere cannot leave one half made.
        self.sessions.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// The stored bytes and their digest, `None` when the stack has no row.
    async fn read(&self) -> Result<Option<(Vec<u8>, Vec<u8>)>, StateError> {
        let shared = &self.shared;
        let action = "read the state";
        let client = self.main().await?;
        let sql = format!("SELECT state, sha256(state) FROM {} WHERE stack = $1", shared.state_table);
        let row = client.query_opt(&sql, &[&shared.stack]).await.map_err(|error| shared.db(action, &error))?;
        let Some(row) = row else {
            return Ok(None);
        };
        let bytes: Option<Vec<u8>> = shared.column(&row, 0, action)?;
        let digest: Option<Vec<u8>> = shared.column(&row, 1, action)?;
        Ok(Some((bytes.unwrap_or_default(), digest.unwrap_or_default())))
    }

    /// Writes the state in one transaction that locks the row, checks the stored state and
    /// replaces it, keeping the replaced version in the `previous_` columns.
    async fn write(&self, bytes: Vec<u8>, lineage: String, serial: u64) -> Result<(), StateError> {
        let shared = &self.shared;
        let action = "write the state";
        let mut client = self.main().await?;
        let known = shared.known();
        let transaction = client.transaction().await.map_err(|error| shared.db(action, &error))?;
        match self.write_in(&transaction, &bytes, &lineage, serial, known.as_ref()).await {
            Ok(digest) => {
                transaction.commit().await.map_err(|error| shared.db(action, &error))?;
                shared.remember(Known { digest, lineage, serial });
                Ok(())
            }
            Err(error) => {
                // Nothing was changed; a rollback that fails leaves the transaction to end with
                // the connection, unchanged all the same.
                let _ = transaction.rollback().await;
                Err(error)
            }
        }
    }

    /// The body of `write`'s transaction; returns the new state's digest.
    async fn write_in(
        &self,
        transaction: &Transaction<'_>,
        bytes: &[u8],
        lineage: &str,
        serial: u64,
        known: Option<&Known>,
    ) -> Result<Vec<u8>, StateError> {
        let shared = &self.shared;
        let action = "write the state";
        let db = |error: tokio_postgres::Error| shared.db(action, &error);
        let table = &shared.state_table;
        // The stored bytes come back only when they are not the ones this backend knows.
        let lock_row = format!(
            "SELECT sha256(state), CASE WHEN sha256(state) = $2 THEN NULL ELSE state END \
             FROM {table} WHERE stack = $1 FOR UPDATE"
        );
        let insert = format!(
            "INSERT INTO {table} (stack, state, lineage, serial, updated_by) VALUES ($1, $2, $3, $4, $5) \
             ON CONFLICT (stack) DO NOTHING RETURNING sha256(state)"
        );
        let update = format!(
            "UPDATE {table} SET previous_state = state, previous_lineage = lineage, previous_serial = serial, \
             previous_updated_at = updated_at, state = $2, lineage = $3, serial = $4, updated_at = now(), \
             updated_by = $5 WHERE stack = $1 RETURNING sha256(state)"
        );
        // The column is a copy for people; a serial beyond bigint is left out of it, not refused.
        let serial_column = i64::try_from(serial).ok();
        let writer = holder();
        let known_digest = known.map(|known| known.digest.as_slice());
        let stored = loop {
            if let Some(row) = transaction.query_opt(&lock_row, &[&shared.stack, &known_digest]).await.map_err(db)? {
                break row;
            }
            // No row locks nothing, so two first writes can race: the insert does nothing when
            // another run's row came first, and that row is then locked and checked like any other.
            let params: [&(dyn tokio_postgres::types::ToSql + Sync); 5] =
                [&shared.stack, &bytes, &lineage, &serial_column, &writer];
            if let Some(row) = transaction.query_opt(&insert, &params).await.map_err(db)? {
                let digest: Option<Vec<u8>> = shared.column(&row, 0, action)?;
                return Ok(digest.unwrap_or_default());
            }
        };
        let digest: Option<Vec<u8>> = shared.column(&stored, 0, action)?;
        let changed: Option<Vec<u8>> = shared.column(&stored, 1, action)?;
        let (stored_lineage, stored_serial) = match (changed, known) {
            (None, Some(known)) if Some(&known.digest) == digest.as_ref() => (known.lineage.clone(), known.serial),
            // Reading the stored bytes is what keeps a corrupted, foreign or newer state from being
            // overwritten: its read error is returned and the transaction rolled back.
            (changed, _) => {
                let stored = from_json(changed.as_deref().unwrap_or_default(), &shared.describe)?;
                (stored.lineage, stored.serial)
            }
        };
        if stored_lineage != lineage {
            return Err(StateError::LineageMismatch {
                backend: shared.describe.clone(),
                stored: stored_lineage,
                writing: lineage.to_owned(),
            });
        }
        if stored_serial >= serial {
            return Err(StateError::StaleSerial {
                backend: shared.describe.clone(),
                lineage: stored_lineage,
                stored: stored_serial,
                writing: serial,
            });
        }
        let params: [&(dyn tokio_postgres::types::ToSql + Sync); 5] =
            [&shared.stack, &bytes, &lineage, &serial_column, &writer];
        let row = transaction.query_one(&update, &params).await.map_err(db)?;
        let digest: Option<Vec<u8>> = shared.column(&row, 0, action)?;
        Ok(digest.unwrap_or_default())
    }

    /// Takes the stack's advisory lock on a new session, which then holds it until released, and
    /// records `info` beside it; polls until `timeout` has passed while another session holds it.
    async fn lock(&self, info: LockInfo, timeout: Duration) -> Result<(), StateError> {
        let shared = &self.shared;
        let action = "take the lock";
        let db = |error: tokio_postgres::Error| shared.db(action, &error);
        let start = Instant::now();
        // The lock record's table must exist before a session can write to it.
        drop(self.main().await?);
        let session = shared.connect("lock").await?;
        // A server that ends idle sessions would end the lock with it; this session is idle for the
        // whole run by design. The setting exists from PostgreSQL 14 on.
        session
            .batch_execute(
                "SELECT set_config('idle_session_timeout', '0', false) \
                 WHERE current_setting('server_version_num')::int >= 140000",
            )
            .await
            .map_err(db)?;
        let record = serde_json::to_string(&info).map_err(|error| shared.remote(action, error.to_string()))?;
        let insert = format!(
            "INSERT INTO {} (stack, id, info, pid) VALUES ($1, $2, CAST($3::text AS jsonb), pg_backend_pid()) \
             ON CONFLICT (stack) DO UPDATE SET id = EXCLUDED.id, info = EXCLUDED.info, pid = EXCLUDED.pid, \
             locked_at = now()",
            shared.lock_table
        );
        loop {
            let row = session.query_one("SELECT pg_try_advisory_lock($1)", &[&shared.key]).await.map_err(db)?;
            if shared.column::<bool>(&row, 0, action)? {
                // A record left by a session that ended without releasing is replaced: the advisory
                // lock, not the record, says who holds the lock. Should recording fail, the
                // session is dropped with the error, which gives the lock back.
                session.execute(&insert, &[&shared.stack, &info.id, &record]).await.map_err(db)?;
                self.sessions().insert(info.id.clone(), session);
                return Ok(());
            }
            let Some((holder, _)) = shared.current_lock(&session).await? else {
                // Released between the two questions: it is free, so it is tried again at once.
                continue;
            };
            let waited = start.elapsed();
            if waited >= timeout {
                return Err(StateError::Locked {
                    backend: shared.describe.clone(),
                    lock: Box::new(holder),
                    // Without a timeout nothing was waited for, however long the look took.
                    waited: if timeout.is_zero() { Duration::ZERO } else { waited },
                });
            }
            tokio::time::sleep(LOCK_POLL.min(timeout - waited)).await;
        }
    }

    /// Gives back the lock `id` when its guard is released: removes the record and the advisory
    /// lock, then closes the session. A lock that was broken with `unlock` (its session ended) is
    /// left alone, as is whatever lock was taken since.
    async fn release(&self, id: String) -> Result<(), StateError> {
        let shared = &self.shared;
        let Some(session) = self.sessions().remove(&id) else {
            return Ok(());
        };
        if session.is_closed() {
            return Ok(());
        }
        let delete = format!("DELETE FROM {} WHERE stack = $1 AND id = $2", shared.lock_table);
        let result = async {
            session.execute(&delete, &[&shared.stack, &id]).await?;
            // Given back now rather than when the connection closes, so that the next lock (of
            // this process or another) is free the moment the release returns.
            session.query_one("SELECT pg_advisory_unlock($1)", &[&shared.key]).await
        }
        .await;
        match result {
            Ok(_) => Ok(()),
            Err(error)
                if session.is_closed() || error.is_closed() || error.code() == Some(&SqlState::ADMIN_SHUTDOWN) =>
            {
                Ok(())
            }
            // The session is dropped on return, which gives the lock back all the same.
            Err(error) => Err(shared.db("release the lock", &error)),
        }
    }

    /// The current lock, if a session holds the stack's advisory lock.
    async fn lock_info(&self) -> Result<Option<LockInfo>, StateError> {
        let client = self.main().await?;
        Ok(self.shared.current_lock(&client).await?.map(|(info, _)| info))
    }

    /// Breaks the lock `id`: terminates the session holding it (a run that hangs or whose process
    /// is gone while its connection lingers), waits for PostgreSQL to give the lock back, and
    /// removes the record.
    async fn unlock(&self, id: String) -> Result<(), StateError> {
        let shared = &self.shared;
        let action = "break the lock";
        let db = |error: tokio_postgres::Error| shared.db(action, &error);
        let client = self.main().await?;
        let Some((lock, pid)) = shared.current_lock(&client).await? else {
            return Err(StateError::NotLocked { backend: shared.describe.clone(), given: id });
        };
        if lock.id != id {
            return Err(StateError::LockIdMismatch {
                backend: shared.describe.clone(),
                given: id,
                lock: Box::new(lock),
            });
        }
        client.query_one("SELECT pg_terminate_backend($1)", &[&pid]).await.map_err(db)?;
        let (high, low) = key_halves(shared.key);
        let still_held = "SELECT EXISTS (SELECT FROM pg_locks WHERE locktype = 'advisory' AND granted AND pid = $1 \
             AND classid = $2 AND objid = $3 AND objsubid = 1 \
             AND database = (SELECT oid FROM pg_database WHERE datname = current_database()))";
        let start = Instant::now();
        loop {
            let row = client.query_one(still_held, &[&pid, &high, &low]).await.map_err(db)?;
            if !shared.column::<bool>(&row, 0, action)? {
                break;
            }
            if start.elapsed() >= TERMINATE_WAIT {
                return Err(shared.remote(
                    action,
                    format!("session {pid}, which holds it, was told to end but still runs after {TERMINATE_WAIT:?}"),
                ));
            }
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
        let delete = format!("DELETE FROM {} WHERE stack = $1 AND id = $2", shared.lock_table);
        client.execute(&delete, &[&shared.stack, &id]).await.map_err(db)?;
        Ok(())
    }
}

impl Shared {
    /// A new connection; `role` names it in `pg_stat_activity` unless the connection string names
    /// it, so a person can tell a lock's session from the others.
    async fn connect(&self, role: &str) -> Result<Client, StateError> {
        let mut config = self.config.clone();
        if config.get_application_name().is_none() {
            config.application_name(format!("terrace {role} ({})", self.stack));
        }
        match self.tls {
            Tls::Off => {
                let (client, connection) = config.connect(NoTls).await.map_err(|error| self.db("connect", &error))?;
                // The connection task moves the bytes; when it fails, the client's next request
                // reports it, so its own result is not needed.
                tokio::spawn(async move {
                    let _ = connection.await;
                });
                Ok(client)
            }
        }
    }

    /// Creates the schema and tables that are missing. When they exist nothing is created, so a
    /// role that may only use tables made for it works too.
    async fn create_tables(&self, client: &mut Client) -> Result<(), StateError> {
        let action = "create the state tables";
        let db = |error: tokio_postgres::Error| self.db(action, &error);
        let row = client
            .query_one(
                "SELECT to_regclass($1) IS NOT NULL AND to_regclass($2) IS NOT NULL, \
                 EXISTS (SELECT FROM pg_namespace WHERE nspname = $3)",
                &[&self.state_table, &self.lock_table, &self.schema],
            )
            .await
            .map_err(db)?;
        if self.column::<bool>(&row, 0, action)? {
            return Ok(());
        }
        let mut sql = String::new();
        if !self.column::<bool>(&row, 1, action)? {
            let _ = writeln!(sql, "CREATE SCHEMA IF NOT EXISTS {};", quote(&self.schema));
        }
        let _ = write!(
            sql,
            "CREATE TABLE IF NOT EXISTS {} (
                stack text PRIMARY KEY,
                state bytea NOT NULL,
                lineage text,
                serial bigint,
                updated_at timestamptz NOT NULL DEFAULT now(),
                updated_by text,
                previous_state bytea,
                previous_lineage text,
                previous_serial bigint,
                previous_updated_at timestamptz
            );
            CREATE TABLE IF NOT EXISTS {} (
                stack text PRIMARY KEY,
                id text NOT NULL,
                info jsonb NOT NULL,
                pid integer NOT NULL,
                locked_at timestamptz NOT NULL DEFAULT now()
            );",
            self.state_table, self.lock_table
        );
        let transaction = client.transaction().await.map_err(db)?;
        // `CREATE ... IF NOT EXISTS` is not safe against another session creating the same table at
        // that moment (both can fail on the catalog's unique index), so creators queue on a lock
        // that ends with the transaction.
        transaction
            .execute("SELECT pg_advisory_xact_lock($1, $2)", &[&SETUP_LOCK.0, &SETUP_LOCK.1])
            .await
            .map_err(db)?;
        transaction.batch_execute(&sql).await.map_err(db)?;
        transaction.commit().await.map_err(db)
    }

    /// Who holds the stack's advisory lock, with the lock's record, and the holding session's
    /// process id; `None` when no session holds it. A holder that has just taken the lock may not
    /// have recorded itself yet (or an older record may still name the previous holder), so a lock
    /// without a matching record is looked at again for a moment; after that it is described by
    /// its session, with an id that `unlock` takes.
    async fn current_lock(&self, client: &Client) -> Result<Option<(LockInfo, i32)>, StateError> {
        let action = "read the lock";
        let (high, low) = key_halves(self.key);
        let sql = format!(
            "SELECT h.pid, CASE WHEN l.pid = h.pid THEN l.info::text END, a.usename::text, a.application_name, \
             to_char(a.backend_start AT TIME ZONE 'UTC', 'YYYY-MM-DD\"T\"HH24:MI:SS\"Z\"') \
             FROM pg_locks h LEFT JOIN {} l ON l.stack = $1 LEFT JOIN pg_stat_activity a ON a.pid = h.pid \
             WHERE h.locktype = 'advisory' AND h.granted AND h.classid = $2 AND h.objid = $3 AND h.objsubid = 1 \
             AND h.database = (SELECT oid FROM pg_database WHERE datname = current_database())",
            self.lock_table
        );
        let start = Instant::now();
        loop {
            let row =
                client.query_opt(&sql, &[&self.stack, &high, &low]).await.map_err(|error| self.db(action, &error))?;
            let Some(row) = row else {
                return Ok(None);
            };
            let pid: i32 = self.column(&row, 0, action)?;
            if let Some(record) = self.column::<Option<String>>(&row, 1, action)? {
                let info = serde_json::from_str::<LockInfo>(&record)
                    .map_err(|error| self.remote(action, format!("the lock record is not readable: {error}")))?;
                return Ok(Some((info, pid)));
            }
            if start.elapsed() < RECORD_WAIT {
                tokio::time::sleep(Duration::from_millis(10)).await;
                continue;
            }
            let user: Option<String> = self.column(&row, 2, action)?;
            let application: Option<String> = self.column(&row, 3, action)?;
            let since: Option<String> = self.column(&row, 4, action)?;
            let unknown = || "unknown".to_owned();
            let info = LockInfo {
                id: format!("session-{pid}"),
                holder: format!(
                    "PostgreSQL session {pid} of user {} ({}), which left no lock record",
                    user.unwrap_or_else(unknown),
                    application.filter(|name| !name.is_empty()).unwrap_or_else(unknown)
                ),
                operation: unknown(),
                created: since.unwrap_or_else(unknown),
                terrace_version: unknown(),
            };
            return Ok(Some((info, pid)));
        }
    }

    /// Column `index` of `row`; a column of another type (a table made by hand) is an error, not a
    /// panic.
    fn column<'a, T: FromSql<'a>>(&self, row: &'a Row, index: usize, action: &'static str) -> Result<T, StateError> {
        row.try_get(index).map_err(|error| self.db(action, &error))
    }

    fn remote(&self, action: &'static str, detail: String) -> StateError {
        let detail = match &self.secret {
            Some(secret) => detail.replace(secret.as_str(), "****"),
            None => detail,
        };
        StateError::Remote { backend: self.describe.clone(), action, detail }
    }

    fn db(&self, action: &'static str, error: &tokio_postgres::Error) -> StateError {
        self.remote(action, error_text(error))
    }

    fn known(&self) -> Option<Known> {
        self.known_slot().clone()
    }

    fn remember(&self, known: Known) {
        *self.known_slot() = Some(known);
    }

    fn known_slot(&self) -> std::sync::MutexGuard<'_, Option<Known>> {
        // The value is replaced in one assignment, so a poisoned lock still holds a whole one.
        self.known.lock().unwrap_or_else(PoisonError::into_inner)
    }
}

/// A client or server error as one line: the server's severity, code, message, detail and hint,
/// or the client's error with its cause.
fn error_text(error: &tokio_postgres::Error) -> String {
    if let Some(db) = error.as_db_error() {
        let mut text = format!("{} {}: {}", db.severity(), db.code().code(), db.message());
        if let Some(detail) = db.detail() {
            let _ = write!(text, "; {detail}");
        }
        if let Some(hint) = db.hint() {
            let _ = write!(text, "; hint: {hint}");
        }
        return text;
    }
    match std::error::Error::source(error) {
        Some(cause) => format!("{error}: {cause}"),
        None => error.to_string(),
    }
}

/// Why a connection string does not parse. Only the messages that name an option are passed on:
/// the others can quote a character of the text, which may belong to the password.
fn parse_detail(error: &tokio_postgres::Error) -> String {
    let cause = std::error::Error::source(error).map(ToString::to_string).unwrap_or_default();
    if cause.starts_with("invalid value for option") || cause.starts_with("unknown option") {
        format!("the connection string does not parse: {cause}")
    } else {
        "the connection string is neither a postgres:// URL nor key=value pairs (it is not shown, \
         since it may hold a password)"
            .to_owned()
    }
}

/// `user@host:port/dbname` from the parsed settings: the connection string without its password.
fn location(config: &Config) -> String {
    let mut text = String::new();
    if let Some(user) = config.get_user() {
        let _ = write!(text, "{user}@");
    }
    let mut hosts: Vec<String> = config
        .get_hosts()
        .iter()
        .map(|host| match host {
            Host::Tcp(name) => name.clone(),
            #[cfg(unix)]
            Host::Unix(path) => path.display().to_string(),
        })
        .collect();
    if hosts.is_empty() {
        hosts = config.get_hostaddrs().iter().map(ToString::to_string).collect();
    }
    text.push_str(if hosts.is_empty() { "localhost".to_owned() } else { hosts.join(",") }.as_str());
    let ports: Vec<String> = config.get_ports().iter().map(ToString::to_string).collect();
    if !ports.is_empty() {
        let _ = write!(text, ":{}", ports.join(","));
    }
    if let Some(dbname) = config.get_dbname() {
        let _ = write!(text, "/{dbname}");
    }
    text
}

/// `name` as an SQL identifier, quoted, so any schema name is taken as it is.
fn quote(name: &str) -> String {
    format!("\"{}\"", name.replace('"', "\"\""))
}

/// The advisory lock key of `stack` in `schema`: 64-bit FNV-1a, which is stable across releases
/// and platforms (unlike the standard library's hasher), so every terrace takes the same key.
/// Including the schema keeps stacks of the same name in two schemas of one database apart.
fn lock_key(schema: &str, stack: &str) -> i64 {
    let mut hash: u64 = 0xcbf2_9ce4_8422_2325;
    for byte in "terrace state lock".bytes().chain([0]).chain(schema.bytes()).chain([0]).chain(stack.bytes()) {
        hash ^= u64::from(byte);
        hash = hash.wrapping_mul(0x0000_0100_0000_01b3);
    }
    i64::from_ne_bytes(hash.to_ne_bytes())
}

/// How `pg_locks` shows a bigint advisory key: its high half in `classid`, its low half in `objid`.
fn key_halves(key: i64) -> (u32, u32) {
    let key = u64::from_ne_bytes(key.to_ne_bytes());
    ((key >> 32) as u32, (key & 0xffff_ffff) as u32)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn lock_keys_are_stable_and_apart_per_schema_and_stack() {
        assert_eq!(lock_key("public", "shop"), lock_key("public", "shop"));
        assert_ne!(lock_key("public", "shop"), lock_key("ops", "shop"));
        assert_ne!(lock_key("public", "shop"), lock_key("public", "shop2"));
        // The separator keeps ("ab", "c") and ("a", "bc") apart.
        assert_ne!(lock_key("ab", "c"), lock_key("a", "bc"));
        // Pinned: a changed key would let two versions of terrace lock the same stack at once.
        assert_eq!(lock_key("public", "shop"), -7_023_365_326_222_585_284);
        let (high, low) = key_halves(-2);
        assert_eq!((high, low), (0xffff_ffff, 0xffff_fffe));
    }

    #[test]
    fn identifiers_are_quoted_and_locations_leave_the_password_out() {
        assert_eq!(quote("public"), "\"public\"");
        assert_eq!(quote("a\"b"), "\"a\"\"b\"");
        let config = Config::from_str("postgres://terrace:hunter2@db.internal:6432/states").expect("parses");
        assert_eq!(location(&config), "terrace@db.internal:6432/states");
        let config = Config::from_str("host=/run/postgresql dbname=states password=hunter2").expect("parses");
        assert_eq!(location(&config), "/run/postgresql/states");
    }
}
