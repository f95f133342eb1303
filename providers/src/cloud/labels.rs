//! terrace's own labels on every object it creates, `terrace-stack` and `terrace-address`, and the
//! escaping of their values into Hetzner's label syntax (at most 63 characters of letters, digits,
//! `-`, `_` and `.`, starting and ending with a letter or digit).

use sha2::{Digest, Sha256};

pub const STACK_LABEL: &str = "terrace-stack";
pub const ADDRESS_LABEL: &str = "terrace-address";

const MAX: usize = 63;

/// `postgres.main.server.replica[0]` -> `postgres.main.server.replica.0`: brackets become a dot
/// before the index (block names cannot hold a dot, so this cannot collide), other characters
/// outside the syntax become `_`. A value too long, or not starting and ending with a letter or
/// digit, is cut and ends in 12 hex digits of its SHA-256, so it stays unique.
pub fn label_value(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    for c in text.chars() {
        match c {
            '[' => out.push('.'),
            ']' | '"' => {}
            c if c.is_ascii_alphanumeric() || matches!(c, '-' | '_' | '.') => out.push(c),
            _ => out.push('_'),
        }
    }
    let edges_ok = |s: &str| {
        s.chars().next().is_some_and(|c| c.is_ascii_alphanumeric())
            && s.chars().last().is_some_and(|c| c.is_ascii_alphanumeric())
    };
    if out.len() <= MAX && edges_ok(&out) {
        return out;
    }
    let digest = Sha256::digest(text.as_bytes());
    let hex: String = digest.iter().take(6).map(|b| format!("{b:02x}")).collect();
    let keep: String = out.chars().filter(|c| c.is_ascii_alphanumeric() || *c == '.').take(MAX - 13).collect();
    let keep = keep.trim_start_matches('.');
    if keep.is_empty() { format!("x{hex}") } else { format!("{keep}-{hex}") }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn addresses_become_valid_unique_label_values() {
        assert_eq!(label_value("server.app"), "server.app");
        assert_eq!(label_value("postgres.main.server.replica[0]"), "postgres.main.server.replica.0");
        assert_ne!(label_value("server.a[1]"), label_value("server.a[10]"));
        let long = format!("postgres.{}.server.replica[0]", "x".repeat(80));
        let value = label_value(&long);
        assert!(value.len() <= 63, "{value}");
        assert_ne!(value, label_value(&format!("postgres.{}.server.replica[1]", "x".repeat(80))));
        let odd = label_value("server.app_");
        assert!(odd.chars().last().is_some_and(|c| c.is_ascii_alphanumeric()), "{odd}");
    }
}
