//! Sharding by key, the seed's rule: an organization lives on shard
//! `parseInt(md5(organization_id).slice(0, 8), 16) % NUM_SHARDS`. A counted `postgres` block with
//! `shard_key` exports `shard_map`: JSON an application reads to route a key to its shard.

use md5::{Digest, Md5};

use crate::value::Value;

/// The shard that holds `key` among `count` shards: the first 8 hex digits of the key's MD5 as
/// an unsigned 32-bit number, modulo the count (0 when there are no shards).
pub fn route(key: &str, count: usize) -> usize {
    if count == 0 {
        return 0;
    }
    let digest = Md5::digest(key.as_bytes());
    let first = u32::from_be_bytes([digest[0], digest[1], digest[2], digest[3]]);
    first as usize % count
}

/// One shard as the map names it.
pub(super) struct Shard {
    /// The address the application connects to (a reference, known after apply).
    pub host: Value,
    pub port: u16,
    pub database: String,
}

/// The shard map as a JSON template: the key, the rule in words and as code, and the shards in
/// order. Hosts are references, so the map is rendered once the servers exist.
pub(super) fn shard_map(key: &str, shards: &[Shard]) -> Value {
    let count = shards.len();
    let rule = format!("parseInt(md5({key}).slice(0, 8), 16) % {count}");
    let mut parts: Vec<Value> = Vec::new();
    let mut text = format!(
        "{{\"shard_key\":{},\"rule\":{},\"hash\":\"md5\",\"hex_digits\":8,\"count\":{count},\"shards\":[",
        json_string(key),
        json_string(&rule)
    );
    for (index, shard) in shards.iter().enumerate() {
        if index > 0 {
            text.push(',');
        }
        text.push_str(&format!("{{\"index\":{index},\"host\":\""));
        match &shard.host {
            Value::String(host) => text.push_str(host),
            other => {
                parts.push(Value::String(std::mem::take(&mut text)));
                parts.push(other.clone());
            }
        }
        text.push_str(&format!("\",\"port\":{},\"database\":{}}}", shard.port, json_string(&shard.database)));
    }
    text.push_str("]}");
    if parts.is_empty() {
        return Value::String(text);
    }
    parts.push(Value::String(text));
    Value::Template(parts)
}

fn json_string(text: &str) -> String {
    serde_json::Value::String(text.to_owned()).to_string()
}

#[cfg(test)]
mod tests {
    use super::*;

    /// MD5 values computed outside terrace (Python's hashlib), with the seed's rule applied by hand.
    #[test]
    fn routing_follows_the_seeds_rule_on_known_md5_values() {
        // md5("1") = c4ca4238..., 0xc4ca4238 = 3301589560, % 3 = 1
        assert_eq!(route("1", 3), 1);
        // md5("42") = a1d0c6e8..., 2714814184 % 3 = 1
        assert_eq!(route("42", 3), 1);
        // md5("acme") = 53bce4f1..., 1404888305 % 3 = 2
        assert_eq!(route("acme", 3), 2);
        // md5("org-7f3a") = 5572e6ff..., 1433593599 % 3 = 0
        assert_eq!(route("org-7f3a", 3), 0);
        // md5("00000000-0000-0000-0000-000000000001") = c96589ee..., 3378874862 % 3 = 2
        assert_eq!(route("00000000-0000-0000-0000-000000000001", 3), 2);
        assert_eq!(route("acme", 1), 0);
        assert_eq!(route("acme", 0), 0);
    }

    #[test]
    fn the_map_is_json_naming_the_rule_and_every_shard_in_order() {
        let shards: Vec<Shard> = (0..3)
            .map(|i| Shard { host: Value::str(format!("10.0.1.{}", i + 2)), port: 6432, database: "app".into() })
            .collect();
        let Value::String(text) = shard_map("organization_id", &shards) else { panic!("known hosts give text") };
        let map: serde_json::Value = serde_json::from_str(&text).expect("JSON");
        assert_eq!(map["rule"], "parseInt(md5(organization_id).slice(0, 8), 16) % 3");
        assert_eq!(map["count"], 3);
        assert_eq!(map["shards"][2]["host"], "10.0.1.4");
        assert_eq!(map["shards"][0]["port"], 6432);
        let unknown = vec![Shard {
            host: Value::Ref(crate::value::Reference {
                address: "postgres.shard[0].server.primary".parse().expect("an address"),
                attribute: Some("private_ip".into()),
            }),
            port: 5432,
            database: "app".into(),
        }];
        assert!(matches!(shard_map("k", &unknown), Value::Template(_)), "hosts known after apply make a template");
    }
}
