//! Quoting of values for the languages the rendered files are written in: shell, SQL, and the
//! `key = 'value'` syntax of postgresql.conf.

/// A word for bash or sh: single-quoted, with each `'` closed, escaped and reopened.
pub(crate) fn sh(value: &str) -> String {
    if !value.is_empty() && value.bytes().all(|b| b.is_ascii_alphanumeric() || b"/._-:=@,+%".contains(&b)) {
        return value.to_owned();
    }
    format!("'{}'", value.replace('\'', r"'\''"))
}

/// An SQL string literal; `standard_conforming_strings` is on in every supported version, so only
/// the quote is special.
pub(crate) fn sql_literal(value: &str) -> String {
    format!("'{}'", value.replace('\'', "''"))
}

/// An SQL identifier, always quoted so that a name is never folded or read as a keyword.
pub(crate) fn sql_ident(value: &str) -> String {
    format!("\"{}\"", value.replace('"', "\"\""))
}

/// A string value in postgresql.conf, which takes SQL-style quotes.
pub(crate) fn conf_string(value: &str) -> String {
    sql_literal(value)
}

/// Whether `value` is a plain lower-case identifier: the names terrace accepts for databases,
/// users, slots and extensions, so that they need no quoting in psql meta-commands, PgBouncer's
/// `[databases]` keys or file names.
pub(crate) fn is_plain_name(value: &str) -> bool {
    let mut bytes = value.bytes();
    matches!(bytes.next(), Some(b'a'..=b'z' | b'_'))
        && bytes.all(|b| matches!(b, b'a'..=b'z' | b'0'..=b'9' | b'_'))
        && value.len() <= 63
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn quoting() {
        assert_eq!(sh("/var/lib/x"), "/var/lib/x");
        assert_eq!(sh("it's"), r"'it'\''s'");
        assert_eq!(sh(""), "''");
        assert_eq!(sh("a b"), "'a b'");
        assert_eq!(sql_literal("o'k"), "'o''k'");
        assert_eq!(sql_ident("a\"b"), "\"a\"\"b\"");
        assert!(is_plain_name("app_db1"));
        assert!(!is_plain_name("1db"));
        assert!(!is_plain_name("App"));
        assert!(!is_plain_name(""));
    }
}
