//! Phase 1 -> 2 on live hosts carries the database from the app server to its own server: a seeded
//! dataset (200 organizations over tables with `organization_id`, a reference table, a vector
//! column) is there after the move, table by table (counts and checksums); a writer inserting
//! without pause through the whole move finds every row it committed on the new primary, once
//! each; and the apply is killed with SIGKILL after every step of the migration (from its hook),
//! each time continued by the next apply. The writer's longest interruption is printed, a figure,
//! not an assertion.

use std::sync::atomic::Ordering;
use std::time::Duration;

use serde_json::Value;

use crate::lab::{self, describe};
use crate::support::{From, outputs, psql_ok, stack, state, superuser, terrace, text};
use crate::writer::{Writer, apply_killed_after_each_step, seeded};

/// Each seeded table's row count and checksum, `table:count:md5;...`.
const CHECKSUMS: &str = "SELECT string_agg(t || ':' || n || ':' || c, ';' ORDER BY t) FROM (
  SELECT 'organizations' t, count(*) n, md5(string_agg(o::text, ',' ORDER BY organization_id)) c FROM organizations o
  UNION ALL SELECT 'documents', count(*), md5(string_agg(d::text, ',' ORDER BY id)) FROM documents d
  UNION ALL SELECT 'plans', count(*), md5(string_agg(p::text, ',' ORDER BY code)) FROM plans p) s";

/// The old DATABASE_URL until the hook hands over the new one.
fn route(outputs: Option<&Value>, _: u64) -> Option<String> {
    outputs.and_then(|o| o["DATABASE_URL"].as_str()).map(str::to_owned)
}

#[test]
fn the_database_moves_to_its_own_server_with_every_row_while_the_app_writes() {
    lab::isolated_with(lab::Options { timeout: Duration::from_secs(1500), ..lab::Options::default() }, |lab| {
        let dir = stack(lab);
        let (app, old_url) = seeded(lab, &dir, "block-storage", "fastbots-app");
        let before = psql_ok(From::Host(&app), &old_url, CHECKSUMS);

        let writer = Writer { app: app.clone(), dir: dir.clone(), first_url: old_url.clone(), route };
        let (stop, written, writing) = writer.start();
        let steps = ["prepare", "clone", "catch-up", "switchover"];
        apply_killed_after_each_step(lab, &dir, "managed-db", "postgres.main", &steps, |step, status| {
            // The copy's lag, read live while it streams.
            if step == "clone" || step == "catch-up" {
                assert!(status.contains("bytes of WAL behind"), "{status}");
            }
        });
        stop.store(true, Ordering::SeqCst);
        writing.join().expect("the writer");

        let outputs = outputs(lab, &dir);
        let new_url = text(&outputs, "DATABASE_URL");
        assert_ne!(new_url, old_url, "DATABASE_URL names the new server");
        // Every seeded row, table by table.
        assert_eq!(psql_ok(From::Host(&app), new_url, CHECKSUMS), before, "the seeded tables after the move");
        // Every row the writer committed, once.
        let written = written.lock().expect("the writer's record");
        let rows = psql_ok(
            From::Host(&app),
            new_url,
            "SELECT coalesce(string_agg(id::text, ',' ORDER BY id), '') FROM writes",
        );
        let present: std::collections::BTreeSet<u64> = rows.split(',').filter_map(|i| i.parse().ok()).collect();
        let lost: Vec<&u64> = written.committed.iter().filter(|id| !present.contains(id)).collect();
        assert!(lost.is_empty(), "committed rows lost in the move: {lost:?}");
        assert!(written.committed.len() > 20, "the writer wrote through the move: {}", written.committed.len());
        eprintln!(
            "day two: 1 -> 2 moved the database with {} rows written during the move, {} failed writes; \
             the writer's longest interruption: {:.1} s",
            written.committed.len(),
            written.failed,
            written.longest_gap.as_secs_f64()
        );
        // The new database is the primary; the old one is stopped and kept, read-only.
        let primary = lab.wait_booted("fastbots-main-primary", Duration::from_secs(60));
        assert_eq!(superuser(&primary, "SELECT pg_is_in_recovery()"), "f");
        let unit = format!("postgresql@{}-main.service", lab.pg_version());
        assert!(!app.run(&format!("systemctl is-active {unit}")).status.success(), "the old database is stopped");
        let kept = state(&dir)["migrations"]["postgres.main"].clone();
        assert_eq!(kept["step"], "switchover", "{kept}");
        // Nothing left to do until the old copy is let go; then it is deleted.
        let replan = terrace(lab, &dir, &["plan", "--detailed-exitcode"]);
        assert_eq!(replan.status.code(), Some(0), "{}", describe(&replan));
        let finish = terrace(lab, &dir, &["apply", "--finish-migration", "--auto-approve"]);
        assert!(finish.status.success(), "{}", describe(&finish));
        let after = state(&dir);
        assert!(after.get("migrations").is_none(), "the record is gone: {}", after["migrations"]);
        assert!(after["resources"].get("postgres.main.volume.data").is_none());
        let status = terrace(lab, &dir, &["migrate", "status"]);
        assert_eq!(String::from_utf8_lossy(&status.stdout), "No data migration is recorded.\n");
        assert_eq!(psql_ok(From::Host(&app), new_url, CHECKSUMS), before, "the data after --finish-migration");
    });
}
