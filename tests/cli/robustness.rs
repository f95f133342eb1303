//! Broken input never panics: every bundled phase file cut short at many places, and with a
//! character replaced, is read, compiled and validated in process; each run must end in
//! diagnostics or a plan, not a panic.

use std::panic::{AssertUnwindSafe, catch_unwind};

use terrace::compile::VarInputs;
use terrace::pipeline::{compile_phase, load};
use terrace::plan::plan_from_empty;
use terrace_providers::pricing::Catalog;

use super::support::phases_dir;

/// Runs the whole offline pipeline on a stack folder; returns whether it produced a plan.
fn pipeline(dir: &std::path::Path, catalog: &Catalog) -> bool {
    let loaded = load(dir);
    let Some(stack) = loaded.stack else {
        return false;
    };
    let mut planned = false;
    for phase in &stack.phases {
        let (compiled, diags) = compile_phase(&stack, phase, &VarInputs::default(), catalog);
        let sorted = diags.into_sorted();
        let _ = terrace::render::diagnostics::render(&sorted, &loaded.sources, false);
        if let Some(compiled) = compiled {
            let plan = plan_from_empty(&compiled, catalog, Vec::new());
            let _ = terrace::render::text::plan(&plan, terrace::render::Style::default());
            planned = true;
        }
    }
    planned
}

#[test]
fn mangled_phase_files_give_diagnostics_not_panics() {
    let catalog = Catalog::embedded();
    let source = phases_dir();
    let dir = tempfile::tempdir().expect("temp dir");
    let files: Vec<String> =
        ["terrace.hcl", "block-storage.hcl", "managed-db.hcl", "read-replicas.hcl", "sharding.hcl", "multi-region.hcl"]
            .iter()
            .map(|f| (*f).to_owned())
            .collect();
    let copy_all = || {
        for file in &files {
            std::fs::copy(source.join(file), dir.path().join(file)).expect("copy");
        }
    };
    copy_all();
    assert!(pipeline(dir.path(), &catalog), "the intact stack plans");
    let mut runs = 0;
    let mut panics = Vec::new();
    for file in &files {
        let text = std::fs::read_to_string(source.join(file)).expect("read");
        let cuts: Vec<usize> = (0..text.len()).step_by((text.len() / 25).max(1)).collect();
        for cut in cuts {
            let cut = (0..=cut).rev().find(|i| text.is_char_boundary(*i)).unwrap_or(0);
            for mangled in [
                text[..cut].to_owned(),
                format!("{}}}{}", &text[..cut], &text[cut..]),
                format!("{}\"{}", &text[..cut], &text[cut..]),
            ] {
                copy_all();
                std::fs::write(dir.path().join(file), &mangled).expect("write");
                runs += 1;
                if catch_unwind(AssertUnwindSafe(|| pipeline(dir.path(), &catalog))).is_err() {
                    panics.push(format!("{file} cut at {cut}"));
                }
            }
        }
    }
    assert!(runs > 300, "only {runs} runs");
    assert!(panics.is_empty(), "panics on: {panics:?}");
}

#[test]
fn a_byte_order_mark_is_accepted_and_special_files_are_refused_at_once() {
    use super::support::{stack_copy, terrace};
    // A phase file saved with a UTF-8 byte order mark plans as without it.
    let dir = stack_copy();
    let file = dir.path().join("managed-db.hcl");
    let text = std::fs::read_to_string(&file).expect("the phase");
    std::fs::write(&file, format!("\u{feff}{text}")).expect("the phase with a BOM");
    let stack = dir.path().join("terrace.hcl");
    let stack_text = std::fs::read_to_string(&stack).expect("the stack");
    std::fs::write(&stack, format!("\u{feff}{stack_text}")).expect("the stack with a BOM");
    let run = terrace(dir.path(), &["validate"]);
    assert_eq!(run.code, 0, "{}", run.stderr);
    // A phase file that is a device or a FIFO is refused, not read (or waited on) forever.
    for special in ["/dev/zero", "/dev/urandom"] {
        std::fs::remove_file(&file).expect("remove");
        std::os::unix::fs::symlink(special, &file).expect("a link to a device");
        let run = terrace(dir.path(), &["validate"]);
        assert_eq!(run.code, 1, "{special}: {}", run.stderr);
        assert!(run.stderr.contains("managed-db.hcl: not a regular file"), "{special}: {}", run.stderr);
    }
    std::fs::remove_file(&file).expect("remove");
    assert!(std::process::Command::new("mkfifo").arg(&file).status().expect("mkfifo").success());
    let run = terrace(dir.path(), &["validate"]);
    assert_eq!(run.code, 1, "{}", run.stderr);
    assert!(run.stderr.contains("not a regular file"), "{}", run.stderr);
    // So is a state file that is a device.
    let dir = stack_copy();
    std::os::unix::fs::symlink("/dev/zero", dir.path().join("terrace.state.json")).expect("a link");
    let run = terrace(dir.path(), &["plan", "--phase", "block-storage", "--refresh=false"]);
    assert_eq!(run.code, 1, "{}", run.stderr);
    assert!(run.stderr.contains("not a regular file"), "{}", run.stderr);
}

#[test]
fn control_characters_of_a_definition_never_reach_the_terminal() {
    use super::support::{fixture, terrace};
    // A block label holding an OSC title sequence and a bell: refused, and shown escaped.
    let dir = fixture(
        "//- terrace.hcl\nstack \"s\" { phases = [\"p\"] }\n//- p.hcl\nphase \"p\" {}\n\
         server \"web\\u001b]0;owned\\u0007\" {\n  server_type = \"cpx22\"\n  location = \"fsn1\"\n}\n",
    );
    let run = terrace(dir.path(), &["validate"]);
    assert_eq!(run.code, 1, "{}", run.stderr);
    let said = format!("{}{}", run.stdout, run.stderr);
    assert!(!said.contains('\u{1b}') && !said.contains('\u{7}'), "raw control characters: {said:?}");
    assert!(said.contains("web\\u{1b}]0;owned\\u{7}"), "shown escaped: {said}");
    // A description that clears the screen, in the plan's text and Markdown.
    let dir = fixture(
        "//- terrace.hcl\nstack \"s\" { phases = [\"p\"] }\n//- p.hcl\n\
         phase \"p\" {\n  description = \"x\\u001b[2J\\u009b2J\"\n}\n\
         server \"web\" {\n  server_type = \"cpx22\"\n  location = \"fsn1\"\n}\n",
    );
    for format in ["text", "markdown"] {
        let run = terrace(dir.path(), &["plan", "--format", format]);
        assert_eq!(run.code, 0, "{}", run.stderr);
        assert!(!run.stdout.contains('\u{1b}') && !run.stdout.contains('\u{9b}'), "{format}: {:?}", run.stdout);
        assert!(run.stdout.contains("x\\u{1b}[2J\\u{9b}2J"), "{format}: {}", run.stdout);
    }
    // JSON escapes what JSON must itself, and stays JSON.
    let run = terrace(dir.path(), &["plan", "--format", "json"]);
    let plan: serde_json::Value = serde_json::from_str(&run.stdout).expect("valid JSON");
    assert_eq!(plan["phase"]["description"], "x\u{1b}[2J\u{9b}2J", "{}", run.stdout);
}

#[test]
fn locals_that_double_each_step_stop_at_the_value_limit() {
    use super::support::{fixture, terrace};
    let doubling = [
        ("join", "\"0123456789abcdef\"", "join(\"\", [local.s{p}, local.s{p}])"),
        ("concat", "[\"0123456789abcdef\"]", "concat(local.s{p}, local.s{p})"),
        ("merge", "{ k = \"v\" }", "merge(local.s{p}, { for_s{i} = local.s{p} })"),
        ("nesting", "[\"0123456789abcdef\"]", "[local.s{p}, local.s{p}]"),
    ];
    for (name, start, step) in doubling {
        let mut locals = format!("locals {{\n  s0 = {start}\n");
        for i in 1..40 {
            let expr = step.replace("{p}", &(i - 1).to_string()).replace("{i}", &i.to_string());
            locals.push_str(&format!("  s{i} = {expr}\n"));
        }
        locals.push_str("}\n");
        let text = format!(
            "//- terrace.hcl\nstack \"s\" {{ phases = [\"p\"] }}\n//- p.hcl\nphase \"p\" {{}}\n{locals}\n\
             output \"x\" {{\n  value = length(local.s39)\n}}\n"
        );
        let run = terrace(fixture(&text).path(), &["validate"]);
        assert_eq!(run.code, 1, "{name}: {}", run.stderr);
        assert!(
            run.stderr.contains("this value is larger than a definition's values may be"),
            "{name}: {}",
            run.stderr
        );
        // The failed local is unknown from then on; only nesting still doubles (a list of two
        // unknowns is twice as large at each step) and meets the limit once more, at s38.
        let most = if name == "nesting" { "2 errors" } else { "1 error" };
        assert!(run.stderr.lines().last() == Some(most), "{name}: {}", run.stderr);
    }
}

#[test]
fn the_same_warning_in_many_places_is_one_warning_naming_how_many() {
    use super::support::{fixture, terrace};
    let mut text = String::from("//- terrace.hcl\nstack \"s\" { phases = [\"p\"] }\n//- p.hcl\nphase \"p\" {}\n");
    for i in 0..2000 {
        text.push_str(&format!("server \"s{i}\" {{\n  server_type = \"cx23\"\n  location    = \"fsn1\"\n}}\n"));
    }
    let dir = fixture(&text);
    let run = terrace(dir.path(), &["validate"]);
    assert_eq!(run.code, 0, "{}", run.stderr);
    assert_eq!(
        run.stderr.matches("warning: server type \"cx23\" has restricted availability").count(),
        1,
        "{}",
        run.stderr
    );
    assert!(
        run.stderr.contains("the same in 1999 more places: p.hcl:7:17, p.hcl:11:17, p.hcl:15:17 and 1996 more"),
        "{}",
        run.stderr
    );
    let plan = terrace(dir.path(), &["plan"]);
    assert_eq!(plan.code, 0, "{}", plan.stderr);
    let said = format!("{}{}", plan.stdout, plan.stderr);
    assert_eq!(said.matches("has restricted availability").count(), 1, "{said}");
    assert!(said.contains("(the same in 1999 more places:"), "{said}");
}

#[test]
fn a_phase_chain_is_bounded_and_reported_once() {
    use super::support::{fixture, terrace};
    let chain = |n: usize| {
        let names: Vec<String> = (0..n).map(|i| format!("\"p{i}\"")).collect();
        let mut text = format!("//- terrace.hcl\nstack \"s\" {{ phases = [{}] }}\n", names.join(", "));
        for i in 0..n {
            let extends = if i == 0 { String::new() } else { format!("  extends = \"p{}\"\n", i - 1) };
            text.push_str(&format!("//- p{i}.hcl\nphase \"p{i}\" {{\n{extends}}}\n"));
        }
        text.push_str("server \"web\" {\n  server_type = \"cpx22\"\n  location    = \"fsn1\"\n}\n");
        fixture(&text)
    };
    let run = terrace(chain(100).path(), &["validate"]);
    assert_eq!(run.code, 0, "a chain of 100 is allowed: {}", run.stderr);
    let run = terrace(chain(1000).path(), &["validate"]);
    assert_eq!(run.code, 1, "{}", run.stderr);
    assert_eq!(run.stderr.matches("this `extends` makes a chain of more than 100 phases").count(), 1, "{}", run.stderr);
    assert!(run.stderr.contains("p1.hcl:2:13") && run.stderr.contains("the same in 899 more places"), "{}", run.stderr);
}
