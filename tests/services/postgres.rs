//! Real PostgreSQL and PgBouncer from the rendered files: the rendered cluster script creates and
//! starts a primary (systemd and pg_createcluster stubbed, everything else real), pg_hba.conf lets
//! only the application user in from the client network, PgBouncer pools transactions, and a
//! replica cloned by its rendered script streams from the primary over TLS.

use std::collections::BTreeMap;
use std::fs;
use std::io::{BufRead, BufReader, Write};
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::Duration;

use terrace::services::{Peer, PgBouncerSpec, PgRole, PoolMode, PostgresSpec, postgres};

use crate::specs;
use crate::support::{Cluster, Process, Server, as_postgres, assert_root, free_port, pg_bin, program, run, wait_for};

pub(crate) const APP_PASSWORD: &str = "app-password-0123456789";

/// The primary of the seed's spec, on loopback: it listens on 127.0.0.1 and ::1 but lets the
/// application in from 127.0.0.1 only, and replicas only over TLS.
pub(crate) fn local_primary(root: &Path) -> PostgresSpec {
    let (version, _) = pg_bin();
    PostgresSpec {
        version,
        // pgvector is not packaged for this machine's PostgreSQL (Debian 12 has no
        // postgresql-15-pgvector, and the PGDG repository cannot be reached here), so the real
        // servers run without it; the snapshots and the cloud-init checks cover `vector`.
        extensions: Vec::new(),
        memory_mb: 1024,
        cpus: 2,
        listen: vec!["127.0.0.1".into(), "::1".into()],
        client_cidrs: vec!["127.0.0.1/32".into()],
        replication_peers: vec![Peer { cidr: "127.0.0.1/32".into(), tls: true }],
        database: "appdb".into(),
        user: "app".into(),
        pgbouncer: None,
        backup: None,
        mount_point: root.join("pgdata").to_str().expect("utf-8").to_owned(),
        role: PgRole::Primary { replica_slots: vec!["replica_0".into()] },
        ..specs::primary()
    }
}

/// A tempdir that the postgres user can enter.
pub(crate) fn tempdir() -> tempfile::TempDir {
    assert_root();
    let dir = tempfile::tempdir().expect("tempdir");
    fs::set_permissions(dir.path(), fs::Permissions::from_mode(0o755)).expect("chmod");
    dir
}

/// Stands in for what a container lacks: `pg_createcluster` (Debian's wrapper, which needs
/// /etc/postgresql) creates or adopts the data directory and writes the cluster's configuration
/// under the server's root, `systemctl` starts and stops the cluster with pg_ctl, and `mountpoint`
/// reports the volume mounted.
pub(crate) fn stub_system(server: &Server, version: u32, data: &Path) {
    let (_, bin) = pg_bin();
    let root = server.root.display();
    let bin = bin.display();
    let data = data.display();
    let conf = format!("{root}/etc/postgresql/{version}/main");
    server.stub(
        "pg_createcluster",
        &format!(
            r#"echo "pg_createcluster $*" >> {root}/log/commands
data=${{3#--datadir=}}
if [[ ! -s $data/PG_VERSION ]]; then
  runuser -u postgres -- {bin}/initdb --pgdata="$data" --username=postgres --auth-local=peer --auth-host=scram-sha-256 > /dev/null
fi
mkdir -p {conf}/conf.d
printf "data_directory = '%s'\ninclude_dir = 'conf.d'\n" "$data" > {conf}/postgresql.conf"#
        ),
    );
    server.stub(
        "systemctl",
        &format!(
            r#"echo "systemctl $*" >> {root}/log/commands
verb=$1; shift
for unit in "$@"; do
  case "$verb $unit" in
    "stop postgresql@"* | "restart postgresql@"*)
      if [[ -f {data}/postmaster.pid ]]; then
        runuser -u postgres -- {bin}/pg_ctl stop --pgdata={data} --mode=fast --wait > /dev/null
      fi ;;
  esac
  case "$verb $unit" in
    "start postgresql@"* | "restart postgresql@"*)
      runuser -u postgres -- {bin}/pg_ctl start --pgdata={data} --wait --timeout=60 \
        --options="-c config_file={conf}/postgresql.conf" --log={root}/log/postgresql.log > /dev/null ;;
  esac
done"#
        ),
    );
    server.stub("mountpoint", "exit 0");
}

/// A primary created and started by its rendered cluster script.
pub(crate) struct Primary {
    pub(crate) server: Server,
    pub(crate) port: u16,
    pub(crate) cluster: Cluster,
    pub(crate) spec: PostgresSpec,
}

pub(crate) fn start_primary(root: PathBuf, edit: impl FnOnce(&mut PostgresSpec)) -> Primary {
    let mut spec = local_primary(&root);
    edit(&mut spec);
    let mut server = Server::new(root);
    let port = free_port();
    server.replace_token("5432", port.to_string());
    let rendered = postgres(&spec);
    server.install(&rendered);
    server.snakeoil();
    let data = PathBuf::from(format!("{}/{}/main", spec.mount_point, spec.version));
    stub_system(&server, spec.version, &data);
    let cluster = Cluster { data };
    let out = server.script("/usr/local/sbin/terrace-postgres", &BTreeMap::new());
    assert_script(&server, "the primary's cluster script", &out);
    Primary { server, port, cluster, spec }
}

pub(crate) fn assert_script(server: &Server, what: &str, out: &std::process::Output) {
    let log = fs::read_to_string(server.root.join("log/postgresql.log")).unwrap_or_default();
    assert!(
        out.status.success(),
        "{what} failed ({}):\n--- stdout ---\n{}\n--- stderr ---\n{}\n--- postgresql.log ---\n{log}",
        out.status,
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr),
    );
}

/// psql as a client over TCP: the query's rows, or the error.
pub(crate) fn psql(
    host: &str,
    port: u16,
    user: &str,
    password: &str,
    database: &str,
    sql: &str,
) -> Result<String, String> {
    let (_, bin) = pg_bin();
    let out = run(Command::new(bin.join("psql"))
        .args(["--no-psqlrc", "--tuples-only", "--no-align", "--set=ON_ERROR_STOP=1"])
        .arg(format!("host={host} port={port} user={user} dbname={database} sslmode=prefer connect_timeout=10"))
        .args(["--command", sql])
        .env("PGPASSWORD", password)
        .env_remove("PGPASSFILE"));
    if out.status.success() {
        Ok(String::from_utf8_lossy(&out.stdout).trim().to_owned())
    } else {
        Err(String::from_utf8_lossy(&out.stderr).into_owned())
    }
}

/// psql as the superuser over the Unix socket (peer authentication as the OS user postgres).
pub(crate) fn superuser(server: &Server, port: u16, database: &str, sql: &str) -> String {
    let (_, bin) = pg_bin();
    crate::support::run_ok(
        as_postgres(bin.join("psql"))
            .args(["--no-psqlrc", "--tuples-only", "--no-align", "--set=ON_ERROR_STOP=1"])
            .arg(format!("--host={}", server.path("/var/run/postgresql").display()))
            .arg(format!("--port={port}"))
            .arg(format!("--dbname={database}"))
            .args(["--command", sql]),
    )
    .trim()
    .to_owned()
}

#[test]
fn primary_lets_in_the_app_user_only_from_the_client_network() {
    let dir = tempdir();
    let primary = start_primary(dir.path().join("primary"), |_| {});
    let port = primary.port;
    let app = |host: &str, user: &str, password: &str, database: &str| {
        psql(host, port, user, password, database, "SELECT current_user || ' ' || current_database()")
    };

    assert_eq!(app("127.0.0.1", "app", APP_PASSWORD, "appdb"), Ok("app appdb".into()));
    // Over TLS too, with the certificate the configuration names.
    let (_, bin) = pg_bin();
    let tls = crate::support::run_ok(
        Command::new(bin.join("psql"))
            .args(["--no-psqlrc", "--tuples-only", "--no-align"])
            .arg(format!("host=127.0.0.1 port={port} user=app dbname=appdb sslmode=require"))
            .args(["--command", "SELECT ssl FROM pg_stat_ssl WHERE pid = pg_backend_pid()"])
            .env("PGPASSWORD", APP_PASSWORD),
    );
    assert_eq!(tls.trim(), "t");

    let refused = |result: Result<String, String>, why: &str| {
        let err = result.expect_err("the connection must be refused");
        assert!(err.contains(why), "expected `{why}` in: {err}");
    };
    refused(app("127.0.0.1", "app", "wrong-password-0123456789", "appdb"), "password authentication failed");
    // ::1 is an address PostgreSQL listens on, and the source address of a client connecting to
    // it, but not in client_cidrs: a client outside the allowed network.
    refused(app("::1", "app", APP_PASSWORD, "appdb"), "no pg_hba.conf entry for host \"::1\"");
    refused(app("127.0.0.1", "app", APP_PASSWORD, "postgres"), "no pg_hba.conf entry");
    refused(app("127.0.0.1", "replicator", "replication-password-0123456789", "appdb"), "no pg_hba.conf entry");
    refused(app("127.0.0.1", "postgres", "", "appdb"), "no pg_hba.conf entry");

    // What the setup created: an unprivileged owner of the database, a replication role, the slot.
    let server = &primary.server;
    assert_eq!(
        superuser(
            server,
            port,
            "postgres",
            "SELECT rolname, rolsuper, rolcreatedb, rolreplication FROM pg_roles WHERE rolname IN ('app', 'replicator') ORDER BY 1"
        ),
        "app|f|f|f\nreplicator|f|f|t"
    );
    assert_eq!(
        superuser(server, port, "postgres", "SELECT pg_get_userbyid(datdba) FROM pg_database WHERE datname = 'appdb'"),
        "app"
    );
    assert_eq!(
        superuser(server, port, "postgres", "SELECT slot_name, slot_type FROM pg_replication_slots"),
        "replica_0|physical"
    );
    assert_eq!(superuser(server, port, "postgres", "SHOW wal_level"), "replica");
    assert_eq!(superuser(server, port, "postgres", "SHOW shared_buffers"), "256MB");
    assert_eq!(superuser(server, port, "postgres", "SHOW listen_addresses"), "127.0.0.1,::1");

    // Running the script again (a re-run of cloud-init's commands) keeps everything, and sets the
    // password again.
    superuser(server, port, "postgres", "ALTER ROLE app PASSWORD 'changed-by-hand-0123456789'");
    let out = server.script("/usr/local/sbin/terrace-postgres", &BTreeMap::new());
    assert_script(server, "the cluster script, run again", &out);
    assert_eq!(app("127.0.0.1", "app", APP_PASSWORD, "appdb"), Ok("app appdb".into()));
    let commands = fs::read_to_string(server.root.join("log/commands")).expect("commands");
    assert_eq!(commands.matches("pg_createcluster").count(), 1, "the cluster is created once: {commands}");
    drop(primary.cluster);
}

#[test]
fn pgbouncer_pools_transactions() {
    let dir = tempdir();
    let bouncer_port = free_port();
    let primary = start_primary(dir.path().join("primary"), |spec| {
        // One server connection: two clients can share it only if it goes back to the pool after
        // each transaction.
        spec.pgbouncer = Some(PgBouncerSpec {
            port: bouncer_port,
            pool_mode: PoolMode::Transaction,
            default_pool_size: 1,
            max_client_conn: 10,
        });
    });
    let server = &primary.server;
    let _bouncer = Process::spawn(
        "pgbouncer",
        as_postgres(program("pgbouncer")).arg(server.path("/etc/pgbouncer/pgbouncer.ini")),
        &server.root.join("log/pgbouncer.log"),
    );
    wait_for("PgBouncer to accept connections", Duration::from_secs(20), || {
        psql("127.0.0.1", bouncer_port, "app", APP_PASSWORD, "appdb", "SELECT 1").is_ok()
    });

    // Client A stays connected after its query.
    let (_, bin) = pg_bin();
    let mut a = Command::new(bin.join("psql"))
        .args(["--no-psqlrc", "--tuples-only", "--no-align"])
        .arg(format!("host=127.0.0.1 port={bouncer_port} user=app dbname=appdb"))
        .env("PGPASSWORD", APP_PASSWORD)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .spawn()
        .expect("psql");
    let mut a_in = a.stdin.take().expect("stdin");
    let mut a_out = BufReader::new(a.stdout.take().expect("stdout"));
    writeln!(a_in, "SELECT pg_backend_pid();").expect("write");
    let mut pid_a = String::new();
    a_out.read_line(&mut pid_a).expect("read");

    // Client B, while A is still connected, gets the same server connection.
    let pid_b = psql("127.0.0.1", bouncer_port, "app", APP_PASSWORD, "appdb", "SELECT pg_backend_pid()")
        .expect("a second client is served while the first stays connected");
    assert_eq!(pid_a.trim(), pid_b, "both clients ran on the one pooled server connection");

    writeln!(a_in, "SELECT 'a again';").expect("write");
    let mut again = String::new();
    a_out.read_line(&mut again).expect("read");
    assert_eq!(again.trim(), "a again");
    drop(a_in);
    a.wait().expect("psql A ends");

    let err = psql("127.0.0.1", bouncer_port, "app", "wrong-password-0123456789", "appdb", "SELECT 1")
        .expect_err("a wrong password is refused by PgBouncer");
    assert!(err.contains("SASL authentication failed") || err.contains("password authentication failed"), "{err}");
}

#[test]
fn replica_clones_with_its_slot_and_streams_over_tls() {
    let dir = tempdir();
    let primary = start_primary(dir.path().join("primary"), |_| {});

    let replica_root = dir.path().join("replica");
    let mut spec = local_primary(&replica_root);
    spec.role = PgRole::Replica { primary_host: "127.0.0.1".into(), slot: "replica_0".into(), tls: true };
    let mut server = Server::new(replica_root);
    let port = free_port();
    // The replica's own port and the primary's are both 5432 on real servers.
    server
        .replace("host=127.0.0.1 port=5432", format!("host=127.0.0.1 port={}", primary.port))
        .replace("127.0.0.1:5432:", format!("127.0.0.1:{}:", primary.port))
        .replace_token("5432", port.to_string())
        .replace("sleep 30", "sleep 1")
        .replace("$(seq 120)", "$(seq 3)");
    server.install(&postgres(&spec));
    server.snakeoil();
    let data = PathBuf::from(format!("{}/{}/main", spec.mount_point, spec.version));
    stub_system(&server, spec.version, &data);
    let _replica = Cluster { data: data.clone() };
    let out = server.script("/usr/local/sbin/terrace-postgres", &BTreeMap::new());
    assert_script(&server, "the replica's cluster script", &out);

    assert!(data.join("standby.signal").exists(), "pg_basebackup -R wrote standby.signal");
    let auto = fs::read_to_string(data.join("postgresql.auto.conf")).expect("postgresql.auto.conf");
    assert!(auto.contains("primary_slot_name = 'replica_0'"), "{auto}");
    assert!(auto.contains("sslmode=require"), "{auto}");
    assert!(!data.with_extension("partial").exists(), "the partial clone was moved into place");

    // On the primary: the replica streams through its slot, over TLS.
    let p = &primary.server;
    wait_for("the replica to stream", Duration::from_secs(30), || {
        superuser(p, primary.port, "postgres", "SELECT count(*) FROM pg_stat_replication") == "1"
    });
    assert_eq!(
        superuser(
            p,
            primary.port,
            "postgres",
            "SELECT r.application_name, s.ssl FROM pg_stat_replication r JOIN pg_stat_ssl s USING (pid)"
        ),
        "replica_0|t"
    );
    assert_eq!(
        superuser(p, primary.port, "postgres", "SELECT active FROM pg_replication_slots WHERE slot_name = 'replica_0'"),
        "t"
    );

    // A write on the primary arrives on the replica, which refuses writes itself.
    psql(
        "127.0.0.1",
        primary.port,
        "app",
        APP_PASSWORD,
        "appdb",
        "CREATE TABLE notes (id int PRIMARY KEY, body text); INSERT INTO notes VALUES (1, 'replicated')",
    )
    .expect("write on the primary");
    wait_for("the row to reach the replica", Duration::from_secs(30), || {
        psql("127.0.0.1", port, "app", APP_PASSWORD, "appdb", "SELECT body FROM notes WHERE id = 1").as_deref()
            == Ok("replicated")
    });
    let err = psql("127.0.0.1", port, "app", APP_PASSWORD, "appdb", "INSERT INTO notes VALUES (2, 'no')")
        .expect_err("a replica is read-only");
    assert!(err.contains("read-only transaction"), "{err}");

    // Running the replica's script again does not clone again.
    let out = server.script("/usr/local/sbin/terrace-postgres", &BTreeMap::new());
    assert_script(&server, "the replica's cluster script, run again", &out);
    assert_eq!(psql("127.0.0.1", port, "app", APP_PASSWORD, "appdb", "SELECT count(*) FROM notes").as_deref(), Ok("1"));
}

/// The volume script on a file standing in for the Hetzner volume (`mount` stubbed: a container
/// cannot mount): it formats an empty volume, never one that holds anything, and adds the fstab
/// line once.
#[test]
fn volume_script_formats_only_an_empty_volume() {
    let dir = tempdir();
    let spec = local_primary(dir.path());
    let mut server = Server::new(dir.path().join("server"));
    server.replace("$(seq 300)", "$(seq 2)");
    server.install(&postgres(&spec));
    server.stub("mount", &format!("echo \"mount $*\" >> {}/log/commands", server.root.display()));
    server.stub("mountpoint", "exit 1");
    fs::create_dir_all(server.path("/etc")).expect("etc");
    fs::write(server.path("/etc/fstab"), "# /etc/fstab\n").expect("fstab");
    let by_id = server.path("/dev/disk/by-id");
    fs::create_dir_all(&by_id).expect("by-id");
    let volume = server.root.join("volume.img");
    let run_script = || server.script("/usr/local/sbin/terrace-volume", &BTreeMap::new());
    let uuid = || {
        crate::support::run_ok(Command::new(program("blkid")).args(["-p", "-s", "UUID", "-o", "value"]).arg(&volume))
    };

    // No volume attached: the script waits, then fails.
    let out = run_script();
    assert!(!out.status.success() && String::from_utf8_lossy(&out.stderr).contains("found 0"), "{out:?}");

    fs::File::create(&volume).expect("image").set_len(64 << 20).expect("size");
    std::os::unix::fs::symlink(&volume, by_id.join("scsi-0HC_Volume_1234")).expect("symlink");
    let out = run_script();
    assert_script(&server, "the volume script", &out);
    let first = uuid();
    assert!(!first.trim().is_empty(), "the empty volume got a filesystem");
    let fstab = fs::read_to_string(server.path("/etc/fstab")).expect("fstab");
    assert!(
        fstab.contains(&format!(
            "UUID={} {}/pgdata ext4 defaults,nofail,discard 0 2",
            first.trim(),
            dir.path().display()
        )),
        "{fstab}"
    );

    // Again (a reboot, a re-run): the filesystem is kept, the fstab line not repeated.
    let out = run_script();
    assert_script(&server, "the volume script, run again", &out);
    assert_eq!(uuid(), first, "the volume was not formatted again");
    let fstab = fs::read_to_string(server.path("/etc/fstab")).expect("fstab");
    assert_eq!(fstab.matches("UUID=").count(), 1, "{fstab}");
    let commands = fs::read_to_string(server.root.join("log/commands")).expect("commands");
    assert_eq!(commands.matches("mount ").count(), 2, "{commands}");

    // A volume with data blkid does not recognise is left alone.
    let other = server.root.join("other.img");
    fs::write(&other, vec![0x5a; 2 << 20]).expect("image");
    fs::remove_file(by_id.join("scsi-0HC_Volume_1234")).expect("detach");
    std::os::unix::fs::symlink(&other, by_id.join("scsi-0HC_Volume_5678")).expect("symlink");
    let out = run_script();
    assert!(!out.status.success(), "{out:?}");
    assert!(String::from_utf8_lossy(&out.stderr).contains("not touching it"), "{out:?}");
    assert_eq!(fs::read(&other).expect("image"), vec![0x5a; 2 << 20], "the unknown data is untouched");

    // Two volumes: the script cannot tell which is the database's.
    std::os::unix::fs::symlink(&volume, by_id.join("scsi-0HC_Volume_1234")).expect("symlink");
    let out = run_script();
    assert!(!out.status.success() && String::from_utf8_lossy(&out.stderr).contains("found 2"), "{out:?}");
}
