//! Real redis-server from the rendered configuration, included from a main redis.conf by the
//! rendered command as on a server: the password is required, the memory limit and eviction are
//! those of the spec, and a replica syncs from its primary with the password.

use std::fs;
use std::process::Command;
use std::time::Duration;

use terrace::services::{RedisSpec, redis};

use crate::specs;
use crate::support::{Process, Server, free_port, program, run, wait_for};

const PASSWORD: &str = "redis-password-0123456789";

/// A Redis server started from the rendered files under `root`.
fn start(root: std::path::PathBuf, spec: &RedisSpec, primary_port: Option<u16>) -> (Server, u16, Process) {
    let mut server = Server::new(root);
    let port = free_port();
    if let Some(primary) = primary_port {
        server.replace("replicaof 127.0.0.1 6379", format!("replicaof 127.0.0.1 {primary}"));
    }
    server.replace_token("6379", port.to_string());
    let rendered = redis(spec);
    server.install(&rendered);
    // The package's redis.conf, reduced to what a foreground test server needs; the rendered
    // command then appends the include of terrace's settings, as on a server.
    let data = server.root.join("redis-data");
    fs::create_dir_all(&data).expect("data folder");
    let main = server.path("/etc/redis/redis.conf");
    fs::write(&main, format!("daemonize no\nlogfile \"\"\ndir {}\n", data.display())).expect("redis.conf");
    let include = rendered.runcmd.iter().find(|c| c.contains("include")).expect("the include command");
    for _ in 0..2 {
        // Twice: the command must not add the include again.
        let out = run(Command::new("bash").args(["-c", &server.rewrite(include)]));
        assert!(out.status.success(), "{out:?}");
    }
    let text = fs::read_to_string(&main).expect("redis.conf");
    assert_eq!(text.matches("include ").count(), 1, "{text}");

    let process = Process::spawn(
        "redis-server",
        Command::new(program("redis-server")).arg(&main),
        &server.root.join("log/redis.log"),
    );
    wait_for("redis-server to listen", Duration::from_secs(20), || cli(port, None, &["PING"]).contains("NOAUTH"));
    (server, port, process)
}

/// redis-cli's answer, errors included.
fn cli(port: u16, password: Option<&str>, args: &[&str]) -> String {
    let mut command = Command::new(program("redis-cli"));
    command.args(["-h", "127.0.0.1", "-p", &port.to_string()]);
    if let Some(password) = password {
        command.env("REDISCLI_AUTH", password);
    }
    let out = run(command.args(args));
    format!("{}{}", String::from_utf8_lossy(&out.stdout), String::from_utf8_lossy(&out.stderr)).trim().to_owned()
}

fn local(spec: RedisSpec) -> RedisSpec {
    RedisSpec { memory_mb: 64, bind: vec!["127.0.0.1".into()], ..spec }
}

#[test]
fn redis_requires_the_password_and_limits_memory() {
    let dir = tempfile::tempdir().expect("tempdir");
    let (_server, port, _redis) = start(dir.path().join("redis"), &local(specs::redis_primary()), None);

    assert!(cli(port, None, &["GET", "k"]).contains("NOAUTH"), "a client without the password is refused");
    assert!(cli(port, Some("wrong-password"), &["GET", "k"]).contains("WRONGPASS"));
    let pw = Some(PASSWORD);
    assert_eq!(cli(port, pw, &["CONFIG", "GET", "maxmemory"]), format!("maxmemory\n{}", 64 * 1024 * 1024));
    assert_eq!(cli(port, pw, &["CONFIG", "GET", "maxmemory-policy"]), "maxmemory-policy\nallkeys-lru");
    assert_eq!(cli(port, pw, &["CONFIG", "GET", "protected-mode"]), "protected-mode\nyes");
    assert_eq!(cli(port, pw, &["CONFIG", "GET", "appendonly"]), "appendonly\nyes");
    assert_eq!(cli(port, pw, &["CONFIG", "GET", "save"]), "save\n3600 1 300 100 60 10000");
    assert_eq!(cli(port, pw, &["CONFIG", "GET", "bind"]), "bind\n127.0.0.1");
    assert_eq!(cli(port, pw, &["SET", "k", "v"]), "OK");
    assert_eq!(cli(port, pw, &["GET", "k"]), "v");
}

#[test]
fn redis_without_persistence_keeps_nothing_on_disk() {
    let dir = tempfile::tempdir().expect("tempdir");
    let spec = RedisSpec { persistence: false, ..local(specs::redis_primary()) };
    let (_server, port, _redis) = start(dir.path().join("redis"), &spec, None);
    let pw = Some(PASSWORD);
    assert_eq!(cli(port, pw, &["CONFIG", "GET", "appendonly"]), "appendonly\nno");
    assert_eq!(cli(port, pw, &["CONFIG", "GET", "save"]), "save");
}

#[test]
fn redis_replica_syncs_from_its_primary() {
    let dir = tempfile::tempdir().expect("tempdir");
    let (_p, primary_port, _primary) = start(dir.path().join("primary"), &local(specs::redis_primary()), None);
    let replica_spec = RedisSpec { replica_of: Some(("127.0.0.1".into(), 6379)), ..local(specs::redis_replica()) };
    let (_r, replica_port, _replica) = start(dir.path().join("replica"), &replica_spec, Some(primary_port));
    let pw = Some(PASSWORD);

    assert_eq!(cli(primary_port, pw, &["SET", "greeting", "hello from the primary"]), "OK");
    wait_for("the key to reach the replica", Duration::from_secs(30), || {
        cli(replica_port, pw, &["GET", "greeting"]) == "hello from the primary"
    });
    let info = cli(replica_port, pw, &["INFO", "replication"]);
    assert!(info.contains("role:slave") && info.contains("master_link_status:up"), "{info}");
    assert!(cli(replica_port, pw, &["SET", "k", "v"]).contains("READONLY"), "a replica is read-only");
}
