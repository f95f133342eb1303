//! SSH keys in OpenSSH's text forms: new ed25519 pairs from the OS random generator (login keys and
//! the host keys terrace gives servers), their fingerprints, and reading them back.

use std::fmt;

use russh::keys::ssh_key::private::{Ed25519Keypair, KeypairData};
use russh::keys::ssh_key::{HashAlg, LineEnding, PrivateKey, PublicKey};

use super::HostError;

/// An SSH key pair in OpenSSH's text forms. `Debug` and `Display` never show the private key.
#[derive(Clone, PartialEq, Eq)]
pub struct KeyPair {
    /// `-----BEGIN OPENSSH PRIVATE KEY-----` …, unencrypted, LF line endings.
    pub private_openssh: String,
    /// `ssh-ed25519 AAAA… comment`, one line.
    pub public_openssh: String,
}

impl fmt::Debug for KeyPair {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("KeyPair")
            .field("private_openssh", &"(redacted)")
            .field("public_openssh", &self.public_openssh)
            .finish()
    }
}

/// The public half: what is safe to show.
impl fmt::Display for KeyPair {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.public_openssh)
    }
}

/// A new ed25519 key pair whose seed comes from the OS random generator, with `comment` on the
/// public key (and inside the private one, as `ssh-keygen -C` does).
pub fn generate_ed25519(comment: &str) -> Result<KeyPair, HostError> {
    // The seed is drawn with getrandom and handed to ssh-key, rather than passing ssh-key a
    // random generator, because ssh-key's generator trait is of a rand_core release no other
    // dependency provides an OS generator for.
    let mut seed = [0u8; 32];
    getrandom::fill(&mut seed).map_err(|error| HostError::Key(format!("the OS random generator failed: {error}")))?;
    let keypair = Ed25519Keypair::from_seed(&seed);
    let private = PrivateKey::new(KeypairData::Ed25519(keypair), comment)
        .map_err(|error| HostError::Key(format!("cannot assemble an ed25519 key: {error}")))?;
    let private_openssh = private
        .to_openssh(LineEnding::LF)
        .map_err(|error| HostError::Key(format!("cannot encode an ed25519 private key: {error}")))?;
    let public_openssh = private
        .public_key()
        .to_openssh()
        .map_err(|error| HostError::Key(format!("cannot encode an ed25519 public key: {error}")))?;
    Ok(KeyPair { private_openssh: private_openssh.as_str().to_owned(), public_openssh })
}

/// The SHA-256 fingerprint of a public key in its OpenSSH one-line form, as `ssh-keygen -l`
/// prints it: `SHA256:` and unpadded base64.
pub fn fingerprint(public_openssh: &str) -> Result<String, HostError> {
    Ok(fingerprint_of(&parse_public(public_openssh)?))
}

pub(crate) fn fingerprint_of(key: &PublicKey) -> String {
    key.fingerprint(HashAlg::Sha256).to_string()
}

pub(crate) fn parse_public(public_openssh: &str) -> Result<PublicKey, HostError> {
    PublicKey::from_openssh(public_openssh.trim())
        .map_err(|error| HostError::Key(format!("not an OpenSSH public key (`type base64 [comment]`): {error}")))
}

/// Reads an OpenSSH private key. The error names what is wrong with it, never its content.
pub(crate) fn parse_private(private_openssh: &str) -> Result<PrivateKey, HostError> {
    let key = PrivateKey::from_openssh(private_openssh.trim()).map_err(|error| {
        HostError::Key(format!("not an OpenSSH private key (`-----BEGIN OPENSSH PRIVATE KEY-----`): {error}"))
    })?;
    if key.is_encrypted() {
        return Err(HostError::Key(
            "the private key is encrypted with a passphrase; terrace needs it unencrypted".to_owned(),
        ));
    }
    Ok(key)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_generated_pair_reads_back_and_matches() {
        let pair = generate_ed25519("terrace@test").expect("generate");
        assert!(pair.private_openssh.starts_with("-----BEGIN OPENSSH PRIVATE KEY-----\n"));
        assert!(pair.public_openssh.starts_with("ssh-ed25519 AAAA"));
        assert!(pair.public_openssh.ends_with(" terrace@test"));
        let private = parse_private(&pair.private_openssh).expect("private key reads back");
        let public = parse_public(&pair.public_openssh).expect("public key reads back");
        assert_eq!(private.public_key().key_data(), public.key_data());
        assert!(fingerprint(&pair.public_openssh).expect("fingerprint").starts_with("SHA256:"));
    }

    #[test]
    fn two_pairs_differ() {
        let one = generate_ed25519("").expect("generate");
        let two = generate_ed25519("").expect("generate");
        assert_ne!(one.public_openssh, two.public_openssh);
    }

    #[test]
    fn debug_and_display_hide_the_private_key() {
        let pair = generate_ed25519("shown").expect("generate");
        let body = pair.private_openssh.lines().nth(1).expect("a body line").to_owned();
        for shown in [format!("{pair:?}"), pair.to_string()] {
            assert!(!shown.contains(&body), "{shown}");
            assert!(!shown.contains("PRIVATE KEY"), "{shown}");
            assert!(shown.contains(&pair.public_openssh), "{shown}");
        }
    }

    #[test]
    fn errors_do_not_repeat_the_key() {
        let pair = generate_ed25519("").expect("generate");
        let broken = pair.private_openssh.replace('A', "#");
        let error = parse_private(&broken).expect_err("a broken key");
        let body = broken.lines().nth(1).expect("a body line");
        assert!(!error.to_string().contains(body));
        assert!(matches!(parse_public("ssh-ed25519 !!!"), Err(HostError::Key(_))));
    }
}
