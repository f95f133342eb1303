//! Resolving the command line and the environment into plain settings.

use std::collections::BTreeMap;
use std::io::IsTerminal;

use terrace::compile::VarInputs;
use terrace_providers::pricing::Catalog;

use super::args::StackArgs;
use super::{CliError, ExitCode};

/// Colour only on a terminal, and never with `NO_COLOR` set (https://no-color.org).
pub(crate) fn color(stream_is_terminal: bool) -> bool {
    stream_is_terminal && std::env::var_os("NO_COLOR").is_none_or(|v| v.is_empty())
}

pub(crate) fn stdout_color() -> bool {
    color(std::io::stdout().is_terminal())
}

pub(crate) fn stderr_color() -> bool {
    color(std::io::stderr().is_terminal())
}

/// `--var k=v` and `TERRACE_VAR_k`.
pub(crate) fn var_inputs(args: &StackArgs) -> Result<VarInputs, CliError> {
    let mut cli = BTreeMap::new();
    for pair in &args.vars {
        let Some((name, value)) = pair.split_once('=') else {
            return Err(CliError::usage(format!("--var {pair}: expected NAME=VALUE")));
        };
        cli.insert(name.trim().to_owned(), value.to_owned());
    }
    let env = std::env::vars()
        .filter_map(|(key, value)| key.strip_prefix("TERRACE_VAR_").map(|name| (name.to_owned(), value)))
        .collect();
    Ok(VarInputs { cli, env })
}

pub(crate) fn catalog(args: &StackArgs) -> Result<Catalog, CliError> {
    match &args.pricing {
        None => Ok(Catalog::embedded()),
        Some(spec) => Catalog::load(spec).map_err(|error| CliError {
            message: format!("--pricing {spec}: {error}"),
            hint: Some(format!(
                "give a date (the embedded lists start {}) or the path of a pricing JSON file",
                Catalog::lists().iter().map(|l| l.id.clone()).collect::<Vec<_>>().join(", ")
            )),
            code: ExitCode::Error,
        }),
    }
}

/// The stack's state backend: `backend "local" { path = "..." }` in terrace.hcl, by default
/// `terrace.state.json` beside it. Paths are relative to the stack folder.
pub(crate) fn backend(
    dir: &std::path::Path,
    stack: &terrace::lang::Stack,
) -> Result<terrace_state::LocalBackend, CliError> {
    let Some(def) = &stack.backend else {
        return Ok(terrace_state::LocalBackend::new(dir.join("terrace.state.json")));
    };
    if def.kind != "local" {
        return Err(CliError {
            message: format!("backend `{}` is not available in this version of terrace", def.kind),
            hint: Some("use `backend \"local\" { path = \"terrace.state.json\" }`".into()),
            code: ExitCode::Error,
        });
    }
    let mut path = std::path::PathBuf::from("terrace.state.json");
    for attr in def.body.attributes() {
        match (attr.key.as_str(), terrace::lang::load::static_string(&attr.value)) {
            ("path", Some(value)) => path = value.into(),
            (key, _) => {
                return Err(CliError {
                    message: format!("backend \"local\": `{key}` must be `path = \"FILE\"`"),
                    hint: None,
                    code: ExitCode::Error,
                });
            }
        }
    }
    Ok(terrace_state::LocalBackend::new(dir.join(path)))
}

/// A state error for the user.
pub(crate) fn state_error(error: terrace_state::StateError) -> CliError {
    CliError { message: error.to_string(), hint: error.hint(), code: ExitCode::Error }
}
