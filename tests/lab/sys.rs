//! Running programs for the lab: commands whose failure says what ran and what it printed, bounded
//! waits that say what they waited for, and shell quoting.

use std::process::{Command, Output};
use std::time::{Duration, Instant};

/// Runs a command and returns its output, whatever its status.
pub(crate) fn run(command: &mut Command) -> Output {
    command.output().unwrap_or_else(|err| panic!("lab: cannot run {command:?}: {err}"))
}

/// Runs a command that must succeed; its stdout.
pub(crate) fn run_ok(command: &mut Command) -> String {
    let out = run(command);
    assert!(out.status.success(), "lab: {command:?} failed:\n{}", describe(&out));
    String::from_utf8_lossy(&out.stdout).into_owned()
}

/// Runs a command and says why it failed, if it did.
pub(crate) fn try_run(command: &mut Command) -> Result<String, String> {
    let out = command.output().map_err(|err| format!("cannot run {command:?}: {err}"))?;
    if out.status.success() {
        Ok(String::from_utf8_lossy(&out.stdout).into_owned())
    } else {
        Err(format!("{command:?} failed:\n{}", describe(&out)))
    }
}

/// `bash -c script` in the lab's own namespaces.
pub(crate) fn bash(script: &str) -> Command {
    let mut command = Command::new("bash");
    command.arg("-c").arg(script);
    command
}

/// An output as text: the status, then stdout and stderr.
pub(crate) fn describe(out: &Output) -> String {
    format!(
        "{}\n--- stdout ---\n{}--- stderr ---\n{}",
        out.status,
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    )
}

/// Polls `check` every 100 ms until it gives a value, for at most `limit`; panics naming `what`.
pub(crate) fn wait_for<T>(what: &str, limit: Duration, mut check: impl FnMut() -> Option<T>) -> T {
    let start = Instant::now();
    loop {
        if let Some(value) = check() {
            return value;
        }
        assert!(start.elapsed() < limit, "lab: timed out after {limit:?} waiting for {what}");
        std::thread::sleep(Duration::from_millis(100));
    }
}

/// A word for `sh`: single-quoted unless it is plain.
pub(crate) fn quote(word: &str) -> String {
    let plain = !word.is_empty() && word.bytes().all(|b| b.is_ascii_alphanumeric() || b"-_./=:,+@%".contains(&b));
    if plain { word.to_owned() } else { format!("'{}'", word.replace('\'', r"'\''")) }
}
