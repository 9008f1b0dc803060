//! Hooks through which sessions report what they do (the binary turns them into metrics).
//! Every method has an empty default so tests can pass a no-op observer.

use std::time::Duration;

pub use rwproxy_router::{CausalOutcome, DestRole};

/// Why a client connection was refused before it became usable.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Rejection {
    /// `max_client_connections` reached (1040).
    TooManyConnections,
    /// The login was refused: wrong user or password, no access to the database, …
    AuthFailed,
    /// `tls.require_tls` and the client did not ask for TLS (3159).
    TlsRequired,
    /// The TLS handshake failed.
    TlsError,
    /// The client did not finish the handshake within `timeouts.handshake`.
    HandshakeTimeout,
    /// A malformed handshake, or a bad or missing PROXY protocol header from a trusted address.
    ProtocolError,
    /// The client closed the connection before finishing the handshake.
    ClientClosed,
    /// The address is blocked by `login_throttle` (1129).
    HostBlocked,
    /// The login finished after the shutdown stopped taking new sessions (1053).
    ShuttingDown,
}

/// How a backend failed a session.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum BackendFailureKind {
    /// Opening or logging in to a connection failed.
    Connect,
    /// A connect, login or statement took too long.
    Timeout,
    /// A connection failed while a statement ran on it.
    Query,
}

/// What became of a transaction whose server was lost while transaction replay recorded it:
/// `Attempted` once per loss, then exactly one of the others.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum ReplayOutcome {
    Attempted,
    Succeeded,
    /// A replayed statement gave a different result on the new primary.
    Mismatch,
    /// A statement that may commit was in flight: its outcome is unknown.
    CommitInFlight,
    /// The transaction outgrew `routing.transaction_replay_max_size`.
    TooLarge,
    /// The transaction ran something that is not recorded (session commands, long data or
    /// cursors of prepared statements, `LOAD DATA LOCAL INFILE`, XA) or held session state
    /// that cannot move.
    Unsupported,
    /// No primary appeared within `monitor.write_wait_timeout`.
    NoPrimary,
    /// Replaying on the new primary failed.
    Error,
}

impl From<crate::replay::Failed> for ReplayOutcome {
    fn from(f: crate::replay::Failed) -> Self {
        use crate::replay::Failed;
        match f {
            Failed::Mismatch { .. } => ReplayOutcome::Mismatch,
            Failed::CommitInFlight => ReplayOutcome::CommitInFlight,
            Failed::TooLarge => ReplayOutcome::TooLarge,
            Failed::Unsupported(_) => ReplayOutcome::Unsupported,
            Failed::NoPrimary => ReplayOutcome::NoPrimary,
            Failed::Error => ReplayOutcome::Error,
        }
    }
}

pub trait SessionObserver: Send + Sync {
    fn client_connected(&self) {}
    fn client_disconnected(&self) {}
    fn client_rejected(&self, _reason: Rejection) {}
    /// Why the statement went where it went: the router's decision or its placement.
    fn routed(&self, _role: DestRole, _reason: rwproxy_router::Reason) {}
    fn query_finished(&self, _role: DestRole, _elapsed: Duration) {}
    fn error_sent(&self, _code: u16) {}
    fn backend_connection_opened(&self, _backend: &str) {}
    fn backend_connection_closed(&self, _backend: &str) {}
    fn backend_failure(&self, _backend: &str, _kind: BackendFailureKind) {}
    /// A session took an idle pooled connection to `backend` instead of opening one.
    fn pool_reused(&self, _backend: &str) {}
    /// A finished session's connection to `backend` was reset and kept for reuse.
    fn pool_reset(&self, _backend: &str) {}
    /// A session found `backend` at `pool.max_per_backend` for all of `pool.wait_timeout`.
    fn pool_full(&self, _backend: &str) {}
    /// A borrowed connection was reset and the session's state applied on it.
    fn pool_restored(&self, _backend: &str) {}
    /// How long taking a connection from the pool took (waiting at the cap included).
    fn pool_wait(&self, _backend: &str, _waited: std::time::Duration) {}
    /// A session's reason to keep its backend connections changed.
    fn pool_hold_changed(
        &self,
        _from: Option<crate::sharing::HoldReason>,
        _to: Option<crate::sharing::HoldReason>,
    ) {
    }
    /// A statement was prepared again on a connection it was not prepared on.
    fn pool_reprepared(&self, _backend: &str) {}
    /// An idle connection of another account was logged in as the session's account
    /// (`COM_CHANGE_USER`) instead of being closed for a new one.
    fn pool_changed_user(&self, _backend: &str) {}
    fn causal_read(&self, _outcome: CausalOutcome) {}
    /// The session's replay log reached its limit (count or bytes): it stays on the primary.
    fn replay_log_overflow(&self) {}
    /// Transaction replay after the loss of a transaction's server (`routing.transaction_replay`).
    fn transaction_replay(&self, _outcome: ReplayOutcome) {}
    /// A statement finished (for per-query statistics): only called when
    /// [`SessionObserver::wants_statements`] says so.
    fn statement_done(&self, _done: &StatementDone<'_>) {}
    /// Whether [`SessionObserver::statement_done`] should be called (`stats.digests`).
    fn wants_statements(&self) -> bool {
        false
    }
    /// A client address was blocked by `login_throttle`.
    fn source_blocked(&self) {}
    /// A client packet was refused because the shared large-packet budget stayed spent.
    fn packet_budget_exhausted(&self) {}
}

/// An observer that records nothing.
pub struct NoopObserver;
impl SessionObserver for NoopObserver {}

/// One finished statement, as the per-query statistics see it.
#[derive(Debug, Clone, Copy)]
pub struct StatementDone<'a> {
    /// The statement's text (for a prepared statement, the text it was prepared from).
    pub sql: &'a [u8],
    /// Its digest when the session knows it already (a prepared statement's).
    pub digest: Option<rwproxy_sql::DigestId>,
    pub user: &'a str,
    pub schema: Option<&'a str>,
    pub role: DestRole,
    pub elapsed: Duration,
    pub rows: u64,
    /// The response ended with an error.
    pub error: bool,
    /// The session's `sql_mode` quoting, to tokenize the text as the server does.
    pub options: rwproxy_sql::ClassifyOptions,
}
