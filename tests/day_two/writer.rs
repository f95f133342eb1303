//! What the data-migration tests share: a writer that inserts without pause through a migration
//! and records what it committed, a hook that hands the new outputs to it and kills the apply
//! after each step, and the unlock a killed apply needs.

use std::fs;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use serde_json::Value;

use crate::lab::{Host, Lab, describe};
use crate::support::{From, psql, terrace};

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

/// A writer inserting rows one by one from `app` until stopped; `insert` is the statement for a
/// row, `route` picks its URL.
pub(crate) struct Writer {
    pub app: Host,
    pub dir: PathBuf,
    pub first_url: String,
    pub insert: fn(u64) -> String,
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
            let ok = psql(From::Host(&self.app), &url, &(self.insert)(id)).is_ok();
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

/// The hook: hands the new outputs to the writer from the switchover on, and kills the apply
/// (SIGKILL, its parent) the first time it sees each step.
pub(crate) fn killing_hook(dir: &Path) -> String {
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
pub(crate) fn hooked(dir: &Path) -> Vec<String> {
    fs::read_to_string(dir.join("hook.log")).unwrap_or_default().lines().map(str::to_owned).collect()
}

/// Breaks the lock a killed apply left, as its message says to.
pub(crate) fn unlock(lab: &Lab, dir: &Path) {
    let Ok(lock) = fs::read_to_string(dir.join("terrace.state.json.lock")) else { return };
    let id = serde_json::from_str::<Value>(&lock).expect("a lock record")["id"].as_str().expect("its id").to_owned();
    let out = terrace(lab, dir, &["state", "unlock", &id]);
    assert!(out.status.success(), "{}", describe(&out));
}
