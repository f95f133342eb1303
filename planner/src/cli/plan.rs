//! `terrace plan`: the phase against the recorded state, under the state lock.

use terrace::addr::Address;
use terrace::compile::VarInputs;
use terrace::diff::{PlanOptions, plan as diff_plan};
use terrace::lang::Stack;
use terrace::model::Compiled;
use terrace::pipeline::Loaded;
use terrace::pipeline::compile_phase;
use terrace::plan::Plan;
use terrace::render::{self, Style};
use terrace::saved;
use terrace_providers::pricing::Catalog;
use terrace_state::{Backend, State};

use super::args::{PlanArgs, PlanFormat};
use super::commands::{eprint_diags, load, print, print_data, warning_line};
use super::settings::{self, backend, catalog, state_error, var_inputs};
use super::{CliError, ExitCode};

pub(crate) fn plan(args: &PlanArgs) -> Result<ExitCode, CliError> {
    let catalog = catalog(&args.stack)?;
    let inputs = var_inputs(&args.stack)?;
    let targets = parse_targets(&args.targets)?;
    let Some((loaded, stack)) = load(&args.stack) else {
        return Ok(ExitCode::Error);
    };
    let backend = backend(&args.stack.dir.dir, &stack)?;
    let _lock = backend.lock("plan", args.lock.lock_timeout).map_err(state_error)?;
    let mut prior = read_prior(backend.as_ref(), &stack)?.unwrap_or_else(|| State::new(Some(stack.name.clone())));
    let refreshed = args.refresh && !prior.resources.is_empty();
    let mut notes = Vec::new();
    let mut reached = None;
    if refreshed {
        if std::env::var_os("HCLOUD_TOKEN").is_some_and(|t| !t.is_empty()) {
            let (services, runtime) = (super::apply::services()?, super::apply::runtime()?);
            notes = super::apply::refresh(&runtime, &services, &mut prior, &stack.name, args.hosts)?;
            reached = args.hosts.then_some((services, runtime));
        } else {
            eprintln!(
                "note: the state was not refreshed from the API: HCLOUD_TOKEN is not set (--refresh=false says so)"
            );
        }
    }
    let options = PlanOptions {
        allow_data_loss: args.allow_data_loss,
        targets,
        skip_hosts: !args.hosts,
        finish_migration: args.finish_migration,
        now: Some(std::time::SystemTime::now()),
    };
    let phase = (!args.destroy).then(|| phase_to_plan(args.phase.clone(), &prior, &stack));
    let Some((mut plan, compiled)) =
        make_plan(&loaded, &stack, phase.as_deref(), &prior, &inputs, &catalog, &options, notes)
    else {
        return Ok(ExitCode::Error);
    };
    if let Some((services, runtime)) = &reached {
        super::apply::count_live(runtime, services, &prior, compiled.as_ref(), &mut plan);
    }
    match args.format {
        PlanFormat::Text => print(&render::text::plan(&plan, Style { color: settings::stdout_color() })),
        PlanFormat::Json => print_data(&render::json(&plan)),
        PlanFormat::Markdown => print(&render::markdown::plan(&plan)),
    }
    if !plan.refusals.is_empty() {
        for refusal in &plan.refusals {
            eprintln!("error: {}", terrace::render::terminal::escape_controls(refusal));
        }
        return Ok(ExitCode::Error);
    }
    if let Some(breach) = args.max_cost_increase.and_then(|max| terrace::gate::check(&plan, max)) {
        eprintln!("error: {breach}");
        eprintln!("hint: raise --max-cost-increase, or change the plan");
        return Ok(ExitCode::CostGate);
    }
    if let Some(path) = &args.out {
        let mut variables = inputs.env.clone();
        variables.extend(inputs.cli.clone());
        let digest = saved::definitions_digest(&loaded.sources, &variables);
        let saved_options = saved::SavedOptions {
            phase: phase.unwrap_or_default(),
            destroy: args.destroy,
            refresh: refreshed,
            allow_data_loss: args.allow_data_loss,
            targets: args.targets.clone(),
            hosts: args.hosts,
            finish_migration: args.finish_migration,
            made_at: options.now.map(|t| humantime::format_rfc3339_seconds(t).to_string()),
        };
        // The refresh above changed only the copy in memory, never its serial.
        std::fs::write(path, saved::save(&plan, &prior, digest, saved_options)).map_err(|e| CliError {
            message: format!("cannot write the plan to {}: {e}", path.display()),
            hint: None,
            code: ExitCode::Error,
        })?;
        eprintln!("Saved the plan to {}.", path.display());
    }
    Ok(if args.detailed_exitcode && plan.has_changes() { ExitCode::Changes } else { ExitCode::Success })
}

/// `--target` addresses, parsed.
pub(super) fn parse_targets(targets: &[String]) -> Result<Vec<Address>, CliError> {
    targets
        .iter()
        .map(|t| t.parse().map_err(|e: terrace::addr::AddressError| CliError::usage(format!("--target: {e}"))))
        .collect()
}

/// The stack's recorded state, if any; another stack's state is refused, whatever the command.
pub(super) fn read_prior(backend: &dyn Backend, stack: &Stack) -> Result<Option<State>, CliError> {
    let prior = backend.read().map_err(state_error)?;
    if let Some(recorded) = prior.as_ref().and_then(|p| p.stack.as_ref()).filter(|s| **s != stack.name) {
        return Err(CliError {
            message: format!("{} records stack `{recorded}`, not `{}`", backend.describe(), stack.name),
            hint: Some("point the stack's backend at its own state".into()),
            code: ExitCode::Error,
        });
    }
    Ok(prior)
}

/// The phase to plan: the one asked for, else the one recorded, else the stack's first.
pub(super) fn phase_to_plan(asked: Option<String>, prior: &State, stack: &Stack) -> String {
    asked.or_else(|| prior.phase.clone()).or_else(|| stack.phases.first().cloned()).unwrap_or_default()
}

/// Compiles `phase` (`None`: destroy everything recorded) and diffs it against `prior`, the notes
/// and the phase's warnings shown with the plan. `None` after printing the diagnostics of a phase
/// that does not compile.
#[expect(clippy::too_many_arguments, reason = "the inputs of one plan, each read by its command")]
pub(super) fn make_plan(
    loaded: &Loaded,
    stack: &Stack,
    phase: Option<&str>,
    prior: &State,
    inputs: &VarInputs,
    catalog: &Catalog,
    options: &PlanOptions,
    mut notes: Vec<String>,
) -> Option<(Plan, Option<Compiled>)> {
    let Some(phase) = phase else {
        let mut plan = diff_plan(None, prior, catalog, options, notes);
        plan.stack = stack.name.clone();
        return Some((plan, None));
    };
    let (compiled, diags) = compile_phase(stack, phase, inputs, catalog);
    let sorted = diags.clone().into_sorted();
    let warnings: Vec<_> = sorted.iter().filter(|d| !d.is_error()).cloned().collect();
    notes.extend(terrace::diag::grouped(&warnings).iter().map(|group| match group.more_places(&loaded.sources) {
        Some(more) => format!("{} ({more})", warning_line(group.first)),
        None => warning_line(group.first),
    }));
    let Some(compiled) = compiled else {
        eprint_diags(diags, &loaded.sources);
        return None;
    };
    Some((diff_plan(Some(&compiled), prior, catalog, options, notes), Some(compiled)))
}
