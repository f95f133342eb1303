//! Refresh: the recorded state laid over what the API holds now, read with list endpoints and the
//! `terrace-stack` label selector (one request per kind and page, never one per object). Objects
//! deleted by hand leave the state (the plan creates them again); changed attributes are drift;
//! an object whose create was recorded but not its answer (an interrupted apply) is adopted by its
//! `terrace-address` label instead of being created twice.

use std::collections::{BTreeMap, BTreeSet};

use terrace_providers::client::{ApiError, Client, Operation};
use terrace_providers::cloud::{self, CloudKind, Observed, label_value};
use terrace_providers::objectstorage::ObjectStorage;
use terrace_state::State;

use super::resolve::{id_index, overlay};

/// What a refresh found.
#[derive(Debug, Clone, Default)]
pub struct Refreshed {
    /// `address: attribute: before -> after` for every attribute changed outside terrace.
    pub drift: Vec<String>,
    /// Recorded objects that no longer exist.
    pub gone: Vec<String>,
    /// Objects found by their labels whose create was interrupted before it was recorded.
    pub adopted: Vec<String>,
    /// Objects labelled for this stack that state does not know: `kind id (address)`.
    pub strays: Vec<String>,
    /// Buckets not checked because no Object Storage credentials are set.
    pub unchecked: Vec<String>,
}

impl Refreshed {
    /// The notes a plan shows about the refresh.
    pub fn notes(&self) -> Vec<String> {
        let mut notes = Vec::new();
        for line in &self.drift {
            notes.push(format!("changed outside terrace: {line}"));
        }
        for address in &self.gone {
            notes.push(format!("`{address}` was deleted outside terrace; the plan creates it again"));
        }
        for address in &self.adopted {
            notes.push(format!("`{address}` was created by an interrupted apply and is adopted"));
        }
        for stray in &self.strays {
            notes.push(format!(
                "{stray} carries this stack's labels but is not recorded: `terrace import ADDRESS ID` adopts it"
            ));
        }
        for address in &self.unchecked {
            notes.push(format!("`{address}` was not refreshed: set TERRACE_S3_ACCESS_KEY and TERRACE_S3_SECRET_KEY"));
        }
        notes
    }
}

/// Refreshes `state` in place.
pub async fn refresh(
    client: &Client,
    storage: Option<&ObjectStorage>,
    state: &mut State,
    stack: &str,
) -> Result<Refreshed, ApiError> {
    let mut found = Refreshed::default();
    let kinds: BTreeSet<CloudKind> = state.resources.values().filter_map(|r| r.kind.parse().ok()).collect();
    let selector = format!("{}={}", cloud::STACK_LABEL, label_value(stack));
    let mut live: BTreeMap<CloudKind, Vec<Observed>> = BTreeMap::new();
    for kind in kinds {
        live.insert(kind, cloud::list(client, kind, &selector).await?);
    }
    let ids = id_index(state);
    let recorded_ids: BTreeSet<(String, String)> = ids.keys().cloned().collect();
    let mut matched: BTreeSet<(CloudKind, u64)> = BTreeSet::new();
    let addresses: Vec<String> = state.resources.keys().cloned().collect();
    for address in addresses {
        let Some(record) = state.resources.get_mut(&address) else { continue };
        if record.kind == "bucket" {
            let name = record.id.clone().unwrap_or_default();
            let location = record.attributes.get("location").and_then(|l| l.as_str()).unwrap_or("fsn1").to_owned();
            match storage {
                None => found.unchecked.push(address.clone()),
                Some(storage) => {
                    let exists = storage.bucket_exists(&name, &location).await.map_err(|e| {
                        ApiError::local(
                            &Operation::new("refresh bucket").on(address.clone()),
                            "s3_error",
                            &e.to_string(),
                        )
                    })?;
                    if !exists {
                        state.resources.remove(&address);
                        found.gone.push(address);
                    }
                }
            }
            continue;
        }
        let Ok(kind) = record.kind.parse::<CloudKind>() else { continue };
        let objects = live.get(&kind).map(Vec::as_slice).unwrap_or_default();
        let object = match &record.id {
            Some(id) => objects.iter().find(|o| o.id.to_string() == *id),
            None => {
                let label = label_value(&address);
                let object = objects.iter().find(|o| {
                    o.address.as_deref() == Some(label.as_str())
                        && !recorded_ids.contains(&(record.kind.clone(), o.id.to_string()))
                });
                if let Some(object) = object {
                    record.id = Some(object.id.to_string());
                    found.adopted.push(address.clone());
                }
                object
            }
        };
        match object {
            Some(object) => {
                matched.insert((kind, object.id));
                for change in overlay(record, object, &ids) {
                    found.drift.push(format!("{address}: {change}"));
                }
            }
            None => {
                if record.id.is_some() {
                    found.gone.push(address.clone());
                }
                state.resources.remove(&address);
            }
        }
    }
    for (kind, objects) in &live {
        for object in objects.iter().filter(|o| !matched.contains(&(*kind, o.id))) {
            let label = object.address.as_deref().unwrap_or("no address label");
            found.strays.push(format!("{kind} {} ({label})", object.id));
        }
    }
    Ok(found)
}
