//! The seeded dataset as the tests compare it: organizations and documents as sets of rows, the
//! reference table as one text; read from one database or across shards, and checked shard by
//! shard against terrace's own `route` (computed outside SQL).

use std::collections::BTreeSet;

use serde_json::Value;
use terrace::compile::shard::route;

use crate::lab::Host;
use crate::support::{From, psql_ok, text, texts};
use crate::writer::organization;

/// Rows of a query, one per line, as a set.
pub(crate) fn lines(text: &str) -> BTreeSet<String> {
    text.lines().filter(|l| !l.is_empty()).map(str::to_owned).collect()
}

/// The seeded rows, and the writer's ids.
#[derive(Debug, Default, PartialEq, Eq)]
pub(crate) struct Dataset {
    pub organizations: BTreeSet<String>,
    pub documents: BTreeSet<String>,
    /// The reference table, whole.
    pub plans: String,
    pub writes: BTreeSet<u64>,
}

impl Dataset {
    /// One database's rows, read from `app`.
    pub(crate) fn read(app: &Host, url: &str) -> Dataset {
        let query = |sql: &str| psql_ok(From::Host(app), url, sql);
        Dataset {
            organizations: lines(&query("SELECT o::text FROM organizations o")),
            documents: lines(&query("SELECT d::text FROM documents d")),
            plans: query("SELECT string_agg(p::text, ';' ORDER BY code) FROM plans p"),
            writes: query("SELECT id FROM writes").lines().filter_map(|l| l.parse().ok()).collect(),
        }
    }

    /// Every shard's rows together; the reference table must be whole and the same on each.
    pub(crate) fn across(app: &Host, urls: &[String]) -> Dataset {
        let mut all = Dataset::default();
        for (i, url) in urls.iter().enumerate() {
            let shard = Dataset::read(app, url);
            assert!(i == 0 || shard.plans == all.plans, "shard {i}'s plans: {} against {}", shard.plans, all.plans);
            all.plans = shard.plans;
            all.organizations.extend(shard.organizations);
            all.documents.extend(shard.documents);
            all.writes.extend(shard.writes);
        }
        all
    }
}

/// Checks that each organization's rows (seeded and written) are on the shard the rule routes it
/// to and only there, that the shards hold `expected` together with no row twice, and that no
/// row the writer `committed` is missing. Prints what each shard holds.
pub(crate) fn on_their_shards(app: &Host, urls: &[String], expected: &Dataset, committed: &[u64]) {
    let count = urls.len();
    let mut total = (0, 0, 0);
    for (i, url) in urls.iter().enumerate() {
        let shard = Dataset::read(app, url);
        for (table, column) in [("organizations", "organization_id"), ("documents", "organization_id")] {
            let keys = lines(&psql_ok(From::Host(app), url, &format!("SELECT DISTINCT {column} FROM {table}")));
            let strays: Vec<&String> = keys.iter().filter(|k| route(k, count) != i).collect();
            assert!(
                strays.is_empty(),
                "shard {i} of {count}'s {table} holds organizations of other shards: {strays:?}"
            );
        }
        assert!(
            shard.writes.iter().all(|id| route(&organization(*id), count) == i),
            "shard {i} holds writes of others"
        );
        assert_eq!(shard.plans, expected.plans, "shard {i}'s reference table");
        eprintln!(
            "day two: shard {i} of {count} holds {} organizations, {} documents, {} writes",
            shard.organizations.len(),
            shard.documents.len(),
            shard.writes.len()
        );
        total = (total.0 + shard.organizations.len(), total.1 + shard.documents.len(), total.2 + shard.writes.len());
    }
    let all = Dataset::across(app, urls);
    assert_eq!(total, (all.organizations.len(), all.documents.len(), all.writes.len()), "a row on two shards");
    assert_eq!(all.organizations, expected.organizations, "every organization once, across the shards");
    assert_eq!(all.documents, expected.documents, "every document once, across the shards");
    let lost: Vec<&u64> = committed.iter().filter(|id| !all.writes.contains(id)).collect();
    assert!(lost.is_empty(), "committed rows lost: {lost:?}");
    assert!(expected.writes.iter().all(|id| all.writes.contains(id)), "rows written before are lost");
}

/// Checks that an app routing by the SHARD_MAP reaches, for shard i, SHARD_DATABASE_URLS[i]; returns
/// the URLs.
pub(crate) fn shard_urls(outputs: &serde_json::Map<String, Value>, count: usize) -> Vec<String> {
    let urls = texts(outputs, "SHARD_DATABASE_URLS");
    assert_eq!(urls.len(), count);
    let map: Value = serde_json::from_str(text(outputs, "SHARD_MAP")).expect("the shard map is JSON");
    assert_eq!(map["count"], count, "{map}");
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
    urls
}

/// The application can write on every shard: 50 new documents of an organization routed to each,
/// numbered by the shard's own sequence, go in without taking an id a row already has. The
/// probe's transaction is rolled back: it leaves no row (ids a serial hands out on two shards are
/// not unique across them, which a later move of rows would trip over).
pub(crate) fn app_inserts_on_every_shard(app: &Host, urls: &[String]) {
    for (i, url) in urls.iter().enumerate() {
        let organization = (1..).map(|n| format!("org-{n}")).find(|o| route(o, urls.len()) == i).expect("one");
        let insert = format!(
            "BEGIN; INSERT INTO documents (organization_id, body) SELECT '{organization}', 'after the move' \
             FROM generate_series(1, 50); ROLLBACK;"
        );
        crate::support::psql(From::Host(app), url, &insert)
            .unwrap_or_else(|e| panic!("the app cannot insert on shard {i} of {}: {e}", urls.len()));
    }
}
