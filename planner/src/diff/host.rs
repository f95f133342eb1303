//! The diff of a `host`: the files terrace keeps on a service's server, rendered from the phase
//! and compared with what terrace last put there (or, after a refresh, what the server holds),
//! each as a unified diff with the secrets masked, and the steps (`services::converge`) that make
//! the service use them.

use std::collections::{BTreeMap, BTreeSet};

use super::{Prior, resolve};
use crate::addr::Address;
use crate::model::Resource;
use crate::plan::{Action, FileChange, HostChange, ResourceChange};
use crate::services::converge::{self, Disruption, HostService};
use crate::value::{Reference, Value};

/// Shown where a secret stands in a file.
const MASK: &str = "(sensitive)";
/// Shown where a value is known only after apply.
const UNKNOWN: &str = "(known after apply)";

/// One file as the diff sees it: its raw content when known, the content as shown, its mode and
/// owner.
struct Side {
    raw: Option<String>,
    shown: String,
    mode: String,
    owner: String,
}

/// The files a host should have, from its resource.
fn desired(
    resource: &Resource,
    priors: &BTreeMap<Address, Prior<'_>>,
    renewed: &BTreeSet<Address>,
) -> BTreeMap<String, Side> {
    resource
        .blocks("file")
        .into_iter()
        .filter_map(|file| {
            let path = file.get("path")?.as_str()?.to_owned();
            let content = file.get("content").cloned().unwrap_or(Value::Null);
            let raw = resolve(&content, priors, renewed).and_then(|v| v.text().map(str::to_owned));
            let side = Side {
                raw,
                shown: shown(&content, priors, renewed),
                mode: text(file.get("mode")),
                owner: text(file.get("owner")),
            };
            Some((path, side))
        })
        .collect()
}

/// The files recorded for a host (what terrace last wrote, or what the refresh read), their
/// secrets masked by value for showing.
fn recorded(before: &Prior<'_>, secrets: &[String]) -> BTreeMap<String, Side> {
    let files = match before.attrs.get("file") {
        Some(Value::Sensitive(inner)) => inner.as_list().unwrap_or_default().to_vec(),
        Some(Value::List(items)) => items.clone(),
        _ => Vec::new(),
    };
    files
        .iter()
        .filter_map(|file| {
            let file = file.as_map()?;
            let path = file.get("path")?.as_str()?.to_owned();
            let raw = file.get("content").and_then(Value::text).map(str::to_owned);
            let shown = raw.as_deref().map(|raw| mask(raw, secrets)).unwrap_or_default();
            Some((path, Side { raw, shown, mode: text(file.get("mode")), owner: text(file.get("owner")) }))
        })
        .collect()
}

fn text(value: Option<&Value>) -> String {
    value.and_then(Value::text).unwrap_or_default().to_owned()
}

/// A file's content as the plan shows it: secrets masked and values known only after apply
/// marked, part by part.
fn shown(content: &Value, priors: &BTreeMap<Address, Prior<'_>>, renewed: &BTreeSet<Address>) -> String {
    let part = |part: &Value| -> String {
        match part {
            Value::String(text) => text.clone(),
            Value::Sensitive(_) => MASK.to_owned(),
            Value::Ref(reference) => match resolve(&Value::Ref(reference.clone()), priors, renewed) {
                Some(Value::Sensitive(_)) => MASK.to_owned(),
                Some(value) => value.to_template_text().unwrap_or_else(|| UNKNOWN.to_owned()),
                None => UNKNOWN.to_owned(),
            },
            _ => UNKNOWN.to_owned(),
        }
    };
    match content {
        Value::Template(parts) => parts.iter().map(part).collect(),
        other => part(other),
    }
}

/// Every secret recorded in state (generated passwords, keys, a bucket's credentials), longest
/// first, to mask them wherever text read back from a server shows them: file contents, the
/// output of a failed command. Hosts' own records are left out (their files hold the same ones).
pub(crate) fn secrets_of<'r>(records: impl Iterator<Item = &'r terrace_state::ResourceState>) -> Vec<String> {
    fn collect(value: &serde_json::Value, out: &mut Vec<String>) {
        match value {
            serde_json::Value::String(text) if text.len() >= 8 => out.push(text.clone()),
            serde_json::Value::Array(items) => items.iter().for_each(|i| collect(i, out)),
            serde_json::Value::Object(map) => map.values().for_each(|v| collect(v, out)),
            _ => {}
        }
    }
    let mut out = Vec::new();
    for record in records.filter(|r| r.kind != "host") {
        for name in &record.sensitive_attributes {
            if let Some(value) = record.attributes.get(name) {
                collect(value, &mut out);
            }
        }
    }
    out.sort_by(|a, b| b.len().cmp(&a.len()).then_with(|| a.cmp(b)));
    out.dedup();
    out
}

/// `text` with every one of `secrets` in it shown as `(sensitive)`.
pub(crate) fn mask(text: &str, secrets: &[String]) -> String {
    let mut out = text.to_owned();
    for secret in secrets {
        if out.contains(secret.as_str()) {
            out = out.replace(secret.as_str(), MASK);
        }
    }
    out
}

/// What service a host runs, from its resource's attributes.
pub(crate) fn service_of(attrs: &BTreeMap<String, Value>) -> HostService {
    match attrs.get("service").and_then(Value::text) {
        Some("redis") => HostService::Redis,
        _ => HostService::Postgres {
            version: attrs.get("version").and_then(Value::as_u64).unwrap_or(16) as u32,
            primary: attrs.get("role").and_then(Value::text).is_none_or(|role| role == "primary"),
        },
    }
}

/// A host that is not recorded yet: its server's first boot writes the files.
pub(super) fn created(resource: &Resource) -> HostChange {
    HostChange {
        first_boot: true,
        files: resource
            .blocks("file")
            .into_iter()
            .filter_map(|file| {
                Some(FileChange {
                    path: file.get("path")?.as_str()?.to_owned(),
                    action: Action::Create,
                    diff: None,
                    mode: None,
                    owner: None,
                    secret_changed: false,
                })
            })
            .collect(),
        packages: Vec::new(),
        steps: vec!["wait for the server's first boot (cloud-init), then check every file".into()],
        disruption: Disruption::None,
        drift: Vec::new(),
        resumes: false,
    }
}

/// A recorded host no longer in the phase: its service is stopped where the server stays (the
/// data stays on its volume); nothing is done where the server goes too.
pub(super) fn deleted(before: &Prior<'_>, server_stays: bool) -> HostChange {
    let service = service_of(&before.attrs);
    let files: BTreeMap<String, String> =
        recorded(before, &[]).into_iter().map(|(path, side)| (path, side.raw.unwrap_or_default())).collect();
    let units = converge::units(&service, &files);
    let (steps, disruption) = if server_stays {
        let stop = converge::Step::DisableUnits { units: units.clone() };
        (vec![format!("{} (the files and data stay)", stop.describe(&service))], Disruption::Stop { units })
    } else {
        (Vec::new(), Disruption::None)
    };
    HostChange {
        first_boot: false,
        files: Vec::new(),
        packages: Vec::new(),
        steps,
        disruption,
        drift: Vec::new(),
        resumes: false,
    }
}

/// A host that exists and should: the files that change, and the steps that converge them.
pub(super) fn compare(
    resource: &Resource,
    before: &Prior<'_>,
    priors: &BTreeMap<Address, Prior<'_>>,
    renewed: &BTreeSet<Address>,
    secrets: &[String],
) -> ResourceChange {
    let new = desired(resource, priors, renewed);
    let old = recorded(before, secrets);
    let mut files = Vec::new();
    let paths: BTreeSet<&String> = old.keys().chain(new.keys()).collect();
    for path in paths {
        let change = match (old.get(path), new.get(path)) {
            (None, Some(_)) => Some(Action::Create),
            (Some(_), None) => Some(Action::Delete),
            (Some(a), Some(b)) => {
                let content = match &b.raw {
                    Some(raw) => a.raw.as_deref() != Some(raw.as_str()),
                    None => true,
                };
                (content || a.mode != b.mode || a.owner != b.owner).then_some(Action::Update)
            }
            (None, None) => None,
        };
        let Some(action) = change else { continue };
        let (a, b) = (old.get(path), new.get(path));
        let before_text = a.map(|s| s.shown.as_str()).unwrap_or_default();
        let after_text = b.map(|s| s.shown.as_str()).unwrap_or_default();
        let diff = (before_text != after_text).then(|| {
            similar::TextDiff::from_lines(before_text, after_text).unified_diff().context_radius(3).to_string()
        });
        let pair = |x: Option<&str>, y: Option<&str>| match (x, y) {
            (Some(x), Some(y)) if x != y => Some([x.to_owned(), y.to_owned()]),
            _ => None,
        };
        files.push(FileChange {
            path: path.clone(),
            action,
            secret_changed: diff.is_none()
                && action == Action::Update
                && a.and_then(|s| s.raw.as_ref()) != b.and_then(|s| s.raw.as_ref()),
            diff,
            mode: pair(a.map(|s| s.mode.as_str()), b.map(|s| s.mode.as_str())),
            owner: pair(a.map(|s| s.owner.as_str()), b.map(|s| s.owner.as_str())),
        });
    }
    let had = before.attrs.get("packages").map(Value::texts).unwrap_or_default();
    let packages: Vec<String> = resource
        .attrs
        .get("packages")
        .map(Value::texts)
        .unwrap_or_default()
        .into_iter()
        .filter(|p| !had.contains(p))
        .collect();
    let drift = before.attrs.get("drift").map(Value::texts).unwrap_or_default();
    let resumes = before.attrs.get("pending").is_some_and(|p| !matches!(p, Value::Null));
    let service = service_of(&resource.attrs);
    let shown_map = |sides: &BTreeMap<String, Side>| -> BTreeMap<String, String> {
        sides.iter().map(|(path, side)| (path.clone(), side.shown.clone())).collect()
    };
    let fresh = converge::converge(&service, &shown_map(&old), &shown_map(&new), &packages);
    let steps = converge::resume(pending_steps(before), fresh);
    let disruption = converge::disruption(&steps);
    let steps: Vec<String> = steps.iter().map(|step| step.describe(&service)).collect();
    let changed = !files.is_empty() || !packages.is_empty() || resumes;
    let mut reasons = Vec::new();
    if resumes {
        reasons.push("an earlier apply stopped while converging this host: its steps run again".to_owned());
    }
    for path in &drift {
        reasons.push(format!("{path} was changed on the server since terrace wrote it"));
    }
    let action = if changed { Action::Update } else { Action::NoOp };
    // The attributes as recorded: nothing of a host changes through the API.
    let after = before.attrs.clone();
    ResourceChange {
        address: resource.address.clone(),
        kind: resource.kind,
        composite: resource.composite.clone(),
        action,
        actions: action.steps(false),
        before: Some(before.attrs.clone()),
        after: Some(after),
        after_unknown: Vec::new(),
        sensitive: Vec::new(),
        reasons,
        api_actions: if changed { vec!["ssh".into()] } else { Vec::new() },
        power_off: false,
        data_loss: false,
        previous_address: None,
        cost_before: None,
        cost_after: None,
        host: changed.then_some(HostChange { first_boot: false, files, packages, steps, disruption, drift, resumes }),
    }
}

/// The steps of an interrupted convergence, recorded as pending.
fn pending_steps(before: &Prior<'_>) -> Vec<converge::Step> {
    before
        .attrs
        .get("pending")
        .map(super::value_to_json)
        .and_then(|pending| pending.get("steps").cloned())
        .and_then(|steps| serde_json::from_value(steps).ok())
        .unwrap_or_default()
}

/// A host's change without its files and login key in `before` and `after`: the files are in
/// `host`, as diffs with their secrets masked, and the key is a secret.
pub(super) fn strip(change: &mut ResourceChange) {
    for side in [&mut change.before, &mut change.after].into_iter().flatten() {
        side.remove("file");
        side.remove("login_key");
    }
    change.after_unknown.retain(|path| !path.starts_with("file") && path != "login_key");
    change.sensitive.retain(|path| !path.starts_with("file") && path != "login_key");
}

/// Whether the host's server is replaced or new in this plan: then the host comes with the new
/// server's first boot.
pub(super) fn server_renewed(resource: &Resource, renewed: &BTreeSet<Address>) -> bool {
    matches!(resource.attrs.get("server"), Some(Value::Ref(Reference { address, attribute: None })) if renewed.contains(address))
}

#[cfg(test)]
mod tests {
    use serde_json::json;
    use terrace_state::ResourceState;

    use super::{mask, secrets_of};

    #[test]
    fn recorded_secrets_are_masked_in_what_a_server_says() {
        let record = |kind: &str, attributes: serde_json::Value, sensitive: &[&str]| ResourceState {
            kind: kind.into(),
            attributes: attributes.as_object().cloned().unwrap_or_default(),
            sensitive_attributes: sensitive.iter().map(|s| (*s).to_owned()).collect(),
            ..ResourceState::default()
        };
        let records = [
            record("secret", json!({ "value": "Password0123456789" }), &["value"]),
            record(
                "bucket",
                json!({ "access_key": "AK", "secret_key": "SecretKey0123" , "name": "b" }),
                &["access_key", "secret_key"],
            ),
            record("server", json!({ "ipv4_address": "203.0.113.5" }), &[]),
            // A host's files hold the same secrets; they are not secrets of their own.
            record("host", json!({ "file": [{ "content": "whole file text" }] }), &["file"]),
        ];
        let secrets = secrets_of(records.iter());
        assert_eq!(secrets, ["Password0123456789", "SecretKey0123"], "too short to mask safely: AK");
        let said = "ERROR: LINE 1: ALTER ROLE app PASSWORD 'Password0123456789' at 203.0.113.5 (SecretKey0123)";
        assert_eq!(
            mask(said, &secrets),
            "ERROR: LINE 1: ALTER ROLE app PASSWORD '(sensitive)' at 203.0.113.5 ((sensitive))"
        );
    }
}
