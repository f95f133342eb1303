//! The `terrace` binary: parse the command line, run the command, exit with its code.

mod cli;

/// mimalloc instead of the system allocator: planning large stacks allocates many small values,
/// and glibc's allocator spent about 40% of a 10,000-resource plan in malloc and free.
#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

use clap::Parser as _;

fn main() -> std::process::ExitCode {
    let parsed = cli::args::Cli::parse();
    let code = match cli::run(parsed) {
        Ok(code) => code,
        Err(error) => cli::report(&error),
    };
    std::process::ExitCode::from(code as u8)
}
