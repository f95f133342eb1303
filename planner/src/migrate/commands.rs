//! The shell scripts of a move, run as root over SSH on the old server (the source) and the new
//! one (the target). Pure builders: every value is quoted by `services::shell::sh`, and secrets go
//! through standard input, never into a command line. Each script is safe to run again after an
//! interruption at any point, which is what lets a killed apply continue.

use crate::services::REPLICATION_USER;
use crate::services::backup::{PGBACKREST_BACKUP_UNITS, START_FULL_BACKUP, pgbackrest_command};
use crate::services::converge::{Command, psql_command, wait_ready_command};
use crate::services::postgres::CONF_DIR;
use crate::services::shell::sh;

/// The physical replication slot a copy streams through: the old database keeps every WAL
/// segment the copy has not received. One per copy: `terrace_migration` for a move, and
/// `terrace_migration_<i>` for the shards of a reshard.
pub const SLOT: &str = "terrace_migration";

/// The slot of copy `index` of `count`.
pub fn slot(index: usize, count: usize) -> String {
    if count == 1 { SLOT.to_owned() } else { format!("{SLOT}_{index}") }
}

/// Where the target keeps the replication password while it copies.
const PASSFILE: &str = "/etc/terrace/postgres/migration.pgpass";

/// What a script needs to know of the two databases.
#[derive(Debug, Clone)]
pub struct Ends {
    pub version: u32,
    /// The old server's private address, where the target reaches it.
    pub source_ip: String,
    /// The new server's private address, which the source lets in.
    pub target_ip: String,
    /// The application's database.
    pub database: String,
    /// The slot this copy streams through (`slot`).
    pub slot: String,
}

/// The cluster's data directory, running or not (Debian's postgresql-common knows it).
fn data_directory(version: u32) -> String {
    format!("data=$(pg_lsclusters --no-header {version} main | awk '{{print $6}}'); [ -n \"$data\" ]")
}

fn unit(version: u32) -> String {
    crate::services::converge::postgres_unit(version)
}

pub(super) fn psql() -> String {
    format!("{} --tuples-only --no-align", psql_command())
}

/// Facts of a running database, one line: `version_num|data_directory|in_recovery|bytes|avail`:
/// its version, where its data is, whether it is a replica, the size of its databases, and the
/// space left on the volume that holds it.
pub fn facts() -> Command {
    let psql = psql();
    Command {
        shell: format!(
            "set -euo pipefail; line=$({psql} --command=\"SELECT current_setting('server_version_num') || '|' || \
             current_setting('data_directory') || '|' || pg_is_in_recovery()::text || '|' || \
             (SELECT coalesce(sum(pg_database_size(oid)), 0) FROM pg_database)::text\"); \
             data=$(printf '%s' \"$line\" | cut -d'|' -f2); \
             avail=$(df --output=avail -B1 \"$(dirname \"$data\")\" | tail -n 1 | tr -d ' '); \
             printf '%s|%s\\n' \"$line\" \"$avail\""
        ),
        stdin: None,
    }
}

/// A database's facts, parsed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Facts {
    pub version_num: u32,
    pub data_directory: String,
    pub in_recovery: bool,
    pub bytes: u64,
    pub available: u64,
}

impl Facts {
    pub fn parse(text: &str) -> Result<Facts, String> {
        let fields: Vec<&str> = text.trim().split('|').collect();
        let [version, data, recovery, bytes, available] = fields[..] else {
            return Err(format!("unexpected answer {:?}", text.trim()));
        };
        let number = |field: &str| field.parse::<u64>().map_err(|_| format!("unexpected number {field:?}"));
        Ok(Facts {
            version_num: u32::try_from(number(version)?).map_err(|_| format!("unexpected version {version:?}"))?,
            data_directory: data.to_owned(),
            in_recovery: recovery == "true",
            bytes: number(bytes)?,
            available: number(available)?,
        })
    }

    pub fn major(&self) -> u32 {
        self.version_num / 10_000
    }
}

/// On the source: the replication role with the recorded password (standard input), a pg_hba.conf
/// line for the target's address (first, so no earlier line refuses it), the slot, and the private
/// address among those it listens on, which takes a restart when it is new.
pub fn prepare(ends: &Ends, replication_password: &str) -> Command {
    let psql = psql();
    let line = format!("host replication {REPLICATION_USER} {}/32 scram-sha-256 # terrace migration", ends.target_ip);
    Command {
        shell: format!(
            "set -euo pipefail\n\
             {psql} --file=-\n\
             {hba}\
             {psql} --command=\"SELECT pg_create_physical_replication_slot('{slot}') WHERE NOT EXISTS \
             (SELECT FROM pg_replication_slots WHERE slot_name = '{slot}')\" > /dev/null\n\
             listen=$({psql} --command='SHOW listen_addresses' | tr -d ' ')\n\
             case \",$listen,\" in\n\
             \x20 *,{ip},*|*,\\*,*) {psql} --command='SELECT pg_reload_conf()' > /dev/null ;;\n\
             \x20 *) {psql} --command=\"ALTER SYSTEM SET listen_addresses = '$listen,{ip}'\"\n\
             \x20    systemctl restart {unit} && {wait} ;;\n\
             esac\n",
            hba = hba_lines(&[line]),
            slot = ends.slot,
            ip = ends.source_ip,
            unit = unit(ends.version),
            wait = wait_ready_command(),
        ),
        stdin: Some(format!(
            "ALTER ROLE {REPLICATION_USER} WITH LOGIN REPLICATION PASSWORD '{}';\n",
            replication_password.replace('\'', "''")
        )),
    }
}

/// A shell fragment: puts each of `lines` at the top of pg_hba.conf unless it is there already
/// (the file keeps its owner and mode). PostgreSQL reads it at the next reload.
pub(super) fn hba_lines(lines: &[String]) -> String {
    let psql = psql();
    let mut script = format!("hba=$({psql} --command='SHOW hba_file')\n");
    for line in lines {
        script.push_str(&format!(
            "if ! grep -qxF {line} \"$hba\"; then\n\
             \x20 {{ printf '%s\\n' {line}; cat \"$hba\"; }} > \"$hba.terrace-new\"\n\
             \x20 chown --reference=\"$hba\" \"$hba.terrace-new\" && chmod --reference=\"$hba\" \"$hba.terrace-new\"\n\
             \x20 mv \"$hba.terrace-new\" \"$hba\"\n\
             fi\n",
            line = sh(line)
        ));
    }
    script
}

/// On the target: refuses to overwrite a database that holds tables of its own; stops it (and a
/// pgBackRest backup of the empty cluster it was born with, which would hold pgBackRest's lock
/// when the stanza learns the copy at the promotion), copies
/// the source beside the data directory (moved into place only when complete), and starts it as a
/// replica streaming through the slot. The replication password comes on standard input.
pub fn clone(ends: &Ends, replication_password: &str) -> Command {
    let psql = psql();
    let conninfo = format!(
        "host={} port=5432 user={REPLICATION_USER} passfile={PASSFILE} application_name={} sslmode=prefer",
        ends.source_ip, ends.slot
    );
    Command {
        shell: format!(
            "set -euo pipefail\n\
             {data}\n\
             if {psql} --command='SELECT 1' > /dev/null 2>&1; then\n\
             \x20 recovery=$({psql} --command='SELECT pg_is_in_recovery()')\n\
             \x20 tables=$({psql} --dbname={database} --command='SELECT count(*) FROM pg_stat_user_tables' 2> /dev/null || echo 0)\n\
             \x20 if [ \"$recovery\" = f ] && [ \"$tables\" != 0 ]; then\n\
             \x20   echo \"the new server's database already holds $tables tables of its own; terrace does not overwrite it\" >&2\n\
             \x20   exit 3\n\
             \x20 fi\n\
             fi\n\
             systemctl stop pgbouncer.service {backups} 2> /dev/null || true\n\
             systemctl stop {unit}\n\
             (umask 077 && cat > {passfile})\n\
             chown postgres:postgres {passfile}\n\
             rm -rf \"$data.partial\"\n\
             runuser -u postgres -- pg_basebackup --pgdata=\"$data.partial\" --wal-method=stream --checkpoint=fast \
             --slot={slot} --dbname={conninfo}\n\
             rm -rf \"$data\"\n\
             mv \"$data.partial\" \"$data\"\n\
             printf \"%s\\n\" {primary_conninfo} \"primary_slot_name = '{slot}'\" > \"$data/postgresql.auto.conf\"\n\
             touch \"$data/standby.signal\"\n\
             chown postgres:postgres \"$data/postgresql.auto.conf\" \"$data/standby.signal\"\n\
             chmod 0600 \"$data/postgresql.auto.conf\" \"$data/standby.signal\"\n\
             systemctl start {unit} && {wait}\n",
            data = data_directory(ends.version),
            database = sh(&ends.database),
            backups = PGBACKREST_BACKUP_UNITS,
            unit = unit(ends.version),
            passfile = sh(PASSFILE),
            conninfo = sh(&conninfo),
            slot = ends.slot,
            primary_conninfo = sh(&format!("primary_conninfo = '{conninfo}'")),
            wait = wait_ready_command(),
        ),
        stdin: Some(format!("{}:5432:*:{REPLICATION_USER}:{}\n", ends.source_ip, pgpass_escape(replication_password))),
    }
}

/// On the source: how far the copy streaming through `slot` is behind, in bytes of WAL (`-1`
/// while it is not connected).
pub fn lag(slot: &str) -> Command {
    Command {
        shell: format!(
            "{} --command=\"SELECT coalesce((SELECT pg_wal_lsn_diff(pg_current_wal_lsn(), replay_lsn)::bigint \
             FROM pg_stat_replication WHERE application_name = '{}' AND replay_lsn IS NOT NULL LIMIT 1), -1)\"",
            psql(),
            identifier(slot)
        ),
        stdin: None,
    }
}

/// On the source: writes pause (new transactions are read-only, sessions are ended), the database
/// stops (a clean shutdown sends every WAL record to the streaming copy first) and is kept from
/// starting again at boot, and its backup timers stop. Prints the state of the stopped cluster and
/// the location of its last (shutdown) checkpoint: `shut down|0/3000028`. Safe to run again on a
/// stopped source.
pub fn stop_source(version: u32, timers: &[String]) -> Command {
    let psql = psql();
    let timers: Vec<String> = timers.iter().map(|t| sh(t)).collect();
    let disable = if timers.is_empty() {
        String::new()
    } else {
        format!("systemctl disable --now {} > /dev/null 2>&1 || true\n", timers.join(" "))
    };
    Command {
        shell: format!(
            "set -euo pipefail\n\
             {data}\n\
             {disable}\
             if {psql} --command='SELECT 1' > /dev/null 2>&1; then\n\
             {read_only}\
             \x20 systemctl stop {unit}\n\
             fi\n\
             echo manual > /etc/postgresql/{version}/main/start.conf\n\
             control=$(LC_ALL=C /usr/lib/postgresql/{version}/bin/pg_controldata \"$data\")\n\
             state=$(printf '%s\\n' \"$control\" | sed -n 's/^Database cluster state: *//p')\n\
             lsn=$(printf '%s\\n' \"$control\" | sed -n 's/^Latest checkpoint location: *//p')\n\
             printf '%s|%s\\n' \"$state\" \"$lsn\"\n",
            data = data_directory(version),
            unit = unit(version),
            read_only = read_only(),
        ),
        stdin: None,
    }
}

/// Shell lines: writes pause. New transactions are read-only, and the sessions of the application
/// (every client but the superuser's) are ended, so none finishes a write later.
pub(super) fn read_only() -> String {
    let psql = psql();
    format!(
        "{psql} --command='ALTER SYSTEM SET default_transaction_read_only = on' > /dev/null\n\
         {psql} --command='SELECT pg_reload_conf()' > /dev/null\n\
         {psql} --command=\"SELECT count(pg_terminate_backend(a.pid)) FROM pg_stat_activity a \
         JOIN pg_roles r ON r.oid = a.usesysid WHERE a.backend_type = 'client backend' \
         AND a.pid <> pg_backend_pid() AND NOT r.rolsuper\" > /dev/null\n"
    )
}

/// Shell lines: writable again, as `read_only` found it.
pub(super) fn writable() -> String {
    let psql = psql();
    format!(
        "{psql} --command='ALTER SYSTEM RESET default_transaction_read_only' > /dev/null\n\
         {psql} --command='SELECT pg_reload_conf()' > /dev/null\n"
    )
}

/// On the source, when the switchover cannot finish: writable and running again, as before it.
pub fn restart_source(version: u32) -> Command {
    Command {
        shell: format!(
            "set -euo pipefail\n\
             echo auto > /etc/postgresql/{version}/main/start.conf\n\
             systemctl start {unit} && {wait}\n\
             {writable}",
            unit = unit(version),
            wait = wait_ready_command(),
            writable = writable(),
        ),
        stdin: None,
    }
}

/// On the target: whether it has replayed the WAL up to `lsn` (the source's shutdown checkpoint),
/// or is no longer a replica (promoted by an earlier run): prints `t` or `f`.
pub fn replayed(lsn: &str) -> Command {
    Command {
        shell: format!(
            "{} --command=\"SELECT NOT pg_is_in_recovery() OR pg_wal_lsn_diff(pg_last_wal_replay_lsn(), '{}') >= 0\"",
            psql(),
            lsn.replace(['\'', '"', '\\', '$', '`'], "")
        ),
        stdin: None,
    }
}

/// On the target: promoted (unless it is already), no longer configured to follow the source, its
/// own setup run (roles, slots of its replicas), PgBouncer started, the password file gone. Where
/// WAL is archived, the pgBackRest stanza, made for the empty cluster the server was born with,
/// learns the copy's system id (`stanza-upgrade` adds it to the stanza's history, deleting
/// nothing; a missing stanza is created) and a first full backup of the copy starts.
pub fn promote() -> Command {
    let psql = psql();
    Command {
        shell: format!(
            "set -euo pipefail\n\
             if [ \"$({psql} --command='SELECT pg_is_in_recovery()')\" = t ]; then\n\
             \x20 {psql} --command='SELECT pg_promote(true, 60)' > /dev/null\n\
             fi\n\
             {psql} --command='ALTER SYSTEM RESET primary_conninfo' > /dev/null\n\
             {psql} --command='ALTER SYSTEM RESET primary_slot_name' > /dev/null\n\
             {psql} --command='SELECT pg_reload_conf()' > /dev/null\n\
             {psql} --file={setup} > /dev/null\n\
             if systemctl is-enabled pgbouncer.service > /dev/null 2>&1; then systemctl restart pgbouncer.service; fi\n\
             rm -f {passfile}\n\
             case \"$({psql} --command='SHOW archive_command')\" in *pgbackrest*)\n\
             \x20 systemctl stop {backups} 2> /dev/null || true\n\
             \x20 stanza() {{ {pgbackrest} \"$1\" > /dev/null 2>&1; }}\n\
             \x20 for _ in $(seq 30); do stanza stanza-upgrade && break; stanza stanza-create && break; sleep 2; done\n\
             \x20 {upgrade} > /dev/null\n\
             \x20 {START_FULL_BACKUP}\n\
             esac\n",
            setup = sh(&format!("{CONF_DIR}/setup.sql")),
            passfile = sh(PASSFILE),
            backups = PGBACKREST_BACKUP_UNITS,
            pgbackrest = pgbackrest_command(""),
            upgrade = pgbackrest_command("stanza-upgrade"),
        ),
        stdin: None,
    }
}

/// The seed's rule in SQL, for the column `column` (an identifier, quoted by the caller) among
/// `count` shards: the first 8 hex digits of the MD5 of the key's text as an unsigned 32-bit
/// number (`bit(32)::bigint` does not sign-extend), modulo the count.
pub fn route_sql(column: &str, count: usize) -> String {
    format!("('x' || substr(md5({column}::text), 1, 8))::bit(32)::bigint % {count}")
}

/// The tables of `database` that carry the shard key: base and partitioned tables outside the
/// system schemas (not partitions, whose parent answers for them), as psql `format()` arguments.
pub(super) fn keyed_tables(key: &str) -> String {
    keyed_relations(key, false)
}

/// `keyed_tables`, with the partitions too when `partitions` (each holds rows of its own).
pub(super) fn keyed_relations(key: &str, partitions: bool) -> String {
    let kinds = if partitions {
        "c.relkind IN ('p', 'r')"
    } else {
        "(c.relkind = 'p' OR (c.relkind = 'r' AND NOT c.relispartition))"
    };
    format!(
        "FROM pg_attribute a JOIN pg_class c ON c.oid = a.attrelid JOIN pg_namespace n ON n.oid = c.relnamespace \
         WHERE a.attname = {key} AND a.attnum > 0 AND NOT a.attisdropped AND {kinds} \
         AND n.nspname NOT IN ('pg_catalog', 'information_schema') AND n.nspname NOT LIKE 'pg\\_toast%'",
        key = literal(key)
    )
}

/// On a source, before a reshard or a rebalance, in one scan: the tables of `database`, those with
/// the column `key`, and for each pair of shards (the one the rule of `before` shards routes a row
/// to, the one the rule of `after` routes it to) the rows and the distinct keys (organizations).
/// Prints `user_tables=N`, `tables=N`, then `old|new|rows|keys` per pair that has rows
/// (`Routed::parse`). Fails when the database does not exist.
pub fn routed_rows(database: &str, key: &str, before: usize, after: usize) -> Command {
    let rule = |count| route_sql("%I", count).replace('%', "%%").replace("%%I", "%I").replace('\'', "''");
    Command {
        shell: format!("set -euo pipefail; {} --dbname={} --file=-", psql(), sh(database)),
        stdin: Some(format!(
            "SELECT count(*) AS tables, coalesce('SELECT old, new, count(*), count(DISTINCT k) FROM (' || \
             string_agg(format('SELECT %I::text AS k, {old} AS old, {new} AS new FROM %s', a.attname, a.attname, \
             a.attname, c.oid::regclass), ' UNION ALL ') || ') AS routed WHERE new IS NOT NULL GROUP BY old, new \
             ORDER BY old, new', 'SELECT NULL LIMIT 0') AS query {tables} \\gset\n\
             \\echo tables=:tables\n\
             SELECT count(*) AS user_tables FROM pg_stat_user_tables \\gset\n\
             \\echo user_tables=:user_tables\n\
             SELECT :'query' \\gexec\n",
            old = rule(before),
            new = rule(after),
            tables = keyed_tables(key),
        )),
    }
}

/// What `routed_rows` found.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Routed {
    /// Tables of the database, and those with the shard key.
    pub tables: u64,
    pub keyed: u64,
    /// Rows of the keyed tables the new rule routes to each shard, and their distinct keys.
    pub rows: Vec<u64>,
    pub keys: Vec<u64>,
    /// Rows the old rule routes to each shard.
    pub rows_before: Vec<u64>,
}

impl Routed {
    /// `user_tables=N`, `tables=N` and `old|new|rows|keys` lines, for `before` and `after` shards;
    /// read strictly.
    pub fn parse(out: &str, before: usize, after: usize) -> Result<Routed, String> {
        let unexpected = || format!("unexpected answer {out:?} counting rows per shard");
        let (mut tables, mut keyed) = (None, None);
        let (mut rows, mut keys, mut rows_before) = (vec![0; after], vec![0; after], vec![0; before]);
        for line in out.lines().map(str::trim).filter(|l| !l.is_empty()) {
            if let Some(n) = line.strip_prefix("tables=") {
                keyed = n.parse().ok();
            } else if let Some(n) = line.strip_prefix("user_tables=") {
                tables = n.parse().ok();
            } else {
                let fields: Vec<u64> =
                    line.split('|').map(str::parse).collect::<Result<_, _>>().map_err(|_| unexpected())?;
                let [old, new, n, k] = fields[..] else { return Err(unexpected()) };
                *rows.get_mut(new as usize).ok_or_else(unexpected)? += n;
                *keys.get_mut(new as usize).ok_or_else(unexpected)? += k;
                *rows_before.get_mut(old as usize).ok_or_else(unexpected)? += n;
            }
        }
        Ok(Routed {
            tables: tables.ok_or_else(unexpected)?,
            keyed: keyed.ok_or_else(unexpected)?,
            rows,
            keys,
            rows_before,
        })
    }

    /// Rows on old shard `index` that the old rule routes to another shard.
    pub fn strays(&self, index: usize) -> u64 {
        self.rows_before.iter().enumerate().filter(|(i, _)| *i != index).map(|(_, n)| n).sum()
    }
}

/// On shard `index` of `count`, after the switchover: in one transaction, deletes from every table
/// of `database` with the column `key` the rows whose organization the rule routes to another
/// shard. Foreign keys are not checked while it deletes (`session_replication_role`): every row
/// of an organization goes, or none. Rows whose key is NULL stay. Safe to run again.
pub fn split(database: &str, key: &str, index: usize, count: usize) -> Command {
    let route = route_sql("%I", count).replace('%', "%%").replace("%%I", "%I");
    Command {
        shell: format!("set -euo pipefail; {} --dbname={} --file=-", psql(), sh(database)),
        stdin: Some(format!(
            "BEGIN;\n\
             SET LOCAL session_replication_role = replica;\n\
             SELECT format('DELETE FROM %s WHERE {route} <> {index}', c.oid::regclass, a.attname) {tables} \\gexec\n\
             COMMIT;\n\
             VACUUM ANALYZE;\n",
            route = route.replace('\'', "''"),
            tables = keyed_tables(key),
        )),
    }
}

/// A SQL string literal.
pub(super) fn literal(text: &str) -> String {
    format!("'{}'", text.replace('\'', "''"))
}

/// Keeps only what a slot name may hold.
fn identifier(text: &str) -> String {
    text.chars().filter(|c| c.is_ascii_alphanumeric() || *c == '_').collect()
}

/// A field of a .pgpass line, where `:` and `\` are escaped with `\`.
pub(super) fn pgpass_escape(value: &str) -> String {
    value.replace('\\', "\\\\").replace(':', "\\:")
}

pub fn bytes(n: u64) -> String {
    match n {
        n if n >= 1 << 30 => format!("{:.1} GiB", n as f64 / f64::from(1u32 << 30)),
        n if n >= 1 << 20 => format!("{:.1} MiB", n as f64 / f64::from(1u32 << 20)),
        n if n >= 1 << 10 => format!("{:.1} KiB", n as f64 / 1024.0),
        n => format!("{n} B"),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ends() -> Ends {
        Ends {
            version: 16,
            source_ip: "10.0.1.2".into(),
            target_ip: "10.0.1.3".into(),
            database: "business_logic_app".into(),
            slot: slot(0, 1),
        }
    }

    /// Every script is valid bash.
    #[test]
    fn every_script_parses_as_bash() {
        let scripts = [
            facts(),
            prepare(&ends(), "pw"),
            clone(&ends(), "pw"),
            lag("terrace_migration_1"),
            routed_rows("business_logic_app", "organization_id", 1, 3),
            split("business_logic_app", "organization_id", 1, 3),
            stop_source(16, &["terrace-backup.timer".into()]),
            stop_source(16, &[]),
            restart_source(16),
            replayed("0/3000028"),
            promote(),
        ];
        for script in scripts {
            let out = std::process::Command::new("bash").args(["-n", "-c", &script.shell]).output().expect("bash runs");
            assert!(out.status.success(), "{}\n{}", script.shell, String::from_utf8_lossy(&out.stderr));
        }
    }

    #[test]
    fn secrets_go_through_standard_input_only() {
        let secret = "s3cret:pa'ss";
        for script in [prepare(&ends(), secret), clone(&ends(), secret)] {
            assert!(!script.shell.contains("s3cret"), "{}", script.shell);
            assert!(script.stdin.as_deref().is_some_and(|s| s.contains("s3cret")));
        }
        assert!(prepare(&ends(), secret).stdin.is_some_and(|s| s.contains("'s3cret:pa''ss'")));
        assert!(clone(&ends(), secret).stdin.is_some_and(|s| s.ends_with(":s3cret\\:pa'ss\n")));
    }

    #[test]
    fn the_source_lets_in_exactly_the_target_and_the_target_follows_the_source() {
        let prepare = prepare(&ends(), "pw").shell;
        assert!(prepare.contains("host replication replicator 10.0.1.3/32 scram-sha-256"), "{prepare}");
        assert!(prepare.contains("*,10.0.1.2,*"), "{prepare}");
        let clone = clone(&ends(), "pw").shell;
        assert!(clone.contains("host=10.0.1.2 port=5432 user=replicator"), "{clone}");
        assert!(clone.contains("--slot=terrace_migration"), "{clone}");
    }

    #[test]
    fn each_shard_streams_through_a_slot_of_its_own() {
        assert_eq!(slot(0, 1), "terrace_migration");
        assert_eq!(slot(2, 3), "terrace_migration_2");
        let ends = Ends { slot: slot(2, 3), ..ends() };
        assert!(clone(&ends, "pw").shell.contains("--slot=terrace_migration_2"));
        assert!(prepare(&ends, "pw").shell.contains("pg_create_physical_replication_slot('terrace_migration_2')"));
        assert!(lag("x'; DROP").shell.contains("application_name = 'xDROP'"));
    }

    /// The split deletes by the seed's rule, with `%` doubled for format() and quotes doubled for
    /// the literal, so the statement format() makes is the rule itself.
    #[test]
    fn the_split_deletes_what_the_rule_routes_elsewhere() {
        assert_eq!(
            route_sql("organization_id", 3),
            "('x' || substr(md5(organization_id::text), 1, 8))::bit(32)::bigint % 3"
        );
        let sql = split("app", "organization_id", 1, 3).stdin.expect("sql");
        assert!(
            sql.contains(
                "format('DELETE FROM %s WHERE (''x'' || substr(md5(%I::text), 1, 8))::bit(32)::bigint %% 3 <> 1'"
            ),
            "{sql}"
        );
        assert!(sql.contains("a.attname = 'organization_id'"), "{sql}");
        assert!(sql.contains("SET LOCAL session_replication_role = replica"), "{sql}");
        let weird = split("app", "o'k", 0, 2).stdin.expect("sql");
        assert!(weird.contains("a.attname = 'o''k'"), "{weird}");
    }

    #[test]
    fn the_rows_per_shard_are_read_strictly() {
        let out = "tables=2\nuser_tables=3\n0|0|700|70\n0|2|50|5\n1|2|600|60\n";
        let routed = Routed::parse(out, 2, 3).expect("counts");
        assert_eq!(
            routed,
            Routed { tables: 3, keyed: 2, rows: vec![700, 0, 650], keys: vec![70, 0, 65], rows_before: vec![750, 600] }
        );
        assert_eq!((routed.strays(0), routed.strays(1)), (600, 750));
        assert!(Routed::parse("tables=2\n", 2, 3).is_err(), "the table count is missing");
        assert!(Routed::parse("tables=2\nuser_tables=3\n0|5|1|1\n", 2, 3).is_err(), "no shard 5 of 3");
        assert!(Routed::parse("tables=2\nuser_tables=3\n2|0|1|1\n", 2, 3).is_err(), "no old shard 2 of 2");
        assert!(Routed::parse("tables=2\nuser_tables=3\n0|1\n", 2, 3).is_err(), "no key count");
        assert!(Routed::parse("tables=2\nuser_tables=3\nERROR\n", 2, 3).is_err());
    }

    #[test]
    fn facts_are_parsed_strictly() {
        let facts = Facts::parse("160004|/mnt/data/16/main|false|7654321|21000000000\n").expect("facts");
        assert_eq!(facts.major(), 16);
        assert_eq!(facts.bytes, 7_654_321);
        assert!(!facts.in_recovery);
        assert!(Facts::parse("160004|/mnt|false").is_err());
        assert!(Facts::parse("x|/mnt|false|1|2").is_err());
    }

    #[test]
    fn a_checkpoint_location_cannot_break_out_of_its_quotes() {
        let script = replayed("0/30'; DROP TABLE x; --").shell;
        assert!(script.contains("'0/30; DROP TABLE x; --'"), "{script}");
    }
}
