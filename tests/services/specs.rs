//! The fixed specs the snapshots are taken of, as the composite expansion would give them for the
//! seed's production database: a primary with PgBouncer, backups and pgvector, its replica in
//! another location over TLS, and a Redis primary with its replica.

use terrace::services::{BackupSchedule, BackupSpec, Peer, PgBouncerSpec, PgRole, PoolMode, PostgresSpec, RedisSpec};

pub(crate) fn primary() -> PostgresSpec {
    PostgresSpec {
        version: 16,
        extensions: vec!["vector".into()],
        memory_mb: 4096,
        cpus: 3,
        volume_gb: 20,
        role: PgRole::Primary { replica_slots: vec!["replica_0".into()] },
        listen: vec!["*".into()],
        client_cidrs: vec!["10.0.0.0/16".into()],
        // An app server in another region, which reaches the database over the public internet.
        tls_clients: vec!["198.51.100.9/32".into()],
        docker: false,
        replication_peers: vec![
            Peer { cidr: "10.0.0.0/16".into(), tls: false },
            Peer { cidr: "203.0.113.7/32".into(), tls: true },
        ],
        database: "fastbots".into(),
        user: "fastbots_app".into(),
        password: "app-password-0123456789".into(),
        replication_password: "replication-password-0123456789".into(),
        pgbouncer: Some(PgBouncerSpec {
            port: 6432,
            pool_mode: PoolMode::Transaction,
            default_pool_size: 20,
            max_client_conn: 500,
        }),
        mount_point: "/var/lib/terrace/pgdata".into(),
        backup: Some(BackupSpec {
            bucket: "fastbots-backups".into(),
            endpoint: "https://fsn1.your-objectstorage.com".into(),
            region: "fsn1".into(),
            access_key: "ACCESSKEY0123456789".into(),
            secret_key: "secret-key-0123456789abcdef".into(),
            prefix: "postgres/main".into(),
            schedule: BackupSchedule::Daily,
            retention_days: 30,
            continuous: true,
            pitr_days: 7,
        }),
    }
}

/// The replica in another location: it reaches the primary's public address over TLS.
pub(crate) fn replica() -> PostgresSpec {
    PostgresSpec {
        memory_mb: 2048,
        cpus: 2,
        role: PgRole::Replica { primary_host: "203.0.113.5".into(), slot: "replica_0".into(), tls: true },
        backup: None,
        ..primary()
    }
}

pub(crate) fn redis_primary() -> RedisSpec {
    RedisSpec {
        version: 7,
        memory_mb: 768,
        password: "redis-password-0123456789".into(),
        bind: vec!["10.0.1.3".into(), "127.0.0.1".into()],
        replica_of: None,
        persistence: true,
        docker: false,
    }
}

pub(crate) fn redis_replica() -> RedisSpec {
    RedisSpec {
        bind: vec!["10.0.1.4".into(), "127.0.0.1".into()],
        replica_of: Some(("10.0.1.3".into(), 6379)),
        ..redis_primary()
    }
}
