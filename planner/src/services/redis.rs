//! Redis's files: terrace's settings included at the end of the package's redis.conf (password,
//! memory limit and eviction, addresses, persistence, replication), and the kernel setting Redis
//! asks for.

use super::postgres::root_file;
use super::{File, RedisSpec, Rendered};

pub(crate) const REDIS_CONF: &str = "/etc/redis/terrace.conf";
pub(crate) const PORT: u16 = 6379;

/// A string argument in redis.conf: double-quoted, with the escapes Redis's own parser reads.
fn quote(value: &str) -> String {
    let mut out = String::from("\"");
    for c in value.chars() {
        match c {
            '"' => out.push_str("\\\""),
            '\\' => out.push_str("\\\\"),
            '\n' => out.push_str("\\n"),
            '\r' => out.push_str("\\r"),
            '\t' => out.push_str("\\t"),
            c if c.is_control() && (c as u32) < 0x80 => out.push_str(&format!("\\x{:02x}", c as u32)),
            c => out.push(c),
        }
    }
    out.push('"');
    out
}

/// What is wrong with a spec, one sentence each; empty when it can be rendered.
pub fn redis_problems(spec: &RedisSpec) -> Vec<String> {
    let mut problems = Vec::new();
    if spec.version < 6 {
        problems.push(format!(
            "Redis {} is not supported; terrace writes configuration for Redis 6 and later",
            spec.version
        ));
    }
    if spec.password.len() < 16 {
        problems.push("the Redis password must be at least 16 characters".into());
    }
    if spec.bind.is_empty() {
        problems.push("Redis must listen on at least one address".into());
    }
    if spec.memory_mb == 0 {
        problems.push("Redis needs some memory (`memory_mb`)".into());
    }
    problems
}

/// Everything a Redis server needs, primary or replica.
pub fn redis(spec: &RedisSpec) -> Rendered {
    let mut text = format!(
        "# terrace: Redis settings, included at the end of /etc/redis/redis.conf so that they override\n\
         # the package's defaults. Readable by redis only: it holds the password.\n\
         \n\
         bind {bind}\n\
         port {PORT}\n\
         # Refuses clients from other addresses than loopback should the password ever be removed.\n\
         protected-mode yes\n\
         requirepass {password}\n\
         \n\
         # A cache: at the limit the least recently used keys, of any kind, are evicted.\n\
         maxmemory {memory}mb\n\
         maxmemory-policy allkeys-lru\n\
         \n",
        bind = spec.bind.join(" "),
        password = quote(&spec.password),
        memory = spec.memory_mb,
    );
    if spec.persistence {
        text.push_str(
            "# Persistence: every write is appended to a log synced each second, and a snapshot is\n\
             # taken after 3600 s with a change, 300 s with 100 changes or 60 s with 10000.\n\
             appendonly yes\n\
             appendfsync everysec\n\
             save 3600 1 300 100 60 10000\n",
        );
    } else {
        text.push_str(
            "# No persistence: a restart starts empty.\n\
             appendonly no\n\
             save \"\"\n",
        );
    }
    if let Some((host, port)) = &spec.replica_of {
        text.push_str(&format!(
            "\n\
             # A read-only replica of the primary, which asks for the same password.\n\
             replicaof {host} {port}\n\
             masterauth {password}\n\
             replica-read-only yes\n",
            password = quote(&spec.password),
        ));
    }
    let include = format!("include {REDIS_CONF}");
    Rendered {
        packages: vec!["redis-server".into()],
        apt_sources: Vec::new(),
        files: vec![
            File { path: REDIS_CONF.into(), content: text, permissions: "0640".into(), owner: "redis:redis".into() },
            root_file(
                "/etc/sysctl.d/60-terrace-redis.conf",
                "0644",
                "# terrace: Redis forks to write snapshots and rewrite its log; without overcommit the fork\n\
                 # fails once Redis holds more than half of the memory.\n\
                 vm.overcommit_memory = 1\n"
                    .into(),
            ),
        ]
        .into_iter()
        .chain(spec.docker.then(|| {
            root_file(
                "/etc/systemd/system/redis-server.service.d/terrace.conf",
                "0644",
                "# terrace: Redis listens on the docker0 bridge as well.\n[Unit]\nWants=docker.service\nAfter=docker.service\n"
                    .into(),
            )
        }))
        .collect(),
        runcmd: spec
            .docker
            .then(|| "systemctl daemon-reload".to_owned())
            .into_iter()
            .chain([
            "sysctl --load=/etc/sysctl.d/60-terrace-redis.conf".into(),
            format!("grep -qxF '{include}' /etc/redis/redis.conf || echo '{include}' >> /etc/redis/redis.conf"),
            "systemctl enable redis-server.service".into(),
            "systemctl restart redis-server.service".into(),
        ])
        .collect(),
        ssh: None,
    }
}

#[cfg(test)]
mod tests {
    use super::quote;

    #[test]
    fn quoting() {
        assert_eq!(quote(r#"a"b\c"#), r#""a\"b\\c""#);
        assert_eq!(quote("x\ny"), r#""x\ny""#);
    }
}
