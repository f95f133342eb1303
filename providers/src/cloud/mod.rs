//! Operations on Hetzner Cloud objects, one module per kind: create, read, list by label, update in
//! place and delete, over the [`Client`]. The planner hands over a [`Desired`] object (terrace's
//! attribute names, references already resolved to Hetzner ids) and gets back an [`Observed`] one
//! (the same names, read from the API). Updates reconcile: they read the live object and send only
//! the API actions that close the gap, so an update interrupted half-way and run again finishes the
//! job instead of failing on what was already done. Nothing here knows the planner's types.

mod firewall;
mod ips;
mod labels;
mod load_balancer;
mod network;
mod server;
mod simple;
mod volume;
mod wire;

use std::collections::BTreeMap;
use std::fmt;
use std::str::FromStr;

use reqwest::Method;
use serde_json::{Map, Value, json};

use crate::client::{ApiError, Client, Operation};

pub use labels::{ADDRESS_LABEL, STACK_LABEL, label_value};

/// The kinds of objects the Cloud API holds (Object Storage buckets live in
/// [`crate::objectstorage`]).
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum CloudKind {
    Certificate,
    Firewall,
    FloatingIp,
    LoadBalancer,
    Network,
    PlacementGroup,
    PrimaryIp,
    Server,
    SshKey,
    Volume,
}

impl CloudKind {
    pub const ALL: [CloudKind; 10] = [
        CloudKind::Certificate,
        CloudKind::Firewall,
        CloudKind::FloatingIp,
        CloudKind::LoadBalancer,
        CloudKind::Network,
        CloudKind::PlacementGroup,
        CloudKind::PrimaryIp,
        CloudKind::Server,
        CloudKind::SshKey,
        CloudKind::Volume,
    ];

    /// terrace's block name of the kind.
    pub fn as_str(self) -> &'static str {
        match self {
            CloudKind::Certificate => "certificate",
            CloudKind::Firewall => "firewall",
            CloudKind::FloatingIp => "floating_ip",
            CloudKind::LoadBalancer => "load_balancer",
            CloudKind::Network => "network",
            CloudKind::PlacementGroup => "placement_group",
            CloudKind::PrimaryIp => "primary_ip",
            CloudKind::Server => "server",
            CloudKind::SshKey => "ssh_key",
            CloudKind::Volume => "volume",
        }
    }

    /// The API's collection: `/servers`, and the key of its list.
    pub fn collection(self) -> &'static str {
        match self {
            CloudKind::Certificate => "certificates",
            CloudKind::Firewall => "firewalls",
            CloudKind::FloatingIp => "floating_ips",
            CloudKind::LoadBalancer => "load_balancers",
            CloudKind::Network => "networks",
            CloudKind::PlacementGroup => "placement_groups",
            CloudKind::PrimaryIp => "primary_ips",
            CloudKind::Server => "servers",
            CloudKind::SshKey => "ssh_keys",
            CloudKind::Volume => "volumes",
        }
    }
}

impl fmt::Display for CloudKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl FromStr for CloudKind {
    type Err = ();

    fn from_str(text: &str) -> Result<Self, ()> {
        CloudKind::ALL.into_iter().find(|k| k.as_str() == text).ok_or(())
    }
}

/// What an object should be: terrace's attribute names and values, references resolved to
/// Hetzner ids (numbers, or lists of numbers), nested blocks as lists of objects, and every label
/// the object must carry (terrace's own `terrace-stack` and `terrace-address` included).
#[derive(Debug, Clone)]
pub struct Desired {
    pub kind: CloudKind,
    /// The address, for error messages and the `terrace-address` label.
    pub address: String,
    pub attrs: Map<String, Value>,
    pub labels: BTreeMap<String, String>,
}

impl Desired {
    /// The object's name, or its address when the definition gives none.
    pub(crate) fn name(&self) -> &str {
        self.str("name").unwrap_or(&self.address)
    }

    pub(crate) fn str(&self, name: &str) -> Option<&str> {
        self.attrs.get(name).and_then(Value::as_str)
    }

    pub(crate) fn bool(&self, name: &str) -> Option<bool> {
        self.attrs.get(name).and_then(Value::as_bool)
    }

    pub(crate) fn id(&self, name: &str) -> Option<u64> {
        self.attrs.get(name).and_then(wire::as_id)
    }

    pub(crate) fn ids(&self, name: &str) -> Vec<u64> {
        self.attrs.get(name).map(wire::as_ids).unwrap_or_default()
    }

    pub(crate) fn blocks(&self, name: &str) -> Vec<&Map<String, Value>> {
        match self.attrs.get(name) {
            Some(Value::Array(items)) => items.iter().filter_map(Value::as_object).collect(),
            Some(Value::Object(one)) => vec![one],
            _ => Vec::new(),
        }
    }

    pub(crate) fn has(&self, name: &str) -> bool {
        self.attrs.get(name).is_some_and(|v| !v.is_null())
    }

    pub(crate) fn operation(&self, what: &str) -> Operation {
        Operation::new(format!("{what} {}", self.kind)).on(self.address.clone())
    }

    pub(crate) fn labels_json(&self) -> Value {
        json!(self.labels)
    }
}

/// An object as the API shows it, in terrace's attribute names: references are Hetzner ids;
/// `labels` leaves out terrace's own labels, which are in `terrace_labels`.
#[derive(Debug, Clone, PartialEq)]
pub struct Observed {
    pub kind: CloudKind,
    pub id: u64,
    pub attrs: Map<String, Value>,
    /// The `terrace-stack` and `terrace-address` labels, when the object carries them.
    pub stack: Option<String>,
    pub address: Option<String>,
}

/// Creates the object with everything the create call accepts, then the settings only actions
/// can make (protection, backups, a fixed private IP), waiting for every action. A create that the
/// API refuses as a duplicate name is looked up by its labels: an object of this stack and address
/// that a retried or interrupted request already made is adopted, never made twice.
pub async fn create(client: &Client, desired: &Desired) -> Result<Observed, ApiError> {
    let result = match desired.kind {
        CloudKind::Server => server::create(client, desired).await,
        CloudKind::Volume => volume::create(client, desired).await,
        CloudKind::Network => network::create(client, desired).await,
        CloudKind::Firewall => firewall::create(client, desired).await,
        CloudKind::LoadBalancer => load_balancer::create(client, desired).await,
        CloudKind::PrimaryIp => ips::create_primary(client, desired).await,
        CloudKind::FloatingIp => ips::create_floating(client, desired).await,
        CloudKind::PlacementGroup | CloudKind::SshKey | CloudKind::Certificate => simple::create(client, desired).await,
    };
    let id = match result {
        Ok(id) => id,
        Err(error) if error.code == "uniqueness_error" => match find_labelled(client, desired).await? {
            Some(found) => found.id,
            None => return Err(error),
        },
        Err(error) => return Err(error),
    };
    // Settings the create call cannot carry, done by reconciling the new object.
    update(client, id, desired).await
}

/// Brings the live object `id` to `desired` with the fewest API actions and returns it as it then
/// is. Only attributes `desired` holds are touched; attributes Hetzner cannot change are left for
/// the planner, which replaces the object instead.
pub async fn update(client: &Client, id: u64, desired: &Desired) -> Result<Observed, ApiError> {
    let live = read_raw(client, desired.kind, id, &desired.operation("read"))
        .await?
        .ok_or_else(|| gone(desired.kind, id, &desired.operation("update")))?;
    let changed = match desired.kind {
        CloudKind::Server => server::update(client, id, &live, desired).await?,
        CloudKind::Volume => volume::update(client, id, &live, desired).await?,
        CloudKind::Network => network::update(client, id, &live, desired).await?,
        CloudKind::Firewall => firewall::update(client, id, &live, desired).await?,
        CloudKind::LoadBalancer => load_balancer::update(client, id, &live, desired).await?,
        CloudKind::PrimaryIp => ips::update_primary(client, id, &live, desired).await?,
        CloudKind::FloatingIp => ips::update_floating(client, id, &live, desired).await?,
        CloudKind::PlacementGroup | CloudKind::SshKey | CloudKind::Certificate => {
            simple::update(client, id, &live, desired).await?
        }
    };
    if !changed {
        return Ok(observe(desired.kind, &live));
    }
    let now = read_raw(client, desired.kind, id, &desired.operation("read"))
        .await?
        .ok_or_else(|| gone(desired.kind, id, &desired.operation("update")))?;
    Ok(observe(desired.kind, &now))
}

/// Deletes the object, first undoing what the API requires undone (a volume's attachment, a
/// firewall's resources, a primary IP's assignment). An object already gone is success, so a
/// delete interrupted and run again finishes.
pub async fn delete(client: &Client, kind: CloudKind, id: u64, address: &str) -> Result<(), ApiError> {
    let operation = Operation::new(format!("delete {kind}")).on(address.to_owned());
    let Some(live) = read_raw(client, kind, id, &operation).await? else {
        return Ok(());
    };
    match kind {
        CloudKind::Volume => volume::before_delete(client, id, &live, &operation).await?,
        CloudKind::Firewall => firewall::before_delete(client, id, &live, &operation).await?,
        CloudKind::PrimaryIp => ips::before_delete_primary(client, id, &live, &operation).await?,
        _ => {}
    }
    let path = format!("/{}/{id}", kind.collection());
    match client.request(Method::DELETE, &path, &[], None, &operation).await {
        Ok(answer) => wait_for(client, &answer, &operation).await,
        Err(error) if error.code == "not_found" => Ok(()),
        Err(error) => Err(error),
    }
}

/// Reads one object; `None` when it does not exist.
pub async fn read(client: &Client, kind: CloudKind, id: u64) -> Result<Option<Observed>, ApiError> {
    let operation = Operation::new(format!("read {kind} {id}"));
    Ok(read_raw(client, kind, id, &operation).await?.map(|live| observe(kind, &live)))
}

/// Every object of `kind` whose labels match `selector` (`terrace-stack=shop`): one request per
/// page of 50.
pub async fn list(client: &Client, kind: CloudKind, selector: &str) -> Result<Vec<Observed>, ApiError> {
    let operation = Operation::new(format!("list {}", kind.collection()));
    let items = client
        .list_all(
            &format!("/{}", kind.collection()),
            kind.collection(),
            &[("label_selector", selector.to_owned())],
            &operation,
        )
        .await?;
    Ok(items.iter().map(|item| observe(kind, item)).collect())
}

/// The object made for this stack and address, found by its labels.
async fn find_labelled(client: &Client, desired: &Desired) -> Result<Option<Observed>, ApiError> {
    let (Some(stack), Some(address)) = (desired.labels.get(STACK_LABEL), desired.labels.get(ADDRESS_LABEL)) else {
        return Ok(None);
    };
    let selector = format!("{STACK_LABEL}={stack},{ADDRESS_LABEL}={address}");
    Ok(list(client, desired.kind, &selector).await?.into_iter().next())
}

async fn read_raw(client: &Client, kind: CloudKind, id: u64, operation: &Operation) -> Result<Option<Value>, ApiError> {
    let path = format!("/{}/{id}", kind.collection());
    match client.request(Method::GET, &path, &[], None, operation).await {
        Ok(mut answer) => Ok(answer.get_mut(kind.as_str()).map(Value::take)),
        Err(error) if error.code == "not_found" => Ok(None),
        Err(error) => Err(error),
    }
}

fn gone(kind: CloudKind, id: u64, operation: &Operation) -> ApiError {
    ApiError::local(operation, "not_found", &format!("{kind} {id} no longer exists"))
}

/// The object of an answer, in terrace's names.
fn observe(kind: CloudKind, live: &Value) -> Observed {
    let mut attrs = match kind {
        CloudKind::Server => server::observe(live),
        CloudKind::Volume => volume::observe(live),
        CloudKind::Network => network::observe(live),
        CloudKind::Firewall => firewall::observe(live),
        CloudKind::LoadBalancer => load_balancer::observe(live),
        CloudKind::PrimaryIp => ips::observe_primary(live),
        CloudKind::FloatingIp => ips::observe_floating(live),
        CloudKind::PlacementGroup | CloudKind::SshKey | CloudKind::Certificate => simple::observe(kind, live),
    };
    let all = wire::labels_of(live);
    let stack = all.get(STACK_LABEL).cloned();
    let address = all.get(ADDRESS_LABEL).cloned();
    let own: Map<String, Value> = all
        .into_iter()
        .filter(|(k, _)| k != STACK_LABEL && k != ADDRESS_LABEL)
        .map(|(k, v)| (k, Value::String(v)))
        .collect();
    attrs.insert("labels".into(), Value::Object(own));
    if let Some(name) = live.get("name") {
        attrs.insert("name".into(), name.clone());
    }
    Observed { kind, id: live.get("id").and_then(Value::as_u64).unwrap_or(0), attrs, stack, address }
}

/// Sends a request and waits for the actions its answer started (`action`, `actions`,
/// `next_actions`).
pub(crate) async fn call(
    client: &Client,
    method: Method,
    path: &str,
    body: Option<&Value>,
    operation: &Operation,
) -> Result<Value, ApiError> {
    let answer = client.request(method, path, &[], body, operation).await?;
    wait_for(client, &answer, operation).await?;
    Ok(answer)
}

/// `POST /{collection}` of a new object, waiting for the actions it started; the new object's id
/// (the answer holds it under the kind's name: `{"server": {"id": ...}}`).
pub(crate) async fn post_create(client: &Client, desired: &Desired, body: &Value) -> Result<u64, ApiError> {
    let operation = desired.operation("create");
    let path = format!("/{}", desired.kind.collection());
    let answer = call(client, Method::POST, &path, Some(body), &operation).await?;
    answer
        .pointer(&format!("/{}/id", desired.kind.as_str()))
        .and_then(Value::as_u64)
        .ok_or_else(|| ApiError::local(&operation, "json_error", "the answer holds no id"))
}

/// `POST /{collection}/{id}/actions/{command}` and waits for it.
pub(crate) async fn action(
    client: &Client,
    kind: CloudKind,
    id: u64,
    command: &str,
    body: Value,
    operation: &Operation,
) -> Result<(), ApiError> {
    let path = format!("/{}/{id}/actions/{command}", kind.collection());
    call(client, Method::POST, &path, Some(&body), operation).await.map(|_| ())
}

async fn wait_for(client: &Client, answer: &Value, operation: &Operation) -> Result<(), ApiError> {
    let mut ids: Vec<u64> = Vec::new();
    if let Some(id) = answer.pointer("/action/id").and_then(Value::as_u64) {
        ids.push(id);
    }
    for key in ["actions", "next_actions"] {
        if let Some(list) = answer.get(key).and_then(Value::as_array) {
            ids.extend(list.iter().filter_map(|a| a.get("id").and_then(Value::as_u64)));
        }
    }
    if ids.is_empty() {
        return Ok(());
    }
    client.wait_for_actions(&ids, operation).await.map(|_| ())
}

/// `PUT` of name and labels (and the kind's other plain settings in `extra`) when they differ.
pub(crate) async fn put_if_changed(
    client: &Client,
    id: u64,
    live: &Value,
    desired: &Desired,
    extra: Map<String, Value>,
) -> Result<bool, ApiError> {
    let mut body = extra;
    if let Some(name) = desired.str("name")
        && live.get("name").and_then(Value::as_str) != Some(name)
    {
        body.insert("name".into(), json!(name));
    }
    if wire::labels_of(live) != desired.labels {
        body.insert("labels".into(), desired.labels_json());
    }
    if body.is_empty() {
        return Ok(false);
    }
    let path = format!("/{}/{id}", desired.kind.collection());
    call(client, Method::PUT, &path, Some(&Value::Object(body)), &desired.operation("update")).await?;
    Ok(true)
}

/// `change_protection` when the delete (and, for servers, rebuild) protection differs.
pub(crate) async fn protect_if_changed(
    client: &Client,
    id: u64,
    live: &Value,
    desired: &Desired,
) -> Result<bool, ApiError> {
    let mut body = Map::new();
    for (attr, key) in [("delete_protection", "delete"), ("rebuild_protection", "rebuild")] {
        let Some(want) = desired.bool(attr) else { continue };
        let have = live.pointer(&format!("/protection/{key}")).and_then(Value::as_bool).unwrap_or(false);
        if want != have {
            body.insert(key.into(), json!(want));
        }
    }
    if body.is_empty() {
        return Ok(false);
    }
    action(client, desired.kind, id, "change_protection", Value::Object(body), &desired.operation("protect")).await?;
    Ok(true)
}
