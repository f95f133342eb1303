//! `Session`: one authenticated SSH connection to a server (russh over tokio), with the host key
//! pinned and no trust on first use, and the commands and file operations apply runs through it.
//!
//! Commands may run in parallel on one session: each runs on its own channel, and at most
//! [`PARALLEL_CHANNELS`] are open at once (the rest wait their turn), below OpenSSH's default
//! `MaxSessions` of 10. Commands have no time limit of their own, since a package installation may
//! run for minutes without a word; a server that stops answering is caught by the keepalive.

use std::borrow::Cow;
use std::collections::BTreeMap;
use std::fmt;
use std::net::IpAddr;
use std::sync::Arc;
use std::time::Duration;

use russh::client::{self, Handle};
use russh::keys::ssh_key::{Algorithm, PrivateKey, PublicKey};
use russh::keys::{PrivateKeyWithHashAlg, PublicKeyOrCertificate};
use russh::{ChannelMsg, Disconnect, Preferred, Sig};
use tokio::net::TcpStream;
use tokio::sync::Semaphore;
use tokio::time::Instant;

use super::error::{command_summary, stderr_tail};
use super::keys::{fingerprint_of, parse_private, parse_public};
use super::script;
use super::{HostError, Login, Output, RemoteFile, Target};

/// How many commands run at once on one session.
pub const PARALLEL_CHANNELS: usize = 8;
/// After this long without a packet from the server a keepalive is sent; after
/// [`KEEPALIVE_MAX`] unanswered ones the connection is given up, so a dead server is noticed
/// within about a minute even in the middle of a silent command.
const KEEPALIVE_INTERVAL: Duration = Duration::from_secs(15);
const KEEPALIVE_MAX: usize = 4;
/// The longest single attempt of `connect_until`; a booting server that accepts the connection
/// but never answers is given up on and tried again.
const ATTEMPT_TIMEOUT: Duration = Duration::from_secs(10);
/// The shortest attempt `connect_until` makes, so a deadline already close still gets one real try.
const SHORTEST_ATTEMPT: Duration = Duration::from_secs(1);
const FIRST_BACKOFF: Duration = Duration::from_millis(250);
const LONGEST_BACKOFF: Duration = Duration::from_secs(5);

/// How the answer of a script over paths is read: an entry per path, or what was unexpected.
type Parse<T> = fn(&[String], &[u8]) -> Result<BTreeMap<String, T>, String>;

/// An authenticated SSH connection to one server.
pub struct Session {
    handle: Handle<PinnedHostKey>,
    host: String,
    address: String,
    channels: Semaphore,
}

impl fmt::Debug for Session {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Session").field("host", &self.host).field("address", &self.address).finish()
    }
}

/// The russh handler: it accepts exactly the pinned host key and nothing else.
struct PinnedHostKey {
    pinned: PublicKey,
}

/// The handler's error: russh's own, or the pinned key's refusal with the key that was presented,
/// so the refusal surfaces as [`HostError::HostKeyMismatch`] rather than a generic failure.
#[derive(Debug)]
enum HandshakeError {
    Ssh(russh::Error),
    Mismatch { presented: String },
}

impl From<russh::Error> for HandshakeError {
    fn from(error: russh::Error) -> Self {
        HandshakeError::Ssh(error)
    }
}

impl client::Handler for PinnedHostKey {
    type Error = HandshakeError;

    async fn check_server_key(&mut self, presented: &PublicKeyOrCertificate) -> Result<bool, HandshakeError> {
        match presented {
            // The comment is not part of the key; only the algorithm and key bytes are compared.
            PublicKeyOrCertificate::PublicKey { key, .. } if key.key_data() == self.pinned.key_data() => Ok(true),
            // A certificate is never asked for (no certificate algorithms are offered); if one came
            // anyway, its key is not the pinned key either way.
            other => Err(HandshakeError::Mismatch { presented: fingerprint_of(&other.public_key()) }),
        }
    }
}

fn client_config() -> client::Config {
    client::Config {
        preferred: Preferred {
            // The servers get only an ed25519 host key from terrace, so nothing else is offered:
            // a server presenting another kind of key fails the negotiation instead of the pin.
            key: Cow::Borrowed(&[Algorithm::Ed25519]),
            ..Preferred::default()
        },
        keepalive_interval: Some(KEEPALIVE_INTERVAL),
        keepalive_max: KEEPALIVE_MAX,
        // Idle sessions are kept: a session waits between phases of an apply, and the keepalive
        // already notices a server that is gone.
        inactivity_timeout: None,
        ..client::Config::default()
    }
}

impl Session {
    /// One attempt to connect and log in, bounded by `timeout`.
    pub async fn connect(target: &Target, login: &Login, timeout: Duration) -> Result<Session, HostError> {
        let pinned = parse_public(&target.host_key)
            .map_err(|cause| HostError::Key(format!("the host key pinned for `{}` is {cause}", target.name)))?;
        if pinned.algorithm() != Algorithm::Ed25519 {
            return Err(HostError::Key(format!(
                "the host key pinned for `{}` is {}, but terrace accepts only ssh-ed25519 host keys",
                target.name,
                pinned.algorithm()
            )));
        }
        let key = parse_private(&login.private_key)
            .map_err(|cause| HostError::Key(format!("the login key for `{}` is {cause}", target.name)))?;
        let ip: IpAddr = target.address.parse().map_err(|_| HostError::Protocol {
            host: target.name.clone(),
            cause: format!("`{}` is not an IP address", target.address),
        })?;
        match tokio::time::timeout(timeout, handshake(target, ip, login, pinned, key)).await {
            Ok(session) => session,
            Err(_) => Err(unreachable(target, format!("no SSH answer within {timeout:?}"))),
        }
    }

    /// Connects as [`Session::connect`] does, retrying while the server cannot be reached
    /// (refused, timed out, reset, no route, closed before SSH was set up: a server still
    /// booting) with backoff until `deadline`, then returning the last such error. A host key
    /// mismatch, a rejected login or any other error is returned at once.
    pub async fn connect_until(target: &Target, login: &Login, deadline: Instant) -> Result<Session, HostError> {
        let started = Instant::now();
        let mut backoff = FIRST_BACKOFF;
        let mut attempts = 0u32;
        loop {
            let remaining = deadline.saturating_duration_since(Instant::now());
            let timeout = if attempts == 0 {
                remaining.clamp(SHORTEST_ATTEMPT, ATTEMPT_TIMEOUT)
            } else {
                remaining.min(ATTEMPT_TIMEOUT)
            };
            attempts += 1;
            let cause = match Session::connect(target, login, timeout).await {
                Err(HostError::Unreachable { cause, .. }) => cause,
                other => return other,
            };
            let remaining = deadline.saturating_duration_since(Instant::now());
            if remaining.is_zero() {
                let waited = Instant::now().duration_since(started).as_secs();
                return Err(unreachable(target, format!("{cause} (gave up after {attempts} attempts in {waited}s)")));
            }
            tokio::time::sleep(backoff.min(remaining)).await;
            backoff = (backoff * 2).min(LONGEST_BACKOFF);
        }
    }

    /// Runs `command` through the remote user's shell (as `ssh host command` does), feeding it
    /// `stdin` if given and then end-of-file; without `stdin` it sees end-of-file at once.
    /// A command killed by a signal gets the shell's status for it, 128 and the signal's number,
    /// and a line on its standard error that names the signal.
    pub async fn run(&self, command: &str, stdin: Option<&[u8]>) -> Result<Output, HostError> {
        let summary = command_summary(command);
        // The semaphore is never closed, so waiting for a permit cannot fail.
        let _permit = self.channels.acquire().await.map_err(|_| self.protocol("the session is closed".to_owned()))?;
        let channel = self.handle.channel_open_session().await.map_err(|error| {
            let cause = format!("cannot open a channel for `{summary}`: {error}");
            if self.handle.is_closed() { self.disconnected(cause) } else { self.protocol(cause) }
        })?;
        let (mut reader, writer) = channel.split();
        writer
            .exec(true, command)
            .await
            .map_err(|error| self.protocol(format!("cannot start `{summary}`: {error}")))?;

        // Standard input is sent while the output is read, so a command that writes much before
        // it reads cannot stall on a full window; once the command has ended, input it did not
        // read no longer matters, and a failure to send it is not an error of its own.
        let feed = async {
            if let Some(input) = stdin {
                writer.data_bytes(input.to_vec()).await?;
            }
            writer.eof().await
        };
        tokio::pin!(feed);
        let mut fed = false;
        let mut output = Output { status: 0, stdout: Vec::new(), stderr: Vec::new() };
        let mut status = None;
        loop {
            let message = tokio::select! {
                _ = &mut feed, if !fed => {
                    fed = true;
                    continue;
                }
                message = reader.wait() => message,
            };
            match message {
                Some(ChannelMsg::Data { data }) => output.stdout.extend_from_slice(&data),
                // Extended data of type 1 is standard error; no other type is defined.
                Some(ChannelMsg::ExtendedData { data, ext: 1 }) => output.stderr.extend_from_slice(&data),
                Some(ChannelMsg::ExitStatus { exit_status }) => status = Some(exit_status),
                Some(ChannelMsg::ExitSignal { signal_name, core_dumped, .. }) => {
                    let (number, name) = signal(&signal_name);
                    let dumped = if core_dumped { " (core dumped)" } else { "" };
                    output.stderr.extend_from_slice(format!("\nkilled by signal {name}{dumped}\n").as_bytes());
                    status = Some(128 + number);
                }
                Some(ChannelMsg::Failure) => {
                    return Err(self.protocol(format!("the server refused to run `{summary}`")));
                }
                Some(ChannelMsg::Close) | None => break,
                Some(_) => {}
            }
        }
        match status {
            Some(status) => {
                output.status = status;
                Ok(output)
            }
            None => Err(self.disconnected(format!(
                "it ended before `{summary}` reported how it exited; it may or may not have run"
            ))),
        }
    }

    /// [`Session::run`], but an exit status other than 0 is [`HostError::CommandFailed`] with the
    /// end of standard error and the command's first line (never its standard input). Returns
    /// standard output. Secrets belong on standard input: the command line shows in errors.
    pub async fn check(&self, command: &str, stdin: Option<&[u8]>) -> Result<Vec<u8>, HostError> {
        self.check_named(command, stdin, &command_summary(command)).await
    }

    /// [`Session::check`] for the scripts this layer builds, which errors name by what they do.
    async fn check_named(&self, command: &str, stdin: Option<&[u8]>, summary: &str) -> Result<Vec<u8>, HostError> {
        let output = self.run(command, stdin).await?;
        if output.status != 0 {
            return Err(HostError::CommandFailed {
                host: self.host.clone(),
                command: summary.to_owned(),
                status: output.status,
                stderr: stderr_tail(&output.stderr),
            });
        }
        Ok(output.stdout)
    }

    /// Digest, mode, owner and content of each regular file at `paths` (links followed), read
    /// in one remote command; `None` for a path where nothing is. Something other than a file at a
    /// path (a folder) fails the command.
    pub async fn read_files(&self, paths: &[String]) -> Result<BTreeMap<String, Option<RemoteFile>>, HostError> {
        self.per_path("read", paths, script::read_files_script, script::parse_read_files).await
    }

    /// Only the SHA-256 (lower hex) of each file at `paths`, `None` where nothing is: a cheap drift
    /// check in one remote command.
    pub async fn digests(&self, paths: &[String]) -> Result<BTreeMap<String, Option<String>>, HostError> {
        self.per_path("digest", paths, script::digests_script, script::parse_digests).await
    }

    /// One remote script over `paths` (none sent for no paths), its answer parsed strictly into
    /// an entry per path.
    async fn per_path<T>(
        &self,
        verb: &str,
        paths: &[String],
        script: fn(&[String]) -> String,
        parse: Parse<T>,
    ) -> Result<BTreeMap<String, T>, HostError> {
        if paths.is_empty() {
            return Ok(BTreeMap::new());
        }
        self.check_paths(paths)?;
        let summary = format!("{verb} {}", describe_paths(paths));
        let stdout = self.check_named(&script(paths), None, &summary).await?;
        parse(paths, &stdout).map_err(|cause| self.protocol(format!("unexpected answer to `{summary}`: {cause}")))
    }

    /// Writes `content` to `path` atomically: the parent folder is created if missing (0755,
    /// owned by the login user, root), the content goes to a temporary file in the same folder,
    /// which gets `owner` and `mode`, is flushed to disk and renamed over `path`. Readers see the
    /// old file or the new one, never a part. The content travels on standard input, never on a
    /// command line.
    pub async fn write_file(&self, path: &str, content: &[u8], mode: &str, owner: &str) -> Result<(), HostError> {
        script::check_path(path).map_err(|cause| self.protocol(cause))?;
        let mode = script::check_mode(mode).map_err(|cause| self.protocol(cause))?;
        script::check_owner(owner).map_err(|cause| self.protocol(cause))?;
        let summary = format!("write {path}");
        self.check_named(&script::write_file_script(path, &mode, owner), Some(content), &summary).await?;
        Ok(())
    }

    /// Ends the connection politely; an error here means it is gone already.
    pub async fn close(self) {
        let _ = self.handle.disconnect(Disconnect::ByApplication, "", "en").await;
    }

    fn check_paths(&self, paths: &[String]) -> Result<(), HostError> {
        paths.iter().try_for_each(|path| script::check_path(path)).map_err(|cause| self.protocol(cause))
    }

    fn protocol(&self, cause: String) -> HostError {
        HostError::Protocol { host: self.host.clone(), cause }
    }

    fn disconnected(&self, cause: String) -> HostError {
        HostError::Disconnected { host: self.host.clone(), cause }
    }
}

async fn handshake(
    target: &Target,
    ip: IpAddr,
    login: &Login,
    pinned: PublicKey,
    key: PrivateKey,
) -> Result<Session, HostError> {
    let stream = TcpStream::connect((ip, target.port)).await.map_err(|error| unreachable(target, io_cause(&error)))?;
    // Commands and their answers are small packets; waiting to batch them only adds latency.
    let _ = stream.set_nodelay(true);
    let expected = fingerprint_of(&pinned);
    let mut handle = client::connect_stream(Arc::new(client_config()), stream, PinnedHostKey { pinned })
        .await
        .map_err(|error| match error {
            HandshakeError::Mismatch { presented } => HostError::HostKeyMismatch {
                host: target.name.clone(),
                address: target.address.clone(),
                expected: expected.clone(),
                presented,
            },
            HandshakeError::Ssh(error) => setup_failure(target, error),
        })?;
    // Only an RSA key needs a hash chosen from what the server accepts; for ed25519 it is ignored.
    let hash = if key.algorithm().is_rsa() {
        handle.best_supported_rsa_hash().await.map_err(|error| setup_failure(target, error))?.flatten()
    } else {
        None
    };
    let result = handle
        .authenticate_publickey(login.user.clone(), PrivateKeyWithHashAlg::new(Arc::new(key), hash))
        .await
        .map_err(|error| setup_failure(target, error))?;
    if !result.success() {
        return Err(HostError::AuthRejected {
            host: target.name.clone(),
            address: target.address.clone(),
            user: login.user.clone(),
        });
    }
    Ok(Session {
        handle,
        host: target.name.clone(),
        address: target.address.clone(),
        channels: Semaphore::new(PARALLEL_CHANNELS),
    })
}

/// An error while setting up SSH: a broken or closed connection is the server not being
/// reachable (yet); anything else is a disagreement that retrying will not fix.
fn setup_failure(target: &Target, error: russh::Error) -> HostError {
    match error {
        russh::Error::IO(error) => unreachable(target, io_cause(&error)),
        russh::Error::Disconnect | russh::Error::HUP => {
            unreachable(target, "the connection closed before SSH was set up".to_owned())
        }
        russh::Error::ConnectionTimeout => unreachable(target, "the connection timed out".to_owned()),
        russh::Error::NoCommonAlgo { kind, theirs, .. } => HostError::Protocol {
            host: target.name.clone(),
            cause: format!(
                "the server at {} offers no {kind:?} algorithm terrace accepts (it offers {theirs:?}; terrace needs an ssh-ed25519 host key)",
                target.address
            ),
        },
        other => HostError::Protocol {
            host: target.name.clone(),
            cause: format!("setting up SSH with {} failed: {other}", target.address),
        },
    }
}

fn io_cause(error: &std::io::Error) -> String {
    use std::io::ErrorKind;
    match error.kind() {
        ErrorKind::ConnectionRefused => "connection refused (nothing listens on the SSH port yet)".to_owned(),
        ErrorKind::TimedOut => "the connection timed out".to_owned(),
        ErrorKind::ConnectionReset | ErrorKind::ConnectionAborted => "the connection was reset".to_owned(),
        ErrorKind::UnexpectedEof => "the connection closed before SSH was set up".to_owned(),
        ErrorKind::HostUnreachable | ErrorKind::NetworkUnreachable => "no route to the address".to_owned(),
        _ => error.to_string(),
    }
}

fn unreachable(target: &Target, cause: String) -> HostError {
    HostError::Unreachable { host: target.name.clone(), address: target.address.clone(), cause }
}

/// Linux's number and the name of a signal as SSH reports it.
fn signal(signal: &Sig) -> (u32, String) {
    let number = match signal {
        Sig::HUP => 1,
        Sig::INT => 2,
        Sig::QUIT => 3,
        Sig::ILL => 4,
        Sig::ABRT => 6,
        Sig::FPE => 8,
        Sig::KILL => 9,
        Sig::USR1 => 10,
        Sig::SEGV => 11,
        Sig::PIPE => 13,
        Sig::ALRM => 14,
        Sig::TERM => 15,
        Sig::Custom(_) => 0,
    };
    let name = match signal {
        Sig::Custom(name) => name.clone(),
        known => format!("{known:?}"),
    };
    (number, name)
}

/// Paths as a failed command's summary names them: one by name, several by count and the first.
fn describe_paths(paths: &[String]) -> String {
    match paths {
        [one] => one.clone(),
        [first, ..] => format!("{} files ({first}, …)", paths.len()),
        [] => "no files".to_owned(),
    }
}
