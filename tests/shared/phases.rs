//! Edits of the bundled phases that more than one test binary makes.

use std::path::Path;

/// The stack's `sharding` phase in `dir` with `count` shards.
pub(crate) fn with_shards(dir: &Path, count: usize) {
    let file = dir.join("sharding.hcl");
    let text = std::fs::read_to_string(&file).expect("the phase");
    let block = "postgres \"shard\" {\n  count       = ";
    let at = text.find(block).expect("the shard block") + block.len();
    let end = at + text[at..].find('\n').expect("the count's line");
    std::fs::write(&file, format!("{}{count}{}", &text[..at], &text[end..])).expect("write the phase");
}
