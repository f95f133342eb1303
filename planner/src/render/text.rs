//! The plan as text, Terraform-like: one block per resource with `+`, `-`, `~` and `-/+`, values
//! known only after apply and secrets marked, multi-line values as heredocs (and, when they change,
//! as a unified diff), the API calls an update needs, data loss flagged; then the summary line, the
//! outputs and the monthly cost table.

use std::collections::BTreeMap;
use std::fmt::Write as _;

use super::Style;
use crate::cost::{delta, money, money_opt};
use crate::plan::{Action, Plan, ResourceChange};
use crate::schema;
use crate::value::Value;

pub fn plan(plan: &Plan, style: Style) -> String {
    let mut out = String::new();
    let _ = writeln!(out, "{}", header(plan));
    let _ = writeln!(out, "Prices: {}; EUR per month, net of VAT", plan.pricing.label);
    for warning in &plan.warnings {
        let _ = writeln!(out, "\n{} {warning}", style.yellow("Warning:"));
    }
    if !plan.has_changes() {
        let what = if plan.destroy {
            "Nothing is recorded: nothing to destroy.".to_owned()
        } else {
            format!("No changes. The infrastructure matches phase `{}`.", plan.phase.name)
        };
        let _ = writeln!(out, "\n{what}");
        write_migrations(&mut out, plan, style);
        write_cost(&mut out, plan);
        return out;
    }
    let _ = writeln!(out, "\nterrace will perform the following actions:");
    let mut composite_shown = std::collections::BTreeSet::new();
    for change in super::by_address(plan) {
        if let Some(composite) = &change.composite
            && composite_shown.insert(composite.clone())
            && let Some(summary) = plan.composites.iter().find(|c| &c.address == composite)
        {
            let _ = writeln!(out, "\n  {}", style.bold(&format!("# {}: {}", summary.address, summary.summary)));
            let members: Vec<String> = summary.members.iter().map(ToString::to_string).collect();
            let _ = writeln!(out, "  # expands to: {}", members.join(", "));
        }
        out.push('\n');
        write_change(&mut out, change, style);
    }
    let counts = &plan.summary;
    let _ = writeln!(
        out,
        "\n{} {} to add, {} to change, {} to replace, {} to destroy.",
        style.bold("Plan:"),
        counts.create,
        counts.update,
        counts.replace,
        counts.delete
    );
    for (address, how) in super::host::interrupted(plan) {
        let _ = writeln!(out, "{} {address}: {how}", style.yellow("Interrupts a service:"));
    }
    write_migrations(&mut out, plan, style);
    write_outputs(&mut out, plan);
    write_cost(&mut out, plan);
    if !plan.refusals.is_empty() {
        let _ = writeln!(out, "\n{}", style.red("This plan cannot be applied:"));
        for refusal in &plan.refusals {
            let _ = writeln!(out, "  - {refusal}");
        }
    }
    out
}

fn write_migrations(out: &mut String, plan: &Plan, style: Style) {
    for migration in &plan.migrations {
        let title = super::migration::title(migration).replace('`', "");
        let _ = writeln!(out, "\n{} {title}", style.bold("Data migration:"));
        if let Some(live) = super::migration::live(migration) {
            let _ = writeln!(out, "  {live}");
        }
        for step in super::migration::steps(migration) {
            let _ = writeln!(out, "  {}", step.replace('`', ""));
        }
        if let Some(kept) = super::migration::kept(migration) {
            let _ = writeln!(out, "  {}", kept.replace('`', ""));
        }
    }
}

pub(super) fn header(plan: &Plan) -> String {
    let mut text = if plan.destroy {
        format!("Stack `{}`: destroy everything recorded", plan.stack)
    } else {
        format!("Stack `{}`, phase `{}`", plan.stack, plan.phase.name)
    };
    if let Some(users) = &plan.phase.users {
        let _ = write!(text, " ({users} users)");
    }
    if let Some(prior) = plan.prior_phase.as_ref().filter(|p| **p != plan.phase.name || plan.destroy) {
        let _ = write!(text, ", from phase `{prior}`");
    }
    if let Some(description) = &plan.phase.description {
        let _ = write!(text, ": {description}");
    }
    text
}

pub(super) fn verb(action: Action) -> &'static str {
    match action {
        Action::Create => "will be created",
        Action::Update => "will be updated in place",
        Action::Replace => "must be replaced",
        Action::Delete => "will be destroyed",
        Action::NoOp => "is unchanged",
    }
}

pub(super) fn cost_note(change: &ResourceChange) -> String {
    let before = change.cost_before.as_ref().map(|c| c.monthly_net);
    let after = change.cost_after.as_ref().map(|c| c.monthly_net);
    match (before, after) {
        (None, Some(None)) | (Some(_), Some(None)) => "price unknown".to_owned(),
        (None, Some(after)) => format!("{}/mo", money_opt(after)),
        (Some(Some(before)), None) if before.is_zero() => "€0.00/mo".to_owned(),
        (Some(before), None) => format!("-{}/mo", money_opt(before).trim_start_matches('-')),
        (Some(Some(b)), Some(Some(a))) if a != b => format!("{} -> {}/mo", money(b), money(a)),
        (Some(_), Some(after)) => format!("{}/mo", money_opt(after)),
        (None, None) => String::new(),
    }
}

fn write_change(out: &mut String, change: &ResourceChange, style: Style) {
    let (symbol, paint): (&str, fn(Style, &str) -> String) = match change.action {
        Action::Create => ("+", Style::green),
        Action::Delete => ("-", Style::red),
        Action::Update => ("~", Style::yellow),
        Action::Replace if change.actions.first() == Some(&"create") => ("+/-", Style::yellow),
        Action::Replace => ("-/+", Style::yellow),
        Action::NoOp => (" ", Style::dim),
    };
    let mut title = format!("# {} {}  ({})", change.address, verb(change.action), cost_note(change));
    if change.data_loss {
        title.push_str("  DATA LOSS");
    }
    if let Some(mark) = super::host::interruption(change) {
        title.push_str("  ");
        title.push_str(&mark);
    }
    let _ = writeln!(out, "  {}", style.bold(&title));
    for reason in &change.reasons {
        let _ = writeln!(out, "  # ({reason})");
    }
    if let Some(host) = &change.host {
        // A host changes over SSH, not through the API: its files and steps say what happens.
        if change.action == Action::Update {
            let _ = writeln!(out, "  # (over SSH: {})", host.disruption.describe());
        }
        let _ = writeln!(out, "  {} {} {{", paint(style, symbol), change.address);
        super::host::text(out, host, style);
        let _ = writeln!(out, "    }}");
        return;
    }
    if change.action == Action::Update {
        let off = if change.power_off { ", powers the server off" } else { "" };
        let _ = writeln!(out, "  # (API: {}{off})", change.api_actions.join(", "));
    }
    let _ = writeln!(out, "  {} {} {{", paint(style, symbol), change.address);
    let empty = BTreeMap::new();
    let before = change.before.as_ref().unwrap_or(&empty);
    let after = change.after.as_ref().unwrap_or(&empty);
    let nested = schema::of(change.kind);
    let mut keys: Vec<&String> = before.keys().chain(after.keys()).collect();
    keys.sort();
    keys.dedup();
    let mut lines = Vec::new();
    let mut hidden = 0;
    for key in keys {
        let (old, new) = (before.get(key), after.get(key));
        let sensitive = change.sensitive.iter().any(|p| p == key);
        let line_symbol = match (change.action, old, new) {
            (Action::Delete, _, _) => "-",
            (_, None, Some(_)) => "+",
            (_, Some(_), None) => "-",
            (_, Some(a), Some(b)) if a != b => "~",
            _ => {
                hidden += 1;
                continue;
            }
        };
        if matches!(new.or(old), Some(Value::Null)) && line_symbol != "~" {
            continue;
        }
        lines.push((line_symbol, key.as_str(), old, new, nested.block(key).is_some(), sensitive));
    }
    let width = lines.iter().filter(|l| !l.4).map(|l| l.1.len()).max().unwrap_or(0);
    for (symbol, key, old, new, is_block, sensitive) in lines {
        if is_block {
            if symbol == "~" {
                write_blocks(out, "-", key, old.unwrap_or(&Value::Null), nested, 6, style);
                write_blocks(out, "+", key, new.unwrap_or(&Value::Null), nested, 6, style);
            } else {
                write_blocks(out, symbol, key, new.or(old).unwrap_or(&Value::Null), nested, 6, style);
            }
        } else if symbol == "~" {
            let (old, new) = (old.unwrap_or(&Value::Null), new.unwrap_or(&Value::Null));
            match (old, new) {
                (Value::String(a), Value::String(b)) if (a.contains('\n') || b.contains('\n')) && !sensitive => {
                    let _ = writeln!(out, "      {} {key:<width$} = <<-EOT", style.yellow("~"));
                    let diff = similar::TextDiff::from_lines(a.as_str(), b.as_str());
                    for line in diff.unified_diff().context_radius(3).to_string().lines() {
                        let _ = writeln!(out, "            {line}");
                    }
                    let _ = writeln!(out, "        EOT");
                }
                _ => {
                    let _ = writeln!(
                        out,
                        "      {} {key:<width$} = {} -> {}",
                        style.yellow("~"),
                        show(old, sensitive, 6),
                        show(new, sensitive, 6)
                    );
                }
            }
        } else {
            let value = if symbol == "-" { old.or(new) } else { new.or(old) };
            let shown = show(value.unwrap_or(&Value::Null), sensitive, 6);
            let _ = writeln!(out, "      {} {key:<width$} = {shown}", paint_symbol(style, symbol));
        }
    }
    if change.action == Action::Create {
        for computed in schema::computed_for(change.kind, after) {
            let _ = writeln!(out, "      {} {computed:<width$} = (known after apply)", paint_symbol(style, "+"));
        }
    }
    if hidden > 0 {
        let _ = writeln!(out, "        # ({hidden} unchanged attribute{} hidden)", if hidden == 1 { "" } else { "s" });
    }
    let _ = writeln!(out, "    }}");
}

pub(super) fn paint_symbol(style: Style, symbol: &str) -> String {
    match symbol {
        "+" => style.green(symbol),
        "-" => style.red(symbol),
        _ => style.yellow(symbol),
    }
}

/// Nested blocks (`subnet`, `service { health_check { } }`), one per element; `parent` is the
/// schema of the block they are written in, which says which keys are blocks themselves.
fn write_blocks(
    out: &mut String,
    symbol: &str,
    key: &str,
    value: &Value,
    parent: &schema::BlockSchema,
    indent: usize,
    style: Style,
) {
    let items: Vec<&BTreeMap<String, Value>> = match value {
        Value::List(items) => items.iter().filter_map(Value::as_map).collect(),
        Value::Map(map) => vec![map],
        _ => Vec::new(),
    };
    let Some(own) = parent.block(key).map(|nested| nested.schema) else { return };
    let pad = " ".repeat(indent);
    for map in items {
        let _ = writeln!(out, "{pad}{} {key} {{", paint_symbol(style, symbol));
        let width = map.keys().filter(|k| own.block(k).is_none()).map(String::len).max().unwrap_or(0);
        for (inner_key, inner) in map {
            if matches!(inner, Value::Null) {
                continue;
            }
            if own.block(inner_key).is_some() {
                write_blocks(out, symbol, inner_key, inner, own, indent + 4, style);
            } else {
                let shown = show(inner, false, indent + 4);
                let _ = writeln!(out, "{pad}    {} {inner_key:<width$} = {shown}", paint_symbol(style, symbol));
            }
        }
        let _ = writeln!(out, "{pad}  }}");
    }
}

/// A value as shown in the text plan; multi-line strings as heredocs.
fn show(value: &Value, sensitive: bool, indent: usize) -> String {
    if sensitive || matches!(value, Value::Sensitive(_)) {
        return "(sensitive value)".into();
    }
    match value {
        Value::String(text) if text.contains('\n') => {
            let pad = " ".repeat(indent + 4);
            let mut heredoc = String::from("<<-EOT\n");
            for line in text.lines() {
                let _ = writeln!(heredoc, "{pad}{line}");
            }
            let _ = write!(heredoc, "{}EOT", " ".repeat(indent + 2));
            heredoc
        }
        other => other.to_string(),
    }
}

fn write_outputs(out: &mut String, plan: &Plan) {
    let changed: Vec<_> = plan.outputs.iter().filter(|o| o.action != Action::NoOp).collect();
    if changed.is_empty() {
        return;
    }
    let _ = writeln!(out, "\nChanges to outputs:");
    let width = changed.iter().map(|o| o.name.len()).max().unwrap_or(0);
    for output in changed {
        let symbol = match output.action {
            Action::Delete => "-",
            Action::Update => "~",
            _ => "+",
        };
        let value = if output.sensitive {
            "(sensitive value)".to_owned()
        } else if output.known_after_apply {
            "(known after apply)".to_owned()
        } else if let Some(text) = output.value.as_str().filter(|t| t.lines().count() > 1) {
            // A text of many lines (a procedure) would bury the plan: say what it is and where to read it.
            format!("(text of {} lines: `terrace output {}`)", text.lines().count(), output.name)
        } else {
            output.value.to_string()
        };
        let _ = writeln!(out, "  {symbol} {:<width$} = {value}", output.name);
    }
}

fn write_cost(out: &mut String, plan: &Plan) {
    let cost = &plan.cost;
    let _ = writeln!(out, "\nMonthly cost ({}, net)", plan.pricing.currency);
    let _ = writeln!(out, "  {:<34} {:>10} {:>10} {:>10}", "", "before", "after", "delta");
    for kind in &cost.by_kind {
        let mut label = format!("{} ({} -> {})", kind.kind, kind.count_before, kind.count_after);
        if kind.unknown > 0 {
            let _ = write!(label, ", {} unknown", kind.unknown);
        }
        let _ = writeln!(
            out,
            "  {label:<34} {:>10} {:>10} {:>10}",
            money(kind.before_net),
            money(kind.after_net),
            delta(kind.delta_net)
        );
    }
    let _ = writeln!(
        out,
        "  {:<34} {:>10} {:>10} {:>10}",
        "total",
        money(cost.before_net),
        money(cost.after_net),
        delta(cost.delta_net)
    );
    let gross_label = format!("total gross ({}% VAT)", plan.pricing.vat_rate_percent.normalize());
    let _ = writeln!(
        out,
        "  {gross_label:<34} {:>10} {:>10} {:>10}",
        money(cost.before_gross),
        money(cost.after_gross),
        delta(cost.delta_gross)
    );
    if !cost.unknown.is_empty() {
        let list: Vec<String> = cost.unknown.iter().map(ToString::to_string).collect();
        let _ = writeln!(out, "  unknown price (not in the catalog, left out of the totals): {}", list.join(", "));
    }
    if let Some(budget) = &plan.budget {
        let verdict = if budget.over { "OVER BUDGET" } else { "within budget" };
        let _ = writeln!(out, "  budget of phase `{}`: €{:.2} ({verdict})", plan.phase.name, budget.budget_monthly);
    }
}
