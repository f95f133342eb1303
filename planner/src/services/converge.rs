//! Converging a running service server to a new rendering of its files: which files change, and
//! what each change takes for the service to use it: a reload where one is enough (pg_hba.conf,
//! reloadable settings, PgBouncer's `RELOAD`, Redis's `CONFIG SET`), a restart only where the
//! service demands one (`shared_buffers`, `archive_mode`, ...). The plan shows the steps and what
//! they cost the service; the executor runs the same steps over SSH. Pure functions of the old and
//! new files: no I/O.

use std::collections::{BTreeMap, BTreeSet};

use serde::{Deserialize, Serialize};

use super::backup::PGBACKREST_CONF;
use super::postgres::{
    CLUSTER, CONF_DIR, PGBOUNCER_HBA, PGBOUNCER_INI, PGBOUNCER_USERLIST, PORT, SOCKET_DIR, VOLUME_CONF,
};
use super::redis::REDIS_CONF;
use super::shell::sh;

/// The service a host runs, and what its unit names depend on.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum HostService {
    Postgres { version: u32, primary: bool },
    Redis,
}

/// One step of a convergence, in the order it runs.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "step", rename_all = "snake_case")]
pub enum Step {
    /// Packages the new configuration needs that the server lacks (e.g. pgBackRest when
    /// continuous archiving is turned on).
    InstallPackages {
        packages: Vec<String>,
    },
    /// Timers or services stopped and disabled before their unit files go.
    DisableUnits {
        units: Vec<String>,
    },
    /// systemd reads the changed unit files.
    DaemonReload,
    /// Kernel settings loaded from a changed file.
    Sysctl {
        path: String,
    },
    /// The data volume was grown: its filesystem grows to match, online.
    GrowFilesystem {
        mount_point: String,
    },
    /// PostgreSQL re-reads its configuration: pg_hba.conf and reloadable settings.
    PostgresReload,
    /// PostgreSQL restarts: these settings take effect only at server start.
    PostgresRestart {
        settings: Vec<String>,
    },
    /// The roles, passwords, database, replication slots and extensions, run again (idempotent).
    PostgresSetup,
    /// pgBackRest's stanza in the bucket, made once continuous archiving is configured, and the
    /// first full backup started.
    PgBackRestStanza,
    PgBouncerReload,
    PgBouncerRestart {
        settings: Vec<String>,
    },
    /// PgBouncer newly configured: enabled and started.
    PgBouncerStart,
    /// Redis settings changed at runtime, as in the file (`CONFIG SET`).
    RedisConfigSet {
        settings: Vec<String>,
    },
    /// Redis follows another primary, or none (`REPLICAOF`).
    RedisReplicaOf,
    RedisRestart {
        settings: Vec<String>,
    },
    /// Timers or services enabled and started for new unit files.
    EnableUnits {
        units: Vec<String>,
    },
}

/// What a convergence costs the service while it runs.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum Disruption {
    /// Nothing the service's clients notice.
    None,
    /// The service re-reads its configuration; connections stay.
    Reload,
    /// The service restarts: about `seconds` without it, and its connections are closed.
    Restart { service: String, seconds: u32 },
    /// The service stops on this server for good (it moved away or was removed).
    Stop { units: Vec<String> },
}

impl Disruption {
    /// How much the service feels it: nothing, a reload, a longer restart, stopping for good.
    fn rank(&self) -> u32 {
        match self {
            Disruption::None => 0,
            Disruption::Reload => 1,
            Disruption::Restart { seconds, .. } => 2 + *seconds,
            Disruption::Stop { .. } => u32::MAX,
        }
    }

    fn worse(self, other: Disruption) -> Disruption {
        if other.exceeds(&self) { other } else { self }
    }

    /// Whether this interrupts the service more than `promised` (what a plan showed).
    pub fn exceeds(&self, promised: &Disruption) -> bool {
        self.rank() > promised.rank()
    }

    /// "reload", "restart (~10 s without the database)".
    pub fn describe(&self) -> String {
        match self {
            Disruption::None => "no interruption".into(),
            Disruption::Reload => "reload".into(),
            Disruption::Restart { service, seconds } => format!("restart (~{seconds} s without the {service})"),
            Disruption::Stop { units } => format!("stops {}", units.join(", ")),
        }
    }
}

/// What a list of steps costs the service: the worst of them.
pub fn disruption(steps: &[Step]) -> Disruption {
    steps.iter().fold(Disruption::None, |worst, step| {
        worst.worse(match step {
            Step::PostgresRestart { .. } => Disruption::Restart { service: "database".into(), seconds: 10 },
            Step::PgBouncerRestart { .. } => Disruption::Restart { service: "connection pool".into(), seconds: 2 },
            Step::RedisRestart { .. } => Disruption::Restart { service: "cache".into(), seconds: 5 },
            Step::PostgresReload | Step::PgBouncerReload | Step::RedisConfigSet { .. } | Step::RedisReplicaOf => {
                Disruption::Reload
            }
            _ => Disruption::None,
        })
    })
}

/// The steps of an interrupted convergence (recorded as pending) followed by those a new look at
/// the files finds, each once: what finishes the interrupted one.
pub fn resume(pending: Vec<Step>, fresh: Vec<Step>) -> Vec<Step> {
    let mut steps = pending;
    for step in fresh {
        if !steps.contains(&step) {
            steps.push(step);
        }
    }
    steps
}

/// The steps that bring a host from `old` files to `new` ones (path -> content). `missing` are
/// packages of the new configuration the server does not have.
pub fn converge(
    service: &HostService,
    old: &BTreeMap<String, String>,
    new: &BTreeMap<String, String>,
    missing: &[String],
) -> Vec<Step> {
    let changed: BTreeSet<&str> =
        old.keys().chain(new.keys()).map(String::as_str).filter(|path| old.get(*path) != new.get(*path)).collect();
    let created = |path: &str| !old.contains_key(path) && new.contains_key(path);
    let mut steps = Vec::new();
    if !missing.is_empty() {
        steps.push(Step::InstallPackages { packages: missing.to_vec() });
    }
    let units = |set: &BTreeMap<String, String>| -> BTreeSet<String> {
        set.keys().filter_map(|path| enabled_unit(path)).collect()
    };
    let (old_units, new_units) = (units(old), units(new));
    let gone: Vec<String> = old_units.difference(&new_units).cloned().collect();
    if !gone.is_empty() {
        steps.push(Step::DisableUnits { units: gone });
    }
    if changed.iter().any(|path| path.starts_with("/etc/systemd/system/")) {
        steps.push(Step::DaemonReload);
    }
    for path in changed.iter().filter(|p| p.starts_with("/etc/sysctl.d/") && new.contains_key(**p)) {
        steps.push(Step::Sysctl { path: (*path).to_owned() });
    }
    match service {
        HostService::Postgres { primary, .. } => {
            let size = |files: &BTreeMap<String, String>| {
                files
                    .get(VOLUME_CONF)
                    .map(|text| settings(text, ConfSyntax::Postgres))
                    .and_then(|s| Some((s.get("size_gb")?.parse::<u64>().ok()?, s.get("mount_point")?.clone())))
            };
            if let (Some((before, _)), Some((after, mount_point))) = (size(old), size(new))
                && after > before
            {
                steps.push(Step::GrowFilesystem { mount_point });
            }
            let conf = format!("{CONF_DIR}/postgresql.conf");
            let hba = format!("{CONF_DIR}/pg_hba.conf");
            let settings = changed_settings(old.get(&conf), new.get(&conf), ConfSyntax::Postgres);
            let restart: Vec<String> =
                settings.iter().filter(|s| POSTMASTER_SETTINGS.contains(&s.as_str())).cloned().collect();
            if !restart.is_empty() {
                steps.push(Step::PostgresRestart { settings: restart });
            } else if !settings.is_empty() || changed.contains(hba.as_str()) {
                steps.push(Step::PostgresReload);
            }
            let setup = format!("{CONF_DIR}/setup.sql");
            if *primary && new.contains_key(&setup) && changed.contains(setup.as_str()) {
                steps.push(Step::PostgresSetup);
            }
            if *primary && created(PGBACKREST_CONF) {
                steps.push(Step::PgBackRestStanza);
            }
            let bouncer = [PGBOUNCER_INI, PGBOUNCER_HBA, PGBOUNCER_USERLIST];
            if created(PGBOUNCER_INI) {
                steps.push(Step::PgBouncerStart);
            } else if new.contains_key(PGBOUNCER_INI) {
                let settings = changed_settings(old.get(PGBOUNCER_INI), new.get(PGBOUNCER_INI), ConfSyntax::Ini);
                let restart: Vec<String> =
                    settings.iter().filter(|s| PGBOUNCER_RESTART.contains(&s.as_str())).cloned().collect();
                if !restart.is_empty() {
                    steps.push(Step::PgBouncerRestart { settings: restart });
                } else if bouncer.iter().any(|path| changed.contains(path)) {
                    steps.push(Step::PgBouncerReload);
                }
            }
        }
        HostService::Redis => {
            let settings = changed_settings(old.get(REDIS_CONF), new.get(REDIS_CONF), ConfSyntax::Redis);
            let restart: Vec<String> = settings
                .iter()
                .filter(|s| !REDIS_RUNTIME.contains(&s.as_str()) && *s != "replicaof")
                .cloned()
                .collect();
            if !restart.is_empty() {
                steps.push(Step::RedisRestart { settings: restart });
            } else {
                let runtime: Vec<String> =
                    settings.iter().filter(|s| REDIS_RUNTIME.contains(&s.as_str())).cloned().collect();
                if !runtime.is_empty() {
                    steps.push(Step::RedisConfigSet { settings: runtime });
                }
                if settings.iter().any(|s| s == "replicaof") {
                    steps.push(Step::RedisReplicaOf);
                }
            }
        }
    }
    let added: Vec<String> = new_units.difference(&old_units).cloned().collect();
    if !added.is_empty() {
        steps.push(Step::EnableUnits { units: added });
    }
    steps
}

/// The unit a file enables when it is the unit file of a timer terrace starts (its services are
/// started by their timers).
fn enabled_unit(path: &str) -> Option<String> {
    let name = path.strip_prefix("/etc/systemd/system/")?;
    (name.ends_with(".timer") && !name.contains('/')).then(|| name.to_owned())
}

/// The postgresql.conf settings PostgreSQL reads only at server start (`context = postmaster`
/// in pg_settings), among those terrace writes and the usual ones.
const POSTMASTER_SETTINGS: &[&str] = &[
    "archive_mode",
    "autovacuum_max_workers",
    "cluster_name",
    "data_directory",
    "hba_file",
    "hot_standby",
    "huge_pages",
    "ident_file",
    "listen_addresses",
    "max_connections",
    "max_files_per_process",
    "max_locks_per_transaction",
    "max_pred_locks_per_transaction",
    "max_prepared_transactions",
    "max_replication_slots",
    "max_wal_senders",
    "max_worker_processes",
    "port",
    "shared_buffers",
    "shared_preload_libraries",
    "superuser_reserved_connections",
    "track_commit_timestamp",
    "unix_socket_directories",
    "unix_socket_group",
    "unix_socket_permissions",
    "wal_buffers",
    "wal_level",
    "wal_log_hints",
];

/// PgBouncer settings a `RELOAD` does not apply: the sockets it listens on, and its TLS setup,
/// which terrace restarts for rather than rely on a reload.
const PGBOUNCER_RESTART: &[&str] = &[
    "listen_addr",
    "listen_port",
    "unix_socket_dir",
    "unix_socket_mode",
    "user",
    "pidfile",
    "so_reuseport",
    "client_tls_sslmode",
    "client_tls_cert_file",
    "client_tls_key_file",
    "client_tls_ca_file",
];

/// Redis settings `CONFIG SET` changes on a running server, as terrace writes them.
const REDIS_RUNTIME: &[&str] = &[
    "maxmemory",
    "maxmemory-policy",
    "requirepass",
    "masterauth",
    "appendonly",
    "appendfsync",
    "save",
    "replica-read-only",
    "protected-mode",
];

#[derive(Clone, Copy)]
enum ConfSyntax {
    /// `name = value`, `#` comments.
    Postgres,
    /// `name = value` under `[sections]`, `;` comments.
    Ini,
    /// `name value...`, `#` comments.
    Redis,
}

/// The settings of a configuration file, by name (sections prefix INI names, except the main
/// `[pgbouncer]` one); a later line wins, as in every one of these formats.
fn settings(text: &str, syntax: ConfSyntax) -> BTreeMap<String, String> {
    let mut out = BTreeMap::new();
    let mut section = String::new();
    for line in text.lines() {
        let line = line.trim();
        if line.is_empty() || line.starts_with('#') || line.starts_with(';') {
            continue;
        }
        if let ConfSyntax::Ini = syntax
            && line.starts_with('[')
        {
            section = line.trim_matches(|c| c == '[' || c == ']').to_owned();
            continue;
        }
        let (name, value) = match syntax {
            ConfSyntax::Postgres | ConfSyntax::Ini => match line.split_once('=') {
                Some((name, value)) => (name.trim(), value.trim()),
                None => continue,
            },
            ConfSyntax::Redis => match line.split_once(char::is_whitespace) {
                Some((name, value)) => (name, value.trim()),
                None => (line, ""),
            },
        };
        let name = match syntax {
            ConfSyntax::Ini if section != "pgbouncer" => format!("[{section}] {name}"),
            ConfSyntax::Redis => name.to_ascii_lowercase(),
            _ => name.to_owned(),
        };
        out.insert(name, value.to_owned());
    }
    out
}

/// The names of the settings that differ between two versions of a file.
fn changed_settings(old: Option<&String>, new: Option<&String>, syntax: ConfSyntax) -> Vec<String> {
    let (old, new) =
        (old.map(|t| settings(t, syntax)).unwrap_or_default(), new.map(|t| settings(t, syntax)).unwrap_or_default());
    let names: BTreeSet<&String> = old.keys().chain(new.keys()).collect();
    names.into_iter().filter(|name| old.get(*name) != new.get(*name)).cloned().collect()
}

/// The value of a Redis setting in the file, unquoted as Redis reads it (for `CONFIG SET` and the
/// password to authenticate with).
pub fn redis_setting(text: &str, name: &str) -> Option<String> {
    let value = settings(text, ConfSyntax::Redis).remove(name)?;
    Some(unquote_redis(&value))
}

fn unquote_redis(value: &str) -> String {
    let Some(inner) = value.strip_prefix('"').and_then(|v| v.strip_suffix('"')) else {
        return value.to_owned();
    };
    let mut out = String::new();
    let mut chars = inner.chars();
    while let Some(c) = chars.next() {
        if c != '\\' {
            out.push(c);
            continue;
        }
        match chars.next() {
            Some('n') => out.push('\n'),
            Some('r') => out.push('\r'),
            Some('t') => out.push('\t'),
            Some('x') => {
                let hex: String = chars.by_ref().take(2).collect();
                if let Ok(byte) = u8::from_str_radix(&hex, 16) {
                    out.push(char::from(byte));
                }
            }
            Some(other) => out.push(other),
            None => {}
        }
    }
    out
}

/// The units that serve a host's service: the cluster (and PgBouncer when it has its ini), or Redis.
pub fn units(service: &HostService, files: &BTreeMap<String, String>) -> Vec<String> {
    match service {
        HostService::Postgres { version, .. } => {
            let mut units = vec![postgres_unit(*version)];
            if files.contains_key(PGBOUNCER_INI) {
                units.push("pgbouncer.service".into());
            }
            units
        }
        HostService::Redis => vec!["redis-server.service".into()],
    }
}

/// The command that names which of `packages` the server lacks, one a line (dpkg's status).
pub fn missing_packages_command(packages: &[String]) -> String {
    let words: Vec<String> = packages.iter().map(|p| sh(p)).collect();
    format!(
        "for p in {}; do dpkg-query -W -f='${{db:Status-Status}}\\n' \"$p\" 2> /dev/null | grep -qx installed || echo \"$p\"; done",
        words.join(" ")
    )
}

/// The command that removes files terrace no longer keeps on the server.
pub fn remove_command(paths: &[String]) -> String {
    let words: Vec<String> = paths.iter().map(|p| sh(p)).collect();
    format!("rm -f -- {}", words.join(" "))
}

/// The unit of the PostgreSQL cluster of `version`.
pub fn postgres_unit(version: u32) -> String {
    format!("postgresql@{version}-{CLUSTER}.service")
}

/// psql as the `postgres` superuser over the local socket, stopping at the first error.
pub fn psql_command() -> String {
    format!(
        "runuser -u postgres -- psql --no-psqlrc --quiet --set=ON_ERROR_STOP=1 --host={SOCKET_DIR} --port={PORT} --dbname=postgres"
    )
}

/// Waits up to a minute for PostgreSQL to accept connections, and fails when it does not.
pub fn wait_ready_command() -> String {
    format!(
        "for _ in $(seq 60); do runuser -u postgres -- pg_isready --quiet --host={SOCKET_DIR} --port={PORT} && break; sleep 1; done; \
         runuser -u postgres -- pg_isready --host={SOCKET_DIR} --port={PORT}"
    )
}

/// A step as a shell command for the host (run as root), with what it reads on standard input.
/// Secrets go through standard input, never into the command line.
pub struct Command {
    pub shell: String,
    pub stdin: Option<String>,
}

impl Step {
    /// What the step does, for the plan and the progress lines.
    pub fn describe(&self, service: &HostService) -> String {
        let pg = match service {
            HostService::Postgres { version, .. } => postgres_unit(*version),
            HostService::Redis => String::new(),
        };
        match self {
            Step::InstallPackages { packages } => format!("install {}", packages.join(", ")),
            Step::DisableUnits { units } => format!("stop and disable {}", units.join(", ")),
            Step::DaemonReload => "systemctl daemon-reload".into(),
            Step::Sysctl { path } => format!("load {path}"),
            Step::GrowFilesystem { mount_point } => {
                format!("grow the filesystem at {mount_point} to the volume's size")
            }
            Step::PostgresReload => format!("reload {pg}"),
            Step::PostgresRestart { settings } => format!("restart {pg} ({} changed)", settings.join(", ")),
            Step::PostgresSetup => format!("run {CONF_DIR}/setup.sql (roles, database, slots, extensions)"),
            Step::PgBackRestStanza => format!("pgbackrest stanza-create --stanza={CLUSTER}, then a first full backup"),
            Step::PgBouncerReload => "reload pgbouncer.service".into(),
            Step::PgBouncerRestart { settings } => {
                format!("restart pgbouncer.service ({} changed)", settings.join(", "))
            }
            Step::PgBouncerStart => "enable and start pgbouncer.service".into(),
            Step::RedisConfigSet { settings } => format!("CONFIG SET {}", settings.join(", ")),
            Step::RedisReplicaOf => "REPLICAOF as configured".into(),
            Step::RedisRestart { settings } => {
                format!("restart redis-server.service ({} changed)", settings.join(", "))
            }
            Step::EnableUnits { units } => format!("enable and start {}", units.join(", ")),
        }
    }

    /// The command that carries the step out on the host, given the files before and after.
    pub fn command(
        &self,
        service: &HostService,
        old: &BTreeMap<String, String>,
        new: &BTreeMap<String, String>,
    ) -> Command {
        let plain = |shell: String| Command { shell, stdin: None };
        let pg_unit = match service {
            HostService::Postgres { version, .. } => postgres_unit(*version),
            HostService::Redis => String::new(),
        };
        let psql = psql_command();
        let wait_ready = wait_ready_command();
        let words = |items: &[String]| items.iter().map(|i| sh(i)).collect::<Vec<_>>().join(" ");
        match self {
            Step::InstallPackages { packages } => plain(format!(
                "DEBIAN_FRONTEND=noninteractive apt-get install -y -q --no-install-recommends {}",
                words(packages)
            )),
            Step::DisableUnits { units } => plain(format!("systemctl disable --now {}", words(units))),
            Step::DaemonReload => plain("systemctl daemon-reload".into()),
            Step::Sysctl { path } => plain(format!("sysctl --load={}", sh(path))),
            // The kernel is told to read the device's size again (Hetzner's volumes are SCSI
            // disks), then ext4 grows while mounted.
            Step::GrowFilesystem { mount_point } => plain(format!(
                "device=$(findmnt --noheadings --output SOURCE --target {mount}) && \
                 disk=$(basename \"$(readlink -f \"$device\")\") && \
                 {{ echo 1 > \"/sys/class/block/$disk/device/rescan\" 2> /dev/null || true; }} && \
                 resize2fs \"$device\"",
                mount = sh(mount_point)
            )),
            // A reload that leaves a setting waiting for a restart the plan did not promise is a
            // failure, not a silent half-change.
            Step::PostgresReload => plain(format!(
                "systemctl reload {pg_unit} && sleep 1 && pending=$({psql} --tuples-only --no-align \
                 --command='SELECT string_agg(name, $$, $$) FROM pg_settings WHERE pending_restart') && \
                 if [ -n \"$pending\" ]; then echo \"these settings need a restart: $pending\" >&2; exit 3; fi"
            )),
            Step::PostgresRestart { .. } => plain(format!("systemctl restart {pg_unit} && {wait_ready}")),
            Step::PostgresSetup => plain(format!("{psql} --file={CONF_DIR}/setup.sql")),
            Step::PgBackRestStanza => plain(format!(
                "{} && {}",
                super::backup::pgbackrest_command("stanza-create"),
                super::backup::START_FULL_BACKUP
            )),
            Step::PgBouncerReload => plain("systemctl reload pgbouncer.service".into()),
            Step::PgBouncerRestart { .. } => plain("systemctl restart pgbouncer.service".into()),
            Step::PgBouncerStart => {
                plain("systemctl enable pgbouncer.service && systemctl restart pgbouncer.service".into())
            }
            Step::RedisConfigSet { settings } => {
                let file = new.get(REDIS_CONF).map(String::as_str).unwrap_or_default();
                let mut commands = vec![redis_auth(old)];
                // The password last: the commands before it authenticated with the old one.
                let mut ordered: Vec<&String> = settings.iter().filter(|s| *s != "requirepass").collect();
                ordered.extend(settings.iter().filter(|s| *s == "requirepass"));
                for name in ordered {
                    let value = redis_setting(file, name).unwrap_or_default();
                    commands.push(format!("CONFIG SET {name} {}", redis_quote(&value)));
                }
                redis_cli(commands)
            }
            Step::RedisReplicaOf => {
                let file = new.get(REDIS_CONF).map(String::as_str).unwrap_or_default();
                let target = redis_setting(file, "replicaof").unwrap_or_else(|| "NO ONE".into());
                redis_cli(vec![redis_auth(old), format!("REPLICAOF {target}")])
            }
            Step::RedisRestart { .. } => plain("systemctl restart redis-server.service".into()),
            Step::EnableUnits { units } => plain(format!("systemctl enable --now {}", words(units))),
        }
    }
}

fn redis_auth(old: &BTreeMap<String, String>) -> String {
    let password = old.get(REDIS_CONF).and_then(|file| redis_setting(file, "requirepass")).unwrap_or_default();
    format!("AUTH {}", redis_quote(&password))
}

/// A string argument for redis-cli's input: double-quoted with Redis's escapes.
fn redis_quote(value: &str) -> String {
    format!("\"{}\"", value.replace('\\', "\\\\").replace('"', "\\\"").replace('\n', "\\n"))
}

/// Commands fed to redis-cli on standard input (the password never on a command line); every
/// reply must be `OK`, since redis-cli exits 0 whatever Redis answered.
fn redis_cli(commands: Vec<String>) -> Command {
    Command {
        shell: "out=$(redis-cli -h 127.0.0.1) && printf '%s\\n' \"$out\" && \
                ! printf '%s\\n' \"$out\" | grep -v -e '^OK$' -e '^$' > /dev/null"
            .into(),
        stdin: Some(commands.join("\n") + "\n"),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn files(pairs: &[(&str, &str)]) -> BTreeMap<String, String> {
        pairs.iter().map(|(p, c)| ((*p).to_owned(), (*c).to_owned())).collect()
    }

    const PG: HostService = HostService::Postgres { version: 16, primary: true };

    #[test]
    fn pg_hba_and_reloadable_settings_reload_postmaster_settings_restart() {
        let conf = "/etc/terrace/postgres/postgresql.conf";
        let hba = "/etc/terrace/postgres/pg_hba.conf";
        let old = files(&[(conf, "work_mem = 4MB\nshared_buffers = 1024MB\n"), (hba, "local all postgres peer\n")]);
        let only_hba = files(&[
            (conf, "work_mem = 4MB\nshared_buffers = 1024MB\n"),
            (hba, "host all all 10.0.0.0/16 scram-sha-256\n"),
        ]);
        assert_eq!(converge(&PG, &old, &only_hba, &[]), vec![Step::PostgresReload]);
        assert_eq!(disruption(&[Step::PostgresReload]), Disruption::Reload);
        let work_mem =
            files(&[(conf, "work_mem = 8MB\nshared_buffers = 1024MB\n"), (hba, "local all postgres peer\n")]);
        assert_eq!(converge(&PG, &old, &work_mem, &[]), vec![Step::PostgresReload]);
        let archive = files(&[
            (conf, "work_mem = 4MB\nshared_buffers = 1024MB\n# archiving\narchive_mode = on\narchive_command = 'x'\n"),
            (hba, "local all postgres peer\n"),
        ]);
        let steps = converge(&PG, &old, &archive, &[]);
        assert_eq!(steps, vec![Step::PostgresRestart { settings: vec!["archive_mode".into()] }]);
        assert_eq!(disruption(&steps).describe(), "restart (~10 s without the database)");
        // A comment alone changes nothing the server reads.
        let comment = files(&[
            (conf, "# sized anew\nwork_mem = 4MB\nshared_buffers = 1024MB\n"),
            (hba, "local all postgres peer\n"),
        ]);
        assert_eq!(converge(&PG, &old, &comment, &[]), vec![]);
    }

    #[test]
    fn continuous_archiving_turned_on_installs_restarts_and_creates_the_stanza() {
        let conf = "/etc/terrace/postgres/postgresql.conf";
        let old = files(&[(conf, "wal_level = replica\n"), ("/etc/terrace/postgres/setup.sql", "SELECT 1;\n")]);
        let new = files(&[
            (conf, "wal_level = replica\narchive_mode = on\n"),
            ("/etc/terrace/postgres/setup.sql", "SELECT 1;\nSELECT 2;\n"),
            (PGBACKREST_CONF, "[global]\n"),
            ("/etc/systemd/system/terrace-pgbackrest-full.timer", "[Timer]\n"),
        ]);
        let steps = converge(&PG, &old, &new, &["pgbackrest".to_owned()]);
        assert_eq!(
            steps,
            vec![
                Step::InstallPackages { packages: vec!["pgbackrest".into()] },
                Step::DaemonReload,
                Step::PostgresRestart { settings: vec!["archive_mode".into()] },
                Step::PostgresSetup,
                Step::PgBackRestStanza,
                Step::EnableUnits { units: vec!["terrace-pgbackrest-full.timer".into()] },
            ]
        );
        // A primary rendered by terrace archives from the start with a command that keeps nothing:
        // turning continuous archiving on then changes archive_command, which takes a reload.
        let ready = files(&[
            (conf, "wal_level = replica\narchive_mode = on\narchive_command = '/bin/true'\n"),
            ("/etc/terrace/postgres/setup.sql", "SELECT 1;\n"),
        ]);
        let archiving = files(&[
            (conf, "wal_level = replica\narchive_mode = on\narchive_command = 'pgbackrest archive-push'\n"),
            ("/etc/terrace/postgres/setup.sql", "SELECT 1;\n"),
            (PGBACKREST_CONF, "[global]\n"),
        ]);
        let steps = converge(&PG, &ready, &archiving, &["pgbackrest".to_owned()]);
        assert!(steps.contains(&Step::PostgresReload), "{steps:?}");
        assert!(steps.contains(&Step::PgBackRestStanza), "{steps:?}");
        assert_eq!(disruption(&steps), Disruption::Reload, "{steps:?}");
    }

    #[test]
    fn redis_memory_is_set_at_runtime_and_bind_restarts() {
        let old = files(&[(REDIS_CONF, "bind 0.0.0.0\nrequirepass \"old-secret\"\nmaxmemory 256mb\n")]);
        let new = files(&[(REDIS_CONF, "bind 0.0.0.0\nrequirepass \"old-secret\"\nmaxmemory 1024mb\n")]);
        let steps = converge(&HostService::Redis, &old, &new, &[]);
        assert_eq!(steps, vec![Step::RedisConfigSet { settings: vec!["maxmemory".into()] }]);
        assert_eq!(disruption(&steps), Disruption::Reload);
        let command = steps[0].command(&HostService::Redis, &old, &new);
        assert_eq!(command.stdin.as_deref(), Some("AUTH \"old-secret\"\nCONFIG SET maxmemory \"1024mb\"\n"));
        assert!(!command.shell.contains("old-secret"), "the password goes through stdin only");
        let moved = files(&[(REDIS_CONF, "bind 10.0.1.3\nrequirepass \"old-secret\"\nmaxmemory 256mb\n")]);
        assert_eq!(
            converge(&HostService::Redis, &old, &moved, &[]),
            vec![Step::RedisRestart { settings: vec!["bind".into()] }]
        );
    }

    #[test]
    fn pgbouncer_hba_reloads_and_listen_port_restarts() {
        let old = files(&[(PGBOUNCER_INI, "[databases]\napp = host=/x\n[pgbouncer]\nlisten_port = 6432\n")]);
        let hba = files(&[
            (PGBOUNCER_INI, "[databases]\napp = host=/x\n[pgbouncer]\nlisten_port = 6432\n"),
            (PGBOUNCER_HBA, "hostssl app app 203.0.113.9/32 scram-sha-256\n"),
        ]);
        assert_eq!(converge(&PG, &old, &hba, &[]), vec![Step::PgBouncerReload]);
        let port = files(&[(PGBOUNCER_INI, "[databases]\napp = host=/x\n[pgbouncer]\nlisten_port = 6433\n")]);
        assert_eq!(
            converge(&PG, &old, &port, &[]),
            vec![Step::PgBouncerRestart { settings: vec!["listen_port".into()] }]
        );
    }

    #[test]
    fn an_interrupted_convergence_runs_its_steps_again_before_new_ones() {
        let pending = vec![Step::PostgresRestart { settings: vec!["archive_mode".into()] }, Step::PostgresSetup];
        let fresh = vec![Step::PostgresSetup, Step::PgBouncerReload];
        let steps = resume(pending, fresh);
        assert_eq!(
            steps,
            vec![
                Step::PostgresRestart { settings: vec!["archive_mode".into()] },
                Step::PostgresSetup,
                Step::PgBouncerReload
            ]
        );
        assert_eq!(disruption(&steps), Disruption::Restart { service: "database".into(), seconds: 10 });
        let json = serde_json::to_value(&steps).expect("steps serialize");
        assert_eq!(serde_json::from_value::<Vec<Step>>(json).expect("and read back"), steps);
    }

    #[test]
    fn a_grown_volume_grows_its_filesystem_and_a_shrunk_one_is_left_alone() {
        let conf =
            |gb: u32| files(&[(VOLUME_CONF, &format!("size_gb = {gb}\nmount_point = /var/lib/terrace/pgdata\n"))]);
        let steps = converge(&PG, &conf(40), &conf(60), &[]);
        assert_eq!(steps, vec![Step::GrowFilesystem { mount_point: "/var/lib/terrace/pgdata".into() }]);
        assert_eq!(disruption(&steps), Disruption::None, "ext4 grows online");
        let command = steps[0].command(&PG, &conf(40), &conf(60));
        assert!(
            command.shell.contains("resize2fs") && command.shell.contains("/var/lib/terrace/pgdata"),
            "{}",
            command.shell
        );
        assert_eq!(converge(&PG, &conf(60), &conf(40), &[]), vec![]);
    }

    #[test]
    fn redis_values_unquote_as_redis_reads_them() {
        assert_eq!(redis_setting("requirepass \"a\\\"b\\\\c\"\n", "requirepass").as_deref(), Some("a\"b\\c"));
        assert_eq!(redis_setting("maxmemory 1024mb\n", "maxmemory").as_deref(), Some("1024mb"));
        assert_eq!(redis_setting("save 3600 1 300 100\n", "save").as_deref(), Some("3600 1 300 100"));
    }
}
