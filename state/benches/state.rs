//! Benchmark of saving and loading a 10,000-resource state, ten attributes each. `cargo bench -p
//! terrace-state` prints the median of 7 runs, in milliseconds, of: serializing and writing the
//! file atomically (`to_json` + `write_state_atomically`), reading and parsing it (`fs::read` +
//! `from_json`), and the local backend's `read` and `write`. The backend's write also checks the
//! stored state's lineage and serial: cheaply when the file holds what the backend last read or
//! wrote (the usual case during an apply), by parsing it otherwise; both are shown. It exits non-zero when saving or loading
//! takes more than the 200 ms budget.
//!
//! A plain harness (no criterion): the figures asked for are single operations of tens of
//! milliseconds, for which the median of a few runs is the statistic.

use std::time::{Duration, Instant};

use serde_json::json;
use terrace_state::{Backend as _, LocalBackend, OutputState, ResourceState, State};

const RESOURCES: usize = 10_000;
const RUNS: usize = 7;
const BUDGET: Duration = Duration::from_millis(200);

/// A stack of groups of ten: a network, four servers, four volumes and a firewall, with the
/// attributes the Hetzner API reports for each.
fn big_state() -> State {
    let mut state = State::new(Some("bench".to_owned()));
    state.serial = 1;
    state.phase = Some("big".to_owned());
    let mut add = |address: String,
                   kind: &str,
                   composite: Option<String>,
                   dependencies: Vec<String>,
                   attributes: serde_json::Value| {
        let serde_json::Value::Object(attributes) = attributes else {
            unreachable!("an object literal");
        };
        let id = (1_000_000 + state.resources.len()).to_string();
        let mut resource = ResourceState::new(kind);
        resource.id = Some(id);
        resource.attributes = attributes;
        resource.dependencies = dependencies;
        resource.composite = composite;
        if kind == "server" {
            resource.sensitive_attributes = vec!["user_data".to_owned()];
        }
        state.resources.insert(address, resource);
    };
    for group in 0..RESOURCES / 10 {
        let network = format!("network.n{group}");
        let composite = (group % 5 == 0).then(|| format!("postgres.db{group}"));
        add(
            network.clone(),
            "network",
            None,
            vec![],
            json!({
                "name": format!("n{group}"), "ip_range": format!("10.{}.0.0/16", group % 256),
                "subnets": [{"type": "cloud", "network_zone": "eu-central", "ip_range": format!("10.{}.1.0/24", group % 256), "gateway": format!("10.{}.0.1", group % 256)}],
                "labels": {"terrace-stack": "bench", "terrace-address": format!("network.n{group}")},
                "expose_routes_to_vswitch": false, "delete_protection": false, "created": "2026-03-01T12:00:00+00:00",
                "routes": [], "servers": [], "load_balancers": []
            }),
        );
        let firewall = format!("firewall.f{group}");
        add(
            firewall.clone(),
            "firewall",
            composite.clone(),
            vec![],
            json!({
                "name": format!("f{group}"),
                "rules": [{"direction": "in", "protocol": "tcp", "port": "443", "source_ips": ["0.0.0.0/0", "::/0"], "destination_ips": [], "description": "https"}],
                "labels": {"terrace-stack": "bench"}, "applied_to": [], "created": "2026-03-01T12:00:00+00:00",
                "delete_protection": false, "rule_count": 1, "applied_to_resources": 4, "description": null, "source": "terrace"
            }),
        );
        for i in 0..4 {
            let server = format!("server.s{group}_{i}");
            add(
                server.clone(),
                "server",
                composite.clone(),
                vec![firewall.clone(), network.clone()],
                json!({
                    "name": format!("s{group}-{i}"), "server_type": "cpx22", "location": "fsn1", "image": "ubuntu-24.04",
                    "ipv4_address": format!("203.0.{}.{}", group % 256, i + 10), "ipv6_network": "2a01:4f8:c012:abcd::/64",
                    "labels": {"terrace-stack": "bench", "group": format!("g{group}")}, "backups": false,
                    "user_data": "#cloud-config\npackages:\n  - nginx\nruncmd:\n  - systemctl enable --now nginx\n",
                    "status": "running", "private_net": [{"network": 1_000_000 + group, "ip": format!("10.{}.1.{}", group % 256, i + 2)}]
                }),
            );
            add(
                format!("volume.v{group}_{i}"),
                "volume",
                composite.clone(),
                vec![server],
                json!({
                    "name": format!("v{group}-{i}"), "size": 10 + i * 10, "location": "fsn1", "format": "ext4", "automount": true,
                    "linux_device": format!("/dev/disk/by-id/scsi-0HC_Volume_{}", 1_000_000 + group * 10 + i),
                    "labels": {"terrace-stack": "bench"}, "delete_protection": false, "status": "available",
                    "created": "2026-03-01T12:00:00+00:00"
                }),
            );
        }
    }
    state.outputs.insert("first_ip".to_owned(), OutputState { value: json!("203.0.0.10"), sensitive: false });
    state.outputs.insert("database_password".to_owned(), OutputState { value: json!("s3cr3t"), sensitive: true });
    state
}

fn median(mut times: Vec<Duration>) -> Duration {
    times.sort();
    times[times.len() / 2]
}

fn ms(duration: Duration) -> String {
    format!("{:.1} ms", duration.as_secs_f64() * 1000.0)
}

fn main() {
    // `cargo bench` passes `--bench`; `cargo test --benches` runs this harness too, and then one
    // quick run is enough to show that it works.
    let runs = if std::env::args().any(|arg| arg == "--bench") { RUNS } else { 1 };
    let dir = tempfile::tempdir().expect("a temporary folder");
    let path = dir.path().join("terrace.state.json");
    let mut state = big_state();
    let attributes: usize = state.resources.values().map(|resource| resource.attributes.len()).sum();

    let mut save = Vec::new();
    let mut load = Vec::new();
    let mut size = 0;
    for _ in 0..runs {
        let start = Instant::now();
        let bytes = terrace_state::to_json(&state);
        terrace_state::write_state_atomically(&path, &bytes).expect("write the state");
        save.push(start.elapsed());
        size = bytes.len();

        let start = Instant::now();
        let bytes = std::fs::read(&path).expect("read the state");
        let read = terrace_state::from_json(&bytes, "bench").expect("parse the state");
        load.push(start.elapsed());
        assert_eq!(read.resources.len(), RESOURCES);
    }

    // The backend's own write and read, on a file it manages from the start.
    std::fs::remove_file(&path).expect("start afresh");
    let backend = LocalBackend::new(&path);
    let mut backend_write = Vec::new();
    let mut backend_read = Vec::new();
    let mut cold_write = Vec::new();
    for _ in 0..runs {
        state.increment_serial();
        let start = Instant::now();
        backend.write(&state).expect("backend write");
        backend_write.push(start.elapsed());
        let start = Instant::now();
        let read = backend.read().expect("backend read").expect("a state");
        backend_read.push(start.elapsed());
        assert_eq!(read.serial, state.serial);
    }
    for _ in 0..runs {
        // A backend that has not seen the file yet parses it to check its lineage and serial.
        state.increment_serial();
        let fresh = LocalBackend::new(&path);
        let start = Instant::now();
        fresh.write(&state).expect("fresh backend write");
        cold_write.push(start.elapsed());
    }

    let (save, load) = (median(save), median(load));
    println!(
        "state of {RESOURCES} resources ({:.1} attributes each), {:.1} MB, median of {runs} runs:",
        attributes as f64 / RESOURCES as f64,
        size as f64 / 1e6
    );
    println!("  save (to_json + write_state_atomically): {}", ms(save));
    println!("  load (read + from_json):                 {}", ms(load));
    println!("  LocalBackend::read:                      {}", ms(median(backend_read)));
    println!("  LocalBackend::write, file as last seen:  {}", ms(median(backend_write)));
    println!("  LocalBackend::write, file not yet seen:  {}", ms(median(cold_write)));
    if save > BUDGET || load > BUDGET {
        eprintln!("over the budget of {} for saving or loading", ms(BUDGET));
        std::process::exit(1);
    }
}
