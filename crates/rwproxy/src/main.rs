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
    /// Asks a running rwproxy for a planned switchover (its admin endpoint's POST /switchover).
    /// The admin token is read from the environment variable RWPROXY_ADMIN_TOKEN.
    Switchover {
        /// The admin endpoint (`admin.listen` of the running rwproxy).
        #[arg(long, default_value = "127.0.0.1:9033")]
        admin: String,
        /// The backend to promote; by default the freshest readable replica.
        #[arg(long)]
        to: Option<String>,
    },
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    match (cli.command, cli.config) {
        (Some(Command::CheckConfig { file }), _) => check_config(&file),
        (Some(Command::Switchover { admin, to }), _) => switchover(&admin, to.as_deref()),
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

/// `rwproxy switchover`: one HTTP request to the admin endpoint; prints its answer.
fn switchover(admin: &str, to: Option<&str>) -> ExitCode {
    use std::io::{Read, Write};
    let token = std::env::var("RWPROXY_ADMIN_TOKEN").unwrap_or_default();
    if token.is_empty() {
        eprintln!("rwproxy: set RWPROXY_ADMIN_TOKEN to the admin token of the running rwproxy");
        return ExitCode::from(2);
    }
    if to.is_some_and(|t| {
        !t.bytes()
            .all(|b| b.is_ascii_alphanumeric() || b"-_.".contains(&b))
    }) {
        eprintln!("rwproxy: --to must be a backend name");
        return ExitCode::from(2);
    }
    let path = match to {
        Some(t) => format!("/switchover?to={t}"),
        None => "/switchover".to_string(),
    };
    let exchange = || -> std::io::Result<String> {
        let mut stream = std::net::TcpStream::connect(admin)?;
        stream.set_read_timeout(Some(std::time::Duration::from_secs(120)))?;
        write!(
            stream,
            "POST {path} HTTP/1.1\r\nHost: {admin}\r\nAuthorization: Bearer {token}\r\nContent-Length: 0\r\nConnection: close\r\n\r\n"
        )?;
        let mut answer = String::new();
        stream.read_to_string(&mut answer)?;
        Ok(answer)
    };
    let answer = match exchange() {
        Ok(a) => a,
        Err(e) => {
            eprintln!("rwproxy: cannot reach the admin endpoint at {admin}: {e}");
            return ExitCode::FAILURE;
        }
    };
    let status = answer
        .split(' ')
        .nth(1)
        .and_then(|s| s.parse::<u16>().ok())
        .unwrap_or(0);
    let body = answer.split_once("\r\n\r\n").map_or("", |(_, b)| b);
    if status == 200 {
        println!("{}", body.trim_end());
        ExitCode::SUCCESS
    } else {
        eprintln!(
            "rwproxy: switchover refused ({status}): {}",
            body.trim_end()
        );
        ExitCode::FAILURE
    }
}
