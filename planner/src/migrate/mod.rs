//! Data migrations: a phase that moves a database to other servers carries its data there instead
//! of destroying it. The diff finds the move (a `postgres` service whose primary lives on another
//! host than the recorded one); the plan holds it as ordered steps, each with its downtime and
//! what the application must do; apply carries the steps out over SSH (`apply::migrate`),
//! recording each finished step in the state's `migrations`, so an apply killed at any point is
//! continued by the next one. The old database is kept, stopped and read-only, with its volume and
//! host record, until `terrace apply --finish-migration`. No I/O here.

pub mod commands;

use std::collections::BTreeSet;

use serde::{Deserialize, Serialize};
use terrace_state::State;

use crate::addr::Address;
use crate::kind::Kind;
use crate::model::Compiled;

/// One step of a move, in the order they run.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum Step {
    /// The old database lets the new server replicate from it.
    Prepare,
    /// The new server is a copy of the old database, streaming from it.
    Clone,
    /// The copy has replayed (nearly) everything the old database wrote.
    CatchUp,
    /// Writes paused, the old database stopped, the copy promoted.
    Switchover,
}

impl Step {
    pub const ALL: [Step; 4] = [Step::Prepare, Step::Clone, Step::CatchUp, Step::Switchover];

    pub fn as_str(self) -> &'static str {
        match self {
            Step::Prepare => "prepare",
            Step::Clone => "clone",
            Step::CatchUp => "catch-up",
            Step::Switchover => "switchover",
        }
    }

    /// The steps still to run after `done` (the last one finished, `None` before the first).
    pub fn after(done: Option<Step>) -> impl Iterator<Item = Step> {
        Step::ALL.into_iter().filter(move |step| done.is_none_or(|done| *step > done))
    }
}

impl std::fmt::Display for Step {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

/// What the state records of a migration (`State::migrations`, by service address).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Record {
    /// The host the data comes from (`postgres.main.host.shared`).
    pub from: String,
    /// The host it goes to (`postgres.main.host.primary`).
    pub to: String,
    /// The last step finished; `None` before the first.
    pub step: Option<Step>,
    /// What is kept until `--finish-migration`: the old volume, host and host key.
    pub kept: Vec<String>,
    /// When the migration started (RFC 3339).
    pub started: String,
}

impl Record {
    /// The record of `service`'s migration in `state`, if any; an unreadable one is an error.
    pub fn of(state: &State, service: &Address) -> Result<Option<Record>, String> {
        let Some(json) = state.migrations.get(&service.to_string()) else { return Ok(None) };
        serde_json::from_value(json.clone())
            .map(Some)
            .map_err(|error| format!("the state's record of the migration of `{service}` is unreadable: {error}"))
    }

    pub fn to_json(&self) -> serde_json::Value {
        // A struct of strings and lists always serializes.
        serde_json::to_value(self).unwrap_or_default()
    }

    pub fn done(&self) -> bool {
        self.step == Some(Step::Switchover)
    }
}

/// Where a migration stands in a plan.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Status {
    /// This apply starts it.
    Starts,
    /// An earlier apply stopped in the middle: this one continues from the next step.
    Resumes,
    /// Done; the old database is kept until `--finish-migration`.
    Kept,
    /// `--finish-migration`: this apply deletes what was kept.
    Finishes,
}

/// A data migration as the plan shows it.
#[derive(Debug, Clone, Serialize)]
pub struct Migration {
    /// The service that moves (`postgres.main`).
    pub service: Address,
    /// The host it moves from and the one it moves to.
    pub from: Address,
    pub to: Address,
    /// The servers under those hosts.
    pub from_server: Option<Address>,
    pub to_server: Option<Address>,
    pub status: Status,
    pub steps: Vec<PlannedStep>,
    /// Kept, stopped and read-only, until `terrace apply --finish-migration`.
    pub kept: Vec<Address>,
    /// The outputs that change with the move: what the application must switch to.
    pub outputs: Vec<String>,
}

impl Migration {
    /// Whether applying the plan runs any of its steps.
    pub fn runs(&self) -> bool {
        matches!(self.status, Status::Starts | Status::Resumes)
    }
}

/// One step in a plan.
#[derive(Debug, Clone, Serialize)]
pub struct PlannedStep {
    pub step: Step,
    pub summary: String,
    /// What the application notices, `None` when nothing.
    pub downtime: Option<String>,
    /// What the application (or the pipeline's hook) must do after this step.
    pub app_action: Option<String>,
    /// Finished by an earlier apply.
    pub done: bool,
}

/// The migrations of a plan: moves of a `postgres` service's primary to another host, and those
/// the state records. Returns them with the reasons a plan may not be applied.
pub fn detect(desired: &Compiled, prior: &State, finish: bool) -> (Vec<Migration>, Vec<String>) {
    let mut found = Vec::new();
    let mut refusals = Vec::new();
    let recorded_id = |address: &Address| prior.resources.get(&address.to_string()).is_some_and(|r| r.id.is_some());
    for composite in desired.composites.iter().filter(|c| c.kind == Kind::Postgres) {
        let service = &composite.address;
        let Some(to) = primary_host(service, |a| desired.resources.contains(a)) else { continue };
        let record = match Record::of(prior, service) {
            Ok(record) => record,
            Err(error) => {
                refusals.push(error);
                continue;
            }
        };
        let (from, done, status, kept) = match record {
            Some(record) => {
                let (Ok(from), Ok(recorded_to)) = (record.from.parse::<Address>(), record.to.parse::<Address>()) else {
                    refusals.push(format!("the state's record of the migration of `{service}` names no host"));
                    continue;
                };
                if recorded_to != to {
                    refusals.push(format!(
                        "`{service}` is being migrated to `{recorded_to}`, which this phase does not have (its \
                         primary is `{to}`): apply the phase the migration started in, and \
                         `terrace apply --finish-migration`, before moving it again"
                    ));
                    continue;
                }
                let status = match (record.done(), finish) {
                    (true, true) => Status::Finishes,
                    (true, false) => Status::Kept,
                    (false, _) => Status::Resumes,
                };
                let kept = record.kept.iter().filter_map(|a| a.parse().ok()).filter(|a| recorded_id(a)).collect();
                (from, record.step, status, kept)
            }
            None => {
                // A primary recorded on another host than the phase's, and the phase's not made yet.
                let Some(from) = primary_host(service, |a| recorded_id(a) && is_primary(prior, a)) else { continue };
                if from == to || recorded_id(&to) {
                    continue;
                }
                let kept: Vec<Address> = prior
                    .resources
                    .iter()
                    .filter(|(_, r)| r.id.is_some())
                    .filter_map(|(a, _)| a.parse::<Address>().ok())
                    .filter(|a| a.is_within(service) && !desired.resources.contains(a))
                    .collect();
                (from, None, Status::Starts, kept)
            }
        };
        let from_server = server_of_recorded(prior, &from);
        let to_server = desired
            .resource(&to)
            .and_then(|r| r.attrs.get("server"))
            .and_then(crate::value::Value::as_ref)
            .map(|r| r.address.clone());
        let outputs = desired
            .outputs
            .iter()
            .filter(|o| o.value.references().iter().any(|r| r.address.is_within(service)))
            .map(|o| o.name.clone())
            .collect();
        let mut migration = Migration {
            service: service.clone(),
            from,
            to,
            from_server,
            to_server,
            status,
            steps: Vec::new(),
            kept,
            outputs,
        };
        migration.steps = Step::ALL.iter().map(|step| planned(&migration, *step, done)).collect();
        found.push(migration);
    }
    (found, refusals)
}

/// A sharded service whose shard count changes: how many organizations the seed's rule sends to
/// another shard. terrace does not move their rows (yet), so this is said loudly, never left to a
/// silent change of the shard map.
pub fn reshard_warnings(desired: &Compiled, prior: &State) -> Vec<String> {
    let mut warnings = Vec::new();
    let mut seen = BTreeSet::new();
    for composite in desired.composites.iter().filter(|c| c.kind == Kind::Postgres) {
        let Some(key) = composite.attrs.get("shard_key").and_then(crate::value::Value::as_str) else { continue };
        let block = composite.address.block();
        if !seen.insert(block.clone()) {
            continue;
        }
        let now = desired.composites.iter().filter(|c| c.address.block() == block).count();
        let before: BTreeSet<&str> = prior
            .resources
            .values()
            .filter_map(|r| r.composite.as_deref())
            .filter(|c| c.parse::<Address>().is_ok_and(|a| a.block() == block))
            .collect();
        if before.is_empty() || before.len() == now {
            continue;
        }
        let share = crate::compile::shard::moving_share(before.len() as u32, now as u32);
        warnings.push(format!(
            "`{block}` goes from {} to {now} shards: the rule parseInt(md5({key})[0:8], 16) % {now} sends about \
             {:.0}% of the organizations to another shard, and terrace does not move their rows: the SHARD_MAP \
             changes, and rows of a moved organization stay on the shard that has them",
            before.len(),
            share * 100.0
        ));
    }
    warnings
}

/// The addresses a migration keeps, and whether they are to be deleted (`--finish-migration`).
pub fn kept(migrations: &[Migration]) -> BTreeSet<(Address, bool)> {
    migrations.iter().flat_map(|m| m.kept.iter().map(move |a| (a.clone(), m.status == Status::Finishes))).collect()
}

/// The host of a service's primary: on a server of its own (`host.primary`) or on another block's
/// server (`host.shared`), the first that `exists`.
fn primary_host(service: &Address, exists: impl Fn(&Address) -> bool) -> Option<Address> {
    ["primary", "shared"].into_iter().map(|role| service.child(Kind::Host, role, None)).find(|a| exists(a))
}

/// A recorded host that serves its service's primary.
fn is_primary(prior: &State, host: &Address) -> bool {
    prior
        .resources
        .get(&host.to_string())
        .and_then(|r| r.attributes.get("role"))
        .and_then(serde_json::Value::as_str)
        .is_some_and(|role| role == "primary")
}

/// The server a recorded host lives on: the server among its recorded dependencies.
fn server_of_recorded(prior: &State, host: &Address) -> Option<Address> {
    prior
        .resources
        .get(&host.to_string())?
        .dependencies
        .iter()
        .filter_map(|d| d.parse::<Address>().ok())
        .find(|d| d.kind() == Kind::Server)
}

fn planned(migration: &Migration, step: Step, done: Option<Step>) -> PlannedStep {
    let old = migration.from_server.as_ref().map_or_else(|| format!("`{}`", migration.from), |s| format!("`{s}`"));
    let new = migration.to_server.as_ref().map_or_else(|| format!("`{}`", migration.to), |s| format!("`{s}`"));
    let (summary, downtime, app_action) = match step {
        Step::Prepare => (
            format!(
                "let {new} replicate from the old database on {old}: the replication role, a pg_hba.conf line \
                 for {new}'s private address, the slot `{slot}`, and {old}'s private address to listen on",
                slot = commands::SLOT
            ),
            Some("a restart of the old database (~10 s) when it does not listen on its private address yet".to_owned()),
            None,
        ),
        Step::Clone => (
            format!(
                "copy the old database to {new} over the private network (pg_basebackup through the slot); \
                 {new} then streams every new write from it as a replica"
            ),
            None,
            None,
        ),
        Step::CatchUp => {
            (format!("wait until {new} has replayed what the old database wrote (the lag is shown)"), None, None)
        }
        Step::Switchover => (
            format!(
                "pause writes: the old database turns read-only and stops, {new} is promoted once it has every \
                 committed change, then runs its setup and starts PgBouncer; the old database is kept stopped"
            ),
            Some("writes fail for a few seconds, until the application uses the new outputs".to_owned()),
            (!migration.outputs.is_empty()).then(|| {
                format!(
                    "switch to the new {}: restart it with the values of `terrace output` after \
                     this apply, or from the --migration-hook at step `switchover` (TERRACE_OUTPUTS)",
                    migration.outputs.join(", ")
                )
            }),
        ),
    };
    PlannedStep { step, summary, downtime, app_action, done: done.is_some_and(|done| step <= done) }
}

#[cfg(test)]
mod tests;
