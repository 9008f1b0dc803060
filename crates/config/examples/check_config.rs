//! Validates a configuration file and prints its problems or its redacted
//! JSON: `cargo run -p rwproxy-config --example check_config -- FILE`.

use std::path::PathBuf;
use std::process::ExitCode;

fn main() -> ExitCode {
    let Some(path) = std::env::args_os().nth(1).map(PathBuf::from) else {
        eprintln!("usage: check_config FILE");
        return ExitCode::from(2);
    };
    match rwproxy_config::load_file(&path, &rwproxy_config::ProcessEnv) {
        Ok(config) => {
            println!("{:#}", config.redacted_json());
            ExitCode::SUCCESS
        }
        Err(err) => {
            eprintln!("{err}");
            ExitCode::FAILURE
        }
    }
}
