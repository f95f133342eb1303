//! The lab: real test hosts for day-two tests (docs/lab.md). Every server that `terrace emulator`
//! creates becomes a little host of real processes, in namespaces of its own: its public and private
//! addresses, its own /etc, /var, /run, ..., a real OpenSSH server, and the real PostgreSQL,
//! PgBouncer and Redis its cloud-init starts. Nothing leaves the machine: the whole lab lives in a
//! network, mount and pid namespace a test makes for itself, and ends with it.
//!
//! ```ignore
//! #[test]
//! fn something_on_real_hosts() {
//!     lab::isolated(|lab| {
//!         lab.api().post("/servers", &json!({ "name": "db", "user_data": ..., ... }));
//!         let db = lab.wait_booted("db", Duration::from_secs(120));
//!         db.run_ok("systemctl is-active postgresql@15-main.service");
//!     });
//! }
//! ```
//!
//! The API: [`isolated`] (and [`isolated_with`] and its [`Options`]) run a test in a lab; in it,
//! [`Lab::endpoint`] and [`Lab::token`] are `HCLOUD_ENDPOINT` and `HCLOUD_TOKEN`, [`Lab::s3_endpoint`]
//! `TERRACE_S3_ENDPOINT`, [`Lab::api`] a JSON client of the emulator, [`Lab::wait_booted`] waits for a
//! server's first boot and gives its [`Host`] ([`Lab::host`] without waiting), [`Lab::from_internet`]
//! runs a command in the lab namespace (the internet and the CI runner), [`Lab::logs`] a server's logs
//! (printed for every server when a test fails). A [`Host`] runs commands as root
//! ([`Host::run`], [`Host::run_ok`], [`Host::spawn`]), in its docker container
//! ([`Host::in_container`]), and knows its addresses.

#![allow(dead_code, reason = "the day-two tests use the lab's API as they come; not every test uses all of it")]

mod api;
mod cloud_init;
mod host;
mod net;
mod reexec;
mod storage;
mod sys;
mod watcher;

use std::fs;
use std::net::Ipv4Addr;
use std::os::unix::fs::PermissionsExt as _;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Output, Stdio};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

pub(crate) use api::{Api, TOKEN};
pub(crate) use net::{CONTAINER, DOCKER_BRIDGE, L_ADDRESS};
pub(crate) use sys::{describe, quote, wait_for};

use host::HostProcess;
use watcher::{BootState, Context, Shared, World, lock};

/// How a lab runs.
#[derive(Debug, Clone)]
pub(crate) struct Options {
    /// The emulator's `--action-delay`: how long its actions (a server's create, a power action) run.
    pub(crate) action_delay: Duration,
    /// The whole test, lab included, is stopped after this long.
    pub(crate) timeout: Duration,
}

impl Default for Options {
    fn default() -> Options {
        Options { action_delay: Duration::from_millis(200), timeout: Duration::from_secs(600) }
    }
}

/// Runs `test` in a lab of its own (see the module's documentation), with the default [`Options`].
pub(crate) fn isolated(test: impl FnOnce(&Lab)) {
    isolated_with(Options::default(), test);
}

/// Runs `test` in a lab of its own. Outside a lab, the test binary runs again for just this test in
/// new namespaces (`unshare`), and this returns once that run passed; inside, it makes the lab and
/// runs `test`, printing every server's logs when it fails.
pub(crate) fn isolated_with(options: Options, test: impl FnOnce(&Lab)) {
    if std::env::var_os(reexec::LAB_ENV).is_none() {
        reexec::outer(options.timeout);
        return;
    }
    // The lab changes its network namespace (bridges, addresses): only ever in one made for it.
    assert_eq!(
        std::process::id(),
        1,
        "lab: TERRACE_LAB is set, but this is not the first process of a lab's namespaces"
    );
    let dir = std::env::var_os(reexec::LAB_DIR_ENV).expect("lab: TERRACE_LAB_DIR names the lab folder");
    let lab = Lab::start(Path::new(&dir), &options);
    let result = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| test(&lab)));
    if result.is_err() {
        eprintln!("{}", lab.all_logs());
        if std::env::var_os(reexec::PAUSE_ENV).is_some() {
            lab.pause();
        }
    }
    drop(lab);
    if let Err(panic) = result {
        std::panic::resume_unwind(panic);
    }
}

/// The stand-ins and the setup script the hosts get, written into the lab folder.
const FILES: &[(&str, &str)] = &[
    ("systemctl", include_str!("files/systemctl")),
    ("cloud-init", include_str!("files/cloud-init")),
    ("sysctl", include_str!("files/sysctl")),
    ("host-setup", include_str!("files/host-setup")),
];

/// The major version of the PostgreSQL installed on this machine, the one the hosts run.
pub(crate) fn pg_version() -> u32 {
    fs::read_dir("/usr/lib/postgresql")
        .expect("lab: PostgreSQL is installed under /usr/lib/postgresql (see .ci/setup)")
        .filter_map(|entry| {
            let entry = entry.ok()?;
            let version = entry.file_name().to_str()?.parse().ok()?;
            entry.path().join("bin/initdb").exists().then_some(version)
        })
        .max()
        .expect("lab: a PostgreSQL with initdb under /usr/lib/postgresql/*/bin")
}

/// A running lab: the emulator, Object Storage, the watcher that plays the servers, and its hosts.
pub(crate) struct Lab {
    context: Arc<Context>,
    api: Arc<Api>,
    world: Shared,
    stop: Arc<AtomicBool>,
    watcher: Option<JoinHandle<()>>,
    emulator: api::Emulator,
    storage: storage::ObjectStorage,
}

impl Lab {
    fn start(dir: &Path, options: &Options) -> Lab {
        let started = Instant::now();
        net::lab_network().unwrap_or_else(|e| panic!("lab: the lab's network: {e}"));
        let files = dir.join("files");
        fs::create_dir_all(&files).expect("lab: files folder");
        for (name, text) in FILES {
            let path = files.join(name);
            fs::write(&path, text).expect("lab: a stand-in");
            fs::set_permissions(&path, fs::Permissions::from_mode(0o755)).expect("lab: chmod");
        }
        let ca = storage::Ca::new(dir);
        let storage = storage::ObjectStorage::start(dir, &ca, net::OBJECT_STORAGE);
        // The watcher polls the API ten times a second: the budget must not be what a test runs out of.
        let emulator = api::Emulator::start(dir, net::PUBLIC_RANGE, options.action_delay, 100_000_000);
        let api = Arc::new(Api::new(&emulator.base));
        let context =
            Arc::new(Context { dir: dir.to_owned(), files, ca: ca.cert.clone(), pg_version: pg_version(), started });
        let world: Shared = Arc::new(Mutex::new(World::default()));
        let stop = Arc::new(AtomicBool::new(false));
        let watcher = {
            let (api, world, context, stop) =
                (Arc::clone(&api), Arc::clone(&world), Arc::clone(&context), Arc::clone(&stop));
            std::thread::spawn(move || watcher::watch(api, world, context, stop))
        };
        eprintln!("lab: ready in {:.1} s (folder {})", started.elapsed().as_secs_f64(), dir.display());
        Lab { context, api, world, stop, watcher: Some(watcher), emulator, storage }
    }

    /// `HCLOUD_ENDPOINT`: the emulator's API, `http://127.0.0.1:PORT/v1`.
    pub(crate) fn endpoint(&self) -> String {
        format!("{}/v1", self.emulator.base)
    }

    /// `HCLOUD_TOKEN`: the only token the lab's emulator accepts.
    pub(crate) fn token(&self) -> &'static str {
        TOKEN
    }

    /// `TERRACE_S3_ENDPOINT`: moto's S3, plain http in the lab namespace. The hosts reach the same
    /// buckets at `https://<location>.your-objectstorage.com`.
    pub(crate) fn s3_endpoint(&self) -> String {
        format!("http://127.0.0.1:{}", storage::S3_PORT)
    }

    /// s3cmd in the lab namespace against moto (plain http, path-style, region fsn1), e.g.
    /// `ls --recursive s3://bucket/`.
    pub(crate) fn s3cmd(&self, args: &str) -> Output {
        self.from_internet(&format!(
            "s3cmd --config=/dev/null --access_key=lab-access-key --secret_key=lab-secret-key --region=fsn1 \
             --host=127.0.0.1:{port} --host-bucket=127.0.0.1:{port} --no-ssl {args}",
            port = storage::S3_PORT
        ))
    }

    /// The address the hosts reach Object Storage at (`*.your-objectstorage.com` in their /etc/hosts).
    pub(crate) fn object_storage_ip(&self) -> Ipv4Addr {
        net::OBJECT_STORAGE
    }

    /// A JSON client of the emulator.
    pub(crate) fn api(&self) -> &Api {
        &self.api
    }

    /// The lab's folder: its logs, the hosts' folders (`hosts/<name>-<id>-<generation>`), volumes.
    pub(crate) fn dir(&self) -> &Path {
        &self.context.dir
    }

    /// The PostgreSQL version the hosts run.
    pub(crate) fn pg_version(&self) -> u32 {
        self.context.pg_version
    }

    /// The environment `terrace` needs to work against the lab: the API and Object Storage.
    pub(crate) fn terrace_env(&self) -> Vec<(&'static str, String)> {
        vec![
            ("HCLOUD_ENDPOINT", self.endpoint()),
            ("HCLOUD_TOKEN", TOKEN.to_owned()),
            ("TERRACE_S3_ENDPOINT", self.s3_endpoint()),
            ("TERRACE_S3_ACCESS_KEY", "lab-access-key".to_owned()),
            ("TERRACE_S3_SECRET_KEY", "lab-secret-key".to_owned()),
        ]
    }

    /// A server's host, if the lab has made one (it may still be booting).
    pub(crate) fn try_host(&self, server: &str) -> Option<Host> {
        let world = lock(&self.world);
        let (&id, machine) = world.machines.iter().find(|(_, m)| m.name == server)?;
        Some(Host { id, name: server.to_owned(), process: machine.host.clone()?, world: Arc::clone(&self.world) })
    }

    /// A server's host, which must exist.
    pub(crate) fn host(&self, server: &str) -> Host {
        self.try_host(server).unwrap_or_else(|| panic!("lab: there is no host for server {server} (yet)"))
    }

    /// Waits until a server's first boot has ended; its host and the errors of the boot (empty when
    /// cloud-init's status is `done`).
    pub(crate) fn wait_boot(&self, server: &str, limit: Duration) -> (Host, Vec<String>) {
        let state = wait_for(&format!("the first boot of server {server} to end"), limit, || {
            let world = lock(&self.world);
            // A host the lab could not make is no boot to wait for: the lab's own failure, at once.
            if let Some(machine) = world.machines.values().find(|m| m.name == server && m.host.is_none())
                && let BootState::Failed(errors) = &machine.boot
            {
                panic!("lab: server {server} has no host: {}", errors.join("; "));
            }
            let machine = world.machines.values().find(|m| m.name == server && m.host.is_some())?;
            match &machine.boot {
                BootState::Running => None,
                BootState::Done => Some(Vec::new()),
                BootState::Failed(errors) => Some(errors.clone()),
            }
        });
        (self.host(server), state)
    }

    /// Waits until a server has booted without errors (cloud-init's status `done`), and gives its host.
    pub(crate) fn wait_booted(&self, server: &str, limit: Duration) -> Host {
        let (host, errors) = self.wait_boot(server, limit);
        assert!(errors.is_empty(), "lab: the boot of server {server} failed:\n  {}", errors.join("\n  "));
        host
    }

    /// A shell command in the lab namespace: the internet (198.18.255.1 on the public bridge) and the
    /// CI runner (the emulator and moto on 127.0.0.1).
    #[expect(clippy::wrong_self_convention, reason = "it reads as what it does: `lab.from_internet(\"ssh ...\")`")]
    pub(crate) fn from_internet(&self, script: &str) -> Output {
        sys::run(&mut sys::bash(script))
    }

    /// A server's logs: cloud-init's output, the units' journals, PostgreSQL's, Redis's and
    /// pgBackRest's logs (the last 200 lines of each).
    pub(crate) fn logs(&self, server: &str) -> String {
        let dirs: Vec<PathBuf> = {
            let world = lock(&self.world);
            world
                .machines
                .iter()
                .filter(|(_, m)| m.name == server)
                .flat_map(|(id, m)| {
                    (0..=m.generation).map(move |g| self.context.dir.join("hosts").join(format!("{}-{id}-{g}", m.name)))
                })
                .collect()
        };
        let mut text = String::new();
        for dir in dirs {
            let log = dir.join("var-log");
            let mut files = Vec::new();
            collect_files(&log, &mut files);
            files.sort();
            for file in files {
                let content = fs::read_to_string(&file).unwrap_or_default();
                let lines: Vec<&str> = content.lines().collect();
                let tail = &lines[lines.len().saturating_sub(200)..];
                text.push_str(&format!(
                    "----- {server}: {} -----\n{}\n",
                    file.strip_prefix(&log).unwrap_or(&file).display(),
                    tail.join("\n")
                ));
            }
        }
        text
    }

    /// Keeps the lab running for a look inside, until `resume` appears in its folder.
    fn pause(&self) {
        let hosts: Vec<String> = lock(&self.world)
            .machines
            .values()
            .filter_map(|m| Some(format!("  {}: nsenter --target {} --all bash", m.name, m.host.as_ref()?.pid)))
            .collect();
        let resume = self.context.dir.join("resume");
        eprintln!(
            "lab: paused ({}). In the lab (see its pid 1 above), enter a host with\n{}\nlab: `touch {}` ends the pause",
            reexec::PAUSE_ENV,
            hosts.join("\n"),
            resume.display()
        );
        while !resume.exists() {
            std::thread::sleep(Duration::from_millis(500));
        }
    }

    /// Everything a failed test's reader needs: the watcher's events, the emulator's, moto's and
    /// stunnel's logs, and every server's logs.
    pub(crate) fn all_logs(&self) -> String {
        let (events, names): (Vec<String>, Vec<String>) = {
            let world = lock(&self.world);
            (world.events.clone(), world.machines.values().map(|m| m.name.clone()).collect())
        };
        let mut text = format!("===== lab: what the watcher did =====\n{}\n", events.join("\n"));
        for name in ["emulator.log", "moto.log", "stunnel.log"] {
            let content = fs::read_to_string(self.context.dir.join(name)).unwrap_or_default();
            let lines: Vec<&str> = content.lines().collect();
            text.push_str(&format!(
                "===== lab: {name} =====\n{}\n",
                lines[lines.len().saturating_sub(60)..].join("\n")
            ));
        }
        for name in names {
            text.push_str(&format!("===== lab: server {name} =====\n{}", self.logs(&name)));
        }
        text
    }
}

fn collect_files(dir: &Path, files: &mut Vec<PathBuf>) {
    for entry in fs::read_dir(dir).into_iter().flatten().flatten() {
        let path = entry.path();
        if path.is_dir() {
            collect_files(&path, files);
        } else {
            files.push(path);
        }
    }
}

impl Drop for Lab {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::Relaxed);
        if let Some(watcher) = self.watcher.take() {
            let _ = watcher.join();
        }
        let mut world = lock(&self.world);
        // What the watcher did, for a look at a kept lab folder.
        let _ = fs::write(self.context.dir.join("events.log"), world.events.join("\n") + "\n");
        for machine in world.machines.values() {
            if let Some(host) = &machine.host {
                host.kill();
            }
        }
        for attached in world.loops.values() {
            storage::detach_loop(&attached.device);
        }
        world.loops.clear();
    }
}

/// How long [`Host::run`] lets a command run.
pub(crate) const RUN_LIMIT: Duration = Duration::from_secs(300);

/// A server's host, as a test uses it.
#[derive(Clone)]
pub(crate) struct Host {
    id: u64,
    name: String,
    process: Arc<HostProcess>,
    world: Shared,
}

impl Host {
    pub(crate) fn name(&self) -> &str {
        &self.name
    }

    /// The server's id in the API.
    pub(crate) fn id(&self) -> u64 {
        self.id
    }

    /// The host's pid 1, as the lab namespace sees it (for `nsenter --target`).
    pub(crate) fn pid(&self) -> u32 {
        self.process.pid
    }

    /// Whether the server is on: `false` once the lab has ended its processes after a poweroff or
    /// shutdown (its namespaces stay, so [`Host::run`] still works, like a rescue console), `true`
    /// again once its enabled units have started after a poweron.
    pub(crate) fn powered(&self) -> bool {
        lock(&self.world).machines.get(&self.id).is_some_and(|m| m.powered)
    }

    /// Its public IPv4 (on eth0).
    pub(crate) fn public_ip(&self) -> Ipv4Addr {
        let world = lock(&self.world);
        world
            .machines
            .get(&self.id)
            .and_then(|m| m.public)
            .unwrap_or_else(|| panic!("lab: {} has no public IPv4", self.name))
    }

    /// Its private IPv4s, by network id.
    pub(crate) fn private_ips(&self) -> Vec<(u64, Ipv4Addr)> {
        let world = lock(&self.world);
        world.machines.get(&self.id).map(|m| m.private.iter().map(|(n, p)| (*n, p.ip)).collect()).unwrap_or_default()
    }

    /// Its one private IPv4 (it must be attached to exactly one network).
    pub(crate) fn private_ip(&self) -> Ipv4Addr {
        match self.private_ips().as_slice() {
            [(_, ip)] => *ip,
            other => panic!("lab: {} is attached to {} networks, not one", self.name, other.len()),
        }
    }

    /// `bash -c script` in the host, as root, with a root login's environment; waits for it, at most
    /// [`RUN_LIMIT`] (then it is killed, and fails).
    pub(crate) fn run(&self, script: &str) -> Output {
        let limit = RUN_LIMIT.as_secs().to_string();
        sys::run(&mut self.process.exec(&["timeout", "--kill-after=10", &limit, "/bin/bash", "-c", script]))
    }

    /// Like [`Host::run`], for a script that must succeed; its stdout.
    pub(crate) fn run_ok(&self, script: &str) -> String {
        let out = self.run(script);
        assert!(out.status.success(), "lab: on {}: `{script}` failed:\n{}", self.name, describe(&out));
        String::from_utf8_lossy(&out.stdout).into_owned()
    }

    /// Starts `bash -c script` in the host without waiting (stdout piped, stderr to the test's).
    pub(crate) fn spawn(&self, script: &str) -> Child {
        self.process
            .command(script)
            .stdout(Stdio::piped())
            .spawn()
            .unwrap_or_else(|e| panic!("lab: cannot start `{script}` on {}: {e}", self.name))
    }

    /// `bash -c script` in the network namespace of the host's docker container (a docker-ce host).
    pub(crate) fn in_container(&self, script: &str) -> Output {
        sys::run(&mut self.process.exec(&["ip", "netns", "exec", "container", "bash", "-c", script]))
    }

    /// A TCP listener on `port` of every address of the host, for one connection: its peer's address
    /// is what [`Listener::peer`] answers.
    pub(crate) fn listen_once(&self, port: u16) -> Listener {
        self.listener(port, false)
    }

    /// [`Host::listen_once`] in the host's docker container.
    pub(crate) fn listen_once_in_container(&self, port: u16) -> Listener {
        self.listener(port, true)
    }

    fn listener(&self, port: u16, container: bool) -> Listener {
        let script = format!(
            "exec /usr/bin/python3 -c 'import socket\n\
             s = socket.socket()\ns.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)\n\
             s.bind((\"0.0.0.0\", {port}))\ns.listen()\ns.settimeout(120)\nprint(\"listening\", flush=True)\n\
             c, peer = s.accept()\nprint(peer[0], flush=True)'"
        );
        let mut child = if container {
            self.process
                .exec(&["ip", "netns", "exec", "container", "bash", "-c", &script])
                .stdout(Stdio::piped())
                .spawn()
                .expect("lab: a listener")
        } else {
            self.spawn(&script)
        };
        let mut lines = std::io::BufReader::new(child.stdout.take().expect("stdout"));
        let mut first = String::new();
        std::io::BufRead::read_line(&mut lines, &mut first).expect("lab: the listener's output");
        assert_eq!(first.trim(), "listening", "lab: the listener on {}:{port} did not start", self.name);
        Listener { child, lines, what: format!("{}:{port}", self.name) }
    }
}

/// A listener on a host, for one connection.
pub(crate) struct Listener {
    child: Child,
    lines: std::io::BufReader<std::process::ChildStdout>,
    what: String,
}

impl Listener {
    /// The address the one connection came from; waits for it (the listener gives up after 120 s).
    pub(crate) fn peer(mut self) -> Ipv4Addr {
        let mut line = String::new();
        std::io::BufRead::read_line(&mut self.lines, &mut line).expect("lab: the listener's output");
        let _ = self.child.wait();
        line.trim().parse().unwrap_or_else(|_| panic!("lab: no connection reached {} (it said {line:?})", self.what))
    }
}

impl Drop for Listener {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// A command that connects to `ip:port` (TCP) within 3 s, with bash's /dev/tcp: success means
/// connected.
pub(crate) fn connect_command(ip: Ipv4Addr, port: u16) -> String {
    format!("timeout 3 bash -c 'exec 3<> /dev/tcp/{ip}/{port}'")
}

/// Runs a command in the lab namespace that must succeed; its stdout.
pub(crate) fn lab_run_ok(command: &mut Command) -> String {
    sys::run_ok(command)
}
