//! Running the real binary and writing fixtures. A fixture is one string holding several files,
//! each introduced by a `//- path` line (rust-analyzer's test-utils style).

use std::path::{Path, PathBuf};
use std::process::Command;

/// The stack bundled in `phases/`.
pub(crate) fn phases_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../phases")
}

/// What one run printed.
pub(crate) struct Run {
    pub(crate) code: i32,
    pub(crate) stdout: String,
    pub(crate) stderr: String,
}

impl Run {
    /// The run as one text for a snapshot.
    pub(crate) fn transcript(&self) -> String {
        format!("exit code: {}\n----- stdout -----\n{}----- stderr -----\n{}", self.code, self.stdout, self.stderr)
    }
}

/// Runs `terrace ARGS` in `dir`, with a clean, colourless environment.
pub(crate) fn terrace(dir: &Path, args: &[&str]) -> Run {
    terrace_with_env(dir, args, &[])
}

/// Runs `terrace ARGS` with these environment variables set (and no others of terrace's).
pub(crate) fn terrace_with_env(dir: &Path, args: &[&str], env: &[(&str, &str)]) -> Run {
    let mut command = Command::new(env!("CARGO_BIN_EXE_terrace"));
    command.args(args).current_dir(dir).env("NO_COLOR", "1");
    for (key, _) in std::env::vars() {
        if key.starts_with("TERRACE_") || key.starts_with("HCLOUD_") {
            command.env_remove(key);
        }
    }
    command.envs(env.iter().copied());
    let output = command.output().expect("the terrace binary runs");
    let run = Run {
        code: output.status.code().unwrap_or(-1),
        stdout: String::from_utf8_lossy(&output.stdout).into_owned(),
        stderr: String::from_utf8_lossy(&output.stderr).into_owned(),
    };
    assert!(!run.stderr.contains("panicked"), "terrace panicked:\n{}", run.stderr);
    run
}

/// Writes a `//- path` fixture into a new temporary folder.
pub(crate) fn fixture(text: &str) -> tempfile::TempDir {
    let dir = tempfile::tempdir().expect("a temporary folder");
    let mut current: Option<(String, String)> = None;
    let mut files = Vec::new();
    for line in text.lines() {
        if let Some(path) = line.strip_prefix("//- ") {
            files.extend(current.take());
            current = Some((path.trim().to_owned(), String::new()));
        } else if let Some((_, body)) = current.as_mut() {
            body.push_str(line);
            body.push('\n');
        }
    }
    files.extend(current);
    assert!(!files.is_empty(), "a fixture holds at least one `//- path` file");
    for (path, body) in files {
        let path = dir.path().join(path);
        if let Some(parent) = path.parent() {
            std::fs::create_dir_all(parent).expect("create fixture folder");
        }
        std::fs::write(path, body).expect("write fixture file");
    }
    dir
}

/// A copy of the bundled stack in a temporary folder: plans take the state lock and may write
/// state beside the definitions, and tests run in parallel.
pub(crate) fn stack_copy() -> tempfile::TempDir {
    let dir = tempfile::tempdir().expect("temp dir");
    for entry in std::fs::read_dir(phases_dir()).expect("phases/") {
        let path = entry.expect("entry").path();
        if path.extension().is_some_and(|e| e == "hcl") {
            std::fs::copy(&path, dir.path().join(path.file_name().expect("a name"))).expect("copy");
        }
    }
    dir
}
