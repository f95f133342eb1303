//! Data migrations: a phase that moves a database to other servers carries its data there instead
//! of destroying it. Two moves are found by the diff (`detect`):
//! - a *move*: a `postgres` service whose primary lives on another host than the recorded one
//!   (phase 1 -> 2: from the app server's own host to a server of its own);
//! - a *reshard*: a phase that removes a `postgres` service and adds a sharded block
//!   (`shard_key`) whose shards are all new (phase 3 -> 4: one primary into N shards).
//!
//! The plan holds either as ordered steps, each with its downtime and what the application must
//! do; apply carries the steps out over SSH (`apply::migrate`), recording each finished step in the
//! state's `migrations`, so an apply killed at any point is continued by the next one. Every new
//! primary starts as a streaming copy of the old one; a reshard then deletes, on each shard, the
//! organizations the seed's rule routes elsewhere. The old database is kept, stopped and
//! read-only, with what it ran on, until `terrace apply --finish-migration`. No I/O here.

pub mod commands;
mod detect;

use serde::{Deserialize, Deserializer, Serialize};
use terrace_state::State;

use crate::addr::Address;

pub use detect::{detect, kept, reshard_warnings};

/// One step of a migration, in the order they run.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
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
}

impl Step {
    /// The steps of a move.
    pub const MOVE: [Step; 4] = [Step::Prepare, Step::Clone, Step::CatchUp, Step::Switchover];
    /// The steps of a reshard.
    pub const RESHARD: [Step; 5] = [Step::Prepare, Step::Clone, Step::CatchUp, Step::Switchover, Step::Split];

    /// The steps of a move (`false`) or a reshard (`true`).
    pub fn all(reshard: bool) -> &'static [Step] {
        if reshard { &Self::RESHARD } else { &Self::MOVE }
    }

    pub fn as_str(self) -> &'static str {
        match self {
            Step::Prepare => "prepare",
            Step::Clone => "clone",
            Step::CatchUp => "catch-up",
            Step::Switchover => "switchover",
            Step::Split => "split",
        }
    }

    /// Of `steps`, those still to run after `done` (the last one finished, `None` before the first).
    pub fn after(steps: &'static [Step], done: Option<Step>) -> impl Iterator<Item = Step> {
        steps.iter().copied().filter(move |step| done.is_none_or(|done| *step > done))
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
    /// The last step finished; `None` before the first.
    pub step: Option<Step>,
    /// What is kept until `--finish-migration`: the old volume, host and host key.
    pub kept: Vec<String>,
    /// When the migration started (RFC 3339).
    pub started: String,
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

    pub fn to_json(&self) -> serde_json::Value {
        // A struct of strings and lists always serializes.
        serde_json::to_value(self).unwrap_or_default()
    }

    /// Its steps, in order.
    pub fn steps(&self) -> &'static [Step] {
        Step::all(self.shard_key.is_some())
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
    /// The service the data comes from (`postgres.main`); the state records the migration by it.
    pub service: Address,
    /// The host the data comes from, and the server under it.
    pub from: Address,
    pub from_server: Option<Address>,
    /// Where it goes: one target for a move, each shard in order for a reshard.
    pub to: Vec<Target>,
    /// A reshard's column (`organization_id`); `None` for a move.
    pub shard_key: Option<String>,
    pub status: Status,
    pub steps: Vec<PlannedStep>,
    /// Kept, stopped and read-only, until `terrace apply --finish-migration`.
    pub kept: Vec<Address>,
    /// The outputs that change with the move: what the application must switch to.
    pub outputs: Vec<String>,
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
