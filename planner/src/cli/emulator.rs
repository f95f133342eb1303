//! `terrace emulator`: serves the in-memory Hetzner Cloud API of `terrace_providers::emulator` until
//! Ctrl-C, printing its URL on stderr (stdout stays free for data).

use std::io::Write as _;
use std::time::Duration;

use terrace_providers::emulator::{EmulatorConfig, parse_faults, run_until_interrupted};

use super::args::EmulatorArgs;
use super::{CliError, ExitCode};

pub(crate) fn emulator(args: &EmulatorArgs) -> Result<ExitCode, CliError> {
    let faults = parse_faults(&args.faults).map_err(|e| CliError {
        message: format!("invalid --faults: {e}"),
        hint: Some("e.g. --faults 429=0.05,500=0.05,reset=0.02,action_error=0.01".to_owned()),
        code: ExitCode::Error,
    })?;
    let config = EmulatorConfig {
        action_delay: Duration::from_millis(args.action_delay_ms),
        faults,
        seed: args.seed,
        hourly_budget: args.hourly_budget,
        token: args.token.clone(),
        public_ipv4_range: args.public_ipv4_range,
        ..EmulatorConfig::default()
    };
    run_until_interrupted(args.listen, config, |url| {
        let mut stderr = std::io::stderr().lock();
        let _ =
            writeln!(stderr, "emulator: serving the Hetzner Cloud API at {url} (faults: {faults}, seed {})", args.seed);
        let _ = writeln!(stderr, "emulator: export HCLOUD_ENDPOINT={url} HCLOUD_TOKEN=any; Ctrl-C stops it");
        let s3 = url.strip_suffix("/v1").map_or_else(|| format!("{url}/s3"), |base| format!("{base}/s3"));
        let _ = writeln!(
            stderr,
            "emulator: for buckets, export TERRACE_S3_ENDPOINT={s3} TERRACE_S3_ACCESS_KEY=any TERRACE_S3_SECRET_KEY=any"
        );
    })
    .map_err(|e| CliError::usage(format!("emulator on {}: {e}", args.listen)))?;
    Ok(ExitCode::Success)
}
