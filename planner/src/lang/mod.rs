//! The phase language: reading a stack folder (`terrace.hcl` and one file per phase) into blocks
//! with their source places, and evaluating expressions. HCL syntax is parsed by hcl-rs (`hcl::edit`,
//! which keeps byte spans for diagnostics); what the blocks mean is decided here.

pub mod eval;
mod functions;
pub mod load;

pub use hcl::edit::expr::Expression;
pub use hcl::edit::structure::Body;

use crate::diag::Span;
use crate::kind::Kind;

/// A stack folder, read and checked for shape (not yet evaluated).
#[derive(Debug, Clone)]
pub struct Stack {
    pub name: String,
    pub phases: Vec<String>,
    pub backend: Option<BackendDef>,
    /// `variable` and `locals` in `terrace.hcl`, shared by every phase.
    pub shared: Definitions,
    pub phase_files: Vec<PhaseDef>,
}

impl Stack {
    pub fn phase(&self, name: &str) -> Option<&PhaseDef> {
        self.phase_files.iter().find(|phase| phase.name == name)
    }
}

#[derive(Debug, Clone)]
pub struct BackendDef {
    pub kind: String,
    pub body: Body,
    pub span: Span,
}

/// Variables, locals, outputs and resource blocks of one file.
#[derive(Debug, Clone, Default)]
pub struct Definitions {
    pub variables: Vec<VariableDef>,
    pub locals: Vec<NamedExpr>,
    pub outputs: Vec<OutputDef>,
    pub blocks: Vec<BlockDef>,
}

/// One phase file: the `phase` block's settings and the definitions beside it.
#[derive(Debug, Clone)]
pub struct PhaseDef {
    pub name: String,
    pub span: Span,
    pub extends: Option<(String, Span)>,
    pub users: Option<String>,
    pub description: Option<String>,
    pub budget_monthly: Option<f64>,
    /// Blocks of the extended phase to drop: addresses like `server.db`.
    pub remove: Vec<(String, Span)>,
    pub defs: Definitions,
}

#[derive(Debug, Clone)]
pub struct VariableDef {
    pub name: String,
    pub default: Option<Expression>,
    pub description: Option<String>,
    pub sensitive: bool,
    pub span: Span,
}

#[derive(Debug, Clone)]
pub struct NamedExpr {
    pub name: String,
    pub expr: Expression,
    pub span: Span,
}

#[derive(Debug, Clone)]
pub struct OutputDef {
    pub name: String,
    pub value: Option<Expression>,
    pub description: Option<String>,
    pub sensitive: bool,
    pub span: Span,
}

/// A resource block as written: `server "app" { ... }`.
#[derive(Debug, Clone)]
pub struct BlockDef {
    pub kind: Kind,
    pub name: String,
    pub body: Body,
    /// The block's header (`server "app"`).
    pub span: Span,
}
