//! The cloud-configs of the seed's phases, as terrace would send them: every server of a
//! `postgres` or `redis` service in every phase, with the values known only at apply (generated
//! passwords, addresses, the bucket's keys) filled with fixed sample values. cloud-init's schema
//! check accepts each, and each is snapshotted (once per phase where it first appears or changes).

use std::collections::BTreeMap;
use std::fs;
use std::path::Path;
use std::process::Command;

use terrace::compile::VarInputs;
use terrace::kind::Kind;
use terrace::pipeline::{compile_phase, load};
use terrace::value::{Reference, Value};
use terrace_providers::pricing::Catalog;

use crate::support::{program, run};

const PHASES: [&str; 5] = ["block-storage", "managed-db", "read-replicas", "sharding", "multi-region"];

/// A fixed stand-in for each value known only at apply, the same for the same reference.
fn sample(reference: &Reference) -> Option<Value> {
    let seed: u32 = reference.address.to_string().bytes().map(u32::from).sum::<u32>() % 200 + 2;
    let text = match reference.attribute.as_deref()? {
        "value" => format!("SampleSecret{seed:04}xxxxxxxxxxxxxxxx"),
        "private_ip" => format!("10.0.1.{seed}"),
        "ipv4_address" => format!("203.0.113.{seed}"),
        "ip_address" => format!("198.51.100.{seed}"),
        "access_key" => "SAMPLEACCESSKEY0000".to_owned(),
        "secret_key" => "SampleSecretKey000000000000000000000000".to_owned(),
        // A key pair's private key as it goes into a double-quoted YAML string, and its public key.
        "private_key_escaped" => {
            format!(
                "-----BEGIN OPENSSH PRIVATE KEY-----\\nSampleHostKey{seed:04}\\n-----END OPENSSH PRIVATE KEY-----\\n"
            )
        }
        "public_key" => format!("ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAISampleKey{seed:04} terrace"),
        _ => return None,
    };
    Some(Value::String(text))
}

fn phases_dir() -> &'static Path {
    Path::new(concat!(env!("CARGO_MANIFEST_DIR"), "/../phases"))
}

/// Every service server's rendered cloud-config in `phase`, by address.
fn rendered(phase: &str) -> BTreeMap<String, String> {
    let stack = load(phases_dir()).stack.expect("the seed's stack loads");
    let (compiled, diags) = compile_phase(&stack, phase, &VarInputs::default(), &Catalog::embedded());
    let compiled = compiled.unwrap_or_else(|| panic!("{phase} compiles: {:?}", diags.into_sorted()));
    let mut out = BTreeMap::new();
    for (address, resource) in compiled.resources.iter() {
        // Service servers, and hosts a service runs `on` (which get the service's cloud-init).
        let Some(user_data) = resource.attrs.get("user_data").filter(|_| resource.kind == Kind::Server) else {
            continue;
        };
        let text = match user_data.render_text(&sample) {
            Some(Value::String(text)) => text,
            Some(Value::Sensitive(inner)) => inner.as_str().expect("text").to_owned(),
            other => panic!("{address}: cannot render {other:?}"),
        };
        out.insert(address.to_string(), text);
    }
    out
}

#[test]
fn cloud_init_accepts_the_cloud_config_of_every_service_server_of_every_phase() {
    let dir = tempfile::tempdir().expect("tempdir");
    let cloud_init = program("cloud-init");
    let mut checked = 0;
    for phase in PHASES {
        for (address, text) in rendered(phase) {
            let path = dir.path().join("user-data");
            fs::write(&path, &text).expect("write");
            let out = run(Command::new(&cloud_init).args(["schema", "--config-file"]).arg(&path));
            let said = format!("{}{}", String::from_utf8_lossy(&out.stdout), String::from_utf8_lossy(&out.stderr));
            assert!(out.status.success() && said.contains("Valid"), "{phase} {address}:\n{said}");
            assert!(!text.contains("trcslot"), "{phase} {address}: a placeholder was left");
            checked += 1;
        }
    }
    // block-storage 1 (the app server that hosts the database), managed-db 2, read-replicas 3,
    // sharding 3, multi-region 3 + 3 + 1.
    assert!(checked >= 16, "{checked} configs checked");
}

#[test]
fn the_cloud_configs_of_the_phases_are_snapshotted_where_they_change() {
    let mut previous: BTreeMap<String, String> = BTreeMap::new();
    for phase in PHASES {
        let now = rendered(phase);
        for (address, text) in &now {
            if previous.get(address) == Some(text) {
                continue;
            }
            let name = format!("phase_{phase}_{}", address.replace(['[', ']'], "_"));
            insta::assert_snapshot!(name, text);
        }
        previous = now;
    }
}
