//! Waiting for actions: every running action of a step is read together, up to 25 ids per
//! `GET /actions?id=..&id=..`, polling with backoff (500 ms doubling to a cap) until each is
//! `success` or `error`, within a bound.

use std::collections::BTreeMap;
use std::time::{Duration, Instant};

use reqwest::Method;
use serde_json::Value;

use super::{ApiError, Client, Operation};

/// Hetzner's limit of ids per `GET /actions`.
const IDS_PER_REQUEST: usize = 25;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ActionWait {
    pub first_poll: Duration,
    pub max_poll: Duration,
    /// The longest wait for all actions of a call.
    pub timeout: Duration,
}

impl Default for ActionWait {
    fn default() -> Self {
        Self {
            first_poll: Duration::from_millis(500),
            max_poll: Duration::from_secs(5),
            timeout: Duration::from_secs(1800),
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ActionState {
    Running,
    Success,
    Error,
}

impl ActionState {
    fn of(action: &Value) -> ActionState {
        match action.get("status").and_then(Value::as_str) {
            Some("success") => ActionState::Success,
            Some("error") => ActionState::Error,
            _ => ActionState::Running,
        }
    }
}

pub(super) async fn wait(client: &Client, ids: &[u64], operation: &Operation) -> Result<Vec<Value>, ApiError> {
    let wait = client.config.actions;
    let started = Instant::now();
    let mut pending: Vec<u64> = ids.to_vec();
    pending.sort_unstable();
    pending.dedup();
    let mut done: BTreeMap<u64, Value> = BTreeMap::new();
    let mut poll = wait.first_poll;
    while !pending.is_empty() {
        let mut still = Vec::new();
        for chunk in pending.chunks(IDS_PER_REQUEST) {
            let query: Vec<(&str, String)> = chunk.iter().map(|id| ("id", id.to_string())).collect();
            let body = client.request(Method::GET, "/actions", &query, None, operation).await?;
            let actions = body.get("actions").and_then(Value::as_array).cloned().unwrap_or_default();
            for id in chunk {
                let Some(action) = actions.iter().find(|a| a.get("id").and_then(Value::as_u64) == Some(*id)) else {
                    still.push(*id);
                    continue;
                };
                match ActionState::of(action) {
                    ActionState::Running => still.push(*id),
                    ActionState::Success => {
                        done.insert(*id, action.clone());
                    }
                    ActionState::Error => {
                        let code = action.pointer("/error/code").and_then(Value::as_str).unwrap_or("action_error");
                        let message =
                            action.pointer("/error/message").and_then(Value::as_str).unwrap_or("the action failed");
                        let command = action.get("command").and_then(Value::as_str).unwrap_or("action");
                        return Err(ApiError::action(
                            operation,
                            code,
                            format!("action {id} ({command}) failed: {message}"),
                        ));
                    }
                }
            }
        }
        pending = still;
        if pending.is_empty() {
            break;
        }
        if started.elapsed() >= wait.timeout {
            return Err(ApiError::action(
                operation,
                "action_timeout",
                format!("actions {pending:?} still running after {} s", wait.timeout.as_secs()),
            ));
        }
        tokio::time::sleep(poll).await;
        poll = (poll * 2).min(wait.max_poll);
    }
    Ok(ids.iter().filter_map(|id| done.get(id).cloned()).collect())
}
