//! How the change of a `host` reads, in the text plan and the pull-request comment: each file
//! that changes as a unified diff (secrets already masked by the diff), the packages, the steps
//! that follow, and what they cost the service, marked as plainly as a server powered off.

use std::fmt::Write as _;

use super::Style;
use crate::plan::{Action, HostChange, Plan, ResourceChange};
use crate::services::converge::Disruption;

/// The mark on a host's title line when the service is interrupted: `RESTART (~10 s without the
/// database)`, `STOPS postgresql@16-main.service`; `None` for a reload or nothing.
pub(crate) fn interruption(change: &ResourceChange) -> Option<String> {
    match &change.host.as_ref()?.disruption {
        Disruption::Restart { service, seconds } => Some(format!("RESTART (~{seconds} s without the {service})")),
        Disruption::Stop { units } => Some(format!("STOPS {}", units.join(", "))),
        Disruption::None | Disruption::Reload => None,
    }
}

/// The hosts whose service is interrupted, with how: for the summary lines.
pub(crate) fn interrupted(plan: &Plan) -> Vec<(String, String)> {
    plan.resource_changes
        .iter()
        .filter_map(|change| Some((change.address.to_string(), interruption(change)?)))
        .collect()
}

/// The body of a host's change in the text plan.
pub(super) fn text(out: &mut String, host: &HostChange, style: Style) {
    let pad = "      ";
    if host.first_boot {
        let _ = writeln!(out, "{pad}# {} files, written by the server's first boot (cloud-init):", host.files.len());
        for file in &host.files {
            let _ = writeln!(out, "{pad}{} {}", super::text::paint_symbol(style, "+"), file.path);
        }
    }
    for path in &host.drift {
        let _ = writeln!(out, "{pad}# {path} was changed on the server: terrace's version is put back");
    }
    for file in host.files.iter().filter(|_| !host.first_boot) {
        let symbol = super::text::paint_symbol(
            style,
            match file.action {
                Action::Create => "+",
                Action::Delete => "-",
                _ => "~",
            },
        );
        let mut title = format!("{pad}{symbol} file {}", file.path);
        if let Some([before, after]) = &file.mode {
            let _ = write!(title, " (mode {before} -> {after})");
        }
        if let Some([before, after]) = &file.owner {
            let _ = write!(title, " (owner {before} -> {after})");
        }
        if file.secret_changed {
            title.push_str(" (a secret in it changes)");
        }
        let _ = writeln!(out, "{title}");
        if let Some(diff) = &file.diff {
            for line in diff.lines() {
                let shown = match line.chars().next() {
                    Some('+') => style.green(line),
                    Some('-') => style.red(line),
                    _ => line.to_owned(),
                };
                let _ = writeln!(out, "{pad}    {shown}");
            }
        }
    }
    if !host.packages.is_empty() {
        let _ = writeln!(out, "{pad}{} packages: {}", super::text::paint_symbol(style, "+"), host.packages.join(", "));
    }
    if !host.steps.is_empty() {
        let _ = writeln!(out, "{pad}# then, over SSH:");
        for (i, step) in host.steps.iter().enumerate() {
            let _ = writeln!(out, "{pad}#   {}. {step}", i + 1);
        }
    }
}

/// The details of the hosts that change, for the pull-request comment: one folded section per
/// host with its steps and a `diff` block per file.
pub(super) fn markdown(out: &mut String, plan: &Plan) {
    let hosts: Vec<(&ResourceChange, &HostChange)> = super::by_address(plan)
        .into_iter()
        .filter_map(|change| Some((change, change.host.as_ref().filter(|h| !h.first_boot)?)))
        .collect();
    if hosts.is_empty() {
        return;
    }
    let _ = writeln!(out, "Configuration on the servers (over SSH):\n");
    for (change, host) in hosts {
        let files = host.files.len();
        let _ = writeln!(
            out,
            "<details><summary><code>{}</code>: {} file{}, {}</summary>\n",
            change.address,
            files,
            if files == 1 { "" } else { "s" },
            host.disruption.describe()
        );
        for path in &host.drift {
            let _ = writeln!(out, "- `{path}` was changed on the server: terrace's version is put back");
        }
        if !host.packages.is_empty() {
            let _ = writeln!(out, "- packages to install: {}", host.packages.join(", "));
        }
        for (i, step) in host.steps.iter().enumerate() {
            let _ = writeln!(out, "{}. {step}", i + 1);
        }
        out.push('\n');
        for file in &host.files {
            let what = match file.action {
                Action::Create => "new",
                Action::Delete => "removed",
                _ => "changed",
            };
            let _ = writeln!(out, "`{}` ({what})\n", file.path);
            if let Some(diff) = &file.diff {
                // A fence longer than any backtick run in the diff, so a file cannot close it.
                let run = diff.split(|c| c != '`').map(str::len).max().unwrap_or(0);
                let fence = "`".repeat(run.max(2) + 1);
                let _ = writeln!(out, "{fence}diff\n{}{fence}\n", diff);
            }
        }
        let _ = writeln!(out, "</details>\n");
    }
}
