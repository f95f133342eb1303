//! The `terrace` binary: parse the command line, run the command, exit with its code.

mod cli;

use clap::Parser as _;

fn main() -> std::process::ExitCode {
    let parsed = cli::args::Cli::parse();
    let code = match cli::run(parsed) {
        Ok(code) => code,
        Err(error) => cli::report(&error),
    };
    std::process::ExitCode::from(code as u8)
}
