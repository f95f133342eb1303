//! The lab's hypervisor: a thread that polls the emulator's API every 100 ms and makes the hosts match
//! it. A new running server is booted (a host with its network and volumes, then cloud-init in a
//! thread of its own); a deleted one is ended; `off` stops a host's processes and `running` starts its
//! enabled services again; a rebuild boots a new host; network attachments and volume attachments come
//! and go as the API says.

use std::collections::{BTreeMap, BTreeSet};
use std::net::Ipv4Addr;
use std::path::PathBuf;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::{Duration, Instant};

use serde_json::Value;

use super::api::Api;
use super::cloud_init;
use super::host::HostProcess;
use super::net;
use super::storage;
use super::sys::quote;

/// How far a host's first boot got.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum BootState {
    Running,
    Done,
    Failed(Vec<String>),
}

/// A private interface of a host.
#[derive(Debug, Clone)]
pub(crate) struct Private {
    pub(crate) ip: Ipv4Addr,
    pub(crate) slot: usize,
}

/// A server of the API as the lab plays it.
pub(crate) struct Machine {
    pub(crate) name: String,
    pub(crate) image: String,
    /// Bumped by each rebuild, which makes a new host.
    pub(crate) generation: u32,
    pub(crate) host: Option<Arc<HostProcess>>,
    pub(crate) public: Option<Ipv4Addr>,
    pub(crate) private: BTreeMap<u64, Private>,
    pub(crate) boot: BootState,
    pub(crate) powered: bool,
}

/// A volume's loop device, and the server it is attached to.
pub(crate) struct Attached {
    pub(crate) server: u64,
    /// The pid 1 of the host it was attached to: a rebuilt server's new host gets it again.
    pub(crate) host: u32,
    pub(crate) device: String,
}

/// What the lab has made, shared by the watcher, the boot threads and the tests.
#[derive(Default)]
pub(crate) struct World {
    pub(crate) machines: BTreeMap<u64, Machine>,
    pub(crate) bridges: BTreeSet<u64>,
    pub(crate) loops: BTreeMap<u64, Attached>,
    /// The server actions already acted on (power, rebuild).
    pub(crate) actions: BTreeSet<u64>,
    /// What the watcher did and what failed, for the logs of a failed test.
    pub(crate) events: Vec<String>,
}

/// What making a host needs.
pub(crate) struct Context {
    pub(crate) dir: PathBuf,
    /// The lab's stand-ins and the host setup script.
    pub(crate) files: PathBuf,
    pub(crate) ca: PathBuf,
    pub(crate) pg_version: u32,
    pub(crate) started: Instant,
}

pub(crate) type Shared = Arc<Mutex<World>>;

pub(crate) fn lock(world: &Shared) -> MutexGuard<'_, World> {
    world.lock().unwrap_or_else(std::sync::PoisonError::into_inner)
}

impl World {
    /// Records what happened; the same text again soon after (a failure retried every 100 ms) once.
    fn event(&mut self, context: &Context, text: String) {
        let recent = self.events.iter().rev().take(20).any(|e| e.split_once("s ").is_some_and(|(_, t)| t == text));
        if !recent {
            self.events.push(format!("{:>7.2}s {text}", context.started.elapsed().as_secs_f64()));
        }
    }
}

/// Runs until `stop` is set.
pub(crate) fn watch(api: Arc<Api>, world: Shared, context: Arc<Context>, stop: Arc<AtomicBool>) {
    let mut last_error = String::new();
    while !stop.load(Ordering::Relaxed) {
        if let Err(error) = tick(&api, &world, &context) {
            // An API error once in a while is reported once, not every 100 ms.
            if error != last_error {
                lock(&world).event(&context, format!("watcher: {error}"));
                last_error = error;
            }
        }
        std::thread::sleep(Duration::from_millis(100));
    }
}

fn ipv4(value: &Value) -> Option<Ipv4Addr> {
    value.as_str().and_then(|s| s.parse().ok())
}

fn tick(api: &Arc<Api>, world: &Shared, context: &Arc<Context>) -> Result<(), String> {
    let networks = api.list("networks")?;
    let servers = api.list("servers")?;
    let volumes = api.list("volumes")?;
    // The latest finished server actions, oldest first: power cycles and rebuilds are acted on from
    // these, so that none is missed when it is over before the next look at the servers' status.
    let answer = api.request("GET", "/v1/servers/actions?sort=id:desc&per_page=50", None)?;
    let mut actions: Vec<Value> = answer.body["actions"].as_array().cloned().unwrap_or_default();
    actions.retain(|a| a["status"] != "running");
    actions.reverse();
    let ranges: BTreeMap<u64, String> =
        networks.iter().filter_map(|n| Some((n["id"].as_u64()?, n["ip_range"].as_str()?.to_owned()))).collect();
    let mut world_guard = lock(world);
    let w = &mut *world_guard;

    for &network in ranges.keys() {
        if !w.bridges.contains(&network) {
            match net::add_bridge(network) {
                Ok(()) => {
                    w.bridges.insert(network);
                }
                Err(e) => w.event(context, format!("network {network}: {e}")),
            }
        }
    }

    let listed: BTreeSet<u64> = servers.iter().filter_map(|s| s["id"].as_u64()).collect();
    for gone in w.machines.keys().copied().filter(|id| !listed.contains(id)).collect::<Vec<_>>() {
        if let Some(machine) = w.machines.remove(&gone) {
            if let Some(host) = &machine.host {
                host.kill();
            }
            w.event(context, format!("server {} deleted: its host is gone", machine.name));
        }
    }

    let mut to_boot = Vec::new();
    let mut events = Vec::new();
    for server in &servers {
        let Some(id) = server["id"].as_u64() else { continue };
        let status = server["status"].as_str().unwrap_or("");
        let name = server["name"].as_str().unwrap_or("").to_owned();
        let image = server["image"]["name"].as_str().unwrap_or("").to_owned();
        let World { machines, actions: done, .. } = &mut *w;
        let machine = machines.entry(id).or_insert_with(|| Machine {
            name: name.clone(),
            image: image.clone(),
            generation: 0,
            host: None,
            public: None,
            private: BTreeMap::new(),
            boot: BootState::Running,
            powered: false,
        });
        machine.name = name.clone();
        if let Some(host) = machine.host.clone() {
            events.extend(server_actions(context, done, id, machine, &host, &actions));
        }
        if machine.host.is_none() {
            // A host the lab could not make is not tried again every 100 ms: the test sees why.
            if status != "running" || matches!(machine.boot, BootState::Failed(_)) {
                continue;
            }
            machine.image.clone_from(&image);
            let public = ipv4(&server["public_net"]["ipv4"]["ip"]);
            match make_host(context, id, machine, public) {
                Ok(host) => {
                    machine.host = Some(Arc::new(host));
                    machine.public = public;
                    machine.powered = true;
                    // What happened to the server before is not for this host to act on.
                    done.extend(actions.iter().filter(|a| involves(a, id)).filter_map(|a| a["id"].as_u64()));
                    to_boot.push(id);
                    events.push(format!("server {name} ({id}) is running: host made, booting"));
                }
                Err(e) => {
                    machine.boot = BootState::Failed(vec![format!("the lab could not make the host: {e}")]);
                    events.push(format!("server {name}: the lab could not make its host: {e}"));
                    continue;
                }
            }
        }
        events.extend(reconcile(id, machine, server, &ranges));
    }
    for event in events {
        w.event(context, event);
    }

    let events = reconcile_volumes(context, w, &volumes);
    for event in events {
        w.event(context, event);
    }

    for network in w.bridges.iter().copied().filter(|n| !ranges.contains_key(n)).collect::<Vec<_>>() {
        net::remove_link(&net::bridge_name(network));
        w.bridges.remove(&network);
    }
    drop(world_guard);

    for id in to_boot {
        spawn_boot(api, world, context, id);
    }
    Ok(())
}

/// A new host for a server: its namespaces, its filesystem, eth0 with its public address, and docker0
/// on a docker-ce server.
fn make_host(context: &Context, id: u64, machine: &Machine, public: Option<Ipv4Addr>) -> Result<HostProcess, String> {
    if let Some(ip) = public
        && [net::L_ADDRESS, net::OBJECT_STORAGE].contains(&ip)
    {
        return Err(format!("the emulator handed out {ip}, one of the lab's own addresses"));
    }
    let dir = context.dir.join("hosts").join(format!("{}-{id}-{}", machine.name, machine.generation));
    let host = HostProcess::spawn(&dir)?;
    let hosts: Vec<String> = storage::S3_NAMES.iter().map(|name| format!("{}\t{name}", net::OBJECT_STORAGE)).collect();
    let setup = format!(
        "LAB_HOST_DIR={dir} LAB_FILES={files} LAB_HOSTNAME={name} LAB_PG_VERSION={pg} LAB_CA={ca} LAB_HOSTS={hosts} \
         bash {files}/host-setup fs",
        dir = quote(&dir.display().to_string()),
        files = quote(&context.files.display().to_string()),
        name = quote(&machine.name),
        pg = context.pg_version,
        ca = quote(&context.ca.display().to_string()),
        hosts = quote(&hosts.join("\n")),
    );
    host.script("the host's filesystem (host-setup)", &setup)?;
    net::harden(&host)?;
    net::plug(&host, &net::outside_name(id, 0), "eth0", net::INTERNET, None)?;
    net::set_public(&host, public)?;
    if machine.image == "docker-ce" {
        net::docker(&host)?;
    }
    Ok(host)
}

/// A host's public address and private networks, as the API has them now.
fn reconcile(id: u64, machine: &mut Machine, server: &Value, ranges: &BTreeMap<u64, String>) -> Vec<String> {
    let mut events = Vec::new();
    let Some(host) = machine.host.clone() else { return events };
    let name = machine.name.clone();
    let public = ipv4(&server["public_net"]["ipv4"]["ip"]);
    if public != machine.public {
        match net::set_public(&host, public) {
            Ok(()) => events.push(format!("server {name}: public address {public:?}")),
            Err(e) => events.push(format!("server {name}: {e}")),
        }
        machine.public = public;
    }
    let mut wanted: BTreeMap<u64, Ipv4Addr> = BTreeMap::new();
    let mut macs: BTreeMap<u64, String> = BTreeMap::new();
    for attachment in server["private_net"].as_array().into_iter().flatten() {
        if let (Some(network), Some(ip)) = (attachment["network"].as_u64(), ipv4(&attachment["ip"])) {
            wanted.insert(network, ip);
            macs.insert(network, attachment["mac_address"].as_str().unwrap_or("").to_owned());
        }
    }
    for (network, private) in machine.private.clone() {
        if wanted.get(&network) != Some(&private.ip) {
            net::remove_link(&net::outside_name(id, private.slot + 1));
            machine.private.remove(&network);
            events.push(format!("server {name}: detached from network {network}"));
        }
    }
    for (network, ip) in wanted {
        if machine.private.contains_key(&network) {
            continue;
        }
        let Some(range) = ranges.get(&network) else { continue };
        let used: BTreeSet<usize> = machine.private.values().map(|p| p.slot).collect();
        let slot = (0..).find(|s| !used.contains(s)).unwrap_or(0);
        // Hetzner's private interfaces on x86 are enp7s0, enp8s0, ...
        let inside = format!("enp{}s0", 7 + slot);
        let mac = macs.get(&network).filter(|m| !m.is_empty()).map(String::as_str);
        let plugged = net::plug(&host, &net::outside_name(id, slot + 1), &inside, &net::bridge_name(network), mac)
            .and_then(|()| net::set_private(&host, &inside, ip, range));
        match plugged {
            Ok(()) => {
                machine.private.insert(network, Private { ip, slot });
                events.push(format!("server {name}: {inside} {ip} on network {network} ({range})"));
            }
            Err(e) => {
                net::remove_link(&net::outside_name(id, slot + 1));
                events.push(format!("server {name}: attaching network {network}: {e}"));
            }
        }
    }
    events
}

/// Whether an action acts on a server.
fn involves(action: &Value, server: u64) -> bool {
    action["resources"].as_array().into_iter().flatten().any(|r| r["type"] == "server" && r["id"] == server)
}

/// The power and rebuild actions of a server that ended since the last look, in order. Those that
/// end while the first boot runs wait for it.
fn server_actions(
    context: &Context,
    done: &mut BTreeSet<u64>,
    id: u64,
    machine: &mut Machine,
    host: &Arc<HostProcess>,
    actions: &[Value],
) -> Vec<String> {
    let mut events = Vec::new();
    let name = machine.name.clone();
    for action in actions.iter().filter(|a| involves(a, id)) {
        let Some(action_id) = action["id"].as_u64() else { continue };
        if done.contains(&action_id) {
            continue;
        }
        if machine.boot == BootState::Running {
            break;
        }
        done.insert(action_id);
        if action["status"] != "success" {
            continue;
        }
        let command = action["command"].as_str().unwrap_or("");
        let (off, on) = match command {
            "stop_server" | "shutdown_server" => (true, false),
            "start_server" => (false, true),
            "reboot_server" | "reset_server" => (true, true),
            "rebuild_server" => {
                host.kill();
                machine.host = None;
                machine.generation += 1;
                machine.private.clear();
                machine.public = None;
                machine.boot = BootState::Running;
                machine.powered = false;
                events.push(format!("server {name} rebuilt: its host is gone, a new one boots"));
                break;
            }
            _ => continue,
        };
        if off && machine.powered {
            let result = power_off(context, host);
            machine.powered = false;
            match result {
                Ok(()) => events.push(format!("server {name} is off ({command} {action_id}): its processes stopped")),
                Err(e) => events.push(format!("server {name}: power off: {e}")),
            }
        }
        if on && !machine.powered {
            let result = power_on(host);
            machine.powered = true;
            match result {
                Ok(()) => {
                    events.push(format!("server {name} is on ({command} {action_id}): its enabled units started"))
                }
                Err(e) => events.push(format!("server {name}: power on: {e}")),
            }
        }
    }
    events
}

/// Attaches and detaches volumes' loop devices as the API has them.
fn reconcile_volumes(context: &Context, w: &mut World, volumes: &[Value]) -> Vec<String> {
    let mut events = Vec::new();
    let mut wanted: BTreeMap<u64, (u64, &Value)> = BTreeMap::new();
    for volume in volumes {
        if let (Some(id), Some(server)) = (volume["id"].as_u64(), volume["server"].as_u64())
            && w.machines.get(&server).is_some_and(|m| m.host.is_some())
        {
            wanted.insert(id, (server, volume));
        }
    }
    for (volume, attached) in std::mem::take(&mut w.loops) {
        let keep = wanted.get(&volume).is_some_and(|(server, _)| *server == attached.server)
            && w.machines.get(&attached.server).and_then(|m| m.host.as_ref()).is_some_and(|h| h.pid == attached.host);
        if keep {
            w.loops.insert(volume, attached);
            continue;
        }
        if let Some(host) =
            w.machines.get(&attached.server).and_then(|m| m.host.as_ref()).filter(|h| h.pid == attached.host)
        {
            let _ = host.script(
                "the detached volume's device",
                &format!("rm -f /dev/disk/by-id/scsi-0HC_Volume_{volume} {}", quote(&attached.device)),
            );
        }
        storage::detach_loop(&attached.device);
        events.push(format!("volume {volume} detached from server {}", attached.server));
    }
    // A deleted volume's data goes with it.
    let listed: BTreeSet<u64> = volumes.iter().filter_map(|v| v["id"].as_u64()).collect();
    if let Ok(files) = std::fs::read_dir(context.dir.join("volumes")) {
        for file in files.flatten() {
            let id = file.path().file_stem().and_then(|s| s.to_str()).and_then(|s| s.parse::<u64>().ok());
            if id.is_some_and(|id| !listed.contains(&id)) {
                let _ = std::fs::remove_file(file.path());
            }
        }
    }
    for (volume, (server, value)) in wanted {
        if w.loops.contains_key(&volume) {
            continue;
        }
        let Some(host) = w.machines.get(&server).and_then(|m| m.host.clone()) else { continue };
        let attached =
            storage::backing_file(&context.dir, volume, value["size"].as_u64().unwrap_or(10), value["format"].as_str())
                .and_then(|file| storage::attach_loop(&file))
                .and_then(|device| {
                    let (major, minor) = storage::device_numbers(&device)?;
                    let script = format!(
                        "set -e\n[ -e {device} ] || mknod -m 0660 {device} b {major} {minor}\n\
                     ln -sfn {device} /dev/disk/by-id/scsi-0HC_Volume_{volume}\n",
                        device = quote(&device),
                    );
                    match host.script("the volume's device", &script) {
                        Ok(_) => Ok(device),
                        Err(e) => {
                            storage::detach_loop(&device);
                            Err(e)
                        }
                    }
                });
        match attached {
            Ok(device) => {
                events.push(format!("volume {volume} attached to server {server} as {device}"));
                w.loops.insert(volume, Attached { server, host: host.pid, device });
            }
            Err(e) => events.push(format!("volume {volume}: {e}")),
        }
    }
    events
}

/// The first boot, in a thread of its own: cloud-init with the server's user_data, then the status
/// `cloud-init status` answers.
fn spawn_boot(api: &Arc<Api>, world: &Shared, context: &Arc<Context>, id: u64) {
    let (api, world, context) = (Arc::clone(api), Arc::clone(world), Arc::clone(context));
    let Some((host, generation, name)) =
        lock(&world).machines.get(&id).and_then(|m| Some((m.host.clone()?, m.generation, m.name.clone())))
    else {
        return;
    };
    std::thread::spawn(move || {
        let boot = match api.user_data(id) {
            Ok(user_data) => cloud_init::boot(&host, user_data.as_deref(), context.pg_version),
            Err(e) => cloud_init::Boot { errors: vec![format!("the user_data could not be read: {e}")] },
        };
        let (status, errors) =
            if boot.errors.is_empty() { ("done", String::new()) } else { ("error", boot.errors.join("\n")) };
        let _ = host.script(
            "cloud-init's status",
            &format!(
                "printf '%s\\n' {errors} > /run/cloud-init/lab-errors\necho {status} > /run/cloud-init/lab-status",
                errors = quote(&errors)
            ),
        );
        let mut w = lock(&world);
        if !boot.errors.is_empty() {
            // Loudly: a test waiting for this server fails with these, and they are printed here too.
            eprintln!("lab: the boot of server {name} failed:\n  {}", boot.errors.join("\n  "));
        }
        let text = format!(
            "server {name}: boot {status}{}",
            if errors.is_empty() { String::new() } else { format!(": {errors}") }
        );
        w.event(&context, text);
        if let Some(machine) = w.machines.get_mut(&id)
            && machine.generation == generation
        {
            machine.boot = if boot.errors.is_empty() { BootState::Done } else { BootState::Failed(boot.errors) };
        }
    });
}

/// `off`: every process of the host ends (as at a shutdown: SIGTERM, then SIGKILL), its volumes are
/// unmounted and /run is empty again. The host's disk (its overlays) stays.
fn power_off(context: &Context, host: &HostProcess) -> Result<(), String> {
    host.script(
        "power off",
        "kill -TERM -1 2> /dev/null\n\
         for _ in $(seq 100); do pgrep -x 'postgres|pgbouncer|redis-server|sshd|pgbackrest' > /dev/null || break; sleep 0.1; done\n\
         kill -KILL -1 2> /dev/null\n\
         sleep 0.2\n\
         awk '$1 ~ /^\\/dev\\/loop/ { print $2 }' /proc/mounts | sort -r | xargs -r umount -l\n",
    )?;
    host.script(
        "a fresh /run",
        &format!(
            "LAB_HOST_DIR={} bash {}/host-setup run",
            quote(&host.dir.display().to_string()),
            quote(&context.files.display().to_string())
        ),
    )
    .map(drop)
}

/// `running` again: the filesystems of /etc/fstab, then the enabled units, as systemd would start them.
fn power_on(host: &HostProcess) -> Result<(), String> {
    let result = host.script("power on", "mount -a || true\nsystemctl lab-boot");
    let status = if result.is_ok() { "done" } else { "error" };
    let _ = host.script("cloud-init's status", &format!("echo {status} > /run/cloud-init/lab-status"));
    result.map(drop)
}
