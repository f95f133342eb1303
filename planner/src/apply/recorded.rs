//! What a data migration reads of the state and the compiled phase, one way for moves, reshards,
//! rebalances and the plan's live counts: a host's session, a server's private address, a
//! service's replication password and database, a host's backup timers and PostgreSQL version.

use serde_json::Value as Json;
use terrace_providers::host::{Login, Session, Target};
use terrace_state::{ResourceState, State};

use crate::addr::Address;
use crate::kind::Kind;
use crate::model::Compiled;

/// The recorded host `address`.
pub(super) fn host<'s>(state: &'s State, address: &Address) -> Result<&'s ResourceState, String> {
    state.resources.get(&address.to_string()).ok_or_else(|| format!("`{address}` is not recorded"))
}

/// How to reach the recorded host `address`: its address and pinned key, and terrace's login.
pub(super) fn reached(state: &State, address: &Address) -> Result<Reached, String> {
    Ok(super::host::reach(&address.to_string(), host(state, address)?))
}

pub(super) type Reached = (Target, Login);

/// A session on a reached host, tried until `deadline`.
pub(super) async fn connect((target, login): &Reached, deadline: tokio::time::Instant) -> Result<Session, String> {
    Session::connect_until(target, login, deadline).await.map_err(|e| e.to_string())
}

/// The private address of a recorded server, if it has one.
pub(super) fn private_ip(state: &State, server: Option<&Address>) -> Option<String> {
    server
        .and_then(|s| state.resources.get(&s.to_string()))
        .and_then(|r| r.attributes.get("private_ip"))
        .and_then(Json::as_str)
        .filter(|ip| !ip.is_empty())
        .map(str::to_owned)
}

/// The recorded password of `service`'s replication role.
pub(super) fn replication_password(state: &State, service: &Address) -> Result<String, String> {
    state
        .resources
        .get(&service.child(Kind::Secret, "replication", None).to_string())
        .and_then(|r| r.attributes.get("value"))
        .and_then(Json::as_str)
        .map(str::to_owned)
        .ok_or_else(|| format!("the replication password of `{service}` is not recorded"))
}

/// The application's database of `service` in the phase (`app` when it names none).
pub(super) fn database(compiled: Option<&Compiled>, service: &Address) -> String {
    compiled
        .and_then(|c| c.composite(service))
        .and_then(|c| c.attrs.get("database"))
        .and_then(|d| d.as_str().map(str::to_owned))
        .unwrap_or_else(|| "app".to_owned())
}

/// The systemd timers terrace put on a host (its backups), by unit name.
pub(super) fn timers(host: &ResourceState) -> Vec<String> {
    super::host::files_of(host)
        .keys()
        .filter(|path| path.starts_with("/etc/systemd/system/") && path.ends_with(".timer"))
        .filter_map(|path| path.rsplit('/').next().map(str::to_owned))
        .collect()
}

/// The PostgreSQL major version a recorded host runs.
pub(super) fn version(host: &ResourceState) -> Option<u32> {
    host.attributes.get("version").and_then(Json::as_u64).map(|v| v as u32)
}
