use rwproxy_protocol::reply::codes;
use rwproxy_transport::TransportError;
use thiserror::Error;

/// What went wrong talking to a backend, with the backend's name so every message says who failed.
#[derive(Debug, Error)]
pub enum BackendError {
    #[error("cannot connect to backend '{backend}' ({address}): {reason}")]
    Connect {
        backend: String,
        address: String,
        reason: String,
    },
    #[error("backend '{backend}' did not answer within {millis} ms ({phase})")]
    Timeout {
        backend: String,
        phase: &'static str,
        millis: u64,
    },
    #[error("backend '{backend}' refused the login: {message}")]
    Auth {
        backend: String,
        code: u16,
        state: [u8; 5],
        message: String,
    },
    #[error("backend '{backend}' answered with error {code}: {message}")]
    Server {
        backend: String,
        code: u16,
        state: [u8; 5],
        message: String,
    },
    #[error("lost connection to backend '{backend}': {source}")]
    Lost {
        backend: String,
        #[source]
        source: TransportError,
    },
    #[error("the connection to backend '{backend}' was closed while idle (server restart, wait_timeout or KILL); {lost}")]
    Stale { backend: String, lost: &'static str },
    #[error("backend '{backend}' was declared down by the monitor while the statement ran on it")]
    MarkedDown { backend: String },
    #[error("backend '{backend}' sent something unexpected: {what}")]
    Protocol { backend: String, what: String },
    #[error("backend '{backend}': {what}")]
    Unsupported { backend: String, what: String },
    /// rwproxy's own cap on connections to the backend (`pool.max_per_backend`) held for the
    /// whole wait: the server was not asked.
    #[error("too many connections to backend '{backend}': all {cap} (pool.max_per_backend) in use, none free after {waited_ms} ms (pool.wait_timeout)")]
    PoolFull {
        backend: String,
        cap: u32,
        waited_ms: u64,
    },
}

/// Whether a failure says something about the backend's health (for the circuit breaker).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Failure {
    /// The connection to the server failed (refused, reset, closed, timed out): the server may
    /// be gone. Reported to the monitor, which confirms with its own check before it changes
    /// the backend's state.
    Unhealthy,
    /// This one connection is unusable (the server sent something rwproxy cannot follow): it
    /// is closed, and nothing is concluded about the server.
    Connection,
    /// The server is fine; the request was refused (bad credentials, unknown database, ...).
    Refused,
}

impl BackendError {
    pub fn backend(&self) -> &str {
        match self {
            BackendError::Connect { backend, .. }
            | BackendError::Timeout { backend, .. }
            | BackendError::Auth { backend, .. }
            | BackendError::Server { backend, .. }
            | BackendError::Lost { backend, .. }
            | BackendError::MarkedDown { backend }
            | BackendError::Stale { backend, .. }
            | BackendError::Protocol { backend, .. }
            | BackendError::Unsupported { backend, .. }
            | BackendError::PoolFull { backend, .. } => backend,
        }
    }

    /// The server could not be reached (connecting, answering in time or keeping the connection
    /// failed), as opposed to refusing this session or answering something unexpected.
    pub fn is_unreachable(&self) -> bool {
        matches!(
            self,
            BackendError::Connect { .. }
                | BackendError::Timeout { .. }
                | BackendError::Lost { .. }
                | BackendError::MarkedDown { .. }
        )
    }

    pub fn failure(&self) -> Failure {
        match self {
            BackendError::Connect { .. }
            | BackendError::Timeout { .. }
            | BackendError::Lost { .. }
            | BackendError::MarkedDown { .. } => Failure::Unhealthy,
            BackendError::Protocol { .. } | BackendError::Stale { .. } => Failure::Connection,
            BackendError::Server { code, .. } if *code == 1040 || *code == 1129 => {
                Failure::Unhealthy
            }
            _ => Failure::Refused,
        }
    }

    /// The error packet a client gets for this failure: `(code, sqlstate, message)`.
    pub fn client_error(&self) -> (u16, [u8; 5], String) {
        match self {
            BackendError::Auth {
                code,
                state,
                message,
                ..
            }
            | BackendError::Server {
                code,
                state,
                message,
                ..
            } => (*code, *state, message.clone()),
            BackendError::Connect { .. } | BackendError::Timeout { .. } => (
                codes::CANNOT_CONNECT.0,
                *codes::CANNOT_CONNECT.1,
                self.to_string(),
            ),
            BackendError::Lost { .. }
            | BackendError::MarkedDown { .. }
            | BackendError::Stale { .. } => (
                codes::SERVER_LOST.0,
                *codes::SERVER_LOST.1,
                self.to_string(),
            ),
            BackendError::Protocol { .. } => (
                codes::MALFORMED_PACKET.0,
                *codes::MALFORMED_PACKET.1,
                format!("{self}; rwproxy closed its connection to the backend"),
            ),
            BackendError::Unsupported { .. } => (
                codes::NOT_SUPPORTED.0,
                *codes::NOT_SUPPORTED.1,
                self.to_string(),
            ),
            BackendError::PoolFull { .. } => (
                codes::TOO_MANY_CONNECTIONS.0,
                *codes::TOO_MANY_CONNECTIONS.1,
                self.to_string(),
            ),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_unreadable_reply_blames_the_connection_not_the_server() {
        let err = BackendError::Protocol {
            backend: "db1".into(),
            what: "packet truncated".into(),
        };
        assert_eq!(err.failure(), Failure::Connection);
        let (code, _, message) = err.client_error();
        assert_eq!(code, 1835);
        assert!(message.contains("db1"), "{message}");
        let lost = BackendError::Lost {
            backend: "db1".into(),
            source: TransportError::Closed,
        };
        assert_eq!(lost.failure(), Failure::Unhealthy);
        assert_eq!(lost.client_error().0, 1927);
        let full = BackendError::PoolFull {
            backend: "db1".into(),
            cap: 32,
            waited_ms: 2000,
        };
        assert_eq!(
            full.failure(),
            Failure::Refused,
            "rwproxy's own cap, not the server"
        );
        let (code, state, message) = full.client_error();
        assert_eq!((code, &state), (1040, b"08004"));
        assert!(
            message.contains("db1") && message.contains("32"),
            "{message}"
        );
    }
}
