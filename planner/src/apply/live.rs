//! Live counts for the plan: a reshard's or a rebalance's rows and organizations, counted over SSH
//! on the old database(s) with the rule of the new shard count, while the rows have not moved
//! yet. What cannot be reached is a note; the plan then shows the migration without counts.

use std::time::Duration;

use terrace_state::State;

use super::recorded;
use crate::addr::Address;
use crate::migrate::commands::{Routed, routed_rows};
use crate::migrate::{Live, Migration, Motion, Step};
use crate::model::Compiled;

/// Counts, on each migration that has not moved rows yet, what each new shard will hold.
pub async fn count_live(
    state: &State,
    compiled: &Compiled,
    migrations: &mut [Migration],
    connect: Duration,
) -> Vec<String> {
    let mut notes = Vec::new();
    for migration in migrations.iter_mut().filter(|m| m.runs()) {
        let Some(key) = migration.shard_key.clone() else { continue };
        let moved = match migration.motion {
            Motion::Reshard => Step::Split,
            Motion::Rebalance => Step::Copy,
            Motion::Move => continue,
        };
        if migration.steps.iter().any(|s| s.step == moved && s.done) {
            continue;
        }
        let database = migration.to.first().map(|t| recorded::database(Some(compiled), &t.service)).unwrap_or_default();
        let sources: Vec<Address> = match migration.motion {
            Motion::Rebalance => migration.from_shards.iter().map(|s| s.host.clone()).collect(),
            _ => vec![migration.from.clone()],
        };
        let mut counts = Vec::new();
        for host in &sources {
            match count(state, host, &database, &key, (sources.len(), migration.to.len()), connect).await {
                Ok(routed) => counts.push(routed),
                Err(error) => {
                    notes.push(format!("`{}`: the rows were not counted on `{host}`: {error}", migration.service));
                    break;
                }
            }
        }
        if counts.len() == sources.len() {
            migration.live = Some(Live::from_counts(&counts, migration.motion));
        }
    }
    notes
}

async fn count(
    state: &State,
    host: &Address,
    database: &str,
    key: &str,
    (before, after): (usize, usize),
    connect: Duration,
) -> Result<Routed, String> {
    let session = recorded::connect(&recorded::reached(state, host)?, tokio::time::Instant::now() + connect).await?;
    let command = routed_rows(database, key, before, after);
    let out =
        session.check(&command.shell, command.stdin.as_deref().map(str::as_bytes)).await.map_err(|e| e.to_string());
    session.close().await;
    Routed::parse(&String::from_utf8_lossy(&out?), before, after)
}
