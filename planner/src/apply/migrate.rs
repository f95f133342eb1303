//! A data migration carried out over SSH (`crate::migrate` plans it): the steps run on the old
//! server (the source) and the new one (the target) in order; each finished step is recorded in the
//! state's `migrations` before the next starts, and every step is safe to run again, so an apply
//! killed at any point is continued by the next. Nothing is deleted here: the old database stays,
//! stopped and read-only, until `--finish-migration`.

use std::time::Duration;

use serde_json::Value as Json;
use terrace_providers::host::Session;

use super::exec::{Context, Event, poisoned};
use super::host::masked;
use super::recorded::{self, Reached};
use crate::addr::Address;
use crate::migrate::commands::{self, Ends, Facts, Routed, bytes};
use crate::migrate::{Migration, Motion, Record, Step};
use crate::services::converge::Command;

/// The copy is caught up when it is less than this many bytes of WAL behind.
const CAUGHT_UP_BYTES: i64 = 1 << 20;
/// How long `migrate status` waits for the old server to answer.
const LAG_WAIT: Duration = Duration::from_secs(15);
/// How long the target may take to replay the source's last checkpoint once the source stopped.
const REPLAY_WAIT: Duration = Duration::from_secs(60);

/// Carries `migration` out from its recorded step on.
pub(super) async fn run(context: &Context, migration: &Migration) -> Result<(), String> {
    let result = match migration.motion {
        Motion::Rebalance => super::rebalance::run(context, migration).await,
        Motion::Move | Motion::Reshard => run_steps(context, migration).await,
    };
    result.map_err(|error| masked(context, &error))
}

/// What a run needs from the state, read once.
struct Parts {
    record: Record,
    source: Reached,
    /// Each new primary: how to reach it, and what its scripts need to know.
    targets: Vec<(Reached, Ends)>,
    password: String,
    timers: Vec<String>,
    version: u32,
}

async fn run_steps(context: &Context, migration: &Migration) -> Result<(), String> {
    let service = &migration.service;
    let parts = parts(context, migration)?;
    let deadline = || tokio::time::Instant::now() + context.services.hosts.connect;
    let source = recorded::connect(&parts.source, deadline())
        .await
        .map_err(|e| format!("`{service}`: the old database's server cannot be reached: {e}"))?;
    let mut targets = Vec::new();
    for ((reached, ends), planned) in parts.targets.iter().zip(&migration.to) {
        let session = recorded::connect(reached, deadline())
            .await
            .map_err(|e| format!("`{service}`: the new server `{}` cannot be reached: {e}", planned.host))?;
        targets.push((session, ends));
    }
    let mut record = parts.record.clone();
    for step in Step::after(record.steps(), record.step) {
        note(context, service, format!("step {step}"));
        match step {
            Step::Prepare => prepare(context, migration, &parts, &source, &targets).await?,
            Step::Clone => {
                for (target, ends) in &targets {
                    let what = format!("copy the old database to {}", ends.target_ip);
                    checked(target, &what, commands::clone(ends, &parts.password)).await?;
                }
            }
            Step::CatchUp => catch_up(context, service, &source, &targets).await?,
            Step::Switchover => switchover(context, service, &parts, &source, &targets).await?,
            Step::Split => split(context, migration, &targets).await?,
            Step::Pause | Step::Copy | Step::Prune | Step::Resume => {
                return Err(format!("`{service}`: step {step} is not one of a move or a reshard"));
            }
        }
        done(context, migration, &mut record, step).await?;
    }
    source.close().await;
    for (target, _) in targets {
        target.close().await;
    }
    Ok(())
}

/// Checks both ends (same major version, room for a full copy on every new server, and for a
/// reshard, tables with the shard key), then lets every new server replicate from the source.
async fn prepare(
    context: &Context,
    migration: &Migration,
    parts: &Parts,
    source: &Session,
    targets: &[(Session, &Ends)],
) -> Result<(), String> {
    let service = &migration.service;
    // Unread, an end is refused like a bad one: nothing was changed yet.
    let unread = |what: String| {
        move |error: String| format!("`{service}`: {what} cannot be read (nothing was changed): {error}")
    };
    let old =
        facts(source, "the old database").await.map_err(unread(format!("the old database on `{}`", migration.from)))?;
    for ((target, _), planned) in targets.iter().zip(&migration.to) {
        let new = facts(target, "the new database")
            .await
            .map_err(unread(format!("the new database on `{}`", planned.host)))?;
        if old.major() != new.major() {
            return Err(format!(
                "`{service}`: the old database runs PostgreSQL {} and `{}` {}: a streaming copy needs the same major \
                 version (nothing was changed)",
                old.major(),
                planned.host,
                new.major()
            ));
        }
        // The copy needs all the data and room to grow while it catches up.
        if new.available < crate::migrate::checks::needed(old.bytes) {
            return Err(format!(
                "`{service}`: the volume of `{}` has {} free, and the old database takes {}: raise storage_gb \
                 (nothing was changed)",
                planned.host,
                bytes(new.available),
                bytes(old.bytes)
            ));
        }
    }
    if let (Some(key), Some((_, ends))) = (&migration.shard_key, targets.first()) {
        let count = targets.len();
        let routed = count_routed(source, service, &ends.database, key, 1, count).await?;
        keyed(service, &ends.database, key, &routed)?;
        let Routed { tables, keyed, rows, .. } = routed;
        let total: u64 = rows.iter().sum();
        let per: Vec<String> = rows.iter().enumerate().map(|(i, n)| format!("shard {i}: {n}")).collect();
        note(
            context,
            service,
            format!(
                "{keyed} of {tables} tables carry `{key}`, {total} rows: {}; the other tables are reference tables, \
                 copied whole",
                per.join(", ")
            ),
        );
    }
    for (_, ends) in targets {
        checked(source, "prepare the old database", commands::prepare(ends, &parts.password)).await?;
    }
    Ok(())
}

/// The rows of `database` on a source, counted by the shard the rule of `before` shards and that of
/// `after` route them to (`commands::routed_rows`).
pub(super) async fn count_routed(
    source: &Session,
    service: &Address,
    database: &str,
    key: &str,
    before: usize,
    after: usize,
) -> Result<Routed, String> {
    let out = checked(source, "count the rows per shard", commands::routed_rows(database, key, before, after))
        .await
        .map_err(|e| format!("`{service}`: the old database has no database `{database}` to move: {e}"))?;
    Routed::parse(&out, before, after)
}

/// Refuses a database with tables but none with the shard key: there is nothing to route by.
pub(super) fn keyed(service: &Address, database: &str, key: &str, routed: &Routed) -> Result<(), String> {
    if routed.keyed == 0 && routed.tables > 0 {
        return Err(format!(
            "`{service}`: none of the {} tables of the database `{database}` has the shard key column `{key}`: \
             there is nothing to route by (nothing was changed)",
            routed.tables
        ));
    }
    Ok(())
}

/// The record, how to reach the hosts, their private addresses, the replication password and the
/// old host's timers.
fn parts(context: &Context, migration: &Migration) -> Result<Parts, String> {
    let service = &migration.service;
    let recorder = context.recorder.lock().map_err(poisoned)?;
    let state = &recorder.state;
    let record = Record::of(state, service)?.ok_or_else(|| format!("`{service}`: the migration is not recorded"))?;
    let within = |e: String| format!("`{service}`: {e}");
    let private_ip = |server: Option<&Address>, what: &str| {
        recorded::private_ip(state, server).ok_or_else(|| {
            format!(
                "`{service}`: {what} has no private address: the old and the new servers must share a private \
                 network for the copy (nothing was changed)"
            )
        })
    };
    let from = recorded::host(state, &migration.from).map_err(within)?;
    let source_ip = private_ip(migration.from_server.as_ref(), "the old server")?;
    let mut version = None;
    let mut targets = Vec::new();
    for (index, target) in migration.to.iter().enumerate() {
        version = version.or(recorded::version(recorded::host(state, &target.host).map_err(within)?));
        let ends = Ends {
            version: version.unwrap_or(16),
            source_ip: source_ip.clone(),
            target_ip: private_ip(target.server.as_ref(), &format!("`{}`", target.host))?,
            database: recorded::database(context.compiled(), &target.service),
            slot: commands::slot(index, migration.to.len()),
        };
        targets.push((recorded::reached(state, &target.host).map_err(within)?, ends));
    }
    Ok(Parts {
        source: recorded::reached(state, &migration.from).map_err(within)?,
        targets,
        password: recorded::replication_password(state, service).map_err(within)?,
        timers: recorded::timers(from),
        version: version.unwrap_or(16),
        record,
    })
}

/// The record of `migration`: the state's, or a new one (saved) when there is none, or when the
/// state's is of a migration that never ran a step or finished (which gives way, keeping what it
/// kept).
pub(super) fn started(recorder: &mut super::exec::Recorder, migration: &Migration) -> Result<Record, String> {
    let service = &migration.service;
    match Record::of(&recorder.state, service)? {
        Some(record) if record.is_of(migration) => Ok(record),
        Some(record) if !record.done() && record.step.is_some() => Err(format!(
            "`{service}`: a migration to {} is under way; it must finish before another starts",
            record.to.join(", ")
        )),
        _ => {
            let record = Record::starting(migration);
            let json = record.to_json();
            recorder.save(|state| {
                state.migrations.insert(service.to_string(), json);
            })?;
            Ok(record)
        }
    }
}

/// Records `step` as done, then runs the hook.
pub(super) async fn done(
    context: &Context,
    migration: &Migration,
    record: &mut Record,
    step: Step,
) -> Result<(), String> {
    record.did(step);
    save(context, &migration.service, record)?;
    hook(context, migration, step).await
}

pub(super) fn save(context: &Context, service: &Address, record: &Record) -> Result<(), String> {
    let json = record.to_json();
    context.recorder.lock().map_err(poisoned)?.save(|state| {
        state.migrations.insert(service.to_string(), json);
    })
}

pub(super) async fn facts(session: &Session, what: &str) -> Result<Facts, String> {
    let out = checked(session, &format!("read {what}"), commands::facts()).await?;
    Facts::parse(&out).map_err(|e| format!("{what}: {e}"))
}

/// Runs a script; its failure names what it was for, with what the server printed.
pub(super) async fn checked(session: &Session, what: &str, command: Command) -> Result<String, String> {
    session
        .check(&command.shell, command.stdin.as_deref().map(str::as_bytes))
        .await
        .map(|out| String::from_utf8_lossy(&out).trim().to_owned())
        .map_err(|e| format!("{what}: {e}"))
}

pub(super) fn note(context: &Context, service: &Address, message: String) {
    context.progress.event(Event::Note { address: service.clone(), message });
}

/// Waits until every copy is less than `CAUGHT_UP_BYTES` behind, showing the lag.
async fn catch_up(
    context: &Context,
    service: &Address,
    source: &Session,
    targets: &[(Session, &Ends)],
) -> Result<(), String> {
    let deadline = tokio::time::Instant::now() + context.services.hosts.boot;
    let mut shown = tokio::time::Instant::now() - Duration::from_secs(60);
    let slots: Vec<&str> = targets.iter().map(|(_, ends)| ends.slot.as_str()).collect();
    loop {
        let worst = lag(source, &slots).await?;
        if (0..CAUGHT_UP_BYTES).contains(&worst) {
            note(context, service, format!("caught up (lag {})", bytes(worst as u64)));
            return Ok(());
        }
        if tokio::time::Instant::now() > deadline {
            return Err(format!("`{service}`: the copy did not catch up in time (lag {worst} bytes)"));
        }
        if shown.elapsed() >= Duration::from_secs(5) {
            let lag = if worst < 0 { "not streaming yet".to_owned() } else { format!("lag {}", bytes(worst as u64)) };
            note(context, service, format!("waiting for the copy: {lag}"));
            shown = tokio::time::Instant::now();
        }
        tokio::time::sleep(Duration::from_millis(500)).await;
    }
}

/// Writes pause and the source stops; once every target has replayed the source's shutdown
/// checkpoint (every committed transaction), they are promoted, none before all have it. When one
/// does not get there, the source is started again, writable: nothing is lost and the
/// application carries on.
async fn switchover(
    context: &Context,
    service: &Address,
    parts: &Parts,
    source: &Session,
    targets: &[(Session, &Ends)],
) -> Result<(), String> {
    let version = parts.version;
    let stopped =
        checked(source, "pause writes and stop the old database", commands::stop_source(version, &parts.timers))
            .await?;
    // The script's last line is its answer.
    let answer = stopped.lines().last().unwrap_or_default();
    let (state, lsn) = answer.split_once('|').unwrap_or((answer, ""));
    let rollback = |why: String| async move {
        let back = checked(source, "start the old database again", commands::restart_source(version)).await;
        match back {
            Ok(_) => format!("`{service}`: {why}; the old database runs again, writable, and nothing was lost"),
            Err(also) => format!("`{service}`: {why}; and the old database could not be started again: {also}"),
        }
    };
    if state != "shut down" || lsn.is_empty() {
        return Err(rollback(format!("the old database did not shut down cleanly ({answer})")).await);
    }
    note(context, service, format!("writes paused; the old database stopped at {lsn}"));
    let deadline = tokio::time::Instant::now() + REPLAY_WAIT;
    for (target, ends) in targets {
        loop {
            if checked(target, "check the copy", commands::replayed(lsn)).await? == "t" {
                break;
            }
            if tokio::time::Instant::now() > deadline {
                let why = format!("the copy on {} did not receive everything up to {lsn}", ends.target_ip);
                return Err(rollback(why).await);
            }
            tokio::time::sleep(Duration::from_millis(200)).await;
        }
    }
    for (target, ends) in targets {
        checked(target, &format!("promote the new database on {}", ends.target_ip), commands::promote()).await?;
    }
    note(context, service, "the new database is the primary".to_owned());
    Ok(())
}

/// A reshard's last step: each shard deletes the organizations routed to another shard.
async fn split(context: &Context, migration: &Migration, targets: &[(Session, &Ends)]) -> Result<(), String> {
    let Some(key) = &migration.shard_key else { return Ok(()) };
    let count = targets.len();
    for (index, (target, ends)) in targets.iter().enumerate() {
        let what = format!("keep on shard {index} only its organizations");
        checked(target, &what, commands::split(&ends.database, key, index, count)).await?;
        note(context, &migration.service, format!("shard {index} keeps only the organizations routed to it"));
    }
    Ok(())
}

/// Runs the `--migration-hook` after `step`, with the outputs from the switchover on.
pub(super) async fn hook(context: &Context, migration: &Migration, step: Step) -> Result<(), String> {
    let Some(hook) = &context.services.migration_hook else { return Ok(()) };
    let mut command = tokio::process::Command::new("sh");
    command
        .arg("-c")
        .arg(hook)
        .env("TERRACE_MIGRATION", migration.service.to_string())
        .env("TERRACE_MIGRATION_STEP", step.as_str());
    let mut outputs_file = None;
    if Step::switched(migration.motion.steps(), step) {
        let outputs = {
            let recorder = context.recorder.lock().map_err(poisoned)?;
            super::exec::finish(context.compiled(), &recorder.state)
        };
        let json: serde_json::Map<String, Json> = outputs.into_iter().map(|(name, o)| (name, o.value)).collect();
        let path = private_file(&serde_json::to_vec_pretty(&json).unwrap_or_default())?;
        command.env("TERRACE_OUTPUTS", &path);
        outputs_file = Some(path);
    }
    let status = command.status().await;
    if let Some(path) = outputs_file {
        let _ = std::fs::remove_file(path);
    }
    match status {
        Ok(status) if status.success() => Ok(()),
        Ok(status) => Err(format!(
            "`{}`: the migration hook failed after step {step} ({status}); the step is done, and the next apply \
             continues after it",
            migration.service
        )),
        Err(error) => Err(format!("`{}`: the migration hook could not run: {error}", migration.service)),
    }
}

/// A new file only its owner can read, in the temporary folder.
fn private_file(content: &[u8]) -> Result<std::path::PathBuf, String> {
    use std::io::Write;
    use std::os::unix::fs::OpenOptionsExt;
    let mut random = [0u8; 8];
    getrandom::fill(&mut random).map_err(|e| format!("the system's random generator failed: {e}"))?;
    let name: String = random.iter().map(|b| format!("{b:02x}")).collect();
    let path = std::env::temp_dir().join(format!("terrace-outputs-{name}.json"));
    let mut file = std::fs::OpenOptions::new()
        .write(true)
        .create_new(true)
        .mode(0o600)
        .open(&path)
        .map_err(|e| format!("cannot write {}: {e}", path.display()))?;
    file.write_all(content).map_err(|e| format!("cannot write {}: {e}", path.display()))?;
    Ok(path)
}

/// The copies' lag in bytes (the largest), read on the old database while they stream (after
/// `clone`, before `switchover`); `None` at other steps.
pub async fn migration_lag(state: &terrace_state::State, record: &Record) -> Result<Option<i64>, String> {
    if !matches!(record.step, Some(Step::Clone | Step::CatchUp)) {
        return Ok(None);
    }
    let from = record.from.parse().map_err(|_| format!("`{}` is not an address", record.from))?;
    let session = recorded::connect(&recorded::reached(state, &from)?, tokio::time::Instant::now() + LAG_WAIT).await?;
    let slots: Vec<String> = (0..record.to.len()).map(|index| commands::slot(index, record.to.len())).collect();
    let worst = lag(&session, &slots.iter().map(String::as_str).collect::<Vec<_>>()).await;
    session.close().await;
    Ok(Some(worst?))
}

/// How far the copies streaming through `slots` are behind the source, in bytes of WAL: the
/// largest lag, or `-1` while any of them is not streaming.
async fn lag(source: &Session, slots: &[&str]) -> Result<i64, String> {
    let mut worst = 0;
    for slot in slots {
        let lag: i64 = checked(source, "read the copy's lag", commands::lag(slot)).await?.parse().unwrap_or(-1);
        if lag < 0 {
            return Ok(-1);
        }
        worst = worst.max(lag);
    }
    Ok(worst)
}
