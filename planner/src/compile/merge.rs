//! `extends`: a phase starts from the phase it extends (and that one's parent, and so on), then adds
//! and overrides blocks by address and drops those it lists in `remove`.

use std::collections::BTreeMap;

use crate::diag::{Diagnostic, Diagnostics};
use crate::kind::Kind;
use crate::lang::{BlockDef, NamedExpr, OutputDef, PhaseDef, Stack, VariableDef};
use crate::schema::suggest;

/// A phase with everything it inherits, each definition from the nearest phase that writes it.
#[derive(Debug)]
pub struct Merged<'a> {
    pub phase: &'a PhaseDef,
    pub variables: BTreeMap<String, VariableDef>,
    pub locals: BTreeMap<String, NamedExpr>,
    pub outputs: BTreeMap<String, OutputDef>,
    pub blocks: BTreeMap<(Kind, String), MergedBlock<'a>>,
}

#[derive(Debug, Clone)]
pub struct MergedBlock<'a> {
    pub def: &'a BlockDef,
    /// The phase whose file defines it.
    pub phase: String,
}

/// The longest chain of phases a phase may extend, itself included: checked before anything is
/// merged, so that `validate` of a stack stays bounded (each phase merges its whole chain).
pub const MAX_PHASE_CHAIN: usize = 100;

pub(super) fn merge<'a>(stack: &'a Stack, phase: &str, diags: &mut Diagnostics) -> Option<Merged<'a>> {
    let Some(target) = stack.phase(phase) else {
        let hint = suggest(phase, stack.phases.iter().map(String::as_str))
            .map(|s| format!("did you mean `{s}`?"))
            .unwrap_or_else(|| format!("the stack's phases: {}", stack.phases.join(", ")));
        if !stack.phases.iter().any(|p| p == phase) {
            diags.push(Diagnostic::error(format!("stack `{}` has no phase `{phase}`", stack.name)).hint(hint));
        }
        return None;
    };

    // The chain from the root phase down to `target`, with its names for finding a cycle at once.
    let mut chain = vec![target];
    let mut names_seen = std::collections::HashSet::from([target.name.as_str()]);
    while let Some((parent, span)) = &chain[chain.len() - 1].extends {
        if chain.len() >= MAX_PHASE_CHAIN && !names_seen.contains(parent.as_str()) {
            diags.push(
                // The same words for every phase below, so that they are reported as one.
                Diagnostic::error(format!("this `extends` makes a chain of more than {MAX_PHASE_CHAIN} phases"))
                    .at(Some(span.clone()))
                    .hint("extend a phase nearer the root: a phase holds what it inherits whole"),
            );
            return None;
        }
        if names_seen.contains(parent.as_str()) {
            // The cycle, rotated to start at its first name, so that every phase on it reports
            // the same diagnostic (and `validate` shows it once).
            let start = chain.iter().position(|p| &p.name == parent).unwrap_or(0);
            let mut cycle: Vec<&PhaseDef> = chain[start..].to_vec();
            let first = (0..cycle.len()).min_by_key(|&i| &cycle[i].name).unwrap_or(0);
            cycle.rotate_left(first);
            let mut names: Vec<&str> = cycle.iter().map(|p| p.name.as_str()).collect();
            names.push(names[0]);
            let at = cycle[0].extends.as_ref().map(|(_, span)| span.clone());
            diags.push(
                Diagnostic::error(format!("phases extend each other in a cycle: {}", names.join(" -> ")))
                    .at(at.or_else(|| Some(span.clone())))
                    .hint("one phase of the cycle must not extend another"),
            );
            return None;
        }
        match stack.phase(parent) {
            Some(def) => {
                names_seen.insert(def.name.as_str());
                chain.push(def);
            }
            None => {
                let child = chain[chain.len() - 1].name.as_str();
                let others: Vec<&str> = stack.phases.iter().map(String::as_str).filter(|p| *p != child).collect();
                let hint = suggest(parent, others.iter().copied())
                    .map(|s| format!("did you mean `{s}`?"))
                    .unwrap_or_else(|| match others.as_slice() {
                        [] => "this is the stack's only phase: drop `extends`".to_owned(),
                        _ => format!("a phase extends one of the others: {}", others.join(", ")),
                    });
                if stack.phases.contains(parent) {
                    // Its file failed to load; that failure is already reported.
                    return None;
                }
                diags.push(
                    Diagnostic::error(format!("`extends` names an unknown phase `{parent}`"))
                        .at(Some(span.clone()))
                        .hint(hint),
                );
                return None;
            }
        }
    }
    chain.reverse();

    let mut merged = Merged {
        phase: target,
        variables: BTreeMap::new(),
        locals: BTreeMap::new(),
        outputs: BTreeMap::new(),
        blocks: BTreeMap::new(),
    };
    add_file(&mut merged, &stack.shared, "terrace.hcl", diags);
    for phase in chain {
        for (address, span) in &phase.remove {
            remove(&mut merged, address, span, diags);
        }
        add_file(&mut merged, &phase.defs, &phase.name, diags);
    }
    Some(merged)
}

fn remove(merged: &mut Merged<'_>, address: &str, span: &crate::diag::Span, diags: &mut Diagnostics) {
    let found = match address.split_once('.') {
        Some(("output", name)) => merged.outputs.remove(name).is_some(),
        Some(("local", name)) => merged.locals.remove(name).is_some(),
        Some((kind, name)) => match kind.parse::<Kind>() {
            Ok(kind) => merged.blocks.remove(&(kind, name.to_owned())).is_some(),
            Err(()) => false,
        },
        None => false,
    };
    if !found {
        let known: Vec<String> = merged
            .blocks
            .keys()
            .map(|(kind, name)| format!("{kind}.{name}"))
            .chain(merged.outputs.keys().map(|name| format!("output.{name}")))
            .collect();
        diags.push(
            Diagnostic::error(format!("`remove` names `{address}`, which the extended phases do not define"))
                .at(Some(span.clone()))
                .hint_opt(
                    suggest(address, known.iter().map(String::as_str))
                        .map(|s| format!("did you mean `{s}`?"))
                        .or_else(|| Some("write addresses such as \"server.db\" or \"output.DB_HOST\"".into())),
                ),
        );
    }
}

fn add_file<'a>(merged: &mut Merged<'a>, defs: &'a crate::lang::Definitions, phase: &str, diags: &mut Diagnostics) {
    let mut seen_blocks = BTreeMap::new();
    for block in &defs.blocks {
        let key = (block.kind, block.name.clone());
        if seen_blocks.insert(key.clone(), block.span.clone()).is_some() {
            diags.push(
                Diagnostic::error(format!("duplicate address `{}.{}`", block.kind, block.name))
                    .at(Some(block.span.clone()))
                    .label("defined again here")
                    .hint("a block is defined once per file; to change an inherited block, redefine it in the extending phase"),
            );
            continue;
        }
        merged.blocks.insert(key, MergedBlock { def: block, phase: phase.to_owned() });
    }
    let mut seen = std::collections::BTreeSet::new();
    for var in &defs.variables {
        if !seen.insert(("variable", var.name.clone())) {
            diags.push(duplicate("variable", &var.name, &var.span));
        }
        merged.variables.insert(var.name.clone(), var.clone());
    }
    for local in &defs.locals {
        if !seen.insert(("local", local.name.clone())) {
            diags.push(duplicate("local", &local.name, &local.span));
        }
        merged.locals.insert(local.name.clone(), local.clone());
    }
    for output in &defs.outputs {
        if !seen.insert(("output", output.name.clone())) {
            diags.push(duplicate("output", &output.name, &output.span));
        }
        merged.outputs.insert(output.name.clone(), output.clone());
    }
}

fn duplicate(what: &str, name: &str, span: &crate::diag::Span) -> Diagnostic {
    Diagnostic::error(format!("{what} `{name}` is defined twice in one file"))
        .at(Some(span.clone()))
        .hint("keep one definition")
}
