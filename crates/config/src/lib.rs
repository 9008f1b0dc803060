//! rwproxy's configuration: YAML in, a typed and validated [`Config`] out.
//!
//! [`parse`] reads YAML text, substitutes `${VAR}` / `${VAR:-default}` from
//! an [`EnvSource`] in string values, applies defaults and checks
//! everything, reporting *every* problem with its YAML path (and line and
//! column) in a [`ConfigErrors`]. [`load_file`] does the same for a file.
//! The keys are documented in `docs/configuration.md`.
//!
//! ```
//! use std::collections::HashMap;
//!
//! let yaml = "
//! users: [{ name: app, password: '${APP_PW}' }]
//! backends: [{ name: db1, address: '127.0.0.1:3316', primary: true }]
//! ";
//! let env = HashMap::from([("APP_PW".to_string(), "secret".to_string())]);
//! let config = rwproxy_config::parse(yaml, &env).unwrap();
//! assert_eq!(config.users[0].name, "app");
//! assert_eq!(config.backend("db1").unwrap().port, 3316);
//! ```

mod build;
mod env;
mod env_substitution;
mod errors;
mod model;
mod paths;
mod reader;
mod reload;
mod secret;
mod suggest;
mod units;
mod yaml_tree;

use std::io::Read;
use std::path::Path;

use sha2::{Digest, Sha256};

pub use env::{EnvSource, ProcessEnv};
pub use errors::{ConfigErrors, LoadError, Problem};
pub use model::{
    AdminConfig, AuthPlugin, BackendConfig, BackendTlsConfig, Config, Consistency, HeartbeatConfig,
    LogConfig, LogFormat, LoginThrottleConfig, MonitorConfig, MonitorTopology, PoolConfig,
    ProxyProtocolConfig, ReplicaAffinity, ReplicaBalance, RouteTarget, RoutingConfig, Rule,
    ShutdownConfig, StatsConfig, SwitchoverConfig, TimeoutsConfig, TlsConfig, UserConfig,
    UserSecret,
};
pub use reload::diff_requires_restart;
pub use secret::{Secret, REDACTED};
pub use units::{format_duration, format_size, parse_duration, parse_size, MAX_DURATION};

/// Largest configuration file [`load_file`] reads.
pub const MAX_FILE_BYTES: u64 = 4 << 20;

/// Parses and validates a configuration. `env` supplies `${VAR}` values.
pub fn parse(yaml: &str, env: &dyn EnvSource) -> Result<Config, ConfigErrors> {
    let source_hash = sha256_hex(yaml.as_bytes());
    let mut tree = yaml_tree::parse_tree(yaml).map_err(|problem| ConfigErrors {
        problems: vec![problem],
    })?;
    let mut problems = reader::Problems::default();
    let mut substitution_problems = Vec::new();
    env_substitution::substitute_tree(&mut tree, "", env, &mut substitution_problems);
    for problem in substitution_problems {
        problems.push(problem);
    }
    match build::build_config(&tree, source_hash, &mut problems) {
        Some(config) if problems.is_empty() => Ok(config),
        _ => Err(ConfigErrors {
            problems: problems.into_vec(),
        }),
    }
}

/// Reads `path` (at most [`MAX_FILE_BYTES`]) and [`parse`]s it.
pub fn load_file(path: &Path, env: &dyn EnvSource) -> Result<Config, LoadError> {
    let io_error = |source| LoadError::Io {
        path: path.to_path_buf(),
        source,
    };
    let file = std::fs::File::open(path).map_err(io_error)?;
    let mut bytes = Vec::new();
    file.take(MAX_FILE_BYTES + 1)
        .read_to_end(&mut bytes)
        .map_err(io_error)?;
    if bytes.len() as u64 > MAX_FILE_BYTES {
        return Err(io_error(std::io::Error::new(
            std::io::ErrorKind::InvalidData,
            format!("file is larger than {MAX_FILE_BYTES} bytes"),
        )));
    }
    let text = String::from_utf8(bytes).map_err(|_| {
        io_error(std::io::Error::new(
            std::io::ErrorKind::InvalidData,
            "file is not valid UTF-8",
        ))
    })?;
    Ok(parse(&text, env)?)
}

fn sha256_hex(bytes: &[u8]) -> String {
    Sha256::digest(bytes)
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect()
}
