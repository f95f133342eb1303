//! A lab host: a long-lived process, pid 1 of its own pid, network, mount, UTS and IPC namespaces
//! (made by `unshare`), and what runs in them (entered with `nsenter`). Killing that pid 1 ends every
//! process of the host and its network devices with it.

use std::fs;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::Mutex;
use std::time::Duration;

use super::sys::wait_for;

/// The PATH of root on a server (and of its SSH sessions): the lab's stand-ins in /usr/local/sbin come
/// first, where terrace's own scripts go too.
pub(crate) const ROOT_PATH: &str = "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin";

/// The namespaces of a host, as `nsenter` options.
const NAMESPACES: &[&str] = &["--mount", "--uts", "--ipc", "--net", "--pid"];

pub(crate) struct HostProcess {
    /// The `unshare` that made the namespaces; its child is the host's pid 1.
    unshare: Mutex<Child>,
    /// The host's pid 1, as the lab sees it.
    pub(crate) pid: u32,
    /// The host's folder in the lab folder: overlays, logs, staged files.
    pub(crate) dir: PathBuf,
}

impl HostProcess {
    pub(crate) fn spawn(dir: &Path) -> Result<HostProcess, String> {
        fs::create_dir_all(dir).map_err(|e| format!("{}: {e}", dir.display()))?;
        // pid 1 of the host only waits (and reaps the orphans of its namespace, as bash does).
        let child = Command::new("unshare")
            .args(["--net", "--mount", "--uts", "--ipc", "--pid", "--fork", "--mount-proc", "--kill-child"])
            .args(["--propagation", "private", "--", "/bin/bash", "-c"])
            .arg("trap 'exit 0' TERM; while :; do sleep 3600 & wait $!; done")
            .env_clear()
            .env("PATH", ROOT_PATH)
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .map_err(|e| format!("cannot run unshare: {e}"))?;
        let outer = child.id();
        let children = format!("/proc/{outer}/task/{outer}/children");
        let pid = wait_for("a new host's pid 1", Duration::from_secs(10), || {
            fs::read_to_string(&children).ok()?.split_whitespace().next()?.parse().ok()
        });
        Ok(HostProcess { unshare: Mutex::new(child), pid, dir: dir.to_owned() })
    }

    /// `bash -c script` in the host, as root, with the environment of a root login.
    pub(crate) fn command(&self, script: &str) -> Command {
        self.exec(&["/bin/bash", "-c", script])
    }

    /// A program with its arguments in the host, as root, with the environment of a root login.
    pub(crate) fn exec(&self, argv: &[&str]) -> Command {
        let mut command = Command::new("nsenter");
        command
            .arg(format!("--target={}", self.pid))
            .args(NAMESPACES)
            .arg("--wdns=/root")
            .args(["--", "env", "-i", "HOME=/root", "USER=root", "LOGNAME=root", "SHELL=/bin/bash", "LANG=C.UTF-8"])
            .arg(format!("PATH={ROOT_PATH}"))
            .args(argv)
            .stdin(Stdio::null());
        command
    }

    /// Runs a script in the host that must succeed.
    pub(crate) fn script(&self, what: &str, script: &str) -> Result<String, String> {
        let out = self.command(script).output().map_err(|e| format!("{what}: cannot run nsenter: {e}"))?;
        if out.status.success() {
            Ok(String::from_utf8_lossy(&out.stdout).into_owned())
        } else {
            let said = format!("{}{}", String::from_utf8_lossy(&out.stdout), String::from_utf8_lossy(&out.stderr));
            Err(format!("{what} failed ({}): {}", out.status, said.trim_end()))
        }
    }

    /// Ends the host: its pid 1, and so every process of its namespaces.
    pub(crate) fn kill(&self) {
        let mut unshare = self.unshare.lock().unwrap_or_else(std::sync::PoisonError::into_inner);
        let _ = Command::new("kill").args(["-KILL", &self.pid.to_string()]).status();
        let _ = unshare.kill();
        let _ = unshare.wait();
    }
}

impl Drop for HostProcess {
    fn drop(&mut self) {
        self.kill();
    }
}
