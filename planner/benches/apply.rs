//! Benchmark of apply and refresh against the emulator on loopback (`cargo bench -p terrace --bench
//! apply`), through the library the `terrace` binary uses:
//!
//! - apply of 100 independent servers with actions taking 500 ms, at parallelism 10 and 1. The
//!   ideal at parallelism 10 is 100/10 x 0.5 s plus the time of the requests themselves, measured
//!   as the same apply with actions that finish at once; the figure asked for is within 1.3x.
//! - refresh of 1,000 managed resources (4 kinds): the requests the emulator counts, against the
//!   bound of one request per kind and page of 50, `kinds + ceil(1000 / 50)`.
//!
//! A plain harness: each figure is one run of several seconds, dominated by the action delay.

use std::fmt::Write as _;
use std::path::Path;
use std::sync::Arc;
use std::sync::atomic::AtomicBool;
use std::time::{Duration, Instant};

use terrace::apply::{Event, Progress, Services};
use terrace::compile::VarInputs;
use terrace::diff::{PlanOptions, plan};
use terrace::pipeline::{compile_phase, load};
use terrace_providers::client::{Client, ClientConfig, Token};
use terrace_providers::emulator::{Emulator, EmulatorConfig};
use terrace_providers::pricing::Catalog;
use terrace_state::{Backend, LocalBackend, State};

#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

struct Quiet;

impl Progress for Quiet {
    fn event(&self, _: Event) {}
}

fn write_servers(dir: &Path, n: usize) {
    std::fs::create_dir_all(dir).expect("a folder");
    std::fs::write(dir.join("terrace.hcl"), "stack \"bench\" {\n  phases = [\"big\"]\n}\n").expect("write");
    let text = format!(
        "phase \"big\" {{\n  description = \"servers\"\n}}\n\nserver \"web\" {{\n  count       = {n}\n  server_type = \"cpx22\"\n  location    = \"fsn1\"\n}}\n"
    );
    std::fs::write(dir.join("big.hcl"), text).expect("write");
}

/// 1,000 resources in groups of ten: a network, four servers on it, four volumes attached to them
/// and a firewall applied to them.
fn write_groups(dir: &Path, groups: usize) {
    std::fs::create_dir_all(dir).expect("a folder");
    std::fs::write(dir.join("terrace.hcl"), "stack \"bench\" {\n  phases = [\"big\"]\n}\n").expect("write");
    let mut text = String::from("phase \"big\" {\n  description = \"groups\"\n}\n");
    for g in 0..groups {
        let _ = write!(
            text,
            "\nnetwork \"n{g}\" {{\n  ip_range = \"10.{}.0.0/16\"\n  subnet {{\n    network_zone = \"eu-central\"\n    ip_range     = \"10.{}.1.0/24\"\n  }}\n}}\n",
            g % 256,
            g % 256
        );
        for i in 0..4 {
            let _ = write!(
                text,
                "\nserver \"s{g}_{i}\" {{\n  server_type = \"cpx22\"\n  location    = \"fsn1\"\n  network     = network.n{g}\n}}\n\nvolume \"v{g}_{i}\" {{\n  size   = 10\n  server = server.s{g}_{i}\n}}\n"
            );
        }
        let _ = write!(
            text,
            "\nfirewall \"f{g}\" {{\n  rule {{\n    direction  = \"in\"\n    protocol   = \"tcp\"\n    port       = \"443\"\n    source_ips = [\"0.0.0.0/0\"]\n  }}\n  apply_to {{\n    server = [server.s{g}_0, server.s{g}_1, server.s{g}_2, server.s{g}_3]\n  }}\n}}\n"
        );
    }
    std::fs::write(dir.join("big.hcl"), text).expect("write");
}

fn services(emulator: &Emulator) -> Services {
    let client = Client::new(ClientConfig::new(&emulator.url(), Token::new("bench"))).expect("a client");
    Services { client, storage: None, hosts: terrace::apply::HostTimeouts::default(), migration_hook: None }
}

/// Applies the stack in `dir` from empty; returns the wall time of the apply alone.
async fn apply(emulator: &Emulator, dir: &Path, parallelism: usize) -> Duration {
    let stack = load(dir).stack.expect("the stack loads");
    let catalog = Catalog::embedded();
    let (compiled, diags) = compile_phase(&stack, "big", &VarInputs::default(), &catalog);
    let compiled = compiled.unwrap_or_else(|| panic!("compiles: {:?}", diags.into_sorted().first()));
    let state = State::new(Some(stack.name.clone()));
    let planned = plan(Some(&compiled), &state, &catalog, &PlanOptions::default(), Vec::new());
    let backend: Arc<dyn Backend> = Arc::new(LocalBackend::new(dir.join("terrace.state.json")));
    let start = Instant::now();
    let (_, report) = terrace::apply::apply(
        &planned,
        Some(Arc::new(compiled)),
        state,
        backend,
        services(emulator),
        parallelism,
        Arc::new(AtomicBool::new(false)),
        Arc::new(Quiet),
        None,
    )
    .await;
    let elapsed = start.elapsed();
    assert!(report.succeeded(), "the apply succeeds: {:?}", report.failed);
    elapsed
}

async fn emulator(action_delay: Duration) -> Emulator {
    let config = EmulatorConfig { action_delay, hourly_budget: 1_000_000, ..Default::default() };
    Emulator::start("127.0.0.1:0".parse().expect("an address"), config).await.expect("the emulator starts")
}

async fn servers(action_delay: Duration, parallelism: usize) -> Duration {
    let cloud = emulator(action_delay).await;
    let dir = tempfile::tempdir().expect("a temporary folder");
    write_servers(dir.path(), 100);
    let elapsed = apply(&cloud, dir.path(), parallelism).await;
    cloud.shutdown().await;
    elapsed
}

async fn refresh_requests() -> (usize, usize, usize) {
    let cloud = emulator(Duration::ZERO).await;
    let dir = tempfile::tempdir().expect("a temporary folder");
    write_groups(dir.path(), 100);
    apply(&cloud, dir.path(), 50).await;
    let mut state = LocalBackend::new(dir.path().join("terrace.state.json")).read().expect("read").expect("a state");
    let managed = state.resources.len();
    let kinds = state.resources.values().map(|r| r.kind.clone()).collect::<std::collections::BTreeSet<_>>().len();
    let before = cloud.requests().len();
    let found = terrace::apply::refresh(&services(&cloud).client, None, &mut state, "bench").await.expect("refresh");
    let requests = cloud.requests().len() - before;
    assert!(found.gone.is_empty() && found.drift.is_empty(), "nothing changed: {:?}", found.notes());
    assert_eq!(state.resources.len(), managed);
    cloud.shutdown().await;
    (managed, kinds, requests)
}

fn main() {
    let runtime = tokio::runtime::Builder::new_multi_thread().enable_all().build().expect("a runtime");
    runtime.block_on(async {
        let (managed, kinds, requests) = refresh_requests().await;
        let bound = kinds + managed.div_ceil(50);
        println!("refresh of {managed} resources ({kinds} kinds): {requests} requests (bound {bound})");
        assert!(requests <= bound, "refresh stays within one request per kind and page");

        let requests_only = servers(Duration::ZERO, 10).await;
        let ten = servers(Duration::from_millis(500), 10).await;
        let ideal = Duration::from_secs(5) + requests_only;
        println!(
            "apply of 100 servers, actions 500 ms, parallelism 10: {:.2} s = {:.2}x the 5 s of action time alone; \
             {:.2}x of 5 s + {:.2} s (the same apply with instant actions: requests, polls, state writes)",
            ten.as_secs_f64(),
            ten.as_secs_f64() / 5.0,
            ten.as_secs_f64() / ideal.as_secs_f64(),
            requests_only.as_secs_f64(),
        );
        assert!(ten.as_secs_f64() <= 1.3 * ideal.as_secs_f64(), "within 1.3x of the ideal");
        let one = servers(Duration::from_millis(500), 1).await;
        println!(
            "apply of 100 servers, actions 500 ms, parallelism 1: {:.2} s; {:.1}x the time at parallelism 10",
            one.as_secs_f64(),
            one.as_secs_f64() / ten.as_secs_f64()
        );
    });
}
