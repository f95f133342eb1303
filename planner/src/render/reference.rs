//! The language reference (docs/reference.md), generated from the schema so that it cannot drift:
//! every kind with its attributes, types, defaults and update semantics.

use std::fmt::Write as _;

use crate::kind::Kind;
use crate::schema::{self, BlockSchema, Default, LIFECYCLE, META_ATTRS};

pub fn markdown() -> String {
    let mut out = String::from(
        "<!-- Generated from planner/src/schema.rs by `TERRACE_UPDATE_DOCS=1 cargo test -p terrace --test cli docs`; do not edit. -->\n\
         # Block kinds\n\n\
         Every block kind of the phase language, with its attributes. **replaces** marks an attribute \
         whose change replaces the object (Hetzner cannot change it in place); *computed* attributes \
         are known after apply and can be read in references.\n\n\
         Every block also takes `count`, `depends_on` and a `lifecycle` block (see the end).\n",
    );
    for kind in Kind::ALL {
        let what = if kind.is_composite() {
            "composite"
        } else if kind.is_internal() {
            "made by the `postgres` and `redis` services for each of their servers; not written in a phase"
        } else if kind.is_terrace_own() {
            "terrace's own, kept in state"
        } else {
            "primitive"
        };
        let _ = write!(out, "\n## `{kind}` ({what})\n\n");
        section(&mut out, schema::of(kind), 0);
        let computed = schema::of(kind).computed;
        if !computed.is_empty() {
            let names: Vec<String> = computed.iter().map(|c| format!("`{c}`")).collect();
            let _ = writeln!(out, "\n*Computed:* {}", names.join(", "));
        }
    }
    out.push_str("\n## Every block\n\n| attribute | type | default | notes |\n| --- | --- | --- | --- |\n");
    for attr in META_ATTRS {
        let _ = writeln!(out, "| `{}` | {} | | |", attr.name, attr.describe());
    }
    out.push_str("\n### `lifecycle` block\n\n");
    section(&mut out, &LIFECYCLE, 0);
    let _ = write!(
        out,
        "\n## Limits\n\n\
         Checked where they are written, before anything is expanded from them, each an error at its \
         file, line and column:\n\n\
         - every whole number within its domain (the tables above);\n\
         - a `postgres` or `redis` block makes at most {} servers, its instances and their replicas \
         together;\n\
         - a value (a list, an object, a function's result, a template) weighs at most {} MiB: its \
         text in bytes and 16 for each element;\n\
         - a phase extends a chain of at most {} phases, itself included;\n\
         - a definition file holds at most {} MiB, and is a regular file (not a device or a FIFO).\n",
        crate::compile::MAX_SERVICE_SERVERS,
        crate::lang::eval::MAX_VALUE_SIZE >> 20,
        crate::compile::MAX_PHASE_CHAIN,
        crate::lang::load::MAX_FILE_BYTES >> 20,
    );
    out
}

fn section(out: &mut String, schema: &BlockSchema, depth: usize) {
    out.push_str("| attribute | type | default | notes |\n| --- | --- | --- | --- |\n");
    for attr in schema.attrs {
        let default = match attr.default {
            Some(Default::Str(text)) => format!("`\"{text}\"`"),
            Some(Default::Int(n)) => format!("`{n}`"),
            Some(Default::Bool(b)) => format!("`{b}`"),
            None => String::new(),
        };
        let mut notes = Vec::new();
        if attr.required {
            notes.push("required");
        }
        let update;
        match attr.update {
            schema::Update::Replace => notes.push("**replaces**"),
            schema::Update::InPlace { actions, power_off } => {
                update = format!(
                    "in place: {}{}",
                    actions.join(", "),
                    if power_off { " (powers the server off)" } else { "" }
                );
                notes.push(&update);
            }
            schema::Update::Local => {}
        }
        if attr.sensitive {
            notes.push("sensitive");
        }
        let _ = writeln!(out, "| `{}` | {} | {default} | {} |", attr.name, attr.describe(), notes.join(", "));
    }
    for nested in schema.blocks {
        let heading = "#".repeat(3 + depth.min(2));
        let repeat = if nested.repeated { "repeatable" } else { "at most once" };
        let _ = write!(out, "\n{heading} `{}` block ({repeat})\n\n", nested.name);
        section(out, nested.schema, depth + 1);
    }
}
