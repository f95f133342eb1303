//! `terrace plan`: the phase against the recorded state, under the state lock.

use terrace::addr::Address;
use terrace::diff::{PlanOptions, plan as diff_plan};
use terrace::pipeline::compile_phase;
use terrace::render::{self, Style};
use terrace::saved;
use terrace_state::State;

use super::args::{PlanArgs, PlanFormat};
use super::commands::{eprint_diags, load, print, warning_line};
use super::settings::{self, backend, catalog, state_error, var_inputs};
use super::{CliError, ExitCode};

pub(crate) fn plan(args: &PlanArgs) -> Result<ExitCode, CliError> {
    let catalog = catalog(&args.stack)?;
    let inputs = var_inputs(&args.stack)?;
    let mut targets = Vec::new();
    for target in &args.targets {
        let address: Address =
            target.parse().map_err(|e: terrace::addr::AddressError| CliError::usage(format!("--target: {e}")))?;
        targets.push(address);
    }
    let Some((loaded, stack)) = load(&args.stack) else {
        return Ok(ExitCode::Error);
    };
    let backend = backend(&args.stack.dir.dir, &stack)?;
    let _lock = backend.lock("plan", args.lock.lock_timeout).map_err(state_error)?;
    let mut prior = backend.read().map_err(state_error)?.unwrap_or_else(|| State::new(Some(stack.name.clone())));
    if let Some(recorded) = prior.stack.as_ref().filter(|s| **s != stack.name) {
        return Err(CliError {
            message: format!("{} records stack `{recorded}`, not `{}`", backend.describe(), stack.name),
            hint: Some("point the stack's backend at its own state".into()),
            code: ExitCode::Error,
        });
    }
    let refreshed = args.refresh && !prior.resources.is_empty();
    let mut notes = Vec::new();
    if refreshed {
        if std::env::var_os("HCLOUD_TOKEN").is_some_and(|t| !t.is_empty()) {
            let services = super::apply::services()?;
            notes = super::apply::refresh(&super::apply::runtime()?, &services, &mut prior, &stack.name)?;
        } else {
            eprintln!(
                "note: the state was not refreshed from the API: HCLOUD_TOKEN is not set (--refresh=false says so)"
            );
        }
    }
    let options = PlanOptions { allow_data_loss: args.allow_data_loss, targets };
    let mut phase_name = String::new();
    let plan = if args.destroy {
        let mut plan = diff_plan(None, &prior, &catalog, &options, notes);
        plan.stack = stack.name.clone();
        plan
    } else {
        let phase = args
            .phase
            .clone()
            .or_else(|| prior.phase.clone())
            .or_else(|| stack.phases.first().cloned())
            .unwrap_or_default();
        phase_name = phase.clone();
        let (compiled, diags) = compile_phase(&stack, &phase, &inputs, &catalog);
        let mut warnings = notes;
        warnings.extend(diags.clone().into_sorted().iter().filter(|d| !d.is_error()).map(warning_line));
        let Some(compiled) = compiled else {
            eprint_diags(diags, &loaded.sources);
            return Ok(ExitCode::Error);
        };
        diff_plan(Some(&compiled), &prior, &catalog, &options, warnings)
    };
    print(&match args.format {
        PlanFormat::Text => render::text::plan(&plan, Style { color: settings::stdout_color() }),
        PlanFormat::Json => render::json(&plan),
        PlanFormat::Markdown => render::markdown::plan(&plan),
    });
    if !plan.refusals.is_empty() {
        for refusal in &plan.refusals {
            eprintln!("error: {refusal}");
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
            phase: phase_name,
            destroy: args.destroy,
            refresh: refreshed,
            allow_data_loss: args.allow_data_loss,
            targets: args.targets.clone(),
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
