//! The commands that read only the definitions: validate, cost, graph; and the dispatch.

use std::io::Write as _;

use terrace::compare::compare;
use terrace::diag::{Diagnostic, Diagnostics, Sources};
use terrace::lang::Stack;
use terrace::pipeline::{self, Loaded, compile_phase};
use terrace::render;

use super::args::{Cli, Command, GraphFormat, PlanFormat, StackArgs};
use super::settings::{self, catalog, var_inputs};
use super::{CliError, ExitCode};

pub(crate) fn run(cli: Cli) -> Result<ExitCode, CliError> {
    match cli.command {
        Command::Validate(args) => validate(&args),
        Command::Plan(args) => super::plan::plan(&args),
        Command::Cost(args) => cost(&args),
        Command::Graph(args) => {
            let catalog = catalog(&args.stack)?;
            let inputs = var_inputs(&args.stack)?;
            let Some((loaded, stack)) = load(&args.stack) else {
                return Ok(ExitCode::Error);
            };
            let phase = args.phase.clone().or_else(|| stack.phases.first().cloned()).unwrap_or_default();
            let (compiled, diags) = compile_phase(&stack, &phase, &inputs, &catalog);
            let Some(compiled) = compiled else {
                eprint_diags(diags, &loaded.sources);
                return Ok(ExitCode::Error);
            };
            match args.format {
                GraphFormat::Dot => print(&render::graph::dot(&compiled)),
                GraphFormat::Json => print_data(&render::graph::json(&compiled)),
            }
            Ok(ExitCode::Success)
        }
        Command::State(args) => super::state::state(&args),
        Command::Output(args) => super::state::output(&args),
        Command::Migrate(args) => super::state::migrate(&args),
        Command::Apply(args) => super::apply::apply(&args),
        Command::Destroy(args) => super::apply::destroy(&args),
        Command::Import(args) => super::apply::import(&args),
        Command::Pricing(args) => super::apply::pricing(&args),
        Command::Emulator(args) => super::emulator::emulator(&args),
    }
}

fn cost(args: &super::args::CostArgs) -> Result<ExitCode, CliError> {
    let catalog = catalog(&args.stack)?;
    let inputs = var_inputs(&args.stack)?;
    let Some((loaded, stack)) = load(&args.stack) else {
        return Ok(ExitCode::Error);
    };
    let mut all = Diagnostics::default();
    let mut compiled = Vec::new();
    for phase in &stack.phases {
        let (result, diags) = compile_phase(&stack, phase, &inputs, &catalog);
        all.extend(diags);
        compiled.extend(result);
    }
    if all.has_errors() {
        eprint_diags(all, &loaded.sources);
        return Ok(ExitCode::Error);
    }
    let comparison = compare(&stack.name, &compiled, &catalog);
    match args.format {
        PlanFormat::Text => print(&render::compare::text(&comparison)),
        PlanFormat::Json => print_data(&render::json(&comparison)),
        PlanFormat::Markdown => print(&render::compare::markdown(&comparison)),
    }
    Ok(ExitCode::Success)
}

fn validate(args: &StackArgs) -> Result<ExitCode, CliError> {
    let catalog = catalog(args)?;
    let inputs = var_inputs(args)?;
    let loaded = pipeline::load(&args.dir.dir);
    let mut found: Vec<(Diagnostic, Vec<String>)> = Vec::new();
    let mut phases = 0;
    if let Some(stack) = &loaded.stack {
        for phase in &stack.phases {
            let (compiled, diags) = compile_phase(stack, phase, &inputs, &catalog);
            phases += usize::from(compiled.is_some());
            let own_file = stack.phase(phase).map(|def| def.span.file);
            for diagnostic in diags {
                // A problem in an inherited definition shows once, naming the phases it breaks.
                match found.iter_mut().find(|(seen, _)| *seen == diagnostic) {
                    Some((_, in_phases)) => in_phases.push(phase.clone()),
                    None => {
                        let inherited = diagnostic.span.as_ref().is_some_and(|s| Some(s.file) != own_file);
                        let phases = if inherited { vec![phase.clone()] } else { Vec::new() };
                        found.push((diagnostic, phases));
                    }
                }
            }
        }
    }
    // Diagnostics that say the same thing (as `diag::grouped` groups them) name the phases of all
    // of them, so that they stay one when rendered.
    type Said = (String, Option<String>, Option<String>, Option<String>);
    let mut phases_of: std::collections::HashMap<Said, Vec<String>> = std::collections::HashMap::new();
    for (diagnostic, in_phases) in &found {
        let key =
            (diagnostic.summary.clone(), diagnostic.detail.clone(), diagnostic.label.clone(), diagnostic.hint.clone());
        phases_of.entry(key).or_default().extend(in_phases.iter().cloned());
    }
    let mut all = Diagnostics::default();
    for (mut diagnostic, in_phases) in found {
        if !in_phases.is_empty() {
            let key = (
                diagnostic.summary.clone(),
                diagnostic.detail.clone(),
                diagnostic.label.clone(),
                diagnostic.hint.clone(),
            );
            let in_phases = phases_of.get(&key).unwrap_or(&in_phases);
            let names: Vec<String> = in_phases.iter().take(5).map(|p| format!("`{p}`")).collect();
            let plural = if in_phases.len() == 1 { "" } else { "s" };
            let rest = match in_phases.len().saturating_sub(names.len()) {
                0 => String::new(),
                more => format!(" and {more} more"),
            };
            let note = format!("found while compiling phase{plural} {}{rest}", names.join(", "));
            diagnostic.detail = Some(match diagnostic.detail.take() {
                Some(detail) => format!("{detail}\n{note}"),
                None => note,
            });
        }
        all.push(diagnostic);
    }
    let failed = loaded.diags.has_errors() || all.has_errors() || loaded.stack.is_none();
    all.extend(loaded.diags);
    let count = loaded.stack.as_ref().map_or(0, |s| s.phases.len());
    eprint_diags(all, &loaded.sources);
    if failed {
        return Ok(ExitCode::Error);
    }
    print(&format!("Success: {phases} of {count} phases are valid.\n"));
    Ok(ExitCode::Success)
}

/// Loads the stack; on errors prints them and returns `None`.
pub(super) fn load(args: &StackArgs) -> Option<(Loaded, Stack)> {
    load_dir(&args.dir.dir)
}

pub(super) fn load_dir(dir: &std::path::Path) -> Option<(Loaded, Stack)> {
    let mut loaded = pipeline::load(dir);
    if loaded.diags.has_errors() || loaded.stack.is_none() {
        let diags = std::mem::take(&mut loaded.diags);
        eprint_diags(diags, &loaded.sources);
        return None;
    }
    let stack = loaded.stack.take()?;
    Some((loaded, stack))
}

/// A warning as one line of a plan.
pub(super) fn warning_line(diagnostic: &Diagnostic) -> String {
    let mut line = diagnostic.summary.clone();
    if let Some(detail) = diagnostic.detail.as_ref().filter(|d| !d.is_empty()) {
        line.push_str(": ");
        line.push_str(detail);
    }
    if let Some(hint) = &diagnostic.hint {
        line.push_str(&format!(" ({hint})"));
    }
    line
}

pub(super) fn eprint_diags(diags: Diagnostics, sources: &Sources) {
    if diags.is_empty() {
        return;
    }
    let sorted = diags.into_sorted();
    let text = render::diagnostics::render(&sorted, sources, settings::stderr_color());
    let _ = std::io::stderr().lock().write_all(text.as_bytes());
}

/// Prints on stdout what a command shows, made safe for a terminal (`render::terminal`): the
/// renderers' colours, and no control character of what a definition or a state holds.
pub(super) fn print(text: &str) {
    let shown = terrace::render::terminal::for_terminal(text);
    let _ = std::io::stdout().lock().write_all(shown.as_bytes());
}

/// Prints data a program reads (JSON, `terrace output`) as it is: JSON escapes control
/// characters itself, and a value is the value.
pub(super) fn print_data(text: &str) {
    let _ = std::io::stdout().lock().write_all(text.as_bytes());
}
