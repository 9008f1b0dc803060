//! What placement produces: the backend a statement runs on and why, or why it cannot run.

use rwproxy_protocol::reply::codes;

use crate::Reason;

/// Which kind of server a statement went to.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum DestRole {
    Primary,
    Replica,
}

impl DestRole {
    pub fn as_str(self) -> &'static str {
        match self {
            DestRole::Primary => "primary",
            DestRole::Replica => "replica",
        }
    }
}

/// The outcome of a read under `session`/`global` consistency.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum CausalOutcome {
    /// A replica the monitor had already seen at the position served it.
    ReplicaFresh,
    /// A replica confirmed the position within `causal_read_timeout` and served it.
    ReplicaAfterWait,
    /// The primary served it.
    PrimaryFallback,
    /// The replica's confirmation timed out (the primary then served it).
    Timeout,
}

impl CausalOutcome {
    pub fn as_str(self) -> &'static str {
        match self {
            CausalOutcome::ReplicaFresh => "replica_fresh",
            CausalOutcome::ReplicaAfterWait => "replica_after_wait",
            CausalOutcome::PrimaryFallback => "primary_fallback",
            CausalOutcome::Timeout => "timeout",
        }
    }
}

/// A statement placed on one backend.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Chosen<'a> {
    pub backend: &'a str,
    pub role: DestRole,
    pub reason: Reason,
    /// A read that may be retried elsewhere if this backend fails before answering.
    pub retryable: bool,
    /// What a read under causal consistency went through (counted in metrics).
    pub causal: &'static [CausalOutcome],
}

/// Why a statement cannot be placed; the client gets the error.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Refusal {
    /// Several backends are writable at once (split brain): writes wait for one primary.
    WriteConflict { writable: Vec<String> },
    /// No primary appeared within `write_wait_timeout`; `problems` names the backends that
    /// are not up and why.
    NoPrimary {
        waited_ms: u128,
        problems: Vec<String>,
    },
    /// No backend answers at all.
    Unreachable { problems: Vec<String> },
    /// A rule or a session names a backend that is not configured (any more).
    NotConfigured { backend: String },
    /// No replica for a read, and `read_fallback_to_primary` is off.
    NoReplica,
}

impl Refusal {
    /// The MySQL error a client gets: code, SQLSTATE, message.
    pub fn client_error(&self) -> ((u16, &'static [u8; 5]), String) {
        match self {
            Refusal::WriteConflict { writable } => (
                codes::OPTION_PREVENTS_STATEMENT,
                format!(
                    "rwproxy: several backends are writable at once ({}); writes are refused until exactly one primary remains",
                    writable.join(", ")
                ),
            ),
            Refusal::NoPrimary {
                waited_ms,
                problems,
            } => (
                codes::OPTION_PREVENTS_STATEMENT,
                format!(
                    "rwproxy: no primary available after waiting {waited_ms} ms; writes are refused{}{}",
                    if problems.is_empty() { "" } else { ": " },
                    problems.join("; ")
                ),
            ),
            Refusal::Unreachable { problems } => (
                codes::CANNOT_CONNECT,
                format!("rwproxy: cannot reach any backend: {}", problems.join("; ")),
            ),
            Refusal::NotConfigured { backend } => (
                codes::CANNOT_CONNECT,
                format!("rwproxy: backend '{backend}' is not configured"),
            ),
            Refusal::NoReplica => (
                codes::CANNOT_CONNECT,
                "rwproxy: no replica is available for reads and read_fallback_to_primary is off"
                    .into(),
            ),
        }
    }
}
