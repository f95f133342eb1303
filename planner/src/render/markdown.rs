//! The plan as a pull-request comment (GitHub and GitLab Markdown): a hidden marker so a pipeline
//! can update its earlier comment, the summary, warnings first, the cost table, details folded.

use std::fmt::Write as _;

use super::text::{cost_note, header, verb};
use crate::cost::{delta, money};
use crate::plan::{Action, Plan};

/// The hidden marker that identifies terrace's comment for a stack and phase.
pub fn marker(stack: &str, phase: &str) -> String {
    format!("<!-- terrace-plan: stack={stack} phase={phase} -->")
}

pub fn plan(plan: &Plan) -> String {
    let mut out = String::new();
    let _ = writeln!(out, "{}", marker(&plan.stack, &plan.phase.name));
    let _ = writeln!(out, "### terrace plan: `{}` / `{}`\n", plan.stack, plan.phase.name);
    let _ = writeln!(out, "{}\n", header(plan).replace('`', "**"));
    // What a reviewer must not miss comes first: refusals, data loss, servers powered off.
    if !plan.refusals.is_empty() {
        let _ = writeln!(out, "> [!CAUTION]\n> **This plan cannot be applied:**");
        for refusal in &plan.refusals {
            let _ = writeln!(out, "> - {refusal}");
        }
        out.push('\n');
    }
    if let Some(budget) = plan.budget.as_ref().filter(|b| b.over) {
        let _ = writeln!(
            out,
            "> [!WARNING]\n> **Over budget:** {} per month is more than the phase's budget of €{:.2}.\n",
            money(budget.after_net),
            budget.budget_monthly
        );
    }
    let lost: Vec<String> =
        plan.resource_changes.iter().filter(|c| c.data_loss).map(|c| format!("`{}`", c.address)).collect();
    if !lost.is_empty() {
        let _ = writeln!(out, "> [!WARNING]\n> **Data loss:** {} would be destroyed or replaced.\n", lost.join(", "));
    }
    let off: Vec<String> =
        plan.resource_changes.iter().filter(|c| c.power_off).map(|c| format!("`{}`", c.address)).collect();
    if !off.is_empty() {
        let _ = writeln!(out, "> [!NOTE]\n> **Powered off during the change:** {}.\n", off.join(", "));
    }
    let interrupted: Vec<String> =
        super::host::interrupted(plan).into_iter().map(|(address, how)| format!("`{address}`: {how}")).collect();
    if !interrupted.is_empty() {
        let _ = writeln!(
            out,
            "> [!IMPORTANT]\n> **Services interrupted on running servers:** {}.\n",
            interrupted.join("; ")
        );
    }
    for migration in &plan.migrations {
        let _ = writeln!(out, "> [!IMPORTANT]\n> **Data migration:** {}", super::migration::title(migration));
        if let Some(live) = super::migration::live(migration) {
            let _ = writeln!(out, "> {live}");
        }
        for step in super::migration::steps(migration) {
            let _ = writeln!(out, "> {step}");
        }
        if let Some(kept) = super::migration::kept(migration) {
            let _ = writeln!(out, ">\n> {kept}");
        }
        out.push('\n');
    }
    for warning in &plan.warnings {
        let _ = writeln!(out, "> [!WARNING]\n> {warning}\n");
    }
    let counts = &plan.summary;
    let cost = &plan.cost;
    let _ = writeln!(
        out,
        "**Plan:** {} to add, {} to change, {} to replace, {} to destroy.  ",
        counts.create, counts.update, counts.replace, counts.delete
    );
    let _ = writeln!(
        out,
        "**Monthly cost:** {} → {} (**{}**) net, {} gross\n",
        money(cost.before_net),
        money(cost.after_net),
        delta(cost.delta_net),
        money(cost.after_gross)
    );
    let _ = writeln!(out, "| Resource kind | Count | Before | After | Delta |");
    let _ = writeln!(out, "| --- | ---: | ---: | ---: | ---: |");
    for kind in &cost.by_kind {
        let unknown = if kind.unknown > 0 { format!(" ({} unknown)", kind.unknown) } else { String::new() };
        let _ = writeln!(
            out,
            "| {} | {} → {}{unknown} | {} | {} | {} |",
            kind.kind,
            kind.count_before,
            kind.count_after,
            money(kind.before_net),
            money(kind.after_net),
            delta(kind.delta_net)
        );
    }
    let _ = writeln!(
        out,
        "| **Total (net)** | | **{}** | **{}** | **{}** |",
        money(cost.before_net),
        money(cost.after_net),
        delta(cost.delta_net)
    );
    let _ = writeln!(
        out,
        "| Total (gross, {}% VAT) | | {} | {} | {} |\n",
        plan.pricing.vat_rate_percent.normalize(),
        money(cost.before_gross),
        money(cost.after_gross),
        delta(cost.delta_gross)
    );
    if !cost.unknown.is_empty() {
        let list: Vec<String> = cost.unknown.iter().map(|a| format!("`{a}`")).collect();
        let _ = writeln!(out, "Unknown prices (left out of the totals): {}\n", list.join(", "));
    }
    let changes = super::by_address(plan);
    if changes.is_empty() {
        let _ = writeln!(out, "No changes.\n");
    } else {
        let _ = writeln!(out, "<details><summary>Changes ({})</summary>\n", changes.len());
        let _ = writeln!(out, "| | Resource | Action | Monthly (net) |");
        let _ = writeln!(out, "| --- | --- | --- | ---: |");
        for change in &changes {
            let symbol = match change.action {
                Action::Create => "➕",
                Action::Delete => "🗑️",
                Action::Update => "✏️",
                Action::Replace => "♻️",
                Action::NoOp => "",
            };
            let mut action = verb(change.action).to_owned();
            if !change.reasons.is_empty() && change.action != crate::plan::Action::Delete {
                action.push_str(&format!(" ({})", change.reasons.join("; ")));
            }
            if let Some(host) = change.host.as_ref().filter(|_| change.action == crate::plan::Action::Update) {
                action.push_str(&format!(": over SSH, {}", host.disruption.describe()));
            } else if change.action == crate::plan::Action::Update && !change.api_actions.is_empty() {
                action.push_str(&format!(": {}", change.api_actions.join(", ")));
            }
            if change.data_loss {
                action.push_str(" **data loss**");
            }
            let _ = writeln!(out, "| {symbol} | `{}` | {action} | {} |", change.address, cost_note(change));
        }
        out.push('\n');
        if !plan.composites.is_empty() {
            let _ = writeln!(out, "Services built from Hetzner primitives:\n");
            for composite in &plan.composites {
                let _ = writeln!(out, "- `{}`: {}", composite.address, composite.summary);
            }
            out.push('\n');
        }
        let _ = writeln!(out, "</details>\n");
    }
    super::host::markdown(&mut out, plan);
    let _ = writeln!(out, "<sub>Prices: {}. terrace {}.</sub>", plan.pricing.label, plan.terrace_version);
    out
}
