//! `HostError`: everything that can go wrong reaching or using a server over SSH, worded so the
//! user knows which server it was and what to do. No variant carries a private key or a command's
//! standard input.

/// How much of a failed command's standard error an error keeps: the end, where the reason usually is.
const STDERR_TAIL: usize = 2048;

/// An SSH operation on a server that did not succeed.
#[derive(thiserror::Error, Debug)]
pub enum HostError {
    /// Nothing answered, or the connection broke before SSH was set up: the server may still be
    /// booting. `connect_until` retries this one and nothing else.
    #[error(
        "cannot reach `{host}` ({address}) over SSH: {cause}; check that the server is running and that its firewall lets SSH in from this machine"
    )]
    Unreachable { host: String, address: String, cause: String },
    /// The server proved a host key other than the pinned one: never trusted, never retried.
    #[error(
        "refusing to connect to `{host}` ({address}): its host key {presented} is not the key terrace gave it ({expected}); the server may have been rebuilt or the address taken over"
    )]
    HostKeyMismatch { host: String, address: String, expected: String, presented: String },
    /// The server did not accept the login key.
    #[error(
        "`{host}` ({address}) rejected the login of `{user}` with the key terrace gave it; its authorized keys do not hold that key (was the server created with another key, or the file changed by hand?)"
    )]
    AuthRejected { host: String, address: String, user: String },
    /// A command ran and exited with a status other than 0.
    #[error("`{command}` failed on `{host}` with exit status {status}: {}", shown_stderr(.stderr))]
    CommandFailed { host: String, command: String, status: u32, stderr: String },
    /// The connection ended after it was set up: mid-command (which may or may not have run), or
    /// before a new command could start. The server may have rebooted; commands terrace sends are
    /// written so that running them again is safe.
    #[error("the SSH connection to `{host}` ended: {cause}")]
    Disconnected { host: String, cause: String },
    /// A key that cannot be read or made; the message never contains key material.
    #[error("SSH key: {0}")]
    Key(String),
    /// The SSH connection failed after it was set up, or the server answered something this layer
    /// does not expect (a refused channel, output in the wrong shape), or a caller passed a path or
    /// mode that cannot be sent.
    #[error("SSH with `{host}` went wrong: {cause}")]
    Protocol { host: String, cause: String },
}

fn shown_stderr(stderr: &str) -> String {
    let trimmed = stderr.trim();
    if trimmed.is_empty() { "(no error output)".to_owned() } else { trimmed.to_owned() }
}

/// The last [`STDERR_TAIL`] bytes of a command's standard error as text, cut at a character
/// boundary, marked when cut.
pub(crate) fn stderr_tail(stderr: &[u8]) -> String {
    let text = String::from_utf8_lossy(stderr);
    if text.len() <= STDERR_TAIL {
        return text.into_owned();
    }
    let mut start = text.len() - STDERR_TAIL;
    while !text.is_char_boundary(start) {
        start += 1;
    }
    format!("…{}", &text[start..])
}

/// A command as errors show it: its first line, cut to a length that fits a message. Scripts this
/// layer builds are named by what they do instead (see `Session::check_named`).
pub(crate) fn command_summary(command: &str) -> String {
    const LONGEST: usize = 80;
    let trimmed = command.trim();
    let first = trimmed.lines().next().unwrap_or("");
    let mut summary: String = first.chars().take(LONGEST).collect();
    if summary.len() < trimmed.len() {
        summary.push('…');
    }
    summary
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn stderr_keeps_the_end_on_a_character_boundary() {
        let long = format!("{}é{}", "x".repeat(3000), "the reason");
        let tail = stderr_tail(long.as_bytes());
        assert!(tail.starts_with('…'));
        assert!(tail.ends_with("the reason"));
        assert!(tail.len() <= STDERR_TAIL + '…'.len_utf8());
        assert_eq!(stderr_tail(b"short"), "short");
    }

    #[test]
    fn summaries_keep_the_first_line() {
        assert_eq!(command_summary("systemctl restart postgresql"), "systemctl restart postgresql");
        assert_eq!(command_summary("set -e\nrm -rf /tmp/x"), "set -e…");
        let long = "a".repeat(200);
        assert_eq!(command_summary(&long).chars().count(), 81);
    }

    #[test]
    fn a_failed_command_says_where_and_why() {
        let error = HostError::CommandFailed {
            host: "redis.cache.server.primary".into(),
            command: "false".into(),
            status: 1,
            stderr: "\n".into(),
        };
        assert_eq!(
            error.to_string(),
            "`false` failed on `redis.cache.server.primary` with exit status 1: (no error output)"
        );
    }
}
