//! What cloud-init does with a server's `user_data` at first boot, done by the lab in the host:
//! a `#cloud-config` document (read with yaml-rust2) or a script. The modules, in cloud-init's order:
//! `write_files` and `ssh` (init stage), then sshd starts (as ssh.service does after cloud-init's init
//! stage), then `packages` (checked, not installed), the deferred `write_files` and `runcmd` (final
//! stage). A failing module does not stop the later ones; the boot's outcome is what
//! `cloud-init status` answers. Output goes to /var/log/cloud-init-output.log.

use std::fs;
use std::io::Write as _;
use std::path::PathBuf;
use std::process::Command;

use yaml_rust2::{Yaml, YamlLoader};

use super::host::HostProcess;
use super::sys::{describe, quote, run};

/// A file of `write_files`.
#[derive(Debug, Clone)]
pub(crate) struct WriteFile {
    pub(crate) path: String,
    pub(crate) content: Vec<u8>,
    pub(crate) owner: String,
    /// The mode (cloud-init's default is 0644).
    pub(crate) permissions: u32,
    pub(crate) append: bool,
    pub(crate) defer: bool,
}

/// The parts of a `#cloud-config` the lab acts on; everything else (apt sources, package_update, ...)
/// is read and ignored, as the machine has its packages installed already.
#[derive(Debug, Clone, Default)]
pub(crate) struct CloudConfig {
    /// `ssh_keys`: `<type>_private`, `<type>_public`, `<type>_certificate`.
    pub(crate) ssh_keys: Vec<(String, String)>,
    pub(crate) ssh_deletekeys: bool,
    pub(crate) ssh_genkeytypes: Vec<String>,
    /// Top-level `ssh_authorized_keys`, which go to root on Hetzner's images.
    pub(crate) ssh_authorized_keys: Vec<String>,
    pub(crate) write_files: Vec<WriteFile>,
    pub(crate) packages: Vec<String>,
    /// The runcmd script, as cloud-init writes it; `None` without `runcmd`.
    pub(crate) runcmd: Option<String>,
    /// The top-level keys the lab does not act on, said in the output log.
    pub(crate) ignored: Vec<String>,
}

/// The top-level keys the lab acts on.
const HANDLED: &[&str] =
    &["ssh_keys", "ssh_deletekeys", "ssh_genkeytypes", "ssh_authorized_keys", "write_files", "packages", "runcmd"];

/// What a user_data is.
#[derive(Debug, Clone)]
pub(crate) enum UserData {
    CloudConfig(CloudConfig),
    /// A user script (`#!...`), run as it is in the final stage.
    Script(String),
}

/// A YAML 1.1 boolean (PyYAML's, which cloud-init reads with) from yaml-rust2's YAML 1.2 values.
fn boolean(value: &Yaml, default: bool) -> Result<bool, String> {
    match value {
        Yaml::BadValue | Yaml::Null => Ok(default),
        Yaml::Boolean(b) => Ok(*b),
        Yaml::String(s) => match s.to_ascii_lowercase().as_str() {
            "yes" | "true" | "on" | "y" => Ok(true),
            "no" | "false" | "off" | "n" => Ok(false),
            _ => Err(format!("`{s}` is not a boolean")),
        },
        other => Err(format!("{other:?} is not a boolean")),
    }
}

/// A scalar as cloud-init's `str()` would give it.
fn scalar(value: &Yaml) -> Option<String> {
    match value {
        Yaml::String(s) | Yaml::Real(s) => Some(s.clone()),
        Yaml::Integer(i) => Some(i.to_string()),
        Yaml::Boolean(b) => Some(if *b { "True" } else { "False" }.to_owned()),
        _ => None,
    }
}

fn strings(value: &Yaml, what: &str) -> Result<Vec<String>, String> {
    match value {
        Yaml::BadValue | Yaml::Null => Ok(Vec::new()),
        Yaml::Array(items) => items.iter().map(|i| scalar(i).ok_or_else(|| format!("{what}: {i:?}"))).collect(),
        Yaml::String(s) => Ok(vec![s.clone()]),
        other => Err(format!("{what} must be a list, not {other:?}")),
    }
}

/// A file mode as cloud-init decodes it: a string is octal; an integer was octal in YAML 1.1
/// (`0644`), which yaml-rust2 reads as the decimal 644, so its digits are read as octal again.
fn mode(value: &Yaml) -> Result<u32, String> {
    match value {
        Yaml::BadValue | Yaml::Null => Ok(0o644),
        Yaml::String(s) => {
            u32::from_str_radix(s.trim_start_matches("0o"), 8).map_err(|_| format!("bad permissions `{s}`"))
        }
        Yaml::Integer(i) => u32::from_str_radix(&i.to_string(), 8).map_err(|_| format!("bad permissions `{i}`")),
        other => Err(format!("bad permissions {other:?}")),
    }
}

/// Decodes `b64`/`base64` content; gzip is not supported by the lab.
fn content(file: &Yaml) -> Result<Vec<u8>, String> {
    let text = scalar(&file["content"]).unwrap_or_default();
    match file["encoding"].as_str().unwrap_or("text/plain") {
        "text/plain" => Ok(text.into_bytes()),
        "b64" | "base64" => {
            let mut out = Command::new("base64")
                .arg("-d")
                .stdin(std::process::Stdio::piped())
                .stdout(std::process::Stdio::piped())
                .spawn()
                .map_err(|e| format!("base64: {e}"))?;
            out.stdin.take().expect("stdin").write_all(text.as_bytes()).map_err(|e| format!("base64: {e}"))?;
            let done = out.wait_with_output().map_err(|e| format!("base64: {e}"))?;
            if done.status.success() { Ok(done.stdout) } else { Err("content is not base64".into()) }
        }
        other => Err(format!("encoding `{other}` is not supported by the lab")),
    }
}

/// cloud-init's `shellify`: a string is a line as it is, a list is its items single-quoted.
fn shellify(commands: &Yaml) -> Result<String, String> {
    let Yaml::Array(items) = commands else { return Err("runcmd must be a list".into()) };
    let mut script = String::from("#!/bin/sh\n");
    for item in items {
        match item {
            Yaml::Array(words) => {
                let quoted: Result<Vec<String>, String> = words
                    .iter()
                    .map(|w| {
                        scalar(w)
                            .map(|w| format!("'{}'", w.replace('\'', "'\\''")))
                            .ok_or_else(|| format!("runcmd: {w:?}"))
                    })
                    .collect();
                script.push_str(&quoted?.join(" "));
            }
            other => script.push_str(&scalar(other).ok_or_else(|| format!("runcmd: {other:?}"))?),
        }
        script.push('\n');
    }
    Ok(script)
}

/// Reads a user_data as cloud-init would.
pub(crate) fn parse(user_data: &str) -> Result<UserData, String> {
    if user_data.starts_with("#!") {
        return Ok(UserData::Script(user_data.to_owned()));
    }
    if !user_data.starts_with("#cloud-config") {
        let first = user_data.lines().next().unwrap_or("");
        return Err(format!("user_data of a kind the lab does not read (first line `{first}`)"));
    }
    let docs = YamlLoader::load_from_str(user_data).map_err(|e| format!("the cloud-config is not YAML: {e}"))?;
    let doc = docs.first().cloned().unwrap_or(Yaml::Null);
    if !matches!(doc, Yaml::Hash(_) | Yaml::Null) {
        return Err("the cloud-config is not a mapping".into());
    }
    let mut config = CloudConfig {
        ssh_deletekeys: boolean(&doc["ssh_deletekeys"], true)?,
        ssh_genkeytypes: match &doc["ssh_genkeytypes"] {
            Yaml::BadValue | Yaml::Null => vec!["rsa".into(), "ecdsa".into(), "ed25519".into()],
            other => strings(other, "ssh_genkeytypes")?,
        },
        ssh_authorized_keys: strings(&doc["ssh_authorized_keys"], "ssh_authorized_keys")?,
        ..CloudConfig::default()
    };
    if let Yaml::Hash(keys) = &doc["ssh_keys"] {
        for (name, value) in keys {
            let (Some(name), Some(value)) = (scalar(name), scalar(value)) else {
                return Err("ssh_keys holds something other than text".into());
            };
            config.ssh_keys.push((name, value));
        }
    }
    if let Yaml::Array(files) = &doc["write_files"] {
        for file in files {
            let path = file["path"].as_str().ok_or("write_files: a file without a path")?.to_owned();
            config.write_files.push(WriteFile {
                content: content(file).map_err(|e| format!("write_files {path}: {e}"))?,
                owner: file["owner"].as_str().unwrap_or("root:root").to_owned(),
                permissions: mode(&file["permissions"]).map_err(|e| format!("write_files {path}: {e}"))?,
                append: boolean(&file["append"], false)?,
                defer: boolean(&file["defer"], false)?,
                path,
            });
        }
    }
    if let Yaml::Array(packages) = &doc["packages"] {
        for package in packages {
            // A package is a name, `name=version`, or [name, version].
            let name = match package {
                Yaml::Array(pair) => pair.first().and_then(scalar),
                other => scalar(other),
            }
            .ok_or_else(|| format!("packages: {package:?}"))?;
            config.packages.push(name.split('=').next().unwrap_or(&name).to_owned());
        }
    }
    if let Yaml::Hash(keys) = &doc {
        config.ignored =
            keys.keys().filter_map(Yaml::as_str).filter(|k| !HANDLED.contains(k)).map(str::to_owned).collect();
    }
    if !doc["runcmd"].is_badvalue() && !doc["runcmd"].is_null() {
        config.runcmd = Some(shellify(&doc["runcmd"])?);
    }
    Ok(UserData::CloudConfig(config))
}

/// Whether a package is provided on this machine, or why not. PostgreSQL is the installed version
/// only; `postgresql-<that>-pgvector` is provided by the lab's stand-in extension.
pub(crate) fn check_package(name: &str, pg_version: u32) -> Result<(), String> {
    if name == format!("postgresql-{pg_version}-pgvector") {
        return Ok(());
    }
    if let Some(version) = name.strip_prefix("postgresql-").and_then(|v| v.parse::<u32>().ok())
        && version != pg_version
    {
        return Err(format!(
            "package {name} is not installed on this machine: the lab has PostgreSQL {pg_version} only (render with version = {pg_version})"
        ));
    }
    let out = run(Command::new("dpkg-query").args(["--show", "--showformat=${Status}"]).arg(name));
    if out.status.success() && String::from_utf8_lossy(&out.stdout).ends_with(" installed") {
        Ok(())
    } else {
        Err(format!("package {name} is not installed on this machine: the lab installs nothing (add it to .ci/setup)"))
    }
}

/// Appends to the host's /var/log/cloud-init-output.log, which is in the lab folder.
struct OutputLog(PathBuf);

impl OutputLog {
    fn line(&self, text: &str) {
        if let Ok(mut file) = fs::OpenOptions::new().create(true).append(true).open(&self.0) {
            let _ = writeln!(file, "{text}");
        }
    }
}

/// What a boot did: the errors of the modules that failed, in order.
pub(crate) struct Boot {
    pub(crate) errors: Vec<String>,
}

/// Writes files into the host: the contents are staged in the host's folder, then one script in the
/// host writes them where they go, with their modes and owners, as cloud-init's write_files does.
fn write_files(host: &HostProcess, files: &[&WriteFile], stage: &str) -> Result<(), String> {
    if files.is_empty() {
        return Ok(());
    }
    let staged = host.dir.join("staged").join(stage);
    fs::create_dir_all(&staged).map_err(|e| format!("{}: {e}", staged.display()))?;
    let mut script = String::from("set -e\n");
    for (i, file) in files.iter().enumerate() {
        let source = staged.join(i.to_string());
        fs::write(&source, &file.content).map_err(|e| format!("{}: {e}", source.display()))?;
        let (path, source) = (quote(&file.path), quote(&source.display().to_string()));
        script.push_str(&format!(
            "mkdir -p \"$(dirname {path})\"\ncat {source} {redirect} {path}\nchmod {mode:o} {path}\nchown {owner} {path}\n",
            redirect = if file.append { ">>" } else { ">" },
            mode = file.permissions,
            owner = quote(&file.owner),
        ));
    }
    host.script(&format!("write_files ({stage})"), &script).map(drop)
}

/// cc_ssh: deletes the image's host keys, writes the given ones, generates the missing types asked
/// for, and authorizes root's keys.
fn ssh(host: &HostProcess, config: &CloudConfig) -> Result<(), String> {
    let mut files = Vec::new();
    for (name, value) in &config.ssh_keys {
        let (kind, part) = name.rsplit_once('_').ok_or_else(|| format!("ssh_keys: unknown key {name}"))?;
        let (suffix, mode) = match part {
            "private" => ("", 0o600),
            "public" => (".pub", 0o644),
            "certificate" => ("-cert.pub", 0o644),
            _ => return Err(format!("ssh_keys: unknown key {name}")),
        };
        files.push(WriteFile {
            path: format!("/etc/ssh/ssh_host_{kind}_key{suffix}"),
            content: value.clone().into_bytes(),
            owner: "root:root".into(),
            permissions: mode,
            append: false,
            defer: false,
        });
    }
    if config.ssh_deletekeys {
        host.script("ssh_deletekeys", "rm -f /etc/ssh/ssh_host_*key*")?;
    }
    write_files(host, &files.iter().collect::<Vec<_>>(), "ssh_keys")?;
    let mut generate = String::from("set -e\n");
    for kind in &config.ssh_genkeytypes {
        let key = format!("/etc/ssh/ssh_host_{kind}_key");
        generate.push_str(&format!("[ -e {key} ] || ssh-keygen -q -t {kind} -N '' -f {key}\n", kind = quote(kind)));
    }
    host.script("ssh_genkeytypes", &generate)?;
    if !config.ssh_authorized_keys.is_empty() {
        let keys = WriteFile {
            path: "/root/.ssh/authorized_keys".into(),
            content: format!("{}\n", config.ssh_authorized_keys.join("\n")).into_bytes(),
            owner: "root:root".into(),
            permissions: 0o600,
            append: true,
            defer: false,
        };
        host.script("ssh_authorized_keys", "install -d -m 0700 /root/.ssh")?;
        write_files(host, &[&keys], "ssh_authorized_keys")?;
    }
    Ok(())
}

/// Runs a script in the host as cloud-init's scripts_user does: written under /var/lib/cloud, run from
/// `/` with its output appended to cloud-init-output.log; its exit status decides.
fn run_script(host: &HostProcess, name: &str, script: &str) -> Result<(), String> {
    let staged = host.dir.join("staged").join(name);
    fs::create_dir_all(host.dir.join("staged")).map_err(|e| e.to_string())?;
    fs::write(&staged, script).map_err(|e| format!("{}: {e}", staged.display()))?;
    let path = format!("/var/lib/cloud/instance/scripts/{name}");
    let out = run(&mut host.command(&format!(
        "set -e\ninstall -D -m 0700 {staged} {path}\ncd /\nunset HOME USER LOGNAME SHELL\n\
         {path} >> /var/log/cloud-init-output.log 2>&1 || {{ echo \"exit status $?\"; exit 1; }}",
        staged = quote(&staged.display().to_string()),
    )));
    if out.status.success() {
        Ok(())
    } else {
        Err(format!("{name} failed ({})", String::from_utf8_lossy(&out.stdout).trim()))
    }
}

/// Records a failed module in the output log and the boot's errors.
fn fail(log: &OutputLog, errors: &mut Vec<String>, module: &str, error: String) {
    let error = format!("{module}: {error}");
    log.line(&format!("lab cloud-init: FAILED {error}"));
    errors.push(error);
}

/// The first boot of a host from its user_data.
pub(crate) fn boot(host: &HostProcess, user_data: Option<&str>, pg_version: u32) -> Boot {
    let log = OutputLog(host.dir.join("var-log").join("cloud-init-output.log"));
    let mut errors = Vec::new();
    log.line("Cloud-init (lab) running 'init': the user_data from the emulator's /_emulator/servers/{id}/user_data");
    let Some(user_data) = user_data else {
        log.line("lab cloud-init: no user_data");
        return Boot { errors };
    };
    let config = match parse(user_data) {
        Ok(UserData::CloudConfig(config)) => config,
        Ok(UserData::Script(script)) => {
            log.line("Cloud-init (lab) running 'modules:final': the user_data script");
            if let Err(e) = run_script(host, "part-001", &script) {
                fail(&log, &mut errors, "scripts_user", e);
            }
            return Boot { errors };
        }
        Err(e) => {
            fail(&log, &mut errors, "user_data", e);
            return Boot { errors };
        }
    };
    if !config.ignored.is_empty() {
        log.line(&format!(
            "lab cloud-init: not acted on (the machine's packages are installed already; other modules are not in the lab): {}",
            config.ignored.join(", ")
        ));
    }
    let now: Vec<&WriteFile> = config.write_files.iter().filter(|f| !f.defer).collect();
    if let Err(e) = write_files(host, &now, "init") {
        fail(&log, &mut errors, "write_files", e);
    }
    if let Err(e) = ssh(host, &config) {
        fail(&log, &mut errors, "ssh", e);
    }
    // sshd starts once cloud-init's init stage has written the keys, as on a real server; the lab runs
    // it only when the user_data gave host keys.
    let sshd = config.ssh_keys.iter().any(|(name, _)| name.ends_with("_private"));
    if sshd {
        let out = run(&mut host.command("systemctl enable ssh.service && systemctl start ssh.service"));
        if !out.status.success() {
            fail(&log, &mut errors, "sshd", describe(&out));
        }
    }
    log.line("Cloud-init (lab) running 'modules:final'");
    for package in &config.packages {
        match check_package(package, pg_version) {
            Ok(()) => log.line(&format!("lab cloud-init: package {package} is installed")),
            Err(e) => fail(&log, &mut errors, "package_update_upgrade_install", e),
        }
    }
    let deferred: Vec<&WriteFile> = config.write_files.iter().filter(|f| f.defer).collect();
    if let Err(e) = write_files(host, &deferred, "deferred") {
        fail(&log, &mut errors, "write_files_deferred", e);
    }
    if let Some(script) = &config.runcmd
        && let Err(e) = run_script(host, "runcmd", script)
    {
        fail(&log, &mut errors, "scripts_user", e);
    }
    log.line(&format!(
        "Cloud-init (lab) finished: {}",
        if errors.is_empty() { "done".to_owned() } else { format!("error: {}", errors.join("; ")) }
    ));
    Boot { errors }
}
