//! The scripts of a rebalance (N shards into M), run as root over SSH on the shards. Pure
//! builders, like `commands`: secrets go through standard input, and each script is safe to run
//! again after an interruption at any point.
//!
//! The rows move inside PostgreSQL: each shard of the new count pulls, in one transaction, the
//! rows routed to it from the shards that hold them (`COPY ... FROM PROGRAM` running `psql` against
//! the other shard over the private network), so nothing passes through the machine that runs
//! terrace and a failed copy leaves nothing behind.

use super::commands::{
    hba_lines, keyed_relations, keyed_tables, literal, pgpass_escape, psql, read_only, route_sql, writable,
};
use crate::services::REPLICATION_USER;
use crate::services::converge::Command;
use crate::services::shell::sh;

/// Lets the scripts' own sessions write while the shards are read-only (`pause`).
const WRITABLE: &str = "export PGOPTIONS='-c default_transaction_read_only=off'\n";

/// What ends the `pg_hba.conf` lines a rebalance adds, and `close` takes out.
const MARKER: &str = "# terrace rebalance";

/// Where a shard keeps the other shards' passwords while it copies from them.
const PASSFILE: &str = "/etc/terrace/postgres/rebalance.pgpass";

/// A shard the rows come from, as another shard reaches it.
#[derive(Debug, Clone)]
pub struct Source {
    /// Its private address.
    pub ip: String,
    /// Its replication role's password.
    pub password: String,
}

impl Source {
    fn conninfo(&self, database: &str) -> String {
        format!(
            "host={} port=5432 dbname={database} user={REPLICATION_USER} passfile={PASSFILE} \
             application_name=terrace_rebalance sslmode=prefer",
            self.ip
        )
    }
}

/// The pgpass lines of `sources`, for standard input.
fn passwords(sources: &[&Source]) -> String {
    sources.iter().map(|s| format!("{}:5432:*:{REPLICATION_USER}:{}\n", s.ip, pgpass_escape(&s.password))).collect()
}

/// On a shard of the old count: the replication role (its password on standard input) may log in
/// to `database` and read all of it (`pg_read_all_data`) from each of `readers` (the private
/// addresses of the shards of the new count).
pub fn open(database: &str, readers: &[String], password: &str) -> Command {
    let lines: Vec<String> =
        readers.iter().map(|ip| format!("host {database} {REPLICATION_USER} {ip}/32 scram-sha-256 {MARKER}")).collect();
    let psql = psql();
    Command {
        shell: format!(
            "set -euo pipefail\n\
             {WRITABLE}\
             {psql} --file=-\n\
             {hba}\
             {psql} --command='SELECT pg_reload_conf()' > /dev/null\n",
            hba = hba_lines(&lines),
        ),
        stdin: Some(format!(
            "ALTER ROLE {REPLICATION_USER} WITH LOGIN REPLICATION PASSWORD {};\n\
             GRANT pg_read_all_data TO {REPLICATION_USER};\n",
            literal(password)
        )),
    }
}

/// On a shard of the old count, once the rows are copied: what `open` allowed is taken back (the
/// `pg_hba.conf` lines it added, which leaves the file as terrace wrote it, and the role's read
/// access).
pub fn close() -> Command {
    let psql = psql();
    Command {
        shell: format!(
            "set -euo pipefail\n\
             {WRITABLE}\
             hba=$({psql} --command='SHOW hba_file')\n\
             if grep -q {marker} \"$hba\"; then\n\
             \x20 grep -v {marker} \"$hba\" > \"$hba.terrace-new\" || true\n\
             \x20 chown --reference=\"$hba\" \"$hba.terrace-new\" && chmod --reference=\"$hba\" \"$hba.terrace-new\"\n\
             \x20 mv \"$hba.terrace-new\" \"$hba\"\n\
             fi\n\
             {psql} --command='REVOKE pg_read_all_data FROM {REPLICATION_USER}' > /dev/null\n\
             {psql} --command='SELECT pg_reload_conf()' > /dev/null\n",
            marker = sh(&format!("^host .* {REPLICATION_USER} .* {MARKER}$")),
        ),
        stdin: None,
    }
}

/// On every shard: writes pause (`commands::read_only`).
pub fn pause() -> Command {
    Command { shell: format!("set -euo pipefail\n{}", read_only()), stdin: None }
}

/// On every shard that serves after the rebalance: writable again, the other shards' passwords
/// gone.
pub fn resume() -> Command {
    Command { shell: format!("set -euo pipefail\nrm -f {}\n{}", sh(PASSFILE), writable()), stdin: None }
}

/// On shard `index` of the new count `after` (the old count is `before`): in one transaction,
/// first deletes what an earlier run of this step copied in (rows the old rule did not route
/// here), then copies from each of `sources` the rows of every table with the column `key` that
/// the new rule routes here. A shard new to the block (`index >= before`) first gets, when its
/// database has no tables, the schema and the reference tables of `sources[0]` (`pg_dump`
/// without the rows of the tables with the key, restored in one transaction). Foreign keys are not
/// checked while rows arrive (`session_replication_role`): they are copied whole per table.
pub fn copy(
    version: u32,
    database: &str,
    key: &str,
    index: usize,
    before: usize,
    after: usize,
    sources: &[&Source],
) -> Command {
    let psql = psql();
    let fresh = match (index >= before, sources.first()) {
        (true, Some(first)) => format!(
            "tables=$({psql} --dbname={db} --command='SELECT count(*) FROM pg_stat_user_tables')\n\
             if [ \"$tables\" = 0 ]; then\n\
             \x20 skip=$(runuser -u postgres -- psql --no-psqlrc --tuples-only --no-align --set=ON_ERROR_STOP=1 \
             --dbname={conninfo} --command={skip})\n\
             \x20 mapfile -t skip <<< \"$skip\"\n\
             \x20 runuser -u postgres -- /usr/lib/postgresql/{version}/bin/pg_dump --no-password --dbname={conninfo} \
             \"${{skip[@]}}\" | {psql} --dbname={db} --single-transaction --file=- > /dev/null\n\
             fi\n",
            db = sh(database),
            conninfo = sh(&first.conninfo(database)),
            skip = sh(&format!(
                "SELECT format('--exclude-table-data=%s.%s', quote_ident(n.nspname), quote_ident(c.relname)) {}",
                keyed_relations(key, true)
            )),
        ),
        _ => String::new(),
    };
    let escape = |sql: String| sql.replace('%', "%%").replace("%%I", "%I").replace('\'', "''");
    let old_rule = escape(route_sql("%I", before));
    let new_rule = escape(route_sql("%I", after));
    // The shell quoting of a text, in SQL: 'text' with each ' written '\''.
    let shell_quoted = |x: &str| format!("'''' || replace({x}, '''', '''\\''''') || ''''");
    let conninfos: Vec<String> = sources.iter().map(|s| format!("({})", literal(&s.conninfo(database)))).collect();
    let pulls = if conninfos.is_empty() {
        String::new()
    } else {
        format!(
            "SELECT format('COPY %s (%s) FROM PROGRAM %L', t.rel, t.cols, 'psql --no-psqlrc --quiet --dbname=' || \
             {conninfo} || ' --command=' || {query}) \
             FROM (SELECT c.oid::regclass AS rel, a.attname AS key, (SELECT string_agg(quote_ident(attname), ', ' \
             ORDER BY attnum) FROM pg_attribute WHERE attrelid = c.oid AND attnum > 0 AND NOT attisdropped \
             AND attgenerated = '') AS cols {tables}) AS t CROSS JOIN (VALUES {sources}) AS s(conninfo) \\gexec\n",
            conninfo = shell_quoted("s.conninfo"),
            query = shell_quoted(&format!(
                "format('COPY (SELECT %s FROM %s WHERE {new_rule} = {index}) TO STDOUT', t.cols, t.rel, t.key)"
            )),
            tables = keyed_tables(key),
            sources = conninfos.join(", "),
        )
    };
    Command {
        shell: format!(
            "set -euo pipefail\n\
             (umask 077 && cat > {passfile})\n\
             chown postgres:postgres {passfile}\n\
             {WRITABLE}\
             {fresh}\
             {psql} --dbname={db} --file=- > /dev/null <<'TERRACE_SQL'\n\
             BEGIN;\n\
             SET LOCAL session_replication_role = replica;\n\
             SELECT format('DELETE FROM %s WHERE {old_rule} <> {index}', c.oid::regclass, a.attname) {tables} \\gexec\n\
             {pulls}\
             {sequences}\
             COMMIT;\n\
             VACUUM ANALYZE;\n\
             TERRACE_SQL\n",
            passfile = sh(PASSFILE),
            db = sh(database),
            tables = keyed_tables(key),
            sequences = sequences_past_rows(key),
        ),
        stdin: Some(passwords(sources)),
    }
}

/// psql lines (in the copy's transaction): every sequence that numbers a column of a table with
/// `key` (`serial`, identity) is moved past the largest value the rows that came in carry, so that
/// the application's next insert on this shard does not take an id a moved row has. It only ever
/// moves forward (`setval` is not rolled back with the transaction; a gap is harmless).
fn sequences_past_rows(key: &str) -> String {
    format!(
        "SELECT format('SELECT setval(%L, max(%I)) FROM %s HAVING max(%I) > (SELECT last_value FROM %s)', \
         s.seq, col.attname, t.rel, col.attname, s.seq) \
         FROM (SELECT c.oid, c.oid::regclass AS rel {tables}) AS t \
         JOIN pg_attribute col ON col.attrelid = t.oid AND col.attnum > 0 AND NOT col.attisdropped \
         CROSS JOIN LATERAL (SELECT pg_get_serial_sequence(t.rel::text, col.attname) AS seq) AS s \
         WHERE s.seq IS NOT NULL \\gexec\n",
        tables = keyed_tables(key)
    )
}

/// On shard `index` of the old count that stays: deletes, in one transaction, the organizations
/// the new rule (of `after` shards) routes elsewhere, as a reshard's split does.
pub fn prune(database: &str, key: &str, index: usize, after: usize) -> Command {
    let mut command = super::commands::split(database, key, index, after);
    command.shell = format!("{WRITABLE}{}", command.shell);
    command
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sources() -> Vec<Source> {
        vec![
            Source { ip: "10.0.1.2".into(), password: "one'pw:x".into() },
            Source { ip: "10.0.1.3".into(), password: "two".into() },
        ]
    }

    #[test]
    fn every_script_parses_as_bash_and_secrets_stay_on_standard_input() {
        let sources = sources();
        let refs: Vec<&Source> = sources.iter().collect();
        let scripts = [
            open("app", &["10.0.1.4".into()], "one'pw:x"),
            close(),
            pause(),
            resume(),
            copy(16, "app", "organization_id", 2, 2, 3, &refs),
            copy(16, "app", "organization_id", 0, 2, 3, &refs[1..]),
            prune("app", "organization_id", 1, 3),
        ];
        for script in scripts {
            let out = std::process::Command::new("bash").args(["-n", "-c", &script.shell]).output().expect("bash runs");
            assert!(out.status.success(), "{}\n{}", script.shell, String::from_utf8_lossy(&out.stderr));
            assert!(!script.shell.contains("one'pw") && !script.shell.contains("one''pw"), "{}", script.shell);
        }
        let copy = copy(16, "app", "organization_id", 2, 2, 3, &refs);
        let expected =
            format!("10.0.1.2:5432:*:{REPLICATION_USER}:one'pw\\:x\n10.0.1.3:5432:*:{REPLICATION_USER}:two\n");
        assert_eq!(copy.stdin.as_deref(), Some(expected.as_str()));
    }

    #[test]
    fn a_new_shard_deletes_what_an_earlier_run_copied_and_pulls_its_organizations_by_the_new_rule() {
        let sources = sources();
        let refs: Vec<&Source> = sources.iter().collect();
        let script = copy(16, "app", "organization_id", 2, 2, 3, &refs).shell;
        assert!(script.contains("% 2 <> 2"), "the old rule picks what was copied in before: {script}");
        assert!(script.contains("% 3 = 2"), "the new rule picks what comes in: {script}");
        assert!(script.contains("pg_dump"), "a new shard gets the schema and the reference tables: {script}");
        let staying = copy(16, "app", "organization_id", 0, 2, 3, &refs[1..]).shell;
        assert!(!staying.contains("pg_dump"), "a shard that has its tables keeps them: {staying}");
    }
}
