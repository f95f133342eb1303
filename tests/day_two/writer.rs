//! What the data-migration tests share: the seeded dataset, a writer that inserts without pause
//! through a migration and records what it committed, and an apply that a hook kills after each
//! step of the migration (handing the new outputs to the writer), continued each time.

use std::fs;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use serde_json::Value;

use crate::lab::{Host, Lab, describe};
use crate::support::{From, outputs, psql, psql_ok, state, terrace, terrace_command, text};

/// 200 organizations over tables that carry `organization_id` (organizations, documents with an
/// embedding), a reference table without it (plans), and the writer's table.
const SEED: &str = "
CREATE TABLE organizations (organization_id text PRIMARY KEY, name text NOT NULL);
CREATE TABLE documents (id serial PRIMARY KEY, organization_id text NOT NULL, body text, embedding VECTOR);
CREATE TABLE plans (code text PRIMARY KEY, monthly_eur numeric NOT NULL);
INSERT INTO plans VALUES ('free', 0), ('pro', 49), ('business', 199);
INSERT INTO organizations SELECT 'org-' || i, 'Organization ' || i FROM generate_series(1, 200) i;
INSERT INTO documents (organization_id, body, embedding)
  SELECT 'org-' || (i % 200 + 1), md5(i::text), ('{' || i || ',' || (i % 7) || ',1}')::VECTOR
  FROM generate_series(1, 2000) i;
CREATE TABLE writes (id bigint PRIMARY KEY, organization_id text NOT NULL, at timestamptz NOT NULL DEFAULT now());
";

/// Applies `phase` from empty and seeds its database from the app host `app`: returns the host and
/// the DATABASE_URL the app uses.
pub(crate) fn seeded(lab: &Lab, dir: &Path, phase: &str, app: &str) -> (Host, String) {
    let applied = terrace(lab, dir, &["apply", "--phase", phase, "--auto-approve"]);
    assert!(applied.status.success(), "{}", describe(&applied));
    let app = lab.wait_booted(app, Duration::from_secs(60));
    let url = text(&outputs(lab, dir), "DATABASE_URL").to_owned();
    psql_ok(From::Host(&app), &url, &seed());
    (app, url)
}

/// The seed's SQL. Embeddings as real[]: the lab's app role does not see the pgvector type (left
/// to find out).
pub(crate) fn seed() -> String {
    SEED.replace("VECTOR", "real[]")
}

/// The seed's rule in SQL over `count` shards, for deleting what a shard does not hold.
pub(crate) fn rule_sql(count: usize) -> String {
    format!("('x' || substr(md5(organization_id), 1, 8))::bit(32)::bigint % {count}")
}

/// The old DATABASE_URL until the hook hands over the shards; then the shard of the row's
/// organization among the handed SHARD_DATABASE_URLS.
pub(crate) fn by_shard(outputs: Option<&Value>, id: u64) -> Option<String> {
    let urls = outputs?["SHARD_DATABASE_URLS"].as_array()?;
    urls.get(terrace::compile::shard::route(&organization(id), urls.len()))?.as_str().map(str::to_owned)
}

/// Hands `outputs` to the writer, as the hook does.
pub(crate) fn hand_over(dir: &Path, outputs: &serde_json::Map<String, Value>) {
    fs::write(dir.join("outputs.json"), serde_json::to_vec(outputs).expect("JSON"))
        .expect("the outputs for the writer");
}

/// The organization of the writer's row `id`.
pub(crate) fn organization(id: u64) -> String {
    format!("org-{}", id % 200 + 1)
}

/// What the writer saw.
#[derive(Default)]
pub(crate) struct Written {
    pub committed: Vec<u64>,
    pub failed: u64,
    pub longest_gap: Duration,
}

/// Where the writer sends row `id`: the URL from the outputs the hook handed over last (`None`
/// before the switchover), or `None` to use the first URL.
pub(crate) type Route = fn(Option<&Value>, u64) -> Option<String>;

/// A writer inserting rows (an id and its organization) one by one from `app` until stopped;
/// `route` picks each row's URL.
pub(crate) struct Writer {
    pub app: Host,
    pub dir: PathBuf,
    pub first_url: String,
    pub route: Route,
}

impl Writer {
    /// Starts it on a thread: stop it with the flag, then join.
    pub(crate) fn start(self) -> (Arc<AtomicBool>, Arc<Mutex<Written>>, std::thread::JoinHandle<()>) {
        let stop = Arc::new(AtomicBool::new(false));
        let written = Arc::new(Mutex::new(Written::default()));
        let (flag, record) = (stop.clone(), written.clone());
        let thread = std::thread::spawn(move || self.run(&flag, &record));
        (stop, written, thread)
    }

    fn run(&self, stop: &AtomicBool, written: &Mutex<Written>) {
        let handed = self.dir.join("outputs.json");
        let mut last = Instant::now();
        let mut id = 0u64;
        while !stop.load(Ordering::SeqCst) {
            id += 1;
            let outputs = fs::read_to_string(&handed).ok().and_then(|t| serde_json::from_str::<Value>(&t).ok());
            let url = (self.route)(outputs.as_ref(), id).unwrap_or_else(|| self.first_url.clone());
            let insert = format!("INSERT INTO writes (id, organization_id) VALUES ({id}, '{}')", organization(id));
            let ok = psql(From::Host(&self.app), &url, &insert).is_ok();
            let mut w = written.lock().expect("the writer's record");
            if ok {
                w.longest_gap = w.longest_gap.max(last.elapsed());
                last = Instant::now();
                w.committed.push(id);
            } else {
                w.failed += 1;
                drop(w);
                std::thread::sleep(Duration::from_millis(100));
            }
        }
    }
}

/// Applies `phase` with a hook that kills the apply (SIGKILL) the first time it sees each step of
/// the migration of `service`, and continues it each time, until it succeeds: each step ran once,
/// in order (`steps`), and after each kill `terrace migrate status` names the step recorded,
/// which `status` checks further. Returns the last apply's standard error.
pub(crate) fn apply_killed_after_each_step(
    lab: &Lab,
    dir: &Path,
    phase: &str,
    service: &str,
    steps: &[&str],
    status: impl Fn(&str, &str),
) -> String {
    let hook = killing_hook(dir);
    let mut killed = 0;
    let said = loop {
        let args = ["apply", "--phase", phase, "--auto-approve", "--migration-hook", &hook];
        let out = terrace_command(lab, dir, &args).output().expect("terrace runs");
        let said = String::from_utf8_lossy(&out.stderr).into_owned();
        assert!(!said.contains("panicked"), "{said}");
        assert!(!said.contains("--allow-data-loss"), "the migration needs no --allow-data-loss:\n{said}");
        if out.status.success() {
            break said;
        }
        // Killed by the hook: the state says where the migration stands, and the next apply
        // continues from there.
        assert!(out.status.code().is_none(), "the apply failed rather than being killed:\n{}", describe(&out));
        killed += 1;
        assert!(killed <= steps.len(), "killed more often than there are steps");
        let recorded = state(dir)["migrations"][service]["step"].as_str().unwrap_or_default().to_owned();
        // The next apply takes the lock at once: the OS let go of it with the killed process.
        eprintln!("day two: apply killed after the migration's step {recorded}");
        let out = terrace(lab, dir, &["migrate", "status"]);
        let text = String::from_utf8_lossy(&out.stdout).into_owned();
        assert!(text.contains(&format!("step: {recorded} done")), "{text}");
        status(&recorded, &text);
    };
    assert_eq!(killed, steps.len(), "killed once after each step");
    let expected: Vec<String> = steps.iter().map(|step| format!("{service} {step}")).collect();
    assert_eq!(hooked(dir), expected, "each step ran once, in order");
    said
}

/// The hook: hands the new outputs to the writer from the switchover on, and kills the apply
/// (SIGKILL, its parent) the first time it sees each step.
fn killing_hook(dir: &Path) -> String {
    let script = dir.join("hook.sh");
    fs::write(
        &script,
        format!(
            "#!/bin/sh\nset -e\ncd {dir}\n\
             if [ -n \"$TERRACE_OUTPUTS\" ]; then cp \"$TERRACE_OUTPUTS\" outputs.json.new && mv outputs.json.new outputs.json; fi\n\
             echo \"$TERRACE_MIGRATION $TERRACE_MIGRATION_STEP\" >> hook.log\n\
             if [ ! -e \"killed-$TERRACE_MIGRATION_STEP\" ]; then touch \"killed-$TERRACE_MIGRATION_STEP\"; kill -9 $PPID; fi\n",
            dir = dir.display()
        ),
    )
    .expect("the hook");
    // Sourced, so that $PPID is terrace (the hook runs under `sh -c`).
    format!(". {}", script.display())
}

/// The steps the hook saw, in order.
fn hooked(dir: &Path) -> Vec<String> {
    fs::read_to_string(dir.join("hook.log")).unwrap_or_default().lines().map(str::to_owned).collect()
}
