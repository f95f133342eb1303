//! The command line, as clap structs. Nothing here does work: `settings` turns these into plain
//! values and `commands` runs them.

use std::path::PathBuf;

use clap::{Args, Parser, Subcommand, ValueEnum};

#[derive(Debug, Parser)]
#[command(
    name = "terrace",
    version,
    about = "Declarative infrastructure planner for Hetzner Cloud, with monthly costs"
)]
pub(crate) struct Cli {
    #[command(subcommand)]
    pub command: Command,
}

#[derive(Debug, Subcommand)]
pub(crate) enum Command {
    /// Check every phase of the stack: syntax, references, types and Hetzner's static rules.
    Validate(StackArgs),
    /// Show what applying a phase would do, with monthly costs.
    Plan(PlanArgs),
    /// Compare every phase of the stack by monthly cost, side by side.
    Cost(CostArgs),
    /// Print a phase's resource graph.
    Graph(GraphArgs),
}

#[derive(Debug, Args)]
pub(crate) struct StackArgs {
    /// The stack folder (holding terrace.hcl).
    #[arg(long, env = "TERRACE_DIR", default_value = ".")]
    pub dir: PathBuf,
    /// Set a variable: --var name=value (repeatable). TERRACE_VAR_name works too.
    #[arg(long = "var", value_name = "NAME=VALUE")]
    pub vars: Vec<String>,
    /// Price list: a date (YYYY-MM-DD, the list in force then) or a pricing JSON file.
    #[arg(long, value_name = "DATE|FILE")]
    pub pricing: Option<String>,
}

#[derive(Debug, Args)]
pub(crate) struct PlanArgs {
    #[command(flatten)]
    pub stack: StackArgs,
    /// The phase to plan (default: the stack's first phase when nothing is recorded).
    #[arg(long)]
    pub phase: Option<String>,
    #[arg(long, value_enum, default_value_t = PlanFormat::Text)]
    pub format: PlanFormat,
    /// Exit 0 when there are no changes, 2 when there are, 1 on error.
    #[arg(long)]
    pub detailed_exitcode: bool,
}

#[derive(Debug, Args)]
pub(crate) struct CostArgs {
    #[command(flatten)]
    pub stack: StackArgs,
    #[arg(long, value_enum, default_value_t = PlanFormat::Text)]
    pub format: PlanFormat,
}

#[derive(Debug, Args)]
pub(crate) struct GraphArgs {
    #[command(flatten)]
    pub stack: StackArgs,
    #[arg(long)]
    pub phase: Option<String>,
    #[arg(long, value_enum, default_value_t = GraphFormat::Dot)]
    pub format: GraphFormat,
}

#[derive(Debug, Clone, Copy, ValueEnum)]
pub(crate) enum PlanFormat {
    Text,
    Json,
    Markdown,
}

#[derive(Debug, Clone, Copy, ValueEnum)]
pub(crate) enum GraphFormat {
    Dot,
    Json,
}
