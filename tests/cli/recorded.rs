//! A test helper that records what an apply of a phase would leave in state, with deterministic ids
//! and addresses: ids count up from 1001 in apply order, public IPv4s come from 203.0.113.0/24
//! (TEST-NET-3), IPv6 from 2001:db8::/32, private IPs from the first subnet of the network in the
//! server's zone. Recording phase N this way and planning phase M shows the migration N -> M.

use std::collections::BTreeMap;
use std::path::Path;

use terrace::addr::Address;
use terrace::compile::VarInputs;
use terrace::diff::value_to_json;
use terrace::kind::Kind;
use terrace::model::Compiled;
use terrace::pipeline::{compile_phase, load};
use terrace::value::{Reference, Value};
use terrace_providers::pricing::Catalog;
use terrace_state::{Backend as _, LocalBackend, OutputState, ResourceState, State};

/// Records `phase` of the stack in `dir` as applied, into `dir/terrace.state.json`.
pub(crate) fn record_phase(dir: &Path, phase: &str) -> State {
    record_phase_from(dir, phase, 1000)
}

/// `record_phase` with ids counting up from `first + 1`: an earlier phase kept beside a later
/// one (by a data migration) holds other objects, so other ids.
pub(crate) fn record_phase_from(dir: &Path, phase: &str, first: u32) -> State {
    let loaded = load(dir);
    let stack = loaded.stack.expect("the stack loads");
    let catalog = Catalog::embedded();
    let (compiled, diags) = compile_phase(&stack, phase, &VarInputs::default(), &catalog);
    let compiled = compiled.unwrap_or_else(|| panic!("{phase} compiles: {:?}", diags.into_sorted()));
    let mut state = State::new(Some(stack.name.clone()));
    record(&compiled, &mut state, first);
    state.phase = Some(phase.to_owned());
    state.serial = 1;
    let backend = LocalBackend::new(dir.join("terrace.state.json"));
    backend.write(&state).expect("write the recorded state");
    state
}

fn record(compiled: &Compiled, state: &mut State, first: u32) {
    let mut computed: BTreeMap<Address, BTreeMap<String, Value>> = BTreeMap::new();
    let mut next_host: BTreeMap<Address, u32> = BTreeMap::new();
    let order = compiled.resources.topological_order().expect("acyclic");
    for (n, address) in order.into_iter().enumerate() {
        let resource = compiled.resource(address).expect("in the graph");
        let n = n as u32 + 1;
        let id = first + n;
        let mut made: BTreeMap<String, Value> = BTreeMap::new();
        let ipv4 = format!("203.0.113.{n}");
        match resource.kind {
            Kind::Server => {
                made.insert("ipv4_address".into(), Value::str(&ipv4));
                made.insert("ipv6_address".into(), Value::str(format!("2001:db8:{n}::1")));
                made.insert("ipv6_network".into(), Value::str(format!("2001:db8:{n}::/64")));
                made.insert("status".into(), Value::str("running"));
                if let Some(network) = resource.ref_attr("network") {
                    made.insert(
                        "private_ip".into(),
                        Value::str(private_ip(compiled, network, resource, &mut next_host)),
                    );
                }
            }
            Kind::LoadBalancer => {
                made.insert("ipv4_address".into(), Value::str(&ipv4));
                made.insert("ipv6_address".into(), Value::str(format!("2001:db8:{n}::1")));
                if let Some(network) = resource.ref_attr("network") {
                    made.insert(
                        "private_ip".into(),
                        Value::str(private_ip(compiled, network, resource, &mut next_host)),
                    );
                }
            }
            Kind::Volume => {
                made.insert("linux_device".into(), Value::str(format!("/dev/disk/by-id/scsi-0HC_Volume_{id}")));
            }
            Kind::PrimaryIp | Kind::FloatingIp => {
                made.insert("ip_address".into(), Value::str(&ipv4));
            }
            Kind::Bucket => {
                let location = resource.str_attr("location").unwrap_or("fsn1");
                made.insert("endpoint".into(), Value::str(format!("https://{location}.your-objectstorage.com")));
                made.insert("access_key".into(), Value::Sensitive(Box::new(Value::str(format!("RECORDEDACCESS{n}")))));
                made.insert(
                    "secret_key".into(),
                    Value::Sensitive(Box::new(Value::str(format!("recorded-secret-key-{n}")))),
                );
            }
            Kind::Secret => {
                made.insert("value".into(), Value::Sensitive(Box::new(Value::str(format!("recorded-secret-{n}")))));
            }
            Kind::Keypair => {
                // Not a usable key: plans only ever compare and mask it.
                made.insert(
                    "private_key".into(),
                    Value::Sensitive(Box::new(Value::str(format!(
                        "-----BEGIN OPENSSH PRIVATE KEY-----\nrecorded-private-key-{n}\n-----END OPENSSH PRIVATE KEY-----\n"
                    )))),
                );
                made.insert("public_key".into(), Value::str(format!("ssh-ed25519 AAAArecorded{n} terrace {address}")));
            }
            Kind::SshKey => {
                made.insert(
                    "fingerprint".into(),
                    Value::str(format!("00:11:22:33:44:55:66:77:88:99:aa:bb:cc:dd:ee:{n:02x}")),
                );
            }
            _ => {}
        }
        let mut attributes = serde_json::Map::new();
        let mut sensitive = Vec::new();
        for (name, value) in &resource.attrs {
            if value.holds_sensitive() {
                sensitive.push(name.clone());
            }
            attributes.insert(name.clone(), value_to_json(&resolve(value, &computed)));
        }
        for (name, value) in &made {
            if matches!(value, Value::Sensitive(_)) {
                sensitive.push(name.clone());
            }
            attributes.insert(name.clone(), value_to_json(value));
        }
        if resource.kind == Kind::Host {
            // What the first boot wrote, as the executor records it: each file with its digest.
            if let Some(serde_json::Value::Array(files)) = attributes.get_mut("file") {
                for file in files.iter_mut() {
                    let digest = file["content"].as_str().map(|c| terrace_providers::host::sha256_hex(c.as_bytes()));
                    file["sha256"] = digest.map_or(serde_json::Value::Null, serde_json::Value::String);
                }
            }
            for name in ["file", "login_key"] {
                if !sensitive.iter().any(|s| s == name) {
                    sensitive.push(name.to_owned());
                }
            }
        }
        computed.insert(address.clone(), made);
        let resource_id = match resource.kind {
            Kind::Bucket => resource.str_attr("name").map(str::to_owned),
            // What terrace makes itself has no object in the cloud, as an apply records it.
            Kind::Secret | Kind::Keypair | Kind::Host => Some(terrace_state::model::GENERATED_ID.to_owned()),
            _ => Some(id.to_string()),
        };
        state.resources.insert(
            address.to_string(),
            ResourceState {
                kind: resource.kind.to_string(),
                id: resource_id,
                attributes,
                dependencies: compiled.resources.dependencies(address).iter().map(ToString::to_string).collect(),
                composite: resource.composite.as_ref().map(ToString::to_string),
                sensitive_attributes: sensitive,
            },
        );
    }
    for output in &compiled.outputs {
        state.outputs.insert(
            output.name.clone(),
            OutputState { value: value_to_json(&resolve(&output.value, &computed)), sensitive: output.sensitive },
        );
    }
}

/// The next free host address of the network's subnet in the resource's zone (from .2: .1 is the
/// gateway).
fn private_ip(
    compiled: &Compiled,
    network: &Address,
    resource: &terrace::model::Resource,
    next: &mut BTreeMap<Address, u32>,
) -> String {
    let network_resource = compiled.resource(network).expect("the network");
    let zone = match resource.str_attr("location") {
        Some("ash") => "us-east",
        Some("hil") => "us-west",
        Some("sin") => "ap-southeast",
        _ => "eu-central",
    };
    let subnet = network_resource
        .blocks("subnet")
        .into_iter()
        .find(|s| s.get("network_zone").and_then(Value::as_str) == Some(zone))
        .and_then(|s| s.get("ip_range").and_then(Value::as_str))
        .expect("a subnet in the zone");
    let base: ipnet::Ipv4Net = subnet.parse().expect("a subnet range");
    let host = next.entry(network.clone()).or_insert(2);
    let ip = std::net::Ipv4Addr::from(u32::from(base.network()) + *host);
    *host += 1;
    ip.to_string()
}

/// A value with references to computed attributes replaced by what was recorded.
fn resolve(value: &Value, computed: &BTreeMap<Address, BTreeMap<String, Value>>) -> Value {
    match value {
        Value::Ref(Reference { address, attribute: Some(attribute) }) => {
            let made = computed.get(address);
            let read = |name: &str| made.and_then(|m| m.get(name)).cloned();
            terrace::schema::read_attribute(address.kind(), attribute, read).unwrap_or(Value::Unknown)
        }
        Value::List(items) => Value::List(items.iter().map(|i| resolve(i, computed)).collect()),
        Value::Map(map) => Value::Map(map.iter().map(|(k, v)| (k.clone(), resolve(v, computed))).collect()),
        Value::Sensitive(inner) => Value::Sensitive(Box::new(resolve(inner, computed))),
        Value::Template(_) => value
            .render_text(&|reference| Some(resolve(&Value::Ref(reference.clone()), computed)))
            .unwrap_or(Value::Unknown),
        other => other.clone(),
    }
}
