//! The API token as a type that never prints itself (uv's `DisplaySafeUrl` habit): `Debug` and
//! `Display` show `****`, so the token cannot leak through an error, a log line or a panic message.

use std::fmt;

#[derive(Clone, PartialEq, Eq)]
pub struct Token(String);

impl Token {
    pub fn new(token: impl Into<String>) -> Self {
        Self(token.into())
    }

    /// The token itself, for the `Authorization` header only.
    pub(crate) fn expose(&self) -> &str {
        &self.0
    }
}

impl fmt::Debug for Token {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("Token(****)")
    }
}

impl fmt::Display for Token {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("****")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_token_never_prints() {
        let token = Token::new("s3cr3t-token");
        assert_eq!(format!("{token}"), "****");
        assert_eq!(format!("{token:?}"), "Token(****)");
        assert_eq!(token.expose(), "s3cr3t-token");
    }
}
