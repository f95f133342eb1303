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

/// The share of keys (0 to 1) that the rule routes to another shard when the count changes from
/// `from` to `to`: `h % from != h % to` over every 32-bit hash `h`, counted exactly (the hashes
/// of MD5 are taken as spread evenly). 3 -> 4 moves 75%.
pub fn moving_share(from: u32, to: u32) -> f64 {
    if from == 0 || to == 0 || from == to {
        return 0.0;
    }
    let (from, to) = (u64::from(from), u64::from(to));
    let lcm = from / gcd(from, to) * to;
    let staying_below = |k: u64| (0..k).filter(|r| r % from == r % to).count() as u64;
    let all: u64 = 1 << 32;
    let staying = all / lcm * staying_below(lcm) + staying_below(all % lcm);
    1.0 - staying as f64 / all as f64
}

fn gcd(a: u64, b: u64) -> u64 {
    if b == 0 { a } else { gcd(b, a % b) }
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

    #[test]
    fn a_change_of_shard_count_moves_the_share_the_rule_says() {
        assert!((moving_share(3, 4) - 0.75).abs() < 1e-6, "{}", moving_share(3, 4));
        assert!((moving_share(2, 4) - 0.5).abs() < 1e-6);
        assert!((moving_share(1, 3) - 2.0 / 3.0).abs() < 1e-6);
        assert_eq!(moving_share(3, 3), 0.0);
        // The seed's keys agree: of 2,000 organizations, about three in four change shard.
        let moved = (0..2000).filter(|i| route(&format!("org-{i}"), 3) != route(&format!("org-{i}"), 4)).count();
        assert!((1400..1600).contains(&moved), "{moved}");
    }

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
