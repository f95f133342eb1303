//! Phase 3 -> 4 on live hosts reshards the database into three shards by the seed's rule: the
//! seeded dataset (200 organizations over tables with `organization_id`, a reference table) ends
//! up with each organization's rows on the shard `parseInt(md5(organization_id)[0:8], 16) % 3`
//! routes it to, and only there (checked with terrace's own `route`, computed outside SQL), every
//! row present once across the shards, and the reference table whole on each; a writer inserting
//! without pause, routed by the SHARD_MAP once the hook hands the outputs over, finds every row it
//! committed on its shard; and the apply is killed with SIGKILL after every step, each time
//! continued by the next apply. The writer's longest interruption is printed, a figure.

use std::collections::BTreeSet;
use std::sync::atomic::Ordering;
use std::time::Duration;

use serde_json::Value;
use terrace::compile::shard::route;

use crate::lab::{self, describe};
use crate::support::{From, outputs, psql_ok, stack, state, terrace, text, texts};
use crate::writer::{Writer, apply_killed_after_each_step, organization, seeded};

const SHARDS: usize = 3;

/// The old DATABASE_URL until the hook hands over the shards; then the shard of the row's
/// organization.
fn by_shard(outputs: Option<&Value>, id: u64) -> Option<String> {
    let urls = outputs?["SHARD_DATABASE_URLS"].as_array()?;
    urls.get(route(&organization(id), urls.len()))?.as_str().map(str::to_owned)
}

/// Rows of a query, one per line, as a set.
fn lines(text: &str) -> BTreeSet<String> {
    text.lines().filter(|l| !l.is_empty()).map(str::to_owned).collect()
}

#[test]
fn one_database_is_resharded_into_three_by_the_seeds_rule_while_the_app_writes() {
    lab::isolated_with(lab::Options { timeout: Duration::from_secs(1800), ..lab::Options::default() }, |lab| {
        let dir = stack(lab);
        let (app, old_url) = seeded(lab, &dir, "read-replicas", "fastbots-app-0");
        let organizations = lines(&psql_ok(From::Host(&app), &old_url, "SELECT o::text FROM organizations o"));
        let documents = lines(&psql_ok(From::Host(&app), &old_url, "SELECT d::text FROM documents d"));
        let plans = psql_ok(From::Host(&app), &old_url, "SELECT string_agg(p::text, ';' ORDER BY code) FROM plans p");
        assert_eq!((organizations.len(), documents.len()), (200, 2000));

        let writer = Writer { app: app.clone(), dir: dir.clone(), first_url: old_url.clone(), route: by_shard };
        let (stop, written, writing) = writer.start();
        let steps = ["prepare", "clone", "catch-up", "switchover", "split"];
        apply_killed_after_each_step(lab, &dir, "sharding", "postgres.main", &steps, |_, status| {
            assert!(status.contains("resharded by organization_id into 3 shards"), "{status}");
        });
        stop.store(true, Ordering::SeqCst);
        writing.join().expect("the writer");

        let outputs = outputs(lab, &dir);
        let urls = texts(&outputs, "SHARD_DATABASE_URLS");
        assert_eq!(urls.len(), SHARDS);
        // An app that routes by the SHARD_MAP reaches, for shard i, the URL checked below as shard i.
        let map: Value = serde_json::from_str(text(&outputs, "SHARD_MAP")).expect("the shard map is JSON");
        assert_eq!(map["count"], SHARDS, "{map}");
        for (i, url) in urls.iter().enumerate() {
            let shard = &map["shards"][i];
            assert_eq!(shard["index"], i, "{map}");
            let at = format!(
                "@{}:{}/{}",
                shard["host"].as_str().expect("a host"),
                shard["port"],
                shard["database"].as_str().expect("a database")
            );
            assert!(url.contains(&at), "shard {i} of the map ({at}) is not SHARD_DATABASE_URLS[{i}]");
        }
        let written = written.lock().expect("the writer's record");
        let (mut all_organizations, mut all_documents, mut all_writes) = (BTreeSet::new(), BTreeSet::new(), Vec::new());
        for (i, url) in urls.iter().enumerate() {
            let query = |sql: &str| psql_ok(From::Host(&app), url, sql);
            // Each organization's rows are on its shard, and only there.
            for (table, column) in [("organizations", "organization_id"), ("documents", "organization_id")] {
                let keys = lines(&query(&format!("SELECT DISTINCT {column} FROM {table}")));
                let strays: Vec<&String> = keys.iter().filter(|k| route(k, SHARDS) != i).collect();
                assert!(strays.is_empty(), "shard {i}'s {table} holds organizations of other shards: {strays:?}");
            }
            let mine = lines(&query("SELECT o::text FROM organizations o"));
            let count = mine.len();
            all_organizations.extend(mine);
            let docs = lines(&query("SELECT d::text FROM documents d"));
            let before = all_documents.len();
            let shard_documents = docs.len();
            all_documents.extend(docs);
            assert_eq!(all_documents.len(), before + shard_documents, "a document on two shards");
            // The reference table, whole on every shard.
            assert_eq!(query("SELECT string_agg(p::text, ';' ORDER BY code) FROM plans p"), plans, "shard {i}'s plans");
            // The writer's rows: those of its organizations.
            let ids: Vec<u64> = query("SELECT id FROM writes").lines().filter_map(|l| l.parse().ok()).collect();
            assert!(ids.iter().all(|id| route(&organization(*id), SHARDS) == i), "shard {i} holds writes of others");
            eprintln!(
                "day two: shard {i} holds {count} organizations, {shard_documents} documents, {} writes",
                ids.len()
            );
            all_writes.extend(ids);
        }
        assert_eq!(all_organizations, organizations, "every organization once, across the shards");
        assert_eq!(all_documents, documents, "every document once, across the shards");
        let present: BTreeSet<u64> = all_writes.iter().copied().collect();
        assert_eq!(present.len(), all_writes.len(), "a write on two shards");
        let lost: Vec<&u64> = written.committed.iter().filter(|id| !present.contains(id)).collect();
        assert!(lost.is_empty(), "committed rows lost in the reshard: {lost:?}");
        assert!(written.committed.len() > 20, "the writer wrote through the reshard: {}", written.committed.len());
        eprintln!(
            "day two: 3 -> 4 resharded the database with {} rows written during it, {} failed writes; the writer's \
             longest interruption: {:.1} s",
            written.committed.len(),
            written.failed,
            written.longest_gap.as_secs_f64()
        );
        assert_eq!(state(&dir)["migrations"]["postgres.main"]["step"], "split");
        let replan = terrace(lab, &dir, &["plan", "--detailed-exitcode"]);
        assert_eq!(replan.status.code(), Some(0), "{}", describe(&replan));
    });
}
