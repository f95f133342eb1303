//! The example CI pipelines in examples/ci/ are YAML that parses, and every `terrace` command they
//! run exists with every flag they pass, checked against the real binary's `--help`.

use std::path::Path;

use yaml_rust2::{Yaml, YamlLoader};

use super::support::terrace;

/// Every shell text under `run:` (GitHub) and `script:` (GitLab) keys.
fn scripts(yaml: &Yaml, out: &mut Vec<String>) {
    match yaml {
        Yaml::Hash(map) => {
            for (key, value) in map {
                let key = key.as_str().unwrap_or_default();
                match (key, value) {
                    ("run" | "script" | "before_script", Yaml::String(text)) => out.push(text.clone()),
                    ("script" | "before_script", Yaml::Array(items)) => {
                        out.extend(items.iter().filter_map(|i| i.as_str().map(str::to_owned)))
                    }
                    _ => scripts(value, out),
                }
            }
        }
        Yaml::Array(items) => items.iter().for_each(|i| scripts(i, out)),
        _ => {}
    }
}

/// The `terrace ...` commands of a script, continuation lines joined, as words.
fn commands(script: &str) -> Vec<Vec<String>> {
    let joined = script.replace("\\\n", " ");
    let mut found = Vec::new();
    for line in joined.lines() {
        for part in line.split([';', '|']) {
            // A command starts its part of the line (`cargo install ... terrace` and `gh run list
            // --workflow terrace` only name it).
            let words: Vec<String> = part.split_whitespace().map(str::to_owned).collect();
            if words.first().is_some_and(|w| w == "terrace") {
                found.push(words);
            }
        }
    }
    found
}

#[test]
fn the_example_pipelines_parse_and_call_only_commands_and_flags_that_exist() {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("../examples/ci");
    let mut checked = 0;
    for file in ["github-actions.yml", "gitlab-ci.yml"] {
        let text = std::fs::read_to_string(dir.join(file)).expect("the example exists");
        let docs = YamlLoader::load_from_str(&text).unwrap_or_else(|e| panic!("{file} is not YAML: {e}"));
        assert_eq!(docs.len(), 1, "{file}: one document");
        let mut texts = Vec::new();
        scripts(&docs[0], &mut texts);
        let all: Vec<Vec<String>> = texts.iter().flat_map(|t| commands(t)).collect();
        let names: Vec<&str> = all.iter().filter_map(|c| c.get(1).map(String::as_str)).collect();
        for needed in ["validate", "plan", "apply"] {
            assert!(names.contains(&needed), "{file} runs terrace {needed}: {names:?}");
        }
        assert!(text.contains("HCLOUD_TOKEN"), "{file} passes the token from the CI's secrets");
        for command in all {
            // The subcommand (two words for `state x` and `pricing pull`), then its flags.
            let mut path: Vec<&str> = vec![command[1].as_str()];
            if matches!(command[1].as_str(), "state" | "pricing") {
                path.push(command[2].as_str());
            }
            let mut args = path.clone();
            args.push("--help");
            let help = terrace(&dir, &args);
            assert_eq!(help.code, 0, "{file}: `terrace {}` exists:\n{}", path.join(" "), help.transcript());
            for word in &command[1..] {
                let Some(flag) = word.strip_prefix("--") else { continue };
                let flag = flag.split('=').next().unwrap_or(flag);
                assert!(
                    help.stdout.contains(&format!("--{flag}")),
                    "{file}: `terrace {}` has no --{flag}:\n{}",
                    path.join(" "),
                    help.stdout
                );
                checked += 1;
            }
        }
    }
    assert!(checked >= 10, "{checked} flags checked");
}
