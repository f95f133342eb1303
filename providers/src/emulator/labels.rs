//! Labels: the syntax Hetzner accepts for keys and values, and `label_selector` expressions
//! (`k=v`, `k==v`, `k!=v`, `k in (a,b)`, `k notin (a,b)`, `k`, `!k`, joined by commas).

use std::collections::BTreeMap;

/// Labels of an object, ordered so that answers are deterministic.
pub(crate) type Labels = BTreeMap<String, String>;

/// One requirement of a selector.
#[derive(Debug, Clone, PartialEq, Eq)]
enum Requirement {
    Equals(String, String),
    NotEquals(String, String),
    In(String, Vec<String>),
    NotIn(String, Vec<String>),
    Exists(String),
    NotExists(String),
}

/// A parsed `label_selector`: every requirement must hold.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Selector(Vec<Requirement>);

impl Selector {
    pub(crate) fn parse(text: &str) -> Result<Selector, String> {
        let mut terms = Vec::new();
        let mut depth = 0usize;
        let mut start = 0;
        // Split on commas outside parentheses: `env in (a,b),role=x` has two terms.
        for (i, c) in text.char_indices() {
            match c {
                '(' => depth += 1,
                ')' => depth = depth.checked_sub(1).ok_or_else(|| format!("unbalanced `)` in `{text}`"))?,
                ',' if depth == 0 => {
                    terms.push(&text[start..i]);
                    start = i + 1;
                }
                _ => {}
            }
        }
        if depth != 0 {
            return Err(format!("unbalanced `(` in `{text}`"));
        }
        terms.push(&text[start..]);
        terms.into_iter().map(parse_term).collect::<Result<Vec<_>, _>>().map(Selector)
    }

    pub(crate) fn matches(&self, labels: &Labels) -> bool {
        self.0.iter().all(|r| match r {
            Requirement::Equals(k, v) => labels.get(k) == Some(v),
            Requirement::NotEquals(k, v) => labels.get(k) != Some(v),
            Requirement::In(k, vs) => labels.get(k).is_some_and(|v| vs.contains(v)),
            Requirement::NotIn(k, vs) => labels.get(k).is_none_or(|v| !vs.contains(v)),
            Requirement::Exists(k) => labels.contains_key(k),
            Requirement::NotExists(k) => !labels.contains_key(k),
        })
    }
}

fn parse_term(term: &str) -> Result<Requirement, String> {
    let term = term.trim();
    if term.is_empty() {
        return Err("empty requirement in label selector".to_owned());
    }
    let key = |k: &str| -> Result<String, String> {
        let k = k.trim();
        check_key(k)?;
        Ok(k.to_owned())
    };
    let value = |v: &str| -> Result<String, String> {
        let v = v.trim();
        check_value(v)?;
        Ok(v.to_owned())
    };
    if let Some((k, v)) = term.split_once("!=") {
        return Ok(Requirement::NotEquals(key(k)?, value(v)?));
    }
    if let Some((k, v)) = term.split_once("==") {
        return Ok(Requirement::Equals(key(k)?, value(v)?));
    }
    if let Some((k, v)) = term.split_once('=') {
        return Ok(Requirement::Equals(key(k)?, value(v)?));
    }
    for (word, negated) in [(" notin ", true), (" in ", false)] {
        if let Some((k, rest)) = term.split_once(word) {
            let rest = rest.trim();
            let inner = rest
                .strip_prefix('(')
                .and_then(|r| r.strip_suffix(')'))
                .ok_or_else(|| format!("`{term}`: the set must be in parentheses, e.g. `env in (a,b)`"))?;
            let values = inner.split(',').map(value).collect::<Result<Vec<_>, _>>()?;
            return Ok(if negated { Requirement::NotIn(key(k)?, values) } else { Requirement::In(key(k)?, values) });
        }
    }
    if let Some(k) = term.strip_prefix('!') {
        return Ok(Requirement::NotExists(key(k)?));
    }
    Ok(Requirement::Exists(key(term)?))
}

fn is_name(s: &str) -> bool {
    let bytes = s.as_bytes();
    !bytes.is_empty()
        && bytes.len() <= 63
        && bytes[0].is_ascii_alphanumeric()
        && bytes[bytes.len() - 1].is_ascii_alphanumeric()
        && bytes.iter().all(|b| b.is_ascii_alphanumeric() || matches!(b, b'-' | b'_' | b'.'))
}

/// A key is `[prefix/]name`: the prefix a DNS subdomain, the name 1..63 alphanumerics with `-_.` inside.
pub(crate) fn check_key(key: &str) -> Result<(), String> {
    let name = match key.split_once('/') {
        Some((prefix, name)) => {
            let ok = !prefix.is_empty()
                && prefix.len() <= 253
                && prefix.split('.').all(|p| {
                    !p.is_empty()
                        && p.len() <= 63
                        && p.bytes().all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-')
                });
            if !ok {
                return Err(format!("label key `{key}` has an invalid prefix"));
            }
            name
        }
        None => key,
    };
    if is_name(name) { Ok(()) } else { Err(format!("label key `{key}` is invalid")) }
}

/// A value is empty or 1..63 alphanumerics with `-_.` inside.
pub(crate) fn check_value(value: &str) -> Result<(), String> {
    if value.is_empty() || is_name(value) { Ok(()) } else { Err(format!("label value `{value}` is invalid")) }
}

pub(crate) fn check_labels(labels: &Labels) -> Result<(), String> {
    labels.iter().try_for_each(|(k, v)| check_key(k).and_then(|()| check_value(v)))
}

#[cfg(test)]
#[expect(clippy::unwrap_used, reason = "a test should stop at the first unexpected value")]
mod tests {
    use super::*;

    fn labels(pairs: &[(&str, &str)]) -> Labels {
        pairs.iter().map(|(k, v)| ((*k).to_owned(), (*v).to_owned())).collect()
    }

    #[test]
    fn every_operator() {
        let l = labels(&[("env", "prod"), ("role", "db"), ("terrace.dev/stack", "s1")]);
        let yes = |s: &str| Selector::parse(s).unwrap().matches(&l);
        assert!(yes("env=prod"));
        assert!(yes("env==prod"));
        assert!(!yes("env!=prod"));
        assert!(yes("env in (prod, staging)"));
        assert!(!yes("env notin (prod,staging)"));
        assert!(yes("role"));
        assert!(!yes("!role"));
        assert!(yes("!missing"));
        assert!(yes("env in (prod,staging),role=db,terrace.dev/stack=s1"));
        assert!(!yes("env=prod,role=web"));
        assert!(yes("missing notin (x)"));
        assert!(yes("missing!=x"));
    }

    #[test]
    fn syntax_errors() {
        assert!(Selector::parse("env in (a,b").is_err());
        assert!(Selector::parse("env in a").is_err());
        assert!(Selector::parse("=x").is_err());
        assert!(Selector::parse("a,,b").is_err());
        assert!(check_labels(&labels(&[("ok-key", "")])).is_ok());
        assert!(check_labels(&labels(&[("-bad", "x")])).is_err());
        assert!(check_labels(&labels(&[("k", "bad value")])).is_err());
    }
}
