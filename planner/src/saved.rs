//! Saved plans (`terrace plan --out FILE`): the plan, the lineage and serial of the state it was
//! made against, a digest of the definitions and variables, and a digest of the plan itself. A saved
//! plan is applied only as it is: stale (the state moved on, the definitions changed) or tampered
//! plans are refused with the reason.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};
use terrace_state::State;

use crate::diag::Sources;
use crate::plan::Plan;

/// The version of the saved-plan envelope.
/// Version 2 added the options the plan was made with.
pub const SAVED_PLAN_VERSION: u32 = 2;

/// How the plan was made, so that apply makes it again the same way and checks it matches.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct SavedOptions {
    pub phase: String,
    pub destroy: bool,
    pub refresh: bool,
    pub allow_data_loss: bool,
    pub targets: Vec<String>,
    /// `--hosts`: whether the hosts were planned (absent in plans saved before hosts existed).
    #[serde(default = "yes")]
    pub hosts: bool,
    /// `--finish-migration` (absent in plans saved before data migrations existed).
    #[serde(default)]
    pub finish_migration: bool,
    /// When the plan was made (RFC 3339), which apply plans again with, so that a data
    /// migration's `migration_keep_days` passes for both or neither.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub made_at: Option<String>,
}

fn yes() -> bool {
    true
}

#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct SavedPlan {
    pub terrace_saved_plan: u32,
    /// The state the plan was made against.
    pub lineage: String,
    pub serial: u64,
    /// SHA-256 of the definition files and the variables given.
    pub definitions_digest: String,
    /// SHA-256 of `options` and `plan` as saved: an edited plan no longer matches.
    pub plan_digest: String,
    pub options: SavedOptions,
    pub plan: serde_json::Value,
}

/// Why a saved plan cannot be applied.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum Stale {
    #[error("the file is not a saved terrace plan: {0}")]
    NotAPlan(String),
    #[error("the saved plan was edited after it was made (its digest does not match)")]
    Tampered,
    #[error("the plan was made for another state (lineage {planned}, the state's is {current})")]
    OtherLineage { planned: String, current: String },
    #[error("the state changed since the plan was made (serial {planned} then, {current} now): plan again")]
    StateMoved { planned: u64, current: u64 },
    #[error("the definitions or variables changed since the plan was made: plan again")]
    DefinitionsChanged,
}

/// SHA-256 of every definition file (by name) and the variables given on the command line and in
/// the environment.
pub fn definitions_digest(sources: &Sources, variables: &BTreeMap<String, String>) -> String {
    let mut files: Vec<_> = sources.files().iter().map(|f| (f.name.as_str(), f.text.as_str())).collect();
    files.sort();
    let mut hasher = Sha256::new();
    // Each part is length-prefixed, so that ("ab", "c") and ("a", "bc") differ.
    let parts = files.into_iter().chain(variables.iter().map(|(k, v)| (k.as_str(), v.as_str())));
    for part in parts.flat_map(|(name, value)| [name, value]) {
        hasher.update((part.len() as u64).to_le_bytes());
        hasher.update(part.as_bytes());
    }
    hex(&hasher.finalize())
}

fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

fn plan_digest(options: &SavedOptions, plan: &serde_json::Value) -> String {
    let mut hasher = Sha256::new();
    hasher.update(serde_json::to_vec(options).unwrap_or_default());
    hasher.update(serde_json::to_vec(plan).unwrap_or_default());
    hex(&hasher.finalize())
}

/// The saved plan as JSON text.
pub fn save(plan: &Plan, state: &State, definitions_digest: String, options: SavedOptions) -> String {
    let plan = serde_json::to_value(plan).unwrap_or(serde_json::Value::Null);
    let saved = SavedPlan {
        terrace_saved_plan: SAVED_PLAN_VERSION,
        lineage: state.lineage.clone(),
        serial: state.serial,
        definitions_digest,
        plan_digest: plan_digest(&options, &plan),
        options,
        plan,
    };
    crate::render::json(&saved)
}

/// Reads a saved plan and checks it still applies to `state` and the current definitions.
pub fn check(text: &str, state: &State, current_definitions: &str) -> Result<SavedPlan, Stale> {
    let saved: SavedPlan = serde_json::from_str(text).map_err(|e| Stale::NotAPlan(e.to_string()))?;
    if saved.terrace_saved_plan != SAVED_PLAN_VERSION {
        return Err(Stale::NotAPlan(format!(
            "saved-plan version {} is not {SAVED_PLAN_VERSION}",
            saved.terrace_saved_plan
        )));
    }
    if plan_digest(&saved.options, &saved.plan) != saved.plan_digest {
        return Err(Stale::Tampered);
    }
    if saved.lineage != state.lineage {
        return Err(Stale::OtherLineage { planned: saved.lineage, current: state.lineage.clone() });
    }
    if saved.serial != state.serial {
        return Err(Stale::StateMoved { planned: saved.serial, current: state.serial });
    }
    if saved.definitions_digest != current_definitions {
        return Err(Stale::DefinitionsChanged);
    }
    Ok(saved)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::plan::Plan;

    fn a_plan() -> Plan {
        let compiled = crate::model::Compiled {
            stack: "s".into(),
            phase: crate::model::PhaseInfo { name: "p".into(), ..Default::default() },
            resources: crate::graph::Dag::new(),
            composites: Vec::new(),
            outputs: Vec::new(),
        };
        crate::plan::plan_from_empty(&compiled, &terrace_providers::pricing::Catalog::embedded(), Vec::new())
    }

    #[test]
    fn a_fresh_plan_checks_and_a_stale_one_says_why() {
        let mut state = State::new(Some("s".into()));
        state.serial = 4;
        let text = save(&a_plan(), &state, "digest".into(), SavedOptions::default());
        assert!(check(&text, &state, "digest").is_ok());
        assert_eq!(check(&text, &state, "other").err(), Some(Stale::DefinitionsChanged));
        let mut moved = state.clone();
        moved.serial = 5;
        assert_eq!(check(&text, &moved, "digest").err(), Some(Stale::StateMoved { planned: 4, current: 5 }));
        let foreign = State::new(Some("s".into()));
        assert!(matches!(check(&text, &foreign, "digest"), Err(Stale::OtherLineage { .. })));
        let tampered = text.replace("\"stack\": \"s\"", "\"stack\": \"t\"");
        assert_ne!(tampered, text);
        assert_eq!(check(&tampered, &state, "digest").err(), Some(Stale::Tampered));
        let widened = text.replace("\"allow_data_loss\": false", "\"allow_data_loss\": true");
        assert_ne!(widened, text);
        assert_eq!(check(&widened, &state, "digest").err(), Some(Stale::Tampered));
        assert!(matches!(check("{}", &state, "digest"), Err(Stale::NotAPlan(_))));
    }
}
