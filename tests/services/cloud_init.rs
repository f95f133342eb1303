//! Every rendered cloud-config is accepted by cloud-init's own schema check, reads back (with
//! PyYAML, which cloud-init uses) to exactly the files, packages and commands rendered, and
//! carries the PGDG key with its published fingerprint.

use std::fs;
use std::process::Command;

use terrace::services::{Rendered, cloud_config, postgres, redis};

use crate::specs;
use crate::support::{program, run, run_ok};

fn all() -> Vec<(&'static str, Rendered)> {
    let mut primary_plain = specs::primary();
    primary_plain.pgbouncer = None;
    primary_plain.backup = None;
    primary_plain.extensions.clear();
    vec![
        ("primary", postgres(&specs::primary())),
        ("primary without extras", postgres(&primary_plain)),
        ("replica", postgres(&specs::replica())),
        ("redis primary", redis(&specs::redis_primary())),
        ("redis replica", redis(&specs::redis_replica())),
    ]
}

#[test]
fn cloud_init_accepts_every_rendered_config() {
    let dir = tempfile::tempdir().expect("tempdir");
    let cloud_init = program("cloud-init");
    for (name, rendered) in all() {
        let path = dir.path().join("user-data");
        fs::write(&path, cloud_config(&rendered)).expect("write");
        let out = run(Command::new(&cloud_init).args(["schema", "--config-file"]).arg(&path));
        let text = format!("{}{}", String::from_utf8_lossy(&out.stdout), String::from_utf8_lossy(&out.stderr));
        assert!(out.status.success() && text.contains("Valid"), "cloud-init rejects the {name} config:\n{text}");
    }
}

#[test]
fn rendered_yaml_reads_back_exactly() {
    let dir = tempfile::tempdir().expect("tempdir");
    // The system's Python, whose PyYAML is cloud-init's.
    let python = "/usr/bin/python3";
    for (name, rendered) in all() {
        let path = dir.path().join("user-data");
        let text = cloud_config(&rendered);
        assert!(text.starts_with("#cloud-config\n"), "{name}");
        fs::write(&path, &text).expect("write");
        let json = run_ok(
            Command::new(python)
                .args(["-c", "import json, sys, yaml; print(json.dumps(yaml.safe_load(open(sys.argv[1]))))"])
                .arg(&path),
        );
        let doc: serde_json::Value = serde_json::from_str(&json).expect("json");
        let files = doc["write_files"].as_array().expect("write_files");
        assert_eq!(files.len(), rendered.files.len(), "{name}");
        for (read, file) in files.iter().zip(&rendered.files) {
            assert_eq!(read["path"], file.path.as_str(), "{name}");
            assert_eq!(read["content"], file.content.as_str(), "{name}: {}", file.path);
            assert_eq!(read["permissions"], file.permissions.as_str(), "{name}: {}", file.path);
            assert_eq!(read["owner"], file.owner.as_str(), "{name}: {}", file.path);
            assert_eq!(read["defer"].as_bool().unwrap_or(false), file.deferred(), "{name}: {}", file.path);
        }
        let packages: Vec<&str> =
            doc["packages"].as_array().expect("packages").iter().map(|p| p.as_str().expect("str")).collect();
        assert_eq!(packages, rendered.packages, "{name}");
        let runcmd: Vec<&str> =
            doc["runcmd"].as_array().expect("runcmd").iter().map(|p| p.as_str().expect("str")).collect();
        assert_eq!(runcmd, rendered.runcmd, "{name}");
        assert_eq!(doc["package_update"], true, "{name}");
        for source in &rendered.apt_sources {
            assert_eq!(doc["apt"]["sources"][&source.name]["source"], source.source.as_str(), "{name}");
            assert_eq!(doc["apt"]["sources"][&source.name]["key"], source.key.as_str(), "{name}");
        }
    }
}

#[test]
fn pgdg_key_has_the_published_fingerprint() {
    let rendered = postgres(&specs::primary());
    let source = &rendered.apt_sources[0];
    assert_eq!(source.name, "pgdg");
    let dir = tempfile::tempdir().expect("tempdir");
    let key = dir.path().join("pgdg.asc");
    fs::write(&key, &source.key).expect("write");
    let out = run_ok(
        Command::new(program("gpg")).arg("--homedir").arg(dir.path()).args(["--with-colons", "--show-keys"]).arg(&key),
    );
    assert!(
        out.lines().any(|line| line == "fpr:::::::::B97B0AFCAA1A47F044F244A07FCC7D46ACCC4CF8:"),
        "the PGDG key's fingerprint is not B97B0AFCAA1A47F044F244A07FCC7D46ACCC4CF8:\n{out}"
    );
}

#[test]
fn secrets_are_written_only_to_private_files() {
    for (name, rendered) in all() {
        for file in &rendered.files {
            let secret = ["app-password", "replication-password", "secret-key", "redis-password"]
                .iter()
                .any(|secret| file.content.contains(secret));
            if secret {
                assert!(
                    file.permissions == "0600" || file.permissions == "0640",
                    "{name}: {} holds a secret but is {}",
                    file.path,
                    file.permissions
                );
            }
        }
        let text = cloud_config(&rendered);
        assert!(!format!("{rendered:?}").contains("password-0123"), "{name}: Debug shows a secret");
        assert!(text.contains("#cloud-config"));
    }
}
