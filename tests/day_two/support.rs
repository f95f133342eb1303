//! What the day-two tests share: the bundled stack copied into the lab, `terrace` run against the
//! lab's cloud, the recorded outputs and state, and clients that connect from a host as the app
//! would (psql and redis-cli run inside the host's namespaces, so the service sees the host's own
//! address).

use std::fs;
use std::path::{Path, PathBuf};
use std::process::{Command, Output};

use serde_json::Value;

use crate::lab::{Host, Lab, describe, quote};

/// The seed's phases, in order.
pub(crate) const PATH: [&str; 5] = ["block-storage", "managed-db", "read-replicas", "sharding", "multi-region"];

/// The bundled stack (phases/), copied into a folder of the lab.
pub(crate) fn stack(lab: &Lab) -> PathBuf {
    let dir = lab.dir().join("stack");
    fs::create_dir_all(&dir).expect("the stack's folder");
    let phases = Path::new(env!("CARGO_MANIFEST_DIR")).join("../phases");
    for entry in fs::read_dir(&phases).expect("phases/") {
        let path = entry.expect("an entry").path();
        if path.extension().is_some_and(|e| e == "hcl") {
            fs::copy(&path, dir.join(path.file_name().expect("a name"))).expect("copy a phase");
        }
    }
    dir
}

/// `terrace ARGS` in `dir` against the lab: its API and Object Storage, PostgreSQL at the version
/// the hosts have, and the hosts' first boots given a few minutes.
pub(crate) fn terrace_command(lab: &Lab, dir: &Path, args: &[&str]) -> Command {
    let mut command = Command::new(env!("CARGO_BIN_EXE_terrace"));
    command.args(args).current_dir(dir).env("NO_COLOR", "1");
    for (key, _) in std::env::vars() {
        if key.starts_with("TERRACE_") && key != "TERRACE_LAB" || key.starts_with("HCLOUD_") {
            command.env_remove(key);
        }
    }
    command.envs(lab.terrace_env());
    command.env("TERRACE_VAR_postgres_version", lab.pg_version().to_string());
    command.env("TERRACE_HOST_BOOT_TIMEOUT", "5m");
    command.env("TERRACE_HOST_TIMEOUT", "30s");
    command
}

pub(crate) fn terrace(lab: &Lab, dir: &Path, args: &[&str]) -> Output {
    let output = terrace_command(lab, dir, args).output().expect("the terrace binary runs");
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(!stderr.contains("panicked"), "terrace panicked:\n{stderr}");
    output
}

/// `terrace ARGS`, which must exit 0; its stdout.
pub(crate) fn terrace_ok(lab: &Lab, dir: &Path, args: &[&str]) -> String {
    let output = terrace(lab, dir, args);
    assert!(output.status.success(), "terrace {}:\n{}", args.join(" "), describe(&output));
    String::from_utf8_lossy(&output.stdout).into_owned()
}

/// The recorded outputs, secrets included: name -> value.
pub(crate) fn outputs(lab: &Lab, dir: &Path) -> serde_json::Map<String, Value> {
    let text = terrace_ok(lab, dir, &["output", "--format", "json", "--show-sensitive"]);
    let outputs: serde_json::Map<String, Value> = serde_json::from_str(&text).expect("outputs as JSON");
    outputs.into_iter().map(|(name, output)| (name, output["value"].clone())).collect()
}

/// The recorded state, as JSON.
pub(crate) fn state(dir: &Path) -> Value {
    let text = fs::read_to_string(dir.join("terrace.state.json")).expect("the state");
    serde_json::from_str(&text).expect("the state is JSON")
}

/// Where a client runs: on a host, or in its Docker container.
#[derive(Clone, Copy)]
pub(crate) enum From<'h> {
    Host(&'h Host),
    Container(&'h Host),
}

impl From<'_> {
    fn run(&self, script: &str) -> Output {
        match self {
            From::Host(host) => host.run(script),
            From::Container(host) => host.in_container(script),
        }
    }

    fn name(&self) -> String {
        match self {
            From::Host(host) => host.name().to_owned(),
            From::Container(host) => format!("a container of {}", host.name()),
        }
    }
}

/// A query through `psql` with a connection string (a URL or key=value pairs), from `from`: its
/// rows, or the error.
pub(crate) fn psql(from: From<'_>, conninfo: &str, sql: &str) -> Result<String, String> {
    let script = format!(
        "PGCONNECT_TIMEOUT=10 psql --no-psqlrc --quiet --tuples-only --no-align --set=ON_ERROR_STOP=1 {} --command={}",
        quote(conninfo),
        quote(sql)
    );
    let out = from.run(&script);
    if out.status.success() {
        Ok(String::from_utf8_lossy(&out.stdout).trim().to_owned())
    } else {
        Err(format!("from {}: {}", from.name(), describe(&out)))
    }
}

/// A query that must succeed.
pub(crate) fn psql_ok(from: From<'_>, conninfo: &str, sql: &str) -> String {
    psql(from, conninfo, sql).unwrap_or_else(|e| panic!("`{sql}` over {}: {e}", mask(conninfo)))
}

/// A Redis command through `redis-cli` with a `redis://` URL, from `from`.
pub(crate) fn redis(from: From<'_>, url: &str, command: &str) -> Result<String, String> {
    let out = from.run(&format!("redis-cli -u {} --no-auth-warning {command}", quote(url)));
    let text = String::from_utf8_lossy(&out.stdout).trim().to_owned();
    if out.status.success() && !text.starts_with("ERR") && !text.starts_with("NOAUTH") && !text.starts_with("WRONGPASS")
    {
        Ok(text)
    } else {
        Err(format!("from {}: {}", from.name(), describe(&out)))
    }
}

/// The same connection string with its password replaced, for messages.
pub(crate) fn mask(conninfo: &str) -> String {
    match (conninfo.find("://"), conninfo.rfind('@')) {
        (Some(scheme), Some(at)) if at > scheme => {
            let credentials = &conninfo[scheme + 3..at];
            let user = credentials.split(':').next().unwrap_or_default();
            format!("{}{user}:***{}", &conninfo[..scheme + 3], &conninfo[at..])
        }
        _ => conninfo.to_owned(),
    }
}

/// The password in a `postgres://user:password@...` URL.
pub(crate) fn password(url: &str) -> String {
    let rest = url.split_once("://").map_or(url, |(_, r)| r);
    let credentials = rest.rsplit_once('@').map_or("", |(c, _)| c);
    credentials.split_once(':').map_or("", |(_, p)| p).to_owned()
}

/// A text output, which must be there.
pub(crate) fn text<'o>(outputs: &'o serde_json::Map<String, Value>, name: &str) -> &'o str {
    outputs.get(name).and_then(Value::as_str).unwrap_or_else(|| panic!("output {name} in {:?}", outputs.keys()))
}

/// A list output of texts, which must be there.
pub(crate) fn texts(outputs: &serde_json::Map<String, Value>, name: &str) -> Vec<String> {
    let flat = |value: &Value| -> Vec<String> {
        match value {
            Value::Array(items) => items.iter().filter_map(|i| i.as_str().map(str::to_owned)).collect(),
            Value::String(text) => vec![text.clone()],
            _ => Vec::new(),
        }
    };
    let value = outputs.get(name).unwrap_or_else(|| panic!("output {name} in {:?}", outputs.keys()));
    match value {
        Value::Array(items) => items.iter().flat_map(flat).collect(),
        other => flat(other),
    }
}

/// A query as the superuser on a database server (over its Unix socket, as the OS user postgres).
pub(crate) fn superuser(host: &Host, sql: &str) -> String {
    host.run_ok(&format!(
        "runuser -u postgres -- psql --no-psqlrc --tuples-only --no-align --set=ON_ERROR_STOP=1 --dbname=postgres --command={}",
        quote(sql)
    ))
    .trim()
    .to_owned()
}
