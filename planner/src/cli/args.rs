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
    /// Show what applying a phase would change against the recorded state, with monthly costs.
    Plan(PlanArgs),
    /// Compare every phase of the stack by monthly cost, side by side.
    Cost(CostArgs),
    /// Print a phase's resource graph.
    Graph(GraphArgs),
    /// Read and edit the recorded state.
    State(StateArgs),
    /// Print the outputs recorded by the last apply.
    Output(OutputArgs),
    /// Carry a phase (or a saved plan) out through the Hetzner Cloud API.
    Apply(ApplyArgs),
    /// Delete every object the stack recorded.
    Destroy(DestroyArgs),
    /// Record an existing object under an address of the phase.
    Import(ImportArgs),
    /// Price lists: `terrace pricing pull --out FILE` writes one from the live API.
    Pricing(PricingArgs),
    /// Serve an in-memory Hetzner Cloud API under /v1 until Ctrl-C, for tests and pipelines.
    Emulator(EmulatorArgs),
    /// Data migrations: `terrace migrate status` shows where each stands.
    Migrate(MigrateArgs),
}

#[derive(Debug, Args)]
pub(crate) struct MigrateArgs {
    #[command(subcommand)]
    pub command: MigrateCommand,
    #[command(flatten)]
    pub dir: DirArg,
}

#[derive(Debug, Subcommand)]
pub(crate) enum MigrateCommand {
    /// Each recorded migration: its last step, the copy's lag (read over SSH while it streams),
    /// and what it keeps until `terrace apply --finish-migration`.
    Status,
}

/// What apply and destroy share.
#[derive(Debug, Args)]
pub(crate) struct ApplyCommon {
    #[command(flatten)]
    pub stack: StackArgs,
    /// Allow deleting or replacing volumes, buckets and database servers.
    #[arg(long)]
    pub allow_data_loss: bool,
    /// How many operations run at once.
    #[arg(long, value_name = "N", default_value_t = 10, value_parser = clap::value_parser!(u16).range(1..=256))]
    pub parallelism: u16,
    /// Read the objects from the API before planning (--refresh=false plans against state as recorded).
    #[arg(long, value_name = "BOOL", default_value_t = true, action = clap::ArgAction::Set)]
    pub refresh: bool,
    /// Configure the services' servers over SSH (--hosts=false plans and applies only the cloud
    /// objects, and leaves what runs on the servers as it is).
    #[arg(long, value_name = "BOOL", default_value_t = true, action = clap::ArgAction::Set, env = "TERRACE_HOSTS")]
    pub hosts: bool,
    #[command(flatten)]
    pub lock: LockArgs,
}

#[derive(Debug, Args)]
pub(crate) struct ApplyArgs {
    /// A plan saved with `terrace plan --out FILE`: applied exactly, without asking, or refused when stale.
    #[arg(value_name = "PLANFILE")]
    pub plan_file: Option<PathBuf>,
    /// The phase to apply (default: the phase recorded in state, else the stack's first).
    #[arg(long, conflicts_with = "plan_file")]
    pub phase: Option<String>,
    /// Do not ask for confirmation.
    #[arg(long)]
    pub auto_approve: bool,
    /// Apply only these addresses and what they depend on (repeatable).
    #[arg(long = "target", value_name = "ADDR", conflicts_with = "plan_file")]
    pub targets: Vec<String>,
    /// Delete what finished data migrations kept: the old database's volume, host and host key.
    #[arg(long, conflicts_with = "plan_file")]
    pub finish_migration: bool,
    /// A command run (by `sh -c`) after each step of a data migration, with TERRACE_MIGRATION (the
    /// service), TERRACE_MIGRATION_STEP and, from `switchover` on, TERRACE_OUTPUTS (a file with
    /// the new outputs as JSON, secrets included): where the pipeline switches the application.
    /// A failing hook stops the apply; the next one continues after the step.
    #[arg(long, value_name = "COMMAND", env = "TERRACE_MIGRATION_HOOK")]
    pub migration_hook: Option<String>,
    #[command(flatten)]
    pub common: ApplyCommon,
}

#[derive(Debug, Args)]
pub(crate) struct DestroyArgs {
    /// Do not ask for confirmation.
    #[arg(long)]
    pub auto_approve: bool,
    #[command(flatten)]
    pub common: ApplyCommon,
}

#[derive(Debug, Args)]
pub(crate) struct ImportArgs {
    /// The address to record the object under, e.g. server.app.
    pub address: String,
    /// The object's Hetzner id.
    pub id: String,
    /// The phase that declares the address (default: the recorded phase, else the first).
    #[arg(long)]
    pub phase: Option<String>,
    #[command(flatten)]
    pub stack: StackArgs,
    #[command(flatten)]
    pub lock: LockArgs,
}

#[derive(Debug, Args)]
pub(crate) struct PricingArgs {
    #[command(subcommand)]
    pub command: PricingCommand,
}

#[derive(Debug, Subcommand)]
pub(crate) enum PricingCommand {
    /// Write the live `GET /pricing` answer to a file, usable with --pricing FILE.
    Pull {
        #[arg(long, value_name = "FILE")]
        out: PathBuf,
    },
}

#[derive(Debug, Args)]
pub(crate) struct EmulatorArgs {
    /// The address to listen on (port 0 picks a free one).
    #[arg(long, default_value = "127.0.0.1:8080")]
    pub listen: std::net::SocketAddr,
    /// How long every action runs before it succeeds, in milliseconds.
    #[arg(long = "action-delay", value_name = "MS", default_value_t = 1000)]
    pub action_delay_ms: u64,
    /// Faults to inject, e.g. 429=0.05,500=0.05,reset=0.02,action_error=0.01,locked=0.01,timeout=0.01.
    #[arg(long, value_name = "SPEC", default_value = "")]
    pub faults: String,
    /// Seeds injected faults, ids and passwords, so that a run can be repeated.
    #[arg(long, default_value_t = 0)]
    pub seed: u64,
    /// Requests per hour before 429 rate_limit_exceeded; refills steadily.
    #[arg(long = "hourly-budget", value_name = "N", default_value_t = 3600)]
    pub hourly_budget: u32,
    /// Accept only this bearer token (default: any).
    #[arg(long, env = "TERRACE_EMULATOR_TOKEN", hide_env_values = true)]
    pub token: Option<String>,
    /// Hand out the public IPv4s of servers, Primary IPs, Floating IPs and Load Balancers from this range,
    /// e.g. 198.18.0.0/16 (default: Hetzner's blocks per network zone).
    #[arg(long = "public-ipv4-range", value_name = "CIDR")]
    pub public_ipv4_range: Option<ipnet::Ipv4Net>,
}

#[derive(Debug, Args)]
pub(crate) struct DirArg {
    /// The stack folder (holding terrace.hcl).
    #[arg(long, env = "TERRACE_DIR", default_value = ".")]
    pub dir: PathBuf,
}

#[derive(Debug, Args)]
pub(crate) struct StackArgs {
    #[command(flatten)]
    pub dir: DirArg,
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
    /// The phase to plan (default: the phase recorded in state, else the stack's first).
    #[arg(long)]
    pub phase: Option<String>,
    #[arg(long, value_enum, default_value_t = PlanFormat::Text)]
    pub format: PlanFormat,
    /// Exit 0 when there are no changes, 2 when there are, 1 on error.
    #[arg(long)]
    pub detailed_exitcode: bool,
    /// Save the plan (with the state's lineage and serial and a digest of the definitions).
    #[arg(long, value_name = "FILE")]
    pub out: Option<PathBuf>,
    /// Plan only these addresses and what they depend on (repeatable).
    #[arg(long = "target", value_name = "ADDR")]
    pub targets: Vec<String>,
    /// Allow deleting or replacing volumes, buckets and database servers.
    #[arg(long)]
    pub allow_data_loss: bool,
    /// Plan the destruction of everything recorded.
    #[arg(long)]
    pub destroy: bool,
    /// Plan the deletion of what finished data migrations kept (the old database's volume, host and
    /// host key).
    #[arg(long)]
    pub finish_migration: bool,
    /// Read the objects from the API before planning, when HCLOUD_TOKEN is set (--refresh=false skips it).
    #[arg(long, value_name = "BOOL", default_value_t = true, action = clap::ArgAction::Set)]
    pub refresh: bool,
    /// Configure the services' servers over SSH (--hosts=false plans and applies only the cloud
    /// objects, and leaves what runs on the servers as it is).
    #[arg(long, value_name = "BOOL", default_value_t = true, action = clap::ArgAction::Set, env = "TERRACE_HOSTS")]
    pub hosts: bool,
    /// Exit 3 when the plan raises the monthly cost by more than this: EUR (25) or percent (10%).
    #[arg(long, value_name = "EUR|PERCENT%", value_parser = |s: &str| s.parse::<terrace::gate::MaxIncrease>())]
    pub max_cost_increase: Option<terrace::gate::MaxIncrease>,
    #[command(flatten)]
    pub lock: LockArgs,
}

#[derive(Debug, Args)]
pub(crate) struct LockArgs {
    /// How long to wait for the state lock (e.g. 30s, 2m); 0s fails at once.
    #[arg(long, value_name = "DURATION", default_value = "0s", value_parser = humantime::parse_duration)]
    pub lock_timeout: std::time::Duration,
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

#[derive(Debug, Args)]
pub(crate) struct StateArgs {
    #[command(subcommand)]
    pub command: StateCommand,
    #[command(flatten)]
    pub dir: DirArg,
    #[command(flatten)]
    pub lock: LockArgs,
}

#[derive(Debug, Subcommand)]
pub(crate) enum StateCommand {
    /// List the recorded resources' addresses.
    List,
    /// Show one recorded resource.
    Show { address: String },
    /// Forget a resource (the object itself stays in Hetzner Cloud).
    Rm { address: String },
    /// Record a resource under another address.
    Mv { from: String, to: String },
    /// Break a stale lock by its id. A lock whose holder still runs on this host is refused.
    Unlock {
        id: String,
        /// Break it even though its holder still runs (two runs may then write at once).
        #[arg(long)]
        force: bool,
    },
    /// Write a state file to the backend (the one an apply kept when the backend was down); its
    /// lineage must match and its serial be higher than the stored state's.
    Push { file: PathBuf },
    /// Copy the state to another backend, lineage and serial kept (then point terrace.hcl at it).
    Migrate {
        /// The backend to move to: local, s3 or pg.
        #[arg(long = "to-backend", value_name = "KIND")]
        to_backend: String,
        /// A setting of the new backend, NAME=VALUE (repeatable); TERRACE_BACKEND_<NAME> works too.
        #[arg(long = "backend-config", value_name = "NAME=VALUE")]
        backend_config: Vec<String>,
    },
}

#[derive(Debug, Args)]
pub(crate) struct OutputArgs {
    /// Print only this output's value, as it is (text without quotes), e.g. RESTORE_PROCEDURE.
    pub name: Option<String>,
    #[command(flatten)]
    pub dir: DirArg,
    #[arg(long, value_enum, default_value_t = OutputFormat::Json)]
    pub format: OutputFormat,
    /// Print sensitive values instead of hiding them.
    #[arg(long)]
    pub show_sensitive: bool,
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

#[derive(Debug, Clone, Copy, ValueEnum)]
pub(crate) enum OutputFormat {
    Json,
    /// `NAME=value` lines, for an app's `.env`.
    Env,
}
