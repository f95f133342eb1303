//! What the plan can check of a migration's two ends before anything changes, so that an apply it
//! refuses does not even make the new servers: the major versions, from the state against the
//! phase, and the old database's live version and size, read over SSH by the plan, against the
//! phase's new servers. `prepare` checks the live ends again (`apply::migrate`). Pure functions.

use terrace_state::State;

use super::commands::Facts;
use super::{Migration, Motion, Step};
use crate::addr::Address;
use crate::kind::Kind;
use crate::model::Compiled;
use crate::value::Value;

/// A streaming copy also needs room to grow while it catches up: a tenth more than the data.
pub fn needed(bytes: u64) -> u64 {
    bytes + bytes / 10
}

/// Whether the migration is yet to check its ends: it runs, and its `prepare` is not done.
pub fn unprepared(migration: &Migration) -> bool {
    migration.runs() && !migration.steps.iter().any(|s| s.step == Step::Prepare && s.done)
}

/// The hosts the data comes from: a rebalance's old shards, or the one old host.
pub fn sources(migration: &Migration) -> Vec<Address> {
    match migration.motion {
        Motion::Rebalance => migration.from_shards.iter().map(|s| s.host.clone()).collect(),
        Motion::Move | Motion::Reshard => vec![migration.from.clone()],
    }
}

/// The major version a recorded host runs, as terrace made it.
pub fn recorded_version(prior: &State, host: &Address) -> Option<u32> {
    let attributes = &prior.resources.get(&host.to_string())?.attributes;
    attributes.get("version").and_then(serde_json::Value::as_u64).and_then(|v| u32::try_from(v).ok())
}

/// The major version the phase declares for a new host.
fn declared_version(desired: &Compiled, host: &Address) -> Option<u32> {
    let resource = desired.resource(host)?;
    resource.attr("version").and_then(Value::as_u64).and_then(|v| u32::try_from(v).ok())
}

/// Each new host with the version the phase declares for it, where it differs from `running`.
fn mismatches(desired: &Compiled, migration: &Migration, running: u32) -> Vec<(Address, u32)> {
    migration
        .to
        .iter()
        .filter_map(|t| declared_version(desired, &t.host).map(|v| (t.host.clone(), v)))
        .filter(|(_, declared)| *declared != running)
        .collect()
}

fn version_refusal(migration: &Migration, source: &Address, running: &str, to: &[(Address, u32)]) -> String {
    let named: Vec<String> = to.iter().map(|(host, v)| format!("`{host}` {v}")).collect();
    format!(
        "`{}`: the old database on `{source}` runs PostgreSQL {running}, and this phase declares {}: a streaming \
         copy needs the same major version. Keep the service's `version` for the move, and upgrade in a phase of \
         its own (nothing was changed)",
        migration.service,
        named.join(", ")
    )
}

/// The versions of a migration's ends that the state and the phase tell apart: the old hosts as
/// recorded, the new ones as declared.
pub fn versions(desired: &Compiled, prior: &State, migration: &Migration) -> Vec<String> {
    if !unprepared(migration) {
        return Vec::new();
    }
    let mut refusals = Vec::new();
    for source in sources(migration) {
        let Some(running) = recorded_version(prior, &source) else { continue };
        let to = mismatches(desired, migration, running);
        if !to.is_empty() {
            refusals.push(version_refusal(migration, &source, &format!("{running} (as recorded)"), &to));
            // One refusal says it for a rebalance's every old shard.
            break;
        }
    }
    refusals
}

/// The private network the copy goes over: every new server must be on one the old server is on
/// (a private network is in one network zone). A copy across zones, over the public internet
/// with TLS, is not carried (docs/migrations.md), so it is refused before anything is made.
pub fn networks(desired: &Compiled, prior: &State, migration: &Migration) -> Vec<String> {
    if !unprepared(migration) {
        return Vec::new();
    }
    let sources: Vec<&Address> = match migration.motion {
        Motion::Rebalance => migration.from_shards.iter().filter_map(|s| s.server.as_ref()).collect(),
        Motion::Move | Motion::Reshard => migration.from_server.iter().collect(),
    };
    let mut refusals = Vec::new();
    for source in sources {
        // The old server's network after this apply: the phase's, where it keeps the server (the
        // app server joins the network in 1 -> 2), else the one it was recorded on.
        let network = match desired.resource(source) {
            Some(server) => server.ref_attr("network").cloned(),
            None => prior.resources.get(&source.to_string()).and_then(|r| {
                r.dependencies.iter().filter_map(|d| d.parse::<Address>().ok()).find(|d| d.kind() == Kind::Network)
            }),
        };
        for target in &migration.to {
            let Some(server) = target.server.as_ref().and_then(|s| desired.resource(s)) else { continue };
            if network.is_none() || server.ref_attr("network") != network.as_ref() {
                refusals.push(format!(
                    "`{}`: the new server `{}` is not on a private network of the old server `{source}`: terrace \
                     copies a database over a private network only (a network is in one zone; a copy across zones \
                     over TLS is not carried). Put both servers on one network, in locations of its zone (nothing \
                     was changed)",
                    migration.service, server.address
                ));
            }
        }
    }
    refusals
}

/// The checks of an old database's live facts, read by the plan: its major version against the
/// new hosts' (unless the state already said the same, `versions`), and for a move or a reshard,
/// whose every new server takes a full copy, its size against the new volumes.
pub fn live(desired: &Compiled, prior: &State, migration: &Migration, source: &Address, facts: &Facts) -> Vec<String> {
    let mut refusals = Vec::new();
    let running = facts.major();
    let to = mismatches(desired, migration, running);
    if !to.is_empty() && recorded_version(prior, source) != Some(running) {
        let said = format!("{running} (read live)");
        refusals.push(version_refusal(migration, source, &said, &to));
    }
    if migration.motion == Motion::Rebalance {
        return refusals;
    }
    for target in &migration.to {
        let Some(gb) =
            desired.composite(&target.service).and_then(|c| c.attrs.get("storage_gb")).and_then(Value::as_u64)
        else {
            continue;
        };
        // Hetzner sizes volumes in GB; the file system takes a little of it, which `prepare`
        // sees in the live free space.
        if gb.saturating_mul(1_000_000_000) < needed(facts.bytes) {
            refusals.push(format!(
                "`{}`: the old database on `{source}` holds {} (read live), and `{}` gets a volume of {gb} GB, with \
                 room for the copy and its growth needed: raise `storage_gb` to at least {} (nothing was changed)",
                migration.service,
                super::commands::bytes(facts.bytes),
                target.host,
                needed(facts.bytes).div_ceil(1_000_000_000)
            ));
        }
    }
    refusals
}
