//! A rebalance carried out over SSH (`crate::migrate` plans it): N shards into M. Each step runs
//! on the shards, and each finished step is recorded before the next starts, so an apply killed
//! at any point is continued by the next. Writes pause from `pause` to `resume`; a copy that fails
//! takes back what it copied and resumes writes, so nothing is lost and nothing is left twice.

use std::collections::BTreeMap;

use terrace_providers::host::Session;

use super::exec::{Context, poisoned};
use super::migrate::{checked, count_routed, done, facts, keyed, note, save};
use super::recorded::{self, Reached};
use crate::addr::Address;
use crate::migrate::commands::bytes;
use crate::migrate::commands::stop_source;
use crate::migrate::shards::{self, Source};
use crate::migrate::{Migration, Record, Step};

/// A shard of the old or the new count, reached.
struct Shard {
    reached: Reached,
    ip: String,
    /// Its replication role's password (the other shards read it with it).
    password: String,
    /// Its backup timers, stopped when the shard is kept.
    timers: Vec<String>,
}

/// What a run needs from the state, read once.
struct Parts {
    record: Record,
    /// By host: each distinct shard, old or new.
    shards: BTreeMap<Address, Shard>,
    sessions: BTreeMap<Address, Session>,
    database: String,
    key: String,
    version: u32,
}

impl Parts {
    fn session(&self, host: &Address) -> Result<&Session, String> {
        self.sessions.get(host).ok_or_else(|| format!("`{host}` is not reached"))
    }

    fn shard(&self, host: &Address) -> Result<&Shard, String> {
        self.shards.get(host).ok_or_else(|| format!("`{host}` is not recorded"))
    }
}

pub(super) async fn run(context: &Context, migration: &Migration) -> Result<(), String> {
    let service = &migration.service;
    let mut parts = parts(context, migration)?;
    let deadline = tokio::time::Instant::now() + context.services.hosts.connect;
    for (host, shard) in &parts.shards {
        let session = recorded::connect(&shard.reached, deadline)
            .await
            .map_err(|e| format!("`{service}`: the shard `{host}` cannot be reached: {e}"))?;
        parts.sessions.insert(host.clone(), session);
    }
    let mut record = parts.record.clone();
    for step in Step::after(record.steps(), record.step) {
        note(context, service, format!("step {step}"));
        match step {
            Step::Prepare => prepare(context, migration, &parts).await?,
            Step::Pause => {
                for host in parts.shards.keys() {
                    checked(parts.session(host)?, &format!("pause writes on `{host}`"), shards::pause()).await?;
                }
                note(context, service, "writes paused: every shard is read-only".to_owned());
            }
            Step::Copy => {
                let copied = match open(migration, &parts).await {
                    Ok(()) => copy(context, migration, &parts).await,
                    Err(e) => Err(e),
                };
                if let Err(why) = copied {
                    return Err(take_back(context, migration, &parts, &mut record, why).await);
                }
            }
            Step::Prune => {
                let staying = migration.from_shards.len().min(migration.to.len());
                for (index, shard) in migration.to.iter().take(staying).enumerate() {
                    let what = format!("keep on shard {index} only its organizations");
                    let prune = shards::prune(&parts.database, &parts.key, index, migration.to.len());
                    checked(parts.session(&shard.host)?, &what, prune).await.map_err(|e| paused(service, e))?;
                }
            }
            Step::Switchover => {
                for shard in &migration.from_shards {
                    let what = format!("close `{}` to the other shards", shard.service);
                    checked(parts.session(&shard.host)?, &what, shards::close())
                        .await
                        .map_err(|e| paused(service, e))?;
                }
                for gone in migration.from_shards.iter().skip(migration.to.len()) {
                    let shard = parts.shard(&gone.host)?;
                    let stop = stop_source(parts.version, &shard.timers);
                    checked(parts.session(&gone.host)?, &format!("stop `{}`", gone.service), stop)
                        .await
                        .map_err(|e| paused(service, e))?;
                }
            }
            Step::Resume => {
                for shard in &migration.to {
                    let what = format!("resume writes on `{}`", shard.service);
                    checked(parts.session(&shard.host)?, &what, shards::resume()).await?;
                }
                note(context, service, "writes resumed on the shards of the new count".to_owned());
            }
            Step::Clone | Step::CatchUp | Step::Split => {
                return Err(format!("`{service}`: step {step} is not one of a rebalance"));
            }
        }
        done(context, migration, &mut record, step).await?;
    }
    for (_, session) in std::mem::take(&mut parts.sessions) {
        session.close().await;
    }
    Ok(())
}

/// A failure while writes are paused: they stay paused, since rows may be on two shards.
fn paused(service: &Address, error: String) -> String {
    format!("`{service}`: {error}; writes stay paused, and the next `terrace apply` continues from here")
}

/// The record, the shards (how to reach them, their private addresses, passwords and timers), the
/// database and key.
fn parts(context: &Context, migration: &Migration) -> Result<Parts, String> {
    let service = &migration.service;
    let recorder = context.recorder.lock().map_err(poisoned)?;
    let state = &recorder.state;
    let within = |e: String| format!("`{service}`: {e}");
    let record = Record::of(state, service)?.ok_or_else(|| within("the rebalance is not recorded".into()))?;
    let key = migration.shard_key.clone().ok_or_else(|| within("a rebalance needs a shard key".into()))?;
    let mut shards = BTreeMap::new();
    let mut version = None;
    for shard in migration.from_shards.iter().chain(&migration.to) {
        if shards.contains_key(&shard.host) {
            continue;
        }
        let host = recorded::host(state, &shard.host).map_err(within)?;
        version = version.or(recorded::version(host));
        let ip = recorded::private_ip(state, shard.server.as_ref()).ok_or_else(|| {
            within(format!(
                "`{}` has no private address: the shards copy rows over the private network (nothing was changed)",
                shard.host
            ))
        })?;
        let password = recorded::replication_password(state, &shard.service).map_err(within)?;
        let reached = recorded::reached(state, &shard.host).map_err(within)?;
        shards.insert(shard.host.clone(), Shard { reached, ip, password, timers: recorded::timers(host) });
    }
    let database = migration.to.first().map(|t| recorded::database(context.compiled(), &t.service)).unwrap_or_default();
    Ok(Parts { record, shards, sessions: BTreeMap::new(), database, key, version: version.unwrap_or(16) })
}

/// Checks every shard: the same major version everywhere; tables with the key; every row on the shard the old rule routes it to (a
/// row elsewhere would be taken for a copy and deleted); room on each shard for what comes in.
async fn prepare(context: &Context, migration: &Migration, parts: &Parts) -> Result<(), String> {
    let service = &migration.service;
    let (before, after) = (migration.from_shards.len(), migration.to.len());
    let (database, key) = (&parts.database, &parts.key);
    let mut facts_of = BTreeMap::new();
    for host in parts.shards.keys() {
        facts_of.insert(host.clone(), facts(parts.session(host)?, &format!("the database on `{host}`")).await?);
    }
    let majors: std::collections::BTreeSet<u32> = facts_of.values().map(|f| f.major()).collect();
    if majors.len() > 1 {
        return Err(format!(
            "`{service}`: the shards run PostgreSQL {majors:?}: rows move between the same major version only \
             (nothing was changed)"
        ));
    }
    // Rows by the shard of the new count they go to, and the bytes that come in to each.
    let mut incoming = vec![0f64; after];
    let mut rows_after = vec![0u64; after];
    let mut moving = 0u64;
    for (index, shard) in migration.from_shards.iter().enumerate() {
        let new = count_routed(parts.session(&shard.host)?, service, database, key, before, after).await?;
        keyed(service, database, key, &new)?;
        let strays = new.strays(index);
        if strays > 0 {
            return Err(format!(
                "`{service}`: `{}` (shard {index}) holds {strays} rows that the rule of {before} shards routes to \
                 other shards; terrace cannot tell copies from originals, so it moves nothing (nothing was changed)",
                shard.service
            ));
        }
        let total: u64 = new.rows.iter().sum();
        let size = facts_of.get(&shard.host).map_or(0, |f| f.bytes) as f64;
        for (to, rows) in new.rows.iter().enumerate() {
            rows_after[to] += rows;
            if to != index {
                moving += rows;
                incoming[to] += size * *rows as f64 / total.max(1) as f64;
            }
        }
    }
    for (to, shard) in migration.to.iter().enumerate() {
        let Some(room) = facts_of.get(&shard.host).map(|f| f.available) else { continue };
        let need = (incoming[to] * 1.1) as u64;
        if room < need {
            return Err(format!(
                "`{service}`: the volume of `{}` has {} free, and the rows that move to it take about {}: raise \
                 storage_gb (nothing was changed)",
                shard.host,
                bytes(room),
                bytes(need)
            ));
        }
    }
    let per: Vec<String> = rows_after.iter().enumerate().map(|(i, n)| format!("shard {i}: {n}")).collect();
    let total: u64 = rows_after.iter().sum();
    note(
        context,
        service,
        format!("{moving} of {total} rows with `{key}` move; after the rebalance, {}", per.join(", ")),
    );
    Ok(())
}

/// Each shard of the old count lets the shards of the new count read its database. Again at
/// each run of the copy: the convergence of an apply puts pg_hba.conf back as terrace wrote it.
async fn open(migration: &Migration, parts: &Parts) -> Result<(), String> {
    let database = &parts.database;
    for (index, shard) in migration.from_shards.iter().enumerate() {
        let readers: Vec<String> = migration
            .to
            .iter()
            .enumerate()
            .filter(|(to, _)| *to != index)
            .map(|(_, t)| parts.shard(&t.host).map(|s| s.ip.clone()))
            .collect::<Result<_, _>>()?;
        let password = &parts.shard(&shard.host)?.password;
        let open = shards::open(database, &readers, password);
        checked(parts.session(&shard.host)?, &format!("let the shards read `{}`", shard.service), open).await?;
    }
    Ok(())
}

/// Each shard of the new count copies in, in one transaction, what is routed to it from the
/// shards of the old count.
async fn copy(context: &Context, migration: &Migration, parts: &Parts) -> Result<(), String> {
    let (before, after) = (migration.from_shards.len(), migration.to.len());
    for (index, shard) in migration.to.iter().enumerate() {
        let sources: Vec<Source> = migration
            .from_shards
            .iter()
            .enumerate()
            .filter(|(from, _)| *from != index)
            .map(|(_, s)| parts.shard(&s.host).map(|s| Source { ip: s.ip.clone(), password: s.password.clone() }))
            .collect::<Result<_, _>>()?;
        let sources: Vec<&Source> = sources.iter().collect();
        let copy = shards::copy(parts.version, &parts.database, &parts.key, index, before, after, &sources);
        checked(parts.session(&shard.host)?, &format!("copy into shard {index} its organizations"), copy).await?;
        note(context, &migration.service, format!("shard {index} has the rows routed to it"));
    }
    Ok(())
}

/// After a failed copy: each shard of the new count deletes what it copied in (the rows the old
/// rule does not route to it), and writes resume on every shard; the record goes back to
/// `prepare`, so the next apply pauses writes again before it copies.
async fn take_back(
    context: &Context,
    migration: &Migration,
    parts: &Parts,
    record: &mut Record,
    why: String,
) -> String {
    let service = &migration.service;
    let before = migration.from_shards.len();
    for (index, shard) in migration.to.iter().enumerate() {
        let undo = shards::prune(&parts.database, &parts.key, index, before);
        let result = match parts.session(&shard.host) {
            Ok(session) => checked(session, &format!("take back what shard {index} copied"), undo).await,
            Err(e) => Err(e),
        };
        if let Err(also) = result {
            return paused(service, format!("{why}; and what was copied could not be taken back: {also}"));
        }
    }
    for shard in &migration.from_shards {
        if let Ok(session) = parts.session(&shard.host) {
            let _ = checked(session, "close the shard to the others", shards::close()).await;
        }
    }
    for (host, session) in &parts.sessions {
        if let Err(also) = checked(session, &format!("resume writes on `{host}`"), shards::resume()).await {
            return format!("`{service}`: {why}; what was copied was taken back, but writes could not resume: {also}");
        }
    }
    record.step = Some(Step::Prepare);
    if let Err(also) = save(context, service, record) {
        return format!("`{service}`: {why}; writes resumed, but the state could not record it: {also}");
    }
    format!("`{service}`: {why}; what was copied was taken back and writes resumed: nothing moved")
}
