//! Reading a stack folder: `terrace.hcl` (the stack, its backend, shared variables and locals) and
//! one `<phase>.hcl` per phase. This checks the shape of the files (which blocks and settings exist);
//! what resource blocks say is checked later by the compiler against the schema.

use std::path::Path;

use hcl::edit::Span as _;
use hcl::edit::expr::Expression;
use hcl::edit::structure::{Attribute, Block, BlockLabel, Body, Structure};

use super::{BackendDef, BlockDef, Definitions, NamedExpr, OutputDef, PhaseDef, Stack, VariableDef};
use crate::diag::{Diagnostic, Diagnostics, FileId, Sources, Span};
use crate::kind::Kind;
use crate::schema::suggest;

pub const STACK_FILE: &str = "terrace.hcl";

/// Reads the stack in `dir`. Returns `None` only when nothing useful could be read; every problem
/// found is added to `diags`.
pub fn load_stack(dir: &Path, sources: &mut Sources, diags: &mut Diagnostics) -> Option<Stack> {
    let stack_path = dir.join(STACK_FILE);
    let Some((file, body)) = read_file(&stack_path, STACK_FILE, sources, diags) else {
        if !stack_path.exists() {
            diags.push(
                Diagnostic::error(format!("no {STACK_FILE} in {}", dir.display()))
                    .hint("point terrace at a stack folder with --dir (or TERRACE_DIR); the bundled one is phases/"),
            );
        }
        return None;
    };
    let mut reader = Reader { file, diags };
    let (stack_block, shared) = reader.stack_file(body);
    let Some((name, phases, phase_spans, backend)) = stack_block else {
        reader.diags.push(
            Diagnostic::error(format!("{STACK_FILE} declares no stack"))
                .at(Some(Span { file, range: 0..0 }))
                .hint("add `stack \"name\" { phases = [\"first\", \"second\"] }`"),
        );
        return None;
    };

    let mut phase_files = Vec::new();
    for (phase, span) in phases.iter().zip(phase_spans) {
        let file_name = format!("{phase}.hcl");
        let path = dir.join(&file_name);
        if !path.exists() {
            diags.push(
                Diagnostic::error(format!("phase `{phase}` has no file {file_name}"))
                    .at(Some(span))
                    .label("listed here")
                    .hint(format!(
                        "create {file_name} with a `phase \"{phase}\" {{ }}` block, or remove it from the list"
                    )),
            );
            continue;
        }
        let Some((file, body)) = read_file(&path, &file_name, sources, diags) else {
            continue;
        };
        let mut reader = Reader { file, diags };
        if let Some(def) = reader.phase_file(body, phase) {
            phase_files.push(def);
        }
    }
    Some(Stack { name, phases, backend, shared, phase_files })
}

/// The most a definition file may hold: hand-written definitions are a few KiB, and a generated
/// stack of 100,000 resources is a few MiB.
pub const MAX_FILE_BYTES: u64 = 64 << 20;

/// Reads and parses one file; a syntax error becomes a diagnostic at its place.
fn read_file(path: &Path, name: &str, sources: &mut Sources, diags: &mut Diagnostics) -> Option<(FileId, Body)> {
    let text = match terrace_state::file::read_regular(path, MAX_FILE_BYTES)
        .and_then(|bytes| String::from_utf8(bytes).map_err(|e| std::io::Error::new(std::io::ErrorKind::InvalidData, e)))
    {
        // A UTF-8 byte order mark, which some editors write, is not part of the text.
        Ok(text) => text.strip_prefix('\u{feff}').map(str::to_owned).unwrap_or(text),
        Err(error) => {
            diags.push(Diagnostic::error(format!("cannot read {}: {error}", path.display())));
            return None;
        }
    };
    let file = sources.add(name.to_owned(), path.to_owned(), text);
    match hcl::edit::parser::parse_body(&sources.get(file).text) {
        Ok(body) => Some((file, body)),
        Err(error) => {
            let text = &sources.get(file).text;
            diags.push(syntax_error(file, text, error.location().offset(), error.message().trim()));
            None
        }
    }
}

/// A parse error as a diagnostic that says what is wrong in the user's terms.
fn syntax_error(file: FileId, text: &str, offset: usize, message: &str) -> Diagnostic {
    let at = |range: std::ops::Range<usize>| Some(Span { file, range });
    let rest = text.get(offset..).unwrap_or_default();
    if message.contains("redefined attribute") {
        let name: String = rest.chars().take_while(|c| c.is_ascii_alphanumeric() || *c == '_' || *c == '-').collect();
        return Diagnostic::error(format!("attribute `{name}` is set twice"))
            .at(at(offset..offset + name.len().max(1)))
            .label("set again here")
            .hint("keep one of them");
    }
    if let Some(open) = unclosed_brace(&text[..offset.min(text.len())])
        && (rest.trim().is_empty() || message.contains("expected `}`"))
    {
        return Diagnostic::error("syntax error: a `{` is never closed")
            .at(at(offset..offset + 1))
            .label(message.to_owned())
            .related(Span { file, range: open..open + 1 }, "this `{` is never closed")
            .hint("close the block with `}`");
    }
    let shown = rest.chars().next().filter(|c| !c.is_whitespace());
    let summary = match shown {
        Some(c) => format!("syntax error: unexpected `{c}`"),
        None => "syntax error".to_owned(),
    };
    Diagnostic::error(summary)
        .at(at(offset..offset + shown.map_or(1, char::len_utf8)))
        .label(if message.is_empty() { "here".to_owned() } else { message.to_owned() })
        .hint("HCL has attributes `name = value` and blocks `kind \"name\" { ... }`; strings are in double quotes")
}

/// The byte offset of the innermost `{` left open in `text`, skipping strings and comments.
fn unclosed_brace(text: &str) -> Option<usize> {
    let mut open = Vec::new();
    let mut chars = text.char_indices().peekable();
    while let Some((i, c)) = chars.next() {
        match c {
            '"' => {
                while let Some((_, c)) = chars.next() {
                    match c {
                        '\\' => {
                            chars.next();
                        }
                        '"' | '\n' => break,
                        _ => {}
                    }
                }
            }
            '#' => while chars.next_if(|(_, c)| *c != '\n').is_some() {},
            '/' if chars.peek().is_some_and(|(_, c)| *c == '/') => {
                while chars.next_if(|(_, c)| *c != '\n').is_some() {}
            }
            '{' => open.push(i),
            '}' => {
                open.pop();
            }
            _ => {}
        }
    }
    open.pop()
}

type StackHeader = (String, Vec<String>, Vec<Span>, Option<BackendDef>);

struct Reader<'a> {
    file: FileId,
    diags: &'a mut Diagnostics,
}

impl Reader<'_> {
    fn span(&self, range: Option<std::ops::Range<usize>>) -> Option<Span> {
        range.map(|range| Span { file: self.file, range })
    }

    fn span_or_start(&self, range: Option<std::ops::Range<usize>>) -> Span {
        Span { file: self.file, range: range.unwrap_or(0..0) }
    }

    fn stack_file(&mut self, body: Body) -> (Option<StackHeader>, Definitions) {
        let mut header = None;
        let mut defs = Definitions::default();
        for structure in body {
            match structure {
                Structure::Block(block) if block.ident.as_str() == "stack" => {
                    if header.is_some() {
                        self.diags.push(
                            Diagnostic::error("a second `stack` block")
                                .at(self.span(block.ident.span()))
                                .hint("a stack folder declares one stack"),
                        );
                        continue;
                    }
                    header = self.stack_block(&block);
                }
                Structure::Block(block) if matches!(block.ident.as_str(), "variable" | "locals") => {
                    self.definition(block, &mut defs);
                }
                Structure::Block(block) => {
                    let kind = block.ident.as_str();
                    let hint = if kind.parse::<Kind>().is_ok() || kind == "output" {
                        format!(
                            "`{kind}` blocks go in a phase file; {STACK_FILE} holds the stack, variables and locals"
                        )
                    } else {
                        "terrace.hcl holds `stack`, `variable` and `locals` blocks".to_owned()
                    };
                    self.diags.push(
                        Diagnostic::error(format!("unexpected `{kind}` block in {STACK_FILE}"))
                            .at(self.span(block.ident.span()))
                            .hint(hint),
                    );
                }
                Structure::Attribute(attr) => self.stray_attribute(&attr),
            }
        }
        (header, defs)
    }

    fn stack_block(&mut self, block: &Block) -> Option<StackHeader> {
        let name = self.single_label(block, "stack")?;
        let mut phases = Vec::new();
        let mut spans = Vec::new();
        let mut backend = None;
        for structure in block.body.iter() {
            match structure {
                Structure::Attribute(attr) if attr.key.as_str() == "phases" => {
                    let Expression::Array(items) = &attr.value else {
                        self.type_error(&attr.value, "phases", "a list of phase names");
                        continue;
                    };
                    for item in items.iter() {
                        match static_string(item) {
                            Some(phase) if crate::addr::is_identifier(&phase) => {
                                if phases.contains(&phase) {
                                    self.diags.push(
                                        Diagnostic::error(format!("phase `{phase}` is listed twice"))
                                            .at(self.span(item.span())),
                                    );
                                    continue;
                                }
                                phases.push(phase);
                                spans.push(self.span_or_start(item.span()));
                            }
                            _ => self.type_error(item, "phases", "a phase name (letters, digits, `_`, `-`)"),
                        }
                    }
                }
                Structure::Block(inner) if inner.ident.as_str() == "backend" => {
                    if let Some(kind) = self.single_label(inner, "backend") {
                        backend = Some(BackendDef {
                            kind,
                            body: inner.body.clone(),
                            span: self.span_or_start(inner.ident.span()),
                        });
                    }
                }
                other => self.unknown_setting(other, "stack", &["phases", "backend"]),
            }
        }
        if phases.is_empty() {
            self.diags.push(
                Diagnostic::error(format!("stack `{name}` lists no phases"))
                    .at(self.span(block.ident.span()))
                    .hint("add `phases = [\"first\", ...]`: each phase is a file <phase>.hcl beside terrace.hcl"),
            );
        }
        Some((name, phases, spans, backend))
    }

    fn phase_file(&mut self, body: Body, expected: &str) -> Option<PhaseDef> {
        let mut phase: Option<PhaseDef> = None;
        let mut defs = Definitions::default();
        for structure in body {
            match structure {
                Structure::Block(block) if block.ident.as_str() == "phase" => {
                    if let Some(first) = &phase {
                        self.diags.push(
                            Diagnostic::error(format!("a second `phase` block in the file of phase `{}`", first.name))
                                .at(self.span(block.ident.span()))
                                .hint("each phase has its own file <phase>.hcl"),
                        );
                        continue;
                    }
                    phase = self.phase_block(&block, expected);
                }
                Structure::Block(block) => self.definition(block, &mut defs),
                Structure::Attribute(attr) => self.stray_attribute(&attr),
            }
        }
        match phase {
            Some(mut phase) => {
                phase.defs = defs;
                Some(phase)
            }
            None => {
                self.diags.push(
                    Diagnostic::error(format!("{expected}.hcl has no `phase \"{expected}\"` block"))
                        .at(Some(Span { file: self.file, range: 0..0 }))
                        .hint(format!("start the file with `phase \"{expected}\" {{ description = \"...\" }}`")),
                );
                None
            }
        }
    }

    fn phase_block(&mut self, block: &Block, expected: &str) -> Option<PhaseDef> {
        let name = self.single_label(block, "phase")?;
        let span = self.span_or_start(block.ident.span());
        if name != expected {
            self.diags.push(
                Diagnostic::error(format!("phase `{name}` is in the file of phase `{expected}`"))
                    .at(self.span(block.labels.first().and_then(|label| label.span())))
                    .hint(format!("name it `{expected}`, or move it to {name}.hcl")),
            );
        }
        let mut def = PhaseDef {
            name: expected.to_owned(),
            span,
            extends: None,
            users: None,
            description: None,
            budget_monthly: None,
            remove: Vec::new(),
            defs: Definitions::default(),
        };
        const SETTINGS: [&str; 5] = ["extends", "users", "description", "budget_monthly", "remove"];
        for structure in block.body.iter() {
            let Structure::Attribute(attr) = structure else {
                self.unknown_setting(structure, "phase", &SETTINGS);
                continue;
            };
            let value = &attr.value;
            match attr.key.as_str() {
                "extends" => match static_string(value) {
                    Some(parent) => def.extends = Some((parent, self.span_or_start(value.span()))),
                    None => self.type_error(value, "extends", "the name of another phase, as a string"),
                },
                "users" => match static_string(value) {
                    Some(users) => def.users = Some(users),
                    None => self.type_error(value, "users", "a string such as \"100-1000\""),
                },
                "description" => match static_string(value) {
                    Some(text) => def.description = Some(text),
                    None => self.type_error(value, "description", "a string"),
                },
                "budget_monthly" => match value {
                    Expression::Number(n) if n.as_f64().is_some_and(|v| v >= 0.0) => {
                        def.budget_monthly = n.as_f64();
                    }
                    _ => self.type_error(value, "budget_monthly", "a number of EUR per month"),
                },
                "remove" => match value {
                    Expression::Array(items) => {
                        for item in items.iter() {
                            match static_string(item) {
                                Some(text) => def.remove.push((text, self.span_or_start(item.span()))),
                                None => self.type_error(item, "remove", "an address string such as \"server.db\""),
                            }
                        }
                    }
                    _ => self.type_error(value, "remove", "a list of addresses such as [\"server.db\"]"),
                },
                _ => self.unknown_setting(structure, "phase", &SETTINGS),
            }
        }
        Some(def)
    }

    /// `variable`, `locals`, `output` or a resource block.
    fn definition(&mut self, block: Block, defs: &mut Definitions) {
        let ident = block.ident.as_str();
        match ident {
            "variable" => {
                let Some(name) = self.single_label(&block, "variable") else {
                    return;
                };
                let mut var = VariableDef {
                    name,
                    default: None,
                    description: None,
                    sensitive: false,
                    span: self.span_or_start(block.ident.span()),
                };
                for structure in block.body.iter() {
                    match structure {
                        Structure::Attribute(attr) if attr.key.as_str() == "default" => {
                            var.default = Some(attr.value.clone());
                        }
                        Structure::Attribute(attr) if attr.key.as_str() == "description" => {
                            var.description = static_string(&attr.value);
                        }
                        Structure::Attribute(attr) if attr.key.as_str() == "sensitive" => {
                            var.sensitive = matches!(&attr.value, Expression::Bool(b) if *b.value());
                        }
                        Structure::Attribute(attr) if attr.key.as_str() == "type" => {}
                        other => {
                            self.unknown_setting(other, "variable", &["default", "description", "sensitive", "type"])
                        }
                    }
                }
                defs.variables.push(var);
            }
            "locals" => {
                if !block.labels.is_empty() {
                    self.diags.push(
                        Diagnostic::error("`locals` takes no label")
                            .at(self.span(block.labels[0].span()))
                            .hint("write `locals { name = value }`"),
                    );
                }
                for structure in block.body.iter() {
                    match structure {
                        Structure::Attribute(attr) => defs.locals.push(NamedExpr {
                            name: attr.key.as_str().to_owned(),
                            expr: attr.value.clone(),
                            span: self.span_or_start(attr.key.span()),
                        }),
                        Structure::Block(inner) => self.diags.push(
                            Diagnostic::error(format!("unexpected `{}` block in `locals`", inner.ident.as_str()))
                                .at(self.span(inner.ident.span()))
                                .hint("locals hold attributes: `name = value`"),
                        ),
                    }
                }
            }
            "output" => {
                let Some(name) = self.single_label(&block, "output") else {
                    return;
                };
                let mut output = OutputDef {
                    name,
                    value: None,
                    description: None,
                    sensitive: false,
                    span: self.span_or_start(block.ident.span()),
                };
                for structure in block.body.iter() {
                    match structure {
                        Structure::Attribute(attr) if attr.key.as_str() == "value" => {
                            output.value = Some(attr.value.clone());
                        }
                        Structure::Attribute(attr) if attr.key.as_str() == "description" => {
                            output.description = static_string(&attr.value);
                        }
                        Structure::Attribute(attr) if attr.key.as_str() == "sensitive" => {
                            output.sensitive = matches!(&attr.value, Expression::Bool(b) if *b.value());
                        }
                        other => self.unknown_setting(other, "output", &["value", "description", "sensitive"]),
                    }
                }
                if output.value.is_none() {
                    self.diags.push(
                        Diagnostic::error(format!("output `{}` has no value", output.name))
                            .at(Some(output.span.clone()))
                            .hint("add `value = ...`"),
                    );
                }
                defs.outputs.push(output);
            }
            _ => match ident.parse::<Kind>() {
                Ok(kind) if kind.is_internal() => {
                    self.diags.push(
                        Diagnostic::error(format!("`{ident}` blocks cannot be written in a phase"))
                            .at(self.span(block.ident.span()))
                            .label("made by terrace")
                            .hint("the `postgres` and `redis` services make a `host` for each of their servers"),
                    );
                }
                Ok(kind) => {
                    let Some(name) = self.single_label(&block, ident) else {
                        return;
                    };
                    let span = self.span_or_start(block.ident.span());
                    defs.blocks.push(BlockDef { kind, name, body: block.body, span });
                }
                Err(()) => {
                    let candidates =
                        Kind::ALL.iter().map(|kind| kind.as_str()).chain(["variable", "locals", "output", "phase"]);
                    self.diags.push(
                        Diagnostic::error(format!("unknown block kind `{ident}`"))
                            .at(self.span(block.ident.span()))
                            .label("not a kind terrace knows")
                            .hint_opt(suggest(ident, candidates).map(|s| format!("did you mean `{s}`?"))),
                    );
                }
            },
        }
    }

    /// The one label of a block; a diagnostic when there is none, or more.
    fn single_label(&mut self, block: &Block, what: &str) -> Option<String> {
        match block.labels.as_slice() {
            [label] => {
                let text = match label {
                    BlockLabel::Ident(ident) => ident.as_str().to_owned(),
                    BlockLabel::String(text) => text.value().clone(),
                };
                if crate::addr::is_identifier(&text) {
                    Some(text)
                } else {
                    self.diags.push(
                        Diagnostic::error(format!("`{text}` is not a valid {what} name"))
                            .at(self.span(label.span()))
                            .hint("names start with a letter or `_` and hold letters, digits, `_` and `-`"),
                    );
                    None
                }
            }
            [] => {
                self.diags.push(
                    Diagnostic::error(format!("`{what}` block without a name"))
                        .at(self.span(block.ident.span()))
                        .hint(format!("write `{what} \"name\" {{ ... }}`")),
                );
                None
            }
            [_, extra, ..] => {
                self.diags.push(
                    Diagnostic::error(format!("`{what}` block with more than one label"))
                        .at(self.span(extra.span()))
                        .hint(format!("write `{what} \"name\" {{ ... }}`")),
                );
                None
            }
        }
    }

    fn stray_attribute(&mut self, attr: &Attribute) {
        self.diags.push(
            Diagnostic::error(format!("attribute `{}` outside of any block", attr.key.as_str()))
                .at(self.span(attr.key.span()))
                .hint("attributes belong inside a block; shared values go in `locals { ... }`"),
        );
    }

    fn unknown_setting(&mut self, structure: &Structure, block: &str, known: &[&str]) {
        let (name, range, what) = match structure {
            Structure::Attribute(attr) => (attr.key.as_str(), attr.key.span(), "attribute"),
            Structure::Block(inner) => (inner.ident.as_str(), inner.ident.span(), "block"),
        };
        let hint = suggest(name, known.iter().copied())
            .map(|s| format!("did you mean `{s}`?"))
            .unwrap_or_else(|| format!("`{block}` accepts: {}", known.join(", ")));
        self.diags
            .push(Diagnostic::error(format!("unknown {what} `{name}` in `{block}`")).at(self.span(range)).hint(hint));
    }

    fn type_error(&mut self, expr: &Expression, name: &str, expected: &str) {
        self.diags.push(
            Diagnostic::error(format!("`{name}` must be {expected}")).at(self.span(expr.span())).label("this value"),
        );
    }
}

/// A string written literally (no interpolation).
pub fn static_string(expr: &Expression) -> Option<String> {
    match expr {
        Expression::String(text) => Some(text.value().clone()),
        _ => None,
    }
}
