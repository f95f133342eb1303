//! `terrace cost` as text and Markdown: the phases side by side.

use std::fmt::Write as _;

use crate::compare::Comparison;
use crate::cost::{delta, money};

pub fn text(comparison: &Comparison) -> String {
    let mut out = String::new();
    let _ = writeln!(
        out,
        "Stack `{}`: monthly cost per phase ({}, net of VAT)",
        comparison.stack, comparison.pricing.currency
    );
    let _ = writeln!(out, "Prices: {}\n", comparison.pricing.label);
    let name_width = comparison.phases.iter().map(|p| p.name.len()).max().unwrap_or(5).max(5);
    let users_width =
        comparison.phases.iter().map(|p| p.users.as_deref().unwrap_or("-").len()).max().unwrap_or(5).max(5);
    let _ = writeln!(
        out,
        "  {:<name_width$}  {:<users_width$}  {:>9}  {:>8}  {:>10}  {:>10}  {:>11}",
        "phase", "users", "resources", "services", "monthly", "gross", "delta"
    );
    for phase in &comparison.phases {
        let flag = if phase.over_budget { "  over budget" } else { "" };
        let unknown =
            if phase.unknown.is_empty() { String::new() } else { format!("  ({} unknown)", phase.unknown.len()) };
        let _ = writeln!(
            out,
            "  {:<name_width$}  {:<users_width$}  {:>9}  {:>8}  {:>10}  {:>10}  {:>11}{unknown}{flag}",
            phase.name,
            phase.users.as_deref().unwrap_or("-"),
            phase.resources,
            phase.services,
            money(phase.monthly_net),
            money(phase.monthly_gross),
            phase.delta_net.map_or("-".to_owned(), delta),
        );
    }
    for phase in comparison.phases.iter().filter(|p| !p.unknown.is_empty()) {
        let list: Vec<String> = phase.unknown.iter().map(ToString::to_string).collect();
        let _ =
            writeln!(out, "\n  {}: no price in the catalog for {} (left out of the sum)", phase.name, list.join(", "));
    }
    for phase in comparison.phases.iter().filter(|p| p.over_budget) {
        let _ = writeln!(
            out,
            "\n  {}: {} is over its budget of €{:.2}",
            phase.name,
            money(phase.monthly_net),
            phase.budget_monthly.unwrap_or_default()
        );
    }
    out
}

pub fn markdown(comparison: &Comparison) -> String {
    let mut out = String::new();
    let _ = writeln!(out, "### terrace cost: `{}`\n", comparison.stack);
    let _ = writeln!(out, "| Phase | Users | Resources | Services | Monthly (net) | Monthly (gross) | Delta |");
    let _ = writeln!(out, "| --- | --- | ---: | ---: | ---: | ---: | ---: |");
    for phase in &comparison.phases {
        let mut monthly = money(phase.monthly_net);
        if !phase.unknown.is_empty() {
            let _ = write!(monthly, " + {} unknown", phase.unknown.len());
        }
        if phase.over_budget {
            monthly.push_str(" ⚠️ over budget");
        }
        let _ = writeln!(
            out,
            "| {} | {} | {} | {} | {} | {} | {} |",
            phase.name,
            phase.users.as_deref().unwrap_or("-"),
            phase.resources,
            phase.services,
            monthly,
            money(phase.monthly_gross),
            phase.delta_net.map_or("-".to_owned(), delta)
        );
    }
    let _ =
        writeln!(out, "\n<sub>Prices: {}; {} per month.</sub>", comparison.pricing.label, comparison.pricing.currency);
    out
}
