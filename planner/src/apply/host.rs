//! Hosts over SSH: what the executor does for a `host` (the configuration terrace keeps on a
//! service's server) and a `keypair`. A new host is awaited through its first boot and checked;
//! a changed one is converged in place: the files written atomically, then the steps of
//! `services::converge` (reload where enough, restart where needed). Before anything is written
//! the state records the convergence as pending, and after it the files and their digests, so an
//! apply stopped halfway is finished by the next one.

use std::collections::BTreeMap;
use std::time::Duration;

use serde_json::{Map, Value as Json, json};
use terrace_providers::host::{self as ssh, Login, Session, Target, sha256_hex};
use terrace_state::ResourceState;

use super::exec::{Context, poisoned, unresolved};
use super::resolve::{self, record};
use crate::addr::Address;
use crate::model::{Compiled, Resource};
use crate::plan::ResourceChange;
use crate::services::converge::{self, Disruption, HostService, Step};
use crate::value::Value;

/// How long terrace waits for hosts.
#[derive(Debug, Clone, Copy)]
pub struct HostTimeouts {
    /// For a new server's first boot (cloud-init installs the packages): `TERRACE_HOST_BOOT_TIMEOUT`.
    pub boot: Duration,
    /// For a running server to answer SSH: `TERRACE_HOST_TIMEOUT`.
    pub connect: Duration,
}

impl Default for HostTimeouts {
    fn default() -> Self {
        HostTimeouts { boot: Duration::from_secs(20 * 60), connect: Duration::from_secs(60) }
    }
}

/// A host's desired configuration, resolved from state: where it is, how to log in, its files
/// (path -> content, mode, owner) and packages.
struct Desired {
    target: Target,
    login: Login,
    service: HostService,
    files: BTreeMap<String, (String, String, String)>,
    packages: Vec<String>,
}

fn desired(context: &Context, resource: &Resource) -> Result<Desired, String> {
    let address = &resource.address;
    let recorder = context.recorder.lock().map_err(poisoned)?;
    let state = &recorder.state;
    // Each value read as recorded now (a file's template rendered with the secrets and addresses).
    let text = |attrs: &BTreeMap<String, Value>, name: &str| -> Result<String, String> {
        let value = attrs.get(name).cloned().unwrap_or(Value::Null);
        resolve::for_state(&value, state)
            .map_err(unresolved(address))?
            .text()
            .map(str::to_owned)
            .ok_or_else(|| format!("`{address}`: `{name}` is not a text"))
    };
    let attrs = &resource.attrs;
    let target = Target {
        name: address.to_string(),
        address: text(attrs, "address")?,
        port: 22,
        host_key: text(attrs, "host_key")?,
    };
    let login = Login { user: "root".into(), private_key: text(attrs, "login_key")? };
    let mut files = BTreeMap::new();
    for file in resource.blocks("file") {
        files.insert(text(file, "path")?, (text(file, "content")?, text(file, "mode")?, text(file, "owner")?));
    }
    let packages = resource.attr("packages").map(Value::texts).unwrap_or_default();
    Ok(Desired { target, login, service: crate::diff::service_of(&resource.attrs), files, packages })
}

fn describe(error: ssh::HostError) -> String {
    error.to_string()
}

/// Creates or converges the host `resource`: `first_boot` when its server is new (or replaced),
/// with the change the plan showed, to check the server against it.
pub(super) async fn converge(
    context: &Context,
    compiled: &Compiled,
    resource: &Resource,
    planned: &ResourceChange,
    first_boot: bool,
) -> Result<Option<String>, String> {
    let want = desired(context, resource)?;
    let mut wait = if first_boot { context.services.hosts.boot } else { context.services.hosts.connect };
    let mut reconnects = 0;
    let result = loop {
        let deadline = tokio::time::Instant::now() + wait;
        let session = match Session::connect_until(&want.target, &want.login, deadline).await {
            Ok(session) => session,
            Err(error) => break Err(Stopped::from(error)),
        };
        let result = converge_on(context, compiled, resource, planned, first_boot, &want, &session).await;
        session.close().await;
        match result {
            // The server went away mid-way (a reboot, a network blip): the convergence is recorded
            // as pending and every step is safe to run again, so it starts over from what the
            // server holds once it answers again, as the next apply would.
            Err(Stopped::Disconnected(_)) if reconnects < MAX_RECONNECTS => {
                reconnects += 1;
                wait = context.services.hosts.connect;
            }
            other => break other,
        }
    };
    // What a server said about a failure (a command's output, cloud-init's log) may quote a
    // password: every recorded secret is masked before it is shown.
    result.map(|()| server_id(context, resource)).map_err(|stopped| masked(context, &stopped.to_string()))
}

/// How many times a convergence starts over after its connection ended.
const MAX_RECONNECTS: u32 = 2;

/// Why a convergence stopped: its connection ended (the server may have rebooted: converging
/// again is safe), or anything else.
enum Stopped {
    Disconnected(String),
    Failed(String),
}

impl From<ssh::HostError> for Stopped {
    fn from(error: ssh::HostError) -> Self {
        match error {
            ssh::HostError::Disconnected { .. } => Stopped::Disconnected(error.to_string()),
            other => Stopped::Failed(other.to_string()),
        }
    }
}

impl From<String> for Stopped {
    fn from(message: String) -> Self {
        Stopped::Failed(message)
    }
}

impl std::fmt::Display for Stopped {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Stopped::Disconnected(message) | Stopped::Failed(message) => f.write_str(message),
        }
    }
}

/// `text` with every secret the state records masked.
pub(super) fn masked(context: &Context, text: &str) -> String {
    match context.recorder.lock() {
        Ok(recorder) => crate::diff::mask(text, &crate::diff::secrets_of(recorder.state.resources.values())),
        Err(_) => "(the error is not shown: the state recorder is poisoned)".into(),
    }
}

async fn converge_on(
    context: &Context,
    compiled: &Compiled,
    resource: &Resource,
    planned: &ResourceChange,
    first_boot: bool,
    want: &Desired,
    session: &Session,
) -> Result<(), Stopped> {
    let address = &resource.address;
    if first_boot {
        wait_for_first_boot(session, address).await?;
    }
    // What the server holds now of the files terrace manages there (desired or recorded), and the
    // steps of a convergence that an earlier run did not finish.
    let recorded = context.recorder.lock().map_err(poisoned)?.state.resources.get(&address.to_string()).cloned();
    let mut paths: Vec<String> = want.files.keys().cloned().collect();
    paths.extend(recorded.as_ref().map(files_of).unwrap_or_default().into_keys());
    paths.sort();
    paths.dedup();
    let live = session.read_files(&paths).await?;
    let old: BTreeMap<String, String> = live
        .iter()
        .filter_map(|(path, file)| Some((path.clone(), String::from_utf8_lossy(&file.as_ref()?.content).into_owned())))
        .collect();
    let new: BTreeMap<String, String> = want.files.iter().map(|(p, (c, _, _))| (p.clone(), c.clone())).collect();
    let missing = missing_packages(session, &want.packages).await?;
    let pending = recorded.as_ref().map(pending_steps).unwrap_or_default();
    let steps = converge::resume(pending, converge::converge(&want.service, &old, &new, &missing));
    let disruption = converge::disruption(&steps);
    // The plan is a promise to the people who approved it: a server that now needs more than it
    // showed (a restart where it said reload) is left alone until it is planned again.
    if !first_boot && let Some(host) = &planned.host {
        let promised = &host.disruption;
        if disruption.exceeds(promised) {
            return Err(Stopped::Failed(format!(
                "`{address}`: the server now needs {} where the plan showed {}; its files changed since the plan. Run plan again",
                disruption.describe(),
                promised.describe()
            )));
        }
    }
    let differs = |path: &String| {
        let (content, mode, owner) = &want.files[path];
        match live.get(path).and_then(Option::as_ref) {
            Some(file) => file.content != content.as_bytes() || &file.mode != mode || &file.owner != owner,
            None => true,
        }
    };
    let writes: Vec<String> = want.files.keys().filter(|p| differs(p)).cloned().collect();
    let removes: Vec<String> = old.keys().filter(|p| !want.files.contains_key(*p)).cloned().collect();
    if !writes.is_empty() || !removes.is_empty() || !steps.is_empty() {
        mark_pending(context, address, &new, &steps)?;
    }
    let (before, after): (Vec<&Step>, Vec<&Step>) =
        steps.iter().partition(|s| matches!(s, Step::InstallPackages { .. } | Step::DisableUnits { .. }));
    for step in before {
        run_step(session, address, step, &want.service, &old, &new).await?;
    }
    for path in &writes {
        let (content, mode, owner) = &want.files[path];
        session.write_file(path, content.as_bytes(), mode, owner).await?;
    }
    if !removes.is_empty() {
        session.check(&converge::remove_command(&removes), None).await?;
    }
    for step in after {
        run_step(session, address, step, &want.service, &old, &new).await?;
    }
    // What is there now is what terrace records.
    let check = session.digests(&want.files.keys().cloned().collect::<Vec<_>>()).await?;
    for (path, (content, _, _)) in &want.files {
        if check.get(path).cloned().flatten() != Some(sha256_hex(content.as_bytes())) {
            return Err(Stopped::Failed(format!("`{address}`: {path} does not hold what terrace wrote")));
        }
    }
    Ok(save(context, compiled, resource, want)?)
}

async fn run_step(
    session: &Session,
    address: &Address,
    step: &Step,
    service: &HostService,
    old: &BTreeMap<String, String>,
    new: &BTreeMap<String, String>,
) -> Result<(), Stopped> {
    let command = step.command(service, old, new);
    let what = |message: String| format!("`{address}`: {}: {message}", step.describe(service));
    match session.check(&command.shell, command.stdin.as_deref().map(str::as_bytes)).await {
        Ok(_) => Ok(()),
        Err(error) => Err(match Stopped::from(error) {
            Stopped::Disconnected(message) => Stopped::Disconnected(what(message)),
            Stopped::Failed(message) => Stopped::Failed(what(message)),
        }),
    }
}

/// Waits for cloud-init to finish the first boot; its failure is the host's, with the end of its
/// log.
async fn wait_for_first_boot(session: &Session, address: &Address) -> Result<(), Stopped> {
    let out = session.run("cloud-init status --wait --long", None).await?;
    match out.status {
        0 => Ok(()),
        // cloud-init 23.4 and later: done, with errors it recovered from.
        2 => Ok(()),
        status => {
            let log = session
                .run("tail -n 30 /var/log/cloud-init-output.log", None)
                .await
                .map(|o| String::from_utf8_lossy(&o.stdout).into_owned())
                .unwrap_or_default();
            Err(Stopped::Failed(format!(
                "`{address}`: the server's first boot failed (cloud-init status {status}):\n{}\n{log}",
                String::from_utf8_lossy(&out.stdout).trim()
            )))
        }
    }
}

/// The desired packages the server lacks.
async fn missing_packages(session: &Session, packages: &[String]) -> Result<Vec<String>, Stopped> {
    if packages.is_empty() {
        return Ok(Vec::new());
    }
    let out = session.check(&converge::missing_packages_command(packages), None).await?;
    Ok(String::from_utf8_lossy(&out).lines().map(str::to_owned).filter(|l| !l.is_empty()).collect())
}

/// The steps of an earlier convergence of this host that did not finish, from its record.
fn pending_steps(record: &ResourceState) -> Vec<Step> {
    record
        .attributes
        .get("pending")
        .and_then(|p| p.get("steps"))
        .and_then(|steps| serde_json::from_value(steps.clone()).ok())
        .unwrap_or_default()
}

/// How to reach a recorded host: its address, pinned host key and login key as recorded.
pub(super) fn reach(address: &str, record: &ResourceState) -> (Target, Login) {
    let text = |name: &str| record.attributes.get(name).and_then(Json::as_str).unwrap_or_default().to_owned();
    (
        Target { name: address.to_owned(), address: text("address"), port: 22, host_key: text("host_key") },
        Login { user: "root".into(), private_key: text("login_key") },
    )
}

/// The files of a host's record (path -> content).
pub(crate) fn files_of(record: &ResourceState) -> BTreeMap<String, String> {
    record
        .attributes
        .get("file")
        .and_then(Json::as_array)
        .map(|files| {
            files
                .iter()
                .filter_map(|f| Some((f.get("path")?.as_str()?.to_owned(), f.get("content")?.as_str()?.to_owned())))
                .collect()
        })
        .unwrap_or_default()
}

/// Records, before the first write, what the host is being converged to: a run stopped halfway
/// leaves it marked, and the next plan runs its steps again.
fn mark_pending(
    context: &Context,
    address: &Address,
    new: &BTreeMap<String, String>,
    steps: &[Step],
) -> Result<(), String> {
    let mut recorder = context.recorder.lock().map_err(poisoned)?;
    let key = address.to_string();
    let Some(mut entry) = recorder.state.resources.get(&key).cloned() else {
        // A host not recorded yet (its first boot): recorded once it is checked.
        return Ok(());
    };
    let digests: Map<String, Json> = new.iter().map(|(p, c)| (p.clone(), json!(sha256_hex(c.as_bytes())))).collect();
    entry.attributes.insert("pending".into(), json!({ "files": digests, "steps": steps }));
    recorder.save(|state| {
        state.resources.insert(key, entry);
    })
}

/// The record of a converged host: its attributes, each file with its digest, and the digest of
/// them all.
fn save(context: &Context, compiled: &Compiled, resource: &Resource, want: &Desired) -> Result<(), String> {
    let mut recorder = context.recorder.lock().map_err(poisoned)?;
    let listing: String = want
        .files
        .iter()
        .map(|(path, (content, mode, owner))| format!("{path}\0{mode}\0{owner}\0{}\0", sha256_hex(content.as_bytes())))
        .collect();
    let digest = sha256_hex(listing.as_bytes());
    let id = server_id_in(&recorder.state, resource).unwrap_or_else(|| "host".into());
    let computed = Map::from_iter([("digest".to_owned(), json!(digest))]);
    let mut entry =
        record(resource, compiled, Some((&id, &computed)), &recorder.state).map_err(unresolved(&resource.address))?;
    if let Some(Json::Array(files)) = entry.attributes.get_mut("file") {
        for file in files.iter_mut() {
            if let Some(content) = file.get("content").and_then(Json::as_str).map(|c| sha256_hex(c.as_bytes())) {
                file["sha256"] = json!(content);
            }
        }
    }
    for name in ["file", "login_key"] {
        if !entry.sensitive_attributes.iter().any(|s| s == name) {
            entry.sensitive_attributes.push(name.to_owned());
        }
    }
    entry.sensitive_attributes.sort();
    recorder.save(|state| {
        state.resources.insert(resource.address.to_string(), entry);
    })
}

fn server_id(context: &Context, resource: &Resource) -> Option<String> {
    let recorder = context.recorder.lock().ok()?;
    server_id_in(&recorder.state, resource)
}

/// The Hetzner id of the host's server, which is the host's id.
fn server_id_in(state: &terrace_state::State, resource: &Resource) -> Option<String> {
    let server = resource.ref_attr("server")?;
    state.resources.get(&server.to_string())?.id.clone()
}

/// A host leaves the phase: where its server stays, the service's units are stopped and disabled
/// (the files and the data stay); where the server goes too, there is nothing to do on it.
pub(super) async fn remove(context: &Context, address: &Address, planned: &ResourceChange) -> Result<(), String> {
    let recorded = context.recorder.lock().map_err(poisoned)?.state.resources.get(&address.to_string()).cloned();
    let Some(recorded) = recorded else { return Ok(()) };
    if let Some(Disruption::Stop { units }) = planned.host.as_ref().map(|h| &h.disruption) {
        let (target, login) = reach(&address.to_string(), &recorded);
        let deadline = tokio::time::Instant::now() + context.services.hosts.connect;
        let session = Session::connect_until(&target, &login, deadline).await.map_err(describe)?;
        let attrs = recorded.attributes.iter().map(|(k, v)| (k.clone(), crate::diff::json_to_value(v))).collect();
        let service = crate::diff::service_of(&attrs);
        let step = Step::DisableUnits { units: units.clone() };
        let command = step.command(&service, &BTreeMap::new(), &BTreeMap::new());
        let result = session.check(&command.shell, None).await;
        session.close().await;
        result.map_err(|error| masked(context, &describe(error)))?;
    }
    let mut recorder = context.recorder.lock().map_err(poisoned)?;
    recorder.save(|state| {
        state.resources.remove(&address.to_string());
    })
}

/// A key pair made here, from the operating system's random generator, recorded with its private
/// key as a secret.
pub(super) fn generate(context: &Context, compiled: &Compiled, resource: &Resource) -> Result<(), String> {
    let pair = ssh::generate_ed25519(&format!("terrace {}", resource.address)).map_err(describe)?;
    let made = Map::from_iter([
        ("private_key".to_owned(), json!(pair.private_openssh)),
        ("public_key".to_owned(), json!(pair.public_openssh)),
    ]);
    let mut recorder = context.recorder.lock().map_err(poisoned)?;
    let entry = record(resource, compiled, Some((terrace_state::model::GENERATED_ID, &made)), &recorder.state)
        .map_err(unresolved(&resource.address))?;
    recorder.save(|state| {
        state.resources.insert(resource.address.to_string(), entry);
    })
}

/// Refreshes the recorded hosts over SSH: a file that no longer holds what terrace wrote is drift,
/// read back into the state (with the file's path in the record's `drift`) so the plan shows what
/// changed and puts terrace's version back. A host whose server is gone from the state is gone
/// too. A host that cannot be reached is planned against its record, with a note saying so.
pub async fn refresh_hosts(state: &mut terrace_state::State, timeouts: HostTimeouts) -> Vec<String> {
    let hosts: Vec<(String, ResourceState)> =
        state.resources.iter().filter(|(_, r)| r.kind == "host").map(|(a, r)| (a.clone(), r.clone())).collect();
    let mut notes = Vec::new();
    let mut reads = Vec::new();
    for (address, record) in hosts {
        let server = record.attributes.get("server").and_then(Json::as_str).unwrap_or_default().to_owned();
        if !state.resources.contains_key(&server) {
            state.resources.remove(&address);
            notes.push(format!(
                "`{address}`: its server `{server}` is gone; the plan configures the new one from its first boot"
            ));
            continue;
        }
        reads.push(async move {
            let read = read_host(&address, &record, timeouts.connect).await;
            (address, record, read)
        });
    }
    for (address, mut record, read) in futures_join(reads).await {
        match read {
            Err(error) => notes.push(format!(
                "`{address}` was not refreshed over SSH, so the plan assumes the files terrace recorded: {error}"
            )),
            Ok(live) => {
                let mut drift = Vec::new();
                let laid = !live.is_empty();
                // Files an interrupted apply already wrote are terrace's, not drift.
                let pending: Map<String, Json> = record
                    .attributes
                    .get("pending")
                    .and_then(|p| p.get("files"))
                    .and_then(Json::as_object)
                    .cloned()
                    .unwrap_or_default();
                if let Some(Json::Array(files)) = record.attributes.get_mut("file") {
                    for file in files.iter_mut() {
                        let Some(path) = file.get("path").and_then(Json::as_str).map(str::to_owned) else { continue };
                        // Only the files whose digest differs were read back.
                        let Some(now) = live.get(&path).cloned() else { continue };
                        let now_sha = now.as_ref().map(|f| f.sha256.clone());
                        if now_sha.is_none() || pending.get(&path).and_then(Json::as_str) != now_sha.as_deref() {
                            drift.push(path.clone());
                        }
                        file["content"] = now.map_or(Json::Null, |f| json!(String::from_utf8_lossy(&f.content)));
                        file["sha256"] = now_sha.map_or(Json::Null, |s| json!(s));
                    }
                }
                if !drift.is_empty() {
                    notes.push(format!(
                        "`{address}`: changed on the server since terrace wrote it: {}",
                        drift.join(", ")
                    ));
                    record.attributes.insert("drift".into(), json!(drift));
                }
                if laid {
                    state.resources.insert(address, record);
                }
            }
        }
    }
    notes
}

/// Every recorded file of a host as the server holds it now.
async fn read_host(
    address: &str,
    record: &ResourceState,
    wait: Duration,
) -> Result<BTreeMap<String, Option<ssh::RemoteFile>>, String> {
    let (target, login) = reach(address, record);
    let session = Session::connect(&target, &login, wait.min(Duration::from_secs(20))).await.map_err(describe)?;
    let read = changed_files(&session, record).await;
    session.close().await;
    read
}

/// The recorded files whose digest on the server differs, as the server holds them (`None` for
/// one that is gone): digests of all in one command, the contents of those that changed only.
async fn changed_files(
    session: &Session,
    record: &ResourceState,
) -> Result<BTreeMap<String, Option<ssh::RemoteFile>>, String> {
    let files = files_of(record);
    let paths: Vec<String> = files.keys().cloned().collect();
    let digests = session.digests(&paths).await.map_err(describe)?;
    let changed: Vec<String> = files
        .iter()
        .filter(|(path, content)| digests.get(*path).cloned().flatten() != Some(sha256_hex(content.as_bytes())))
        .map(|(path, _)| path.clone())
        .collect();
    session.read_files(&changed).await.map_err(describe)
}

/// Runs the reads side by side (at most 16 hosts at once).
async fn futures_join<F>(futures: Vec<F>) -> Vec<F::Output>
where
    F: std::future::Future + Send + 'static,
    F::Output: Send + 'static,
{
    let limit = std::sync::Arc::new(tokio::sync::Semaphore::new(16));
    let handles: Vec<_> = futures
        .into_iter()
        .map(|future| {
            let limit = limit.clone();
            tokio::spawn(async move {
                let _permit = limit.acquire().await;
                future.await
            })
        })
        .collect();
    let mut out = Vec::new();
    for handle in handles {
        if let Ok(value) = handle.await {
            out.push(value);
        }
    }
    out
}
