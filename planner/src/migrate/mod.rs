//! Data migrations: a phase that moves a database to other servers carries its data there instead
//! of destroying it. Two moves are found by the diff (`detect`):
//! - a *move*: a `postgres` service whose primary lives on another host than the recorded one
//!   (phase 1 -> 2: from the app server's own host to a server of its own);
//! - a *reshard*: a phase that removes a `postgres` service and adds a sharded block
//!   (`shard_key`) whose shards are all new (phase 3 -> 4: one primary into N shards);
//! - a *rebalance*: a sharded block whose shard count changes (N -> M shards): the rows of each
//!   organization the rule now routes to another shard move there while writes pause.
//!
//! The plan holds either as ordered steps, each with its downtime and what the application must
//! do; apply carries the steps out over SSH (`apply::migrate`), recording each finished step in the
//! state's `migrations`, so an apply killed at any point is continued by the next one. Every new
//! primary starts as a streaming copy of the old one; a reshard then deletes, on each shard, the
//! organizations the seed's rule routes elsewhere. The old database is kept, stopped and
//! read-only, with what it ran on, until `terrace apply --finish-migration`. No I/O here.

pub mod checks;
pub mod commands;
mod detect;
pub mod shards;

use std::time::{Duration, SystemTime};

use serde::{Deserialize, Deserializer, Serialize};
use terrace_state::State;

use crate::addr::Address;

pub use detect::{detect, kept, reshard_warnings};

/// One step of a migration, in the order they run.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum Step {
    /// The old database lets the new servers replicate from it.
    Prepare,
    /// Each new server is a copy of the old database, streaming from it.
    Clone,
    /// The copies have replayed (nearly) everything the old database wrote.
    CatchUp,
    /// Writes paused, the old database stopped, the copies promoted.
    Switchover,
    /// A reshard only: each shard deletes the organizations the rule routes to another shard.
    Split,
    /// A rebalance: every shard turns read-only (writes pause).
    Pause,
    /// A rebalance: each shard of the new count copies in, in one transaction, the rows of the
    /// organizations routed to it from the shards that hold them (a new shard first gets the
    /// schema and the reference tables).
    Copy,
    /// A rebalance: each shard that stays deletes the organizations routed elsewhere.
    Prune,
    /// A rebalance: the shards turn writable again.
    Resume,
}

/// What a migration does, which fixes its steps.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Motion {
    /// One primary to another host.
    Move,
    /// One primary into N new shards.
    Reshard,
    /// N shards into M.
    Rebalance,
}

impl Motion {
    pub fn steps(self) -> &'static [Step] {
        match self {
            Motion::Move => &Step::MOVE,
            Motion::Reshard => &Step::RESHARD,
            Motion::Rebalance => &Step::REBALANCE,
        }
    }
}

impl Step {
    /// The steps of a move.
    pub const MOVE: [Step; 4] = [Step::Prepare, Step::Clone, Step::CatchUp, Step::Switchover];
    /// The steps of a reshard.
    pub const RESHARD: [Step; 5] = [Step::Prepare, Step::Clone, Step::CatchUp, Step::Switchover, Step::Split];

    /// The steps of a rebalance: writes pause for all of them but the first.
    pub const REBALANCE: [Step; 6] =
        [Step::Prepare, Step::Pause, Step::Copy, Step::Prune, Step::Switchover, Step::Resume];

    pub fn as_str(self) -> &'static str {
        match self {
            Step::Prepare => "prepare",
            Step::Clone => "clone",
            Step::CatchUp => "catch-up",
            Step::Switchover => "switchover",
            Step::Split => "split",
            Step::Pause => "pause",
            Step::Copy => "copy",
            Step::Prune => "prune",
            Step::Resume => "resume",
        }
    }

    /// Of `steps`, those still to run after `done` (the last one finished, `None` before the first).
    pub fn after(steps: &'static [Step], done: Option<Step>) -> impl Iterator<Item = Step> {
        let next = done.map_or(0, |done| Step::position(steps, done) + 1);
        steps.iter().copied().skip(next)
    }

    /// Where `step` is in `steps` (after the last when it is not one of them).
    pub fn position(steps: &[Step], step: Step) -> usize {
        steps.iter().position(|s| *s == step).unwrap_or(steps.len())
    }

    /// Whether `step` is the switchover of `steps` or comes after it: the outputs name the new
    /// servers from then on.
    pub fn switched(steps: &[Step], step: Step) -> bool {
        Step::position(steps, step) >= Step::position(steps, Step::Switchover)
    }
}

impl std::fmt::Display for Step {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

/// What the state records of a migration (`State::migrations`, by the address of the service the
/// data comes from).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Record {
    /// The host the data comes from (`postgres.main.host.shared`).
    pub from: String,
    /// The hosts it goes to: one for a move, each shard's in order for a reshard.
    #[serde(deserialize_with = "one_or_many")]
    pub to: Vec<String>,
    /// A reshard's column: each shard keeps the rows the rule routes to it.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub shard_key: Option<String>,
    /// A rebalance's shards before it, in order (their hosts); empty for a move or a reshard.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub from_shards: Vec<String>,
    /// The last step finished; `None` before the first.
    pub step: Option<Step>,
    /// What is kept until `--finish-migration`: the old volume, host and host key.
    pub kept: Vec<String>,
    /// When the migration started (RFC 3339).
    pub started: String,
    /// When its last step finished (RFC 3339): `migration_keep_days` counts from then.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub finished: Option<String>,
}

fn now() -> String {
    humantime::format_rfc3339_seconds(SystemTime::now()).to_string()
}

/// A list of hosts, or one host as a string.
fn one_or_many<'de, D: Deserializer<'de>>(deserializer: D) -> Result<Vec<String>, D::Error> {
    #[derive(Deserialize)]
    #[serde(untagged)]
    enum OneOrMany {
        One(String),
        Many(Vec<String>),
    }
    Ok(match OneOrMany::deserialize(deserializer)? {
        OneOrMany::One(one) => vec![one],
        OneOrMany::Many(many) => many,
    })
}

impl Record {
    /// The record of `service`'s migration in `state`, if any; an unreadable one is an error.
    pub fn of(state: &State, service: &Address) -> Result<Option<Record>, String> {
        let Some(json) = state.migrations.get(&service.to_string()) else { return Ok(None) };
        serde_json::from_value(json.clone())
            .map(Some)
            .map_err(|error| format!("the state's record of the migration of `{service}` is unreadable: {error}"))
    }

    /// The record of `migration` as it starts: no step done yet.
    pub fn starting(migration: &Migration) -> Record {
        Record {
            from: migration.from.to_string(),
            to: migration.to.iter().map(|t| t.host.to_string()).collect(),
            shard_key: migration.shard_key.clone(),
            from_shards: migration.from_shards.iter().map(|t| t.host.to_string()).collect(),
            step: None,
            kept: migration.kept.iter().map(Address::to_string).collect(),
            started: now(),
            finished: None,
        }
    }

    /// Records `step` as done, and the time when it is the last.
    pub fn did(&mut self, step: Step) {
        self.step = Some(step);
        if self.done() && self.finished.is_none() {
            self.finished = Some(now());
        }
    }

    /// When its kept copy goes, with `keep_days` set: that many days after it finished (after it
    /// started, for a record made before terrace wrote `finished`).
    pub fn kept_until(&self, keep_days: u64) -> Option<SystemTime> {
        let since = humantime::parse_rfc3339(self.finished.as_deref().unwrap_or(&self.started)).ok()?;
        since.checked_add(Duration::from_secs(keep_days.checked_mul(86_400)?))
    }

    /// Whether it is `migration`'s (the same hosts, the same key).
    pub fn is_of(&self, migration: &Migration) -> bool {
        let same = |recorded: &[String], planned: &[Target]| {
            recorded.len() == planned.len() && recorded.iter().zip(planned).all(|(r, p)| *r == p.host.to_string())
        };
        same(&self.to, &migration.to)
            && same(&self.from_shards, &migration.from_shards)
            && self.shard_key == migration.shard_key
    }

    pub fn to_json(&self) -> serde_json::Value {
        // A struct of strings and lists always serializes.
        serde_json::to_value(self).unwrap_or_default()
    }

    pub fn motion(&self) -> Motion {
        match (&self.shard_key, self.from_shards.is_empty()) {
            (_, false) => Motion::Rebalance,
            (Some(_), true) => Motion::Reshard,
            (None, true) => Motion::Move,
        }
    }

    /// Its steps, in order.
    pub fn steps(&self) -> &'static [Step] {
        self.motion().steps()
    }

    pub fn done(&self) -> bool {
        self.step.is_some() && self.step == self.steps().last().copied()
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
    /// The service the data comes from (`postgres.main`), or a rebalance's sharded block
    /// (`postgres.shard`); the state records the migration by it.
    pub service: Address,
    pub motion: Motion,
    /// The host the data comes from, and the server under it (a rebalance's first shard).
    pub from: Address,
    pub from_server: Option<Address>,
    /// A rebalance's shards before it, in order; empty otherwise.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub from_shards: Vec<Target>,
    /// Where it goes: one target for a move, each shard in order for a reshard or a rebalance.
    pub to: Vec<Target>,
    /// A reshard's column (`organization_id`); `None` for a move.
    pub shard_key: Option<String>,
    pub status: Status,
    pub steps: Vec<PlannedStep>,
    /// Kept, stopped and read-only, until `terrace apply --finish-migration`.
    pub kept: Vec<Address>,
    /// The outputs that change with the move: what the application must switch to.
    pub outputs: Vec<String>,
    /// A reshard's or a rebalance's rows and organizations, counted live on the old database(s)
    /// when the plan was made (`None` when they were not reached, or the rows already moved).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub live: Option<Live>,
    /// With `migration_keep_days`, when what is kept goes (RFC 3339): the first apply from then
    /// deletes it, as `--finish-migration` does.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub kept_until: Option<String>,
}

/// When a finished migration's kept copy is deleted: `--finish-migration` asks for it, and with
/// `migration_keep_days`, so does a plan made (`now`) that many days after the migration finished.
#[derive(Debug, Clone, Copy, Default)]
pub struct Finish {
    pub asked: bool,
    pub now: Option<SystemTime>,
}

/// Rows and organizations with the shard key, counted live.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Live {
    /// Each shard's after the migration.
    pub rows: Vec<u64>,
    pub organizations: Vec<u64>,
    /// Those that change database: every one for a reshard, those the new rule routes to another
    /// shard for a rebalance.
    pub moving_rows: u64,
    pub moving_organizations: u64,
}

impl Live {
    /// From each old database's count over the new rule (`commands::routed_rows`), in shard
    /// order: one for a reshard, each old shard's for a rebalance.
    pub fn from_counts(counts: &[commands::Routed], motion: Motion) -> Live {
        let width = counts.iter().map(|c| c.rows.len()).max().unwrap_or(0);
        let mut live =
            Live { rows: vec![0; width], organizations: vec![0; width], moving_rows: 0, moving_organizations: 0 };
        for (from, count) in counts.iter().enumerate() {
            for (to, (rows, keys)) in count.rows.iter().zip(&count.keys).enumerate() {
                live.rows[to] += rows;
                live.organizations[to] += keys;
                if motion != Motion::Rebalance || to != from {
                    live.moving_rows += rows;
                    live.moving_organizations += keys;
                }
            }
        }
        live
    }
}

/// A new primary of a migration.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Target {
    /// Its service (`postgres.main`, `postgres.shard[1]`).
    pub service: Address,
    /// Its host, and the server under it.
    pub host: Address,
    pub server: Option<Address>,
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

#[cfg(test)]
mod tests;
