//! The `terrace` binary: parse the command line, run the command, exit with its code.

mod cli;

use clap::Parser as _;

/// mimalloc instead of the system allocator: planning large stacks allocates many small values,
/// and glibc's allocator spent about 40% of a 10,000-resource plan in malloc and free.
#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

fn main() -> std::process::ExitCode {
    let parsed = match cli::args::Cli::try_parse() {
        Ok(parsed) => parsed,
        Err(error) => {
            let _ = error.print();
            // A usage error is an error (1), not clap's default 2, which pipelines using
            // --detailed-exitcode read as "the plan has changes". --help and --version are 0.
            let code = if error.use_stderr() { cli::ExitCode::Error } else { cli::ExitCode::Success };
            return std::process::ExitCode::from(code as u8);
        }
    };
    let code = match cli::run(parsed) {
        Ok(code) => code,
        Err(error) => cli::report(&error),
    };
    std::process::ExitCode::from(code as u8)
}
