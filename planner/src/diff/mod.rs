//! The diff engine: the compiled phase (what should exist) against the recorded state (what does),
//! per resource: create, update (each changed attribute, the API actions it needs, whether the
//! server powers off), replace (naming the attribute that forces it), delete or no-op, in apply
//! order, with the data-loss and `prevent_destroy` rules of DESIGN.md section 3. No I/O.

use std::collections::{BTreeMap, BTreeSet};

use terrace_providers::pricing::Catalog;
use terrace_state::{ResourceState, State};

use crate::addr::Address;
use crate::cost::Pricer;
use crate::graph::Dag;
use crate::kind::Kind;
use crate::model::{Compiled, Lifecycle, Resource};
use crate::plan::{self, Action, Plan, ResourceChange};
use crate::schema::{self, Update};
use crate::value::{Reference, Value};

mod host;

pub(crate) use host::{mask, secrets_of, service_of};

/// What a plan may do, from the command line.
#[derive(Debug, Clone, Default)]
pub struct PlanOptions {
    /// `--allow-data-loss`: deleting or replacing volumes, buckets and database servers is allowed.
    pub allow_data_loss: bool,
    /// `--target`: only these addresses (and what they depend on) are planned.
    pub targets: Vec<Address>,
    /// `--hosts=false`: the hosts (what terrace configures on servers over SSH) are left out of the
    /// plan, desired and recorded alike.
    pub skip_hosts: bool,
    /// `--finish-migration`: what finished data migrations kept (the old database's volume, host
    /// and host key) is deleted.
    pub finish_migration: bool,
    /// When the plan is made, for `migration_keep_days`; `None` lets no retention pass.
    pub now: Option<std::time::SystemTime>,
}

/// A recorded resource, parsed: its address and its attributes as values.
struct Prior<'s> {
    address: Address,
    state: &'s ResourceState,
    attrs: BTreeMap<String, Value>,
}

/// Plans `desired` (or, with `None`, the destruction of everything) against `prior`.
pub fn plan(
    desired: Option<&Compiled>,
    prior: &State,
    catalog: &Catalog,
    options: &PlanOptions,
    warnings: Vec<String>,
) -> Plan {
    let mut refusals = Vec::new();
    let priors: BTreeMap<Address, Prior<'_>> = prior
        .resources
        .iter()
        // A record without an id is a create an earlier apply started and did not see finish; the
        // refresh adopts the object when it exists. Until then it is planned as a create.
        .filter(|(_, state)| state.id.is_some())
        .filter_map(|(text, state)| {
            let address: Address = match text.parse() {
                Ok(address) => address,
                Err(error) => {
                    refusals.push(format!("the state holds an unreadable address: {error}"));
                    return None;
                }
            };
            let schema = state.kind.parse::<Kind>().ok().map(schema::of);
            // Secrets stay secrets: a recorded value listed as sensitive is never shown, in any format.
            let attrs = state
                .attributes
                .iter()
                .map(|(k, v)| {
                    let value = recorded_value(schema, k, v);
                    let secret = state.sensitive_attributes.iter().any(|s| s == k);
                    (k.clone(), if secret { Value::Sensitive(Box::new(value)) } else { value })
                })
                .collect();
            Some((address.clone(), Prior { address, state, attrs }))
        })
        .collect();
    let empty_desired = Dag::new();
    let desired_graph = desired.map_or(&empty_desired, |c| &c.resources);
    let (priors, moved) = implicit_moves(priors, desired_graph);
    let before_pricer = Pricer::of(catalog, priors.values().filter_map(priced));
    let after_pricer = Pricer::new(catalog, desired_graph.iter().map(|(_, r)| r));
    let targeted = targets(desired_graph, &options.targets);
    let in_scope = |address: &Address| {
        targeted
            .as_ref()
            .is_none_or(|set| set.contains(address) || options.targets.iter().any(|t| address.is_within(t)))
    };

    let mut changes = Vec::new();
    // Resources whose computed attributes will change (created or replaced): values read from them
    // are known only after apply.
    let mut renewed: BTreeSet<Address> = BTreeSet::new();
    // The recorded secrets, masked in hosts' files: read once, when the first host is compared.
    let secrets: std::cell::OnceCell<Vec<String>> = std::cell::OnceCell::new();
    for address in desired_graph.topological_order().unwrap_or_default() {
        let Some(resource) = desired_graph.get(address) else {
            continue;
        };
        if !in_scope(address) || options.skip_hosts && resource.kind == Kind::Host {
            continue;
        }
        let before = priors.get(address);
        let mut change = match before {
            None => create(resource),
            Some(before) if resource.kind == Kind::Host && !host::server_renewed(resource, &renewed) => {
                let secrets = secrets.get_or_init(|| secrets_of(priors.values().map(|p| p.state)));
                host::compare(resource, before, &priors, &renewed, secrets)
            }
            Some(before) => compare(resource, before, &priors, &renewed, &mut refusals),
        };
        if resource.kind == Kind::Host {
            if matches!(change.action, Action::Create | Action::Replace) {
                change.host = Some(host::created(resource));
            }
            host::strip(&mut change);
        }
        if matches!(change.action, Action::Create | Action::Replace) {
            renewed.insert(address.clone());
        }
        if let Some(previous) = moved.get(address) {
            change.previous_address = Some(previous.clone());
            change.reasons.insert(
                0,
                format!("recorded as `{previous}`: `count` was added or removed, so it moves to `{address}`"),
            );
        }
        change.cost_before = before.and_then(priced).map(|r| before_pricer.cost_of(&r));
        change.cost_after = Some(after_pricer.cost(resource));
        guard(&mut change, Some(&resource.lifecycle), options, &mut refusals);
        changes.push(change);
    }

    // A database that moves to another host is carried there (crate::migrate): what the move
    // leaves behind is kept until `--finish-migration`, not deleted.
    let (migrations, migration_refusals) = match desired {
        Some(desired) if !options.skip_hosts => {
            let finish = crate::migrate::Finish { asked: options.finish_migration, now: options.now };
            crate::migrate::detect(desired, prior, finish)
        }
        _ => (Vec::new(), Vec::new()),
    };
    refusals.extend(migration_refusals);
    let kept = crate::migrate::kept(&migrations);

    // Deletes, dependents first: the reverse of the recorded dependency order.
    let mut recorded: Dag<Address, ()> = Dag::new();
    for address in priors.keys() {
        recorded.add(address.clone(), ());
    }
    for prior in priors.values() {
        for dependency in &prior.state.dependencies {
            if let Ok(dependency) = dependency.parse::<Address>() {
                recorded.depend(&prior.address, &dependency);
            }
        }
    }
    let mut order: Vec<Address> = match recorded.topological_order() {
        Ok(order) => order.into_iter().cloned().collect(),
        Err(_) => priors.keys().cloned().collect(),
    };
    order.reverse();
    for address in order {
        if desired_graph.contains(&address) || !in_scope(&address) && targeted.is_some() {
            continue;
        }
        let Some(before) = priors.get(&address) else {
            continue;
        };
        if options.skip_hosts && address.kind() == Kind::Host {
            continue;
        }
        let Some(resource) = priced(before) else {
            refusals.push(format!("the state records `{address}` with an unknown kind `{}`", before.state.kind));
            continue;
        };
        let mut change = ResourceChange {
            address: address.clone(),
            kind: resource.kind,
            composite: before.state.composite.as_ref().and_then(|c| c.parse().ok()),
            action: Action::Delete,
            actions: Action::Delete.steps(false),
            before: Some(before.attrs.clone()),
            after: None,
            after_unknown: Vec::new(),
            sensitive: before.state.sensitive_attributes.clone(),
            reasons: vec!["not in the phase any more".into()],
            api_actions: vec!["delete".into()],
            power_off: false,
            data_loss: false,
            previous_address: None,
            cost_before: Some(before_pricer.cost_of(&resource)),
            cost_after: None,
            host: None,
        };
        let migration = kept.iter().find(|(a, _)| a == &address).map(|(_, finishing)| *finishing);
        if migration == Some(false) {
            // Kept as it is, and still paid for.
            change.action = Action::NoOp;
            change.actions = Action::NoOp.steps(false);
            change.after = change.before.clone();
            change.api_actions.clear();
            change.cost_after = change.cost_before.clone();
            change.reasons = vec!["kept by a data migration until `terrace apply --finish-migration`".into()];
            changes.push(change);
            continue;
        }
        if resource.kind == Kind::Host {
            let server = before.attrs.get("server").and_then(Value::as_ref).map(|r| r.address.clone());
            let stays = server.is_some_and(|server| desired_graph.contains(&server) && !renewed.contains(&server));
            change.host = Some(host::deleted(before, stays));
            host::strip(&mut change);
        }
        if migration == Some(true) {
            // The old copy of a database whose data was carried to its new host.
            change.reasons = vec![if options.finish_migration {
                "kept by a finished data migration: --finish-migration deletes it".into()
            } else {
                "kept by a finished data migration: its migration_keep_days have passed".into()
            }];
        } else {
            guard(&mut change, None, options, &mut refusals);
        }
        changes.push(change);
    }

    let mut warnings = warnings;
    if let Some(desired) = desired {
        warnings.extend(crate::migrate::reshard_warnings(desired, prior));
    }
    if options.skip_hosts && desired.is_some_and(|c| c.resources.iter().any(|(_, r)| r.kind == Kind::Host)) {
        warnings.push(
            "--hosts=false: the configuration on the services' servers (the `host` members) is left out of this plan; \
             the servers keep what they run now"
                .into(),
        );
    }
    let mut built = plan::assemble(desired, changes, catalog, warnings);
    built.prior_phase = prior.phase.clone();
    built.refusals = refusals;
    built.hosts_skipped = options.skip_hosts;
    built.migrations = migrations;
    built.budget = crate::gate::budget(&built);
    // Outputs against the recorded ones: values read from unchanged resources are known now.
    for output in &mut built.outputs {
        let Some(recorded) = prior.outputs.get(&output.name) else {
            continue;
        };
        match resolve(&output.value, &priors, &renewed) {
            Some(value) if value_to_json(&value) == recorded.value => {
                output.action = Action::NoOp;
                output.value = value;
                output.known_after_apply = false;
            }
            Some(value) => {
                output.action = Action::Update;
                output.value = value;
                output.known_after_apply = false;
            }
            None => output.action = Action::Update,
        }
    }
    for (name, recorded) in &prior.outputs {
        if !built.outputs.iter().any(|o| &o.name == name) {
            built.outputs.push(plan::PlannedOutput {
                name: name.clone(),
                value: json_to_value(&recorded.value),
                known_after_apply: false,
                sensitive: recorded.sensitive,
                action: Action::Delete,
            });
        }
    }
    built.outputs.sort_by(|a, b| a.name.cmp(&b.name));
    // A sensitive output's value is never shown, whatever it was read from.
    for output in &mut built.outputs {
        if output.sensitive && !matches!(output.value, Value::Sensitive(_)) {
            output.value = Value::Sensitive(Box::new(std::mem::replace(&mut output.value, Value::Null)));
        }
    }
    built
}

/// Terraform's implicit move: a block that gains `count` keeps its object as instance `[0]`, and
/// one that loses `count` keeps instance `[0]` as the block. Returns the priors by their new
/// addresses and, for each moved one, where it was recorded.
fn implicit_moves<'s>(
    priors: BTreeMap<Address, Prior<'s>>,
    desired: &Dag<Address, Resource>,
) -> (BTreeMap<Address, Prior<'s>>, BTreeMap<Address, Address>) {
    let mut moved = BTreeMap::new();
    let mut out = BTreeMap::new();
    let recorded: BTreeSet<Address> = priors.keys().cloned().collect();
    for (address, mut prior) in priors {
        let first = &address.segments()[0];
        let alternative = match first.index {
            None => Some(0),
            Some(0) => None,
            Some(_) => {
                out.insert(address, prior);
                continue;
            }
        };
        let candidate = address.with_first_index(alternative);
        if !desired.contains(&address) && desired.contains(&candidate) && !recorded.contains(&candidate) {
            moved.insert(candidate.clone(), address.clone());
            prior.address = candidate.clone();
            out.insert(candidate, prior);
        } else {
            out.insert(address, prior);
        }
    }
    (out, moved)
}

/// `--target`: the targeted addresses and everything they depend on, or `None` for all.
fn targets(graph: &Dag<Address, Resource>, targets: &[Address]) -> Option<BTreeSet<Address>> {
    if targets.is_empty() {
        return None;
    }
    let mut keep = BTreeSet::new();
    let mut queue: Vec<&Address> =
        graph.iter().map(|(a, _)| a).filter(|a| targets.iter().any(|t| a.is_within(t))).collect();
    while let Some(address) = queue.pop() {
        if keep.insert(address.clone()) {
            queue.extend(graph.dependencies(address));
        }
    }
    Some(keep)
}

fn create(resource: &Resource) -> ResourceChange {
    let mut after_unknown = Vec::new();
    let mut sensitive = Vec::new();
    for (name, value) in &resource.attrs {
        plan::collect_paths(name, value, &mut after_unknown, &mut sensitive);
    }
    after_unknown.extend(schema::computed_for(resource.kind, &resource.attrs).map(str::to_owned));
    after_unknown.sort();
    ResourceChange {
        address: resource.address.clone(),
        kind: resource.kind,
        composite: resource.composite.clone(),
        action: Action::Create,
        actions: Action::Create.steps(false),
        before: None,
        after: Some(resource.attrs.clone()),
        after_unknown,
        sensitive,
        reasons: Vec::new(),
        api_actions: vec!["create".into()],
        power_off: false,
        data_loss: false,
        previous_address: None,
        cost_before: None,
        cost_after: None,
        host: None,
    }
}

/// A resource that exists and should exist: which attributes change, and how.
fn compare(
    resource: &Resource,
    before: &Prior<'_>,
    priors: &BTreeMap<Address, Prior<'_>>,
    renewed: &BTreeSet<Address>,
    refusals: &mut Vec<String>,
) -> ResourceChange {
    let schema = schema::of(resource.kind);
    let ignored = |name: &str| resource.lifecycle.ignore_changes.iter().any(|i| i == name || i == "all");
    let first_boot = |name: &str| schema.attr(name).is_some_and(|a| a.first_boot);
    let mut after = BTreeMap::new();
    let mut after_unknown = Vec::new();
    let mut sensitive = before.state.sensitive_attributes.clone();
    let mut reasons = Vec::new();
    let mut api_actions: Vec<String> = Vec::new();
    let mut power_off = false;
    let mut replace = false;
    let mut changed = false;
    let names: BTreeSet<&String> = resource
        .attrs
        .keys()
        // Attributes recorded but not written now: configurable ones were dropped from the
        // definition; computed ones (a private IP the API chose) are the API's to keep.
        .chain(before.attrs.keys().filter(|k| schema.update_of(k).is_some() && !schema.computed.contains(&k.as_str())))
        .collect();
    for name in names {
        let old = before.attrs.get(name).cloned().unwrap_or(Value::Null);
        let Some(new) = resource.attrs.get(name) else {
            // A first-boot script that is no longer written (a service moved off its host) ran long
            // ago: dropping it changes nothing on the server, and is no reason to replace it.
            if first_boot(name) {
                after.insert(name.clone(), old);
                continue;
            }
            // Set before, not written now: the API default applies; show it as removed.
            if !ignored(name) && !matches!(old, Value::Null) {
                changed = true;
                note_update(schema.update_of(name), name, &mut api_actions, &mut power_off, &mut replace, &mut reasons);
            }
            continue;
        };
        if ignored(name) {
            // A service server's cloud-init runs at first boot only: a new rendering is no reason
            // to replace the server and lose its data. Its `host` converges the files in place.
            after.insert(name.clone(), old);
            continue;
        }
        if new.holds_sensitive() && !sensitive.contains(name) {
            sensitive.push(name.clone());
        }
        // Most attributes do not change: compare before resolving (which copies), unless the value
        // names an object that is created or replaced (its id changes).
        let renews = !renewed.is_empty() && new.references().iter().any(|r| renewed.contains(&r.address));
        if !renews && equal(new, &old) {
            after.insert(name.clone(), old);
            continue;
        }
        let resolved = resolve(new, priors, renewed);
        match &resolved {
            Some(value) if equal(value, &old) => {
                after.insert(name.clone(), old);
                continue;
            }
            Some(value) => {
                after.insert(name.clone(), value.clone());
            }
            None => {
                after_unknown.push(name.clone());
                after.insert(name.clone(), Value::Unknown);
            }
        }
        changed = true;
        // Kind-specific rules the schema alone cannot say.
        match (resource.kind, name.as_str(), &resolved) {
            (Kind::Volume, "size", Some(Value::Number(new_size))) if old.as_f64().is_some_and(|o| *new_size < o) => {
                refusals.push(format!(
                    "`{}`: a volume cannot shrink ({} GB -> {new_size} GB); Hetzner only grows volumes",
                    resource.address, old
                ));
            }
            (Kind::Network, "ip_range", Some(Value::String(new_range))) => {
                let grows = match (
                    old.as_str().and_then(|o| o.parse::<ipnet::Ipv4Net>().ok()),
                    new_range.parse::<ipnet::Ipv4Net>(),
                ) {
                    (Some(old_net), Ok(new_net)) => new_net.contains(&old_net),
                    _ => false,
                };
                if grows {
                    note_update(
                        schema.update_of(name),
                        name,
                        &mut api_actions,
                        &mut power_off,
                        &mut replace,
                        &mut reasons,
                    );
                } else {
                    replace = true;
                    reasons.push("`ip_range` forces replacement: Hetzner can only extend a network's range".into());
                }
                continue;
            }
            _ => {}
        }
        note_update(schema.update_of(name), name, &mut api_actions, &mut power_off, &mut replace, &mut reasons);
    }
    // Computed values recorded in state stay known unless the object is replaced.
    for computed in schema.computed {
        if let Some(value) = before.attrs.get(*computed) {
            if replace {
                after_unknown.push((*computed).to_owned());
                after.insert((*computed).to_owned(), Value::Unknown);
            } else {
                after.insert((*computed).to_owned(), value.clone());
            }
        }
    }
    let action = if replace {
        Action::Replace
    } else if changed {
        Action::Update
    } else {
        Action::NoOp
    };
    let create_before_destroy = resource.lifecycle.create_before_destroy;
    if action == Action::Replace {
        api_actions = if create_before_destroy {
            vec!["create".into(), "delete".into()]
        } else {
            vec!["delete".into(), "create".into()]
        };
        power_off = false;
    }
    after_unknown.sort();
    after_unknown.dedup();
    sensitive.sort();
    sensitive.dedup();
    ResourceChange {
        address: resource.address.clone(),
        kind: resource.kind,
        composite: resource.composite.clone(),
        action,
        actions: action.steps(create_before_destroy),
        before: Some(before.attrs.clone()),
        after: Some(after),
        after_unknown,
        sensitive,
        reasons,
        api_actions,
        power_off,
        data_loss: false,
        previous_address: None,
        cost_before: None,
        cost_after: None,
        host: None,
    }
}

fn note_update(
    update: Option<Update>,
    name: &str,
    api_actions: &mut Vec<String>,
    power_off: &mut bool,
    replace: &mut bool,
    reasons: &mut Vec<String>,
) {
    match update {
        Some(Update::Replace) => {
            *replace = true;
            reasons.push(format!("`{name}` forces replacement"));
        }
        Some(Update::InPlace { actions, power_off: off }) => {
            for action in actions {
                if !api_actions.iter().any(|a| a == action) {
                    api_actions.push((*action).to_owned());
                }
            }
            *power_off |= off;
        }
        Some(Update::Local) | None => {}
    }
}

/// Data loss and `prevent_destroy`: marks the change and records why a plan may not be applied.
fn guard(
    change: &mut ResourceChange,
    lifecycle: Option<&Lifecycle>,
    options: &PlanOptions,
    refusals: &mut Vec<String>,
) {
    if !matches!(change.action, Action::Replace | Action::Delete) {
        return;
    }
    let database_server = change.kind == Kind::Server
        && change.composite.as_ref().is_some_and(|c| c.segments()[0].kind == Kind::Postgres);
    if change.kind.holds_data() || database_server {
        change.data_loss = true;
        if !options.allow_data_loss {
            let verb = if change.action == Action::Delete { "destroys" } else { "replaces" };
            refusals.push(format!(
                "`{}`: this plan {verb} it and loses its data; pass --allow-data-loss to allow it",
                change.address
            ));
        }
    }
    if lifecycle.is_some_and(|l| l.prevent_destroy) {
        refusals.push(format!("`{}` has lifecycle.prevent_destroy, and this plan would destroy it", change.address));
    }
}

/// A desired value with references to recorded attributes read from state: `None` when it is
/// known only after apply.
fn resolve(value: &Value, priors: &BTreeMap<Address, Prior<'_>>, renewed: &BTreeSet<Address>) -> Option<Value> {
    match value {
        Value::Unknown => None,
        // A reference to an object that is created or replaced names a new object (a new id).
        Value::Ref(Reference { address, attribute: None }) if renewed.contains(address) => None,
        Value::Ref(Reference { address, attribute: Some(attribute) }) => {
            if renewed.contains(address) {
                return None;
            }
            let prior = priors.get(address)?;
            // Secrets are already wrapped as sensitive in the prior's attributes.
            let recorded = |name: &str| prior.attrs.get(name).cloned().filter(|v| !matches!(v, Value::Null));
            match attribute.as_str() {
                "id" => prior.state.id.clone().map(Value::String),
                other => schema::read_attribute(address.kind(), other, recorded),
            }
        }
        Value::List(items) => {
            items.iter().map(|item| resolve(item, priors, renewed)).collect::<Option<Vec<_>>>().map(Value::List)
        }
        Value::Map(map) => map
            .iter()
            .map(|(k, v)| resolve(v, priors, renewed).map(|v| (k.clone(), v)))
            .collect::<Option<BTreeMap<_, _>>>()
            .map(Value::Map),
        Value::Sensitive(inner) => resolve(inner, priors, renewed).map(|v| Value::Sensitive(Box::new(v))),
        Value::Template(_) => value.render_text(&|reference| resolve(&Value::Ref(reference.clone()), priors, renewed)),
        other => Some(other.clone()),
    }
}

/// Equal as recorded: references compare by address, secrets by content, whole numbers exactly.
fn equal(new: &Value, old: &Value) -> bool {
    match (new, old) {
        (Value::Sensitive(a), b) => equal(a, b),
        (a, Value::Sensitive(b)) => equal(a, b),
        (Value::Null, Value::Null) => true,
        (Value::Bool(a), Value::Bool(b)) => a == b,
        (Value::Number(a), Value::Number(b)) => a == b,
        (Value::String(a), Value::String(b)) => a == b,
        (Value::Ref(a), Value::Ref(b)) => a.attribute.is_none() && a == b,
        // A reference recorded where the schema did not say so (older states) is its address text.
        (Value::Ref(a), Value::String(b)) | (Value::String(b), Value::Ref(a)) => {
            a.attribute.is_none() && a.address.to_string() == *b
        }
        (Value::List(a), Value::List(b)) => a.len() == b.len() && a.iter().zip(b).all(|(x, y)| equal(x, y)),
        (Value::Map(a), Value::Map(b)) => {
            a.len() == b.len() && a.iter().zip(b).all(|((ka, va), (kb, vb))| ka == kb && equal(va, vb))
        }
        _ => false,
    }
}

/// A value as state records it: references as their address, secrets in clear (state is 0600).
pub fn value_to_json(value: &Value) -> serde_json::Value {
    match value {
        Value::Sensitive(inner) => value_to_json(inner),
        Value::List(items) => serde_json::Value::Array(items.iter().map(value_to_json).collect()),
        Value::Map(map) => serde_json::Value::Object(map.iter().map(|(k, v)| (k.clone(), value_to_json(v))).collect()),
        other => serde_json::to_value(other).unwrap_or(serde_json::Value::Null),
    }
}

/// A recorded value as a value: strings that are addresses stay strings (the schema's reference
/// types compare by address text).
pub fn json_to_value(json: &serde_json::Value) -> Value {
    match json {
        serde_json::Value::Null => Value::Null,
        serde_json::Value::Bool(b) => Value::Bool(*b),
        serde_json::Value::Number(n) => Value::Number(n.as_f64().unwrap_or(f64::NAN)),
        serde_json::Value::String(s) => Value::String(s.clone()),
        serde_json::Value::Array(items) => Value::List(items.iter().map(json_to_value).collect()),
        serde_json::Value::Object(map) => Value::Map(map.iter().map(|(k, v)| (k.clone(), json_to_value(v))).collect()),
    }
}

/// A recorded attribute as a value, typed by the schema: references (recorded as address text)
/// become references again, in nested blocks too, so plans show them as references.
fn recorded_value(schema: Option<&schema::BlockSchema>, name: &str, json: &serde_json::Value) -> Value {
    let Some(schema) = schema else { return json_to_value(json) };
    if let Some(attr) = schema.attr(name) {
        if matches!(attr.ty, schema::Ty::Ref(_) | schema::Ty::Refs(_)) {
            return as_reference(json);
        }
        return json_to_value(json);
    }
    if let Some(nested) = schema.block(name) {
        let block = |item: &serde_json::Value| match item {
            serde_json::Value::Object(map) => {
                Value::Map(map.iter().map(|(k, v)| (k.clone(), recorded_value(Some(nested.schema), k, v))).collect())
            }
            other => json_to_value(other),
        };
        return match json {
            serde_json::Value::Array(items) => Value::List(items.iter().map(block).collect()),
            other => block(other),
        };
    }
    json_to_value(json)
}

fn as_reference(json: &serde_json::Value) -> Value {
    match json {
        serde_json::Value::String(text) => match text.parse::<Address>() {
            Ok(address) => Value::Ref(Reference { address, attribute: None }),
            Err(_) => Value::String(text.clone()),
        },
        serde_json::Value::Array(items) => Value::List(items.iter().map(as_reference).collect()),
        other => json_to_value(other),
    }
}

/// A recorded resource as pricing sees it.
fn priced<'p>(prior: &'p Prior<'_>) -> Option<crate::cost::Priced<'p>> {
    Some(crate::cost::Priced { address: &prior.address, kind: prior.state.kind.parse().ok()?, attrs: &prior.attrs })
}
