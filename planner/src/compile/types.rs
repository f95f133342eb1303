//! Checking evaluated values against the schema's types, with errors that say what to write.

use crate::diag::Diagnostic;
use crate::kind::Kind;
use crate::schema::{Ty, suggest};
use crate::value::{Reference, Value};

/// Why a value does not fit its attribute.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(super) struct TypeError {
    pub message: String,
    /// What to write instead, when there is something better than the type's generic hint.
    pub hint: Option<String>,
    /// The value has the right type but is not allowed (an enum value).
    pub invalid_value: bool,
}

impl TypeError {
    fn new(message: String) -> Self {
        Self { message, hint: None, invalid_value: false }
    }

    fn hint(mut self, hint: String) -> Self {
        self.hint = Some(hint);
        self
    }

    /// The diagnostic for attribute `path` of type `ty` (the caller adds the place).
    pub(super) fn diagnostic(self, path: &str, ty: Ty) -> Diagnostic {
        let summary = if self.invalid_value {
            format!("invalid value for `{path}`: {}", self.message)
        } else {
            format!("wrong type for `{path}`: {}", self.message)
        };
        Diagnostic::error(summary)
            .label(format!("expected {}", ty.describe()))
            .hint(self.hint.unwrap_or_else(|| type_hint(ty)))
    }
}

fn type_hint(ty: Ty) -> String {
    match ty {
        Ty::Ref(kinds) | Ty::Refs(kinds) if kinds.len() == Kind::ALL.len() => {
            "refer to a block, e.g. `server.NAME`".into()
        }
        Ty::Ref(kinds) | Ty::Refs(kinds) => {
            let kind = kinds.first().map_or("server", |kind| kind.as_str());
            format!("refer to a {kind} block, e.g. `{kind}.NAME`")
        }
        Ty::Int => "write a number without quotes, e.g. `40`".into(),
        Ty::Bool => "write `true` or `false` without quotes".into(),
        Ty::Labels => "write `labels = { role = \"app\" }`".into(),
        Ty::ListOfString => "write a list: `[\"a\", \"b\"]`".into(),
        Ty::Enum(options) => format!("use one of: {}", options.join(", ")),
        Ty::String | Ty::Text => "write the value in quotes".into(),
    }
}

fn describe(value: &Value) -> String {
    match value {
        Value::String(text) => format!("the string \"{text}\""),
        Value::Number(_) | Value::Bool(_) => format!("the {} {value}", value.type_name()),
        other => format!("a {}", other.type_name()),
    }
}

/// Checks a value against a type, converting where the type asks for it (a single reference where
/// a list is expected becomes a list).
pub(super) fn coerce(value: Value, ty: Ty) -> Result<Value, TypeError> {
    let unknown_scalar = matches!(&value, Value::Unknown | Value::Ref(Reference { attribute: Some(_), .. }));
    if unknown_scalar && !matches!(ty, Ty::Ref(_) | Ty::Refs(_)) {
        return Ok(value);
    }
    // A template is a string once rendered.
    if matches!(value, Value::Template(_)) && matches!(ty, Ty::String | Ty::Text) {
        return Ok(value);
    }
    if let Value::Sensitive(inner) = value {
        return coerce(*inner, ty).map(|inner| Value::Sensitive(Box::new(inner)));
    }
    match (ty, value) {
        (Ty::String | Ty::Text, value @ Value::String(_)) => Ok(value),
        (Ty::Int, Value::Number(n)) if n.fract() == 0.0 => Ok(Value::Number(n)),
        (Ty::Int, Value::Number(n)) => Err(TypeError::new(format!("{n} is not a whole number"))),
        (Ty::Bool, value @ Value::Bool(_)) => Ok(value),
        (Ty::Enum(options), Value::String(text)) => {
            if options.contains(&text.as_str()) {
                return Ok(Value::String(text));
            }
            let quoted: Vec<String> = options.iter().map(|o| format!("\"{o}\"")).collect();
            let mut error = TypeError::new(format!("\"{text}\" is not one of {}", quoted.join(", ")));
            error.invalid_value = true;
            Err(match suggest(&text, options.iter().copied()) {
                Some(similar) => error.hint(format!("did you mean \"{similar}\"?")),
                None => error,
            })
        }
        (Ty::ListOfString, Value::List(items)) => {
            let scalar = |item: &Value| {
                matches!(
                    item,
                    Value::String(_)
                        | Value::Unknown
                        | Value::Template(_)
                        | Value::Ref(Reference { attribute: Some(_), .. })
                )
            };
            match items.iter().find(|item| !scalar(item)) {
                Some(bad) => Err(TypeError::new(format!("the list holds {}, not only strings", describe(bad)))),
                None => Ok(Value::List(items)),
            }
        }
        (Ty::Labels, Value::Map(map)) => {
            match map.iter().find(|(_, v)| !matches!(v, Value::String(_) | Value::Unknown | Value::Template(_))) {
                Some((key, bad)) => {
                    Err(TypeError::new(format!("label `{key}` is {}; labels are strings", describe(bad))))
                }
                None => Ok(Value::Map(map)),
            }
        }
        (Ty::Ref(kinds), Value::Ref(reference)) => check_ref(reference, kinds).map(Value::Ref),
        (Ty::Ref(_), Value::List(items)) if items.iter().all(|i| matches!(i, Value::Ref(_))) => {
            let block =
                items.first().and_then(Value::as_ref).map(|r| r.address.block().to_string()).unwrap_or_default();
            Err(TypeError::new(format!("`{block}` has count, so it names {} objects", items.len()))
                .hint(format!("pick one: `{block}[0]`")))
        }
        (Ty::Refs(kinds), Value::Ref(reference)) => Ok(Value::List(vec![Value::Ref(check_ref(reference, kinds)?)])),
        (Ty::Refs(kinds), Value::List(items)) => {
            let mut out = Vec::new();
            for item in items {
                match item {
                    Value::Ref(reference) => out.push(Value::Ref(check_ref(reference, kinds)?)),
                    Value::List(inner) => {
                        if let Value::List(more) = coerce(Value::List(inner), ty)? {
                            out.extend(more);
                        }
                    }
                    other => {
                        return Err(TypeError::new(format!("found {} where a reference belongs", describe(&other))));
                    }
                }
            }
            Ok(Value::List(out))
        }
        (Ty::Ref(_) | Ty::Refs(_), other) => Err(TypeError::new(format!(
            "found {}, not a reference{}",
            describe(&other),
            if matches!(other, Value::String(_)) {
                " (reading an attribute gives its value; name the block itself)"
            } else {
                ""
            }
        ))),
        (_, other) => Err(TypeError::new(format!("found {}", describe(&other)))),
    }
}

fn check_ref(reference: Reference, kinds: &[Kind]) -> Result<Reference, TypeError> {
    if reference.attribute.is_some() {
        return Err(TypeError::new(format!("`{reference}` is an attribute value, not an object"))
            .hint(format!("refer to the object itself: `{}`", reference.address)));
    }
    let kind = reference.address.kind();
    if kinds.contains(&kind) {
        return Ok(reference);
    }
    let wanted: Vec<&str> = kinds.iter().map(|k| k.as_str()).collect();
    Err(TypeError::new(format!("`{}` is a {kind}, not a {}", reference.address, wanted.join(" or ")))
        .hint(format!("refer to a {} block, e.g. `{}.NAME`", wanted[0], wanted[0])))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::addr::Address;

    fn reference(text: &str) -> Value {
        Value::Ref(Reference { address: text.parse::<Address>().expect("address"), attribute: None })
    }

    #[test]
    fn references_are_checked_by_kind_and_count() {
        let network: &[Kind] = &[Kind::Network];
        assert!(coerce(reference("network.private"), Ty::Ref(network)).is_ok());
        let wrong = coerce(reference("server.app"), Ty::Ref(network)).expect_err("a server is not a network");
        assert!(wrong.message.contains("is a server, not a network"), "{wrong:?}");
        let counted = Value::List(vec![reference("server.app[0]"), reference("server.app[1]")]);
        let error = coerce(counted.clone(), Ty::Ref(&[Kind::Server])).expect_err("two objects for one");
        assert_eq!(error.hint.as_deref(), Some("pick one: `server.app[0]`"));
        assert_eq!(coerce(counted, Ty::Refs(&[Kind::Server])).map(|v| v.as_list().map(<[Value]>::len)), Ok(Some(2)));
    }

    #[test]
    fn scalars_and_enums() {
        assert!(coerce(Value::Number(1.5), Ty::Int).is_err());
        assert!(coerce(Value::Unknown, Ty::Int).is_ok(), "an unknown value fits any scalar type");
        let error = coerce(Value::str("ntfs"), Ty::Enum(&["ext4", "xfs"])).expect_err("not allowed");
        assert!(error.invalid_value);
        assert!(coerce(Value::str("22"), Ty::Int).is_err(), "no silent conversion of strings");
    }
}
