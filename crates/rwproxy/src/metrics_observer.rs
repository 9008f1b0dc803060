//! Turns what sessions report into Prometheus metrics.

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::Duration;

use rwproxy_admin as l;
use rwproxy_admin::{DigestSample, DigestStore, DigestText, Metrics};
use rwproxy_session::observer::StatementDone;

use rwproxy_session::{
    BackendFailureKind, CausalOutcome, DestRole, Reason, Rejection, ReplayOutcome, SessionObserver,
};

pub struct MetricsObserver {
    pub metrics: Metrics,
    /// Per-query statistics, and whether they are on (`stats.digests`, reloadable).
    pub digests: Arc<DigestStore>,
    pub digests_on: AtomicBool,
}

impl MetricsObserver {
    pub fn new(metrics: Metrics, stats: &rwproxy_config::StatsConfig) -> Self {
        MetricsObserver {
            metrics,
            digests: Arc::new(DigestStore::new(stats.max_digests)),
            digests_on: AtomicBool::new(stats.digests),
        }
    }

    /// Applies a reloaded `stats` section.
    pub fn apply_stats(&self, stats: &rwproxy_config::StatsConfig) {
        self.digests_on.store(stats.digests, Ordering::Relaxed);
        self.digests.set_max_digests(stats.max_digests);
    }
}

fn role(r: DestRole) -> l::DestRole {
    match r {
        DestRole::Primary => l::DestRole::Primary,
        DestRole::Replica => l::DestRole::Replica,
    }
}

/// Every routing reason has its own label (a new reason without one does not compile).
fn reason(r: Reason) -> l::Reason {
    match r {
        Reason::Write => l::Reason::Write,
        Reason::Read => l::Reason::Read,
        Reason::InTransaction => l::Reason::InTransaction,
        Reason::ReadOnlyTransaction => l::Reason::ReadOnlyTransaction,
        Reason::Pinned => l::Reason::Pinned,
        Reason::PreviousStatement => l::Reason::PreviousStatement,
        Reason::Hint => l::Reason::Hint,
        Reason::Rule => l::Reason::Rule,
        Reason::SessionCommand => l::Reason::SessionCommand,
        Reason::CausalWait => l::Reason::CausalWait,
        Reason::CausalFallback => l::Reason::CausalFallback,
        Reason::NoReplicaFallback => l::Reason::NoReplicaFallback,
        Reason::NoPrimaryDegraded => l::Reason::NoPrimaryDegraded,
    }
}

fn rejection(r: Rejection) -> l::RejectReason {
    match r {
        Rejection::TooManyConnections => l::RejectReason::MaxConnections,
        Rejection::AuthFailed => l::RejectReason::AuthFailed,
        Rejection::TlsRequired => l::RejectReason::TlsRequired,
        Rejection::TlsError => l::RejectReason::TlsError,
        Rejection::HandshakeTimeout => l::RejectReason::HandshakeTimeout,
        Rejection::ProtocolError => l::RejectReason::ProtocolError,
        Rejection::ClientClosed => l::RejectReason::ClientClosed,
        Rejection::HostBlocked => l::RejectReason::HostBlocked,
        Rejection::ShuttingDown => l::RejectReason::ShuttingDown,
    }
}

impl SessionObserver for MetricsObserver {
    fn client_connected(&self) {
        self.metrics.client_connected();
    }
    fn client_disconnected(&self) {
        self.metrics.client_disconnected();
    }
    fn client_rejected(&self, why: Rejection) {
        self.metrics.client_rejected(rejection(why));
    }
    fn routed(&self, r: DestRole, why: Reason) {
        self.metrics.routing_decision(role(r), reason(why));
    }
    fn query_finished(&self, r: DestRole, elapsed: Duration) {
        self.metrics.observe_query(role(r), elapsed);
    }
    fn replay_log_overflow(&self) {
        self.metrics.replay_log_overflow();
    }
    fn transaction_replay(&self, outcome: ReplayOutcome) {
        self.metrics.transaction_replay(match outcome {
            ReplayOutcome::Attempted => l::ReplayOutcome::Attempted,
            ReplayOutcome::Succeeded => l::ReplayOutcome::Succeeded,
            ReplayOutcome::Mismatch => l::ReplayOutcome::Mismatch,
            ReplayOutcome::CommitInFlight => l::ReplayOutcome::CommitInFlight,
            ReplayOutcome::TooLarge => l::ReplayOutcome::TooLarge,
            ReplayOutcome::Unsupported => l::ReplayOutcome::Unsupported,
            ReplayOutcome::NoPrimary => l::ReplayOutcome::NoPrimary,
            ReplayOutcome::Error => l::ReplayOutcome::Error,
        });
    }
    fn wants_statements(&self) -> bool {
        self.digests_on.load(Ordering::Relaxed)
    }
    fn statement_done(&self, done: &StatementDone<'_>) {
        // The text is made only for a statement not counted yet.
        let digest = done
            .digest
            .unwrap_or_else(|| rwproxy_sql::digest_id(done.sql, done.options));
        let text = || rwproxy_sql::digest(done.sql, done.options).text;
        self.digests.record(&DigestSample {
            id: digest.id,
            text: DigestText::Lazy(&text),
            hint: digest.hint.map(|h| match h {
                rwproxy_sql::RouteHint::Primary => "primary",
                rwproxy_sql::RouteHint::Replica => "replica",
            }),
            user: done.user,
            schema: done.schema,
            role: role(done.role),
            elapsed: done.elapsed,
            rows: done.rows,
            error: done.error,
        });
    }
    fn source_blocked(&self) {
        self.metrics.source_blocked();
    }
    fn packet_budget_exhausted(&self) {
        self.metrics.packet_budget_exhausted();
    }
    fn error_sent(&self, code: u16) {
        self.metrics.error_sent(code);
    }
    fn backend_failure(&self, backend: &str, kind: BackendFailureKind) {
        let kind = match kind {
            BackendFailureKind::Connect => l::FailureKind::Connect,
            BackendFailureKind::Timeout => l::FailureKind::Timeout,
            BackendFailureKind::Query => l::FailureKind::Query,
        };
        self.metrics.backend_failure(backend, kind);
    }
    fn pool_reused(&self, backend: &str) {
        self.metrics.pool_event(backend, l::PoolEvent::Reused);
    }
    fn pool_reset(&self, backend: &str) {
        self.metrics.pool_event(backend, l::PoolEvent::Reset);
    }
    fn pool_full(&self, backend: &str) {
        self.metrics.pool_event(backend, l::PoolEvent::Full);
    }
    fn pool_restored(&self, backend: &str) {
        self.metrics.pool_event(backend, l::PoolEvent::Restored);
    }
    fn pool_reprepared(&self, backend: &str) {
        self.metrics.pool_event(backend, l::PoolEvent::Reprepared);
    }
    fn pool_changed_user(&self, backend: &str) {
        self.metrics.pool_event(backend, l::PoolEvent::ChangedUser);
    }
    fn pool_wait(&self, _backend: &str, waited: std::time::Duration) {
        self.metrics.pool_wait(waited);
    }
    fn pool_hold_changed(
        &self,
        from: Option<rwproxy_session::sharing::HoldReason>,
        to: Option<rwproxy_session::sharing::HoldReason>,
    ) {
        self.metrics
            .pool_hold_changed(from.map(hold_label), to.map(hold_label));
    }
    fn causal_read(&self, outcome: CausalOutcome) {
        self.metrics.causal_read(match outcome {
            CausalOutcome::ReplicaFresh => l::CausalOutcome::ReplicaFresh,
            CausalOutcome::ReplicaAfterWait => l::CausalOutcome::ReplicaAfterWait,
            CausalOutcome::PrimaryFallback => l::CausalOutcome::PrimaryFallback,
            CausalOutcome::Timeout => l::CausalOutcome::Timeout,
        });
    }
}

/// The metrics label of a session's reason to keep its backend connections.
fn hold_label(r: rwproxy_session::sharing::HoldReason) -> l::HoldReason {
    use rwproxy_session::sharing::HoldReason as H;
    match r {
        H::Transaction => l::HoldReason::Transaction,
        H::TemporaryTables => l::HoldReason::TemporaryTables,
        H::Locks => l::HoldReason::Locks,
        H::UserVariables => l::HoldReason::UserVariables,
        H::SqlPrepared => l::HoldReason::SqlPrepared,
        H::ProcedureCall => l::HoldReason::ProcedureCall,
        H::Xa => l::HoldReason::Xa,
        H::SqlLogBin => l::HoldReason::SqlLogBin,
        H::LastInsertId => l::HoldReason::LastInsertId,
        H::Cursor => l::HoldReason::Cursor,
        H::UnloggedSettings => l::HoldReason::UnloggedSettings,
        H::UnknownStatement => l::HoldReason::UnknownStatement,
        H::Diagnostics => l::HoldReason::Diagnostics,
    }
}
