//! The built-in functions of the phase language: a small, Terraform-compatible subset.

use std::collections::BTreeMap;

use crate::value::Value;

pub(super) const NAMES: &[&str] =
    &["cidrsubnet", "concat", "format", "join", "length", "lower", "max", "merge", "min", "tostring", "upper"];

pub(super) fn call(name: &str, args: Vec<Value>) -> Result<Value, String> {
    match name {
        "concat" => {
            let mut out = Vec::new();
            for arg in args {
                match arg {
                    Value::List(items) => out.extend(items),
                    other => return Err(format!("concat takes lists, not {}", other.type_name())),
                }
            }
            Ok(Value::List(out))
        }
        "merge" => {
            let mut out = BTreeMap::new();
            for arg in args {
                match arg {
                    Value::Map(map) => out.extend(map),
                    other => return Err(format!("merge takes objects, not {}", other.type_name())),
                }
            }
            Ok(Value::Map(out))
        }
        "length" => match args.as_slice() {
            [Value::List(items)] => Ok(Value::Number(items.len() as f64)),
            [Value::Map(map)] => Ok(Value::Number(map.len() as f64)),
            [Value::String(text)] => Ok(Value::Number(text.chars().count() as f64)),
            _ => Err("length takes one list, object or string".into()),
        },
        "lower" | "upper" => match args.as_slice() {
            [Value::String(text)] => {
                Ok(Value::String(if name == "lower" { text.to_lowercase() } else { text.to_uppercase() }))
            }
            _ => Err(format!("{name} takes one string")),
        },
        "tostring" => match args.as_slice() {
            [value] => value
                .to_template_text()
                .map(Value::String)
                .ok_or_else(|| format!("tostring cannot convert {}", value.type_name())),
            _ => Err("tostring takes one value".into()),
        },
        "join" => match args.as_slice() {
            [Value::String(separator), Value::List(items)] => {
                let parts: Option<Vec<String>> = items.iter().map(Value::to_template_text).collect();
                parts
                    .map(|parts| Value::String(parts.join(separator)))
                    .ok_or_else(|| "join takes a list of strings".to_owned())
            }
            _ => Err("join takes a separator and a list of strings".into()),
        },
        "min" | "max" => {
            let numbers: Option<Vec<f64>> = args.iter().map(Value::as_f64).collect();
            let numbers = numbers.filter(|n| !n.is_empty()).ok_or_else(|| format!("{name} takes numbers"))?;
            let pick = if name == "min" { f64::min } else { f64::max };
            Ok(Value::Number(numbers.into_iter().reduce(pick).unwrap_or(0.0)))
        }
        "format" => {
            let Some((Value::String(spec), rest)) = args.split_first() else {
                return Err("format takes a format string first".into());
            };
            format(spec, rest)
        }
        "cidrsubnet" => match args.as_slice() {
            [Value::String(prefix), Value::Number(newbits), Value::Number(netnum)] => {
                cidrsubnet(prefix, *newbits, *netnum).map(Value::String)
            }
            _ => Err("cidrsubnet takes a CIDR prefix, new bits and a network number".into()),
        },
        _ => Err(format!("unknown function `{name}`")),
    }
}

/// `format("%s-%d", a, b)`: the verbs `%s`, `%d` and `%%`.
fn format(spec: &str, args: &[Value]) -> Result<Value, String> {
    let mut out = String::new();
    let mut args = args.iter();
    let mut chars = spec.chars();
    while let Some(c) = chars.next() {
        if c != '%' {
            out.push(c);
            continue;
        }
        match chars.next() {
            Some('%') => out.push('%'),
            Some('s' | 'd' | 'v') => {
                let arg = args.next().ok_or("format has more verbs than arguments")?;
                out.push_str(&arg.to_template_text().ok_or("format takes strings, numbers and bools")?);
            }
            other => {
                return Err(format!("format does not know the verb %{}", other.unwrap_or(' ')));
            }
        }
    }
    if args.next().is_some() {
        return Err("format has more arguments than verbs".into());
    }
    Ok(Value::String(out))
}

/// Terraform's `cidrsubnet` for IPv4 prefixes.
fn cidrsubnet(prefix: &str, newbits: f64, netnum: f64) -> Result<String, String> {
    let net: ipnet::Ipv4Net = prefix.parse().map_err(|_| format!("`{prefix}` is not an IPv4 CIDR prefix"))?;
    let new_len = u32::from(net.prefix_len()) + newbits as u32;
    if newbits < 0.0 || newbits.fract() != 0.0 || new_len > 32 {
        return Err(format!("cannot extend /{} by {newbits} bits", net.prefix_len()));
    }
    let count = 1u64 << (new_len - u32::from(net.prefix_len()));
    if netnum < 0.0 || netnum.fract() != 0.0 || netnum as u64 >= count {
        return Err(format!("network number {netnum} does not fit in {newbits} bits"));
    }
    let base = u32::from(net.network());
    let size = if new_len == 32 { 1 } else { 1u64 << (32 - new_len) };
    let start = u64::from(base) + netnum as u64 * size;
    let address = std::net::Ipv4Addr::from(start as u32);
    Ok(format!("{address}/{new_len}"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cidrsubnet_matches_terraform() {
        assert_eq!(cidrsubnet("10.0.0.0/16", 8.0, 1.0).as_deref(), Ok("10.0.1.0/24"));
        assert_eq!(cidrsubnet("10.0.0.0/8", 8.0, 255.0).as_deref(), Ok("10.255.0.0/16"));
        assert!(cidrsubnet("10.0.0.0/16", 8.0, 256.0).is_err());
    }

    #[test]
    fn format_verbs() {
        let args = [Value::str("app"), Value::Number(2.0)];
        assert_eq!(format("%s-%d%%", &args), Ok(Value::str("app-2%")));
        assert!(format("%s", &[]).is_err());
    }
}
