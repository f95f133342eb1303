//! `terrace apply`, `terrace destroy` and `terrace import`: the commands that change the cloud.
//! Each holds the state lock for the whole run, refreshes, plans, asks (unless `--auto-approve`
//! or a saved plan), then runs the executor with progress on stderr and Ctrl-C handling.

use std::io::{BufRead as _, IsTerminal as _, Write as _};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};

use terrace::addr::Address;
use terrace::apply::{self, Progress, Services};
use terrace::diff::PlanOptions;
use terrace::model::Compiled;
use terrace::pipeline::compile_phase;
use terrace::plan::{Action, Plan};
use terrace::render::{self, Style};
use terrace::saved;
use terrace_providers::client::{Client, ClientConfig};
use terrace_providers::cloud;
use terrace_providers::objectstorage::{ObjectStorage, ObjectStorageConfig};
use terrace_state::{Backend, State};

use super::args::{ApplyArgs, DestroyArgs, ImportArgs};
use super::commands::{eprint_diags, load, print};
use super::plan::{make_plan, parse_targets, phase_to_plan, read_prior};
use super::progress::Display;
use super::settings::{self, backend, catalog, state_error, var_inputs};
use super::{CliError, ExitCode};

/// Where an apply keeps the state its backend could not take, beside the definitions.
pub(crate) const UNSAVED: &str = "terrace.state.unsaved.json";

/// The API clients from the environment; an error when there is no token.
pub(crate) fn services() -> Result<Services, CliError> {
    let config = ClientConfig::from_env().ok_or_else(|| CliError {
        message: "HCLOUD_TOKEN is not set".into(),
        hint: Some("export HCLOUD_TOKEN (a read/write API token of the project); HCLOUD_ENDPOINT points elsewhere, e.g. at `terrace emulator`".into()),
        code: ExitCode::Error,
    })?;
    let client = Client::new(config).map_err(|e| CliError::usage(e.to_string()))?;
    let storage = match ObjectStorageConfig::from_env() {
        Some(config) => Some(ObjectStorage::new(config).map_err(|e| CliError::usage(e.to_string()))?),
        None => None,
    };
    Ok(Services { client, storage, hosts: settings::host_timeouts()?, migration_hook: None })
}

pub(crate) fn runtime() -> Result<tokio::runtime::Runtime, CliError> {
    tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .map_err(|e| CliError::usage(format!("cannot start the async runtime: {e}")))
}

/// Refreshes `state` from the API and returns the notes for the plan.
pub(crate) fn refresh(
    runtime: &tokio::runtime::Runtime,
    services: &Services,
    state: &mut State,
    stack: &str,
    hosts: bool,
) -> Result<Vec<String>, CliError> {
    if state.resources.is_empty() {
        return Ok(Vec::new());
    }
    let found =
        runtime.block_on(apply::refresh(&services.client, services.storage.as_ref(), state, stack)).map_err(|e| {
            CliError {
                message: format!("refresh: {e}"),
                hint: Some("--refresh=false plans against the recorded state as it is".into()),
                code: ExitCode::Error,
            }
        })?;
    let mut notes = found.notes();
    if hosts {
        notes.extend(runtime.block_on(apply::refresh_hosts(state, services.hosts)));
    }
    Ok(notes)
}

/// Reads live, over SSH, the old databases of the migrations the plan starts or resumes: their
/// version and size against the new servers (a mismatch is a refusal of the plan), and the rows of
/// reshards and rebalances; what cannot be read is a warning of the plan.
pub(crate) fn count_live(
    runtime: &tokio::runtime::Runtime,
    services: &Services,
    prior: &State,
    compiled: Option<&terrace::model::Compiled>,
    plan: &mut terrace::plan::Plan,
) {
    let Some(compiled) = compiled else { return };
    if plan.migrations.iter().all(|m| !m.runs()) {
        return;
    }
    let connect = services.hosts.connect;
    let read = runtime.block_on(apply::count_live(prior, compiled, &mut plan.migrations, connect));
    plan.warnings.extend(read.notes);
    plan.refusals.extend(read.refusals);
}

/// Runs the executor and prints the summary; the exit code says whether everything was done.
#[expect(clippy::too_many_arguments, reason = "the parts of one run")]
fn execute(
    runtime: &tokio::runtime::Runtime,
    plan: &Plan,
    compiled: Option<Compiled>,
    state: State,
    backend: Arc<dyn Backend>,
    services: Services,
    parallelism: usize,
    verb: &str,
    fallback: std::path::PathBuf,
) -> ExitCode {
    let stop = Arc::new(AtomicBool::new(false));
    let total = plan.resource_changes.iter().filter(|c| c.action != Action::NoOp).count();
    let display = Arc::new(Display::new(settings::stderr_color(), std::io::stderr().is_terminal(), total));
    let progress: Arc<dyn Progress> = display.clone();
    let (state, report) = runtime.block_on(async {
        let watcher = stop.clone();
        let interrupt = tokio::spawn(async move {
            if tokio::signal::ctrl_c().await.is_ok() {
                watcher.store(true, Ordering::SeqCst);
                eprintln!(
                    "\nInterrupt received: no new operations start; finishing those in flight and saving state..."
                );
            }
        });
        let ticking = display.clone();
        let ticker = tokio::spawn(async move {
            loop {
                tokio::time::sleep(std::time::Duration::from_millis(500)).await;
                ticking.tick();
            }
        });
        let result = apply::apply(
            plan,
            compiled.map(Arc::new),
            state,
            backend,
            services,
            parallelism,
            stop.clone(),
            progress,
            Some(fallback),
        )
        .await;
        interrupt.abort();
        ticker.abort();
        display.finish();
        result
    });
    // The flag is set by Ctrl-C, or by the walk on a failure.
    let interrupted = stop.load(Ordering::SeqCst) && report.failed.is_empty() && report.state_error.is_none();
    let count = |action: Action| {
        plan.resource_changes.iter().filter(|c| c.action == action && report.done.contains(&c.address)).count()
    };
    if report.succeeded() && !interrupted {
        eprintln!(
            "\n{verb} complete! Resources: {} added, {} changed, {} replaced, {} destroyed. State serial {}.",
            count(Action::Create),
            count(Action::Update),
            count(Action::Replace),
            count(Action::Delete),
            state.serial
        );
        return ExitCode::Success;
    }
    let why = if interrupted { " (interrupted)" } else { "" };
    eprintln!(
        "\n{verb} stopped before it finished{why}; the state records everything that was done (serial {}).",
        state.serial
    );
    if let Some(error) = &report.state_error {
        eprintln!("error: {}", terrace::render::terminal::escape_controls(&error.to_string()));
    }
    if let Some(file) = &report.unsaved {
        eprintln!(
            "error: the state backend could not take the state; everything done is kept in {}\n\
             hint: once the backend is back, `terrace state push {}` puts it there (lineage and serial are checked)",
            file.display(),
            file.display()
        );
    }
    for (address, error) in &report.failed {
        eprintln!("  failed:      {address}: {}", terrace::render::terminal::escape_controls(error));
    }
    for address in &report.skipped {
        eprintln!("  skipped:     {address} (something it depends on failed)");
    }
    for address in &report.not_started {
        eprintln!("  not started: {address}");
    }
    eprintln!("hint: run the same command again to continue from where it stopped");
    ExitCode::Error
}

/// Asks for `yes` on stdin.
fn confirm(question: &str) -> bool {
    eprint!("{question}\n  Only 'yes' will be accepted to approve.\n\n  Enter a value: ");
    let _ = std::io::stderr().flush();
    let mut line = String::new();
    std::io::stdin().lock().read_line(&mut line).is_ok() && line.trim() == "yes"
}

pub(crate) fn apply(args: &ApplyArgs) -> Result<ExitCode, CliError> {
    if let Some(file) = &args.plan_file {
        return apply_saved(args, file);
    }
    let run = Run {
        phase: args.phase.clone(),
        auto_approve: args.auto_approve,
        destroy: false,
        targets: &args.targets,
        finish_migration: args.finish_migration,
        migration_hook: args.migration_hook.clone(),
    };
    self::run(&args.common, run)
}

pub(crate) fn destroy(args: &DestroyArgs) -> Result<ExitCode, CliError> {
    let run = Run {
        phase: None,
        auto_approve: args.auto_approve,
        destroy: true,
        targets: &[],
        finish_migration: false,
        migration_hook: None,
    };
    self::run(&args.common, run)
}

/// What an apply or destroy was asked for, beside what they share.
struct Run<'a> {
    phase: Option<String>,
    auto_approve: bool,
    destroy: bool,
    targets: &'a [String],
    finish_migration: bool,
    migration_hook: Option<String>,
}

fn run(common: &super::args::ApplyCommon, run: Run<'_>) -> Result<ExitCode, CliError> {
    let Run { phase, auto_approve, destroy, targets, finish_migration, migration_hook } = run;
    let catalog = catalog(&common.stack)?;
    let inputs = var_inputs(&common.stack)?;
    let targets = parse_targets(targets)?;
    let Some((loaded, stack)) = load(&common.stack) else {
        return Ok(ExitCode::Error);
    };
    let mut services = services()?;
    services.migration_hook = migration_hook;
    let runtime = runtime()?;
    let backend: Arc<dyn Backend> = backend(&common.stack.dir.dir, &stack)?;
    let verb = if destroy { "destroy" } else { "apply" };
    let _lock = backend.lock(verb, common.lock.lock_timeout).map_err(state_error)?;
    let mut prior = read_prior(backend.as_ref(), &stack)?.unwrap_or_else(|| State::new(Some(stack.name.clone())));
    let notes =
        if common.refresh { refresh(&runtime, &services, &mut prior, &stack.name, common.hosts)? } else { Vec::new() };
    let options = PlanOptions {
        allow_data_loss: common.allow_data_loss,
        targets,
        skip_hosts: !common.hosts,
        finish_migration,
        now: Some(std::time::SystemTime::now()),
    };
    let phase = (!destroy).then(|| phase_to_plan(phase, &prior, &stack));
    let Some((mut plan, compiled)) =
        make_plan(&loaded, &stack, phase.as_deref(), &prior, &inputs, &catalog, &options, notes)
    else {
        return Ok(ExitCode::Error);
    };
    if common.refresh && common.hosts {
        count_live(&runtime, &services, &prior, compiled.as_ref(), &mut plan);
    }
    print(&render::text::plan(&plan, Style { color: settings::stdout_color() }));
    if !plan.refusals.is_empty() {
        for refusal in &plan.refusals {
            eprintln!("error: {}", terrace::render::terminal::escape_controls(refusal));
        }
        return Ok(ExitCode::Error);
    }
    if plan.has_changes() && !auto_approve {
        let question = if destroy {
            "Do you really want to destroy all resources of this stack?"
        } else {
            "Do you want to perform these actions?"
        };
        if !confirm(question) {
            eprintln!("{verb} cancelled.");
            return Ok(ExitCode::Error);
        }
    }
    Ok(execute(
        &runtime,
        &plan,
        compiled,
        prior,
        backend,
        services,
        usize::from(common.parallelism),
        if destroy { "Destroy" } else { "Apply" },
        common.stack.dir.dir.join(UNSAVED),
    ))
}

/// `terrace apply PLANFILE`: the saved plan, exactly, or nothing.
fn apply_saved(args: &ApplyArgs, file: &std::path::Path) -> Result<ExitCode, CliError> {
    let text = terrace_state::file::read_regular(file, terrace_state::file::MAX_STATE_BYTES)
        .and_then(|bytes| String::from_utf8(bytes).map_err(|e| std::io::Error::new(std::io::ErrorKind::InvalidData, e)))
        .map_err(|e| CliError::usage(format!("cannot read the saved plan {}: {e}", file.display())))?;
    let catalog = catalog(&args.common.stack)?;
    let inputs = var_inputs(&args.common.stack)?;
    let Some((loaded, stack)) = load(&args.common.stack) else {
        return Ok(ExitCode::Error);
    };
    let mut services = services()?;
    services.migration_hook = args.migration_hook.clone();
    let runtime = runtime()?;
    let backend: Arc<dyn Backend> = backend(&args.common.stack.dir.dir, &stack)?;
    let _lock = backend.lock("apply", args.common.lock.lock_timeout).map_err(state_error)?;
    // A plan made before any state existed starts the state with the lineage it was planned with.
    let planned_lineage = serde_json::from_str::<serde_json::Value>(&text)
        .ok()
        .and_then(|v| v.get("lineage").and_then(|l| l.as_str()).map(str::to_owned));
    let mut prior = read_prior(backend.as_ref(), &stack)?.unwrap_or_else(|| {
        let mut fresh = State::new(Some(stack.name.clone()));
        fresh.lineage = planned_lineage.unwrap_or(fresh.lineage);
        fresh
    });
    let mut variables = inputs.env.clone();
    variables.extend(inputs.cli.clone());
    let digest = saved::definitions_digest(&loaded.sources, &variables);
    let refused = |why: String| CliError {
        message: format!("the saved plan {} cannot be applied: {why}", file.display()),
        hint: Some("make a new plan with `terrace plan --out FILE`".into()),
        code: ExitCode::Error,
    };
    let saved = saved::check(&text, &prior, &digest).map_err(|stale| refused(stale.to_string()))?;
    let options = PlanOptions {
        allow_data_loss: saved.options.allow_data_loss,
        targets: parse_targets(&saved.options.targets)?,
        skip_hosts: !saved.options.hosts,
        finish_migration: saved.options.finish_migration,
        now: saved.options.made_at.as_deref().and_then(|t| humantime::parse_rfc3339(t).ok()),
    };
    let notes = if saved.options.refresh {
        refresh(&runtime, &services, &mut prior, &stack.name, saved.options.hosts)?
    } else {
        Vec::new()
    };
    let phase = (!saved.options.destroy).then_some(saved.options.phase.as_str());
    let Some((plan, compiled)) = make_plan(&loaded, &stack, phase, &prior, &inputs, &catalog, &options, notes) else {
        return Ok(ExitCode::Error);
    };
    // The same definitions and state give the same plan, unless the cloud changed meanwhile.
    let now = serde_json::to_value(&plan).unwrap_or_default();
    if now.get("resource_changes") != saved.plan.get("resource_changes") {
        return Err(refused(
            "the objects changed outside terrace since the plan was made (the refresh finds a different plan)".into(),
        ));
    }
    if !plan.refusals.is_empty() {
        return Err(refused(plan.refusals.join("; ")));
    }
    eprintln!("Applying the saved plan {} (state serial {}).", file.display(), prior.serial);
    let fallback = args.common.stack.dir.dir.join(UNSAVED);
    Ok(execute(
        &runtime,
        &plan,
        compiled,
        prior,
        backend,
        services,
        usize::from(args.common.parallelism),
        "Apply",
        fallback,
    ))
}

/// `terrace import ADDRESS ID`: records an existing object under an address of the phase and
/// labels it as this stack's, so refresh finds it.
pub(crate) fn import(args: &ImportArgs) -> Result<ExitCode, CliError> {
    let catalog = catalog(&args.stack)?;
    let inputs = var_inputs(&args.stack)?;
    let address: Address =
        args.address.parse().map_err(|e: terrace::addr::AddressError| CliError::usage(format!("{e}")))?;
    let Some((loaded, stack)) = load(&args.stack) else {
        return Ok(ExitCode::Error);
    };
    let services = services()?;
    let runtime = runtime()?;
    let backend = backend(&args.stack.dir.dir, &stack)?;
    let _lock = backend.lock("import", args.lock.lock_timeout).map_err(state_error)?;
    let mut state = read_prior(backend.as_ref(), &stack)?.unwrap_or_else(|| State::new(Some(stack.name.clone())));
    if state.resources.contains_key(&address.to_string()) {
        return Err(CliError {
            message: format!("`{address}` is already recorded"),
            hint: Some(format!("`terrace state rm {address}` first to record another object there")),
            code: ExitCode::Error,
        });
    }
    let phase = phase_to_plan(args.phase.clone(), &state, &stack);
    let (compiled, diags) = compile_phase(&stack, &phase, &inputs, &catalog);
    let Some(compiled) = compiled else {
        eprint_diags(diags, &loaded.sources);
        return Ok(ExitCode::Error);
    };
    let resource = compiled.resource(&address).ok_or_else(|| CliError {
        message: format!("`{address}` is not in phase `{phase}`"),
        hint: Some("import into an address the phase declares (see `terrace graph`)".into()),
        code: ExitCode::Error,
    })?;
    let kind = apply::resolve::cloud_kind(resource.kind).ok_or_else(|| {
        CliError::usage(format!("`{address}` is a {}, which has no Cloud API object to import", resource.kind))
    })?;
    let id: u64 = args.id.parse().map_err(|_| CliError::usage(format!("the id `{}` is not a number", args.id)))?;
    let client = services.client.clone();
    let found = runtime.block_on(async {
        let Some(object) = cloud::read(&client, kind, id).await? else { return Ok(None) };
        // terrace's labels, so that refresh finds the object; its other labels stay as they are.
        let mut labels: std::collections::BTreeMap<String, String> = object
            .attrs
            .get("labels")
            .and_then(|l| l.as_object())
            .map(|m| m.iter().map(|(k, v)| (k.clone(), v.as_str().unwrap_or_default().to_owned())).collect())
            .unwrap_or_default();
        labels.extend(apply::resolve::own_labels(&stack.name, &address));
        let desired = cloud::Desired { kind, address: address.to_string(), attrs: Default::default(), labels };
        cloud::update(&client, id, &desired).await.map(Some)
    });
    let object = match found {
        Ok(Some(object)) => object,
        Ok(None) => return Err(CliError::usage(format!("there is no {kind} with id {id}"))),
        Err(error) => return Err(CliError::usage(format!("import: {error}"))),
    };
    // Attributes that read what is not recorded yet (a service's cloud-init reading its generated
    // password) are left out: the API cannot show them either, and the next apply records them.
    let mut readable = resource.clone();
    readable.attrs.retain(|_, value| apply::resolve::for_state(value, &state).is_ok());
    let mut entry = apply::resolve::record(&readable, &compiled, Some((&args.id, &object.attrs)), &state)
        .map_err(|u| CliError::usage(format!("`{address}` cannot be recorded yet: {}", u.0)))?;
    let differences = apply::resolve::overlay(&mut entry, &object, &apply::resolve::id_index(&state));
    state.resources.insert(address.to_string(), entry);
    state.increment_serial();
    backend.write(&state).map_err(state_error)?;
    eprintln!("Imported {kind} {id} as `{address}`.");
    for difference in differences {
        eprintln!("  differs from the phase: {difference} (the next plan shows the change)");
    }
    Ok(ExitCode::Success)
}

/// `terrace pricing pull --out FILE`.
pub(crate) fn pricing(args: &super::args::PricingArgs) -> Result<ExitCode, CliError> {
    let super::args::PricingCommand::Pull { out } = &args.command;
    let services = services()?;
    let runtime = runtime()?;
    let operation = terrace_providers::client::Operation::new("read the price list");
    let answer = runtime
        .block_on(services.client.request(reqwest::Method::GET, "/pricing", &[], None, &operation))
        .map_err(|e| CliError::usage(e.to_string()))?;
    let text = serde_json::to_string_pretty(&answer).unwrap_or_default() + "\n";
    // Checked as a catalog before it is written, so a file written is a file --pricing reads.
    let temporary = out.with_extension("partial");
    std::fs::write(&temporary, &text)
        .map_err(|e| CliError::usage(format!("cannot write {}: {e}", temporary.display())))?;
    if let Err(error) = terrace_providers::pricing::Catalog::load(&temporary.to_string_lossy()) {
        let _ = std::fs::remove_file(&temporary);
        return Err(CliError::usage(format!("the API's price list is not usable: {error}")));
    }
    std::fs::rename(&temporary, out).map_err(|e| CliError::usage(format!("cannot write {}: {e}", out.display())))?;
    eprintln!(
        "Wrote the price list of {} to {} (use it with --pricing {}).",
        services.client.endpoint(),
        out.display(),
        out.display()
    );
    Ok(ExitCode::Success)
}
