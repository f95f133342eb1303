//! Two CI runners sharing one remote state: separate processes in separate folders, the state in
//! S3 (a real `moto_server`, which implements conditional writes), the cloud in the emulator. A
//! pull request's saved plan is applied after the merge by the other runner; a run that meets the
//! lock fails naming the holder or waits; a plan made before another apply is refused as stale;
//! and an apply whose state server goes away keeps the state locally for `terrace state push`.

use std::net::TcpListener;
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use super::cloud::{Cloud, assert_cloud_matches_state};
use super::support::{Run, stack_copy};

/// A `moto_server` on a loopback port, killed when dropped.
struct Moto {
    child: Child,
    port: u16,
}

impl Moto {
    fn start_on(port: u16) -> Moto {
        let child = Command::new("moto_server")
            .args(["-H", "127.0.0.1", "-p", &port.to_string()])
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("moto_server runs (pip install 'moto[server]==5.2.1', as .ci/setup does)");
        let moto = Moto { child, port };
        let started = Instant::now();
        while std::net::TcpStream::connect(("127.0.0.1", port)).is_err() {
            assert!(started.elapsed() < Duration::from_secs(60), "moto_server did not start");
            std::thread::sleep(Duration::from_millis(100));
        }
        // An unsigned request: moto does not check signatures, and the bucket is the test's.
        let created = Command::new("python3")
            .args([
                "-c",
                &format!("import urllib.request as u; u.urlopen(u.Request('{}/state', method='PUT'))", moto.url()),
            ])
            .status()
            .expect("python3 runs");
        assert!(created.success(), "the state bucket was made");
        moto
    }

    fn start() -> Moto {
        let port = TcpListener::bind("127.0.0.1:0").and_then(|l| l.local_addr()).map(|a| a.port()).expect("a port");
        Moto::start_on(port)
    }

    fn url(&self) -> String {
        format!("http://127.0.0.1:{}", self.port)
    }

    fn stop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

impl Drop for Moto {
    fn drop(&mut self) {
        self.stop();
    }
}

/// A runner's working folder: the stack with its state in the S3 bucket.
fn runner(moto: &Moto) -> tempfile::TempDir {
    let dir = stack_copy();
    let file = dir.path().join("terrace.hcl");
    let text = std::fs::read_to_string(&file).expect("terrace.hcl");
    let backend = format!(
        "  backend \"s3\" {{\n    bucket   = \"state\"\n    key      = \"fastbots/terrace.state.json\"\n    endpoint = \"{}\"\n    region   = \"fsn1\"\n  }}\n",
        moto.url()
    );
    let replaced = text.replace("  backend \"local\" {\n    path = \"terrace.state.json\"\n  }\n", &backend);
    assert_ne!(replaced, text, "the bundled stack's backend block is replaced");
    std::fs::write(&file, replaced).expect("write terrace.hcl");
    dir
}

fn run(cloud: &Cloud, dir: &Path, args: &[&str]) -> Run {
    let mut env = cloud.env();
    env.push(("TERRACE_BACKEND_ACCESS_KEY".into(), "state-access".into()));
    env.push(("TERRACE_BACKEND_SECRET_KEY".into(), "state-secret".into()));
    let pairs: Vec<(&str, &str)> = env.iter().map(|(k, v)| (k.as_str(), v.as_str())).collect();
    super::support::terrace_with_env(dir, args, &pairs)
}

fn spawn(cloud: &Cloud, dir: &Path, args: &[&str]) -> Child {
    cloud
        .command(dir, args)
        .env("TERRACE_BACKEND_ACCESS_KEY", "state-access")
        .env("TERRACE_BACKEND_SECRET_KEY", "state-secret")
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .expect("terrace starts")
}

/// Waits until `child`'s apply has finished its first operation (so it writes state from then on),
/// runs `then`, and returns the exit code and everything it printed.
fn after_first_operation(mut child: Child, then: impl FnOnce()) -> (Option<i32>, String) {
    use std::io::BufRead as _;
    let mut lines = std::io::BufReader::new(child.stderr.take().expect("stderr")).lines();
    let mut seen = Vec::new();
    for line in lines.by_ref() {
        let line = line.expect("a line");
        let done = line.contains("complete after");
        seen.push(line);
        if done {
            break;
        }
    }
    then();
    seen.extend(lines.map(|l| l.expect("a line")));
    let code = child.wait().expect("the apply ends").code();
    (code, seen.join("\n"))
}

#[test]
fn two_runners_share_the_state_the_saved_plan_is_applied_and_stale_plans_are_refused() {
    let cloud = Cloud::start(300);
    let moto = Moto::start();
    let (a, b) = (runner(&moto), runner(&moto));

    // The pull request: runner A saves the plan; after the merge runner B applies that file.
    let planned = run(&cloud, a.path(), &["plan", "--phase", "block-storage", "--out", "plan.json"]);
    assert_eq!(planned.code, 0, "{}", planned.transcript());
    std::fs::copy(a.path().join("plan.json"), b.path().join("plan.json")).expect("the artifact");
    let applied = run(&cloud, b.path(), &["apply", "plan.json"]);
    assert_eq!(applied.code, 0, "{}", applied.transcript());
    assert!(!b.path().join("terrace.state.json").exists(), "the state is in the bucket, not in the folder");
    // Runner A sees what B applied.
    let seen = run(&cloud, a.path(), &["plan", "--detailed-exitcode"]);
    assert_eq!(seen.code, 0, "the state is shared:\n{}", seen.transcript());

    // A plan made before another apply is stale.
    let early = run(&cloud, a.path(), &["plan", "--phase", "managed-db", "--allow-data-loss", "--out", "p2.json"]);
    assert_eq!(early.code, 0, "{}", early.transcript());
    let other = run(&cloud, b.path(), &["apply", "--phase", "managed-db", "--auto-approve", "--allow-data-loss"]);
    assert_eq!(other.code, 0, "{}", other.transcript());
    let stale = run(&cloud, a.path(), &["apply", "p2.json"]);
    assert_eq!(stale.code, 1, "{}", stale.transcript());
    assert!(stale.stderr.contains("the state changed since the plan was made"), "{}", stale.stderr);

    // While B applies, A fails at once naming the holder, or waits with --lock-timeout. (B waits
    // too: A's probing plans hold the lock for a moment each.)
    let mut busy = spawn(
        &cloud,
        b.path(),
        &["apply", "--phase", "read-replicas", "--auto-approve", "--allow-data-loss", "--lock-timeout", "1m"],
    );
    let started = Instant::now();
    let mut blocked;
    loop {
        blocked = run(&cloud, a.path(), &["plan", "--refresh=false"]);
        if blocked.code == 1 || started.elapsed() > Duration::from_secs(20) {
            break;
        }
        std::thread::sleep(Duration::from_millis(100));
    }
    if blocked.code != 1 {
        let b_said = busy.wait_with_output().map(|o| String::from_utf8_lossy(&o.stderr).into_owned());
        panic!("A never met B's lock:\n{}\nB:\n{b_said:?}", blocked.transcript());
    }
    assert!(blocked.stderr.contains("is locked by") && blocked.stderr.contains("for apply"), "{}", blocked.stderr);
    let waited = run(&cloud, a.path(), &["plan", "--refresh=false", "--lock-timeout", "2m"]);
    assert_eq!(waited.code, 0, "{}", waited.transcript());
    let status = busy.wait().expect("B ends");
    assert!(status.success(), "B's apply succeeds");
    assert_cloud_matches_state_in(&cloud, &moto, b.path());
}

/// The bucket's state, through a backend-agnostic command: `terrace state pull` does not exist,
/// so it is migrated to a local file first.
fn assert_cloud_matches_state_in(cloud: &Cloud, _moto: &Moto, dir: &Path) {
    let copy = run(
        cloud,
        dir,
        &["state", "migrate", "--to-backend", "local", "--backend-config", "path=pulled/terrace.state.json"],
    );
    assert_eq!(copy.code, 0, "{}", copy.transcript());
    let pulled = dir.join("pulled");
    assert_cloud_matches_state(cloud, &pulled);
}

#[test]
fn an_apply_whose_state_server_goes_away_keeps_the_state_and_state_push_restores_it() {
    let cloud = Cloud::start(300);
    let mut moto = Moto::start();
    let dir = runner(&moto);
    let child = spawn(&cloud, dir.path(), &["apply", "--phase", "managed-db", "--auto-approve"]);
    // Stop the state server once the apply is under way.
    let (code, stderr) = after_first_operation(child, || moto.stop());
    assert_eq!(code, Some(1), "{stderr}");
    assert!(stderr.contains("everything done is kept in"), "{stderr}");
    let kept = dir.path().join("terrace.state.unsaved.json");
    assert!(kept.exists(), "{stderr}");

    // The server is back (empty: moto keeps nothing); the kept state goes back and the apply continues.
    let moto = Moto::start_on(moto.port);
    let pushed = run(&cloud, dir.path(), &["state", "push", "terrace.state.unsaved.json"]);
    assert_eq!(pushed.code, 0, "{}", pushed.transcript());
    let finished = run(&cloud, dir.path(), &["apply", "--phase", "managed-db", "--auto-approve"]);
    assert_eq!(finished.code, 0, "{}", finished.transcript());
    assert_cloud_matches_state_in(&cloud, &moto, dir.path());
}

/// A throwaway PostgreSQL cluster in a temporary folder, on a loopback port, that a test can stop
/// and start again (the data stays); run as the `postgres` user when the tests run as root.
struct Postgres {
    dir: std::path::PathBuf,
    port: u16,
    bin: std::path::PathBuf,
}

const PG_PASSWORD: &str = "pg-pass-5be1c0de";

impl Postgres {
    fn as_server(&self, program: &str) -> Command {
        let mut command = Command::new("runuser");
        command.args(["-u", "postgres", "--"]).arg(self.bin.join(program));
        command
    }

    fn start() -> Postgres {
        let mut versions: Vec<(u32, std::path::PathBuf)> = std::fs::read_dir("/usr/lib/postgresql")
            .expect("PostgreSQL is installed (.ci/setup installs it)")
            .filter_map(|e| {
                let e = e.ok()?;
                Some((e.file_name().to_str()?.parse().ok()?, e.path().join("bin")))
            })
            .filter(|(_, bin)| bin.join("initdb").exists())
            .collect();
        versions.sort();
        let bin = versions.pop().expect("initdb").1;
        let dir = tempfile::Builder::new().prefix("terrace-cli-pg-").tempdir().expect("a folder").keep();
        std::fs::write(dir.join("password"), PG_PASSWORD).expect("password file");
        let owned = Command::new("chown").args(["-R", "postgres:postgres"]).arg(&dir).status().expect("chown");
        assert!(owned.success(), "the folder belongs to postgres");
        let port = TcpListener::bind("127.0.0.1:0").and_then(|l| l.local_addr()).map(|a| a.port()).expect("a port");
        let cluster = Postgres { dir, port, bin };
        let init = cluster
            .as_server("initdb")
            .arg("--pgdata")
            .arg(cluster.dir.join("data"))
            .args(["--username=terrace", "--auth-local=trust", "--auth-host=scram-sha-256", "--no-sync"])
            .arg("--pwfile")
            .arg(cluster.dir.join("password"))
            .output()
            .expect("initdb runs");
        assert!(init.status.success(), "{}", String::from_utf8_lossy(&init.stderr));
        cluster.up();
        cluster
    }

    fn up(&self) {
        let options = format!("-p {} -k {} -c listen_addresses=127.0.0.1 -c fsync=off", self.port, self.dir.display());
        let started = self
            .as_server("pg_ctl")
            .arg("-D")
            .arg(self.dir.join("data"))
            .args(["-o", &options, "-w", "-l"])
            .arg(self.dir.join("log"))
            .arg("start")
            .output()
            .expect("pg_ctl runs");
        assert!(started.status.success(), "{}", String::from_utf8_lossy(&started.stderr));
    }

    fn down(&self) {
        let _ = self
            .as_server("pg_ctl")
            .arg("-D")
            .arg(self.dir.join("data"))
            .args(["-m", "immediate", "-w", "stop"])
            .output();
    }

    fn url(&self) -> String {
        format!("postgres://terrace:{PG_PASSWORD}@127.0.0.1:{}/postgres", self.port)
    }
}

impl Drop for Postgres {
    fn drop(&mut self) {
        self.down();
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}

#[test]
fn the_pg_backend_keeps_the_state_and_a_lost_server_is_recovered_with_state_push() {
    let cloud = Cloud::start(300);
    let pg = Postgres::start();
    let dir = stack_copy();
    let file = dir.path().join("terrace.hcl");
    let text = std::fs::read_to_string(&file).expect("terrace.hcl");
    // No settings in the file: the connection string (with its password) comes from the environment.
    std::fs::write(
        &file,
        text.replace("backend \"local\" {\n    path = \"terrace.state.json\"\n  }", "backend \"pg\" {}"),
    )
    .expect("write");
    let url = pg.url();
    let with_pg = |args: &[&str]| {
        let mut env = cloud.env();
        env.push(("TERRACE_BACKEND_CONN_STR".into(), url.clone()));
        let pairs: Vec<(&str, &str)> = env.iter().map(|(k, v)| (k.as_str(), v.as_str())).collect();
        super::support::terrace_with_env(dir.path(), args, &pairs)
    };
    let first = with_pg(&["apply", "--phase", "block-storage", "--auto-approve"]);
    assert_eq!(first.code, 0, "{}", first.transcript());
    assert!(!dir.path().join("terrace.state.json").exists(), "the state is in PostgreSQL");
    let again = with_pg(&["plan", "--detailed-exitcode"]);
    assert_eq!(again.code, 0, "{}", again.transcript());

    let child = cloud
        .command(dir.path(), &["apply", "--phase", "managed-db", "--auto-approve", "--allow-data-loss"])
        .env("TERRACE_BACKEND_CONN_STR", &url)
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .expect("terrace starts");
    let (code, stderr) = after_first_operation(child, || pg.down());
    assert_eq!(code, Some(1), "{stderr}");
    assert!(stderr.contains("everything done is kept in"), "{stderr}");
    assert!(!stderr.contains(PG_PASSWORD), "the password stays out of errors: {stderr}");

    pg.up();
    let pushed = with_pg(&["state", "push", "terrace.state.unsaved.json"]);
    assert_eq!(pushed.code, 0, "{}", pushed.transcript());
    let finished = with_pg(&["apply", "--phase", "managed-db", "--auto-approve", "--allow-data-loss"]);
    assert_eq!(finished.code, 0, "{}", finished.transcript());
    let converged = with_pg(&["plan", "--detailed-exitcode"]);
    assert_eq!(converged.code, 0, "{}", converged.transcript());
    for run in [&first, &again, &pushed, &finished, &converged] {
        assert!(!run.transcript().contains(PG_PASSWORD), "{}", run.transcript());
    }
}
