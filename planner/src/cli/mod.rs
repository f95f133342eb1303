//! The `terrace` command line: a thin layer that resolves arguments into settings, calls the
//! library and prints. Data goes to stdout; diagnostics and progress to stderr.

mod apply;
pub(crate) mod args;
mod commands;
mod emulator;
mod plan;
mod progress;
mod settings;
mod state;

use std::io::Write as _;

pub(crate) use commands::run;

/// The process exit codes (DESIGN.md section 3, a contract).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum ExitCode {
    Success = 0,
    Error = 1,
    /// With `--detailed-exitcode`: the plan has changes.
    Changes = 2,
    /// With `--max-cost-increase`: the plan raises the monthly cost by more than allowed.
    CostGate = 3,
}

/// An error for the user: `error:` line, optional `hint:` line.
#[derive(Debug)]
pub(crate) struct CliError {
    pub message: String,
    pub hint: Option<String>,
    pub code: ExitCode,
}

impl CliError {
    pub(crate) fn usage(message: String) -> Self {
        Self { message, hint: None, code: ExitCode::Error }
    }
}

/// Prints a failure on stderr and returns its exit code.
pub(crate) fn report(error: &CliError) -> ExitCode {
    let mut stderr = std::io::stderr().lock();
    let escape = terrace::render::terminal::escape_controls;
    let _ = writeln!(stderr, "error: {}", escape(&error.message));
    if let Some(hint) = &error.hint {
        let _ = writeln!(stderr, "hint: {}", escape(hint));
    }
    error.code
}
