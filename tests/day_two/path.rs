//! The seed's whole path, 1 -> 2 -> 3 -> 4 -> 5, applied on live hosts: after each step, from each
//! app host's own address, the outputs the app uses (DATABASE_URL, DB_READ_HOST, REDIS_URL, every
//! shard) accept a login and run a query; what the app wrote before a step is all there after it,
//! through the outputs of the new phase: 1 -> 2 carries the database to its own server, 2 -> 3
//! restarts it for archiving, 3 -> 4 reshards it (each row on the shard the seed's rule routes its
//! organization to, and only there), 4 -> 5 keeps the shards; none needs `--allow-data-loss`;
//! replicas stream; WAL archiving is on from phase 3; Redis has the memory the phase renders;
//! nothing listens where the internet reaches it; and a second plan, refreshed over SSH too, shows
//! no changes. A writer inserts without pause through 2 -> 3, which adds a replica to the live
//! primary: every row it committed is on the primary and on the replica afterwards; its failed
//! writes and longest interruption are printed, figures, not assertions.

use std::collections::BTreeSet;
use std::path::Path;
use std::sync::atomic::Ordering;
use std::time::Duration;

use crate::lab::{self, Host, Lab, Options, connect_command};
use crate::support::{
    From, PATH, outputs, password, psql, psql_ok, redis, stack, state, superuser, terrace, terrace_ok, text, texts,
};
use crate::writer::{Writer, Written};

/// The servers of the app in a phase, by name.
fn app_hosts(lab: &Lab, phase: &str) -> Vec<Host> {
    let names: Vec<String> = match phase {
        "block-storage" | "managed-db" => vec!["fastbots-app".into()],
        "read-replicas" => (0..2).map(|i| format!("fastbots-app-{i}")).collect(),
        _ => (0..3).map(|i| format!("fastbots-app-{i}")).collect(),
    };
    names.iter().map(|name| lab.wait_booted(name, Duration::from_secs(60))).collect()
}

fn us_app_hosts(lab: &Lab) -> Vec<Host> {
    (0..3).map(|i| lab.wait_booted(&format!("fastbots-app-us-{i}"), Duration::from_secs(60))).collect()
}

/// The number of replicas streaming from the primary on `host`.
fn streaming(host: &Host) -> u32 {
    superuser(host, "SELECT count(*) FROM pg_stat_replication WHERE state = 'streaming'").parse().unwrap_or(0)
}

/// WAL archiving is on and works: a switched segment reaches pgBackRest's repository.
fn assert_archiving(host: &Host) {
    assert_eq!(superuser(host, "SHOW archive_mode"), "on", "{}", host.name());
    let before: u64 = superuser(host, "SELECT archived_count FROM pg_stat_archiver").parse().unwrap_or(0);
    superuser(host, "SELECT pg_switch_wal()");
    lab::wait_for(&format!("a WAL segment archived on {}", host.name()), Duration::from_secs(90), || {
        let now: u64 = superuser(host, "SELECT archived_count FROM pg_stat_archiver").parse().unwrap_or(0);
        (now > before).then_some(())
    });
}

/// Redis's memory limit, in bytes, as the server has it.
fn maxmemory(from: From<'_>, url: &str) -> u64 {
    let reply = redis(from, url, "CONFIG GET maxmemory").expect("CONFIG GET maxmemory");
    reply.lines().nth(1).and_then(|v| v.trim().parse().ok()).unwrap_or_else(|| panic!("maxmemory in {reply:?}"))
}

/// How many rows the app wrote under `marker`, read through a database URL.
fn rows(from: From<'_>, url: &str, marker: &str) -> String {
    psql_ok(from, url, &format!("SELECT count(*) FROM day_two_checks WHERE marker = '{marker}'"))
}

/// A write and a read through a database URL, as the app would; the write is remembered in
/// `written`, to be found again after the next step.
fn write_and_read(from: From<'_>, url: &str, marker: &str, written: &mut Vec<(String, String)>) {
    written.push((url.to_owned(), marker.to_owned()));
    let sql = format!(
        "CREATE TABLE IF NOT EXISTS day_two_checks (organization_id text, marker text); \
         INSERT INTO day_two_checks VALUES ('{marker}', '{marker}'); \
         SELECT count(*) FROM day_two_checks WHERE marker = '{marker}'"
    );
    assert_eq!(psql_ok(from, url, &sql), "1", "{marker}");
}

/// The ids of the writer's rows a database holds, through `conninfo`.
fn written_ids(from: From<'_>, conninfo: &str) -> Result<BTreeSet<u64>, String> {
    let ids = psql(from, conninfo, "SELECT coalesce(string_agg(id::text, ','), '') FROM writes")?;
    Ok(ids.split(',').filter_map(|id| id.parse().ok()).collect())
}

/// A writer inserting without pause from the app server through DATABASE_URL (phase 2's, which
/// phase 3 keeps), into a table of its own.
fn start_writer(lab: &Lab, dir: &Path) -> impl FnOnce() -> Written {
    let app = lab.wait_booted("fastbots-app", Duration::from_secs(60));
    let url = text(&outputs(lab, dir), "DATABASE_URL").to_owned();
    psql_ok(
        From::Host(&app),
        &url,
        "CREATE TABLE writes (id bigint PRIMARY KEY, organization_id text NOT NULL, at timestamptz NOT NULL DEFAULT now())",
    );
    let writer = Writer { app, dir: dir.to_path_buf(), first_url: url, route: |_, _| None };
    let (stop, written, thread) = writer.start();
    move || {
        stop.store(true, Ordering::SeqCst);
        thread.join().expect("the writer");
        std::mem::take(&mut *written.lock().expect("the writer's record"))
    }
}

/// Every row the writer committed during 2 -> 3 is on the primary, and on the replica once it has
/// caught up; the figures are printed.
fn assert_written(lab: &Lab, outputs: &serde_json::Map<String, serde_json::Value>, written: &Written) {
    let app = lab.wait_booted("fastbots-app-0", Duration::from_secs(60));
    let url = text(outputs, "DATABASE_URL");
    let missing = |present: &BTreeSet<u64>| -> Vec<u64> {
        written.committed.iter().filter(|id| !present.contains(id)).copied().collect()
    };
    let on_primary = written_ids(From::Host(&app), url).expect("the writer's rows on the primary");
    assert_eq!(missing(&on_primary), Vec::<u64>::new(), "committed rows lost on the primary during 2 -> 3");
    let replica = format!(
        "host={} port=6432 dbname=business_logic_app user=business_logic_user password={}",
        text(outputs, "DB_READ_HOST"),
        password(url)
    );
    lab::wait_for("the writer's rows on the replica", Duration::from_secs(120), || {
        written_ids(From::Host(&app), &replica).ok().filter(|present| missing(present).is_empty())
    });
    // The primary was not restarted (it archives WAL from phase 2 on with a command that keeps
    // nothing, so continuous backups take a reload, and it is in its placement group from the
    // start): every row the writer committed is younger than the primary's postmaster.
    let around = psql_ok(
        From::Host(&app),
        url,
        "SELECT count(*) FILTER (WHERE at < pg_postmaster_start_time()) || '|' || count(*) FROM writes",
    );
    let (before, all) = around.split_once('|').expect("two counts");
    assert!(before == "0" && all != "0", "rows written before the primary's start|all rows: {around}");
    eprintln!(
        "day two: 2 -> 3 added a replica with {} rows written during it, {} failed writes; the writer's longest \
         interruption: {:.1} s",
        written.committed.len(),
        written.failed,
        written.longest_gap.as_secs_f64()
    );
}

#[test]
fn the_seed_path_runs_on_live_hosts_with_every_consumer_reaching_its_service() {
    lab::isolated_with(Options { timeout: Duration::from_secs(2400), ..Options::default() }, |lab| {
        let dir = stack(lab);
        // What the app wrote in the step before, and where: checked again after the next step.
        let mut before: Vec<(String, String)> = Vec::new();
        for (step, phase) in PATH.into_iter().enumerate() {
            // 2 -> 3 restarts the live primary for archiving: the app writes through it.
            let writer = (phase == "read-replicas").then(|| start_writer(lab, &dir));
            let args = ["apply", "--phase", phase, "--auto-approve"];
            let applied = terrace_ok(lab, &dir, &args);
            let written = writer.map(|stop| stop());
            eprintln!("day two: applied {phase}");
            let outputs = outputs(lab, &dir);
            if let Some(written) = &written {
                assert_written(lab, &outputs, written);
            }
            let marker = format!("step-{step}");
            // The database stayed, or was carried: every row the app wrote before this step is
            // there, through the URL the app uses now.
            let app = &app_hosts(lab, phase)[0];
            for (url, written) in &before {
                if phase == "sharding" {
                    // Resharded: on the shard the rule routes the row's organization to, only there.
                    let shards = texts(&outputs, "SHARD_DATABASE_URLS");
                    let routed = terrace::compile::shard::route(written, shards.len());
                    for (i, shard) in shards.iter().enumerate() {
                        let expected = if i == routed { "1" } else { "0" };
                        assert_eq!(rows(From::Host(app), shard, written), expected, "{written} on shard {i}");
                    }
                    continue;
                }
                let url = if phase == "managed-db" { text(&outputs, "DATABASE_URL") } else { url.as_str() };
                assert_eq!(rows(From::Host(app), url, written), "1", "{phase}: the row {written} after the step");
            }
            before.clear();
            match phase {
                "block-storage" => {
                    let app = &app_hosts(lab, phase)[0];
                    let url = text(&outputs, "DATABASE_URL");
                    assert_eq!(text(&outputs, "DB_HOST"), "172.17.0.1", "the app's containers reach the host there");
                    // The app runs in containers, on the docker0 bridge.
                    write_and_read(From::Container(app), url, &format!("{marker}-container"), &mut before);
                    write_and_read(From::Host(app), url, &format!("{marker}-host"), &mut before);
                    // PostgreSQL listens on the host's loopback and bridge only: not on its public
                    // address, so the internet cannot reach it although no firewall is in front.
                    let reach = lab.from_internet(&connect_command(app.public_ip(), 5432));
                    assert!(!reach.status.success(), "PostgreSQL must not be reachable on {}", app.public_ip());
                    let listening = app.run_ok("ss -Htln 'sport = :5432'");
                    assert!(
                        !listening.contains("0.0.0.0:5432") && !listening.contains(&app.public_ip().to_string()),
                        "{listening}"
                    );
                }
                "managed-db" | "read-replicas" => {
                    let apps = app_hosts(lab, phase);
                    let url = text(&outputs, "DATABASE_URL");
                    let redis_url = text(&outputs, "REDIS_URL");
                    for app in &apps {
                        write_and_read(From::Host(app), url, &format!("{marker}-{}", app.name()), &mut before);
                        assert_eq!(redis(From::Host(app), redis_url, "PING").as_deref(), Ok("PONG"));
                    }
                    let memory = if phase == "managed-db" { 256 } else { 1024 };
                    assert_eq!(
                        maxmemory(From::Host(&apps[0]), redis_url),
                        memory * 1024 * 1024,
                        "{phase}: Redis's memory"
                    );
                    let primary = lab.wait_booted("fastbots-main-primary", Duration::from_secs(60));
                    if phase == "managed-db" {
                        // The database moved off the app server: it is stopped there.
                        let unit = format!("postgresql@{}-main.service", lab.pg_version());
                        let old = apps[0].run(&format!("systemctl is-active {unit}"));
                        assert!(!old.status.success(), "the app server's PostgreSQL is stopped");
                        let kept = &state(&dir)["migrations"]["postgres.main"];
                        assert_eq!(kept["step"], "switchover", "the migration is done and keeps the old copy: {kept}");
                        // Archiving is ready for phase 3, keeping nothing yet.
                        assert_eq!(superuser(&primary, "SHOW archive_mode"), "on");
                        assert_eq!(superuser(&primary, "SHOW archive_command"), "/bin/true");
                    } else {
                        // The replica streams, the app reads there what it wrote on the primary.
                        lab::wait_for("the replica to stream", Duration::from_secs(120), || {
                            (streaming(&primary) == 1).then_some(())
                        });
                        assert_archiving(&primary);
                        let read_host = text(&outputs, "DB_READ_HOST");
                        let conninfo = format!(
                            "host={read_host} port=6432 dbname=business_logic_app user=business_logic_user password={}",
                            password(url)
                        );
                        let written = format!("{marker}-{}", apps[0].name());
                        lab::wait_for("the write to reach the replica", Duration::from_secs(60), || {
                            let sql = format!(
                                "SELECT pg_is_in_recovery(), count(*) FROM day_two_checks WHERE marker = '{written}'"
                            );
                            (psql(From::Host(&apps[1]), &conninfo, &sql).ok().as_deref() == Some("t|1")).then_some(())
                        });
                    }
                }
                "sharding" | "multi-region" => {
                    let apps = app_hosts(lab, phase);
                    // postgres.main was resharded; it is kept, stopped, until --finish-migration.
                    let kept = &state(&dir)["migrations"]["postgres.main"];
                    assert_eq!(kept["step"], "split", "the reshard is done and keeps the old copy: {kept}");
                    let urls = texts(&outputs, "SHARD_DATABASE_URLS");
                    let hosts = texts(&outputs, "SHARD_HOSTS");
                    assert_eq!((urls.len(), hosts.len()), (3, 3));
                    for (i, url) in urls.iter().enumerate() {
                        assert!(url.contains(&format!("@{}:6432/", hosts[i])), "shard {i}'s URL names its host");
                        for app in &apps {
                            write_and_read(From::Host(app), url, &format!("{marker}-{}", app.name()), &mut before);
                        }
                        let primary = lab.wait_booted(&format!("fastbots-shard-{i}-primary"), Duration::from_secs(60));
                        assert_archiving(&primary);
                    }
                    let redis_url = text(&outputs, "REDIS_URL");
                    assert_eq!(maxmemory(From::Host(&apps[0]), redis_url), 1024 * 1024 * 1024);
                    if phase == "multi-region" {
                        assert_us_region(lab, &outputs, &marker, &mut before);
                    }
                }
                _ => unreachable!("a phase of the path"),
            }
            // A second plan, refreshed from the API and over SSH, finds nothing to do.
            let replan = terrace(lab, &dir, &["plan", "--detailed-exitcode"]);
            assert_eq!(
                replan.status.code(),
                Some(0),
                "{phase}: a second plan changes something:\n{}\n(apply said:\n{applied})",
                String::from_utf8_lossy(&replan.stdout)
            );
        }
    });
}

/// Phase 5's second region: the US app servers write to the EU shard primaries over the public
/// internet with TLS (and only with TLS), read from their shard's replica in Ashburn, which streams
/// from its primary, and use their own region's Redis.
fn assert_us_region(
    lab: &Lab,
    outputs: &serde_json::Map<String, serde_json::Value>,
    marker: &str,
    before: &mut Vec<(String, String)>,
) {
    let apps = us_app_hosts(lab);
    let urls = texts(outputs, "SHARD_DATABASE_URLS_US");
    let replicas = texts(outputs, "SHARD_READ_HOSTS_US");
    assert_eq!((urls.len(), replicas.len()), (3, 3));
    for (i, url) in urls.iter().enumerate() {
        assert!(url.ends_with("?sslmode=require"), "a URL over the internet asks for TLS");
        let primary = lab.wait_booted(&format!("fastbots-shard-{i}-primary"), Duration::from_secs(60));
        lab::wait_for(&format!("shard {i}'s US replica to stream"), Duration::from_secs(180), || {
            (streaming(&primary) == 1).then_some(())
        });
        for app in &apps {
            write_and_read(From::Host(app), url, &format!("{marker}-{}", app.name()), before);
            // Without TLS, the same login is refused (hostssl only, in PgBouncer and PostgreSQL).
            let plain = url.replace("sslmode=require", "sslmode=disable");
            assert!(psql(From::Host(app), &plain, "SELECT 1").is_err(), "a login without TLS from {}", app.name());
            let direct = plain.replace(":6432/", ":5432/");
            assert!(psql(From::Host(app), &direct, "SELECT 1").is_err(), "PostgreSQL without TLS from {}", app.name());
            let read = format!(
                "host={} port=6432 dbname=business_logic_app user=business_logic_user sslmode=require password={}",
                replicas[i],
                password(url)
            );
            assert_eq!(psql_ok(From::Host(app), &read, "SELECT pg_is_in_recovery()"), "t", "{}", app.name());
        }
    }
    let redis_url = text(outputs, "REDIS_US_URL");
    for app in &apps {
        assert_eq!(redis(From::Host(app), redis_url, "PING").as_deref(), Ok("PONG"), "{}", app.name());
    }
    assert_eq!(maxmemory(From::Host(&apps[0]), redis_url), 1024 * 1024 * 1024);
}
