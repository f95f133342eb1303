//! The shell scripts of a move, run as root over SSH on the old server (the source) and the new
//! one (the target). Pure builders: every value is quoted by `services::shell::sh`, and secrets go
//! through standard input, never into a command line. Each script is safe to run again after an
//! interruption at any point, which is what lets a killed apply continue.

use crate::services::REPLICATION_USER;
use crate::services::converge::{Command, psql_command, wait_ready_command};
use crate::services::postgres::CONF_DIR;
use crate::services::shell::sh;

/// The physical replication slot the copy streams through: the old database keeps every WAL
/// segment the copy has not received.
pub const SLOT: &str = "terrace_migration";

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
}

/// The cluster's data directory, running or not (Debian's postgresql-common knows it).
fn data_directory(version: u32) -> String {
    format!("data=$(pg_lsclusters --no-header {version} main | awk '{{print $6}}'); [ -n \"$data\" ]")
}

fn unit(version: u32) -> String {
    crate::services::converge::postgres_unit(version)
}

fn psql() -> String {
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
             hba=$({psql} --command='SHOW hba_file')\n\
             if ! grep -qxF {line} \"$hba\"; then\n\
             \x20 {{ printf '%s\\n' {line}; cat \"$hba\"; }} > \"$hba.terrace-new\"\n\
             \x20 chown --reference=\"$hba\" \"$hba.terrace-new\" && chmod --reference=\"$hba\" \"$hba.terrace-new\"\n\
             \x20 mv \"$hba.terrace-new\" \"$hba\"\n\
             fi\n\
             {psql} --command=\"SELECT pg_create_physical_replication_slot('{SLOT}') WHERE NOT EXISTS \
             (SELECT FROM pg_replication_slots WHERE slot_name = '{SLOT}')\" > /dev/null\n\
             listen=$({psql} --command='SHOW listen_addresses' | tr -d ' ')\n\
             case \",$listen,\" in\n\
             \x20 *,{ip},*|*,\\*,*) {psql} --command='SELECT pg_reload_conf()' > /dev/null ;;\n\
             \x20 *) {psql} --command=\"ALTER SYSTEM SET listen_addresses = '$listen,{ip}'\"\n\
             \x20    systemctl restart {unit} && {wait} ;;\n\
             esac\n",
            line = sh(&line),
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

/// On the target: refuses to overwrite a database that holds tables of its own; stops it, copies
/// the source beside the data directory (moved into place only when complete), and starts it as a
/// replica streaming through the slot. The replication password comes on standard input.
pub fn clone(ends: &Ends, replication_password: &str) -> Command {
    let psql = psql();
    let conninfo = format!(
        "host={} port=5432 user={REPLICATION_USER} passfile={PASSFILE} application_name={SLOT} sslmode=prefer",
        ends.source_ip
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
             systemctl stop pgbouncer.service 2> /dev/null || true\n\
             systemctl stop {unit}\n\
             (umask 077 && cat > {passfile})\n\
             chown postgres:postgres {passfile}\n\
             rm -rf \"$data.partial\"\n\
             runuser -u postgres -- pg_basebackup --pgdata=\"$data.partial\" --wal-method=stream --checkpoint=fast \
             --slot={SLOT} --dbname={conninfo}\n\
             rm -rf \"$data\"\n\
             mv \"$data.partial\" \"$data\"\n\
             printf \"%s\\n\" {primary_conninfo} \"primary_slot_name = '{SLOT}'\" > \"$data/postgresql.auto.conf\"\n\
             touch \"$data/standby.signal\"\n\
             chown postgres:postgres \"$data/postgresql.auto.conf\" \"$data/standby.signal\"\n\
             chmod 0600 \"$data/postgresql.auto.conf\" \"$data/standby.signal\"\n\
             systemctl start {unit} && {wait}\n",
            data = data_directory(ends.version),
            database = sh(&ends.database),
            unit = unit(ends.version),
            passfile = sh(PASSFILE),
            conninfo = sh(&conninfo),
            primary_conninfo = sh(&format!("primary_conninfo = '{conninfo}'")),
            wait = wait_ready_command(),
        ),
        stdin: Some(format!("{}:5432:*:{REPLICATION_USER}:{}\n", ends.source_ip, pgpass_escape(replication_password))),
    }
}

/// On the source: how far the copy is behind, in bytes of WAL (`-1` while it is not connected).
pub fn lag() -> Command {
    Command {
        shell: format!(
            "{} --command=\"SELECT coalesce((SELECT pg_wal_lsn_diff(pg_current_wal_lsn(), replay_lsn)::bigint \
             FROM pg_stat_replication WHERE application_name = '{SLOT}' AND replay_lsn IS NOT NULL LIMIT 1), -1)\"",
            psql()
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
             \x20 {psql} --command='ALTER SYSTEM SET default_transaction_read_only = on' > /dev/null\n\
             \x20 {psql} --command='SELECT pg_reload_conf()' > /dev/null\n\
             \x20 {psql} --command=\"SELECT count(pg_terminate_backend(pid)) FROM pg_stat_activity \
             WHERE backend_type = 'client backend' AND pid <> pg_backend_pid()\" > /dev/null\n\
             \x20 systemctl stop {unit}\n\
             fi\n\
             echo manual > /etc/postgresql/{version}/main/start.conf\n\
             control=$(LC_ALL=C /usr/lib/postgresql/{version}/bin/pg_controldata \"$data\")\n\
             state=$(printf '%s\\n' \"$control\" | sed -n 's/^Database cluster state: *//p')\n\
             lsn=$(printf '%s\\n' \"$control\" | sed -n 's/^Latest checkpoint location: *//p')\n\
             printf '%s|%s\\n' \"$state\" \"$lsn\"\n",
            data = data_directory(version),
            unit = unit(version),
        ),
        stdin: None,
    }
}

/// On the source, when the switchover cannot finish: writable and running again, as before it.
pub fn restart_source(version: u32) -> Command {
    Command {
        shell: format!(
            "set -euo pipefail\n\
             echo auto > /etc/postgresql/{version}/main/start.conf\n\
             systemctl start {unit} && {wait}\n\
             {psql} --command='ALTER SYSTEM RESET default_transaction_read_only' > /dev/null\n\
             {psql} --command='SELECT pg_reload_conf()' > /dev/null\n",
            unit = unit(version),
            wait = wait_ready_command(),
            psql = psql(),
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
/// own setup run (roles, slots of its replicas), PgBouncer started, the password file gone.
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
             rm -f {passfile}\n",
            setup = sh(&format!("{CONF_DIR}/setup.sql")),
            passfile = sh(PASSFILE),
        ),
        stdin: None,
    }
}

/// A field of a .pgpass line, where `:` and `\` are escaped with `\`.
fn pgpass_escape(value: &str) -> String {
    value.replace('\\', "\\\\").replace(':', "\\:")
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
        }
    }

    /// Every script is valid bash.
    #[test]
    fn every_script_parses_as_bash() {
        let scripts = [
            facts(),
            prepare(&ends(), "pw"),
            clone(&ends(), "pw"),
            lag(),
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
