//! PostgreSQL's files: the PGDG apt source and packages, the cluster on the data volume, its
//! settings sized from the server type, pg_hba.conf, the roles, database, slots and extensions of
//! a primary, the clone of a replica, and PgBouncer.

use super::shell::{conf_string, is_plain_name, sh, sql_ident, sql_literal};
use super::{AptSource, File, PgBouncerSpec, PgRole, PostgresSpec, REPLICATION_USER, Rendered, backup};

/// Where terrace's own PostgreSQL files live, apart from the files the packages own.
pub(crate) const CONF_DIR: &str = "/etc/terrace/postgres";
pub(crate) const SOCKET_DIR: &str = "/var/run/postgresql";
pub(crate) const PORT: u16 = 5432;
/// The cluster's name, and pgBackRest's stanza.
pub(crate) const CLUSTER: &str = "main";
pub(crate) const VOLUME_SCRIPT: &str = "/usr/local/sbin/terrace-volume";
/// The data volume's size as the definitions have it: a change grows the filesystem in place.
pub(crate) const VOLUME_CONF: &str = "/etc/terrace/postgres/volume.conf";
pub(crate) const CLUSTER_SCRIPT: &str = "/usr/local/sbin/terrace-postgres";
pub(crate) const PGBOUNCER_INI: &str = "/etc/pgbouncer/pgbouncer.ini";
pub(crate) const PGBOUNCER_USERLIST: &str = "/etc/pgbouncer/userlist.txt";
pub(crate) const PGBOUNCER_HBA: &str = "/etc/pgbouncer/pg_hba.conf";
/// The snakeoil certificate the `ssl-cert` package makes at install: TLS peers use
/// `sslmode=require`, which encrypts without checking the certificate's issuer, and the password
/// exchange (SCRAM) never sends the password itself.
pub(crate) const TLS_CERT: &str = "/etc/ssl/certs/ssl-cert-snakeoil.pem";
pub(crate) const TLS_KEY: &str = "/etc/ssl/private/ssl-cert-snakeoil.key";
/// The PGDG repository's signing key, as shipped by Debian's postgresql-common
/// (`/usr/share/postgresql-common/pgdg/apt.postgresql.org.asc`), fingerprint
/// B97B0AFCAA1A47F044F244A07FCC7D46ACCC4CF8.
const PGDG_KEY: &str = include_str!("pgdg.asc");

/// Settings that a hot standby requires to be at least its primary's. They are the same on every
/// member whatever its server type, since a replica may be smaller than its primary
/// (`replica_server_type`) and would otherwise refuse to start.
const MAX_CONNECTIONS: u64 = 200;
const MAX_WORKER_PROCESSES: u32 = 64;
const MAX_WAL_SENDERS: u32 = 16;
const MAX_REPLICATION_SLOTS: u32 = 16;

/// Extensions shipped with PostgreSQL itself (postgresql-contrib is part of the server package),
/// which need no package of their own.
const CONTRIB: &[&str] = &[
    "btree_gin",
    "btree_gist",
    "citext",
    "cube",
    "fuzzystrmatch",
    "hstore",
    "intarray",
    "ltree",
    "pg_stat_statements",
    "pg_trgm",
    "pgcrypto",
    "tablefunc",
    "unaccent",
    "uuid-ossp",
];

/// The package that provides an extension, when it is not part of PostgreSQL.
fn extension_package(version: u32, extension: &str) -> Option<String> {
    match extension {
        "vector" => Some(format!("postgresql-{version}-pgvector")),
        _ => None,
    }
}

/// The paths of one cluster, derived from the spec.
pub(crate) fn data_directory(spec: &PostgresSpec) -> String {
    format!("{}/{}/{CLUSTER}", spec.mount_point.trim_end_matches('/'), spec.version)
}

/// What is wrong with a spec, one sentence each; empty when the spec can be rendered. The
/// renderers assume a spec without problems: names are written unquoted where PostgreSQL's tools
/// take no quotes (psql's `\connect`, PgBouncer's `[databases]`, pg_hba.conf's keywords).
pub fn postgres_problems(spec: &PostgresSpec) -> Vec<String> {
    let mut problems = Vec::new();
    let reserved = ["all", "sameuser", "samerole", "samegroup", "replication", "postgres", "template0", "template1"];
    for (what, name) in [("database", &spec.database), ("user", &spec.user)] {
        if !is_plain_name(name) {
            problems.push(format!(
                "the {what} name `{name}` must be lower-case letters, digits and `_`, starting with a letter"
            ));
        } else if reserved.contains(&name.as_str()) || name == REPLICATION_USER {
            problems.push(format!("the {what} name `{name}` is reserved"));
        }
    }
    let slots = match &spec.role {
        PgRole::Primary { replica_slots } => replica_slots.iter().collect::<Vec<_>>(),
        PgRole::Replica { slot, .. } => vec![slot],
    };
    for slot in slots {
        if !is_plain_name(slot) {
            problems.push(format!("the replication slot `{slot}` must be lower-case letters, digits and `_`"));
        }
    }
    if let PgRole::Primary { replica_slots } = &spec.role
        && replica_slots.len() > MAX_REPLICATION_SLOTS as usize
    {
        problems.push(format!("at most {MAX_REPLICATION_SLOTS} replicas are supported"));
    }
    for extension in &spec.extensions {
        if extension_package(spec.version, extension).is_none() && !CONTRIB.contains(&extension.as_str()) {
            problems.push(format!("the extension `{extension}` is not one terrace knows how to install"));
        }
    }
    for (what, secret) in [("password", &spec.password), ("replication password", &spec.replication_password)] {
        if secret.len() < 16 || secret.chars().any(|c| c.is_control() || c == ' ') {
            problems.push(format!("the {what} must be at least 16 characters, without spaces or control characters"));
        }
    }
    if spec.listen.is_empty() {
        problems.push("PostgreSQL must listen on at least one address".into());
    }
    if !spec.mount_point.starts_with('/') || spec.mount_point.contains(char::is_whitespace) {
        problems.push(format!("the mount point `{}` must be an absolute path without spaces", spec.mount_point));
    }
    if let Some(backup) = &spec.backup {
        problems.extend(backup::problems(spec, backup));
    }
    problems
}

/// Everything a PostgreSQL server needs, primary or replica.
pub fn postgres(spec: &PostgresSpec) -> Rendered {
    let mut packages = vec![format!("postgresql-{}", spec.version), "ssl-cert".to_owned()];
    packages.extend(spec.extensions.iter().filter_map(|extension| extension_package(spec.version, extension)));
    let mut files = vec![
        root_file(
            "/etc/postgresql-common/createcluster.d/terrace.conf",
            "0644",
            format!(
                "# terrace: the package must not create a cluster on the root disk; {CLUSTER_SCRIPT} creates\n\
                 # (or adopts) the cluster on the data volume.\n\
                 create_main_cluster = false\n"
            ),
        ),
        root_file(
            "/etc/systemd/system/postgresql@.service.d/terrace.conf",
            "0644",
            format!(
                "# terrace: the clusters live on the data volume; without it mounted they must not start.\n\
                 [Unit]\n\
                 RequiresMountsFor={}\n{}",
                spec.mount_point,
                if spec.docker { AFTER_DOCKER } else { "" }
            ),
        ),
        root_file(&format!("{CONF_DIR}/postgresql.conf"), "0644", postgresql_conf(spec)),
        root_file(&format!("{CONF_DIR}/pg_hba.conf"), "0644", pg_hba(spec)),
        root_file(VOLUME_SCRIPT, "0755", volume_script(&spec.mount_point)),
        root_file(VOLUME_CONF, "0644", volume_conf(spec)),
        root_file(CLUSTER_SCRIPT, "0755", cluster_script(spec)),
    ];
    match &spec.role {
        PgRole::Primary { .. } => files.push(postgres_file(&format!("{CONF_DIR}/setup.sql"), "0600", setup_sql(spec))),
        PgRole::Replica { primary_host, .. } => files.push(postgres_file(
            &format!("{CONF_DIR}/replication.pgpass"),
            "0600",
            format!(
                "{}:{PORT}:*:{REPLICATION_USER}:{}\n",
                pgpass_escape(primary_host),
                pgpass_escape(&spec.replication_password)
            ),
        )),
    }
    let mut runcmd = vec![VOLUME_SCRIPT.to_owned(), CLUSTER_SCRIPT.to_owned()];
    if let Some(bouncer) = &spec.pgbouncer {
        packages.push("pgbouncer".into());
        files.push(postgres_file(PGBOUNCER_INI, "0640", pgbouncer_ini(spec, bouncer)));
        files.push(postgres_file(PGBOUNCER_HBA, "0640", pgbouncer_hba(spec)));
        if spec.docker {
            files.push(root_file(
                "/etc/systemd/system/pgbouncer.service.d/terrace.conf",
                "0644",
                format!("# terrace: PgBouncer listens on the docker0 bridge as well.\n[Unit]\n{AFTER_DOCKER}"),
            ));
        }
        files.push(postgres_file(
            PGBOUNCER_USERLIST,
            "0640",
            format!("\"{}\" \"{}\"\n", spec.user.replace('"', "\"\""), spec.password.replace('"', "\"\"")),
        ));
        runcmd.push("systemctl enable pgbouncer.service".into());
        runcmd.push("systemctl restart pgbouncer.service".into());
    }
    if let (Some(backup), PgRole::Primary { .. }) = (&spec.backup, &spec.role) {
        let parts = backup::render(spec, backup);
        packages.extend(parts.packages);
        files.extend(parts.files);
        runcmd.extend(parts.runcmd);
    }
    Rendered {
        packages,
        apt_sources: vec![AptSource {
            name: "pgdg".into(),
            source: "deb [signed-by=$KEY_FILE] https://apt.postgresql.org/pub/repos/apt $RELEASE-pgdg main".into(),
            key: PGDG_KEY.into(),
        }],
        files,
        runcmd,
        ssh: None,
    }
}

pub(crate) fn root_file(path: &str, permissions: &str, content: String) -> File {
    File { path: path.into(), content, permissions: permissions.into(), owner: "root:root".into() }
}

pub(crate) fn postgres_file(path: &str, permissions: &str, content: String) -> File {
    File { path: path.into(), content, permissions: permissions.into(), owner: "postgres:postgres".into() }
}

/// The memory and parallelism settings, from the server type.
struct Sizing {
    shared_buffers_mb: u64,
    effective_cache_size_mb: u64,
    work_mem_mb: u64,
    maintenance_work_mem_mb: u64,
    parallel_workers: u32,
    parallel_per_gather: u32,
    max_wal_size_mb: u64,
    slot_wal_keep_mb: u64,
}

fn sizing(spec: &PostgresSpec) -> Sizing {
    let memory = spec.memory_mb.max(512);
    let shared_buffers_mb = memory / 4;
    let parallel_per_gather = (spec.cpus / 2).clamp(1, 4);
    // Connections that can run queries at once: PgBouncer's pool (plus room for maintenance and
    // replication), or every allowed connection without it. Each may use work_mem a few times
    // over (sorts and hashes of one query) and once per parallel worker.
    let active = spec.pgbouncer.as_ref().map_or(MAX_CONNECTIONS, |b| u64::from(b.default_pool_size) + 10);
    let work_mem_mb = ((memory - shared_buffers_mb) / (active * 3) / u64::from(parallel_per_gather)).clamp(4, 256);
    let volume_mb = spec.volume_gb.max(10) * 1024;
    Sizing {
        shared_buffers_mb,
        effective_cache_size_mb: memory * 3 / 4,
        work_mem_mb,
        maintenance_work_mem_mb: (memory / 16).clamp(64, 2048),
        parallel_workers: spec.cpus.max(1),
        parallel_per_gather,
        // Checkpoints at most every tenth of the volume, and WAL kept for a lagging replica up to a
        // quarter of it: a replica gone for longer loses its slot's guarantee (and is cloned
        // again) instead of filling the primary's disk.
        max_wal_size_mb: (volume_mb / 10).clamp(1024, 16384),
        slot_wal_keep_mb: volume_mb / 4,
    }
}

fn postgresql_conf(spec: &PostgresSpec) -> String {
    let size = sizing(spec);
    let listen = conf_string(&spec.listen.join(","));
    let mut text = format!(
        "# terrace: settings of the PostgreSQL {version} cluster \"{CLUSTER}\", linked into its conf.d by\n\
         # {CLUSTER_SCRIPT}; they override what pg_createcluster wrote. Sized for {memory} MB of\n\
         # memory and {cpus} vCPUs.\n\
         \n\
         # Connections. max_connections is the same on every member whatever its size: a standby\n\
         # refuses to start with fewer than its primary.\n\
         listen_addresses = {listen}\n\
         port = {PORT}\n\
         unix_socket_directories = {socket}\n\
         max_connections = {MAX_CONNECTIONS}\n\
         password_encryption = 'scram-sha-256'\n\
         hba_file = {hba}\n\
         \n\
         # TLS for every client that asks, and required of peers over the public internet (pg_hba.conf).\n\
         ssl = on\n\
         ssl_cert_file = {cert}\n\
         ssl_key_file = {key}\n\
         ssl_min_protocol_version = 'TLSv1.2'\n\
         \n\
         # Memory: a quarter for shared buffers, the rest mostly the OS cache.\n\
         shared_buffers = {shared}MB\n\
         effective_cache_size = {cache}MB\n\
         work_mem = {work}MB\n\
         maintenance_work_mem = {maintenance}MB\n\
         huge_pages = try\n\
         \n\
         # Parallel queries from the vCPUs; the pool of worker slots is fixed for the standby rule above.\n\
         max_worker_processes = {MAX_WORKER_PROCESSES}\n\
         max_parallel_workers = {workers}\n\
         max_parallel_workers_per_gather = {per_gather}\n\
         max_parallel_maintenance_workers = {per_gather}\n\
         \n\
         # Hetzner volumes are network SSDs.\n\
         random_page_cost = 1.1\n\
         effective_io_concurrency = 200\n\
         checkpoint_completion_target = 0.9\n\
         max_wal_size = {max_wal}MB\n\
         min_wal_size = 256MB\n\
         wal_compression = on\n\
         \n\
         # Replication: streaming replicas with physical slots, readable while they replay.\n\
         wal_level = replica\n\
         max_wal_senders = {MAX_WAL_SENDERS}\n\
         max_replication_slots = {MAX_REPLICATION_SLOTS}\n\
         max_slot_wal_keep_size = {slot_keep}MB\n\
         hot_standby = on\n\
         # Long read queries on a replica are not cancelled by the primary's vacuum.\n\
         hot_standby_feedback = on\n",
        version = spec.version,
        memory = spec.memory_mb,
        cpus = spec.cpus,
        socket = conf_string(SOCKET_DIR),
        hba = conf_string(&format!("{CONF_DIR}/pg_hba.conf")),
        cert = conf_string(TLS_CERT),
        key = conf_string(TLS_KEY),
        shared = size.shared_buffers_mb,
        cache = size.effective_cache_size_mb,
        work = size.work_mem_mb,
        maintenance = size.maintenance_work_mem_mb,
        workers = size.parallel_workers,
        per_gather = size.parallel_per_gather,
        max_wal = size.max_wal_size_mb,
        slot_keep = size.slot_wal_keep_mb,
    );
    let continuous = spec.backup.as_ref().is_some_and(|b| b.continuous);
    if matches!(spec.role, PgRole::Primary { .. }) && !continuous {
        text.push_str(
            "\n\
             # WAL archiving is on from the start, with a command that keeps nothing: archive_mode takes a\n\
             # restart, archive_command only a reload, so continuous backups begin without stopping the\n\
             # database.\n\
             archive_mode = on\n\
             archive_command = '/bin/true'\n",
        );
    }
    if matches!(spec.role, PgRole::Primary { .. }) && continuous {
        text.push_str(&format!(
            "\n\
             # Continuous archiving of the WAL with pgBackRest, for point-in-time recovery. A WAL segment\n\
             # is archived at least every 5 minutes, so a quiet database loses at most that much.\n\
             archive_mode = on\n\
             archive_command = {}\n\
             archive_timeout = 300\n",
            conf_string(&format!("pgbackrest --stanza={CLUSTER} archive-push %p"))
        ));
    }
    text
}

fn pg_hba(spec: &PostgresSpec) -> String {
    let mut lines = vec![
        "# terrace: who may connect to PostgreSQL, and how. The first matching line decides, and".to_owned(),
        "# whatever no line matches is refused.".to_owned(),
        "#".to_owned(),
        "# The superuser only locally, as the OS user postgres (cloud-init, backups, maintenance).".to_owned(),
        hba_line("local", "all", "postgres", "", "peer"),
    ];
    if spec.pgbouncer.is_some() {
        lines.push("# PgBouncer, on this server, over the Unix socket.".into());
        lines.push(hba_line("local", &spec.database, &spec.user, "", "scram-sha-256"));
    }
    client_lines(spec, &mut lines);
    if !spec.replication_peers.is_empty() {
        lines.push("# Replicas: over the private network, or only over TLS from the public internet.".into());
        for peer in &spec.replication_peers {
            let kind = if peer.tls { "hostssl" } else { "host" };
            lines.push(hba_line(kind, "replication", REPLICATION_USER, &peer.cidr, "scram-sha-256"));
        }
    }
    let mut text = lines.join("\n");
    text.push('\n');
    text
}

/// The application's lines, the same in pg_hba.conf and PgBouncer's: from its networks, and only
/// over TLS from the public addresses of clients outside them.
fn client_lines(spec: &PostgresSpec, lines: &mut Vec<String>) {
    if !spec.client_cidrs.is_empty() {
        lines.push("# The application, from its networks.".into());
        for cidr in &spec.client_cidrs {
            lines.push(hba_line("host", &spec.database, &spec.user, cidr, "scram-sha-256"));
        }
    }
    if !spec.tls_clients.is_empty() {
        lines.push("# Clients outside the private network, over the public internet: only with TLS.".into());
        for cidr in &spec.tls_clients {
            lines.push(hba_line("hostssl", &spec.database, &spec.user, cidr, "scram-sha-256"));
        }
    }
}

fn hba_line(kind: &str, database: &str, user: &str, address: &str, method: &str) -> String {
    format!("{kind:<8} {database:<16} {user:<16} {address:<20} {method}").trim_end().to_owned()
}

/// A field of a .pgpass line, where `:` and `\` are escaped with `\`.
fn pgpass_escape(value: &str) -> String {
    value.replace('\\', r"\\").replace(':', r"\:")
}

fn setup_sql(spec: &PostgresSpec) -> String {
    let PgRole::Primary { replica_slots } = &spec.role else { return String::new() };
    let mut text = format!(
        "-- terrace: the application's role and database, the replication role and slots, and the\n\
         -- extensions. Run as postgres on the primary by {CLUSTER_SCRIPT}; safe to run\n\
         -- again: what exists is kept, and the passwords are set to the ones given.\n\
         \\set ON_ERROR_STOP on\n\
         \n"
    );
    for (role, attributes, password) in [
        (spec.user.as_str(), "LOGIN NOSUPERUSER NOCREATEDB NOCREATEROLE NOREPLICATION", spec.password.as_str()),
        (REPLICATION_USER, "LOGIN REPLICATION NOSUPERUSER NOCREATEDB NOCREATEROLE", spec.replication_password.as_str()),
    ] {
        text.push_str(&format!(
            "SELECT format('CREATE ROLE %I', {name}) WHERE NOT EXISTS (SELECT FROM pg_roles WHERE rolname = {name}) \\gexec\n\
             ALTER ROLE {ident} WITH {attributes} PASSWORD {password};\n\n",
            name = sql_literal(role),
            ident = sql_ident(role),
            password = sql_literal(password),
        ));
    }
    text.push_str(&format!(
        "SELECT format('CREATE DATABASE %I OWNER %I', {db}, {user}) WHERE NOT EXISTS (SELECT FROM pg_database WHERE datname = {db}) \\gexec\n\
         ALTER DATABASE {db_ident} OWNER TO {user_ident};\n",
        db = sql_literal(&spec.database),
        user = sql_literal(&spec.user),
        db_ident = sql_ident(&spec.database),
        user_ident = sql_ident(&spec.user),
    ));
    if !replica_slots.is_empty() {
        text.push_str(
            "\n-- One physical slot per replica: the primary keeps the WAL a replica has not received yet.\n",
        );
        for slot in replica_slots {
            text.push_str(&format!(
                "SELECT pg_create_physical_replication_slot({slot}) WHERE NOT EXISTS (SELECT FROM pg_replication_slots WHERE slot_name = {slot});\n",
                slot = sql_literal(slot)
            ));
        }
    }
    // A replica that is gone would keep its slot, and the primary its WAL, until the disk fills:
    // terrace's slots that no replica has any more are dropped (an active one is left for the
    // next run, once its replica has stopped).
    let keep: Vec<String> = replica_slots.iter().map(|slot| sql_literal(slot)).collect();
    text.push_str(&format!(
        "\n-- Slots of replicas that are no longer part of the service.\n\
         SELECT pg_drop_replication_slot(slot_name) FROM pg_replication_slots WHERE slot_name LIKE 'replica\\_%' AND NOT active{};\n",
        if keep.is_empty() { String::new() } else { format!(" AND slot_name NOT IN ({})", keep.join(", ")) }
    ));
    if !spec.extensions.is_empty() {
        text.push_str(&format!("\n\\connect {}\n", spec.database));
        for extension in &spec.extensions {
            text.push_str(&format!("CREATE EXTENSION IF NOT EXISTS {};\n", sql_ident(extension)));
        }
    }
    text
}

fn volume_conf(spec: &PostgresSpec) -> String {
    format!(
        "# terrace: the data volume, as the definitions size it. Hetzner grows a volume in place; terrace\n\
         # then grows its filesystem (online) to match.\n\
         size_gb = {}\n\
         mount_point = {}\n",
        spec.volume_gb, spec.mount_point
    )
}

fn volume_script(mount_point: &str) -> String {
    format!(
        r#"#!/bin/bash
# terrace: finds the one Hetzner volume attached to this server, gives it a filesystem only if it
# has none, and mounts it by UUID at {mount_point}. Safe to run again; it never formats a volume
# that holds anything.
set -euo pipefail
shopt -s nullglob

mount_point={mount}

# The API attaches the volume while the server boots, so its device may appear late.
devices=()
for _ in $(seq 300); do
  devices=(/dev/disk/by-id/scsi-0HC_Volume_*)
  (( ${{#devices[@]}} > 0 )) && break
  sleep 1
done
if (( ${{#devices[@]}} != 1 )); then
  echo "terrace-volume: expected one attached volume, found ${{#devices[@]}}: ${{devices[*]}}" >&2
  exit 1
fi
device=$(readlink -f "${{devices[0]}}")

# blkid exits 2 when it finds neither a filesystem nor a partition table. A volume is formatted only
# then, and only if its first MiB is all zeros as well, as a new volume's is.
status=0
blkid -p "$device" > /dev/null || status=$?
if (( status == 2 )) && cmp -s -n 1048576 "$device" /dev/zero; then
  echo "terrace-volume: $device is empty; creating an ext4 filesystem"
  mkfs.ext4 -q -L terrace-data "$device"
elif (( status != 0 )); then
  echo "terrace-volume: $device is not empty but blkid finds no filesystem (status $status); not touching it" >&2
  exit 1
fi

uuid=$(blkid -p -s UUID -o value "$device")
fstype=$(blkid -p -s TYPE -o value "$device")
if [[ -z $uuid || -z $fstype ]]; then
  echo "terrace-volume: $device holds no filesystem with a UUID (a partition table?); not touching it" >&2
  exit 1
fi
mkdir -p "$mount_point"
if ! grep -q "^UUID=$uuid " /etc/fstab; then
  echo "UUID=$uuid $mount_point $fstype defaults,nofail,discard 0 2" >> /etc/fstab
fi
if ! mountpoint -q "$mount_point"; then
  mount "$mount_point"
fi
"#,
        mount = sh(mount_point),
    )
}

fn cluster_script(spec: &PostgresSpec) -> String {
    let version = spec.version;
    let mut text = format!(
        r#"#!/bin/bash
# terrace: puts the PostgreSQL {version} cluster "{CLUSTER}" on the data volume and starts it: a new
# cluster, the one already on a reattached volume, or (on a replica) a clone of the primary.
# Run by cloud-init after {VOLUME_SCRIPT}; safe to run again, and it never
# overwrites a data directory.
set -euo pipefail

version={version}
mount_point={mount}
data_directory={data}

if ! mountpoint -q "$mount_point"; then
  echo "terrace-postgres: $mount_point is not mounted; refusing to put a cluster on the root disk" >&2
  exit 1
fi
install -d -o postgres -g postgres -m 0700 "$mount_point/$version"
"#,
        mount = sh(&spec.mount_point),
        data = sh(&data_directory(spec)),
    );
    if let PgRole::Replica { primary_host, slot, tls } = &spec.role {
        let conninfo = format!(
            "host={primary_host} port={PORT} user={REPLICATION_USER} passfile={CONF_DIR}/replication.pgpass sslmode={} application_name={slot}",
            if *tls { "require" } else { "prefer" }
        );
        text.push_str(&format!(
            r#"
# A replica starts as a copy of the primary, taken through its replication slot so that the primary
# keeps every WAL segment the replica has not received. The copy is made beside the data directory
# and moved into place only when complete, so a failed clone is never mistaken for a cluster. The
# primary may still be installing: it accepts the replication user once its setup has run.
if [[ ! -s $data_directory/PG_VERSION ]]; then
  partial="$data_directory.partial"
  for attempt in $(seq 120); do
    rm -rf "$partial"
    if runuser -u postgres -- pg_basebackup --pgdata="$partial" --write-recovery-conf --slot={slot} \
        --wal-method=stream --checkpoint=fast --dbname={conninfo}; then
      break
    fi
    if (( attempt == 120 )); then
      echo "terrace-postgres: could not clone the primary {primary_host}" >&2
      exit 1
    fi
    sleep 30
  done
  rmdir "$data_directory" 2> /dev/null || true
  mv "$partial" "$data_directory"
fi
# Debian's pg_createcluster adopts a data directory only with its configuration files in it, which a
# clone does not have (the primary's live in /etc/postgresql). Minimal ones: pg_createcluster sets
# the paths on their lines, and terrace's conf.d, included last, has the settings.
for file in pg_hba.conf pg_ident.conf; do
  [[ -e $data_directory/$file || -f /etc/postgresql/$version/{CLUSTER}/postgresql.conf ]] ||
    install -o postgres -g postgres -m 0600 /dev/null "$data_directory/$file"
done
if [[ ! -e $data_directory/postgresql.conf && ! -f /etc/postgresql/$version/{CLUSTER}/postgresql.conf ]]; then
  printf "data_directory = ''\nhba_file = ''\nident_file = ''\ninclude_dir = 'conf.d'\n" > "$data_directory/postgresql.conf"
  chown postgres:postgres "$data_directory/postgresql.conf"
  chmod 0600 "$data_directory/postgresql.conf"
fi
"#,
            slot = sh(slot),
            conninfo = sh(&conninfo),
        ));
    }
    text.push_str(&format!(
        r#"
# pg_createcluster adopts a data directory that already holds a cluster, and creates one otherwise.
if [[ ! -f /etc/postgresql/$version/{CLUSTER}/postgresql.conf ]]; then
  pg_createcluster "$version" {CLUSTER} --datadir="$data_directory" --start-conf=auto
fi
ln -sfn {conf} "/etc/postgresql/$version/{CLUSTER}/conf.d/terrace.conf"
# The unit's drop-in (RequiresMountsFor) was written by cloud-init after systemd started.
systemctl daemon-reload
systemctl enable postgresql.service
systemctl restart "postgresql@$version-{CLUSTER}.service"
for _ in $(seq 60); do
  runuser -u postgres -- pg_isready --quiet --host={SOCKET_DIR} --port={PORT} && break
  sleep 1
done
runuser -u postgres -- pg_isready --host={SOCKET_DIR} --port={PORT}
"#,
        conf = sh(&format!("{CONF_DIR}/postgresql.conf")),
    ));
    if let PgRole::Primary { .. } = spec.role {
        text.push_str(&format!(
            "runuser -u postgres -- psql --no-psqlrc --quiet --host={SOCKET_DIR} --port={PORT} --dbname=postgres --file={CONF_DIR}/setup.sql\n"
        ));
    }
    text
}

fn pgbouncer_ini(spec: &PostgresSpec, bouncer: &PgBouncerSpec) -> String {
    format!(
        "; terrace: PgBouncer in front of the local PostgreSQL, which it reaches over the Unix socket.\n\
         ; Clients connect to port {port} with the application user's password (SCRAM).\n\
         [databases]\n\
         {database} = host={SOCKET_DIR} port={PORT} dbname={database}\n\
         \n\
         [pgbouncer]\n\
         listen_addr = {listen}\n\
         listen_port = {port}\n\
         unix_socket_dir = {SOCKET_DIR}\n\
         ; Who may connect, and how: the same rules as pg_hba.conf for the application.\n\
         auth_type = hba\n\
         auth_hba_file = {PGBOUNCER_HBA}\n\
         auth_file = {PGBOUNCER_USERLIST}\n\
         ; TLS for every client that asks, and required of clients over the public internet (hostssl).\n\
         client_tls_sslmode = allow\n\
         client_tls_cert_file = {TLS_CERT}\n\
         client_tls_key_file = {TLS_KEY}\n\
         pool_mode = {mode}\n\
         default_pool_size = {pool}\n\
         max_client_conn = {max_client}\n\
         ; Drivers send these at connect; PgBouncer would otherwise refuse the connection.\n\
         ignore_startup_parameters = extra_float_digits,search_path\n\
         ; PostgreSQL allows {MAX_CONNECTIONS} connections; PgBouncer keeps well below, leaving room for the\n\
         ; replicas, backups and maintenance.\n\
         max_db_connections = {max_db}\n\
         ; A server login that fails (PostgreSQL still starting, after a boot or a restart) is tried again\n\
         ; after a second, not after PgBouncer's default of 15 s, during which clients wait.\n\
         server_login_retry = 1\n",
        database = spec.database,
        listen = spec.listen.join(","),
        port = bouncer.port,
        mode = bouncer.pool_mode.as_str(),
        pool = bouncer.default_pool_size,
        max_client = bouncer.max_client_conn,
        max_db = MAX_CONNECTIONS - 20,
    )
}

/// PgBouncer's own pg_hba.conf (`auth_type = hba`): the application over the Unix socket and from
/// its networks, and with TLS only from the public addresses of clients outside them.
fn pgbouncer_hba(spec: &PostgresSpec) -> String {
    let mut lines = vec![
        "# terrace: who may connect to PgBouncer, and how; the first matching line decides, and".to_owned(),
        "# whatever no line matches is refused.".to_owned(),
        hba_line("local", &spec.database, &spec.user, "", "scram-sha-256"),
    ];
    client_lines(spec, &mut lines);
    let mut text = lines.join("\n");
    text.push('\n');
    text
}

/// A unit that listens on the docker0 bridge starts after Docker, which makes it.
const AFTER_DOCKER: &str = "Wants=docker.service\nAfter=docker.service\n";
