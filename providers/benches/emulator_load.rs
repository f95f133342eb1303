//! Load measurement of the emulator: simple authenticated GETs over keep-alive connections against an
//! emulator in the same process, with actions instant and no faults. Prints requests per second and the
//! process's resident memory along the way, to show throughput and that memory stays flat.
//!
//! `cargo bench -p terrace-providers --bench emulator_load -- --requests 100000 --concurrency 32`

use std::time::{Duration, Instant};

use terrace_providers::emulator::{Emulator, EmulatorConfig};

/// Resident memory of this process in KiB (Linux; 0 elsewhere).
fn rss_kib() -> u64 {
    std::fs::read_to_string("/proc/self/status")
        .ok()
        .and_then(|s| {
            s.lines()
                .find(|l| l.starts_with("VmRSS:"))
                .and_then(|l| l.split_whitespace().nth(1))
                .and_then(|n| n.parse().ok())
        })
        .unwrap_or(0)
}

fn arg(name: &str, default: u64) -> u64 {
    let args: Vec<String> = std::env::args().collect();
    args.iter().position(|a| a == name).and_then(|i| args.get(i + 1)).and_then(|v| v.parse().ok()).unwrap_or(default)
}

async fn run(client: &reqwest::Client, url: &str, requests: u64, concurrency: u64) -> Duration {
    let started = Instant::now();
    let per_task = requests / concurrency;
    let mut tasks = Vec::new();
    for _ in 0..concurrency {
        let client = client.clone();
        let url = url.to_owned();
        tasks.push(tokio::spawn(async move {
            for _ in 0..per_task {
                match client.get(&url).bearer_auth("load").send().await {
                    Ok(resp) if resp.status().is_success() => {
                        // Read the body so the connection goes back to the pool.
                        let _ = resp.bytes().await;
                    }
                    Ok(resp) => panic!("unexpected status {}", resp.status()),
                    Err(e) => panic!("request failed: {e}"),
                }
            }
        }));
    }
    for t in tasks {
        if let Err(e) = t.await {
            panic!("a load task failed: {e}");
        }
    }
    started.elapsed()
}

fn main() {
    let requests = arg("--requests", 100_000);
    let concurrency = arg("--concurrency", 32).max(1);
    let runtime = match tokio::runtime::Builder::new_multi_thread().enable_all().build() {
        Ok(rt) => rt,
        Err(e) => panic!("cannot start tokio: {e}"),
    };
    runtime.block_on(async {
        let config =
            EmulatorConfig { action_delay: Duration::ZERO, hourly_budget: u32::MAX, ..EmulatorConfig::default() };
        let emu = match Emulator::start("127.0.0.1:0".parse().unwrap_or_else(|_| unreachable!()), config).await {
            Ok(emu) => emu,
            Err(e) => panic!("cannot start the emulator: {e}"),
        };
        let client = reqwest::Client::builder().pool_max_idle_per_host(concurrency as usize).build();
        let client = match client {
            Ok(c) => c,
            Err(e) => panic!("cannot build the client: {e}"),
        };
        let url = format!("{}/locations/1", emu.url());
        // Warm up connections and allocator before measuring.
        run(&client, &url, 2_000.min(requests), concurrency).await;
        let before = rss_kib();
        println!("emulator load: {requests} GET {url} over {concurrency} keep-alive connections");
        println!("  RSS before: {before} KiB");
        let chunks = 4;
        let mut total = Duration::ZERO;
        for i in 1..=chunks {
            let took = run(&client, &url, requests / chunks, concurrency).await;
            total += took;
            println!(
                "  after {:>7} requests: {:>8.0} req/s in this quarter, RSS {} KiB",
                requests / chunks * i,
                (requests / chunks) as f64 / took.as_secs_f64(),
                rss_kib()
            );
        }
        println!(
            "  overall: {:.0} requests/second; RSS after: {} KiB",
            requests as f64 / total.as_secs_f64(),
            rss_kib()
        );
        emu.shutdown().await;
    });
}
