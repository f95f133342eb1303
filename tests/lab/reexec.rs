//! Isolation by re-exec: a lab test runs again, alone, in a new network, mount and pid namespace (the
//! lab), and the test that started it only streams its output and checks its status. When the lab's
//! first process ends, the kernel ends every process of the lab; what it cannot end (loop devices,
//! the lab folder) is cleaned up here.

use std::io::{BufRead as _, BufReader, Read};
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use super::storage::detach_loops_under;
use super::sys::{run, wait_for};

/// Set (to 1) in the lab's process, and the lab folder.
pub(crate) const LAB_ENV: &str = "TERRACE_LAB";
pub(crate) const LAB_DIR_ENV: &str = "TERRACE_LAB_DIR";
/// Keeps the lab folder of a test that passed too (a failed test's is always kept).
pub(crate) const KEEP_ENV: &str = "TERRACE_LAB_KEEP";
/// Keeps a failed lab running, for a look inside, until `resume` appears in its folder (or the test's
/// timeout).
pub(crate) const PAUSE_ENV: &str = "TERRACE_LAB_PAUSE";

/// The name libtest gave the current test's thread, which `--exact` selects it by.
fn test_name() -> String {
    let name = std::thread::current().name().map(str::to_owned);
    match name {
        Some(name) if name != "main" => name,
        _ => panic!("lab: a lab test must run on libtest's thread named after it (not on `main`)"),
    }
}

fn forward(stream: impl Read + Send + 'static, to_stderr: bool) -> std::thread::JoinHandle<()> {
    // Printed with print!/eprint!, so that libtest captures it like the test's own output.
    std::thread::spawn(move || {
        for line in BufReader::new(stream).lines() {
            let Ok(line) = line else { break };
            if to_stderr {
                eprintln!("{line}");
            } else {
                println!("{line}");
            }
        }
    })
}

/// Runs the current test again in a lab, and fails when it fails there.
pub(crate) fn outer(timeout: Duration) {
    let name = test_name();
    let uid = run(Command::new("id").arg("-u"));
    assert_eq!(
        String::from_utf8_lossy(&uid.stdout).trim(),
        "0",
        "lab: the lab makes namespaces, bridges and loop devices: run the day_two tests as root, as CI does"
    );
    let folder: String = name.chars().map(|c| if c.is_ascii_alphanumeric() { c } else { '_' }).collect();
    let dir = PathBuf::from(env!("CARGO_TARGET_TMPDIR")).join("lab").join(format!("{folder}-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).expect("lab: the lab folder");
    let exe = std::env::current_exe().expect("lab: the test binary");
    let started = Instant::now();
    let mut child = Command::new("unshare")
        .args(["--net", "--mount", "--pid", "--fork", "--mount-proc", "--kill-child", "--propagation", "private", "--"])
        .arg(exe)
        .args(["--exact", &name, "--nocapture", "--test-threads=1", "--include-ignored"])
        .env(LAB_ENV, "1")
        .env(LAB_DIR_ENV, &dir)
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("lab: cannot run unshare (util-linux)");
    if std::env::var_os(PAUSE_ENV).is_some() {
        let unshare = child.id();
        let first = wait_for("the lab's pid 1", Duration::from_secs(10), || {
            let children = std::fs::read_to_string(format!("/proc/{unshare}/task/{unshare}/children")).ok()?;
            children.split_whitespace().next().map(str::to_owned)
        });
        eprintln!("lab: {name} runs in a lab whose pid 1 is {first}: `nsenter --target {first} --all` enters it");
    }
    let out = forward(child.stdout.take().expect("stdout"), false);
    let err = forward(child.stderr.take().expect("stderr"), true);
    let status = loop {
        if let Some(status) = child.try_wait().expect("lab: waiting for the lab") {
            break Some(status);
        }
        if started.elapsed() > timeout {
            // unshare --kill-child ends the lab's first process, and with it the whole lab.
            let _ = child.kill();
            let _ = child.wait();
            break None;
        }
        std::thread::sleep(Duration::from_millis(50));
    };
    let _ = out.join();
    let _ = err.join();
    cleanup(&dir, status.is_some_and(|s| s.success()));
    match status {
        None => panic!("lab: {name} did not end within {timeout:?}; it was stopped (folder {})", dir.display()),
        Some(status) => assert!(
            status.success(),
            "lab: {name} failed in its lab ({status}); its output is above, its folder is {}",
            dir.display()
        ),
    }
    eprintln!("lab: {name} took {:.1} s", started.elapsed().as_secs_f64());
}

fn cleanup(dir: &Path, passed: bool) {
    detach_loops_under(dir);
    if passed && std::env::var_os(KEEP_ENV).is_none() {
        let _ = std::fs::remove_dir_all(dir);
    } else {
        eprintln!("lab: the lab folder is kept: {}", dir.display());
    }
}
