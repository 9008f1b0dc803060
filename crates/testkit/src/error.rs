//! The one error type of the test kit.

use std::path::PathBuf;

/// Everything that can go wrong while setting up or driving a test fixture.
#[derive(Debug, thiserror::Error)]
pub enum TestkitError {
    #[error("could not run {command}: {source}")]
    Spawn {
        command: String,
        #[source]
        source: std::io::Error,
    },
    #[error("{command} exited with {status}\n--- stdout ---\n{stdout}\n--- stderr ---\n{stderr}")]
    CommandFailed {
        command: String,
        status: String,
        stdout: String,
        stderr: String,
    },
    #[error("`cluster.sh env` printed no {0}")]
    MissingClusterVar(String),
    #[error("`cluster.sh env` printed an invalid {key}: {value:?}")]
    InvalidClusterVar { key: String, value: String },
    #[error("the cluster has no node {0}")]
    NoSuchNode(usize),
    #[error("{action} {path}: {source}")]
    File {
        action: &'static str,
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error("network I/O: {0}")]
    Io(#[from] std::io::Error),
    #[error("SQL client: {0}")]
    Sql(#[from] mysql_async::Error),
    #[error("sending {signal} to pid {pid}: {reason}")]
    Signal {
        signal: &'static str,
        pid: i32,
        reason: String,
    },
    #[error("rwproxy did not start: {reason}\n--- last lines of {log} ---\n{log_tail}")]
    ProxyStart {
        reason: String,
        log: PathBuf,
        log_tail: String,
    },
    #[error("timed out after {seconds:.1}s waiting for {what}")]
    Timeout { what: String, seconds: f64 },
    #[error("protocol: {0}")]
    Protocol(String),
}

/// Result alias used across the kit.
pub type Result<T, E = TestkitError> = std::result::Result<T, E>;
