//! Resource addresses (`server.app[1]`, `postgres.main.server.replica[0]`): parsed and printed here only.
//!
//! An address is a path of segments, each a kind, a name and an optional count index. A top-level
//! block has one segment; a primitive that a composite expands to has the composite's segment first.
//! Addresses order by their segments, so every listing made from them is deterministic.

use std::fmt;
use std::str::FromStr;

use serde::{Deserialize, Deserializer, Serialize, Serializer};

use crate::kind::Kind;

/// One step of an address: `server.app[1]`.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct Segment {
    pub kind: Kind,
    pub name: String,
    pub index: Option<u32>,
}

/// The address of a resource or of a composite.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct Address {
    segments: Vec<Segment>,
}

impl Address {
    /// A top-level address `kind.name` or `kind.name[index]`.
    pub fn new(kind: Kind, name: impl Into<String>, index: Option<u32>) -> Self {
        Self { segments: vec![Segment { kind, name: name.into(), index }] }
    }

    /// The address of a part inside this one: `postgres.main` + `server.primary`.
    pub fn child(&self, kind: Kind, name: impl Into<String>, index: Option<u32>) -> Self {
        let mut segments = self.segments.clone();
        segments.push(Segment { kind, name: name.into(), index });
        Self { segments }
    }

    pub fn segments(&self) -> &[Segment] {
        &self.segments
    }

    fn last(&self) -> &Segment {
        // An address always has at least one segment: every constructor pushes one.
        &self.segments[self.segments.len() - 1]
    }

    /// The kind of the addressed object (its last segment).
    pub fn kind(&self) -> Kind {
        self.last().kind
    }

    pub fn name(&self) -> &str {
        &self.last().name
    }

    pub fn index(&self) -> Option<u32> {
        self.last().index
    }

    /// The composite this address lives in, if any.
    pub fn parent(&self) -> Option<Address> {
        (self.segments.len() > 1).then(|| Address { segments: self.segments[..self.segments.len() - 1].to_vec() })
    }

    /// The same address without the count index of its first segment: the block it was written as.
    pub fn block(&self) -> Address {
        let first = &self.segments[0];
        Address::new(first.kind, first.name.clone(), None)
    }

    /// This address with the given index on its last segment.
    pub fn with_index(&self, index: Option<u32>) -> Address {
        let mut segments = self.segments.clone();
        let last = segments.len() - 1;
        segments[last].index = index;
        Address { segments }
    }

    /// This address with the given index on its first segment (the block's `count` instance).
    pub fn with_first_index(&self, index: Option<u32>) -> Address {
        let mut segments = self.segments.clone();
        segments[0].index = index;
        Address { segments }
    }

    /// True when `self` is `other` or lies inside it (`postgres.main.server.primary` in `postgres.main`),
    /// or is one instance of the counted block `other` (`server.app[1]` in `server.app`).
    pub fn is_within(&self, other: &Address) -> bool {
        if other.segments.len() > self.segments.len() {
            return false;
        }
        self.segments.iter().zip(&other.segments).all(|(mine, theirs)| {
            mine.kind == theirs.kind
                && mine.name == theirs.name
                && (theirs.index.is_none() || mine.index == theirs.index)
        })
    }
}

impl fmt::Display for Segment {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}.{}", self.kind, self.name)?;
        if let Some(index) = self.index {
            write!(f, "[{index}]")?;
        }
        Ok(())
    }
}

impl fmt::Display for Address {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        for (i, segment) in self.segments.iter().enumerate() {
            if i > 0 {
                f.write_str(".")?;
            }
            write!(f, "{segment}")?;
        }
        Ok(())
    }
}

/// Why a string is not an address.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("`{input}` is not a resource address: {reason}")]
pub struct AddressError {
    pub input: String,
    pub reason: String,
}

impl FromStr for Address {
    type Err = AddressError;

    fn from_str(input: &str) -> Result<Self, Self::Err> {
        let fail = |reason: &str| AddressError { input: input.to_owned(), reason: reason.to_owned() };
        let mut segments = Vec::new();
        let mut rest = input;
        while !rest.is_empty() {
            let (kind, after_kind) = rest.split_once('.').ok_or_else(|| fail("expected `kind.name`"))?;
            let kind: Kind = kind.parse().map_err(|_| fail(&format!("unknown kind `{kind}`")))?;
            let name_end = after_kind.find(['.', '[']).unwrap_or(after_kind.len());
            let name = &after_kind[..name_end];
            if !is_identifier(name) {
                return Err(fail(&format!("`{name}` is not a valid name")));
            }
            let mut after_name = &after_kind[name_end..];
            let mut index = None;
            if let Some(bracketed) = after_name.strip_prefix('[') {
                let (digits, after) = bracketed.split_once(']').ok_or_else(|| fail("missing `]`"))?;
                let value: u32 =
                    digits.parse().map_err(|_| fail(&format!("index `{digits}` is not a whole number")))?;
                index = Some(value);
                after_name = after;
            }
            segments.push(Segment { kind, name: name.to_owned(), index });
            rest = match after_name.strip_prefix('.') {
                Some(next) if !next.is_empty() => next,
                Some(_) => return Err(fail("trailing `.`")),
                None if after_name.is_empty() => "",
                None => return Err(fail(&format!("unexpected `{after_name}`"))),
            };
        }
        if segments.is_empty() {
            return Err(fail("empty"));
        }
        Ok(Address { segments })
    }
}

/// HCL identifier rules: a letter or `_`, then letters, digits, `_` and `-`.
pub fn is_identifier(name: &str) -> bool {
    let mut chars = name.chars();
    matches!(chars.next(), Some(c) if c.is_ascii_alphabetic() || c == '_')
        && chars.all(|c| c.is_ascii_alphanumeric() || c == '_' || c == '-')
}

impl Serialize for Address {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.collect_str(self)
    }
}

impl<'de> Deserialize<'de> for Address {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        let text = String::deserialize(deserializer)?;
        text.parse().map_err(serde::de::Error::custom)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[track_caller]
    fn round_trip(text: &str) -> Address {
        let address: Address = text.parse().expect("parses");
        assert_eq!(address.to_string(), text);
        address
    }

    #[test]
    fn addresses_round_trip() {
        round_trip("server.app");
        let indexed = round_trip("server.app[12]");
        assert_eq!(indexed.index(), Some(12));
        let nested = round_trip("postgres.main.server.replica[0]");
        assert_eq!(nested.kind(), Kind::Server);
        assert_eq!(nested.name(), "replica");
        assert_eq!(nested.parent(), Some("postgres.main".parse().expect("parses")));
        round_trip("postgres.shard[2].volume.primary");
        round_trip("load_balancer.web-1");
    }

    #[test]
    fn malformed_addresses_are_refused() {
        for bad in [
            "",
            "server",
            "server.",
            "nope.app",
            "server.app[x]",
            "server.app[1",
            "server.1a",
            "server.app.",
            "server.app]",
        ] {
            assert!(bad.parse::<Address>().is_err(), "{bad} should not parse");
        }
    }

    #[test]
    fn order_is_by_segments_then_index() {
        let mut list: Vec<Address> = ["server.b", "server.a[10]", "server.a[2]", "network.z", "server.a"]
            .iter()
            .map(|s| s.parse().expect("parses"))
            .collect();
        list.sort();
        let printed: Vec<String> = list.iter().map(ToString::to_string).collect();
        assert_eq!(printed, ["network.z", "server.a", "server.a[2]", "server.a[10]", "server.b"]);
    }

    #[test]
    fn containment() {
        let a: Address = "postgres.main.server.primary".parse().expect("parses");
        assert!(a.is_within(&"postgres.main".parse().expect("parses")));
        assert!(!a.is_within(&"postgres.other".parse().expect("parses")));
        let counted: Address = "server.app[1]".parse().expect("parses");
        assert!(counted.is_within(&"server.app".parse().expect("parses")));
        assert!(!counted.is_within(&"server.app[0]".parse().expect("parses")));
    }
}
