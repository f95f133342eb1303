//! The SSH host-access layer (`terrace_providers::host`) against a real OpenSSH server: each test
//! starts its own `sshd` on 127.0.0.1 with a host key and an authorized login key made by
//! `generate_ed25519`, and checks what the server did through the same filesystem. Needs root (as
//! CI runs) and the `openssh-server` package.

use std::fs::{self, OpenOptions};
use std::io::Write;
use std::os::unix::fs::{MetadataExt, OpenOptionsExt, PermissionsExt};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

use sha2::{Digest, Sha256};
use terrace_providers::host::{
    HostError, KeyPair, Login, PARALLEL_CHANNELS, Session, Target, fingerprint, generate_ed25519,
};
use tokio::time::Instant;

const HOST: &str = "postgres.main.server.primary";
const TIMEOUT: Duration = Duration::from_secs(20);

/// A running `sshd`, stopped when dropped. Its configuration, keys, log and a scratch folder for
/// files live in a temporary folder of its own.
struct Sshd {
    child: Child,
    port: u16,
    dir: tempfile::TempDir,
    host_key: KeyPair,
    login_key: KeyPair,
}

impl Sshd {
    fn start() -> Sshd {
        Sshd::start_on(
            free_port(),
            generate_ed25519("host").expect("host key"),
            generate_ed25519("login").expect("login key"),
        )
    }

    fn start_on(port: u16, host_key: KeyPair, login_key: KeyPair) -> Sshd {
        // The privilege separation folder sshd insists on.
        fs::create_dir_all("/run/sshd").expect("/run/sshd");
        let dir = tempfile::tempdir().expect("temporary folder");
        let host_key_file = dir.path().join("ssh_host_ed25519_key");
        write_private(&host_key_file, &host_key.private_openssh);
        let authorized = dir.path().join("authorized_keys");
        fs::write(&authorized, format!("{}\n", login_key.public_openssh)).expect("authorized_keys");
        let config = dir.path().join("sshd_config");
        fs::write(
            &config,
            format!(
                "ListenAddress 127.0.0.1:{port}\nHostKey {}\nAuthorizedKeysFile {}\nUsePAM no\nStrictModes no\nPidFile none\nPermitRootLogin prohibit-password\nPasswordAuthentication no\nKbdInteractiveAuthentication no\nLogLevel VERBOSE\n",
                host_key_file.display(),
                authorized.display(),
            ),
        )
        .expect("sshd_config");
        let log = fs::File::create(dir.path().join("sshd.log")).expect("sshd.log");
        let child = Command::new("/usr/sbin/sshd")
            .args(["-D", "-e", "-f"])
            .arg(&config)
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(log)
            .spawn()
            .expect("/usr/sbin/sshd starts (package openssh-server)");
        let mut sshd = Sshd { child, port, dir, host_key, login_key };
        sshd.wait_until_listening();
        sshd
    }

    /// Waits for sshd's own "Server listening" line rather than probing the port, so that no test
    /// connection appears in the log before the test's own.
    fn wait_until_listening(&mut self) {
        for _ in 0..400 {
            if self.log().contains(&format!("Server listening on 127.0.0.1 port {}", self.port)) {
                return;
            }
            if let Some(status) = self.child.try_wait().expect("sshd status") {
                panic!("sshd exited ({status}):\n{}", self.log());
            }
            std::thread::sleep(Duration::from_millis(25));
        }
        panic!("sshd did not start listening:\n{}", self.log());
    }

    fn log(&self) -> String {
        fs::read_to_string(self.dir.path().join("sshd.log")).unwrap_or_default()
    }

    /// How many TCP connections sshd has accepted.
    fn connections(&self) -> usize {
        self.log().matches("Connection from 127.0.0.1 port").count()
    }

    fn target(&self) -> Target {
        Target {
            name: HOST.to_owned(),
            address: "127.0.0.1".to_owned(),
            port: self.port,
            host_key: self.host_key.public_openssh.clone(),
        }
    }

    fn login(&self) -> Login {
        Login { user: "root".to_owned(), private_key: self.login_key.private_openssh.clone() }
    }

    async fn session(&self) -> Session {
        Session::connect(&self.target(), &self.login(), TIMEOUT).await.expect("connects")
    }

    /// A folder for the files a test writes, inside the server's temporary folder.
    fn scratch(&self) -> PathBuf {
        self.dir.path().join("files")
    }
}

impl Drop for Sshd {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn free_port() -> u16 {
    let listener = std::net::TcpListener::bind("127.0.0.1:0").expect("a free port");
    listener.local_addr().expect("its address").port()
}

fn write_private(path: &Path, text: &str) {
    let mut file = OpenOptions::new().write(true).create_new(true).mode(0o600).open(path).expect("a private key file");
    file.write_all(text.as_bytes()).expect("written");
}

fn path_text(path: &Path) -> String {
    path.to_str().expect("a UTF-8 path").to_owned()
}

fn sha256_hex(bytes: &[u8]) -> String {
    Sha256::digest(bytes).iter().map(|byte| format!("{byte:02x}")).collect()
}

#[tokio::test]
async fn runs_a_command_with_its_output_and_exit_status() {
    let sshd = Sshd::start();
    let session = sshd.session().await;
    let output = session.run("echo out; echo err >&2; exit 3", None).await.expect("runs");
    assert_eq!(output.status, 3);
    assert_eq!(output.stdout, b"out\n");
    assert_eq!(output.stderr, b"err\n");
    let who = session.run("id -un", None).await.expect("runs");
    assert_eq!((who.status, who.stdout.as_slice()), (0, &b"root\n"[..]));
    // Without input a command sees end-of-file at once instead of waiting.
    let empty = session.run("wc -c", None).await.expect("runs");
    assert_eq!(String::from_utf8_lossy(&empty.stdout).trim(), "0");
    session.close().await;
}

#[tokio::test]
async fn feeds_standard_input() {
    let sshd = Sshd::start();
    let session = sshd.session().await;
    // Larger than russh's 2 MiB channel window and echoed back while it is sent: input and output
    // must flow at the same time.
    let input: Vec<u8> = (0..3_000_000u32).map(|i| (i % 251) as u8).collect();
    let output = session.run("cat", Some(&input)).await.expect("runs");
    assert_eq!(output.status, 0);
    assert!(output.stdout == input, "cat returned {} bytes of {}", output.stdout.len(), input.len());
    // A command that ignores its input still ends normally.
    let ignored = session.run("echo done", Some(&input)).await.expect("runs");
    assert_eq!((ignored.status, ignored.stdout.as_slice()), (0, &b"done\n"[..]));
}

#[tokio::test]
async fn check_turns_a_failure_into_an_error_with_status_and_stderr() {
    let sshd = Sshd::start();
    let session = sshd.session().await;
    assert_eq!(session.check("printf fine", None).await.expect("succeeds"), b"fine");
    let error = session
        .check("echo partial; echo 'the reason' >&2; exit 7", Some(b"password=hunter2"))
        .await
        .expect_err("fails");
    let message = error.to_string();
    match &error {
        HostError::CommandFailed { host, command, status, stderr } => {
            assert_eq!(host, HOST);
            assert_eq!(*status, 7);
            assert_eq!(stderr.trim(), "the reason");
            assert!(command.starts_with("echo partial"), "{command}");
        }
        other => panic!("expected CommandFailed, got {other:?}"),
    }
    assert!(message.contains(HOST) && message.contains("the reason") && message.contains('7'), "{message}");
    assert!(!message.contains("hunter2") && !format!("{error:?}").contains("hunter2"), "{message}");
}

#[tokio::test]
async fn writes_files_and_reads_them_back() {
    let sshd = Sshd::start();
    let session = sshd.session().await;
    // A missing parent two levels deep, and a name that needs quoting.
    let folder = sshd.scratch().join("conf.d").join("it's here");
    let path = folder.join("a $file `x`.conf");
    let content = b"listen_addresses = '*'\n\0binary\xff\n".to_vec();
    session.write_file(&path_text(&path), &content, "0640", "root:root").await.expect("writes");

    assert_eq!(fs::read(&path).expect("the file is there"), content);
    let made = fs::metadata(&folder).expect("the folder was made");
    assert_eq!(made.permissions().mode() & 0o7777, 0o755);
    assert_eq!((made.uid(), made.gid()), (0, 0));

    let other = sshd.scratch().join("secret.conf");
    session.write_file(&path_text(&other), b"requirepass x\n", "600", "nobody:nogroup").await.expect("writes");
    let nobody = fs::metadata(&other).expect("the file is there");
    assert_eq!((nobody.uid(), nobody.gid(), nobody.permissions().mode() & 0o7777), (65534, 65534, 0o600));

    let missing = path_text(&sshd.scratch().join("missing.conf"));
    let paths = vec![path_text(&path), path_text(&other), missing.clone()];
    let files = session.read_files(&paths).await.expect("reads");
    assert_eq!(files.len(), 3);
    let first = files[&paths[0]].as_ref().expect("present");
    assert_eq!(first.content, content);
    assert_eq!(first.sha256, sha256_hex(&content));
    assert_eq!((first.mode.as_str(), first.owner.as_str()), ("0640", "root:root"));
    let second = files[&paths[1]].as_ref().expect("present");
    assert_eq!(second.content, b"requirepass x\n");
    assert_eq!((second.mode.as_str(), second.owner.as_str()), ("0600", "nobody:nogroup"));
    assert_eq!(files[&missing], None);
    // The content stays out of Debug output: it may hold passwords.
    assert!(!format!("{second:?}").contains("requirepass"));
}

#[tokio::test]
async fn digests_name_missing_files() {
    let sshd = Sshd::start();
    let session = sshd.session().await;
    let present = path_text(&sshd.scratch().join("present"));
    let empty = path_text(&sshd.scratch().join("empty"));
    let missing = path_text(&sshd.scratch().join("missing"));
    session.write_file(&present, b"maxmemory 1gb\n", "0644", "root:root").await.expect("writes");
    session.write_file(&empty, b"", "0644", "root:root").await.expect("writes");
    let digests = session.digests(&[present.clone(), missing.clone(), empty.clone()]).await.expect("digests");
    assert_eq!(digests.len(), 3);
    assert_eq!(digests[&present].as_deref(), Some(sha256_hex(b"maxmemory 1gb\n").as_str()));
    assert_eq!(digests[&empty].as_deref(), Some(sha256_hex(b"").as_str()));
    assert_eq!(digests[&missing], None);
}

#[tokio::test]
async fn an_overwrite_replaces_the_file_whole_and_leaves_no_temporary_files() {
    let sshd = Sshd::start();
    let session = sshd.session().await;
    let folder = sshd.scratch().join("redis");
    let path = folder.join("redis.conf");
    session.write_file(&path_text(&path), b"port 6379\n", "0640", "root:root").await.expect("writes");
    let before = fs::metadata(&path).expect("written").ino();

    session.write_file(&path_text(&path), b"port 6380\n", "0644", "nobody:nogroup").await.expect("overwrites");
    let after = fs::metadata(&path).expect("written");
    assert_eq!(fs::read(&path).expect("readable"), b"port 6380\n");
    // A new inode: the new content was renamed over the path, never written into the old file.
    assert_ne!(after.ino(), before);
    assert_eq!((after.uid(), after.permissions().mode() & 0o7777), (65534, 0o644));

    // A write that fails half way (no such user) leaves the old file and no temporary file.
    let error = session
        .write_file(&path_text(&path), b"port 1\n", "0640", "no-such-user:nogroup")
        .await
        .expect_err("chown fails");
    match &error {
        HostError::CommandFailed { host, command, stderr, .. } => {
            assert_eq!(host, HOST);
            assert!(command.contains("redis.conf"), "{command}");
            assert!(stderr.contains("no-such-user"), "{stderr}");
        }
        other => panic!("expected CommandFailed, got {other:?}"),
    }
    assert_eq!(fs::read(&path).expect("readable"), b"port 6380\n");
    let names: Vec<String> = fs::read_dir(&folder)
        .expect("listable")
        .map(|entry| entry.expect("an entry").file_name().to_string_lossy().into_owned())
        .collect();
    assert_eq!(names, ["redis.conf"]);
}

#[tokio::test]
async fn a_folder_is_not_read_as_a_file() {
    let sshd = Sshd::start();
    let session = sshd.session().await;
    let folder = sshd.scratch();
    fs::create_dir_all(&folder).expect("a folder");
    let error = session.read_files(&[path_text(&folder)]).await.expect_err("not a file");
    assert!(
        matches!(&error, HostError::CommandFailed { stderr, .. } if stderr.contains("is not a regular file")),
        "{error:?}"
    );
    let error = session.digests(&["relative/path".to_owned()]).await.expect_err("not absolute");
    assert!(matches!(error, HostError::Protocol { .. }), "{error:?}");
}

#[tokio::test]
async fn commands_run_in_parallel_on_one_session() {
    let sshd = Sshd::start();
    let session = Arc::new(sshd.session().await);
    // More commands than OpenSSH's 10 sessions per connection, all at once.
    let count = PARALLEL_CHANNELS * 3;
    let mut commands = tokio::task::JoinSet::new();
    for index in 0..count {
        let session = Arc::clone(&session);
        commands.spawn(async move { (index, session.check(&format!("sleep 0.2; echo {index}"), None).await) });
    }
    let mut finished = 0;
    while let Some(joined) = commands.join_next().await {
        let (index, stdout) = joined.expect("the task ran");
        assert_eq!(stdout.expect("succeeds"), format!("{index}\n").into_bytes());
        finished += 1;
    }
    assert_eq!(finished, count);
}

#[tokio::test]
async fn a_wrong_host_key_is_refused_and_not_retried() {
    let sshd = Sshd::start();
    let impostor_key = generate_ed25519("expected").expect("a key");
    let target = Target { host_key: impostor_key.public_openssh.clone(), ..sshd.target() };
    let deadline = Instant::now() + Duration::from_secs(30);
    let error = Session::connect_until(&target, &sshd.login(), deadline).await.expect_err("refused");
    let expected = fingerprint(&impostor_key.public_openssh).expect("fingerprint");
    let presented = fingerprint(&sshd.host_key.public_openssh).expect("fingerprint");
    match &error {
        HostError::HostKeyMismatch { host, address, expected: e, presented: p } => {
            assert_eq!((host.as_str(), address.as_str()), (HOST, "127.0.0.1"));
            assert_eq!((e, p), (&expected, &presented));
        }
        other => panic!("expected HostKeyMismatch, got {other:?}"),
    }
    let message = error.to_string();
    for part in [HOST, "127.0.0.1", &expected, &presented] {
        assert!(message.contains(part), "{part} missing from: {message}");
    }
    assert_eq!(sshd.connections(), 1, "connect_until retried a host key mismatch:\n{}", sshd.log());
}

#[tokio::test]
async fn a_wrong_login_key_is_rejected_and_not_retried() {
    let sshd = Sshd::start();
    let stranger = generate_ed25519("stranger").expect("a key");
    let login = Login { user: "root".to_owned(), private_key: stranger.private_openssh.clone() };
    let deadline = Instant::now() + Duration::from_secs(30);
    let error = Session::connect_until(&sshd.target(), &login, deadline).await.expect_err("rejected");
    match &error {
        HostError::AuthRejected { host, address, user } => {
            assert_eq!((host.as_str(), address.as_str(), user.as_str()), (HOST, "127.0.0.1", "root"));
        }
        other => panic!("expected AuthRejected, got {other:?}"),
    }
    assert_eq!(sshd.connections(), 1, "connect_until retried a rejected login:\n{}", sshd.log());
    let shown = format!("{error} {error:?} {login:?}");
    assert!(!shown.contains(stranger.private_openssh.lines().nth(1).expect("a body line")), "{shown}");
}

#[tokio::test]
async fn a_closed_port_is_unreachable_at_the_deadline() {
    let keys = generate_ed25519("host").expect("a key");
    let login = generate_ed25519("login").expect("a key");
    let target = Target {
        name: HOST.to_owned(),
        address: "127.0.0.1".to_owned(),
        port: free_port(),
        host_key: keys.public_openssh,
    };
    let login = Login { user: "root".to_owned(), private_key: login.private_openssh };
    let deadline = Instant::now() + Duration::from_millis(1500);
    let error = Session::connect_until(&target, &login, deadline).await.expect_err("nothing listens");
    assert!(
        matches!(&error, HostError::Unreachable { host, address, cause } if host == HOST && address == "127.0.0.1" && cause.contains("refused")),
        "{error:?}"
    );
    let message = error.to_string();
    assert!(message.contains(HOST) && message.contains("127.0.0.1"), "{message}");
}

#[tokio::test]
async fn connect_until_retries_a_server_that_drops_connections() {
    // A server still booting: the port accepts, then the connection closes before SSH.
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.expect("a listener");
    let port = listener.local_addr().expect("its address").port();
    let accepted = Arc::new(AtomicUsize::new(0));
    let counter = Arc::clone(&accepted);
    let server = tokio::spawn(async move {
        while let Ok((connection, _)) = listener.accept().await {
            counter.fetch_add(1, Ordering::SeqCst);
            drop(connection);
        }
    });
    let keys = generate_ed25519("host").expect("a key");
    let login = generate_ed25519("login").expect("a key");
    let target = Target { name: HOST.to_owned(), address: "127.0.0.1".to_owned(), port, host_key: keys.public_openssh };
    let login = Login { user: "root".to_owned(), private_key: login.private_openssh };
    let deadline = Instant::now() + Duration::from_secs(2);
    let error = Session::connect_until(&target, &login, deadline).await.expect_err("never answers");
    server.abort();
    assert!(matches!(&error, HostError::Unreachable { host, .. } if host == HOST), "{error:?}");
    assert!(accepted.load(Ordering::SeqCst) >= 2, "connect_until tried once only: {error}");
}

#[tokio::test]
async fn connect_until_waits_for_a_server_that_starts_late() {
    let port = free_port();
    let host_key = generate_ed25519("host").expect("a key");
    let login_key = generate_ed25519("login").expect("a key");
    let target = Target {
        name: HOST.to_owned(),
        address: "127.0.0.1".to_owned(),
        port,
        host_key: host_key.public_openssh.clone(),
    };
    let login = Login { user: "root".to_owned(), private_key: login_key.private_openssh.clone() };
    let deadline = Instant::now() + Duration::from_secs(60);
    let connecting = tokio::spawn(async move { Session::connect_until(&target, &login, deadline).await });
    tokio::time::sleep(Duration::from_millis(1200)).await;
    let sshd = Sshd::start_on(port, host_key, login_key);
    let session = connecting.await.expect("the task ran").expect("connects once sshd is up");
    assert_eq!(session.check("echo up", None).await.expect("runs"), b"up\n");
    session.close().await;
    drop(sshd);
}

#[test]
fn fingerprints_match_ssh_keygen() {
    let pair = generate_ed25519("terrace fingerprint").expect("a key");
    let dir = tempfile::tempdir().expect("a folder");
    let public = dir.path().join("key.pub");
    fs::write(&public, format!("{}\n", pair.public_openssh)).expect("written");
    let output =
        Command::new("ssh-keygen").args(["-l", "-E", "sha256", "-f"]).arg(&public).output().expect("ssh-keygen runs");
    assert!(output.status.success(), "{}", String::from_utf8_lossy(&output.stderr));
    // "256 SHA256:… comment (ED25519)"
    let printed = String::from_utf8(output.stdout).expect("text");
    let theirs = printed.split_whitespace().nth(1).expect("a fingerprint field");
    assert_eq!(fingerprint(&pair.public_openssh).expect("fingerprint"), theirs);
}

#[test]
fn ssh_keygen_reads_the_private_key() {
    let pair = generate_ed25519("terrace login").expect("a key");
    let dir = tempfile::tempdir().expect("a folder");
    let private = dir.path().join("key");
    write_private(&private, &pair.private_openssh);
    let output = Command::new("ssh-keygen").arg("-y").arg("-f").arg(&private).output().expect("ssh-keygen runs");
    assert!(output.status.success(), "{}", String::from_utf8_lossy(&output.stderr));
    let derived = String::from_utf8(output.stdout).expect("text");
    // The type and key; ssh-keygen may or may not append the comment.
    let fields = |line: &str| line.split_whitespace().take(2).map(str::to_owned).collect::<Vec<_>>();
    assert_eq!(fields(&derived), fields(&pair.public_openssh));
    assert!(pair.public_openssh.ends_with(" terrace login"));
}

#[tokio::test]
async fn a_connection_that_ends_mid_command_is_disconnected_not_a_failure_of_the_command() {
    let sshd = Sshd::start();
    let session = sshd.session().await;
    // The shell's parent is the server's process for this connection: killing it ends the
    // connection before the command can report how it exited (as a reboot does).
    let error = session.run("kill -KILL $PPID; sleep 5", None).await.expect_err("the connection ends");
    assert!(
        matches!(&error, HostError::Disconnected { cause, .. } if cause.contains("may or may not have run")),
        "{error:?}"
    );
    // Nothing more runs on it, and that says so too.
    let error = session.run("true", None).await.expect_err("the session is gone");
    assert!(matches!(error, HostError::Disconnected { .. }), "{error:?}");
}
