//! The lab itself, against what it promises: hosts reach each other as Hetzner's network says (and
//! only so), cloud-init's modules and sshd behave as on a server, terrace's own PostgreSQL
//! cloud-config boots into a database on its volume that clients on the network reach (with backups
//! to the lab's Object Storage), and a docker-ce host's container reaches its host.

use std::process::Command;
use std::time::Duration;

use serde_json::{Value, json};
use terrace::services::{
    BackupSchedule, BackupSpec, PgBouncerSpec, PgRole, PoolMode, PostgresSpec, RedisSpec, cloud_config, postgres, redis,
};

use crate::lab::{self, Lab, connect_command, describe, quote};

const BOOT: Duration = Duration::from_secs(180);

/// Creates a server in fsn1 and waits for its create action.
fn server(lab: &Lab, name: &str, extra: Value) -> u64 {
    let mut body = json!({ "name": name, "server_type": "cx23", "image": "debian-12", "location": "fsn1" });
    for (key, value) in extra.as_object().expect("an object") {
        body[key] = value.clone();
    }
    lab.api().post("/servers", &body)["server"]["id"].as_u64().expect("the server's id")
}

/// A network 10.0.0.0/16 with a subnet in eu-central; its id.
fn network(lab: &Lab) -> u64 {
    let body = json!({ "name": "private", "ip_range": "10.0.0.0/16",
        "subnets": [{ "type": "cloud", "ip_range": "10.0.1.0/24", "network_zone": "eu-central" }] });
    lab.api().post("/networks", &body)["network"]["id"].as_u64().expect("the network's id")
}

fn ok(out: &std::process::Output) -> bool {
    out.status.success()
}

#[test]
fn hosts_reach_each_other_as_the_network_says_with_their_real_addresses() {
    lab::isolated(|lab| {
        let net = network(lab);
        let user_data = "#cloud-config\nruncmd:\n  - echo booted > /root/booted\n";
        server(lab, "a", json!({ "networks": [net], "user_data": user_data }));
        server(lab, "b", json!({ "networks": [net], "user_data": user_data }));
        server(lab, "c", json!({ "user_data": user_data }));
        let (a, b, c) = (lab.wait_booted("a", BOOT), lab.wait_booted("b", BOOT), lab.wait_booted("c", BOOT));
        for host in [&a, &b, &c] {
            assert_eq!(host.run_ok("cat /root/booted; hostname"), format!("booted\n{}\n", host.name()));
        }

        // The addresses are the API's: public ones from the lab's range, private ones from the subnet.
        let api_ip = |id: u64| {
            let server = lab.api().get(&format!("/servers/{id}"));
            (server["server"]["public_net"]["ipv4"]["ip"].clone(), server["server"]["private_net"][0]["ip"].clone())
        };
        let (a_public, a_private) = api_ip(a.id());
        assert_eq!(a_public, json!(a.public_ip().to_string()));
        assert_eq!(a_private, json!(a.private_ip().to_string()));
        assert!(a.public_ip().octets()[..2] == [198, 18], "{}", a.public_ip());
        assert!(b.private_ip().to_string().starts_with("10.0.1."), "{}", b.private_ip());
        assert!(c.private_ips().is_empty());

        // a reaches b's private address, and b sees a's private address.
        let listener = b.listen_once(7000);
        a.run_ok(&connect_command(b.private_ip(), 7000));
        assert_eq!(listener.peer(), a.private_ip());

        // c, on no network, and the internet do not reach b's private address; a still does.
        let listener = b.listen_once(7001);
        let from_c = c.run(&connect_command(b.private_ip(), 7001));
        assert!(!ok(&from_c), "c reached b's private address:\n{}", describe(&from_c));
        let from_internet = lab.from_internet(&connect_command(b.private_ip(), 7001));
        assert!(!ok(&from_internet), "the internet reached b's private address:\n{}", describe(&from_internet));
        a.run_ok(&connect_command(b.private_ip(), 7001));
        assert_eq!(listener.peer(), a.private_ip(), "the listener was up all along, and only a got through");

        // Public addresses: c reaches b with its own public address, and the internet reaches them all.
        let listener = b.listen_once(7002);
        c.run_ok(&connect_command(b.public_ip(), 7002));
        assert_eq!(listener.peer(), c.public_ip());
        for host in [&a, &b, &c] {
            let listener = host.listen_once(7003);
            let out = lab.from_internet(&connect_command(host.public_ip(), 7003));
            assert!(ok(&out), "the internet cannot reach {}:\n{}", host.name(), describe(&out));
            assert_eq!(listener.peer(), lab::L_ADDRESS);
        }

        // Each host has only its own interfaces: no route to the network on c.
        assert_eq!(c.run_ok("ip -4 -o addr show scope global | awk '{ print $2 }'"), "eth0\n");
        assert_eq!(b.run_ok("ip -4 route show 10.0.0.0/16 | awk '{ print $3 }'"), "enp7s0\n");
    });
}

/// An ed25519 key pair made by ssh-keygen: (private key file, public key line).
fn key_pair(lab: &Lab, name: &str) -> (std::path::PathBuf, String) {
    let path = lab.dir().join(name);
    lab::lab_run_ok(Command::new("ssh-keygen").args(["-q", "-t", "ed25519", "-N", "", "-C", name, "-f"]).arg(&path));
    let public = std::fs::read_to_string(path.with_extension("pub")).expect("the public key");
    (path, public.trim().to_owned())
}

#[test]
fn cloud_init_writes_files_sets_host_keys_and_sshd_lets_the_authorized_key_in() {
    lab::isolated(|lab| {
        let (host_key, host_public) = key_pair(lab, "host_key");
        let (client_key, client_public) = key_pair(lab, "client_key");
        let private = std::fs::read_to_string(&host_key).expect("the host key");
        let json = |text: &str| serde_json::to_string(text).expect("a JSON string");
        let user_data = format!(
            "#cloud-config\n\
             ssh_deletekeys: true\n\
             ssh_genkeytypes: []\n\
             ssh_keys:\n  ed25519_private: {private}\n  ed25519_public: {public}\n\
             write_files:\n\
             - path: /root/.ssh/authorized_keys\n  owner: root:root\n  permissions: '0600'\n  append: true\n  content: {key}\n\
             - path: /etc/terrace/lab.conf\n  owner: postgres:postgres\n  permissions: '0640'\n  defer: true\n  content: secret\n\
             - path: /usr/local/sbin/hello\n  permissions: '0755'\n  content: |\n    #!/bin/sh\n    echo \"hello from $(hostname)\"\n\
             - path: /etc/systemd/system/lab-once@.service\n  content: |\n    [Service]\n    Type=oneshot\n    User=postgres\n    ExecStart=/bin/sh -c \"echo %i $(id -un) > /tmp/once-%i\"\n\
             - path: /etc/systemd/system/lab-sleep.service\n  content: |\n    [Service]\n    User=redis\n    ExecStart=/bin/sleep 600\n\
             runcmd:\n\
             - echo first >> /root/runcmd.log\n\
             - [sh, -c, \"echo 'a \\\"quoted\\\" list item' >> /root/runcmd.log\"]\n\
             - false\n\
             - echo after the failing line >> /root/runcmd.log\n\
             - systemctl start lab-once@first.service\n\
             - systemctl enable --now lab-sleep\n",
            private = json(&private),
            public = json(&host_public),
            key = json(&format!("{client_public}\n")),
        );
        server(lab, "sshbox", json!({ "user_data": user_data }));
        let broken = "#cloud-config\npackages: [lab-no-such-package]\nruncmd:\n  - echo before\n  - exit 3\n";
        server(lab, "broken", json!({ "user_data": broken }));
        let host = lab.wait_booted("sshbox", BOOT);

        let known = lab.dir().join("known_hosts");
        std::fs::write(&known, format!("{} {host_public}\n", host.public_ip())).expect("known_hosts");
        let ssh = |known: &std::path::Path, command: &str| {
            lab.from_internet(&format!(
                "ssh -F /dev/null -i {key} -o IdentitiesOnly=yes -o BatchMode=yes -o StrictHostKeyChecking=yes \
                 -o UserKnownHostsFile={known} -o ConnectTimeout=10 root@{ip} {command}",
                key = quote(&client_key.display().to_string()),
                known = quote(&known.display().to_string()),
                ip = host.public_ip(),
                command = quote(command),
            ))
        };
        let out = ssh(&known, "hostname; id -un; command -v systemctl; hello; cloud-init status --wait");
        assert!(ok(&out), "ssh failed:\n{}", describe(&out));
        assert_eq!(
            String::from_utf8_lossy(&out.stdout),
            "sshbox\nroot\n/usr/local/sbin/systemctl\nhello from sshbox\n\nstatus: done\n"
        );
        // The host key is the one given: another one in known_hosts is refused.
        let (_, other) = key_pair(lab, "other_key");
        let wrong = lab.dir().join("wrong_known_hosts");
        std::fs::write(&wrong, format!("{} {other}\n", host.public_ip())).expect("known_hosts");
        let out = ssh(&wrong, "true");
        assert!(
            !ok(&out) && String::from_utf8_lossy(&out.stderr).contains("Host key verification failed"),
            "{}",
            describe(&out)
        );

        assert_eq!(
            host.run_ok("stat -c '%a %U:%G %n' /root/.ssh/authorized_keys /etc/terrace/lab.conf /usr/local/sbin/hello"),
            "600 root:root /root/.ssh/authorized_keys\n640 postgres:postgres /etc/terrace/lab.conf\n755 root:root /usr/local/sbin/hello\n"
        );
        // ssh_deletekeys and an empty ssh_genkeytypes: the given key only.
        assert_eq!(host.run_ok("ls /etc/ssh/ | grep ssh_host_"), "ssh_host_ed25519_key\nssh_host_ed25519_key.pub\n");
        assert_eq!(host.run_ok("stat -c %a /etc/ssh/ssh_host_ed25519_key"), "600\n");
        // runcmd does not stop at a failing line; a list item is quoted word by word.
        assert_eq!(host.run_ok("cat /root/runcmd.log"), "first\na \"quoted\" list item\nafter the failing line\n");
        assert!(host.run_ok("cat /var/log/cloud-init-output.log").contains("Cloud-init (lab) finished: done"));
        // systemctl knows the units it stands in for, and fails like systemctl for the others.
        host.run_ok("systemctl reload ssh.service && systemctl is-active --quiet sshd && systemctl is-enabled ssh");
        let out = host.run("systemctl start no-such.service");
        assert_eq!(out.status.code(), Some(5), "{}", describe(&out));
        assert!(String::from_utf8_lossy(&out.stderr).contains("Unit no-such.service not found."));
        let out = host.run("systemctl frobnicate ssh.service");
        assert_eq!(out.status.code(), Some(1), "{}", describe(&out));
        assert_eq!(host.run("systemctl is-active redis-server").status.code(), Some(3));
        // Units of its own: a oneshot template as its User=, a simple unit in the background.
        assert_eq!(host.run_ok("cat /tmp/once-first"), "first postgres\n");
        assert_eq!(host.run_ok("systemctl is-active lab-sleep; pgrep -u redis -x sleep | wc -l"), "active\n1\n");
        host.run_ok("systemctl stop lab-sleep.service");
        assert_eq!(host.run("systemctl is-active lab-sleep").status.code(), Some(3));

        // A boot that fails says what failed, as `cloud-init status --long` does.
        let (broken, errors) = lab.wait_boot("broken", BOOT);
        assert!(errors.iter().any(|e| e.contains("lab-no-such-package")), "{errors:?}");
        assert!(errors.iter().any(|e| e.contains("runcmd") && e.contains("exit status 3")), "{errors:?}");
        let out = broken.run("cloud-init status --wait --long");
        let text = String::from_utf8_lossy(&out.stdout);
        assert_eq!(out.status.code(), Some(1), "{text}");
        assert!(text.contains("status: error") && text.contains("lab-no-such-package"), "{text}");
        assert!(broken.run_ok("cat /var/log/cloud-init-output.log").contains("before\n"));
    });
}

#[test]
fn terraces_postgres_cloud_config_boots_a_database_on_its_volume_with_backups() {
    lab::isolated(|lab| {
        let version = lab.pg_version();
        let net = network(lab);
        // The bucket. terrace's own Object Storage client is refused by moto (411 Length Required: its
        // presigned PUT carries no Content-Length, which S3 requires), so s3cmd makes it here.
        let made = lab.s3cmd("mb s3://lab-backups");
        assert!(ok(&made), "the bucket:\n{}", describe(&made));

        let spec = PostgresSpec {
            version,
            extensions: vec!["vector".into()],
            memory_mb: 1024,
            cpus: 2,
            volume_gb: 10,
            role: PgRole::Primary { replica_slots: Vec::new() },
            listen: vec!["*".into()],
            client_cidrs: vec!["10.0.0.0/16".into()],
            tls_clients: Vec::new(),
            docker: false,
            replication_peers: Vec::new(),
            database: "app".into(),
            user: "app_user".into(),
            password: "lab-app-password-0123456789".into(),
            replication_password: "lab-replication-password-0123".into(),
            pgbouncer: Some(PgBouncerSpec {
                port: 6432,
                pool_mode: PoolMode::Transaction,
                default_pool_size: 10,
                max_client_conn: 100,
            }),
            mount_point: "/var/lib/terrace/pgdata".into(),
            backup: Some(BackupSpec {
                bucket: "lab-backups".into(),
                endpoint: "https://fsn1.your-objectstorage.com".into(),
                region: "fsn1".into(),
                access_key: "lab-access-key".into(),
                secret_key: "lab-secret-key".into(),
                prefix: "postgres/main".into(),
                schedule: BackupSchedule::Daily,
                retention_days: 7,
                continuous: true,
                pitr_days: 7,
            }),
        };
        assert_eq!(terrace::services::postgres_problems(&spec), Vec::<String>::new());
        let user_data = cloud_config(&postgres(&spec));
        let volume = lab.api().post("/volumes", &json!({ "name": "db-data", "size": 10, "location": "fsn1" }));
        let volume = volume["volume"]["id"].as_u64().expect("the volume's id");
        server(lab, "db", json!({ "networks": [net], "volumes": [volume], "user_data": user_data }));
        server(lab, "app", json!({ "networks": [net] }));
        let db = lab.wait_booted("db", BOOT);
        let app = lab.wait_booted("app", BOOT);

        // From the other host on the network, with the application user's password: PostgreSQL itself,
        // which sees the client's private address, and PgBouncer (which reaches PostgreSQL over its
        // socket), whose log names the client's address.
        let psql = |port: u16, sql: &str| {
            app.run_ok(&format!(
                "PGPASSWORD=lab-app-password-0123456789 psql --no-psqlrc -At \
                 'host={ip} port={port} dbname=app user=app_user connect_timeout=10' -c {sql}",
                ip = db.private_ip(),
                sql = quote(sql),
            ))
        };
        assert_eq!(
            psql(5432, "SELECT current_user, inet_server_addr(), inet_client_addr()"),
            format!("app_user|{}|{}\n", db.private_ip(), app.private_ip())
        );
        assert_eq!(psql(6432, "SELECT current_user, current_database()"), "app_user|app\n");
        let bouncer = db.run_ok("cat /var/log/lab-systemd/pgbouncer.service.log");
        assert!(bouncer.contains(&format!("app/app_user@{}:", app.private_ip())), "{bouncer}");
        let extensions = app.run_ok(&format!(
            "PGPASSWORD=lab-app-password-0123456789 psql --no-psqlrc -At 'host={} dbname=app user=app_user' \
             -c \"SELECT extname FROM pg_extension WHERE extname = 'vector'\" -c 'SELECT lab_vector_stand_in()'",
            db.private_ip()
        ));
        assert_eq!(extensions, "vector\nlab stand-in for pgvector\n");
        // The internet is not among the clients: no route to the private address.
        assert!(!ok(&lab.from_internet(&connect_command(db.private_ip(), 5432))));

        // The data directory is on the volume: an ext4 the rendered volume script made on its device.
        let data = format!("/var/lib/terrace/pgdata/{version}/main");
        assert_eq!(
            db.run_ok("runuser -u postgres -- psql --no-psqlrc -At -c 'SHOW data_directory'"),
            format!("{data}\n")
        );
        let device = db.run_ok(&format!("readlink -f /dev/disk/by-id/scsi-0HC_Volume_{volume}"));
        assert!(device.starts_with("/dev/loop"), "{device}");
        assert_eq!(
            db.run_ok(&format!("findmnt -n -o SOURCE,FSTYPE --target {data}")),
            format!("{} ext4\n", device.trim())
        );
        assert!(db.run_ok("cat /etc/fstab").contains(" /var/lib/terrace/pgdata ext4 "));

        // The units as systemd would run them: a reload and restarts keep the service up.
        db.run_ok(&format!(
            "systemctl reload pgbouncer.service && systemctl restart postgresql@{version}-main.service && \
             systemctl reload postgresql && systemctl restart pgbouncer && \
             systemctl is-active postgresql@{version}-main.service pgbouncer.service postgresql.service"
        ));
        assert_eq!(psql(6432, "SELECT 1"), "1\n");
        assert_eq!(db.run_ok("ps -o user= -C pgbouncer"), "postgres\n");

        // Backups: WAL archiving with pgBackRest and a dump with s3cmd, over TLS to the lab's Object
        // Storage, into terrace's bucket.
        db.run_ok("runuser -u postgres -- pgbackrest --stanza=main check");
        db.run_ok("systemctl start terrace-backup.service");
        let listing = lab.s3cmd("ls --recursive s3://lab-backups/");
        let listing = String::from_utf8_lossy(&listing.stdout).into_owned();
        assert!(listing.contains("s3://lab-backups/postgres/main/dump/app-"), "{listing}");
        assert!(listing.contains("s3://lab-backups/postgres/main/pgbackrest/archive/main/"), "{listing}");
    });
}

#[test]
fn a_docker_ce_hosts_container_reaches_its_host_from_its_own_address() {
    lab::isolated(|lab| {
        server(lab, "docker", json!({ "image": "docker-ce" }));
        let host = lab.wait_booted("docker", BOOT);
        assert_eq!(host.run_ok("ip -4 -o addr show docker0 | awk '{ print $4 }'"), "172.17.0.1/16\n");
        let listener = host.listen_once(8000);
        let out = host.in_container(&connect_command(lab::DOCKER_BRIDGE, 8000));
        assert!(ok(&out), "the container cannot reach its host:\n{}", describe(&out));
        assert_eq!(listener.peer(), lab::CONTAINER);
        assert!(host.run_ok("systemctl is-active docker.service").contains("active"));
    });
}

#[test]
fn the_lab_follows_power_network_volume_rebuild_and_delete_actions() {
    lab::isolated(|lab| {
        let api = lab.api();
        let net = network(lab);
        let before = std::fs::read_to_string("/proc/sys/vm/overcommit_memory").expect("the kernel's setting");
        let spec = RedisSpec {
            version: 7,
            memory_mb: 64,
            password: "lab-redis-password-0123456789".into(),
            bind: vec!["0.0.0.0".into()],
            replica_of: None,
            persistence: true,
            docker: false,
        };
        let cache = server(lab, "cache", json!({ "user_data": cloud_config(&redis(&spec)) }));
        let client = server(lab, "client", json!({ "networks": [net] }));
        let redis_cli = "redis-cli -a lab-redis-password-0123456789 --no-auth-warning";
        let host = lab.wait_booted("cache", BOOT);
        let other = lab.wait_booted("client", BOOT);
        assert_eq!(host.run_ok(&format!("{redis_cli} SET key value")), "OK\n");
        assert_eq!(host.run_ok("ps -o user= -C redis-server"), "redis\n");
        // sysctl is recorded on the host, and the machine's kernel is left as it was.
        assert_eq!(host.run_ok("sysctl -n vm.overcommit_memory"), "1\n");
        assert_eq!(std::fs::read_to_string("/proc/sys/vm/overcommit_memory").expect("the kernel's setting"), before);

        // A network attached later: an interface appears, and the other member reaches Redis on it.
        api.post(&format!("/servers/{cache}/actions/attach_to_network"), &json!({ "network": net }));
        let private = lab::wait_for("cache's private interface", Duration::from_secs(30), || {
            host.private_ips().first().map(|(_, ip)| *ip)
        });
        let get = format!("{redis_cli} -h {private} GET key");
        assert_eq!(other.run_ok(&get), "value\n");

        // Power: off ends the host's processes; on starts its enabled units again, with their data.
        api.post(&format!("/servers/{cache}/actions/poweroff"), &json!({}));
        lab::wait_for("cache to be off", Duration::from_secs(30), || (!host.powered()).then_some(()));
        assert!(!ok(&other.run(&connect_command(private, 6379))), "Redis stopped with its server");
        assert_eq!(host.run_ok("pgrep -c -x 'redis-server|sshd|postgres' || true"), "0\n");
        api.post(&format!("/servers/{cache}/actions/poweron"), &json!({}));
        assert!(host.run_ok("cloud-init status --wait").ends_with("\nstatus: done\n"));
        assert_eq!(other.run_ok(&get), "value\n", "Redis started again, with its data");

        // Detached from the network: the interface and the route are gone.
        api.post(&format!("/servers/{cache}/actions/detach_from_network"), &json!({ "network": net }));
        lab::wait_for("cache's private interface to go", Duration::from_secs(30), || {
            host.private_ips().is_empty().then_some(())
        });
        assert_eq!(host.run_ok("ip -o link show | grep -c enp || true"), "0\n");
        assert!(!ok(&other.run(&connect_command(private, 6379))));

        // A volume made with a filesystem, attached to one server, then to another, keeps its data.
        let volume = api.post(
            "/volumes",
            &json!({ "name": "data", "size": 10, "location": "fsn1", "format": "ext4", "server": cache }),
        );
        let volume = volume["volume"]["id"].as_u64().expect("the volume's id");
        let device = format!("/dev/disk/by-id/scsi-0HC_Volume_{volume}");
        let appears = |host: &lab::Host| {
            lab::wait_for(&format!("{device} on {}", host.name()), Duration::from_secs(30), || {
                ok(&host.run(&format!("test -b {device}"))).then_some(())
            });
        };
        appears(&host);
        host.run_ok(&format!("mkdir -p /mnt/v && mount {device} /mnt/v && echo kept > /mnt/v/file && umount /mnt/v"));
        api.post(&format!("/volumes/{volume}/actions/detach"), &json!({}));
        lab::wait_for(&format!("{device} to go from cache"), Duration::from_secs(30), || {
            (!ok(&host.run(&format!("test -e {device}")))).then_some(())
        });
        api.post(&format!("/volumes/{volume}/actions/attach"), &json!({ "server": client }));
        appears(&other);
        assert_eq!(
            other.run_ok(&format!("mkdir -p /mnt/v && mount -o ro {device} /mnt/v && cat /mnt/v/file")),
            "kept\n"
        );
        other.run_ok("umount /mnt/v");

        // A rebuild is a new host from the new user_data; the volume is attached to it again.
        let user_data = "#cloud-config\nruncmd:\n  - echo rebuilt > /root/rebuilt\n";
        other.run_ok("touch /root/before-rebuild");
        api.post(
            &format!("/servers/{client}/actions/rebuild"),
            &json!({ "image": "debian-12", "user_data": user_data }),
        );
        let rebuilt = lab::wait_for("the rebuilt client to boot", Duration::from_secs(60), || {
            let host = lab.try_host("client")?;
            (host.pid() != other.pid() && ok(&host.run("test -f /root/rebuilt"))).then_some(host)
        });
        assert!(!ok(&rebuilt.run("test -e /root/before-rebuild")), "a rebuild starts from a new disk");
        appears(&rebuilt);
        assert_eq!(rebuilt.private_ip(), other.private_ip());

        // A deleted server's host is gone, and its address answers no more.
        let address = host.public_ip();
        api.delete(&format!("/servers/{cache}"));
        lab::wait_for("cache's host to go", Duration::from_secs(30), || lab.try_host("cache").is_none().then_some(()));
        assert!(!ok(&lab.from_internet(&connect_command(address, 6379))));
    });
}
