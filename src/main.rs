//! The `broker` binary: parse arguments, set up logging, run, exit with the right code.

use std::process::ExitCode;

use clap::Parser as _;

fn main() -> ExitCode {
    let cli = broker::cli::Cli::parse();
    init_logging(cli.verbose);
    // The one runtime of the process; library code never builds its own.
    let runtime = match tokio::runtime::Builder::new_current_thread().enable_all().build() {
        Ok(runtime) => runtime,
        Err(e) => {
            broker::output::message(&format!("error: cannot start the async runtime: {e}"));
            return ExitCode::from(broker::ExitStatus::Failure.code());
        }
    };
    ExitCode::from(runtime.block_on(broker::run(cli)).code())
}

fn init_logging(verbose: u8) {
    use tracing_subscriber::EnvFilter;
    let default = match verbose {
        0 => "broker=warn",
        1 => "broker=debug",
        _ => "trace",
    };
    let filter = EnvFilter::try_from_default_env().unwrap_or_else(|_| EnvFilter::new(default));
    let _ = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr)
        .without_time()
        .try_init();
}
