//! What the real-server tests share: finding the binaries, free loopback ports, a server's root
//! folder in a tempdir where the rendered files are installed with their paths rewritten, stub
//! commands for what a container lacks (systemd, block devices), and guards that stop every
//! process a test started, also when it fails.

use std::collections::BTreeMap;
use std::fs;
use std::net::TcpListener;
use std::os::unix::fs::{PermissionsExt, chown};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Output, Stdio};
use std::time::{Duration, Instant};

use terrace::services::{File, Rendered};

/// The absolute paths the renderers write to, which a test moves under its server's root folder.
const MOVED_PREFIXES: &[&str] = &[
    "/etc/terrace/",
    "/etc/postgresql/",
    "/etc/pgbouncer/",
    "/etc/pgbackrest/",
    "/etc/ssl/",
    "/etc/redis/",
    "/etc/systemd/",
    "/etc/sysctl.d/",
    "/etc/postgresql-common/",
    "/etc/fstab",
    "/usr/local/sbin/",
    "/var/run/postgresql",
    "/var/tmp/",
    "/dev/disk/by-id/",
];

/// The major version of the PostgreSQL installed here, and its binaries' folder.
pub(crate) fn pg_bin() -> (u32, PathBuf) {
    let mut found: Vec<(u32, PathBuf)> = fs::read_dir("/usr/lib/postgresql")
        .expect("PostgreSQL is installed under /usr/lib/postgresql (see .ci/setup)")
        .filter_map(|entry| {
            let entry = entry.ok()?;
            let version = entry.file_name().to_str()?.parse().ok()?;
            let bin = entry.path().join("bin");
            bin.join("initdb").exists().then_some((version, bin))
        })
        .collect();
    found.sort();
    found.pop().expect("a PostgreSQL with initdb under /usr/lib/postgresql/*/bin")
}

/// The path of a program, which must be installed (.ci/setup installs them all).
pub(crate) fn program(name: &str) -> PathBuf {
    let path = std::env::var_os("PATH").unwrap_or_default();
    std::env::split_paths(&path)
        .chain([PathBuf::from("/usr/sbin"), PathBuf::from("/usr/bin"), PathBuf::from("/sbin")])
        .map(|dir| dir.join(name))
        .find(|candidate| candidate.is_file())
        .unwrap_or_else(|| panic!("`{name}` is not installed; `bash .ci/setup` installs it"))
}

/// A free TCP port on loopback (IPv4 and IPv6, where PostgreSQL listens), never handed out twice in
/// this process.
///
/// The kernel's ephemeral ports (`bind(0)`) are not enough: a port released by one test can be
/// handed to the next test before the first test's server binds it (two primaries then race for
/// one port), and clients' outgoing connections draw from the same range. The ports come from a
/// counter below the ephemeral range (32768 and up on Linux), started at an offset of the process
/// id, and each is checked free on both addresses.
pub(crate) fn free_port() -> u16 {
    use std::sync::atomic::{AtomicU16, Ordering};
    static NEXT: AtomicU16 = AtomicU16::new(0);
    let _ =
        NEXT.compare_exchange(0, 12_000 + (std::process::id() % 1_000) as u16 * 16, Ordering::SeqCst, Ordering::SeqCst);
    loop {
        let port = NEXT.fetch_add(1, Ordering::SeqCst);
        assert!(port < 32_768, "no free loopback port below the ephemeral range");
        let v4 = TcpListener::bind(("127.0.0.1", port));
        let v6 = TcpListener::bind(("::1", port));
        if v4.is_ok() && v6.is_ok() {
            return port;
        }
    }
}

/// The uid and gid of the `postgres` user, which the PostgreSQL package creates. PostgreSQL and
/// PgBouncer refuse to run as root, and the rendered scripts switch to it with `runuser`, so these
/// tests run as root (as CI does) and start the servers as `postgres`.
pub(crate) fn postgres_ids() -> (u32, u32) {
    let out = run_ok(Command::new("id").arg("-u").arg("postgres"));
    let uid = out.trim().parse().expect("uid");
    let out = run_ok(Command::new("id").arg("-g").arg("postgres"));
    let gid = out.trim().parse().expect("gid");
    (uid, gid)
}

pub(crate) fn assert_root() {
    let out = run_ok(Command::new("id").arg("-u"));
    assert_eq!(
        out.trim(),
        "0",
        "the service tests start PostgreSQL as the postgres user and run the rendered scripts with runuser: run them as root, as CI does"
    );
}

/// Runs a command and returns its output, whatever its status.
pub(crate) fn run(command: &mut Command) -> Output {
    command.output().unwrap_or_else(|err| panic!("cannot run {command:?}: {err}"))
}

/// Runs a command that must succeed, and returns its stdout.
pub(crate) fn run_ok(command: &mut Command) -> String {
    let out = run(command);
    assert!(
        out.status.success(),
        "{command:?} failed ({}):\n--- stdout ---\n{}\n--- stderr ---\n{}",
        out.status,
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout).into_owned()
}

/// A command run as the postgres user.
pub(crate) fn as_postgres(command_name: impl AsRef<std::ffi::OsStr>) -> Command {
    let mut command = Command::new(program("runuser"));
    command.args(["-u", "postgres", "--"]).arg(command_name);
    command
}

/// Polls `check` until it holds, for at most `limit`.
pub(crate) fn wait_for(what: &str, limit: Duration, mut check: impl FnMut() -> bool) {
    let start = Instant::now();
    while !check() {
        assert!(start.elapsed() < limit, "timed out after {limit:?} waiting for {what}");
        std::thread::sleep(Duration::from_millis(100));
    }
}

/// One server's world: a root folder under which the rendered files are installed, with every
/// absolute path they mention moved under it and the fixed ports replaced.
pub(crate) struct Server {
    pub(crate) root: PathBuf,
    /// Replacements applied in order after the paths are moved, such as `5432` -> a free port.
    pub(crate) replacements: Vec<(String, String)>,
}

impl Server {
    pub(crate) fn new(root: PathBuf) -> Server {
        fs::create_dir_all(&root).expect("root folder");
        for dir in ["var/run/postgresql", "var/tmp", "etc/ssl/certs", "etc/ssl/private", "stubs", "log"] {
            fs::create_dir_all(root.join(dir)).expect("folder");
        }
        let (uid, gid) = postgres_ids();
        // The folders PostgreSQL writes to belong to postgres, as the package makes them.
        for dir in ["", "var/run/postgresql", "var/tmp", "log"] {
            chown(root.join(dir), Some(uid), Some(gid)).expect("chown");
        }
        fs::set_permissions(root.join("var/tmp"), fs::Permissions::from_mode(0o1777)).expect("chmod");
        Server { root, replacements: Vec::new() }
    }

    /// Replaces `from` where it stands alone (not inside a longer number or word).
    pub(crate) fn replace_token(&mut self, from: &str, to: impl Into<String>) -> &mut Self {
        self.replacements.push((format!("\u{0}token:{from}"), to.into()));
        self
    }

    pub(crate) fn replace(&mut self, from: &str, to: impl Into<String>) -> &mut Self {
        self.replacements.push((from.to_owned(), to.into()));
        self
    }

    /// The path that `path` of the real server has here.
    pub(crate) fn path(&self, path: &str) -> PathBuf {
        self.root.join(path.trim_start_matches('/'))
    }

    /// `text` as this server sees it: the moved paths, then the replacements.
    pub(crate) fn rewrite(&self, text: &str) -> String {
        let root = self.root.to_str().expect("utf-8 path");
        let mut text = text.to_owned();
        for prefix in MOVED_PREFIXES {
            text = text.replace(prefix, &format!("{root}{prefix}"));
        }
        for (from, to) in &self.replacements {
            text = match from.strip_prefix("\u{0}token:") {
                Some(token) => replace_token(&text, token, to),
                None => text.replace(from.as_str(), to),
            };
        }
        text
    }

    /// Writes every rendered file under the root, rewritten, with its mode and owner.
    pub(crate) fn install(&self, rendered: &Rendered) {
        for file in &rendered.files {
            self.install_file(file);
        }
    }

    pub(crate) fn install_file(&self, file: &File) {
        let path = self.path(&file.path);
        fs::create_dir_all(path.parent().expect("parent")).expect("folder");
        fs::write(&path, self.rewrite(&file.content)).expect("write file");
        let mode = u32::from_str_radix(&file.permissions, 8).expect("octal mode");
        fs::set_permissions(&path, fs::Permissions::from_mode(mode)).expect("chmod");
        let ids = match file.owner.as_str() {
            "root:root" => (0, 0),
            "postgres:postgres" => postgres_ids(),
            // Redis runs as root in these tests: its files keep the owner they were written with.
            _ => (0, 0),
        };
        chown(&path, Some(ids.0), Some(ids.1)).expect("chown");
    }

    /// A self-signed certificate for 127.0.0.1 where the rendered files expect Debian's snakeoil
    /// one, readable by postgres only.
    pub(crate) fn snakeoil(&self) -> PathBuf {
        let cert = self.path("/etc/ssl/certs/ssl-cert-snakeoil.pem");
        let key = self.path("/etc/ssl/private/ssl-cert-snakeoil.key");
        make_certificate(&cert, &key);
        let (uid, gid) = postgres_ids();
        chown(&key, Some(uid), Some(gid)).expect("chown key");
        cert
    }

    /// Stub commands, first in the PATH of the rendered scripts: `name` -> its bash body.
    pub(crate) fn stub(&self, name: &str, body: &str) {
        let path = self.root.join("stubs").join(name);
        fs::write(&path, format!("#!/bin/bash\nset -euo pipefail\n{body}\n")).expect("write stub");
        fs::set_permissions(&path, fs::Permissions::from_mode(0o755)).expect("chmod stub");
    }

    /// Runs a rendered script (already installed) as root, with the stubs and PostgreSQL's
    /// binaries first in PATH.
    pub(crate) fn script(&self, path: &str, env: &BTreeMap<&str, String>) -> Output {
        let (_, pg) = pg_bin();
        let mut command = Command::new("bash");
        command
            .arg(self.path(path))
            .env(
                "PATH",
                format!("{}:{}:/usr/sbin:/usr/bin:/sbin:/bin", self.root.join("stubs").display(), pg.display()),
            )
            .env("HOME", &self.root)
            .envs(env)
            .stdin(Stdio::null());
        run(&mut command)
    }
}

fn replace_token(text: &str, token: &str, to: &str) -> String {
    let mut out = String::new();
    let mut rest = text;
    while let Some(at) = rest.find(token) {
        let before = rest[..at].chars().next_back();
        let after = rest[at + token.len()..].chars().next();
        let word = |c: Option<char>| c.is_some_and(|c| c.is_ascii_alphanumeric());
        out.push_str(&rest[..at]);
        out.push_str(if word(before) || word(after) { token } else { to });
        rest = &rest[at + token.len()..];
    }
    out.push_str(rest);
    out
}

pub(crate) fn make_certificate(cert: &Path, key: &Path) {
    run_ok(
        Command::new(program("openssl")).args(["req", "-x509", "-newkey", "rsa:2048", "-nodes", "-days", "2"]).args([
            "-subj",
            "/CN=127.0.0.1",
            "-addext",
            // pgBackRest matches the host against DNS names only, Python's ssl (s3cmd) against IP
            // addresses only.
            "subjectAltName=IP:127.0.0.1,DNS:127.0.0.1",
            "-keyout",
            key.to_str().expect("utf-8"),
            "-out",
            cert.to_str().expect("utf-8"),
        ]),
    );
    fs::set_permissions(key, fs::Permissions::from_mode(0o600)).expect("chmod key");
}

/// A running process, stopped (SIGTERM, then SIGKILL) when the guard is dropped.
pub(crate) struct Process {
    pub(crate) name: String,
    child: Child,
}

impl Process {
    pub(crate) fn spawn(name: &str, command: &mut Command, log: &Path) -> Process {
        let out = fs::File::create(log).expect("log file");
        let err = out.try_clone().expect("log file");
        let child = command
            .stdin(Stdio::null())
            .stdout(out)
            .stderr(err)
            .spawn()
            .unwrap_or_else(|e| panic!("cannot start {name}: {e}"));
        Process { name: name.to_owned(), child }
    }

    /// Whether it is still running.
    pub(crate) fn running(&mut self) -> bool {
        matches!(self.child.try_wait(), Ok(None))
    }
}

impl Drop for Process {
    fn drop(&mut self) {
        let _ = Command::new("kill").args(["-TERM", &self.child.id().to_string()]).status();
        let start = Instant::now();
        while start.elapsed() < Duration::from_secs(10) {
            if !self.running() {
                return;
            }
            std::thread::sleep(Duration::from_millis(50));
        }
        eprintln!("{} did not stop on SIGTERM; killing it", self.name);
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// A PostgreSQL cluster started with pg_ctl (by a test or a stub), stopped when dropped.
pub(crate) struct Cluster {
    pub(crate) data: PathBuf,
}

impl Drop for Cluster {
    fn drop(&mut self) {
        if self.data.join("postmaster.pid").exists() {
            let (_, bin) = pg_bin();
            let _ = as_postgres(bin.join("pg_ctl"))
                .arg("stop")
                .arg("-D")
                .arg(&self.data)
                .args(["-m", "immediate", "-w"])
                .stdout(Stdio::null())
                .status();
        }
    }
}
