//! Hosts that go wrong, on live hosts: a file edited by hand is drift that the plan shows and apply
//! puts back; a server presenting another host key is refused, naming it; an unreachable server
//! fails the apply, naming it; an apply killed during a reload leaves the host pending, and the
//! next one finishes it. Each time the state still says what each host has.

use std::fs;
use std::path::Path;
use std::time::Duration;

use serde_json::Value;

use crate::lab::{self, Host, Lab, describe};
use crate::support::{
    From, outputs, psql_ok, redis, stack, state, superuser, terrace, terrace_command, terrace_ok, text,
};

const REDIS_CONF: &str = "/etc/redis/terrace.conf";
const POSTGRESQL_CONF: &str = "/etc/terrace/postgres/postgresql.conf";

/// The recorded content of one file of a host.
fn recorded_file(dir: &Path, host: &str, path: &str) -> Value {
    let state = state(dir);
    let files = state["resources"][host]["attributes"]["file"].as_array().cloned().unwrap_or_default();
    files.into_iter().find(|f| f["path"] == path).unwrap_or(Value::Null)
}

/// The SHA-256 of a file on a host.
fn sha256_on(host: &Host, path: &str) -> String {
    host.run_ok(&format!("sha256sum {path}")).split_whitespace().next().unwrap_or_default().to_owned()
}

/// Rewrites a phase file of the stack.
fn edit(dir: &Path, file: &str, from: &str, to: &str) {
    let path = dir.join(file);
    let text = fs::read_to_string(&path).expect("the phase file");
    assert!(text.contains(from), "{file} holds {from:?}");
    fs::write(&path, text.replacen(from, to, 1)).expect("write the phase file");
}

fn stderr(output: &std::process::Output) -> String {
    String::from_utf8_lossy(&output.stderr).into_owned()
}

#[test]
fn hosts_that_drift_change_keys_vanish_or_are_interrupted_are_named_and_recovered() {
    lab::isolated_with(lab::Options { timeout: Duration::from_secs(1500), ..lab::Options::default() }, |lab| {
        let dir = stack(lab);
        terrace_ok(lab, &dir, &["apply", "--phase", "managed-db", "--auto-approve", "--allow-data-loss"]);
        let cache = lab.wait_booted("fastbots-cache-primary", Duration::from_secs(60));
        let database = lab.wait_booted("fastbots-main-primary", Duration::from_secs(60));
        let app = lab.wait_booted("fastbots-app", Duration::from_secs(60));
        let redis_url = text(&outputs(lab, &dir), "REDIS_URL").to_owned();

        edited_by_hand(lab, &dir, &cache, &app, &redis_url);
        wrong_host_key(lab, &dir, &cache);
        unreachable(lab, &dir, &cache);
        let database_url = text(&outputs(lab, &dir), "DATABASE_URL").to_owned();
        killed_during_a_reload(lab, &dir, &database, &app, &database_url);
    });
}

/// A file edited on the server is drift: the plan names it and shows the diff back to terrace's
/// version, apply puts that version back and makes Redis use it.
fn edited_by_hand(lab: &Lab, dir: &Path, cache: &Host, app: &Host, redis_url: &str) {
    let recorded = recorded_file(dir, "redis.cache.host.primary", REDIS_CONF);
    cache.run_ok(&format!("sed -i 's/^maxmemory 256mb$/maxmemory 512mb/' {REDIS_CONF}"));
    let plan = terrace(lab, dir, &["plan", "--detailed-exitcode"]);
    let shown = String::from_utf8_lossy(&plan.stdout);
    assert_eq!(plan.status.code(), Some(2), "drift is a change:\n{}", describe(&plan));
    assert!(shown.contains("changed on the server since terrace wrote it"), "{shown}");
    assert!(shown.contains("-maxmemory 512mb") && shown.contains("+maxmemory 256mb"), "{shown}");
    assert!(!shown.contains(&super::support::password(redis_url)), "the password is masked");
    terrace_ok(lab, dir, &["apply", "--auto-approve"]);
    assert_eq!(sha256_on(cache, REDIS_CONF), recorded["sha256"].as_str().unwrap_or_default());
    let reply = redis(From::Host(app), redis_url, "CONFIG GET maxmemory").expect("CONFIG GET");
    assert!(reply.contains(&(256u64 * 1024 * 1024).to_string()), "{reply}");
    let again = terrace(lab, dir, &["plan", "--detailed-exitcode"]);
    assert_eq!(again.status.code(), Some(0), "{}", describe(&again));
}

/// A server that presents another host key than the one terrace gave it is refused, named, and
/// left as it is; the state keeps what terrace last put there.
fn wrong_host_key(lab: &Lab, dir: &Path, cache: &Host) {
    let before = state(dir)["resources"]["redis.cache.host.primary"].clone();
    cache.run_ok(
        "rm -f /etc/ssh/ssh_host_ed25519_key* && ssh-keygen -q -t ed25519 -N '' -f /etc/ssh/ssh_host_ed25519_key \
         && systemctl restart ssh.service",
    );
    edit(dir, "managed-db.hcl", "memory_mb   = 256", "memory_mb   = 384");
    let applied = terrace(lab, dir, &["apply", "--auto-approve"]);
    assert_eq!(applied.status.code(), Some(1), "{}", describe(&applied));
    let said = stderr(&applied);
    assert!(said.contains("redis.cache.host.primary") && said.contains("host key"), "{said}");
    assert!(cache.run_ok(&format!("cat {REDIS_CONF}")).contains("maxmemory 256mb"), "nothing was written");
    let after = state(dir)["resources"]["redis.cache.host.primary"].clone();
    assert_eq!(after["attributes"]["file"], before["attributes"]["file"], "the record is what the server holds");
    assert!(after["attributes"]["pending"].is_null());
    // The key terrace gave it back (as a rebuild from its first boot would do): the apply goes on.
    let key = lab.api().user_data(cache.id()).expect("user_data").unwrap_or_default();
    let private = key
        .lines()
        .find_map(|l| l.trim().strip_prefix("ed25519_private: "))
        .map(|v| serde_json::from_str::<String>(v).expect("a quoted key"))
        .expect("the host key in the user_data");
    fs::write(lab.dir().join("host_key"), private).expect("write the key");
    cache.run_ok(&format!(
        "install -m 0600 {} /etc/ssh/ssh_host_ed25519_key && ssh-keygen -y -f /etc/ssh/ssh_host_ed25519_key > /etc/ssh/ssh_host_ed25519_key.pub && systemctl restart ssh.service",
        lab.dir().join("host_key").display()
    ));
    lab::wait_for("sshd to take its key back", Duration::from_secs(30), || {
        terrace(lab, dir, &["apply", "--auto-approve"]).status.success().then_some(())
    });
    assert!(cache.run_ok(&format!("cat {REDIS_CONF}")).contains("maxmemory 384mb"));
}

/// A server that does not answer fails the apply, named; its record stays what it holds.
fn unreachable(lab: &Lab, dir: &Path, cache: &Host) {
    let before = state(dir)["resources"]["redis.cache.host.primary"].clone();
    cache.run_ok("systemctl stop ssh.service");
    edit(dir, "managed-db.hcl", "memory_mb   = 384", "memory_mb   = 320");
    let applied = terrace(lab, dir, &["apply", "--auto-approve"]);
    assert_eq!(applied.status.code(), Some(1), "{}", describe(&applied));
    let said = stderr(&applied);
    assert!(said.contains("redis.cache.host.primary") && said.contains(&cache.public_ip().to_string()), "{said}");
    let after = state(dir)["resources"]["redis.cache.host.primary"].clone();
    assert_eq!(after["attributes"]["file"], before["attributes"]["file"]);
    assert!(cache.run_ok(&format!("cat {REDIS_CONF}")).contains("maxmemory 384mb"));
    // A plan says it could not look, and plans against the record.
    let plan = terrace(lab, dir, &["plan"]);
    assert!(String::from_utf8_lossy(&plan.stdout).contains("was not refreshed over SSH"), "{}", describe(&plan));
    cache.run_ok("systemctl start ssh.service");
    lab::wait_for("sshd to answer again", Duration::from_secs(30), || {
        terrace(lab, dir, &["apply", "--auto-approve"]).status.success().then_some(())
    });
    assert!(cache.run_ok(&format!("cat {REDIS_CONF}")).contains("maxmemory 320mb"));
}

/// An apply killed while PostgreSQL reloads leaves the host pending in the state, with the files it
/// wrote; the next plan runs the steps again (not mistaking its own files for drift), and the next
/// apply finishes the change.
fn killed_during_a_reload(lab: &Lab, dir: &Path, database: &Host, app: &Host, database_url: &str) {
    // What the app wrote before is all there after: the interrupted convergence loses nothing.
    let sql =
        "CREATE TABLE IF NOT EXISTS faults_checks (n int); INSERT INTO faults_checks SELECT generate_series(1, 500)";
    psql_ok(From::Host(app), database_url, sql);
    // A reload that takes its time, so the apply can be killed during it.
    database.run_ok(
        "mv /usr/local/sbin/systemctl /usr/local/sbin/systemctl.lab && cat > /usr/local/sbin/systemctl <<'EOF'\n\
         #!/bin/bash\n\
         if [[ $1 == reload && $2 == postgresql@* ]]; then echo $$ > /root/reload-pid; touch /root/reload-started; exec sleep 600; fi\n\
         exec /usr/local/sbin/systemctl.lab \"$@\"\n\
         EOF\n\
         chmod 0755 /usr/local/sbin/systemctl",
    );
    // A bigger volume: a larger max_wal_size, which PostgreSQL takes with a reload.
    edit(dir, "managed-db.hcl", "storage_gb  = 40", "storage_gb  = 60");
    let mut child = terrace_command(lab, dir, &["apply", "--auto-approve"]).spawn().expect("terrace starts");
    lab::wait_for("the reload to start", Duration::from_secs(180), || {
        database.run("test -e /root/reload-started").status.success().then_some(())
    });
    child.kill().expect("kill -9 the apply");
    let _ = child.wait();
    // The killed run's lock went with it: the next run is not blocked.
    let next = terrace(lab, dir, &["plan", "--refresh=false"]);
    assert!(!stderr(&next).contains("is locked by"), "{}", describe(&next));
    database.run_ok("kill $(cat /root/reload-pid); mv /usr/local/sbin/systemctl.lab /usr/local/sbin/systemctl");
    let record = state(dir)["resources"]["postgres.main.host.primary"].clone();
    let pending = &record["attributes"]["pending"];
    assert!(
        pending["steps"].as_array().is_some_and(|s| s.iter().any(|step| step["step"] == "postgres_reload")),
        "the interrupted reload is recorded: {pending}"
    );
    // The file is already written; it is terrace's, not drift.
    assert!(database.run_ok(&format!("cat {POSTGRESQL_CONF}")).contains("max_wal_size = 6144MB"));
    let plan = terrace(lab, dir, &["plan", "--detailed-exitcode"]);
    let shown = String::from_utf8_lossy(&plan.stdout);
    assert_eq!(plan.status.code(), Some(2), "{}", describe(&plan));
    assert!(shown.contains("an earlier apply stopped while converging this host"), "{shown}");
    assert!(!shown.contains("changed on the server since terrace wrote it"), "{shown}");
    terrace_ok(lab, dir, &["apply", "--auto-approve"]);
    assert_eq!(superuser(database, "SHOW max_wal_size"), "6GB");
    let kept = psql_ok(From::Host(app), database_url, "SELECT count(*), sum(n) FROM faults_checks");
    assert_eq!(kept, "500|125250", "every row written before the interrupted apply");
    let record = state(dir)["resources"]["postgres.main.host.primary"].clone();
    assert!(record["attributes"]["pending"].is_null(), "finished: {record}");
    let written = recorded_file(dir, "postgres.main.host.primary", POSTGRESQL_CONF);
    assert_eq!(sha256_on(database, POSTGRESQL_CONF), written["sha256"].as_str().unwrap_or_default());
    let again = terrace(lab, dir, &["plan", "--detailed-exitcode"]);
    assert_eq!(again.status.code(), Some(0), "{}", describe(&again));
}
