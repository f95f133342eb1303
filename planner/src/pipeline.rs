//! The steps every command shares: read the stack folder, compile a phase, validate it.

use std::path::Path;

use terrace_providers::pricing::Catalog;

use crate::compile::{VarInputs, compile};
use crate::diag::{Diagnostics, Sources};
use crate::lang::Stack;
use crate::lang::load::load_stack;
use crate::model::Compiled;
use crate::validate::validate;

/// A stack folder as read: its sources (for diagnostics), the stack if it could be read, and
/// what was wrong.
pub struct Loaded {
    pub sources: Sources,
    pub stack: Option<Stack>,
    pub diags: Diagnostics,
}

pub fn load(dir: &Path) -> Loaded {
    let mut sources = Sources::default();
    let mut diags = Diagnostics::default();
    let stack = load_stack(dir, &mut sources, &mut diags);
    Loaded { sources, stack, diags }
}

/// Compiles and validates one phase. `None` when there are errors (all of them in the diagnostics).
pub fn compile_phase(
    stack: &Stack,
    phase: &str,
    inputs: &VarInputs,
    catalog: &Catalog,
) -> (Option<Compiled>, Diagnostics) {
    let (compiled, mut diags) = compile(stack, phase, inputs, catalog);
    let Some(compiled) = compiled else {
        return (None, diags);
    };
    diags.extend(validate(&compiled, catalog));
    if diags.has_errors() { (None, diags) } else { (Some(compiled), diags) }
}
