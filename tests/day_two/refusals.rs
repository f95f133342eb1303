//! A data migration that cannot go ahead is refused with an error naming the problem, and
//! changes nothing of the old database: on live hosts, along the seed's path in one lab, phase
//! 1 -> 2 is refused while the old database is down (unreachable source) and then while the new
//! server's volume has too little room (filled after the refused apply had created it), and phase
//! 3 -> 4 is refused while no table has the shard key. After each refusal the old database still
//! serves the app every seeded row (counts and checksums), it has no slot, `pg_hba.conf` line or
//! listen address of the migration, the new database holds no table, the app's outputs are those
//! of the old phase, and the migration's record claims no step done; once the cause is fixed, the
//! next apply carries every row across. A phase that declares another major version than the old
//! database runs is refused by the plan, before the new servers are made.

use std::collections::BTreeSet;
use std::path::Path;
use std::process::Output;
use std::time::Duration;

use serde_json::Value;
use terrace::compile::shard::route;

use crate::lab::{self, Host, Lab, describe};
use crate::support::{From, outputs, psql_ok, stack, state, superuser, terrace, terrace_ok, text, texts};
use crate::writer::seeded;

/// Each seeded table's row count and checksum, `table:count:md5;...`, in an order that does not
/// name the shard key (which the test renames).
const CHECKSUMS: &str = "SELECT string_agg(t || ':' || n || ':' || c, ';' ORDER BY t) FROM (
  SELECT 'organizations' t, count(*) n, md5(string_agg(o::text, ',' ORDER BY o::text)) c FROM organizations o
  UNION ALL SELECT 'documents', count(*), md5(string_agg(d::text, ',' ORDER BY d.id)) FROM documents d
  UNION ALL SELECT 'plans', count(*), md5(string_agg(p::text, ',' ORDER BY p.code)) FROM plans p
  UNION ALL SELECT 'writes', count(*), md5(string_agg(w::text, ',' ORDER BY w.id)) FROM writes w) s";

/// The tables of the seed that carry the shard key.
const KEYED: [&str; 3] = ["organizations", "documents", "writes"];

/// What a migration leaves on the old database when it starts: its slots, the `pg_hba.conf` lines
/// it adds, and the addresses it listens on.
fn migration_marks(old: &Host) -> String {
    let slots =
        superuser(old, "SELECT coalesce(string_agg(slot_name, ',' ORDER BY slot_name), '') FROM pg_replication_slots");
    let hba = old.run_ok(
        "hba=$(runuser -u postgres -- psql --no-psqlrc --tuples-only --no-align --command='SHOW hba_file'); \
         grep -c 'terrace migration' \"$hba\" || true",
    );
    let listen = superuser(old, "SHOW listen_addresses");
    format!("slots: [{slots}], migration lines in pg_hba.conf: {}, listen_addresses: {listen}", hba.trim())
}

/// A new database that nothing was copied to: a primary of its own, without a table.
fn assert_empty(new: &Host) {
    assert_eq!(superuser(new, "SELECT pg_is_in_recovery()"), "f", "{} is not a copy", new.name());
    let tables = new.run_ok(
        "runuser -u postgres -- psql --no-psqlrc --tuples-only --no-align --dbname=business_logic_app \
         --command='SELECT count(*) FROM pg_stat_user_tables'",
    );
    assert_eq!(tables.trim(), "0", "{} holds no table", new.name());
}

/// An apply that must be refused: its whole output.
fn refused(lab: &Lab, dir: &Path, phase: &str) -> String {
    let out: Output = terrace(lab, dir, &["apply", "--phase", phase, "--auto-approve"]);
    assert!(!out.status.success(), "the apply of {phase} must be refused:\n{}", describe(&out));
    assert_eq!(out.status.code(), Some(1), "a failed apply, not a crash:\n{}", describe(&out));
    let said = format!("{}{}", String::from_utf8_lossy(&out.stdout), String::from_utf8_lossy(&out.stderr));
    eprintln!("day two: refused apply of {phase} said:\n{said}");
    said
}

/// The record of `postgres.main`'s migration claims no step done, here and in `migrate status`.
fn assert_no_step_done(lab: &Lab, dir: &Path, to: &[&str], steps: usize) {
    let record = state(dir)["migrations"]["postgres.main"].clone();
    assert!(record["step"].is_null(), "no step is done: {record}");
    let recorded: Vec<&str> = record["to"].as_array().into_iter().flatten().filter_map(Value::as_str).collect();
    assert_eq!(recorded, to, "{record}");
    let status = String::from_utf8_lossy(&terrace(lab, dir, &["migrate", "status"]).stdout).into_owned();
    assert!(status.contains(&format!("step: none done yet (0 of {steps})")), "{status}");
}

/// Rows of a query, one per line, as a set.
fn lines(text: &str) -> BTreeSet<String> {
    text.lines().filter(|l| !l.is_empty()).map(str::to_owned).collect()
}

#[test]
fn refused_migrations_change_nothing_and_the_next_apply_carries_every_row() {
    lab::isolated_with(lab::Options { timeout: Duration::from_secs(2400), ..lab::Options::default() }, |lab| {
        let dir = stack(lab);
        let unit = format!("postgresql@{}-main.service", lab.pg_version());
        let (app, old_url) = seeded(lab, &dir, "block-storage", "fastbots-app");
        psql_ok(
            From::Host(&app),
            &old_url,
            "INSERT INTO writes (id, organization_id) SELECT i, 'org-' || (i % 200 + 1) FROM generate_series(1, 500) i",
        );
        let seed = psql_ok(From::Host(&app), &old_url, CHECKSUMS);
        let marks = migration_marks(&app);

        // 1 -> 2 to another major version: refused by the plan, before the new servers are made
        // (the plan also reads the old database's version live, which agrees with the state).
        let other = format!("postgres_version={}", lab.pg_version() + 1);
        let out = terrace(lab, &dir, &["apply", "--phase", "managed-db", "--var", &other, "--auto-approve"]);
        assert_eq!(out.status.code(), Some(1), "refused:\n{}", describe(&out));
        let said = String::from_utf8_lossy(&out.stderr);
        assert!(
            said.contains(&format!(
                "`postgres.main`: the old database on `postgres.main.host.shared` runs PostgreSQL {} (as recorded), \
                 and this phase declares `postgres.main.host.primary` {}: a streaming copy needs the same major \
                 version",
                lab.pg_version(),
                lab.pg_version() + 1
            )) && said.contains("(nothing was changed)"),
            "the error names both versions:\n{said}"
        );
        let recorded = state(&dir);
        assert!(recorded["resources"].get("postgres.main.server.primary").is_none(), "no new server: {recorded}");
        assert!(recorded["migrations"].get("postgres.main").is_none(), "no migration recorded: {recorded}");
        assert_eq!(psql_ok(From::Host(&app), &old_url, CHECKSUMS), seed, "the old database's rows");
        assert_eq!(migration_marks(&app), marks, "the old database is as it was");

        // 1 -> 2 with the old database down: the new servers are made, the migration is refused.
        app.run_ok(&format!("systemctl stop {unit}"));
        let said = refused(lab, &dir, "managed-db");
        assert!(
            said.contains(
                "`postgres.main`: the old database on `postgres.main.host.shared` cannot be read (nothing was changed)"
            ),
            "the error names the service, the old database and its host:\n{said}"
        );
        assert!(said.contains("psql: error: connection to server"), "the error says why (psql's own words):\n{said}");
        app.run_ok(&format!("systemctl start {unit}"));
        let primary = lab.wait_booted("fastbots-main-primary", Duration::from_secs(60));
        let unchanged = |what: &str| {
            assert_eq!(psql_ok(From::Host(&app), &old_url, CHECKSUMS), seed, "{what}: the old database's rows");
            assert_eq!(migration_marks(&app), marks, "{what}: the old database is as it was");
            assert_empty(&primary);
            assert_eq!(text(&outputs(lab, &dir), "DATABASE_URL"), old_url, "{what}: the app keeps its URL");
            assert_no_step_done(lab, &dir, &["postgres.main.host.primary"], 4);
        };
        unchanged("the old database down");

        // 1 -> 2 with the new server's volume all but full: refused before anything changes.
        let old_bytes: u64 =
            superuser(&app, "SELECT sum(pg_database_size(oid)) FROM pg_database").parse().expect("a size");
        let keep = old_bytes / 2;
        let fill = format!(
            "set -euo pipefail\n\
             data=$(runuser -u postgres -- psql --no-psqlrc --tuples-only --no-align --command='SHOW data_directory')\n\
             parent=$(dirname \"$data\")\n\
             mnt=$(df --output=target \"$parent\" | tail -n 1)\n\
             case \"$(findmnt --noheadings --output=SOURCE \"$mnt\")\" in /dev/loop*|/dev/disk/*) ;; *) exit 3 ;; esac\n\
             avail=$(df --output=avail -B1 \"$parent\" | tail -n 1 | tr -d ' ')\n\
             fallocate -l $((avail - {keep})) \"$mnt/filler\"\n\
             echo \"$mnt/filler\" $(df --output=avail -B1 \"$parent\" | tail -n 1)"
        );
        let filled = primary.run_ok(&fill);
        let (filler, left) = filled.trim().split_once(' ').expect("the filler and the room left");
        let left: u64 = left.parse().expect("bytes");
        assert!(left < old_bytes, "the new volume has {left} bytes free, less than the old database's {old_bytes}");
        let said = refused(lab, &dir, "managed-db");
        assert!(
            said.contains("the volume of `postgres.main.host.primary` has")
                && said.contains("raise storage_gb")
                && said.contains("(nothing was changed)"),
            "the error names the full volume and what to do:\n{said}"
        );
        unchanged("the new volume full");

        // The cause gone, the next apply carries every row.
        primary.run_ok(&format!("rm {}", lab::quote(filler)));
        terrace_ok(lab, &dir, &["apply", "--phase", "managed-db", "--auto-approve"]);
        let url = text(&outputs(lab, &dir), "DATABASE_URL").to_owned();
        assert_ne!(url, old_url, "DATABASE_URL names the new server");
        assert_eq!(psql_ok(From::Host(&app), &url, CHECKSUMS), seed, "every seeded row after the move");
        assert_eq!(state(&dir)["migrations"]["postgres.main"]["step"], "switchover");
        assert!(!app.run(&format!("systemctl is-active {unit}")).status.success(), "the old database is stopped");
        eprintln!("day two: 1 -> 2 done after two refusals");

        // 3 -> 4 with no table carrying the shard key: refused before anything changes.
        terrace_ok(lab, &dir, &["apply", "--phase", "read-replicas", "--auto-approve"]);
        let app = lab.wait_booted("fastbots-app-0", Duration::from_secs(60));
        let url = text(&outputs(lab, &dir), "DATABASE_URL").to_owned();
        assert_eq!(psql_ok(From::Host(&app), &url, CHECKSUMS), seed, "every seeded row at phase 3");
        let renames: Vec<String> =
            KEYED.iter().map(|t| format!("ALTER TABLE {t} RENAME COLUMN organization_id TO org")).collect();
        psql_ok(From::Host(&app), &url, &renames.join("; "));
        let marks = migration_marks(&primary);
        let said = refused(lab, &dir, "sharding");
        assert!(
            said.contains(
                "none of the 4 tables of the database `business_logic_app` has the shard key column `organization_id`"
            ) && said.contains("(nothing was changed)"),
            "the error names the missing shard key:\n{said}"
        );
        assert_eq!(psql_ok(From::Host(&app), &url, CHECKSUMS), seed, "the old database's rows after the refusal");
        assert_eq!(migration_marks(&primary), marks, "the old database is as it was");
        let shards: Vec<Host> =
            (0..3).map(|i| lab.wait_booted(&format!("fastbots-shard-{i}-primary"), Duration::from_secs(60))).collect();
        shards.iter().for_each(assert_empty);
        let kept = outputs(lab, &dir);
        assert_eq!(text(&kept, "DATABASE_URL"), url, "the app keeps its URL");
        assert!(kept.get("SHARD_MAP").is_none(), "no shard map is handed out: {:?}", kept.keys());
        let to: Vec<String> = (0..3).map(|i| format!("postgres.shard[{i}].host.primary")).collect();
        assert_no_step_done(lab, &dir, &to.iter().map(String::as_str).collect::<Vec<_>>(), 5);

        // The key back, the next apply reshards every row.
        let renames: Vec<String> =
            KEYED.iter().map(|t| format!("ALTER TABLE {t} RENAME COLUMN org TO organization_id")).collect();
        psql_ok(From::Host(&app), &url, &renames.join("; "));
        let table =
            |url: &str, name: &str| lines(&psql_ok(From::Host(&app), url, &format!("SELECT t::text FROM {name} t")));
        let before: Vec<BTreeSet<String>> = KEYED.iter().map(|t| table(&url, t)).collect();
        let plans = psql_ok(From::Host(&app), &url, "SELECT string_agg(p::text, ';' ORDER BY code) FROM plans p");
        terrace_ok(lab, &dir, &["apply", "--phase", "sharding", "--auto-approve"]);
        let urls = texts(&outputs(lab, &dir), "SHARD_DATABASE_URLS");
        assert_eq!(urls.len(), 3);
        for (k, name) in KEYED.iter().enumerate() {
            let mut all = BTreeSet::new();
            let mut count = 0;
            for (i, shard) in urls.iter().enumerate() {
                let keys =
                    lines(&psql_ok(From::Host(&app), shard, &format!("SELECT DISTINCT organization_id FROM {name}")));
                assert!(keys.iter().all(|key| route(key, 3) == i), "shard {i}'s {name} holds organizations of others");
                let rows = table(shard, name);
                count += rows.len();
                all.extend(rows);
            }
            assert_eq!(count, all.len(), "a row of {name} on two shards");
            assert_eq!(all, before[k], "every row of {name}, across the shards");
        }
        for (i, shard) in urls.iter().enumerate() {
            let whole = psql_ok(From::Host(&app), shard, "SELECT string_agg(p::text, ';' ORDER BY code) FROM plans p");
            assert_eq!(whole, plans, "shard {i}'s plans");
        }
        assert_eq!(state(&dir)["migrations"]["postgres.main"]["step"], "split");
        eprintln!("day two: 3 -> 4 done after a refusal");
    });
}
