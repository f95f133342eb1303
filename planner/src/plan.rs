//! A plan is a value: each resource's action, its attributes before and after, its monthly cost
//! before and after, and the totals. Planning does no I/O; renderers are pure functions of a plan.

use std::collections::BTreeMap;

use rust_decimal::Decimal;
use serde::Serialize;
use terrace_providers::pricing::Catalog;

use crate::addr::Address;
use crate::cost::Cost;
use crate::kind::Kind;
use crate::model::{Compiled, PhaseInfo};
use crate::value::Value;

/// The version of the JSON plan format (`--format json`, `--out`).
pub const FORMAT_VERSION: &str = "1.0";

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Action {
    NoOp,
    Create,
    Update,
    /// Delete then create, or create then delete with `create_before_destroy`.
    Replace,
    Delete,
}

impl Action {
    /// Terraform's action list: `["create"]`, `["delete", "create"]`, ...
    pub fn steps(self, create_before_destroy: bool) -> Vec<&'static str> {
        match self {
            Action::NoOp => vec!["no-op"],
            Action::Create => vec!["create"],
            Action::Update => vec!["update"],
            Action::Replace if create_before_destroy => vec!["create", "delete"],
            Action::Replace => vec!["delete", "create"],
            Action::Delete => vec!["delete"],
        }
    }
}

/// The price list a plan was costed with.
#[derive(Debug, Clone, Serialize)]
pub struct PricingInfo {
    pub label: String,
    pub date: Option<String>,
    pub currency: String,
    #[serde(with = "rust_decimal::serde::str")]
    pub vat_rate_percent: Decimal,
}

impl PricingInfo {
    pub fn of(catalog: &Catalog) -> Self {
        Self {
            label: catalog.label(),
            date: catalog.date(),
            currency: catalog.currency().to_owned(),
            vat_rate_percent: catalog.vat_rate_percent(),
        }
    }
}

/// One resource's change.
#[derive(Debug, Clone, Serialize)]
pub struct ResourceChange {
    pub address: Address,
    pub kind: Kind,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub composite: Option<Address>,
    pub action: Action,
    /// Terraform-style steps of the action.
    pub actions: Vec<&'static str>,
    pub before: Option<BTreeMap<String, Value>>,
    pub after: Option<BTreeMap<String, Value>>,
    /// Attribute paths whose value is known only after apply.
    pub after_unknown: Vec<String>,
    /// Attribute paths that are secret: their values are never shown.
    pub sensitive: Vec<String>,
    /// Why the action was chosen (the attribute forcing a replace, ...): for people, not programs.
    pub reasons: Vec<String>,
    /// The Hetzner API calls the change needs (`create`, `resize`, `poweroff`, `change_type`, ...).
    pub api_actions: Vec<String>,
    /// The change powers the server off for a while.
    pub power_off: bool,
    /// Deleting or replacing this object loses data (a volume, a bucket, a database server).
    pub data_loss: bool,
    /// Where the object was recorded, when the plan moves it (a block gained or lost `count`).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub previous_address: Option<Address>,
    pub cost_before: Option<Cost>,
    pub cost_after: Option<Cost>,
    /// For a `host`: the files that change on the server, and what converging them costs.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub host: Option<HostChange>,
}

/// What changes on a service's server, over SSH: each file with a unified diff (secrets masked,
/// values known only after apply marked), the packages to install, the steps that make the
/// service use the new files, and what they cost it.
#[derive(Debug, Clone, Serialize)]
pub struct HostChange {
    /// The server is new: its first boot (cloud-init) writes the files; apply waits for it and
    /// checks them.
    pub first_boot: bool,
    pub files: Vec<FileChange>,
    /// Packages the new configuration needs that terrace did not install there before.
    pub packages: Vec<String>,
    /// What apply does after writing the files, in order.
    pub steps: Vec<String>,
    pub disruption: crate::services::converge::Disruption,
    /// Files edited on the server since terrace wrote them (found by the refresh); apply puts
    /// terrace's version back.
    pub drift: Vec<String>,
    /// An earlier apply stopped while converging this host: its steps run again.
    pub resumes: bool,
}

/// One file of a host.
#[derive(Debug, Clone, Serialize)]
pub struct FileChange {
    pub path: String,
    /// `create`, `update` or `delete`.
    pub action: Action,
    /// The unified diff of the content, `None` when the content stays.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub diff: Option<String>,
    /// `[before, after]` when the mode or owner changes.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub mode: Option<[String; 2]>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub owner: Option<[String; 2]>,
    /// A secret in the file changes, which the masked diff cannot show.
    pub secret_changed: bool,
}

/// Monthly cost of one resource kind, before and after.
#[derive(Debug, Clone, Serialize)]
pub struct KindCost {
    pub kind: Kind,
    pub count_before: usize,
    pub count_after: usize,
    #[serde(with = "rust_decimal::serde::str")]
    pub before_net: Decimal,
    #[serde(with = "rust_decimal::serde::str")]
    pub after_net: Decimal,
    #[serde(with = "rust_decimal::serde::str")]
    pub delta_net: Decimal,
    /// Resources of this kind whose price the catalog lacks (left out of the sums).
    pub unknown: usize,
}

/// Totals, in net EUR per month. Unknown prices are left out of the sums and listed.
#[derive(Debug, Clone, Serialize)]
pub struct CostSummary {
    #[serde(with = "rust_decimal::serde::str")]
    pub before_net: Decimal,
    #[serde(with = "rust_decimal::serde::str")]
    pub after_net: Decimal,
    #[serde(with = "rust_decimal::serde::str")]
    pub delta_net: Decimal,
    #[serde(with = "rust_decimal::serde::str")]
    pub before_gross: Decimal,
    #[serde(with = "rust_decimal::serde::str")]
    pub after_gross: Decimal,
    #[serde(with = "rust_decimal::serde::str")]
    pub delta_gross: Decimal,
    /// Resources whose price the catalog lacks.
    pub unknown: Vec<Address>,
    pub by_kind: Vec<KindCost>,
}

/// How many resources get each action.
#[derive(Debug, Clone, Default, Serialize)]
pub struct Counts {
    pub create: usize,
    pub update: usize,
    pub replace: usize,
    pub delete: usize,
    pub no_op: usize,
}

#[derive(Debug, Clone, Serialize)]
pub struct CompositeSummary {
    pub address: Address,
    pub kind: Kind,
    pub summary: String,
    pub members: Vec<Address>,
}

#[derive(Debug, Clone, Serialize)]
pub struct PlannedOutput {
    pub name: String,
    /// `null` when known only after apply or sensitive.
    pub value: Value,
    pub known_after_apply: bool,
    pub sensitive: bool,
    /// Against the recorded outputs: `create`, `update`, `delete` or `no_op`.
    pub action: Action,
}

/// A plan: what `terrace plan` shows and `terrace apply` carries out.
#[derive(Debug, Clone, Serialize)]
pub struct Plan {
    pub format_version: &'static str,
    pub terrace_version: &'static str,
    pub stack: String,
    pub phase: PhaseInfo,
    /// The phase recorded in state before this plan, if any.
    pub prior_phase: Option<String>,
    /// A plan that destroys everything recorded (`terrace plan --destroy`).
    pub destroy: bool,
    pub pricing: PricingInfo,
    pub summary: Counts,
    pub resource_changes: Vec<ResourceChange>,
    pub composites: Vec<CompositeSummary>,
    pub outputs: Vec<PlannedOutput>,
    pub cost: CostSummary,
    /// The phase's `budget_monthly` and whether the plan is over it.
    pub budget: Option<crate::gate::Budget>,
    /// Warnings found while planning (deprecated server types, ...), already formatted.
    pub warnings: Vec<String>,
    /// Why this plan may not be applied (data loss without --allow-data-loss, prevent_destroy, a
    /// volume that would shrink). Empty for an applicable plan.
    pub refusals: Vec<String>,
    /// Data migrations: databases this plan carries to other hosts, or whose old copy it keeps or
    /// (with `--finish-migration`) deletes.
    pub migrations: Vec<crate::migrate::Migration>,
    /// Made with `--hosts=false`: the hosts were left out, so applying it completes the phase
    /// without them.
    #[serde(skip)]
    pub hosts_skipped: bool,
}

impl Plan {
    pub fn has_changes(&self) -> bool {
        self.resource_changes.iter().any(|change| change.action != Action::NoOp)
            || self.migrations.iter().any(crate::migrate::Migration::runs)
    }
}

/// The plan from empty state: every resource of the phase is created, in dependency order.
pub fn plan_from_empty(compiled: &Compiled, catalog: &Catalog, warnings: Vec<String>) -> Plan {
    let empty = terrace_state::State::new(Some(compiled.stack.clone()));
    crate::diff::plan(Some(compiled), &empty, catalog, &crate::diff::PlanOptions::default(), warnings)
}

/// A plan from its changes: the counts, the composites and outputs of the desired phase (none when
/// destroying), the cost totals.
pub(crate) fn assemble(
    desired: Option<&Compiled>,
    changes: Vec<ResourceChange>,
    catalog: &Catalog,
    warnings: Vec<String>,
) -> Plan {
    let composites = desired
        .map(|compiled| {
            compiled
                .composites
                .iter()
                .map(|c| CompositeSummary {
                    address: c.address.clone(),
                    kind: c.kind,
                    summary: c.summary.clone(),
                    members: c.members.clone(),
                })
                .collect()
        })
        .unwrap_or_default();
    let outputs = desired
        .map(|compiled| {
            compiled
                .outputs
                .iter()
                .map(|o| PlannedOutput {
                    name: o.name.clone(),
                    value: o.value.clone(),
                    known_after_apply: !o.value.is_known(),
                    sensitive: o.sensitive || matches!(o.value, Value::Sensitive(_)),
                    action: Action::Create,
                })
                .collect()
        })
        .unwrap_or_default();
    let cost = summarize(&changes, catalog);
    let summary = count(&changes);
    let (stack, phase) = match desired {
        Some(compiled) => (compiled.stack.clone(), compiled.phase.clone()),
        None => (String::new(), PhaseInfo::default()),
    };
    Plan {
        format_version: FORMAT_VERSION,
        terrace_version: env!("CARGO_PKG_VERSION"),
        stack,
        phase,
        prior_phase: None,
        destroy: desired.is_none(),
        pricing: PricingInfo::of(catalog),
        summary,
        resource_changes: changes,
        composites,
        outputs,
        cost,
        budget: None,
        warnings,
        refusals: Vec::new(),
        migrations: Vec::new(),
        hosts_skipped: false,
    }
}

pub(crate) fn collect_paths(path: &str, value: &Value, unknown: &mut Vec<String>, sensitive: &mut Vec<String>) {
    match value {
        Value::Unknown => unknown.push(path.to_owned()),
        Value::Template(parts) => {
            unknown.push(path.to_owned());
            if parts.iter().any(Value::holds_sensitive) {
                sensitive.push(path.to_owned());
            }
        }
        Value::Ref(reference) if reference.attribute.is_some() => unknown.push(path.to_owned()),
        Value::Sensitive(_) => sensitive.push(path.to_owned()),
        Value::List(items) => {
            for (i, item) in items.iter().enumerate() {
                collect_paths(&format!("{path}[{i}]"), item, unknown, sensitive);
            }
        }
        Value::Map(map) => {
            for (key, item) in map {
                collect_paths(&format!("{path}.{key}"), item, unknown, sensitive);
            }
        }
        _ => {}
    }
}

fn count(changes: &[ResourceChange]) -> Counts {
    let mut counts = Counts::default();
    for change in changes {
        match change.action {
            Action::Create => counts.create += 1,
            Action::Update => counts.update += 1,
            Action::Replace => counts.replace += 1,
            Action::Delete => counts.delete += 1,
            Action::NoOp => counts.no_op += 1,
        }
    }
    counts
}

/// Counts one side (before or after) of a change and adds its cost to the kind's sum and the
/// total; returns false when its price is unknown (then nothing is added).
fn tally(cost: Option<&Cost>, count: &mut usize, kind_sum: &mut Decimal, total: &mut Decimal) -> bool {
    let Some(cost) = cost else { return true };
    *count += 1;
    match cost.monthly_net {
        Some(net) => {
            *kind_sum += net;
            *total += net;
            true
        }
        None => false,
    }
}

/// Totals and per-kind sums of a list of changes.
pub fn summarize(changes: &[ResourceChange], catalog: &Catalog) -> CostSummary {
    let mut before = Decimal::ZERO;
    let mut after = Decimal::ZERO;
    let mut unknown = Vec::new();
    let mut by_kind: BTreeMap<&'static str, KindCost> = BTreeMap::new();
    // Secrets, key pairs and hosts are terrace's own: no object in Hetzner, nothing to price or count.
    for change in changes.iter().filter(|c| !c.kind.is_terrace_own()) {
        let entry = by_kind.entry(change.kind.as_str()).or_insert(KindCost {
            kind: change.kind,
            count_before: 0,
            count_after: 0,
            before_net: Decimal::ZERO,
            after_net: Decimal::ZERO,
            delta_net: Decimal::ZERO,
            unknown: 0,
        });
        let priced_before =
            tally(change.cost_before.as_ref(), &mut entry.count_before, &mut entry.before_net, &mut before);
        let priced_after = tally(change.cost_after.as_ref(), &mut entry.count_after, &mut entry.after_net, &mut after);
        let priced = priced_before && priced_after;
        if !priced {
            entry.unknown += 1;
            unknown.push(change.address.clone());
        }
    }
    unknown.sort();
    unknown.dedup();
    let by_kind = by_kind
        .into_values()
        .map(|mut k| {
            k.delta_net = k.after_net - k.before_net;
            k
        })
        .collect();
    CostSummary {
        before_net: before,
        after_net: after,
        delta_net: after - before,
        before_gross: catalog.gross(before),
        after_gross: catalog.gross(after),
        delta_gross: catalog.gross(after) - catalog.gross(before),
        unknown,
        by_kind,
    }
}
