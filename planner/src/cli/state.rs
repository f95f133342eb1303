//! `terrace state list|show|rm|mv|unlock` and `terrace output`.

use serde_json::Value as Json;
use terrace::addr::Address;

use super::args::{OutputArgs, OutputFormat, StateArgs, StateCommand};
use super::commands::{load_dir, print, print_data};
use super::settings::{backend, state_error};
use super::{CliError, ExitCode};

pub(crate) fn state(args: &StateArgs) -> Result<ExitCode, CliError> {
    let Some((_, stack)) = load_dir(&args.dir.dir) else {
        return Ok(ExitCode::Error);
    };
    let backend = backend(&args.dir.dir, &stack)?;
    match &args.command {
        StateCommand::List => {
            let state = backend.read().map_err(state_error)?.unwrap_or_else(|| terrace_state::State::new(None));
            let mut addresses: Vec<Address> = state.resources.keys().filter_map(|a| a.parse().ok()).collect();
            addresses.sort();
            print(&addresses.iter().map(|a| format!("{a}\n")).collect::<String>());
        }
        StateCommand::Show { address } => {
            let state = backend.read().map_err(state_error)?.unwrap_or_else(|| terrace_state::State::new(None));
            let Some(resource) = state.resources.get(address) else {
                return Err(not_recorded(address));
            };
            let mut attributes = resource.attributes.clone();
            for path in &resource.sensitive_attributes {
                if attributes.contains_key(path) {
                    attributes.insert(path.clone(), Json::String("(sensitive value)".into()));
                }
            }
            let shown = serde_json::json!({
                "address": address,
                "kind": resource.kind,
                "id": resource.id,
                "composite": resource.composite,
                "dependencies": resource.dependencies,
                "attributes": attributes,
            });
            print_data(&terrace::render::json(&shown));
        }
        StateCommand::Rm { address } => {
            let _lock = backend.lock("state rm", args.lock.lock_timeout).map_err(state_error)?;
            let mut state = backend.read().map_err(state_error)?.unwrap_or_else(|| terrace_state::State::new(None));
            let parsed: Address =
                address.parse().map_err(|e: terrace::addr::AddressError| CliError::usage(e.to_string()))?;
            let removed: Vec<String> = state
                .resources
                .keys()
                .filter(|a| a.parse::<Address>().is_ok_and(|a| a.is_within(&parsed)))
                .cloned()
                .collect();
            if removed.is_empty() {
                return Err(not_recorded(address));
            }
            for address in &removed {
                state.resources.remove(address);
            }
            state.serial += 1;
            backend.write(&state).map_err(state_error)?;
            print(&format!("Removed {} from the state (the objects stay in Hetzner Cloud).\n", removed.join(", ")));
        }
        StateCommand::Mv { from, to } => {
            let _lock = backend.lock("state mv", args.lock.lock_timeout).map_err(state_error)?;
            let mut state = backend.read().map_err(state_error)?.unwrap_or_else(|| terrace_state::State::new(None));
            let (from_addr, to_addr): (Address, Address) = (
                from.parse().map_err(|e: terrace::addr::AddressError| CliError::usage(e.to_string()))?,
                to.parse().map_err(|e: terrace::addr::AddressError| CliError::usage(e.to_string()))?,
            );
            if from_addr.kind() != to_addr.kind() {
                return Err(CliError::usage(format!(
                    "cannot move a {} to a {} address",
                    from_addr.kind(),
                    to_addr.kind()
                )));
            }
            if state.resources.contains_key(to) {
                return Err(CliError::usage(format!("`{to}` is already recorded")));
            }
            let Some(resource) = state.resources.remove(from) else {
                return Err(not_recorded(from));
            };
            state.resources.insert(to.clone(), resource);
            for other in state.resources.values_mut() {
                for dependency in &mut other.dependencies {
                    if dependency == from {
                        dependency.clone_from(to);
                    }
                }
                other.dependencies.sort();
            }
            state.serial += 1;
            backend.write(&state).map_err(state_error)?;
            print(&format!("Moved {from} to {to}.\n"));
        }
        StateCommand::Push { file } => {
            let _lock = backend.lock("state push", args.lock.lock_timeout).map_err(state_error)?;
            let bytes = terrace_state::file::read_regular(file, terrace_state::file::MAX_STATE_BYTES)
                .map_err(|e| CliError::usage(format!("cannot read {}: {e}", file.display())))?;
            let pushed = terrace_state::from_json(&bytes, &file.display().to_string()).map_err(state_error)?;
            if let Some(recorded) = pushed.stack.as_ref().filter(|s| **s != stack.name) {
                return Err(CliError::usage(format!(
                    "{} is the state of stack `{recorded}`, not `{}`",
                    file.display(),
                    stack.name
                )));
            }
            // The backend refuses another lineage, or a serial not above its own, saying which.
            backend.write(&pushed).map_err(state_error)?;
            print(&format!("Pushed {} (serial {}) to {}.\n", file.display(), pushed.serial, backend.describe()));
        }
        StateCommand::Migrate { to_backend, backend_config } => {
            let mut written = std::collections::BTreeMap::new();
            for pair in backend_config {
                let (name, value) = pair
                    .split_once('=')
                    .ok_or_else(|| CliError::usage(format!("--backend-config {pair}: expected NAME=VALUE")))?;
                written.insert(name.trim().to_owned(), value.to_owned());
            }
            let target_spec = super::settings::BackendSpec::new(to_backend, written)?;
            let target = target_spec.open(&args.dir.dir, &stack.name)?;
            let _source_lock = backend.lock("state migrate", args.lock.lock_timeout).map_err(state_error)?;
            let Some(state) = backend.read().map_err(state_error)? else {
                return Err(CliError::usage(format!("{} holds no state to migrate", backend.describe())));
            };
            let _target_lock = target.lock("state migrate", args.lock.lock_timeout).map_err(state_error)?;
            if let Some(there) = target.read().map_err(state_error)?
                && there.lineage == state.lineage
                && there.serial == state.serial
            {
                print(&format!("{} already holds this state (serial {}).\n", target.describe(), state.serial));
                return Ok(ExitCode::Success);
            }
            // The target refuses another stack's state or an older serial than its own.
            target.write(&state).map_err(state_error)?;
            print(&format!(
                "Copied the state (lineage {}, serial {}, {} resources) from {} to {}.\n\
                 Point terrace.hcl at it: backend \"{}\" {{ ... }}; {} is left as it was.\n",
                state.lineage,
                state.serial,
                state.resources.len(),
                backend.describe(),
                target.describe(),
                target_spec.kind,
                backend.describe()
            ));
        }
        StateCommand::Unlock { id, force } => {
            let live = backend.lock_info().map_err(state_error)?.filter(|lock| lock.id == *id);
            if let (Some(lock), false) = (&live, force)
                && let Some(pid) = lock.holder_runs_here()
            {
                return Err(CliError {
                    message: format!(
                        "the lock {id} is held by a run that is still going: {} ({} since {}), pid {pid} on this host",
                        lock.holder, lock.operation, lock.created
                    ),
                    hint: Some(format!(
                        "breaking it would let two runs write at once: wait for pid {pid} to finish (or stop it); \
                         `terrace state unlock {id} --force` breaks it anyway"
                    )),
                    code: ExitCode::Error,
                });
            }
            backend.unlock(id).map_err(state_error)?;
            print(&format!("Broke the lock {id}.\n"));
        }
    }
    Ok(ExitCode::Success)
}

fn not_recorded(address: &str) -> CliError {
    CliError {
        message: format!("`{address}` is not in the state"),
        hint: Some("`terrace state list` shows what is recorded".into()),
        code: ExitCode::Error,
    }
}

/// `terrace output`: the recorded outputs as JSON or as `NAME=value` lines.
pub(crate) fn output(args: &OutputArgs) -> Result<ExitCode, CliError> {
    let Some((_, stack)) = load_dir(&args.dir.dir) else {
        return Ok(ExitCode::Error);
    };
    let backend = backend(&args.dir.dir, &stack)?;
    let state = backend.read().map_err(state_error)?.unwrap_or_else(|| terrace_state::State::new(None));
    if let Some(name) = &args.name {
        let output = state.outputs.get(name).ok_or_else(|| CliError {
            message: format!("there is no output `{name}` in the state"),
            hint: Some(format!("recorded outputs: {}", state.outputs.keys().cloned().collect::<Vec<_>>().join(", "))),
            code: ExitCode::Error,
        })?;
        if output.sensitive && !args.show_sensitive {
            return Err(CliError {
                message: format!("output `{name}` is sensitive"),
                hint: Some("pass --show-sensitive to print it".into()),
                code: ExitCode::Error,
            });
        }
        // One value, as it is: text without quotes (a procedure, a URL), anything else as JSON.
        match &output.value {
            Json::String(text) => print_data(&format!("{}\n", text.trim_end_matches('\n'))),
            other => print_data(&format!("{}\n", terrace::render::json(other).trim_end())),
        }
        return Ok(ExitCode::Success);
    }
    let shown = |value: &Json, sensitive: bool| {
        if sensitive && !args.show_sensitive { Json::String("(sensitive value)".into()) } else { value.clone() }
    };
    match args.format {
        OutputFormat::Json => {
            let map: serde_json::Map<String, Json> = state
                .outputs
                .iter()
                .map(|(name, o)| {
                    (
                        name.clone(),
                        serde_json::json!({ "value": shown(&o.value, o.sensitive), "sensitive": o.sensitive }),
                    )
                })
                .collect();
            print_data(&terrace::render::json(&map));
        }
        OutputFormat::Env => {
            let mut lines = String::new();
            for (name, output) in &state.outputs {
                if output.sensitive && !args.show_sensitive {
                    lines.push_str(&format!("# {name} is sensitive: pass --show-sensitive to print it\n"));
                    continue;
                }
                lines.push_str(&format!("{name}={}\n", env_value(&output.value)));
            }
            print_data(&lines);
        }
    }
    Ok(ExitCode::Success)
}

/// A value for a `.env` line: plain when safe, else double-quoted with escapes; lists and objects
/// as JSON.
fn env_value(value: &Json) -> String {
    let text = match value {
        Json::String(s) => s.clone(),
        Json::Null => String::new(),
        other => other.to_string(),
    };
    if text.chars().all(|c| c.is_ascii_alphanumeric() || "-_.:/@%+,".contains(c)) {
        text
    } else {
        format!("\"{}\"", text.replace('\\', "\\\\").replace('"', "\\\"").replace('\n', "\\n").replace('$', "\\$"))
    }
}

/// `terrace migrate status`.
pub(crate) fn migrate(args: &super::args::MigrateArgs) -> Result<ExitCode, CliError> {
    let super::args::MigrateCommand::Status = args.command;
    let Some((_, stack)) = load_dir(&args.dir.dir) else {
        return Ok(ExitCode::Error);
    };
    let backend = backend(&args.dir.dir, &stack)?;
    let state = backend.read().map_err(state_error)?.unwrap_or_else(|| terrace_state::State::new(None));
    if state.migrations.is_empty() {
        print("No data migration is recorded.\n");
        return Ok(ExitCode::Success);
    }
    let runtime = super::apply::runtime()?;
    let mut out = String::new();
    for service in state.migrations.keys() {
        let address: terrace::addr::Address =
            service.parse().map_err(|e: terrace::addr::AddressError| CliError::usage(e.to_string()))?;
        let record = terrace::migrate::Record::of(&state, &address)
            .map_err(CliError::usage)?
            .ok_or_else(|| CliError::usage(format!("no record of `{service}`")))?;
        let lag = runtime.block_on(terrace::apply::migration_lag(&state, &record));
        out.push_str(&terrace::render::migration_status(service, &record, lag));
    }
    print(&out);
    Ok(ExitCode::Success)
}
