//! What the file format refuses, and how it says so: a newer format_version, another tool's JSON
//! (a Terraform state above all), damaged bytes, and a layout that does not match its version.
//! Also that writing is deterministic whatever order the model's maps were built in.

use serde_json::json;
use terrace_state::conformance::sample_state;
use terrace_state::{FORMAT_VERSION, StateError, from_json, to_json};

const ORIGIN: &str = "stacks/seed/terrace.state.json";

fn error_of(bytes: &[u8]) -> StateError {
    match from_json(bytes, ORIGIN) {
        Ok(state) => panic!("{} must be refused, read {state:?}", String::from_utf8_lossy(bytes)),
        Err(error) => error,
    }
}

#[test]
fn a_newer_format_version_is_refused_naming_both_versions() {
    let written = String::from_utf8(to_json(&sample_state())).expect("UTF-8");
    let newer = written.replacen("\"format_version\": 1,", "\"format_version\": 2,", 1);
    let error = error_of(newer.as_bytes());
    assert!(matches!(error, StateError::NewerFormat { found: 2, supported: FORMAT_VERSION, .. }), "{error:?}");
    let message = error.to_string();
    assert_eq!(
        message,
        format!(
            "{ORIGIN} has format_version 2, newer than format_version 1, the newest this terrace {} reads",
            env!("CARGO_PKG_VERSION")
        )
    );
    // Even a version too large for the field is named as it was written.
    let huge = error_of(br#"{"format_version": 18446744073709551615}"#);
    assert!(huge.to_string().contains("format_version 18446744073709551615"), "{huge}");
}

#[test]
fn a_terraform_state_is_not_a_terrace_state() {
    let tfstate = json!({
        "version": 4,
        "terraform_version": "1.9.5",
        "serial": 3,
        "lineage": "b8f5c6d2-2f43-4d4e-9a7e-1f2d3c4b5a69",
        "outputs": {},
        "resources": [{"mode": "managed", "type": "hcloud_server", "name": "app", "instances": []}],
        "check_results": null
    });
    let error = error_of(tfstate.to_string().as_bytes());
    assert_eq!(
        error.to_string(),
        format!(
            "{ORIGIN} is not a terrace state: it is a Terraform state (terraform_version \"1.9.5\"); \
             terrace keeps a state of its own and does not read Terraform's"
        )
    );
}

#[test]
fn other_json_is_not_a_terrace_state() {
    for (bytes, reason) in [
        (&b"[1, 2, 3]"[..], "it is JSON but not an object"),
        (b"\"terrace\"", "it is JSON but not an object"),
        (br#"{"name": "package.json"}"#, "it has no format_version"),
        (br#"{"format_version": "1"}"#, "its format_version \"1\" is not a whole number"),
        (br#"{"format_version": -1}"#, "its format_version -1 is not a whole number"),
    ] {
        let error = error_of(bytes);
        assert!(matches!(error, StateError::NotTerraceState { .. }), "{error:?}");
        assert_eq!(error.to_string(), format!("{ORIGIN} is not a terrace state: {reason}"));
    }
}

#[test]
fn truncated_json_is_corrupted_at_a_line_and_column_of_the_named_file() {
    let written = to_json(&sample_state());
    let cut = written.len() * 2 / 3;
    let error = error_of(&written[..cut]);
    let StateError::Corrupt { ref origin, line, column, ref detail } = error else {
        panic!("{error:?}");
    };
    assert_eq!(origin, ORIGIN);
    let expected_line = written[..cut].iter().filter(|&&b| b == b'\n').count() + 1;
    assert_eq!(line, expected_line, "the error is where the bytes end");
    assert!(column > 0 && detail.contains("EOF"), "{detail}");
    let message = error.to_string();
    assert!(
        message.starts_with(&format!("{ORIGIN} is corrupted: not valid JSON at line {line}, column {column}: EOF")),
        "{message}"
    );
    assert!(error.hint().expect("a hint").contains("left unchanged"));
}

#[test]
fn garbage_and_empty_files_are_corrupted() {
    for bytes in [&b""[..], b"\x00\x01binary", b"{\"format_version\": 1,,}", b"{} trailing"] {
        let error = error_of(bytes);
        assert!(matches!(error, StateError::Corrupt { .. }), "{error:?}");
        assert!(error.to_string().starts_with(ORIGIN), "{error}");
    }
}

#[test]
fn a_layout_that_does_not_match_its_version_is_invalid_with_a_position() {
    let cases = [
        (
            r#"{"format_version": 1, "lineage": "not-a-uuid", "serial": 1, "resources": {}}"#,
            "lineage \"not-a-uuid\" is not a UUID",
        ),
        (
            r#"{"format_version": 1, "lineage": "16fd2706-8baf-433b-82eb-8c7fada847da", "serial": -4, "resources": {}}"#,
            "invalid value: integer `-4`",
        ),
        (
            r#"{"format_version": 1, "lineage": "16fd2706-8baf-433b-82eb-8c7fada847da", "serial": 1}"#,
            "missing field `resources`",
        ),
        (
            r#"{"format_version": 1, "lineage": "16fd2706-8baf-433b-82eb-8c7fada847da", "serial": 1,
                "resources": {"server.a": {"kind": "server", "attributes": {}, "addresss": "x"}}}"#,
            "unknown field `addresss`",
        ),
        (
            r#"{"format_version": 1, "lineage": "16fd2706-8baf-433b-82eb-8c7fada847da", "serial": 1,
                "resources": {"server.a": {"kind": "server", "id": 4711, "attributes": {}}}}"#,
            "invalid type: integer `4711`, expected a string",
        ),
        (
            r#"{"format_version": 0, "lineage": "16fd2706-8baf-433b-82eb-8c7fada847da", "serial": 1,
                "resources": [{"address": "server.a", "kind": "server", "id": true, "attributes": {}}]}"#,
            "id true is neither a whole number nor a string",
        ),
    ];
    for (text, detail) in cases {
        let error = error_of(text.as_bytes());
        let StateError::Invalid { ref origin, line, column, detail: ref found, .. } = error else {
            panic!("{text}: {error:?}");
        };
        assert_eq!(origin, ORIGIN);
        assert!(line >= 1 && column >= 1, "{error}");
        assert!(found.contains(detail), "{found:?} says {detail:?}");
    }
}

#[test]
fn a_version_0_state_with_an_address_twice_cannot_be_upgraded() {
    let text = r#"{"format_version": 0, "lineage": "16fd2706-8baf-433b-82eb-8c7fada847da", "serial": 1,
        "resources": [
            {"address": "server.a", "kind": "server", "id": 1, "attributes": {}},
            {"address": "server.a", "kind": "server", "id": 2, "attributes": {}}
        ]}"#;
    let error = error_of(text.as_bytes());
    assert_eq!(
        error.to_string(),
        format!("cannot upgrade {ORIGIN} from format_version 0: resource server.a appears more than once")
    );
}

#[test]
fn writing_does_not_depend_on_the_order_maps_were_built_in() {
    let mut forward = sample_state();
    let mut backward = forward.clone();
    for resource in backward.resources.values_mut() {
        let reversed: serde_json::Map<String, serde_json::Value> =
            resource.attributes.clone().into_iter().rev().collect();
        resource.attributes = reversed;
        resource.dependencies.reverse();
    }
    assert_eq!(to_json(&forward), to_json(&backward));
    // Unsorted or repeated dependencies in the model are written sorted, once.
    let server = forward.resources.get_mut("server.app[0]").expect("a server");
    server.dependencies = vec!["network.private".to_owned(), "firewall.web".to_owned(), "network.private".to_owned()];
    let read = from_json(&to_json(&forward), ORIGIN).expect("reads");
    assert_eq!(read.resources["server.app[0]"].dependencies, ["firewall.web", "network.private"]);
}

#[test]
fn written_json_is_pretty_with_a_trailing_newline_and_the_documented_field_order() {
    let text = String::from_utf8(to_json(&sample_state())).expect("UTF-8");
    assert!(text.ends_with("}\n") && !text.ends_with("\n\n"));
    let order: Vec<usize> =
        ["\"format_version\"", "\"lineage\"", "\"serial\"", "\"stack\"", "\"phase\"", "\"resources\"", "\"outputs\""]
            .iter()
            .map(|key| text.find(key).unwrap_or_else(|| panic!("{key} is written")))
            .collect();
    assert!(order.is_sorted(), "{order:?}");
}
