//! A sharded database on live hosts grows from two shards to three, then shrinks back to two: the
//! seeded dataset (each organization on the shard the seed's rule routes it to among two) ends up
//! with each organization's rows on the shard the rule routes it to among the new count, and only
//! there (checked with terrace's own `route`), every row once across the shards and the reference
//! table whole on each. While it grows, a writer inserts without pause, routed by the SHARD_MAP
//! the hook hands over, and the apply is killed with SIGKILL after every step, each time continued
//! by the next apply: every row it committed is on its shard. The shard that the shrink empties is
//! kept, stopped, until `--finish-migration`; before it, an id that two shards hold makes the copy
//! fail, and it is taken back with writes resumed. After each move the application inserts on
//! every shard (its ids come from the shard's own sequence, past every row that moved in). The
//! plan shows the rows per shard, counted live. The writer's longest interruption is printed.

use std::sync::atomic::Ordering;
use std::time::Duration;

use terrace::compile::shard::route;

use crate::dataset::{Dataset, app_inserts_on_every_shard, on_their_shards, shard_urls};
use crate::lab::{self, describe};
use crate::phases::with_shards;
use crate::support::{From, outputs, psql_ok, stack, state, terrace, terrace_ok};
use crate::writer::{Writer, apply_killed_after_each_step, by_shard, hand_over, rule_sql, seed};

#[test]
fn shards_grow_from_two_to_three_and_shrink_back_with_every_row_while_the_app_writes() {
    lab::isolated_with(lab::Options { timeout: Duration::from_secs(1800), ..lab::Options::default() }, |lab| {
        let dir = stack(lab);
        with_shards(&dir, 2);
        terrace_ok(lab, &dir, &["apply", "--phase", "sharding", "--auto-approve"]);
        let app = lab.wait_booted("fastbots-app-0", Duration::from_secs(60));
        let first = outputs(lab, &dir);
        let urls = shard_urls(&first, 2);
        // Each shard holds the organizations the rule routes to it among two, as an app would have
        // written them; shard 1 then numbered 50 documents more, so the shards' id sequences differ.
        for (i, url) in urls.iter().enumerate() {
            let rule = rule_sql(2);
            let keep = format!(
                "{}\nDELETE FROM documents WHERE {rule} <> {i};\nDELETE FROM organizations WHERE {rule} <> {i};",
                seed()
            );
            psql_ok(From::Host(&app), url, &keep);
        }
        psql_ok(
            From::Host(&app),
            &urls[1],
            "INSERT INTO documents (organization_id, body) \
             SELECT organization_id, 'numbered on shard 1' FROM organizations ORDER BY organization_id LIMIT 50",
        );
        let before = Dataset::across(&app, &urls);
        assert_eq!((before.organizations.len(), before.documents.len()), (200, 2050));
        on_their_shards(&app, &urls, &before, &[]);

        // The plan of 2 -> 3 counts the rows live on the two shards, as the rule of three routes them.
        with_shards(&dir, 3);
        let plan = terrace_ok(lab, &dir, &["plan", "--phase", "sharding"]);
        let counted = live_line(&before, 2, 3);
        assert!(plan.contains(&counted), "{counted}\n{plan}");

        // 2 -> 3, while the app writes; killed after each step.
        hand_over(&dir, &first);
        let writer = Writer { app: app.clone(), dir: dir.clone(), first_url: urls[0].clone(), route: by_shard };
        let (stop, written, writing) = writer.start();
        let steps = ["prepare", "pause", "copy", "prune", "switchover", "resume"];
        apply_killed_after_each_step(lab, &dir, "sharding", "postgres.shard", &steps, |_, status| {
            assert!(status.contains("rebalanced by organization_id from 2 shards"), "{status}");
        });
        // A few writes on the new shards before the writer stops.
        std::thread::sleep(Duration::from_secs(3));
        stop.store(true, Ordering::SeqCst);
        writing.join().expect("the writer");
        let urls = shard_urls(&outputs(lab, &dir), 3);
        let written = written.lock().expect("the writer's record");
        on_their_shards(&app, &urls, &before, &written.committed);
        assert!(written.committed.len() > 20, "the writer wrote through the rebalance: {}", written.committed.len());
        eprintln!(
            "day two: 2 -> 3 shards rebalanced with {} rows written during it, {} failed writes; the writer's \
             longest interruption: {:.1} s",
            written.committed.len(),
            written.failed,
            written.longest_gap.as_secs_f64()
        );
        assert_eq!(state(&dir)["migrations"]["postgres.shard"]["step"], "resume");
        let replan = terrace(lab, &dir, &["plan", "--detailed-exitcode"]);
        assert_eq!(replan.status.code(), Some(0), "{}", describe(&replan));
        app_inserts_on_every_shard(&app, &urls);

        // 3 -> 2 with an id that two shards hold: the copy fails, what was copied is taken back,
        // writes resume, and nothing moved.
        let grown = Dataset::across(&app, &urls);
        let rule = rule_sql(2);
        let id = psql_ok(From::Host(&app), &urls[2], &format!("SELECT min(id) FROM documents WHERE {rule} = 0"));
        let staying = (1..).map(|n| format!("org-{n}")).find(|o| route(o, 3) == 0 && route(o, 2) == 0).expect("one");
        let collide = format!("INSERT INTO documents (id, organization_id, body) VALUES ({id}, '{staying}', 'twice')");
        psql_ok(From::Host(&app), &urls[0], &collide);
        with_shards(&dir, 2);
        let refused = terrace(lab, &dir, &["apply", "--phase", "sharding", "--auto-approve"]);
        let said = String::from_utf8_lossy(&refused.stderr);
        assert!(!refused.status.success(), "{}", describe(&refused));
        assert!(
            said.contains("duplicate key") && said.contains("taken back and writes resumed: nothing moved"),
            "{said}"
        );
        assert_eq!(state(&dir)["migrations"]["postgres.shard"]["step"], "prepare", "the next apply pauses again");
        app_inserts_on_every_shard(&app, &urls);
        psql_ok(From::Host(&app), &urls[0], &format!("DELETE FROM documents WHERE id = {id} AND body = 'twice'"));
        assert_eq!(Dataset::across(&app, &urls), grown, "every shard holds what it held before");
        on_their_shards(&app, &urls, &grown, &[]);

        // 3 -> 2: the third shard's organizations move to the two that stay; it is kept, stopped.
        terrace_ok(lab, &dir, &["apply", "--phase", "sharding", "--auto-approve"]);
        let two = shard_urls(&outputs(lab, &dir), 2);
        on_their_shards(&app, &two, &grown, &[]);
        let recorded = state(&dir);
        assert!(recorded["resources"]["postgres.shard[2].volume.primary"].is_object(), "the emptied shard is kept");
        let status = terrace_ok(lab, &dir, &["migrate", "status"]);
        assert!(status.contains("kept until `terrace apply --finish-migration`: postgres.shard[2]."), "{status}");
        assert!(crate::support::psql(From::Host(&app), &urls[2], "SELECT 1").is_err(), "the emptied shard is stopped");
        terrace_ok(lab, &dir, &["apply", "--phase", "sharding", "--auto-approve", "--finish-migration"]);
        let recorded = state(&dir);
        let left: Vec<&String> = recorded["resources"]
            .as_object()
            .expect("resources")
            .keys()
            .filter(|a| a.starts_with("postgres.shard[2]"))
            .collect();
        assert!(left.is_empty(), "--finish-migration deletes the emptied shard: {left:?}");
        assert!(recorded["migrations"].get("postgres.shard").is_none(), "{}", recorded["migrations"]);
        on_their_shards(&app, &two, &grown, &[]);
        app_inserts_on_every_shard(&app, &two);
    });
}

/// The plan's line for `dataset` going from `before` to `after` shards, computed with Rust's
/// `route` over the organization of every row with the key (organizations and documents).
fn live_line(dataset: &Dataset, before: usize, after: usize) -> String {
    // A row's text starts with its organization (organizations) or its id then its organization.
    let field = |row: &str, at: usize| row.trim_start_matches('(').split(',').nth(at).unwrap_or_default().to_owned();
    let organizations: Vec<String> = dataset.organizations.iter().map(|r| field(r, 0)).collect();
    let keys: Vec<String> =
        organizations.iter().cloned().chain(dataset.documents.iter().map(|r| field(r, 1))).collect();
    let moves = |k: &String| route(k, before) != route(k, after);
    let moving_rows = keys.iter().filter(|k| moves(k)).count();
    let moving = organizations.iter().filter(|k| moves(k)).count();
    let per: Vec<String> = (0..after)
        .map(|shard| {
            let rows = keys.iter().filter(|k| route(k, after) == shard).count();
            let organizations = organizations.iter().filter(|k| route(k, after) == shard).count();
            format!("shard {shard}: {rows} rows of {organizations} organizations")
        })
        .collect();
    format!(
        "counted live: {} rows of {} organizations; {moving_rows} rows of {moving} organizations ({:.0}%) change \
         database; after: {}",
        keys.len(),
        organizations.len(),
        moving as f64 * 100.0 / organizations.len() as f64,
        per.join(", ")
    )
}
