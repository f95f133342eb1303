//! The cloud-init of a service's servers: the composite's settings become a
//! [`services`](crate::services) spec, which renders the files; values known only at apply (the
//! generated passwords, peers' addresses, the bucket's credentials) go into the spec as
//! placeholders, and the rendered text becomes a [`Value::Template`] with the references in their
//! place, rendered again when they are recorded.

use std::collections::BTreeMap;

use crate::services::{self, BackupSchedule, BackupSpec, PgBouncerSpec, PgRole, PoolMode, PostgresSpec, RedisSpec};
use crate::value::Value;

/// Values known only at apply, each behind a placeholder the renderers pass through unchanged
/// (lower-case letters and digits, 32 long: valid as a password, a host name part and in every
/// quoting the renderers use).
#[derive(Default)]
pub(super) struct Slots {
    values: Vec<Value>,
}

impl Slots {
    /// The text standing for `value` in a spec: the value itself when it is a known string.
    pub(super) fn text(&mut self, value: &Value) -> String {
        if let Value::String(text) = value {
            return text.clone();
        }
        let token = format!("trcslot{:0>4}{}", self.values.len(), "q".repeat(21));
        self.values.push(value.clone());
        token
    }

    /// The rendered text with every placeholder replaced by its value: a template when any is
    /// left, and sensitive as a whole when any part is.
    pub(super) fn template(&self, rendered: &str) -> Value {
        let mut parts: Vec<Value> = Vec::new();
        let mut rest = rendered;
        while let Some(at) = rest.find("trcslot") {
            let token = &rest[at..rest.len().min(at + 32)];
            let index = token.get(7..11).and_then(|n| n.parse::<usize>().ok());
            match index.and_then(|i| self.values.get(i)) {
                Some(value) if token.len() == 32 => {
                    parts.push(Value::String(rest[..at].to_owned()));
                    parts.push(value.clone());
                    rest = &rest[at + 32..];
                }
                _ => {
                    parts.push(Value::String(rest[..at + 7].to_owned()));
                    rest = &rest[at + 7..];
                }
            }
        }
        parts.push(Value::String(rest.to_owned()));
        parts.retain(|p| p.as_str() != Some(""));
        if parts.len() == 1 && matches!(parts[0], Value::String(_)) {
            return parts.remove(0);
        }
        Value::Template(parts)
    }
}

/// What a service's server needs that the composite knows.
pub(super) struct Server<'a> {
    pub attrs: &'a BTreeMap<String, Value>,
    pub memory_mb: u64,
    pub cpus: u32,
    pub primary: bool,
    pub index: Option<u32>,
    pub replicas: u32,
    /// The addresses the service listens on.
    pub listen: Vec<String>,
    /// The networks clients connect from (the private network's range).
    pub client_cidrs: Vec<String>,
    /// Clients over the public internet: their public IPv4s, admitted only with TLS.
    pub tls_clients: Vec<Value>,
    /// The server runs Docker and its containers are clients.
    pub docker: bool,
    /// The host key and login key handed in at first boot.
    pub access: Option<Access>,
    /// Replication peers: (an address range, over TLS).
    pub peers: Vec<(Value, bool)>,
    /// For a replica: the primary's address, and whether it is reached over the public network.
    pub primary_host: Option<(Value, bool)>,
    pub password: Value,
    pub replication_password: Value,
    pub backup: Option<Backup>,
}

/// References to the key pairs a server is reached with: its host key (the private key escaped for
/// YAML, and the public key) and terrace's login key.
#[derive(Clone)]
pub(super) struct Access {
    pub host_private_escaped: Value,
    pub host_public: Value,
    pub login_public: Value,
}

/// A server's configuration: its first-boot document, the files and packages terrace keeps on it
/// afterwards (the same rendering), and what is wrong with the settings.
pub(super) struct Configured {
    pub user_data: Value,
    pub files: Vec<Value>,
    pub packages: Vec<String>,
    pub problems: Vec<String>,
    /// The restore procedure of a database (`Null` for Redis).
    pub restore: Value,
}

/// The first-boot document and the host's files from one rendering, placeholders filled with the
/// references they stand for.
fn configured(
    mut rendered: services::Rendered,
    access: Option<&Access>,
    slots: &mut Slots,
    problems: Vec<String>,
    restore: Value,
) -> Configured {
    if let Some(access) = access {
        rendered.ssh = Some(services::SshAccess {
            host_private_key_escaped: slots.text(&access.host_private_escaped),
            host_public_key: slots.text(&access.host_public),
            authorized_key: slots.text(&access.login_public),
        });
    }
    let files = rendered
        .files
        .iter()
        .map(|file| {
            Value::Map(BTreeMap::from([
                ("path".to_owned(), Value::String(file.path.clone())),
                ("content".to_owned(), slots.template(&file.content)),
                ("mode".to_owned(), Value::String(file.permissions.clone())),
                ("owner".to_owned(), Value::String(file.owner.clone())),
            ]))
        })
        .collect();
    Configured {
        user_data: slots.template(&services::cloud_config(&rendered)),
        files,
        packages: rendered.packages.clone(),
        problems,
        restore,
    }
}

/// The bucket backups go to, as the composite resolved it.
#[derive(Clone)]
pub(super) struct Backup {
    pub bucket_name: Value,
    pub location: String,
    pub access_key: Value,
    pub secret_key: Value,
    pub prefix: String,
    pub schedule: BackupSchedule,
    pub retention_days: u32,
    pub continuous: bool,
    pub pitr_days: u32,
}

fn text_attr(attrs: &BTreeMap<String, Value>, name: &str, default: &str) -> String {
    attrs.get(name).and_then(Value::as_str).unwrap_or(default).to_owned()
}

/// The configuration of a PostgreSQL server.
pub(super) fn postgres(server: &Server<'_>) -> Configured {
    let mut slots = Slots::default();
    let attrs = server.attrs;
    let role = if server.primary {
        PgRole::Primary { replica_slots: (0..server.replicas).map(|i| format!("replica_{i}")).collect() }
    } else {
        let (host, tls) = server.primary_host.clone().unwrap_or((Value::str("127.0.0.1"), false));
        PgRole::Replica { primary_host: slots.text(&host), slot: format!("replica_{}", server.index.unwrap_or(0)), tls }
    };
    let peers = server
        .peers
        .iter()
        .map(|(address, tls)| services::Peer {
            // A range as written, or one address (a primary IP) as a /32.
            cidr: match address {
                Value::String(range) => range.clone(),
                other => format!("{}/32", slots.text(other)),
            },
            tls: *tls,
        })
        .collect();
    let backup = server.backup.as_ref().filter(|_| server.primary).map(|b| BackupSpec {
        bucket: slots.text(&b.bucket_name),
        endpoint: format!("https://{}.your-objectstorage.com", b.location),
        region: b.location.clone(),
        access_key: slots.text(&b.access_key),
        secret_key: slots.text(&b.secret_key),
        prefix: b.prefix.clone(),
        schedule: b.schedule,
        retention_days: b.retention_days,
        continuous: b.continuous,
        pitr_days: b.pitr_days,
    });
    let spec = PostgresSpec {
        version: attrs.get("version").and_then(Value::as_u64).unwrap_or(16) as u32,
        extensions: attrs.get("extensions").map(Value::texts).unwrap_or_default(),
        memory_mb: server.memory_mb,
        cpus: server.cpus,
        volume_gb: attrs.get("storage_gb").and_then(Value::as_u64).unwrap_or(10),
        role,
        listen: server.listen.clone(),
        client_cidrs: server.client_cidrs.clone(),
        tls_clients: server.tls_clients.iter().map(|ip| format!("{}/32", slots.text(ip))).collect(),
        docker: server.docker,
        replication_peers: peers,
        database: text_attr(attrs, "database", "app"),
        user: text_attr(attrs, "user", "app"),
        password: slots.text(&server.password),
        replication_password: slots.text(&server.replication_password),
        pgbouncer: (attrs.get("pgbouncer").and_then(Value::as_bool) == Some(true)).then_some(PgBouncerSpec {
            port: 6432,
            pool_mode: PoolMode::Transaction,
            default_pool_size: 20,
            max_client_conn: 500,
        }),
        mount_point: "/var/lib/terrace/pgdata".into(),
        backup,
    };
    let problems = services::postgres_problems(&spec);
    let restore = slots.template(&services::restore_procedure(&spec));
    configured(services::postgres(&spec), server.access.as_ref(), &mut slots, problems, restore)
}

/// The configuration of a Redis server.
pub(super) fn redis(server: &Server<'_>) -> Configured {
    let mut slots = Slots::default();
    let attrs = server.attrs;
    let spec = RedisSpec {
        version: attrs.get("version").and_then(Value::as_u64).unwrap_or(7) as u32,
        memory_mb: attrs.get("memory_mb").and_then(Value::as_u64).unwrap_or(256),
        password: slots.text(&server.password),
        bind: server.listen.clone(),
        replica_of: server.primary_host.as_ref().filter(|_| !server.primary).map(|(host, _)| (slots.text(host), 6379)),
        persistence: true,
        docker: server.docker,
    };
    let problems = services::redis_problems(&spec);
    configured(services::redis(&spec), server.access.as_ref(), &mut slots, problems, Value::Null)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::value::Reference;

    #[test]
    fn placeholders_become_the_references_they_stand_for() {
        let mut slots = Slots::default();
        let secret = Value::Sensitive(Box::new(Value::Ref(Reference {
            address: "postgres.main.secret.password".parse().expect("an address"),
            attribute: Some("value".into()),
        })));
        let token = slots.text(&secret);
        assert_eq!(token.len(), 32);
        assert!(token.chars().all(|c| c.is_ascii_alphanumeric()));
        assert_eq!(slots.text(&Value::str("known")), "known");
        let rendered = format!("password={token}\nagain {token}.");
        let Value::Template(parts) = slots.template(&rendered) else { panic!("a template") };
        assert_eq!(
            parts,
            vec![Value::str("password="), secret.clone(), Value::str("\nagain "), secret, Value::str("."),]
        );
        assert_eq!(slots.template("nothing to fill"), Value::str("nothing to fill"));
    }
}
