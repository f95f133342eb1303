//! What the servers of the composites `postgres` and `redis` run: the packages, the files and the
//! first-boot commands of PostgreSQL (with PgBouncer, replication and backups) and Redis, rendered
//! from plain specs into cloud-init's `user_data`.
//!
//! Everything here is a pure function from a spec to text: no I/O, no clock, no randomness, so the
//! same spec always renders the same bytes and the output can be kept under snapshot tests. What
//! must be learnt on the server (the volume's device, the time of a backup) is found there by the
//! rendered scripts. Secrets are given by the caller and written only into files that are not
//! readable by everyone (see [`File::permissions`]).

pub(crate) mod backup;
mod cloud_config;
pub mod converge;
pub(crate) mod postgres;
mod redis;
pub(crate) mod shell;

use std::fmt;

pub use backup::restore_procedure;
pub use cloud_config::cloud_config;
pub use postgres::{postgres, postgres_problems};
pub use redis::{redis, redis_problems};

/// The name of the role that replicas and backups of the WAL stream connect as.
pub const REPLICATION_USER: &str = "replicator";

/// A PostgreSQL server: the primary or one of its streaming replicas.
#[derive(Clone, PartialEq, Eq)]
pub struct PostgresSpec {
    /// The major version, installed from the PGDG repository (`postgresql-16`).
    pub version: u32,
    /// Extensions created in [`PostgresSpec::database`]; `vector` installs `postgresql-16-pgvector`.
    pub extensions: Vec<String>,
    /// The server type's memory and vCPUs, which size the memory and parallelism settings.
    pub memory_mb: u64,
    pub cpus: u32,
    /// The size of the data volume, which bounds the WAL kept for checkpoints and for replicas.
    pub volume_gb: u64,
    pub role: PgRole,
    /// The addresses PostgreSQL (and PgBouncer) listen on: the private IP, or `*`.
    pub listen: Vec<String>,
    /// The networks the application user may connect from.
    pub client_cidrs: Vec<String>,
    /// Addresses (CIDRs) the application user may connect from over the public internet: only
    /// over TLS (`hostssl`), to PostgreSQL and to PgBouncer.
    pub tls_clients: Vec<String>,
    /// The server runs Docker and its containers are clients (172.17.0.1, the docker0 bridge, is
    /// among the listen addresses): PostgreSQL and PgBouncer start after Docker has made it.
    pub docker: bool,
    /// The networks replicas connect from; a peer with `tls` may connect only over TLS.
    pub replication_peers: Vec<Peer>,
    /// The application's database and the user that owns it.
    pub database: String,
    pub user: String,
    pub password: String,
    /// The password of [`REPLICATION_USER`].
    pub replication_password: String,
    pub pgbouncer: Option<PgBouncerSpec>,
    /// Where the data volume is mounted; the cluster's data directory is `<mount_point>/<version>/main`.
    pub mount_point: String,
    pub backup: Option<BackupSpec>,
}

/// Whether a PostgreSQL server takes writes or follows a primary.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum PgRole {
    /// The primary keeps one physical replication slot per replica, so it keeps the WAL a replica
    /// has not received yet (up to a bound, see `max_slot_wal_keep_size`).
    Primary { replica_slots: Vec<String> },
    /// A replica clones the primary once, with its slot, then streams from it; with `tls` it
    /// refuses to connect unencrypted (`sslmode=require`).
    Replica { primary_host: String, slot: String, tls: bool },
}

/// A network that replicas connect from.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Peer {
    pub cidr: String,
    /// A peer over the public internet: accepted only over TLS (`hostssl`).
    pub tls: bool,
}

/// PgBouncer in front of the local PostgreSQL.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PgBouncerSpec {
    pub port: u16,
    pub pool_mode: PoolMode,
    /// Server connections per database and user pair.
    pub default_pool_size: u32,
    pub max_client_conn: u32,
}

/// When PgBouncer gives a server connection back to the pool.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum PoolMode {
    Session,
    Transaction,
    Statement,
}

impl PoolMode {
    /// The name PgBouncer's `pool_mode` takes.
    pub fn as_str(self) -> &'static str {
        match self {
            PoolMode::Session => "session",
            PoolMode::Transaction => "transaction",
            PoolMode::Statement => "statement",
        }
    }
}

/// Backups to an S3 bucket (Hetzner Object Storage).
#[derive(Clone, PartialEq, Eq)]
pub struct BackupSpec {
    pub bucket: String,
    /// The S3 endpoint with its scheme: `https://fsn1.your-objectstorage.com`.
    pub endpoint: String,
    pub region: String,
    pub access_key: String,
    pub secret_key: String,
    /// The folder of this server's backups in the bucket (no leading or trailing `/`), so several
    /// databases can share one bucket: dumps go under `<prefix>/dump/`, WAL under `<prefix>/pgbackrest`.
    pub prefix: String,
    pub schedule: BackupSchedule,
    /// Dumps older than this are deleted after each successful backup.
    pub retention_days: u32,
    /// WAL archiving with pgBackRest, for point-in-time recovery over the last `pitr_days`.
    pub continuous: bool,
    pub pitr_days: u32,
}

/// How often a logical backup (`pg_dump`) is taken.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum BackupSchedule {
    /// At 02:00 UTC.
    Daily,
    /// At minute 0 of every hour.
    Hourly,
}

/// A Redis server, primary or replica.
#[derive(Clone, PartialEq, Eq)]
pub struct RedisSpec {
    /// The major version the configuration is written for; the distribution's `redis-server` is
    /// installed.
    pub version: u32,
    /// `maxmemory`: the memory Redis may use for data before it evicts keys.
    pub memory_mb: u64,
    pub password: String,
    pub bind: Vec<String>,
    /// The primary's host and port, for a replica.
    pub replica_of: Option<(String, u16)>,
    /// Append-only file and RDB snapshots; without it a restart starts empty.
    pub persistence: bool,
    /// The server runs Docker and its containers are clients: Redis starts after Docker has made
    /// the docker0 bridge it listens on.
    pub docker: bool,
}

/// The addresses a server's Docker containers reach their host at (the docker0 bridge), and the
/// range Docker gives its networks (its default address pools lie in 172.17.0.0-172.31.255.255).
pub const DOCKER_BRIDGE: &str = "172.17.0.1";
pub const DOCKER_NETWORKS: &str = "172.16.0.0/12";

/// How terrace reaches a service's server over SSH, handed in at first boot: the server's host key
/// (which terrace generated and pins) and terrace's login key, authorized for root.
#[derive(Clone, PartialEq, Eq)]
pub struct SshAccess {
    /// The host's ed25519 private key, in OpenSSH format, escaped for a double-quoted YAML string
    /// (`\n` for each line break), so a placeholder for it fits on one line.
    pub host_private_key_escaped: String,
    pub host_public_key: String,
    /// The public key terrace logs in with, one OpenSSH line.
    pub authorized_key: String,
}

/// A file that cloud-init writes.
#[derive(Clone, PartialEq, Eq)]
pub struct File {
    pub path: String,
    pub content: String,
    /// Octal mode, `"0600"` for every file that holds a secret.
    pub permissions: String,
    /// `user:group`; a file owned by a user that a package creates is written after the packages
    /// are installed (cloud-init's `defer`).
    pub owner: String,
}

impl File {
    /// Whether cloud-init must write this file after installing the packages, because its owner
    /// is created by one of them.
    pub fn deferred(&self) -> bool {
        self.owner != "root:root"
    }
}

/// A third-party apt repository: cloud-init writes its key to a keyring and the source with
/// `signed-by` pointing at it (`$KEY_FILE`), and `$RELEASE` is the distribution's codename.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AptSource {
    pub name: String,
    pub source: String,
    /// The ASCII-armoured public key the repository's Release files are signed with.
    pub key: String,
}

/// Everything one server needs, before it is written as cloud-config.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct Rendered {
    pub packages: Vec<String>,
    pub apt_sources: Vec<AptSource>,
    pub files: Vec<File>,
    /// Commands run once, as root, at the end of the first boot, in this order.
    pub runcmd: Vec<String>,
    /// The SSH host key and login key, when terrace reaches the server after its first boot.
    pub ssh: Option<SshAccess>,
}

impl Rendered {
    /// The file at `path`, for callers and tests that look at one file.
    pub fn file(&self, path: &str) -> Option<&File> {
        self.files.iter().find(|file| file.path == path)
    }
}

// The specs and files hold passwords and keys, so their Debug output names every field but those.
impl fmt::Debug for PostgresSpec {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("PostgresSpec")
            .field("version", &self.version)
            .field("extensions", &self.extensions)
            .field("memory_mb", &self.memory_mb)
            .field("cpus", &self.cpus)
            .field("volume_gb", &self.volume_gb)
            .field("role", &self.role)
            .field("listen", &self.listen)
            .field("client_cidrs", &self.client_cidrs)
            .field("tls_clients", &self.tls_clients)
            .field("docker", &self.docker)
            .field("replication_peers", &self.replication_peers)
            .field("database", &self.database)
            .field("user", &self.user)
            .field("password", &"(sensitive)")
            .field("replication_password", &"(sensitive)")
            .field("pgbouncer", &self.pgbouncer)
            .field("mount_point", &self.mount_point)
            .field("backup", &self.backup)
            .finish()
    }
}

impl fmt::Debug for BackupSpec {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("BackupSpec")
            .field("bucket", &self.bucket)
            .field("endpoint", &self.endpoint)
            .field("region", &self.region)
            .field("access_key", &"(sensitive)")
            .field("secret_key", &"(sensitive)")
            .field("prefix", &self.prefix)
            .field("schedule", &self.schedule)
            .field("retention_days", &self.retention_days)
            .field("continuous", &self.continuous)
            .field("pitr_days", &self.pitr_days)
            .finish()
    }
}

impl fmt::Debug for RedisSpec {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("RedisSpec")
            .field("version", &self.version)
            .field("memory_mb", &self.memory_mb)
            .field("password", &"(sensitive)")
            .field("bind", &self.bind)
            .field("replica_of", &self.replica_of)
            .field("persistence", &self.persistence)
            .field("docker", &self.docker)
            .finish()
    }
}

impl fmt::Debug for SshAccess {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("SshAccess")
            .field("host_private_key_escaped", &"(sensitive)")
            .field("host_public_key", &self.host_public_key)
            .field("authorized_key", &self.authorized_key)
            .finish()
    }
}

impl fmt::Debug for File {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("File")
            .field("path", &self.path)
            .field("content", &format_args!("({} bytes)", self.content.len()))
            .field("permissions", &self.permissions)
            .field("owner", &self.owner)
            .finish()
    }
}
