//! Waiting for actions: every running action of every operation in flight is read together, up to
//! 25 ids per `GET /actions?id=..&id=..`, by one shared poller with backoff, until each is `success`
//! or `error`, within a bound.

use std::collections::BTreeMap;
use std::time::{Duration, Instant};

use reqwest::Method;
use serde_json::Value;

use tokio::sync::Notify;

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
            first_poll: Duration::from_millis(100),
            max_poll: Duration::from_secs(2),
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

/// The actions every task of a client waits for, polled together: one task at a time polls every
/// running action of every waiter (25 ids per request) and wakes the others, so ten operations in
/// flight cost one request per poll, not ten. The interval starts at `first_poll`, grows by a
/// quarter after each poll that finished nothing, up to `max_poll`, and starts over when an action
/// finishes or a new one is awaited.
#[derive(Debug)]
pub(super) struct Watcher {
    state: std::sync::Mutex<Watched>,
    wake: Notify,
    polling: tokio::sync::Mutex<()>,
}

#[derive(Debug, Default)]
struct Watched {
    /// Action id -> how many waiters want it.
    waiters: BTreeMap<u64, usize>,
    /// Finished actions (success or error) not yet collected by every waiter.
    finished: BTreeMap<u64, Value>,
    interval: Duration,
}

impl Watcher {
    pub(super) fn new() -> Watcher {
        Watcher { state: std::sync::Mutex::new(Watched::default()), wake: Notify::new(), polling: Default::default() }
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, Watched> {
        self.state.lock().unwrap_or_else(std::sync::PoisonError::into_inner)
    }

    fn forget(&self, ids: &[u64]) {
        let mut state = self.lock();
        for id in ids {
            if let Some(count) = state.waiters.get_mut(id) {
                *count -= 1;
                if *count == 0 {
                    state.waiters.remove(id);
                    state.finished.remove(id);
                }
            }
        }
    }
}

pub(super) async fn wait(client: &Client, ids: &[u64], operation: &Operation) -> Result<Vec<Value>, ApiError> {
    let mut ids: Vec<u64> = ids.to_vec();
    ids.sort_unstable();
    ids.dedup();
    let watcher = &client.watcher;
    {
        let mut state = watcher.lock();
        // Polling starts over quickly when nothing was being waited for; a wait joining others
        // keeps their pace, so a stream of operations does not poll ever faster.
        if state.waiters.is_empty() {
            state.interval = client.config.actions.first_poll;
        }
        for id in &ids {
            *state.waiters.entry(*id).or_insert(0) += 1;
        }
    }
    let result = collect(client, &ids, operation).await;
    watcher.forget(&ids);
    result
}

async fn collect(client: &Client, ids: &[u64], operation: &Operation) -> Result<Vec<Value>, ApiError> {
    let config = client.config.actions;
    let watcher = &client.watcher;
    let started = Instant::now();
    loop {
        let woken = watcher.wake.notified();
        {
            let state = watcher.lock();
            let mut done = Vec::new();
            for id in ids {
                match state.finished.get(id) {
                    Some(action) if ActionState::of(action) == ActionState::Error => {
                        return Err(failed(operation, *id, action));
                    }
                    Some(action) => done.push(action.clone()),
                    None => {}
                }
            }
            if done.len() == ids.len() {
                return Ok(done);
            }
        }
        if started.elapsed() >= config.timeout {
            let running: Vec<u64> = {
                let state = watcher.lock();
                ids.iter().filter(|id| !state.finished.contains_key(id)).copied().collect()
            };
            return Err(ApiError::action(
                operation,
                "action_timeout",
                format!("actions {running:?} still running after {} s", config.timeout.as_secs()),
            ));
        }
        match watcher.polling.try_lock() {
            Ok(_poller) => {
                let interval = watcher.lock().interval;
                tokio::time::sleep(interval).await;
                let outcome = poll(client, operation).await;
                watcher.wake.notify_waiters();
                outcome?;
            }
            // Another waiter polls; its poll wakes this one. The bound covers a poller whose task
            // was cancelled mid-poll.
            Err(_) => {
                let _ = tokio::time::timeout(config.max_poll * 2, woken).await;
            }
        }
    }
}

/// One poll of every action some waiter wants and that has not finished.
async fn poll(client: &Client, operation: &Operation) -> Result<(), ApiError> {
    let config = client.config.actions;
    let watcher = &client.watcher;
    let running: Vec<u64> = {
        let state = watcher.lock();
        state.waiters.keys().filter(|id| !state.finished.contains_key(id)).copied().collect()
    };
    let mut finished_any = false;
    for chunk in running.chunks(IDS_PER_REQUEST) {
        let query: Vec<(&str, String)> = chunk.iter().map(|id| ("id", id.to_string())).collect();
        let body = client.request(Method::GET, "/actions", &query, None, operation).await?;
        let actions = body.get("actions").and_then(Value::as_array).cloned().unwrap_or_default();
        let mut state = watcher.lock();
        for action in actions {
            let Some(id) = action.get("id").and_then(Value::as_u64) else { continue };
            if ActionState::of(&action) != ActionState::Running && state.waiters.contains_key(&id) {
                state.finished.insert(id, action);
                finished_any = true;
            }
        }
    }
    let mut state = watcher.lock();
    state.interval =
        if finished_any { config.first_poll } else { (state.interval + state.interval / 4).min(config.max_poll) };
    Ok(())
}

fn failed(operation: &Operation, id: u64, action: &Value) -> ApiError {
    let code = action.pointer("/error/code").and_then(Value::as_str).unwrap_or("action_error");
    let message = action.pointer("/error/message").and_then(Value::as_str).unwrap_or("the action failed");
    let command = action.get("command").and_then(Value::as_str).unwrap_or("action");
    ApiError::action(operation, code, format!("action {id} ({command}) failed: {message}"))
}
