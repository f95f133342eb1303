//! What the plan reads live of a migration's old database(s) over SSH, before anything changes:
//! their version and size, checked against the phase's new servers (`migrate::checks::live`: a
//! refusal keeps the apply from making them), and for a reshard or a rebalance whose rows have not
//! moved yet, the rows and organizations counted with the rule of the new shard count. What
//! cannot be reached is a note; the plan then shows the migration without counts, and `prepare`
//! checks the ends again.

use std::time::Duration;

use terrace_providers::host::Session;
use terrace_state::State;

use super::recorded;
use crate::migrate::checks;
use crate::migrate::commands::{Facts, Routed, facts, routed_rows};
use crate::migrate::{Live, Migration, Motion, Step};
use crate::model::Compiled;
use crate::services::converge::Command;

/// What the plan learnt live: notes (an old database not reached), and refusals.
#[derive(Debug, Default)]
pub struct Read {
    pub notes: Vec<String>,
    pub refusals: Vec<String>,
}

/// Reads, on each migration that has not prepared yet, its old databases' facts, and counts what
/// each new shard will hold where rows have not moved yet.
pub async fn count_live(state: &State, compiled: &Compiled, migrations: &mut [Migration], connect: Duration) -> Read {
    let mut read = Read::default();
    for migration in migrations.iter_mut().filter(|m| m.runs()) {
        let check = checks::unprepared(migration);
        let key = migration.shard_key.clone().filter(|_| {
            let moved = match migration.motion {
                Motion::Reshard => Step::Split,
                Motion::Rebalance => Step::Copy,
                Motion::Move => return false,
            };
            !migration.steps.iter().any(|s| s.step == moved && s.done)
        });
        if !check && key.is_none() {
            continue;
        }
        let database = migration.to.first().map(|t| recorded::database(Some(compiled), &t.service)).unwrap_or_default();
        let sources = checks::sources(migration);
        let mut counts = Vec::new();
        for host in &sources {
            let deadline = tokio::time::Instant::now() + connect;
            let session = match recorded::reached(state, host) {
                Ok(reached) => recorded::connect(&reached, deadline).await,
                Err(error) => Err(error),
            };
            let session = match session {
                Ok(session) => session,
                Err(error) => {
                    read.notes.push(format!("`{}`: `{host}` was not read live: {error}", migration.service));
                    break;
                }
            };
            let result = async {
                if check {
                    let facts = Facts::parse(&run(&session, facts()).await?)?;
                    read.refusals.extend(checks::live(compiled, state, migration, host, &facts));
                }
                if let Some(key) = &key {
                    let (before, after) = (sources.len(), migration.to.len());
                    let out = run(&session, routed_rows(&database, key, before, after)).await?;
                    counts.push(Routed::parse(&out, before, after)?);
                }
                Ok::<(), String>(())
            }
            .await;
            session.close().await;
            if let Err(error) = result {
                read.notes.push(format!("`{}`: `{host}` was not read live: {error}", migration.service));
                break;
            }
        }
        if key.is_some() && counts.len() == sources.len() {
            migration.live = Some(Live::from_counts(&counts, migration.motion));
        }
    }
    read
}

async fn run(session: &Session, command: Command) -> Result<String, String> {
    let out = session.check(&command.shell, command.stdin.as_deref().map(str::as_bytes)).await;
    Ok(String::from_utf8_lossy(&out.map_err(|e| e.to_string())?).into_owned())
}
