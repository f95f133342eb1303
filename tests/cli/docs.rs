//! Generated documentation stays in step with the code: docs/reference.md is generated from the
//! schema. `TERRACE_UPDATE_DOCS=1 cargo test -p terrace --test cli docs` rewrites it.

use std::path::Path;

#[test]
fn the_language_reference_is_up_to_date() {
    let path = Path::new(env!("CARGO_MANIFEST_DIR")).join("../docs/reference.md");
    let generated = terrace::render::reference::markdown();
    if std::env::var_os("TERRACE_UPDATE_DOCS").is_some() {
        std::fs::write(&path, &generated).expect("write docs/reference.md");
    }
    let committed = std::fs::read_to_string(&path).unwrap_or_default();
    assert!(
        committed == generated,
        "docs/reference.md is out of date: run `TERRACE_UPDATE_DOCS=1 cargo test -p terrace --test cli docs`"
    );
}
