//! The proxy's Prometheus metrics: one [`Metrics`] handle, cloned into every task that records.
//!
//! Everything recorded per statement or per connection (routing decisions, query durations,
//! client connections, errors, causal reads) goes to counters created up front and addressed
//! by enum index, so recording is a couple of atomic operations: no lock, no allocation, no
//! hash lookup. Per-backend series are refreshed from snapshots ([`Metrics::set_backends`]).

use std::fmt;
use std::sync::atomic::AtomicU64;
use std::sync::{Arc, Mutex, PoisonError};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use prometheus_client::encoding::{prometheus_text, EncodeLabelSet};
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge::Gauge;
use prometheus_client::registry::{Registry, Unit};

use crate::backend_metrics::{BackendMetrics, BackendMetricsView};
use crate::error::AdminError;
use crate::error_codes::{slot_for_code, ErrorCodeLabel, ERROR_SLOTS};
use crate::histogram::AtomicHistogram;
use crate::labels::{
    CausalOutcome, DestRole, FailureKind, HoldReason, Reason, RejectReason, ReloadResult,
    ReplayOutcome, WriterRule,
};

/// Upper bounds (seconds) of the pool borrow-wait buckets: 10 µs to 5 s.
const POOL_WAIT_BUCKETS: [f64; 14] = [
    0.00001, 0.000025, 0.00005, 0.0001, 0.00025, 0.0005, 0.001, 0.005, 0.01, 0.05, 0.1, 0.5, 1.0,
    5.0,
];

/// Prefix of every metric name.
pub const METRIC_PREFIX: &str = "rwproxy";

/// `Content-Type` of [`Metrics::encode`]'s output (Prometheus text format 0.0.4).
pub const METRICS_CONTENT_TYPE: &str = prometheus_text::CONTENT_TYPE;

const ROLES: usize = DestRole::ALL.len();
const REASONS: usize = Reason::ALL.len();

#[derive(Debug, Clone, PartialEq, Eq, Hash, EncodeLabelSet)]
struct RoutingLabels {
    role: DestRole,
    reason: Reason,
}

#[derive(Debug, Clone, PartialEq, Eq, Hash, EncodeLabelSet)]
struct RoleLabels {
    role: DestRole,
}

#[derive(Debug, Clone, PartialEq, Eq, Hash, EncodeLabelSet)]
struct RejectLabels {
    reason: RejectReason,
}

#[derive(Debug, Clone, PartialEq, Eq, Hash, EncodeLabelSet)]
struct WriterRuleLabels {
    rule: WriterRule,
}

#[derive(Debug, Clone, PartialEq, Eq, Hash, EncodeLabelSet)]
struct ErrorLabels {
    code: ErrorCodeLabel,
}

#[derive(Debug, Clone, PartialEq, Eq, Hash, EncodeLabelSet)]
struct CausalLabels {
    outcome: CausalOutcome,
}

#[derive(Debug, Clone, PartialEq, Eq, Hash, EncodeLabelSet)]
struct HoldLabels {
    reason: HoldReason,
}

#[derive(Debug, Clone, PartialEq, Eq, Hash, EncodeLabelSet)]
struct ReplayLabels {
    outcome: ReplayOutcome,
}

#[derive(Debug, Clone, PartialEq, Eq, Hash, EncodeLabelSet)]
struct ReloadLabels {
    result: ReloadResult,
}

#[derive(Debug, Clone, PartialEq, Eq, Hash, EncodeLabelSet)]
struct ConfigLabels {
    hash: String,
}

type FloatGauge = Gauge<f64, AtomicU64>;
type HistogramFamily = Family<RoleLabels, AtomicHistogram, fn() -> AtomicHistogram>;

/// Handle to all metrics. Cloning is cheap (one `Arc`); all clones record into the same data.
#[derive(Clone)]
pub struct Metrics {
    inner: Arc<Inner>,
}

struct Inner {
    registry: Registry,
    routing: [[Counter; REASONS]; ROLES],
    query_duration: [AtomicHistogram; ROLES],
    client_connections: Gauge,
    client_connections_total: Counter,
    client_rejections: [Counter; RejectReason::ALL.len()],
    errors: [Counter; ERROR_SLOTS],
    causal_reads: [Counter; CausalOutcome::ALL.len()],
    config_reloads: [Counter; ReloadResult::ALL.len()],
    config_info: Family<ConfigLabels, Gauge>,
    /// Serialises replacing the single `config_info` series.
    config_info_lock: Mutex<()>,
    config_last_reload: FloatGauge,
    write_conflicts: Counter,
    galera_writer_changes: [Counter; WriterRule::ALL.len()],
    writable_backends: Gauge,
    replay_log_overflows: Counter,
    transaction_replays: [Counter; ReplayOutcome::ALL.len()],
    pinned_sessions: [Gauge; HoldReason::ALL.len()],
    pool_wait: AtomicHistogram,
    sources_blocked: Counter,
    packet_budget_exhausted: Counter,
    backends: BackendMetrics,
    digests: crate::digest_metrics::DigestMetrics,
}

impl fmt::Debug for Metrics {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Metrics").finish_non_exhaustive()
    }
}

impl Default for Metrics {
    fn default() -> Self {
        Self::new()
    }
}

impl Metrics {
    /// Creates and registers every metric. Label combinations from closed sets start at 0.
    pub fn new() -> Self {
        let mut registry = Registry::with_prefix(METRIC_PREFIX);

        let routing_family = Family::<RoutingLabels, Counter>::default();
        registry.register(
            "routing_decisions",
            "Statements routed, by destination role and reason",
            routing_family.clone(),
        );
        let routing = std::array::from_fn(|role| {
            std::array::from_fn(|reason| {
                routing_family.get_or_create_owned(&RoutingLabels {
                    role: DestRole::ALL[role],
                    reason: Reason::ALL[reason],
                })
            })
        });

        let duration_family: HistogramFamily =
            Family::new_with_constructor(AtomicHistogram::for_query_duration);
        registry.register_with_unit(
            "query_duration",
            "Time from forwarding a statement to the end of its result, by destination role",
            Unit::Seconds,
            duration_family.clone(),
        );
        let query_duration = std::array::from_fn(|role| {
            duration_family.get_or_create_owned(&RoleLabels {
                role: DestRole::ALL[role],
            })
        });

        let client_connections = Gauge::default();
        registry.register(
            "client_connections",
            "Client connections currently open",
            client_connections.clone(),
        );
        let client_connections_total = Counter::default();
        registry.register(
            "client_connections",
            "Client connections accepted since start",
            client_connections_total.clone(),
        );

        let rejections_family = Family::<RejectLabels, Counter>::default();
        registry.register(
            "client_rejections",
            "Client connections refused, by reason",
            rejections_family.clone(),
        );
        let client_rejections = std::array::from_fn(|i| {
            rejections_family.get_or_create_owned(&RejectLabels {
                reason: RejectReason::ALL[i],
            })
        });

        let errors_family = Family::<ErrorLabels, Counter>::default();
        registry.register(
            "errors",
            "Error packets sent to clients, by error code (uncommon codes as \"other\")",
            errors_family.clone(),
        );
        let errors = std::array::from_fn(|slot| {
            errors_family.get_or_create_owned(&ErrorLabels {
                code: ErrorCodeLabel::for_slot(slot),
            })
        });

        let causal_family = Family::<CausalLabels, Counter>::default();
        registry.register(
            "causal_reads",
            "Reads that asked for causal consistency, by outcome",
            causal_family.clone(),
        );
        let causal_reads = std::array::from_fn(|i| {
            causal_family.get_or_create_owned(&CausalLabels {
                outcome: CausalOutcome::ALL[i],
            })
        });

        let reloads_family = Family::<ReloadLabels, Counter>::default();
        registry.register(
            "config_reloads",
            "Configuration reload attempts, by result",
            reloads_family.clone(),
        );
        let config_reloads = std::array::from_fn(|i| {
            reloads_family.get_or_create_owned(&ReloadLabels {
                result: ReloadResult::ALL[i],
            })
        });

        let config_info = Family::<ConfigLabels, Gauge>::default();
        registry.register(
            "config_info",
            "Always 1; the hash label identifies the configuration in effect",
            config_info.clone(),
        );
        let config_last_reload = FloatGauge::default();
        registry.register_with_unit(
            "config_last_reload_timestamp",
            "Unix time at which the configuration in effect was loaded",
            Unit::Seconds,
            config_last_reload.clone(),
        );

        let write_conflicts = Counter::default();
        registry.register(
            "write_conflicts",
            "Times more than one backend was found writable (no primary chosen)",
            write_conflicts.clone(),
        );
        let writer_family = Family::<WriterRuleLabels, Counter>::default();
        registry.register(
            "galera_writer_changes",
            "Times the Galera writer changed to a node, by the rule of the writer choice that \
             picked it",
            writer_family.clone(),
        );
        let galera_writer_changes = std::array::from_fn(|i| {
            writer_family.get_or_create_owned(&WriterRuleLabels {
                rule: WriterRule::ALL[i],
            })
        });
        let replay_log_overflows = Counter::default();
        registry.register(
            "session_replay_log_overflows",
            "Sessions whose session-command replay log reached its limit (count or bytes): \
             they stay on the primary from then on",
            replay_log_overflows.clone(),
        );
        let replays_family = Family::<ReplayLabels, Counter>::default();
        registry.register(
            "transaction_replays",
            "Transactions whose server was lost while transaction replay recorded them: \
             attempted, then succeeded or why not",
            replays_family.clone(),
        );
        let transaction_replays = std::array::from_fn(|i| {
            replays_family.get_or_create_owned(&ReplayLabels {
                outcome: ReplayOutcome::ALL[i],
            })
        });
        let pinned_family = Family::<HoldLabels, Gauge>::default();
        registry.register(
            "pool_pinned_sessions",
            "Sessions that keep their backend connections between statements instead of \
             lending them to the pool, by reason",
            pinned_family.clone(),
        );
        let pinned_sessions = std::array::from_fn(|i| {
            pinned_family.get_or_create_owned(&HoldLabels {
                reason: HoldReason::ALL[i],
            })
        });
        let pool_wait = AtomicHistogram::new(&POOL_WAIT_BUCKETS);
        registry.register_with_unit(
            "pool_borrow_wait",
            "Time taken to get a backend connection from the pool (an idle one, a new one, or \
             waiting at pool.max_per_backend)",
            Unit::Seconds,
            pool_wait.clone(),
        );
        let sources_blocked = Counter::default();
        registry.register(
            "login_sources_blocked",
            "Times a client address was blocked by login_throttle after repeated failed logins",
            sources_blocked.clone(),
        );
        let packet_budget_exhausted = Counter::default();
        registry.register(
            "large_packet_budget_exhausted",
            "Client packets refused (ERR 1041) because the shared large_packet_budget stayed \
             spent by other connections",
            packet_budget_exhausted.clone(),
        );
        let writable_backends = Gauge::default();
        registry.register(
            "writable_backends",
            "Backends currently writable (read_only=OFF); 1 is healthy",
            writable_backends.clone(),
        );

        let backends = BackendMetrics::register(&mut registry);
        let digests = crate::digest_metrics::DigestMetrics::register(&mut registry);

        Metrics {
            inner: Arc::new(Inner {
                registry,
                routing,
                query_duration,
                client_connections,
                client_connections_total,
                client_rejections,
                errors,
                causal_reads,
                config_reloads,
                config_info,
                config_info_lock: Mutex::new(()),
                config_last_reload,
                write_conflicts,
                galera_writer_changes,
                writable_backends,
                replay_log_overflows,
                transaction_replays,
                pinned_sessions,
                pool_wait,
                sources_blocked,
                packet_budget_exhausted,
                backends,
                digests,
            }),
        }
    }

    /// Counts one routing decision.
    pub fn routing_decision(&self, role: DestRole, reason: Reason) {
        self.inner.routing[role.index()][reason.index()].inc();
    }

    /// Records how long a statement took on a backend of `role`, in seconds.
    /// Negative, NaN and infinite values are ignored.
    pub fn query_duration(&self, role: DestRole, seconds: f64) {
        self.inner.query_duration[role.index()].observe(seconds);
    }

    /// [`Metrics::query_duration`] taking a [`Duration`].
    pub fn observe_query(&self, role: DestRole, elapsed: Duration) {
        self.query_duration(role, elapsed.as_secs_f64());
    }

    /// A client connection was accepted. Pair with [`Metrics::client_disconnected`], or use
    /// [`Metrics::client_connection`] which does both.
    pub fn client_connected(&self) {
        self.inner.client_connections.inc();
        self.inner.client_connections_total.inc();
    }

    /// A client connection counted by [`Metrics::client_connected`] closed.
    pub fn client_disconnected(&self) {
        self.inner.client_connections.dec();
    }

    /// Counts a connected client and returns a guard that un-counts it when dropped.
    pub fn client_connection(&self) -> ClientConnectionGuard {
        self.client_connected();
        ClientConnectionGuard {
            metrics: self.clone(),
        }
    }

    /// A client connection was refused. It is not counted as connected: call this instead of
    /// (not in addition to) [`Metrics::client_connected`], or after [`Metrics::client_disconnected`].
    pub fn client_rejected(&self, reason: RejectReason) {
        self.inner.client_rejections[reason.index()].inc();
    }

    /// An error packet with `code` was sent to a client.
    pub fn error_sent(&self, code: u16) {
        self.inner.errors[slot_for_code(code)].inc();
    }

    /// Counts the outcome of a causally consistent read.
    pub fn causal_read(&self, outcome: CausalOutcome) {
        self.inner.causal_reads[outcome.index()].inc();
    }

    /// The configuration identified by `hash` is now in effect (initial load at start-up): sets
    /// `rwproxy_config_info` and the load timestamp without counting a reload.
    pub fn config_loaded(&self, hash: &str) {
        let _guard = self
            .inner
            .config_info_lock
            .lock()
            .unwrap_or_else(PoisonError::into_inner);
        self.inner.config_info.clear();
        self.inner
            .config_info
            .get_or_create(&ConfigLabels {
                hash: hash.to_owned(),
            })
            .set(1);
        self.inner.config_last_reload.set(unix_now_seconds());
    }

    /// A reload succeeded and `hash` is now in effect.
    pub fn config_reload_succeeded(&self, hash: &str) {
        self.inner.config_reloads[ReloadResult::Success.index()].inc();
        self.config_loaded(hash);
    }

    /// A reload was rejected; the previous configuration stays in effect.
    pub fn config_reload_failed(&self) {
        self.inner.config_reloads[ReloadResult::Failure.index()].inc();
    }

    /// A pool event on `backend`.
    pub fn pool_event(&self, backend: &str, event: crate::labels::PoolEvent) {
        self.inner.backends.pool_event(backend, event);
    }

    /// The Galera writer changed to a node, picked by `rule`.
    pub fn galera_writer_changed(&self, rule: WriterRule) {
        self.inner.galera_writer_changes[rule.index()].inc();
    }

    /// More than one backend was found writable.
    pub fn write_conflict(&self) {
        self.inner.write_conflicts.inc();
    }

    /// A session's replay log reached its limit; the session stays on the primary.
    pub fn replay_log_overflow(&self) {
        self.inner.replay_log_overflows.inc();
    }

    /// Counts a step of transaction replay (see [`ReplayOutcome`]).
    pub fn transaction_replay(&self, outcome: ReplayOutcome) {
        self.inner.transaction_replays[outcome.index()].inc();
    }

    /// A session's reason to keep its backend connections changed.
    pub fn pool_hold_changed(&self, from: Option<HoldReason>, to: Option<HoldReason>) {
        if let Some(r) = from {
            self.inner.pinned_sessions[r.index()].dec();
        }
        if let Some(r) = to {
            self.inner.pinned_sessions[r.index()].inc();
        }
    }

    /// Time taken to get a backend connection from the pool.
    pub fn pool_wait(&self, waited: Duration) {
        self.inner.pool_wait.observe(waited.as_secs_f64());
    }

    /// A client address was blocked by `login_throttle`.
    pub fn source_blocked(&self) {
        self.inner.sources_blocked.inc();
    }

    /// A client packet was refused because the large-packet budget stayed spent.
    pub fn packet_budget_exhausted(&self) {
        self.inner.packet_budget_exhausted.inc();
    }

    /// Sets how many backends are currently writable.
    pub fn set_writable_backends(&self, count: usize) {
        self.inner
            .writable_backends
            .set(i64::try_from(count).unwrap_or(i64::MAX));
    }

    /// A failure of `kind` talking to `backend`.
    pub fn backend_failure(&self, backend: &str, kind: FailureKind) {
        self.inner.backends.failure(backend, kind);
    }

    /// `backend` changed monitor state (call once per transition, e.g. from the monitor's
    /// state-change events).
    pub fn backend_state_changed(&self, backend: &str) {
        self.inner.backends.state_changed(backend);
    }

    /// Replaces all per-backend gauges with `views`. Backends not in `views` lose all their
    /// series, counters included (a backend removed by a reload disappears from the output).
    pub fn set_backends(&self, views: &[BackendMetricsView]) {
        self.inner.backends.set(views);
    }

    /// Sets the per-digest series to `views` (the top digests).
    pub fn set_digests(&self, views: &[crate::DigestView]) {
        self.inner.digests.set(views);
    }

    /// Renders every metric in the Prometheus text format 0.0.4 (see [`METRICS_CONTENT_TYPE`]).
    pub fn encode(&self) -> Result<String, AdminError> {
        let mut out = String::with_capacity(16 * 1024);
        prometheus_text::encode(&mut out, &self.inner.registry).map_err(|_| AdminError::Encode)?;
        Ok(out)
    }
}

/// Keeps one client connection counted in `rwproxy_client_connections` while alive.
#[derive(Debug)]
#[must_use = "dropping the guard immediately un-counts the connection"]
pub struct ClientConnectionGuard {
    metrics: Metrics,
}

impl Drop for ClientConnectionGuard {
    fn drop(&mut self) {
        self.metrics.client_disconnected();
    }
}

fn unix_now_seconds() -> f64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_secs_f64())
        .unwrap_or(0.0)
}
