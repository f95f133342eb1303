//! A data migration carried out over SSH (`crate::migrate` plans it): the steps run on the old
//! server (the source) and the new one (the target) in order; each finished step is recorded in the
//! state's `migrations` before the next starts, and every step is safe to run again, so an apply
//! killed at any point is continued by the next. Nothing is deleted here: the old database stays,
//! stopped and read-only, until `--finish-migration`.

use std::time::Duration;

use serde_json::Value as Json;
use terrace_providers::host::{Login, Session, Target};

use super::exec::{Context, Event, poisoned};
use super::host::{masked, reach};
use crate::addr::Address;
use crate::migrate::commands::{self, Ends, Facts};
use crate::migrate::{Migration, Record, Step};
use crate::services::converge::Command;

/// The copy is caught up when it is less than this many bytes of WAL behind.
const CAUGHT_UP_BYTES: i64 = 1 << 20;
/// How long the target may take to replay the source's last checkpoint once the source stopped.
const REPLAY_WAIT: Duration = Duration::from_secs(60);

/// Carries `migration` out from its recorded step on.
pub(super) async fn run(context: &Context, migration: &Migration) -> Result<(), String> {
    run_steps(context, migration).await.map_err(|error| masked(context, &error))
}

/// What a run needs from the state, read once.
struct Parts {
    record: Record,
    source: (Target, Login),
    target: (Target, Login),
    ends: Ends,
    password: String,
    timers: Vec<String>,
}

async fn run_steps(context: &Context, migration: &Migration) -> Result<(), String> {
    let service = &migration.service;
    let parts = parts(context, migration)?;
    let deadline = || tokio::time::Instant::now() + context.services.hosts.connect;
    let source = Session::connect_until(&parts.source.0, &parts.source.1, deadline())
        .await
        .map_err(|e| format!("`{service}`: the old database's server cannot be reached: {e}"))?;
    let target = Session::connect_until(&parts.target.0, &parts.target.1, deadline())
        .await
        .map_err(|e| format!("`{service}`: the new server cannot be reached: {e}"))?;
    let mut record = parts.record.clone();
    for step in Step::after(record.step) {
        note(context, service, format!("step {step}"));
        match step {
            Step::Prepare => {
                let old = facts(&source, "the old database").await?;
                let new = facts(&target, "the new database").await?;
                if old.major() != new.major() {
                    return Err(format!(
                        "`{service}`: the old database runs PostgreSQL {} and the new server {}: a streaming copy \
                         needs the same major version (nothing was changed)",
                        old.major(),
                        new.major()
                    ));
                }
                // The copy needs the data and room to grow while it catches up.
                if new.available < old.bytes + old.bytes / 10 {
                    return Err(format!(
                        "`{service}`: the new server's volume has {} free, and the old database takes {}: raise \
                         storage_gb (nothing was changed)",
                        bytes(new.available),
                        bytes(old.bytes)
                    ));
                }
                checked(&source, "prepare the old database", commands::prepare(&parts.ends, &parts.password)).await?;
            }
            Step::Clone => {
                checked(&target, "copy the old database", commands::clone(&parts.ends, &parts.password)).await?;
            }
            Step::CatchUp => catch_up(context, service, &source).await?,
            Step::Switchover => switchover(context, service, &parts, &source, &target).await?,
        }
        record.step = Some(step);
        let json = record.to_json();
        context.recorder.lock().map_err(poisoned)?.save(|state| {
            state.migrations.insert(service.to_string(), json);
        })?;
        hook(context, migration, step).await?;
    }
    source.close().await;
    target.close().await;
    Ok(())
}

/// The record (started now when there is none), how to reach both hosts, their private
/// addresses, the replication password and the old host's timers.
fn parts(context: &Context, migration: &Migration) -> Result<Parts, String> {
    let service = &migration.service;
    let mut recorder = context.recorder.lock().map_err(poisoned)?;
    let record = match Record::of(&recorder.state, service)? {
        Some(record) => record,
        None => {
            let record = Record {
                from: migration.from.to_string(),
                to: migration.to.to_string(),
                step: None,
                kept: migration.kept.iter().map(Address::to_string).collect(),
                started: humantime::format_rfc3339_seconds(std::time::SystemTime::now()).to_string(),
            };
            let json = record.to_json();
            recorder.save(|state| {
                state.migrations.insert(service.to_string(), json);
            })?;
            record
        }
    };
    let state = &recorder.state;
    let host = |address: &Address| {
        state.resources.get(&address.to_string()).ok_or_else(|| format!("`{service}`: `{address}` is not recorded"))
    };
    let from = host(&migration.from)?;
    let to = host(&migration.to)?;
    let private_ip = |server: &Option<Address>, what: &str| -> Result<String, String> {
        server
            .as_ref()
            .and_then(|s| state.resources.get(&s.to_string()))
            .and_then(|r| r.attributes.get("private_ip"))
            .and_then(Json::as_str)
            .filter(|ip| !ip.is_empty())
            .map(str::to_owned)
            .ok_or_else(|| {
                format!(
                    "`{service}`: {what} has no private address: the old and the new server must share a \
                     private network for the copy (nothing was changed)"
                )
            })
    };
    let version = to.attributes.get("version").and_then(Json::as_u64).unwrap_or(16) as u32;
    let database = context
        .compiled()
        .and_then(|c| c.composite(service))
        .and_then(|c| c.attrs.get("database"))
        .and_then(|d| d.as_str().map(str::to_owned))
        .unwrap_or_else(|| "app".to_owned());
    let password = state
        .resources
        .get(&service.child(crate::kind::Kind::Secret, "replication", None).to_string())
        .and_then(|r| r.attributes.get("value"))
        .and_then(Json::as_str)
        .ok_or_else(|| format!("`{service}`: the replication password is not recorded"))?
        .to_owned();
    let timers = super::host::files_of(from)
        .keys()
        .filter(|path| path.starts_with("/etc/systemd/system/") && path.ends_with(".timer"))
        .filter_map(|path| path.rsplit('/').next().map(str::to_owned))
        .collect();
    Ok(Parts {
        source: reach(&migration.from.to_string(), from),
        target: reach(&migration.to.to_string(), to),
        ends: Ends {
            version,
            source_ip: private_ip(&migration.from_server, "the old server")?,
            target_ip: private_ip(&migration.to_server, "the new server")?,
            database,
        },
        password,
        timers,
        record,
    })
}

async fn facts(session: &Session, what: &str) -> Result<Facts, String> {
    let out = checked(session, &format!("read {what}"), commands::facts()).await?;
    Facts::parse(&out).map_err(|e| format!("{what}: {e}"))
}

/// Runs a script; its failure names what it was for, with what the server printed.
async fn checked(session: &Session, what: &str, command: Command) -> Result<String, String> {
    session
        .check(&command.shell, command.stdin.as_deref().map(str::as_bytes))
        .await
        .map(|out| String::from_utf8_lossy(&out).trim().to_owned())
        .map_err(|e| format!("{what}: {e}"))
}

fn note(context: &Context, service: &Address, message: String) {
    context.progress.event(Event::Note { address: service.clone(), message });
}

/// Waits until the copy is less than `CAUGHT_UP_BYTES` behind, showing the lag.
async fn catch_up(context: &Context, service: &Address, source: &Session) -> Result<(), String> {
    let deadline = tokio::time::Instant::now() + context.services.hosts.boot;
    let mut shown = tokio::time::Instant::now() - Duration::from_secs(60);
    loop {
        let lag: i64 = checked(source, "read the copy's lag", commands::lag()).await?.parse().unwrap_or(-1);
        if (0..CAUGHT_UP_BYTES).contains(&lag) {
            note(context, service, format!("the copy is caught up (lag {})", bytes(lag as u64)));
            return Ok(());
        }
        if tokio::time::Instant::now() > deadline {
            return Err(format!("`{service}`: the copy did not catch up in time (lag {lag} bytes)"));
        }
        if shown.elapsed() >= Duration::from_secs(5) {
            let lag = if lag < 0 { "not streaming yet".to_owned() } else { format!("lag {}", bytes(lag as u64)) };
            note(context, service, format!("waiting for the copy: {lag}"));
            shown = tokio::time::Instant::now();
        }
        tokio::time::sleep(Duration::from_millis(500)).await;
    }
}

/// Writes pause and the source stops; once the target has replayed the source's shutdown
/// checkpoint (every committed transaction), it is promoted. When it does not get there, the
/// source is started again, writable: nothing is lost and the application carries on.
async fn switchover(
    context: &Context,
    service: &Address,
    parts: &Parts,
    source: &Session,
    target: &Session,
) -> Result<(), String> {
    let version = parts.ends.version;
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
    loop {
        if checked(target, "check the copy", commands::replayed(lsn)).await? == "t" {
            break;
        }
        if tokio::time::Instant::now() > deadline {
            return Err(rollback(format!("the copy did not receive everything up to {lsn}")).await);
        }
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    checked(target, "promote the new database", commands::promote()).await?;
    note(context, service, "the new database is the primary".to_owned());
    Ok(())
}

/// Runs the `--migration-hook` after `step`, with the outputs from the switchover on.
async fn hook(context: &Context, migration: &Migration, step: Step) -> Result<(), String> {
    let Some(hook) = &context.services.migration_hook else { return Ok(()) };
    let mut command = tokio::process::Command::new("sh");
    command
        .arg("-c")
        .arg(hook)
        .env("TERRACE_MIGRATION", migration.service.to_string())
        .env("TERRACE_MIGRATION_STEP", step.as_str());
    let mut outputs_file = None;
    if step >= Step::Switchover {
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

fn bytes(n: u64) -> String {
    match n {
        n if n >= 1 << 30 => format!("{:.1} GiB", n as f64 / f64::from(1u32 << 30)),
        n if n >= 1 << 20 => format!("{:.1} MiB", n as f64 / f64::from(1u32 << 20)),
        n if n >= 1 << 10 => format!("{:.1} KiB", n as f64 / 1024.0),
        n => format!("{n} B"),
    }
}

/// The copy's lag in bytes, read on the old database while the copy streams (after `clone`,
/// before `switchover`); `None` at other steps.
pub async fn migration_lag(state: &terrace_state::State, record: &Record) -> Result<Option<i64>, String> {
    if !matches!(record.step, Some(Step::Clone | Step::CatchUp)) {
        return Ok(None);
    }
    let host = state.resources.get(&record.from).ok_or_else(|| format!("`{}` is not recorded", record.from))?;
    let (target, login) = reach(&record.from, host);
    let deadline = tokio::time::Instant::now() + Duration::from_secs(15);
    let session = Session::connect_until(&target, &login, deadline).await.map_err(|e| e.to_string())?;
    let lag = checked(&session, "read the copy's lag", commands::lag()).await;
    session.close().await;
    Ok(Some(lag?.parse().unwrap_or(-1)))
}
