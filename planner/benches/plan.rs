//! Benchmark of the offline pipeline: a generated stack of N resources (with references between
//! them) is read, compiled, validated and planned from empty state by the real `terrace` binary,
//! a fresh process per run. `cargo bench -p terrace --bench plan` prints, for 1,000, 10,000 and
//! 100,000 resources, the median wall time of `terrace validate` and of `terrace plan` (11 runs, 3
//! at 100,000), the peak memory (GNU time's maximum resident set size) and the time of each stage
//! in process, then the ratios of the sizes.
//! `-- --write DIR N` only writes a stack; `-- --stages DIR` prints the peak memory after each stage.
//!
//! A plain harness (no criterion): the figures asked for are end-to-end times of a few hundred
//! milliseconds of a one-shot command, for which the median of fresh processes is the statistic.

use std::fmt::Write as _;
use std::path::Path;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use terrace::compile::VarInputs;
use terrace::pipeline::load;
use terrace::plan::plan_from_empty;
use terrace_providers::pricing::Catalog;

/// The same allocator as the `terrace` binary, so the figures are the binary's.
#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

/// Writes a stack with `n` resources in groups of ten: a network, four servers on it, four volumes
/// attached to them and a firewall applied to them.
fn write_stack(dir: &Path, n: usize) {
    std::fs::create_dir_all(dir).expect("create the stack folder");
    std::fs::write(dir.join("terrace.hcl"), "stack \"bench\" {\n  phases = [\"big\"]\n}\n").expect("write terrace.hcl");
    let mut text = String::from(
        "phase \"big\" {\n  description = \"generated\"\n}\n\nvariable \"location\" {\n  default = \"fsn1\"\n}\n",
    );
    for group in 0..n.div_ceil(10) {
        let _ = write!(
            text,
            "\nnetwork \"n{group}\" {{\n  ip_range = \"10.{}.0.0/16\"\n  subnet {{\n    network_zone = \"eu-central\"\n    ip_range     = \"10.{}.1.0/24\"\n  }}\n}}\n",
            group % 256,
            group % 256
        );
        for i in 0..4 {
            let _ = write!(
                text,
                "\nserver \"s{group}_{i}\" {{\n  server_type = \"cpx22\"\n  location    = var.location\n  network     = network.n{group}\n  labels      = {{ group = \"g{group}\" }}\n}}\n\nvolume \"v{group}_{i}\" {{\n  size   = {}\n  server = server.s{group}_{i}\n}}\n",
                10 + i * 10
            );
        }
        let _ = write!(
            text,
            "\nfirewall \"f{group}\" {{\n  rule {{\n    direction  = \"in\"\n    protocol   = \"tcp\"\n    port       = \"443\"\n    source_ips = [\"0.0.0.0/0\"]\n  }}\n  apply_to {{\n    server = [server.s{group}_0, server.s{group}_1, server.s{group}_2, server.s{group}_3]\n  }}\n}}\n"
        );
    }
    std::fs::write(dir.join("big.hcl"), text).expect("write big.hcl");
}

/// The stages of one run, in seconds.
#[derive(Default, Clone, Copy)]
struct Stages {
    load: f64,
    compile: f64,
    validate: f64,
    plan: f64,
    render: f64,
}

/// One end-to-end run: load, compile, validate, plan, render as JSON.
fn run_once(dir: &Path, catalog: &Catalog) -> (Duration, usize, Stages) {
    let start = Instant::now();
    let mut stages = Stages::default();
    let mut mark = Instant::now();
    let mut lap = |slot: &mut f64| {
        *slot = mark.elapsed().as_secs_f64();
        mark = Instant::now();
    };
    let loaded = load(dir);
    let stack = loaded.stack.expect("the generated stack loads");
    lap(&mut stages.load);
    let (compiled, diags) = terrace::compile::compile(&stack, "big", &VarInputs::default(), catalog);
    let compiled =
        compiled.unwrap_or_else(|| panic!("the generated stack compiles: {:?}", diags.into_sorted().first()));
    lap(&mut stages.compile);
    let problems = terrace::validate::validate(&compiled, catalog);
    assert!(!problems.has_errors(), "the generated stack is valid");
    lap(&mut stages.validate);
    let plan = plan_from_empty(&compiled, catalog, Vec::new());
    lap(&mut stages.plan);
    let json = terrace::render::json(&plan);
    lap(&mut stages.render);
    assert_eq!(plan.resource_changes.len(), compiled.resources.len());
    std::hint::black_box(json);
    let count = compiled.resources.len();
    drop((plan, compiled, stack, loaded.sources));
    (start.elapsed(), count, stages)
}

/// Median wall time and peak memory of `terrace plan --format json` over `runs` fresh processes.
/// Each run is a new process, as in a pipeline: start-up, reading, compiling, validating,
/// planning and rendering are all counted.
/// Returns the median, the fastest run and the peak memory in KB.
fn measure_binary(dir: &Path, runs: usize, command: &str) -> (Duration, Duration, Option<u64>) {
    let binary = env!("CARGO_BIN_EXE_terrace");
    let dir = dir.to_str().expect("a UTF-8 path");
    let args: Vec<&str> =
        if command == "plan" { vec!["plan", "--dir", dir, "--format", "json"] } else { vec![command, "--dir", dir] };
    let mut times = Vec::with_capacity(runs);
    for _ in 0..runs {
        let start = Instant::now();
        let output = Command::new(binary).args(&args).stdout(Stdio::null()).output().expect("terrace runs");
        times.push(start.elapsed());
        assert!(output.status.success(), "{}", String::from_utf8_lossy(&output.stderr));
    }
    times.sort();
    // Peak resident memory from GNU time, where the machine has it.
    let peak_kb = Command::new("/usr/bin/time")
        .args(["-f", "%M"])
        .arg(binary)
        .args(&args)
        .stdout(Stdio::null())
        .output()
        .ok()
        .and_then(|o| String::from_utf8_lossy(&o.stderr).lines().last().and_then(|l| l.trim().parse().ok()));
    println!(
        "  wall times (ms): {}",
        times.iter().map(|t| format!("{:.0}", t.as_secs_f64() * 1e3)).collect::<Vec<_>>().join(" ")
    );
    (times[times.len() / 2], times[0], peak_kb)
}

fn main() {
    let args: Vec<String> = std::env::args().collect();
    if let Some(position) = args.iter().position(|a| a == "--stages") {
        // Peak memory after each stage of one run over DIR (Linux: VmHWM of /proc/self/status).
        let dir = Path::new(args.get(position + 1).expect("--stages DIR"));
        let catalog = Catalog::embedded();
        println!("start: {} MB", peak_mb());
        for _ in 0..3 {
            let (time, count, stages) = run_once(dir, &catalog);
            println!(
                "{count} resources in process: {:.1} ms: load {:.1}, compile {:.1}, validate {:.1}, plan {:.1}, JSON {:.1}",
                time.as_secs_f64() * 1e3,
                stages.load * 1e3,
                stages.compile * 1e3,
                stages.validate * 1e3,
                stages.plan * 1e3,
                stages.render * 1e3
            );
        }
        let loaded = load(dir);
        let stack = loaded.stack.expect("loads");
        println!("load: {} MB", peak_mb());
        let (compiled, _) = terrace::compile::compile(&stack, "big", &VarInputs::default(), &catalog);
        let compiled = compiled.expect("compiles");
        println!("compile: {} MB", peak_mb());
        drop(stack);
        let _ = terrace::validate::validate(&compiled, &catalog);
        println!("validate: {} MB", peak_mb());
        let plan = plan_from_empty(&compiled, &catalog, Vec::new());
        println!("plan: {} MB", peak_mb());
        let json = terrace::render::json(&plan);
        println!("json ({} bytes): {} MB", json.len(), peak_mb());
        return;
    }
    if let Some(position) = args.iter().position(|a| a == "--write") {
        let dir = args.get(position + 1).expect("--write DIR N");
        let n: usize = args.get(position + 2).and_then(|n| n.parse().ok()).expect("--write DIR N");
        write_stack(Path::new(dir), n);
        println!("wrote a stack of {n} resources to {dir}");
        return;
    }
    let catalog = Catalog::embedded();
    let root = tempfile::tempdir().expect("a temporary folder");
    let mut results = Vec::new();
    for n in [1_000, 10_000, 100_000] {
        let dir = root.path().join(n.to_string());
        write_stack(&dir, n);
        let (_, resources, stages) = run_once(&dir, &catalog);
        let runs = if n >= 100_000 { 3 } else { 11 };
        let (validate, _, validate_kb) = measure_binary(&dir, runs, "validate");
        println!(
            "terrace validate, {resources:>6} resources: median {:>6.1} ms of {runs} runs, peak memory {}",
            validate.as_secs_f64() * 1e3,
            validate_kb.map_or("unknown".to_owned(), |kb| format!("{} MB", kb / 1024))
        );
        let (time, fastest, peak_kb) = measure_binary(&dir, runs, "plan");
        println!(
            "terrace plan, {resources:>6} resources: median {:>6.1} ms, fastest {:>6.1} ms of {runs} runs, peak memory {}",
            time.as_secs_f64() * 1e3,
            fastest.as_secs_f64() * 1e3,
            peak_kb.map_or("unknown (no /usr/bin/time)".to_owned(), |kb| format!("{} MB", kb / 1024))
        );
        println!(
            "  in process: load {:.1} ms, compile {:.1} ms, validate {:.1} ms, plan {:.1} ms, JSON {:.1} ms",
            stages.load * 1e3,
            stages.compile * 1e3,
            stages.validate * 1e3,
            stages.plan * 1e3,
            stages.render * 1e3
        );
        results.push((time, fastest));
    }
    // On a shared machine the median moves with other work; the fastest runs are the steadier
    // comparison of how the work grows.
    println!(
        "ratio 10,000 / 1,000 resources: {:.1} (medians), {:.1} (fastest runs)",
        results[1].0.as_secs_f64() / results[0].0.as_secs_f64(),
        results[1].1.as_secs_f64() / results[0].1.as_secs_f64()
    );
    println!(
        "ratio 100,000 / 10,000 resources: {:.1} (medians), {:.1} (fastest runs)",
        results[2].0.as_secs_f64() / results[1].0.as_secs_f64(),
        results[2].1.as_secs_f64() / results[1].1.as_secs_f64()
    );

    // The diff: 10,000 recorded resources, the definitions then changed for 1% of them.
    let dir = root.path().join("10000");
    record(&dir, &catalog);
    let big = dir.join("big.hcl");
    let mut text = std::fs::read_to_string(&big).expect("read big.hcl");
    for group in 0..100 {
        text = text.replacen(
            &format!("volume \"v{group}_0\" {{\n  size   = 10\n"),
            &format!("volume \"v{group}_0\" {{\n  size   = 15\n"),
            1,
        );
    }
    std::fs::write(&big, text).expect("write big.hcl");
    for _ in 0..3 {
        let start = Instant::now();
        let loaded = load(&dir);
        let stack = loaded.stack.expect("loads");
        let (compiled, _) = terrace::compile::compile(&stack, "big", &VarInputs::default(), &catalog);
        let compiled = compiled.expect("compiles");
        let compile = start.elapsed();
        let backend = terrace_state::LocalBackend::new(dir.join("terrace.state.json"));
        let state = terrace_state::Backend::read(&backend).expect("reads").expect("a state");
        let read = start.elapsed() - compile;
        let plan = terrace::diff::plan(Some(&compiled), &state, &catalog, &Default::default(), Vec::new());
        let diff = start.elapsed() - compile - read;
        let json = terrace::render::json(&plan);
        let render = start.elapsed() - compile - read - diff;
        std::hint::black_box(json);
        println!(
            "  in process: load+compile {:.1} ms, read state {:.1} ms, diff {:.1} ms, JSON {:.1} ms",
            compile.as_secs_f64() * 1e3,
            read.as_secs_f64() * 1e3,
            diff.as_secs_f64() * 1e3,
            render.as_secs_f64() * 1e3
        );
    }
    let (time, fastest, peak_kb) = measure_binary(&dir, 11, "plan");
    let plan = std::process::Command::new(env!("CARGO_BIN_EXE_terrace"))
        .args(["plan", "--format", "json", "--dir", dir.to_str().expect("utf-8")])
        .output()
        .expect("terrace runs");
    let json: serde_json::Value = serde_json::from_slice(&plan.stdout).expect("a JSON plan");
    println!(
        "terrace plan against a 10,000-resource state, {} updates: median {:>6.1} ms, fastest {:>6.1} ms of 11 runs, peak memory {}",
        json["summary"]["update"],
        time.as_secs_f64() * 1e3,
        fastest.as_secs_f64() * 1e3,
        peak_kb.map_or("unknown".to_owned(), |kb| format!("{} MB", kb / 1024))
    );
}

/// Records the stack in `dir` as applied (ids and a public IPv4 per server), as the state the
/// diff runs against.
fn record(dir: &Path, catalog: &Catalog) {
    let loaded = load(dir);
    let stack = loaded.stack.expect("loads");
    let (compiled, _) = terrace::compile::compile(&stack, "big", &VarInputs::default(), catalog);
    let compiled = compiled.expect("compiles");
    let mut state = terrace_state::State::new(Some(stack.name.clone()));
    for (n, (address, resource)) in compiled.resources.iter().enumerate() {
        let mut recorded = terrace_state::ResourceState::new(resource.kind.as_str());
        recorded.id = Some((1000 + n).to_string());
        for (name, value) in &resource.attrs {
            recorded.attributes.insert(name.clone(), terrace::diff::value_to_json(value));
        }
        if resource.kind == terrace::kind::Kind::Server {
            recorded.attributes.insert("ipv4_address".into(), format!("203.0.{}.{}", n / 250, n % 250 + 1).into());
        }
        recorded.dependencies = compiled.resources.dependencies(address).iter().map(ToString::to_string).collect();
        state.resources.insert(address.to_string(), recorded);
    }
    state.serial = 1;
    terrace_state::Backend::write(&terrace_state::LocalBackend::new(dir.join("terrace.state.json")), &state)
        .expect("write the state");
}

/// The process's peak resident memory so far, in MB (0 where /proc is missing).
fn peak_mb() -> u64 {
    let status = std::fs::read_to_string("/proc/self/status").unwrap_or_default();
    status
        .lines()
        .find_map(|line| line.strip_prefix("VmHWM:"))
        .and_then(|rest| rest.trim().trim_end_matches("kB").trim().parse::<u64>().ok())
        .map_or(0, |kb| kb / 1024)
}
