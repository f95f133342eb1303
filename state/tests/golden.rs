//! Golden round-trips of the file format: every `tests/golden/NAME.in.json` is read (upgraded when
//! older) and written again, and the bytes must equal `NAME.out.json`. `UPDATE_GOLDEN=1` rewrites
//! the `.out.json` files; review their diff like any change to the contract.

use std::path::{Path, PathBuf};

fn golden_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/golden")
}

fn inputs() -> Vec<PathBuf> {
    let mut inputs: Vec<PathBuf> = std::fs::read_dir(golden_dir())
        .expect("list tests/golden")
        .map(|entry| entry.expect("a folder entry").path())
        .filter(|path| path.to_string_lossy().ends_with(".in.json"))
        .collect();
    inputs.sort();
    inputs
}

fn output_of(input: &Path) -> PathBuf {
    PathBuf::from(input.to_string_lossy().replace(".in.json", ".out.json"))
}

#[test]
fn every_input_is_written_as_its_golden_output() {
    let inputs = inputs();
    assert!(inputs.len() >= 3, "the golden files are there: {inputs:?}");
    let update = std::env::var_os("UPDATE_GOLDEN").is_some();
    let mut mismatches = Vec::new();
    for input in &inputs {
        let bytes = std::fs::read(input).expect("read the input");
        let state =
            terrace_state::from_json(&bytes, &input.display().to_string()).unwrap_or_else(|error| panic!("{error}"));
        let written = terrace_state::to_json(&state);
        let output = output_of(input);
        if update {
            std::fs::write(&output, &written).expect("write the golden output");
            continue;
        }
        let expected = std::fs::read(&output).unwrap_or_else(|error| panic!("{}: {error}", output.display()));
        if written != expected {
            mismatches.push(format!(
                "{} differs from {}:\n{}",
                input.display(),
                output.display(),
                String::from_utf8_lossy(&written)
            ));
        }
    }
    assert!(mismatches.is_empty(), "{}", mismatches.join("\n\n"));
}

#[test]
fn every_golden_output_is_a_fixed_point() {
    if std::env::var_os("UPDATE_GOLDEN").is_some() {
        // The outputs are being rewritten by the other test right now.
        return;
    }
    for input in inputs() {
        let output = output_of(&input);
        let bytes = std::fs::read(&output).expect("read the golden output");
        let state =
            terrace_state::from_json(&bytes, &output.display().to_string()).unwrap_or_else(|error| panic!("{error}"));
        assert_eq!(
            String::from_utf8_lossy(&terrace_state::to_json(&state)),
            String::from_utf8_lossy(&bytes),
            "{} reads and writes back unchanged",
            output.display()
        );
    }
}

#[test]
fn the_version_0_state_upgrades_to_the_current_model() {
    let bytes = std::fs::read(golden_dir().join("v0.in.json")).expect("read v0.in.json");
    let state = terrace_state::from_json(&bytes, "v0.in.json").expect("a version 0 state reads");
    assert_eq!(state.lineage, "0f8fad5b-d9cb-469f-a165-70867728950e");
    assert_eq!(state.serial, 7, "upgrading keeps the serial");
    assert_eq!(state.phase.as_deref(), Some("single-server"));
    let server = &state.resources["server.app[0]"];
    assert_eq!(server.id.as_deref(), Some("4711"), "numeric ids become strings");
    assert_eq!(server.dependencies, ["firewall.web", "network.private"], "depends_on becomes sorted dependencies");
    assert!(server.sensitive_attributes.is_empty());
    let cache = &state.resources["redis.cache.server.main"];
    assert_eq!(cache.id, None);
    assert_eq!(cache.composite.as_deref(), Some("redis.cache"));
    assert_eq!(state.resources["bucket.assets"].id.as_deref(), Some("seed-assets"));
    assert!(state.outputs["redis_password"].sensitive);
    let written = String::from_utf8(terrace_state::to_json(&state)).expect("UTF-8");
    assert!(written.starts_with("{\n  \"format_version\": 1,\n"), "{written}");
}

#[test]
fn the_example_in_the_format_document_is_a_canonical_state() {
    let doc = Path::new(env!("CARGO_MANIFEST_DIR")).join("../docs/state-format.md");
    let text = std::fs::read_to_string(&doc).expect("read docs/state-format.md");
    let example = text
        .split("```json\n")
        .nth(1)
        .and_then(|rest| rest.split("```").next())
        .expect("the document has a JSON example");
    let state =
        terrace_state::from_json(example.as_bytes(), "docs/state-format.md").unwrap_or_else(|error| panic!("{error}"));
    assert_eq!(String::from_utf8_lossy(&terrace_state::to_json(&state)), example);
}
