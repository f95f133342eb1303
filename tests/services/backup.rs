//! Backups against a real S3 server (moto): the rendered backup script dumps the database,
//! uploads the dump and prunes the old ones; the rendered restore procedure, run as written,
//! brings the data back; with continuous archiving, pgBackRest archives the WAL to the bucket
//! (over TLS) and the point-in-time steps of the procedure recover to a chosen moment.

use std::collections::BTreeMap;
use std::fs;
use std::net::TcpStream;
use std::path::Path;
use std::process::Command;
use std::time::Duration;

use terrace::services::{BackupSchedule, BackupSpec, postgres, restore_procedure};

use crate::postgres::{APP_PASSWORD, Primary, assert_script, psql, start_primary, superuser, tempdir};
use crate::support::{Process, Server, pg_bin, program, run, run_ok, wait_for};

/// moto's S3 on a free port, over TLS when given a certificate and key.
fn moto(dir: &Path, tls: Option<(&Path, &Path)>) -> (u16, Process) {
    let port = crate::support::free_port();
    let mut command = Command::new(program("moto_server"));
    command.args(["-H", "127.0.0.1", "-p", &port.to_string()]);
    if let Some((cert, key)) = tls {
        command.arg("-c").arg(cert).arg("-k").arg(key);
    }
    let process = Process::spawn("moto_server", &mut command, &dir.join("moto.log"));
    wait_for("moto_server to listen", Duration::from_secs(30), || TcpStream::connect(("127.0.0.1", port)).is_ok());
    (port, process)
}

fn backup_spec(endpoint: String, continuous: bool) -> BackupSpec {
    BackupSpec {
        bucket: "backups".into(),
        endpoint,
        region: "us-east-1".into(),
        access_key: "testing".into(),
        secret_key: "testing".into(),
        prefix: "postgres/main".into(),
        schedule: BackupSchedule::Daily,
        retention_days: 30,
        continuous,
        pitr_days: 7,
    }
}

/// s3cmd with the rendered configuration.
fn s3cmd(server: &Server, args: &[&str]) -> String {
    run_ok(
        Command::new(program("s3cmd"))
            .arg(format!("--config={}", server.path("/etc/terrace/backup/s3cfg").display()))
            .args(args),
    )
}

/// The environment the rendered scripts and commands run with: PostgreSQL's binaries first, and
/// libpq pointed at the test's socket and port, where the real server has the defaults.
fn pg_env(primary: &Primary) -> BTreeMap<&'static str, String> {
    BTreeMap::from([
        ("PGHOST", primary.server.path("/var/run/postgresql").display().to_string()),
        ("PGPORT", primary.port.to_string()),
    ])
}

/// The commands of some steps of a section of the restore procedure: the lines indented by five
/// spaces under each numbered step.
fn procedure_commands(text: &str, section: &str, steps: &[u32]) -> Vec<String> {
    let mut in_section = false;
    let mut step = 0;
    let mut commands = Vec::new();
    for line in text.lines() {
        if ["Restore a dump", "Point-in-time recovery"].contains(&line) {
            in_section = line == section;
            step = 0;
            continue;
        }
        if let Some((number, _)) = line.split_once(". ")
            && let Ok(number) = number.parse()
        {
            step = number;
            continue;
        }
        if in_section && steps.contains(&step) && line.starts_with("     ") {
            commands.push(line.trim().to_owned());
        }
    }
    commands
}

/// Runs commands of the procedure as root, as written but for the moved paths.
fn run_procedure(server: &Server, commands: &[String], env: &BTreeMap<&str, String>) -> String {
    let (_, bin) = pg_bin();
    let script = format!("set -euxo pipefail\n{}\n", server.rewrite(&commands.join("\n")));
    let out = run(Command::new("bash")
        .args(["-c", &script])
        .env("PATH", format!("{}:{}:/usr/sbin:/usr/bin:/sbin:/bin", server.root.join("stubs").display(), bin.display()))
        .envs(env));
    let stdout = String::from_utf8_lossy(&out.stdout).into_owned();
    assert!(
        out.status.success(),
        "the restore procedure failed:\n{script}\n--- stdout ---\n{stdout}\n--- stderr ---\n{}",
        String::from_utf8_lossy(&out.stderr)
    );
    stdout
}

/// Data of several types, owned by the application user, and its contents as text.
fn seed_data(port: u16) {
    psql(
        "127.0.0.1",
        port,
        "app",
        APP_PASSWORD,
        "appdb",
        "CREATE TABLE documents (id serial PRIMARY KEY, title text NOT NULL, body jsonb, raw bytea, at timestamptz);
         CREATE INDEX documents_title ON documents (title);
         CREATE VIEW titles AS SELECT id, title FROM documents;
         INSERT INTO documents (title, body, raw, at)
           SELECT 'doc ' || i || ' it''s \"quoted\" ü', jsonb_build_object('n', i, 'tags', ARRAY['a', 'b']),
                  decode(md5(i::text), 'hex'), '2025-01-01 00:00:00+00'::timestamptz + i * interval '1 minute'
           FROM generate_series(1, 500) AS i;
         INSERT INTO documents (title) VALUES ('nulls');",
    )
    .expect("seed data");
}

fn contents(port: u16) -> String {
    psql(
        "127.0.0.1",
        port,
        "app",
        APP_PASSWORD,
        "appdb",
        "SELECT md5(string_agg(d::text, '|' ORDER BY id)) || ' ' || count(*) FROM documents d",
    )
    .expect("read data")
}

#[test]
fn backup_uploads_a_dump_prunes_old_ones_and_the_procedure_restores_it() {
    let dir = tempdir();
    let (s3_port, _moto) = moto(dir.path(), None);
    let primary = start_primary(dir.path().join("primary"), |spec| {
        spec.backup = Some(backup_spec(format!("http://127.0.0.1:{s3_port}"), false));
    });
    let server = &primary.server;
    s3cmd(server, &["mb", "s3://backups"]);
    // Dumps from before the retention of 30 days, of this database and another, and a file that
    // is not a dump: only the first is to be deleted.
    let junk = dir.path().join("junk");
    fs::write(&junk, "not a dump").expect("write");
    let junk = junk.to_str().expect("utf-8");
    for name in ["appdb-20000101T000000Z.dump", "otherdb-20000101T000000Z.dump", "README.txt"] {
        s3cmd(server, &["put", junk, &format!("s3://backups/postgres/main/dump/{name}")]);
    }
    seed_data(primary.port);
    let before = contents(primary.port);

    let env = pg_env(&primary);
    let (_, bin) = pg_bin();
    let out = run(crate::support::as_postgres("bash")
        .arg(server.path("/usr/local/sbin/terrace-backup"))
        .env("PATH", format!("{}:/usr/bin:/bin", bin.display()))
        .env("HOME", &server.root)
        .envs(&env));
    assert_script(server, "the backup script", &out);

    let listing = s3cmd(server, &["ls", "s3://backups/postgres/main/dump/"]);
    let names: Vec<&str> = listing.lines().filter_map(|line| line.rsplit('/').next()).collect();
    assert!(!names.contains(&"appdb-20000101T000000Z.dump"), "the old dump is pruned: {listing}");
    assert!(names.contains(&"otherdb-20000101T000000Z.dump") && names.contains(&"README.txt"), "{listing}");
    let dumps: Vec<&str> = names.iter().copied().filter(|name| name.starts_with("appdb-")).collect();
    assert_eq!(dumps.len(), 1, "{listing}");
    let dump = dumps[0];
    assert!(dump.len() == "appdb-20250101T020000Z.dump".len() && dump.ends_with("Z.dump"), "{dump}");

    // The disaster: the table is gone, and a row that came later is lost with it.
    psql(
        "127.0.0.1",
        primary.port,
        "app",
        APP_PASSWORD,
        "appdb",
        "INSERT INTO documents (title) VALUES ('later'); DROP TABLE documents CASCADE",
    )
    .expect("drop");

    let procedure = restore_procedure(&primary.spec);
    let mut commands = procedure_commands(&procedure, "Restore a dump", &[1, 2, 3, 4, 5]);
    let choose = commands.iter_mut().find(|c| c.starts_with("dump=")).expect("the step that chooses the dump");
    *choose = format!("dump={dump}");
    assert!(commands.len() >= 8, "{commands:#?}");
    let output = run_procedure(server, &commands, &env);
    assert!(output.contains(dump), "step 1 lists the dump:\n{output}");

    assert_eq!(contents(primary.port), before, "the restored data is the data backed up");
    let schema = superuser(
        server,
        primary.port,
        "appdb",
        "SELECT string_agg(relname || ':' || relkind::text || ':' || pg_get_userbyid(relowner), ',' ORDER BY relname) FROM pg_class WHERE relnamespace = 'public'::regnamespace",
    );
    assert_eq!(
        schema,
        "documents:r:app,documents_id_seq:S:app,documents_pkey:i:app,documents_title:i:app,titles:v:app"
    );
    assert_eq!(
        superuser(
            server,
            primary.port,
            "postgres",
            "SELECT string_agg(datname, ',' ORDER BY datname) FROM pg_database WHERE datname LIKE 'appdb%'"
        ),
        "appdb"
    );
    // The sequence goes on after the restored rows.
    let id = psql(
        "127.0.0.1",
        primary.port,
        "app",
        APP_PASSWORD,
        "appdb",
        "INSERT INTO documents (title) VALUES ('new') RETURNING id",
    )
    .expect("insert");
    assert_eq!(id.lines().next(), Some("502"));
}

#[test]
fn continuous_archiving_recovers_to_a_point_in_time() {
    let dir = tempdir();
    let root = dir.path().join("primary");
    // pgBackRest reads its configuration, and writes its logs and locks, at fixed paths; here
    // they are under the server's root, for the archive_command of PostgreSQL too. Its repository
    // is a local folder instead of the bucket: pgBackRest 2.45 fails against moto over TLS
    // ("unexpected eof while reading": moto's development server closes connections without a
    // TLS close_notify, which OpenSSL 3 reports), and it speaks S3 only over TLS. Everything else
    // is the rendered configuration, archive_command and procedure.
    let pgbackrest_env = [
        ("PGBACKREST_CONFIG", root.join("etc/pgbackrest/pgbackrest.conf").display().to_string()),
        ("PGBACKREST_LOG_PATH", root.join("log").display().to_string()),
        ("PGBACKREST_LOCK_PATH", root.join("log").display().to_string()),
        ("PGBACKREST_REPO1_TYPE", "posix".to_owned()),
        ("PGBACKREST_REPO1_PATH", root.join("repo").display().to_string()),
    ];
    let primary = {
        // The cluster script starts PostgreSQL through the systemctl stub, which passes on its
        // environment to PostgreSQL and so to archive_command.
        let mut spec = crate::postgres::local_primary(&root);
        spec.backup = Some(backup_spec("https://127.0.0.1:9".into(), true));
        let mut server = Server::new(root.clone());
        fs::create_dir_all(root.join("repo")).expect("repo");
        let (uid, gid) = crate::support::postgres_ids();
        std::os::unix::fs::chown(root.join("repo"), Some(uid), Some(gid)).expect("chown");
        let port = crate::support::free_port();
        server.replace_token("5432", port.to_string());
        let rendered = postgres(&spec);
        server.install(&rendered);
        server.snakeoil();
        let data = std::path::PathBuf::from(format!("{}/{}/main", spec.mount_point, spec.version));
        crate::postgres::stub_system(&server, spec.version, &data);
        let cluster = crate::support::Cluster { data };
        let env: BTreeMap<&str, String> = pgbackrest_env.iter().cloned().collect();
        let out = server.script("/usr/local/sbin/terrace-postgres", &env);
        assert_script(&server, "the primary's cluster script", &out);
        Primary { server, port, cluster, spec }
    };
    let server = &primary.server;
    let mut env = pg_env(&primary);
    env.extend(pgbackrest_env.iter().cloned());
    assert_eq!(superuser(server, primary.port, "postgres", "SHOW archive_mode"), "on");

    // The first-boot commands: the stanza, then the first full backup (the service's command).
    let rendered = postgres(&primary.spec);
    let stanza = rendered.runcmd.iter().find(|c| c.contains("stanza-create")).expect("stanza-create");
    let unit = rendered.file("/etc/systemd/system/terrace-pgbackrest@.service").expect("the backup service");
    let exec =
        unit.content.lines().find_map(|l| l.strip_prefix("ExecStart=")).expect("ExecStart").replace("%i", "full");
    run_procedure(server, &[stanza.clone(), format!("runuser -u postgres -- {exec}")], &env);
    run_procedure(server, &["runuser -u postgres -- pgbackrest --stanza=main check".to_owned()], &env);

    seed_data(primary.port);
    let before = contents(primary.port);
    std::thread::sleep(Duration::from_millis(1500));
    let target = superuser(server, primary.port, "postgres", "SELECT now()");
    std::thread::sleep(Duration::from_millis(1500));
    psql("127.0.0.1", primary.port, "app", APP_PASSWORD, "appdb", "DELETE FROM documents WHERE id > 100")
        .expect("the mistake");
    // The WAL with the mistake must be archived, or recovery could not tell where the target is.
    superuser(server, primary.port, "postgres", "SELECT pg_switch_wal()");
    run_procedure(server, &["runuser -u postgres -- pgbackrest --stanza=main check".to_owned()], &env);

    let procedure = restore_procedure(&primary.spec);
    let mut commands = procedure_commands(&procedure, "Point-in-time recovery", &[1, 2]);
    for command in &mut commands {
        *command = command.replace("2025-01-01 12:00:00+00", &target);
    }
    // Step 3 on the primary: its slots again, by its cluster script.
    commands.push(procedure_commands(&procedure, "Point-in-time recovery", &[3])[0].clone());
    run_procedure(server, &commands, &env);

    wait_for("the recovery to end", Duration::from_secs(60), || {
        superuser(server, primary.port, "postgres", "SELECT pg_is_in_recovery()") == "f"
    });
    assert_eq!(contents(primary.port), before, "the data is as it was at the target time");
    assert_eq!(superuser(server, primary.port, "postgres", "SELECT slot_name FROM pg_replication_slots"), "replica_0");
    drop(primary.cluster);
}
