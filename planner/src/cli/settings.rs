//! Resolving the command line and the environment into plain settings.

use std::collections::BTreeMap;
use std::io::IsTerminal;
use std::sync::Arc;

use terrace::compile::VarInputs;
use terrace_providers::pricing::Catalog;
use terrace_state::Backend;

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

/// A backend as configured: its kind and its settings, from `backend "KIND" { ... }` in
/// terrace.hcl, each setting also from `TERRACE_BACKEND_<NAME>` (which keeps secrets out of files;
/// a value written in the file wins).
#[derive(Clone, PartialEq, Eq)]
pub(crate) struct BackendSpec {
    pub kind: String,
    pub settings: BTreeMap<String, String>,
}

impl std::fmt::Debug for BackendSpec {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        // Settings may hold passwords (a connection string): only their names are shown.
        f.debug_struct("BackendSpec").field("kind", &self.kind).field("settings", &self.settings.keys()).finish()
    }
}

/// The settings each kind takes: (name, required).
fn backend_settings(kind: &str) -> Option<&'static [(&'static str, bool)]> {
    match kind {
        "local" => Some(&[("path", false)]),
        "s3" => Some(&[
            ("bucket", true),
            ("key", true),
            ("endpoint", true),
            ("region", true),
            ("access_key", false),
            ("secret_key", false),
        ]),
        "pg" => Some(&[("conn_str", true), ("stack", false)]),
        _ => None,
    }
}

impl BackendSpec {
    /// The stack's backend spec, local by default.
    pub(crate) fn of_stack(stack: &terrace::lang::Stack) -> Result<BackendSpec, CliError> {
        let Some(def) = &stack.backend else {
            return BackendSpec::new("local", BTreeMap::new());
        };
        let mut written = BTreeMap::new();
        for attr in def.body.attributes() {
            match terrace::lang::load::static_string(&attr.value) {
                Some(value) => {
                    written.insert(attr.key.as_str().to_owned(), value);
                }
                None => {
                    return Err(CliError::usage(format!(
                        "backend \"{}\": `{}` must be a plain string (use TERRACE_BACKEND_{} for a secret)",
                        def.kind,
                        attr.key.as_str(),
                        attr.key.as_str().to_uppercase()
                    )));
                }
            }
        }
        BackendSpec::new(&def.kind, written)
    }

    /// A spec of `kind` from these settings and the environment, checked against what the kind takes.
    pub(crate) fn new(kind: &str, written: BTreeMap<String, String>) -> Result<BackendSpec, CliError> {
        let Some(known) = backend_settings(kind) else {
            return Err(CliError {
                message: format!("there is no state backend `{kind}`"),
                hint: Some("backends: local, s3, pg".into()),
                code: ExitCode::Error,
            });
        };
        let mut settings = BTreeMap::new();
        for (key, value) in &written {
            if !known.iter().any(|(name, _)| name == key) {
                let names: Vec<&str> = known.iter().map(|(name, _)| *name).collect();
                return Err(CliError::usage(format!(
                    "backend \"{kind}\" has no setting `{key}`; it takes {}",
                    names.join(", ")
                )));
            }
            settings.insert(key.clone(), value.clone());
        }
        for (name, required) in known {
            if settings.contains_key(*name) {
                continue;
            }
            let variable = format!("TERRACE_BACKEND_{}", name.to_uppercase());
            match std::env::var(&variable).ok().filter(|v| !v.is_empty()) {
                Some(value) => {
                    settings.insert((*name).to_owned(), value);
                }
                None if *required => {
                    return Err(CliError {
                        message: format!("backend \"{kind}\" needs `{name}`"),
                        hint: Some(format!("write it in the backend block, or set {variable}")),
                        code: ExitCode::Error,
                    });
                }
                None => {}
            }
        }
        Ok(BackendSpec { kind: kind.to_owned(), settings })
    }

    /// Opens the backend. Paths of a local backend are relative to the stack folder.
    pub(crate) fn open(&self, dir: &std::path::Path, stack: &str) -> Result<Arc<dyn Backend>, CliError> {
        let get = |name: &str| self.settings.get(name).cloned().unwrap_or_default();
        match self.kind.as_str() {
            "local" => {
                let path = dir.join(self.settings.get("path").map_or("terrace.state.json", String::as_str));
                if let Some(parent) = path.parent().filter(|p| !p.as_os_str().is_empty()) {
                    std::fs::create_dir_all(parent)
                        .map_err(|e| CliError::usage(format!("cannot create {}: {e}", parent.display())))?;
                }
                Ok(Arc::new(terrace_state::LocalBackend::new(path)))
            }
            "s3" => open_s3(&get, stack),
            "pg" => open_pg(&get, stack),
            other => Err(CliError::usage(format!("there is no state backend `{other}`"))),
        }
    }
}

/// The stack's state backend: `backend "KIND" { ... }` in terrace.hcl, by default the local file
/// `terrace.state.json` beside it.
pub(crate) fn backend(dir: &std::path::Path, stack: &terrace::lang::Stack) -> Result<Arc<dyn Backend>, CliError> {
    BackendSpec::of_stack(stack)?.open(dir, &stack.name)
}

/// A state error for the user.
pub(crate) fn state_error(error: terrace_state::StateError) -> CliError {
    CliError { message: error.to_string(), hint: error.hint(), code: ExitCode::Error }
}

fn open_s3(get: &dyn Fn(&str) -> String, _stack: &str) -> Result<Arc<dyn Backend>, CliError> {
    use terrace_state::s3::{S3Backend, S3Config, Secret};
    let (endpoint, region, bucket, key) = (get("endpoint"), get("region"), get("bucket"), get("key"));
    let (access, secret) = (get("access_key"), get("secret_key"));
    let config = if !access.is_empty() && !secret.is_empty() {
        S3Config { endpoint, region, bucket, key, access_key: Secret::new(access), secret_key: Secret::new(secret) }
    } else {
        // TERRACE_BACKEND_ACCESS_KEY/SECRET_KEY, else AWS_ACCESS_KEY_ID/AWS_SECRET_ACCESS_KEY.
        S3Config::from_env(endpoint, region, bucket, key).map_err(state_error)?
    };
    Ok(Arc::new(S3Backend::new(config).map_err(state_error)?))
}

fn open_pg(get: &dyn Fn(&str) -> String, stack: &str) -> Result<Arc<dyn Backend>, CliError> {
    // The state's row is keyed by the stack's name unless the backend block names another.
    let key = Some(get("stack")).filter(|s| !s.is_empty()).unwrap_or_else(|| stack.to_owned());
    Ok(Arc::new(terrace_state::pg::PgBackend::new(&get("conn_str"), &key).map_err(state_error)?))
}

/// How long to wait for servers over SSH: `TERRACE_HOST_BOOT_TIMEOUT` for a new server's first
/// boot, `TERRACE_HOST_TIMEOUT` for a running one to answer (durations such as `90s`, `20m`).
pub(crate) fn host_timeouts() -> Result<terrace::apply::HostTimeouts, CliError> {
    let mut timeouts = terrace::apply::HostTimeouts::default();
    for (name, slot) in
        [("TERRACE_HOST_BOOT_TIMEOUT", &mut timeouts.boot), ("TERRACE_HOST_TIMEOUT", &mut timeouts.connect)]
    {
        if let Ok(text) = std::env::var(name) {
            *slot = humantime::parse_duration(&text)
                .map_err(|e| CliError::usage(format!("{name}={text:?} is not a duration: {e}")))?;
        }
    }
    Ok(timeouts)
}
