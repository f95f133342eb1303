//! The executor: carries a plan out through the API, walking the changes' graph in parallel
//! (dependencies first, deletes dependents first) and recording every finished operation in state
//! at once. Before a create, the object is recorded without an id, so an apply killed while the
//! API works leaves a record that the next refresh completes by the object's labels. On the first
//! failure (or a stop request) nothing new starts; what is in flight finishes and is recorded.

use std::collections::BTreeMap;
use std::path::PathBuf;
use std::sync::atomic::AtomicBool;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use terrace_providers::client::{ApiError, Client};
use terrace_providers::cloud;
use terrace_providers::objectstorage::ObjectStorage;
use terrace_state::{Backend, State};

use super::resolve::{self, Unresolved, cloud_kind, record};
use crate::addr::Address;
use crate::diff::value_to_json;
use crate::graph::Dag;
use crate::kind::Kind;
use crate::model::Compiled;
use crate::plan::{Action, Plan, ResourceChange};
use crate::walk::{Outcome, walk};

/// The API clients an apply uses.
#[derive(Debug, Clone)]
pub struct Services {
    pub client: Client,
    /// Object Storage, for buckets; `None` without S3 credentials.
    pub storage: Option<ObjectStorage>,
    /// How long to wait for servers over SSH.
    pub hosts: super::HostTimeouts,
    /// `--migration-hook`: run after each step of a data migration.
    pub migration_hook: Option<String>,
}

/// What the executor tells whoever shows progress.
#[derive(Debug, Clone)]
pub enum Event {
    Started {
        address: Address,
        verb: &'static str,
    },
    Finished {
        address: Address,
        verb: &'static str,
        elapsed: Duration,
        id: Option<String>,
    },
    Failed {
        address: Address,
        verb: &'static str,
        error: String,
    },
    /// Where a long operation stands (a data migration's step and lag).
    Note {
        address: Address,
        message: String,
    },
}

pub trait Progress: Send + Sync {
    fn event(&self, event: Event);
}

/// How an apply ended.
#[derive(Debug, Clone, Default)]
pub struct Report {
    pub done: Vec<Address>,
    pub failed: Vec<(Address, String)>,
    /// Not attempted because something they depend on failed.
    pub skipped: Vec<Address>,
    /// Not started because the apply stopped.
    pub not_started: Vec<Address>,
    /// The state could not be written: the last error.
    pub state_error: Option<String>,
    /// The backend could not take the state, which is kept in this file instead
    /// (`terrace state push FILE` puts it back).
    pub unsaved: Option<PathBuf>,
}

impl Report {
    pub fn succeeded(&self) -> bool {
        self.failed.is_empty() && self.skipped.is_empty() && self.not_started.is_empty() && self.state_error.is_none()
    }
}

/// The state and where it is saved, shared by the operations in flight.
pub(super) struct Recorder {
    pub(super) state: State,
    backend: Arc<dyn Backend>,
    /// Where the state goes when the backend cannot take it (a remote backend down mid-apply).
    fallback: Option<PathBuf>,
    /// The fallback was written: the backend is behind it.
    unsaved: bool,
}

impl Recorder {
    /// Applies `change` to the state and saves it whole (serial + 1). When the backend refuses
    /// or cannot be reached, the state is kept in the fallback file, so that nothing that was done
    /// is forgotten, and the operation fails (the walk stops).
    pub(super) fn save(&mut self, change: impl FnOnce(&mut State)) -> Result<(), String> {
        change(&mut self.state);
        self.state.increment_serial();
        let Err(error) = self.backend.write(&self.state) else { return Ok(()) };
        let Some(path) = &self.fallback else { return Err(format!("cannot save the state: {error}")) };
        match terrace_state::write_state_atomically(path, &terrace_state::to_json(&self.state)) {
            Ok(()) => {
                self.unsaved = true;
                Err(format!("cannot save the state: {error}; it is kept in {}", path.display()))
            }
            Err(also) => Err(format!("cannot save the state: {error}; nor in {}: {also}", path.display())),
        }
    }
}

pub(super) struct Context {
    pub(super) services: Services,
    stack: String,
    compiled: Option<Arc<Compiled>>,
    changes: BTreeMap<Address, ResourceChange>,
    /// The data migrations this apply runs, by the service they move.
    migrations: BTreeMap<Address, crate::migrate::Migration>,
    pub(super) recorder: Mutex<Recorder>,
    pub(super) progress: Arc<dyn Progress>,
    /// What went wrong with each failed change, for the summary.
    errors: Mutex<BTreeMap<Address, String>>,
}

/// Applies `plan` (made from `compiled`, or a destroy plan with `None`) to `state`, saving through
/// `backend`. Returns the final state and what happened.
#[expect(clippy::too_many_arguments, reason = "the run's parts, each from a different layer of the CLI")]
pub async fn apply(
    plan: &Plan,
    compiled: Option<Arc<Compiled>>,
    state: State,
    backend: Arc<dyn Backend>,
    services: Services,
    parallelism: usize,
    stop: Arc<AtomicBool>,
    progress: Arc<dyn Progress>,
    fallback: Option<PathBuf>,
) -> (State, Report) {
    let mut report = Report::default();
    let changes: BTreeMap<Address, ResourceChange> = plan
        .resource_changes
        .iter()
        .filter(|c| c.action != Action::NoOp || c.previous_address.is_some())
        .map(|c| (c.address.clone(), c.clone()))
        .collect();
    let mut recorder = Recorder { state, backend, fallback, unsaved: false };
    // Objects that moved (a block gained or lost `count`) move in state first.
    let moves: Vec<(Address, Address)> =
        changes.values().filter_map(|c| Some((c.previous_address.clone()?, c.address.clone()))).collect();
    if !moves.is_empty()
        && let Err(error) = recorder.save(|state| {
            for (from, to) in &moves {
                if let Some(resource) = state.resources.remove(&from.to_string()) {
                    state.resources.insert(to.to_string(), resource);
                }
            }
        })
    {
        report.state_error = Some(error);
        return (recorder.state, report);
    }
    let mut graph = order(&changes, compiled.as_deref(), &recorder.state);
    let migrations: BTreeMap<Address, crate::migrate::Migration> =
        plan.migrations.iter().filter(|m| m.runs()).map(|m| (m.service.clone(), m.clone())).collect();
    // A migration is recorded before the servers it needs are made, so that an apply killed while
    // it makes them continues the migration rather than forgetting it.
    for migration in migrations.values() {
        if let Err(error) = super::migrate::started(&mut recorder, migration) {
            report.state_error = Some(error);
            return (recorder.state, report);
        }
    }
    // A migration runs once its new hosts are up and its old server is on the private network.
    for migration in migrations.values() {
        graph.add(migration.service.clone(), ());
        for (address, change) in &changes {
            let part = address.is_within(&migration.service)
                || Some(address) == migration.from_server.as_ref()
                || migration.to.iter().any(|t| address.is_within(&t.service));
            if part && change.action != Action::Delete {
                graph.depend(&migration.service, address);
            }
        }
    }
    let context = Arc::new(Context {
        services,
        stack: plan.stack.clone(),
        compiled: compiled.clone(),
        changes,
        migrations,
        recorder: Mutex::new(recorder),
        progress,
        errors: Mutex::new(BTreeMap::new()),
    });
    let run = context.clone();
    let outcomes = walk(&graph, parallelism, stop, move |address: Address| {
        let context = run.clone();
        async move {
            let migration = context.migrations.get(&address);
            let change = context.changes.get(&address);
            let verb = change.map_or("migrate", verb);
            context.progress.event(Event::Started { address: address.clone(), verb });
            let started = Instant::now();
            let result = match (migration, change) {
                (Some(migration), _) => super::migrate::run(&context, migration).await.map(|()| None),
                (None, Some(change)) => carry_out(&context, change).await,
                (None, None) => Err(format!("`{address}` has no change in the plan")),
            };
            match result {
                Ok(id) => {
                    let elapsed = started.elapsed();
                    context.progress.event(Event::Finished { address, verb, elapsed, id });
                    true
                }
                Err(error) => {
                    if let Ok(mut errors) = context.errors.lock() {
                        errors.insert(address.clone(), error.clone());
                    }
                    context.progress.event(Event::Failed { address, verb, error });
                    false
                }
            }
        }
    })
    .await;
    let mut errors = std::mem::take(&mut *context.errors.lock().unwrap_or_else(|e| e.into_inner()));
    for (address, outcome) in outcomes {
        match outcome {
            Outcome::Done => report.done.push(address),
            Outcome::Failed => {
                let error = errors.remove(&address).unwrap_or_default();
                report.failed.push((address, error));
            }
            Outcome::Skipped => report.skipped.push(address),
            Outcome::NotStarted => report.not_started.push(address),
        }
    }
    let Ok(context) = Arc::try_unwrap(context) else {
        report.state_error = Some("the apply's tasks outlived it".into());
        return (State::new(None), report);
    };
    let mut recorder = context.recorder.into_inner().unwrap_or_else(|e| e.into_inner());
    if recorder.unsaved {
        report.unsaved = recorder.fallback.clone();
    }
    // A plan limited by `--target` applies part of the phase: the phase is not recorded as applied.
    let whole = compiled.as_ref().is_none_or(|c| {
        c.resources
            .iter()
            .filter(|(_, resource)| !(plan.hosts_skipped && resource.kind == Kind::Host))
            .all(|(address, _)| plan.resource_changes.iter().any(|change| &change.address == address))
    });
    if report.succeeded() && whole {
        let outputs = finish(compiled.as_deref(), &recorder.state);
        if let Err(error) = recorder.save(|state| {
            state.phase = compiled.as_ref().map(|c| c.phase.name.clone());
            state.outputs = outputs;
            // What a finished migration kept is deleted now (--finish-migration), or everything is.
            if plan.destroy {
                state.migrations.clear();
            }
            for migration in plan.migrations.iter().filter(|m| m.status == crate::migrate::Status::Finishes) {
                state.migrations.remove(&migration.service.to_string());
            }
            // A service removed altogether takes its migration's record with it.
            let recorded: Vec<Address> = state.resources.keys().filter_map(|a| a.parse().ok()).collect();
            state.migrations.retain(|service, _| {
                service.parse::<Address>().is_ok_and(|service| recorded.iter().any(|a| a.is_within(&service)))
            });
            // So does a migration that never ran a step and that this plan no longer has.
            state.migrations.retain(|service, json| {
                json.get("step").is_some_and(|step| !step.is_null())
                    || plan.migrations.iter().any(|m| &m.service.to_string() == service)
            });
        }) {
            report.state_error = Some(error);
        }
    }
    (recorder.state, report)
}

fn verb(change: &ResourceChange) -> &'static str {
    match change.action {
        Action::Create => "create",
        Action::Update | Action::NoOp => "update",
        Action::Replace => "replace",
        Action::Delete => "delete",
    }
}

/// The order of the work: a create, update or replace after those of what it depends on; a
/// delete after the deletes of what depended on it and the updates that stop using it.
fn order(changes: &BTreeMap<Address, ResourceChange>, compiled: Option<&Compiled>, state: &State) -> Dag<Address, ()> {
    let mut graph: Dag<Address, ()> = Dag::new();
    for address in changes.keys() {
        graph.add(address.clone(), ());
    }
    let recorded_dependencies = |address: &Address| -> Vec<Address> {
        state
            .resources
            .get(&address.to_string())
            .map(|r| r.dependencies.iter().filter_map(|d| d.parse().ok()).collect())
            .unwrap_or_default()
    };
    for (address, change) in changes {
        if change.action != Action::Delete
            && let Some(compiled) = compiled
        {
            for dependency in compiled.resources.dependencies(address) {
                if changes.get(dependency).is_some_and(|c| c.action != Action::Delete) {
                    graph.depend(address, dependency);
                }
            }
        }
        // What this object depended on when it was recorded, and is now deleted (or replaced, whose
        // old object goes first), waits for this one: dependents go first.
        for dependency in recorded_dependencies(address) {
            let Some(other) = changes.get(&dependency) else { continue };
            match (change.action, other.action) {
                (Action::Delete, Action::Delete | Action::Replace) => graph.depend(&dependency, address),
                (Action::Update | Action::Replace, Action::Delete) => graph.depend(&dependency, address),
                _ => {}
            }
        }
    }
    graph
}

/// One change, start to end. Returns the object's id, for the progress line.
async fn carry_out(context: &Context, change: &ResourceChange) -> Result<Option<String>, String> {
    let address = &change.address;
    if change.kind == Kind::Host {
        return carry_out_host(context, change).await;
    }
    match change.action {
        Action::Create => create(context, address).await,
        Action::Update | Action::NoOp => update(context, address).await,
        Action::Delete => delete(context, address).await.map(|()| None),
        Action::Replace => {
            let old = context.recorder.lock().map_err(poisoned)?.state.resources.get(&address.to_string()).cloned();
            let create_first = context
                .compiled
                .as_ref()
                .and_then(|c| c.resource(address))
                .is_some_and(|r| r.lifecycle.create_before_destroy);
            if create_first {
                let id = create(context, address).await?;
                if let Some(old) = old {
                    delete_object(context, address, &old.kind, old.id.as_deref()).await?;
                }
                Ok(id)
            } else {
                delete(context, address).await?;
                create(context, address).await
            }
        }
    }
}

/// A host's change: over SSH, not through the API.
async fn carry_out_host(context: &Context, change: &ResourceChange) -> Result<Option<String>, String> {
    let address = &change.address;
    if change.action == Action::Delete {
        return super::host::remove(context, address, change).await.map(|()| None);
    }
    let compiled = context.compiled.as_ref().ok_or("a destroy plan configures no host")?;
    let resource = compiled.resource(address).ok_or_else(|| format!("`{address}` is not in the phase"))?;
    let first_boot = matches!(change.action, Action::Create | Action::Replace);
    super::host::converge(context, compiled, resource, change, first_boot).await
}

impl Context {
    pub(super) fn compiled(&self) -> Option<&Compiled> {
        self.compiled.as_deref()
    }
}

pub(super) fn poisoned<T>(_: T) -> String {
    "the state recorder is poisoned by an earlier panic".to_owned()
}

pub(super) fn unresolved(address: &Address) -> impl Fn(Unresolved) -> String + '_ {
    move |u| format!("`{address}` cannot be sent yet: {}", u.0)
}

async fn create(context: &Context, address: &Address) -> Result<Option<String>, String> {
    let compiled = context.compiled.as_ref().ok_or("a destroy plan creates nothing")?;
    let resource = compiled.resource(address).ok_or_else(|| format!("`{address}` is not in the phase"))?;
    if resource.kind == Kind::Keypair {
        super::host::generate(context, compiled, resource)?;
        return Ok(None);
    }
    if resource.kind == Kind::Secret {
        let length = resource.attr("length").and_then(crate::value::Value::as_u64).unwrap_or(32);
        let value = generate_secret(length as usize, resource.bool_attr("special"))?;
        let made = serde_json::Map::from_iter([("value".to_owned(), serde_json::json!(value))]);
        let mut recorder = context.recorder.lock().map_err(poisoned)?;
        let entry = record(resource, compiled, Some((terrace_state::model::GENERATED_ID, &made)), &recorder.state)
            .map_err(unresolved(address))?;
        recorder.save(|state| {
            state.resources.insert(address.to_string(), entry);
        })?;
        return Ok(None);
    }
    if resource.kind == Kind::Bucket {
        let storage = storage(context, address)?;
        let name = resource.str_attr("name").ok_or("a bucket needs a name")?.to_owned();
        let location = resource.str_attr("location").unwrap_or("fsn1").to_owned();
        storage.create_bucket(&name, &location).await.map_err(|e| e.to_string())?;
        let (access_key, secret_key) = storage.expose_credentials();
        let endpoint = serde_json::Map::from_iter([
            ("endpoint".to_owned(), serde_json::json!(storage.endpoint(&location))),
            ("access_key".to_owned(), serde_json::json!(access_key)),
            ("secret_key".to_owned(), serde_json::json!(secret_key)),
        ]);
        let mut recorder = context.recorder.lock().map_err(poisoned)?;
        let entry =
            record(resource, compiled, Some((&name, &endpoint)), &recorder.state).map_err(unresolved(address))?;
        recorder.save(|state| {
            state.resources.insert(address.to_string(), entry);
        })?;
        return Ok(Some(name));
    }
    let kind =
        cloud_kind(resource.kind).ok_or_else(|| format!("`{address}`: a {} has no API object", resource.kind))?;
    let desired = {
        let mut recorder = context.recorder.lock().map_err(poisoned)?;
        let desired = resolve::desired(resource, kind, &recorder.state, &context.stack).map_err(unresolved(address))?;
        // Recorded before the API is asked, without an id: if this run dies before the answer is
        // recorded, the next refresh finds the object by its labels.
        let pending = record(resource, compiled, None, &recorder.state).map_err(unresolved(address))?;
        recorder.save(|state| {
            state.resources.insert(address.to_string(), pending);
        })?;
        desired
    };
    let observed = cloud::create(&context.services.client, &desired).await.map_err(describe)?;
    let id = observed.id.to_string();
    let mut recorder = context.recorder.lock().map_err(poisoned)?;
    let entry =
        record(resource, compiled, Some((&id, &observed.attrs)), &recorder.state).map_err(unresolved(address))?;
    recorder.save(|state| {
        state.resources.insert(address.to_string(), entry);
    })?;
    Ok(Some(id))
}

async fn update(context: &Context, address: &Address) -> Result<Option<String>, String> {
    let compiled = context.compiled.as_ref().ok_or("a destroy plan updates nothing")?;
    let resource = compiled.resource(address).ok_or_else(|| format!("`{address}` is not in the phase"))?;
    let (desired, id) = {
        let recorder = context.recorder.lock().map_err(poisoned)?;
        let id = recorder
            .state
            .resources
            .get(&address.to_string())
            .and_then(|r| r.id.clone())
            .ok_or_else(|| format!("`{address}` is not recorded with an id"))?;
        let desired = match cloud_kind(resource.kind) {
            Some(kind) => {
                Some(resolve::desired(resource, kind, &recorder.state, &context.stack).map_err(unresolved(address))?)
            }
            None => None,
        };
        (desired, id)
    };
    let observed = match desired {
        Some(desired) => {
            let numeric: u64 = id.parse().map_err(|_| format!("`{address}` has a non-numeric id {id}"))?;
            Some(cloud::update(&context.services.client, numeric, &desired).await.map_err(describe)?)
        }
        // A bucket has nothing to change in place: its storage estimate is terrace's own.
        None => None,
    };
    let mut recorder = context.recorder.lock().map_err(poisoned)?;
    let previous = recorder.state.resources.get(&address.to_string()).cloned();
    let computed = observed.map(|o| o.attrs).unwrap_or_else(|| previous.map(|p| p.attributes).unwrap_or_default());
    let entry = record(resource, compiled, Some((&id, &computed)), &recorder.state).map_err(unresolved(address))?;
    recorder.save(|state| {
        state.resources.insert(address.to_string(), entry);
    })?;
    Ok(Some(id))
}

async fn delete(context: &Context, address: &Address) -> Result<(), String> {
    let recorded = context.recorder.lock().map_err(poisoned)?.state.resources.get(&address.to_string()).cloned();
    let Some(recorded) = recorded else { return Ok(()) };
    delete_object(context, address, &recorded.kind, recorded.id.as_deref()).await?;
    let mut recorder = context.recorder.lock().map_err(poisoned)?;
    recorder.save(|state| {
        state.resources.remove(&address.to_string());
    })
}

async fn delete_object(context: &Context, address: &Address, kind: &str, id: Option<&str>) -> Result<(), String> {
    let Some(id) = id else { return Ok(()) };
    if kind == "secret" || kind == "keypair" {
        // Only in state: forgetting it is deleting it.
        return Ok(());
    }
    if kind == "bucket" {
        let location = context
            .recorder
            .lock()
            .map_err(poisoned)?
            .state
            .resources
            .get(&address.to_string())
            .and_then(|r| r.attributes.get("location").and_then(|l| l.as_str()).map(str::to_owned))
            .unwrap_or_else(|| "fsn1".to_owned());
        return storage(context, address)?.delete_bucket(id, &location).await.map_err(|e| e.to_string());
    }
    let kind: cloud::CloudKind = kind.parse().map_err(|()| format!("`{address}` has an unknown kind {kind}"))?;
    let numeric: u64 = id.parse().map_err(|_| format!("`{address}` has a non-numeric id {id}"))?;
    cloud::delete(&context.services.client, kind, numeric, &address.to_string()).await.map_err(describe)
}

fn storage<'c>(context: &'c Context, address: &Address) -> Result<&'c ObjectStorage, String> {
    context.services.storage.as_ref().ok_or_else(|| {
        format!(
            "`{address}` is an Object Storage bucket: set TERRACE_S3_ACCESS_KEY and TERRACE_S3_SECRET_KEY \
             (and TERRACE_S3_ENDPOINT for another endpoint than Hetzner's)"
        )
    })
}

fn describe(error: ApiError) -> String {
    error.to_string()
}

/// The stack's outputs as recorded after a complete apply.
pub(super) fn finish(compiled: Option<&Compiled>, state: &State) -> BTreeMap<String, terrace_state::OutputState> {
    let Some(compiled) = compiled else { return BTreeMap::new() };
    compiled
        .outputs
        .iter()
        .filter_map(|output| {
            let value = resolve::for_state(&output.value, state).ok()?;
            Some((
                output.name.clone(),
                terrace_state::OutputState { value: value_to_json(&value), sensitive: output.sensitive },
            ))
        })
        .collect()
}

/// A random secret from the operating system's generator: letters and digits (and, with
/// `special`, a few punctuation marks safe in URLs and config files), by rejection sampling so
/// every character is equally likely.
fn generate_secret(length: usize, special: bool) -> Result<String, String> {
    const PLAIN: &[u8] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789";
    const MORE: &[u8] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_.~";
    let alphabet = if special { MORE } else { PLAIN };
    let limit = 256 - 256 % alphabet.len();
    let mut out = String::with_capacity(length);
    let mut buffer = [0u8; 64];
    while out.len() < length.clamp(8, 256) {
        getrandom::fill(&mut buffer).map_err(|e| format!("the system's random generator failed: {e}"))?;
        for byte in buffer {
            if (byte as usize) < limit && out.len() < length.clamp(8, 256) {
                out.push(alphabet[byte as usize % alphabet.len()] as char);
            }
        }
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::generate_secret;

    #[test]
    fn secrets_are_random_of_the_asked_length_and_alphabet() {
        let a = generate_secret(32, false).expect("a secret");
        let b = generate_secret(32, false).expect("a secret");
        assert_eq!(a.len(), 32);
        assert_ne!(a, b);
        assert!(a.chars().all(|c| c.is_ascii_alphanumeric()), "{a}");
        let long = generate_secret(200, true).expect("a secret");
        assert!(long.chars().all(|c| c.is_ascii_alphanumeric() || "-_.~".contains(c)), "{long}");
    }
}
