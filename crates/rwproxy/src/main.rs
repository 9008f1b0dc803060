//! `rwproxy`: the command line. `rwproxy --config FILE` runs the proxy; `rwproxy check-config
//! FILE` validates a configuration and prints every problem with its YAML path.

mod admin_state;
mod app;
mod logging;
mod metrics_observer;
mod monitor_settings;
mod reload;

use std::path::PathBuf;
use std::process::ExitCode;

use clap::{Parser, Subcommand};

#[derive(Parser)]
#[command(
    name = "rwproxy",
    version,
    about = "A protocol-aware MySQL/MariaDB read/write-splitting proxy"
)]
struct Cli {
    /// The YAML configuration file.
    #[arg(long, short = 'c', global = false)]
    config: Option<PathBuf>,
    #[command(subcommand)]
    command: Option<Command>,
}

#[derive(Subcommand)]
enum Command {
    /// Validates a configuration file: prints every problem and exits 1 if there is any.
    CheckConfig { file: PathBuf },
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    match (cli.command, cli.config) {
        (Some(Command::CheckConfig { file }), _) => check_config(&file),
        (None, Some(config)) => match app::run(config) {
            Ok(()) => ExitCode::SUCCESS,
            Err(e) => {
                eprintln!("rwproxy: {e:#}");
                ExitCode::FAILURE
            }
        },
        (None, None) => {
            eprintln!(
                "rwproxy: give --config FILE to run, or `rwproxy check-config FILE` (see --help)"
            );
            ExitCode::from(2)
        }
    }
}

fn check_config(file: &std::path::Path) -> ExitCode {
    match rwproxy_config::load_file(file, &rwproxy_config::ProcessEnv) {
        Ok(config) => {
            println!(
                "{}: OK ({} backends, {} users, {} rules; hash {})",
                file.display(),
                config.backends.len(),
                config.users.len(),
                config.routing.rules.len(),
                &config.source_hash[..12.min(config.source_hash.len())]
            );
            ExitCode::SUCCESS
        }
        Err(rwproxy_config::LoadError::Invalid(errors)) => {
            eprintln!("{}: {} problem(s):", file.display(), errors.problems.len());
            for p in &errors.problems {
                eprintln!("  {p}");
            }
            ExitCode::from(1)
        }
        Err(e) => {
            eprintln!("{}: {e}", file.display());
            ExitCode::from(1)
        }
    }
}
