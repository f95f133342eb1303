//! Phase 3 -> 4 on live hosts reshards the database into three shards by the seed's rule: the
//! seeded dataset (200 organizations over tables with `organization_id`, a reference table) ends
//! up with each organization's rows on the shard `parseInt(md5(organization_id)[0:8], 16) % 3`
//! routes it to, and only there (checked with terrace's own `route`, computed outside SQL), every
//! row present once across the shards, and the reference table whole on each; a writer inserting
//! without pause, routed by the SHARD_MAP once the hook hands the outputs over, finds every row it
//! committed on its shard; and the apply is killed with SIGKILL after every step, each time
//! continued by the next apply. The writer's longest interruption is printed, a figure.

use std::sync::atomic::Ordering;
use std::time::Duration;

use crate::dataset::{Dataset, on_their_shards, shard_urls};
use crate::lab::{self, describe};
use crate::support::{outputs, stack, state, terrace};
use crate::writer::{Writer, apply_killed_after_each_step, by_shard, seeded};

const SHARDS: usize = 3;

#[test]
fn one_database_is_resharded_into_three_by_the_seeds_rule_while_the_app_writes() {
    lab::isolated_with(lab::Options { timeout: Duration::from_secs(1800), ..lab::Options::default() }, |lab| {
        let dir = stack(lab);
        let (app, old_url) = seeded(lab, &dir, "read-replicas", "fastbots-app-0");
        let before = Dataset::read(&app, &old_url);
        assert_eq!((before.organizations.len(), before.documents.len()), (200, 2000));

        let writer = Writer { app: app.clone(), dir: dir.clone(), first_url: old_url.clone(), route: by_shard };
        let (stop, written, writing) = writer.start();
        let steps = ["prepare", "clone", "catch-up", "switchover", "split"];
        apply_killed_after_each_step(lab, &dir, "sharding", "postgres.main", &steps, |_, status| {
            assert!(status.contains("resharded by organization_id into 3 shards"), "{status}");
        });
        stop.store(true, Ordering::SeqCst);
        writing.join().expect("the writer");

        let urls = shard_urls(&outputs(lab, &dir), SHARDS);
        let written = written.lock().expect("the writer's record");
        on_their_shards(&app, &urls, &before, &written.committed);
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
