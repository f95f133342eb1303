//! Attribute values after evaluation: what the compiler, the validator, the plan and the renderers share.

use std::collections::BTreeMap;
use std::fmt;

use serde::ser::{SerializeMap, SerializeSeq};
use serde::{Serialize, Serializer};

use crate::addr::Address;

/// An evaluated value. `Ref` is an edge of the resource graph; `Unknown` is a value only the API
/// knows (an id, an IP address): the plan shows it as `(known after apply)`.
#[derive(Debug, Clone, PartialEq)]
pub enum Value {
    Null,
    Bool(bool),
    Number(f64),
    String(String),
    List(Vec<Value>),
    Map(BTreeMap<String, Value>),
    /// A reference to another resource (or to a composite, or one of its attributes).
    Ref(Reference),
    /// Computed by the API; known after apply.
    Unknown,
    /// A secret: never printed.
    Sensitive(Box<Value>),
    /// A string of text parts and references to attributes known only after apply
    /// (`"postgres://${server.db.private_ip}:5432"`), rendered once they are recorded.
    Template(Vec<Value>),
}

/// A reference to an object and, optionally, one of its attributes (`server.app[0].ipv4_address`).
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct Reference {
    pub address: Address,
    pub attribute: Option<String>,
}

impl Value {
    pub fn str(text: impl Into<String>) -> Value {
        Value::String(text.into())
    }

    pub fn type_name(&self) -> &'static str {
        match self {
            Value::Null => "null",
            Value::Bool(_) => "bool",
            Value::Number(_) => "number",
            Value::String(_) => "string",
            Value::List(_) => "list",
            Value::Map(_) => "object",
            Value::Ref(_) => "reference",
            Value::Unknown => "unknown",
            Value::Sensitive(inner) => inner.type_name(),
            Value::Template(_) => "string",
        }
    }

    pub fn as_str(&self) -> Option<&str> {
        match self {
            Value::String(text) => Some(text),
            _ => None,
        }
    }

    /// The text of a string, secret or not.
    pub fn text(&self) -> Option<&str> {
        match self {
            Value::String(text) => Some(text),
            Value::Sensitive(inner) => inner.text(),
            _ => None,
        }
    }

    /// The texts of a list of strings, secret or not; what is not a text is skipped.
    pub fn texts(&self) -> Vec<String> {
        match self {
            Value::List(items) => items.iter().filter_map(|item| item.text().map(str::to_owned)).collect(),
            Value::Sensitive(inner) => inner.texts(),
            _ => Vec::new(),
        }
    }

    pub fn as_bool(&self) -> Option<bool> {
        match self {
            Value::Bool(value) => Some(*value),
            _ => None,
        }
    }

    pub fn as_f64(&self) -> Option<f64> {
        match self {
            Value::Number(value) => Some(*value),
            _ => None,
        }
    }

    /// A whole, non-negative number that fits in `u64`.
    pub fn as_u64(&self) -> Option<u64> {
        match self {
            Value::Number(n) if *n >= 0.0 && n.fract() == 0.0 && *n <= u64::MAX as f64 => Some(*n as u64),
            _ => None,
        }
    }

    pub fn as_list(&self) -> Option<&[Value]> {
        match self {
            Value::List(items) => Some(items),
            _ => None,
        }
    }

    pub fn as_map(&self) -> Option<&BTreeMap<String, Value>> {
        match self {
            Value::Map(map) => Some(map),
            _ => None,
        }
    }

    pub fn as_ref(&self) -> Option<&Reference> {
        match self {
            Value::Ref(reference) => Some(reference),
            _ => None,
        }
    }

    /// True when the value, or anything inside it, is only known after apply.
    pub fn is_known(&self) -> bool {
        match self {
            Value::Unknown | Value::Ref(Reference { attribute: Some(_), .. }) | Value::Template(_) => false,
            Value::List(items) => items.iter().all(Value::is_known),
            Value::Map(map) => map.values().all(Value::is_known),
            Value::Sensitive(inner) => inner.is_known(),
            _ => true,
        }
    }

    /// True when the value, or anything inside it, is a secret.
    pub fn holds_sensitive(&self) -> bool {
        match self {
            Value::Sensitive(_) => true,
            Value::List(items) | Value::Template(items) => items.iter().any(Value::holds_sensitive),
            Value::Map(map) => map.values().any(Value::holds_sensitive),
            _ => false,
        }
    }

    /// Every reference inside this value, in order.
    pub fn references(&self) -> Vec<&Reference> {
        let mut found = Vec::new();
        self.collect_references(&mut found);
        found
    }

    fn collect_references<'a>(&'a self, found: &mut Vec<&'a Reference>) {
        match self {
            Value::Ref(reference) => found.push(reference),
            Value::List(items) | Value::Template(items) => items.iter().for_each(|item| item.collect_references(found)),
            Value::Map(map) => map.values().for_each(|item| item.collect_references(found)),
            Value::Sensitive(inner) => inner.collect_references(found),
            _ => {}
        }
    }

    /// Renders a template (or any value) to text with `read` giving each referenced attribute;
    /// `None` while a part is unknown. Sensitive parts make the whole text sensitive.
    pub fn render_text(&self, read: &dyn Fn(&Reference) -> Option<Value>) -> Option<Value> {
        match self {
            Value::Template(parts) => {
                let mut text = String::new();
                let mut secret = false;
                for part in parts {
                    let value = match part {
                        Value::Ref(reference) => read(reference)?,
                        Value::Sensitive(inner) => match &**inner {
                            Value::Ref(reference) => Value::Sensitive(Box::new(read(reference)?)),
                            _ => part.clone(),
                        },
                        other => other.clone(),
                    };
                    let mut value = value;
                    while let Value::Sensitive(inner) = value {
                        secret = true;
                        value = *inner;
                    }
                    text.push_str(&value.to_template_text()?);
                }
                Some(if secret { Value::Sensitive(Box::new(Value::String(text))) } else { Value::String(text) })
            }
            Value::Sensitive(inner) => inner.render_text(read).map(|v| match v {
                Value::Sensitive(_) => v,
                plain => Value::Sensitive(Box::new(plain)),
            }),
            other => Some(other.clone()),
        }
    }

    /// The value as text in a template (`"${...}"`), when it is known and scalar.
    pub fn to_template_text(&self) -> Option<String> {
        match self {
            Value::String(text) => Some(text.clone()),
            Value::Number(_) | Value::Bool(_) => Some(self.to_string()),
            _ => None,
        }
    }
}

impl fmt::Display for Reference {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}", self.address)?;
        if let Some(attribute) = &self.attribute {
            write!(f, ".{attribute}")?;
        }
        Ok(())
    }
}

/// A compact, HCL-like rendering used by the text and Markdown renderers.
impl fmt::Display for Value {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Value::Null => f.write_str("null"),
            Value::Bool(value) => write!(f, "{value}"),
            Value::Number(value) => write_number(f, *value),
            Value::String(text) => write!(f, "{text:?}"),
            Value::List(items) => {
                f.write_str("[")?;
                for (i, item) in items.iter().enumerate() {
                    if i > 0 {
                        f.write_str(", ")?;
                    }
                    write!(f, "{item}")?;
                }
                f.write_str("]")
            }
            Value::Map(map) => {
                f.write_str("{")?;
                for (i, (key, item)) in map.iter().enumerate() {
                    if i > 0 {
                        f.write_str(",")?;
                    }
                    write!(f, " {key} = {item}")?;
                }
                f.write_str(if map.is_empty() { "}" } else { " }" })
            }
            Value::Ref(reference) if reference.attribute.is_some() => f.write_str("(known after apply)"),
            Value::Ref(reference) => write!(f, "{reference}"),
            Value::Unknown | Value::Template(_) => f.write_str("(known after apply)"),
            Value::Sensitive(_) => f.write_str("(sensitive)"),
        }
    }
}

fn write_number(f: &mut fmt::Formatter<'_>, value: f64) -> fmt::Result {
    if value.fract() == 0.0 && value.abs() < 1e15 { write!(f, "{}", value as i64) } else { write!(f, "{value}") }
}

/// JSON form: references as their address string, unknown values as `null` (the JSON plan lists
/// unknown paths separately), sensitive values as `null` (never their content).
impl Serialize for Value {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        match self {
            Value::Null | Value::Unknown | Value::Sensitive(_) | Value::Template(_) => serializer.serialize_none(),
            Value::Bool(value) => serializer.serialize_bool(*value),
            Value::Number(value) if value.fract() == 0.0 && value.abs() < 1e15 => {
                serializer.serialize_i64(*value as i64)
            }
            Value::Number(value) => serializer.serialize_f64(*value),
            Value::String(text) => serializer.serialize_str(text),
            Value::List(items) => {
                let mut seq = serializer.serialize_seq(Some(items.len()))?;
                for item in items {
                    seq.serialize_element(item)?;
                }
                seq.end()
            }
            Value::Map(map) => {
                let mut out = serializer.serialize_map(Some(map.len()))?;
                for (key, item) in map {
                    out.serialize_entry(key, item)?;
                }
                out.end()
            }
            Value::Ref(reference) if reference.attribute.is_some() => serializer.serialize_none(),
            Value::Ref(reference) => serializer.collect_str(&reference.address),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn reference(text: &str) -> Reference {
        let (address, attribute) = text.rsplit_once('.').expect("ADDRESS.ATTRIBUTE");
        Reference { address: address.parse().expect("an address"), attribute: Some(attribute.to_owned()) }
    }

    #[test]
    fn templates_render_once_every_part_is_known_and_keep_secrets_secret() {
        let template = Value::Template(vec![
            Value::str("postgres://app:"),
            Value::Sensitive(Box::new(Value::Ref(reference("secret.db.value")))),
            Value::str("@"),
            Value::Ref(reference("server.db.private_ip")),
            Value::str(":5432/app"),
        ]);
        assert!(!template.is_known());
        assert!(template.holds_sensitive());
        assert_eq!(template.references().len(), 2);
        // A recorded secret is read back already wrapped as sensitive.
        let read = |r: &Reference| match r.attribute.as_deref() {
            Some("value") => Some(Value::Sensitive(Box::new(Value::str("s3cret")))),
            Some("private_ip") => Some(Value::str("10.0.1.2")),
            _ => None,
        };
        assert_eq!(
            template.render_text(&read),
            Some(Value::Sensitive(Box::new(Value::str("postgres://app:s3cret@10.0.1.2:5432/app"))))
        );
        assert_eq!(template.render_text(&|_| None), None, "unknown until every part is recorded");
        assert_eq!(template.to_string(), "(known after apply)");
    }
}
