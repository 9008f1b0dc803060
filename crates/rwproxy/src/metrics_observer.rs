//! Turns what sessions report into Prometheus metrics.

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::Duration;

use rwproxy_admin as l;
use rwproxy_admin::{DigestSample, DigestStore, DigestText, Metrics};
use rwproxy_session::observer::StatementDone;
use rwproxy_session::{CausalOutcome, DestRole, SessionObserver};

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

fn reason(r: &str) -> l::Reason {
    match r {
        "write" => l::Reason::Write,
        "read" => l::Reason::Read,
        "in_transaction" => l::Reason::InTransaction,
        "read_only_transaction" => l::Reason::ReadOnlyTransaction,
        "pinned" | "previous_statement" => l::Reason::Pinned,
        "hint" => l::Reason::Hint,
        "rule" => l::Reason::Rule,
        "lag_excluded" => l::Reason::LagExcluded,
        "causal_wait" => l::Reason::CausalWait,
        "causal_fallback" => l::Reason::CausalFallback,
        "no_replica_fallback" => l::Reason::NoReplicaFallback,
        "no_primary_degraded" => l::Reason::NoPrimaryDegraded,
        _ => l::Reason::SessionCommand,
    }
}

impl SessionObserver for MetricsObserver {
    fn client_connected(&self) {
        self.metrics.client_connected();
    }
    fn client_disconnected(&self) {
        self.metrics.client_disconnected();
    }
    fn client_rejected(&self, why: &'static str) {
        let r = match why {
            "too_many_connections" => l::RejectReason::MaxConnections,
            "handshake_timeout" => l::RejectReason::HandshakeTimeout,
            "host_blocked" => l::RejectReason::HostBlocked,
            "protocol_error" => l::RejectReason::ProtocolError,
            _ => l::RejectReason::AuthFailed,
        };
        self.metrics.client_rejected(r);
    }
    fn routed(&self, r: DestRole, why: &'static str) {
        self.metrics.routing_decision(role(r), reason(why));
    }
    fn query_finished(&self, r: DestRole, elapsed: Duration) {
        self.metrics.observe_query(role(r), elapsed);
    }
    fn replay_log_overflow(&self) {
        self.metrics.replay_log_overflow();
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
    fn backend_failure(&self, backend: &str, kind: &'static str) {
        let kind = match kind {
            "connect" => l::FailureKind::Connect,
            "timeout" => l::FailureKind::Timeout,
            _ => l::FailureKind::Query,
        };
        self.metrics.backend_failure(backend, kind);
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
