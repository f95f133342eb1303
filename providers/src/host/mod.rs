//! Access to running servers over SSH, for the parts of `apply` that configure PostgreSQL and Redis
//! on them: key pairs and fingerprints (`keys.rs`), the pinned-host-key connection with commands
//! and atomic file writes (`session.rs`), the remote scripts and their strict parsers
//! (`script.rs`), and `HostError` (`error.rs`). The SSH protocol itself is russh's; private keys
//! and standard input never appear in an error, `Debug` output or log.

mod error;
mod keys;
mod script;
mod session;

use std::fmt;

pub use error::HostError;
pub use keys::{KeyPair, fingerprint, generate_ed25519};
pub use script::sha256_hex;
pub use session::{PARALLEL_CHANNELS, Session};

/// A server to reach, with the host key it must prove.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Target {
    /// What errors call the server, e.g. `postgres.main.server.primary`.
    pub name: String,
    /// Its IP address.
    pub address: String,
    pub port: u16,
    /// The pinned host key, in OpenSSH's one-line form (`ssh-ed25519 AAAA…`): the only key
    /// accepted, from the first connection on.
    pub host_key: String,
}

/// Who to log in as, and with which key.
#[derive(Clone, PartialEq, Eq)]
pub struct Login {
    pub user: String,
    /// An unencrypted OpenSSH private key (`-----BEGIN OPENSSH PRIVATE KEY-----` …).
    pub private_key: String,
}

impl fmt::Debug for Login {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Login").field("user", &self.user).field("private_key", &"(redacted)").finish()
    }
}

/// How a command ended, and what it printed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Output {
    /// The exit status; 128 and the signal's number for a command killed by a signal.
    pub status: u32,
    pub stdout: Vec<u8>,
    pub stderr: Vec<u8>,
}

/// A regular file on a server, as `Session::read_files` finds it.
#[derive(Clone, PartialEq, Eq)]
pub struct RemoteFile {
    /// SHA-256 of `content`, lower-case hex.
    pub sha256: String,
    /// Four octal digits, as `0640`.
    pub mode: String,
    /// `user:group`, as `postgres:postgres`.
    pub owner: String,
    pub content: Vec<u8>,
}

/// Without the content, which may hold passwords (a `pg_hba.conf`, a `redis.conf`) and can be large.
impl fmt::Debug for RemoteFile {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("RemoteFile")
            .field("sha256", &self.sha256)
            .field("mode", &self.mode)
            .field("owner", &self.owner)
            .field("content", &format_args!("({} bytes)", self.content.len()))
            .finish()
    }
}
