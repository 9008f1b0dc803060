//! Per-backend metrics (label `backend`), fed from monitor snapshots.
//!
//! The set of backends comes from the configuration and changes only on reload, so one series
//! per backend (times a handful of roles/states/kinds) stays small. [`BackendMetrics::set`]
//! takes the full current list and drops every series of a backend that is no longer in it.

use std::collections::BTreeSet;
use std::sync::atomic::AtomicU64;
use std::sync::{Mutex, PoisonError};
use std::time::Duration;

use prometheus_client::encoding::EncodeLabelSet;
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge::Gauge;
use prometheus_client::registry::{Registry, Unit};

use crate::labels::{BackendRole, BackendState, FailureKind, LagSource, PoolEvent};

/// What the metrics need to know about one backend; build it from the monitor's snapshot
/// (plus the pool's open connection count).
#[derive(Debug, Clone, PartialEq)]
pub struct BackendMetricsView {
    /// Backend name from the configuration.
    pub name: String,
    /// Whether the last health check succeeded.
    pub up: bool,
    /// Current role.
    pub role: BackendRole,
    /// Current state.
    pub state: BackendState,
    /// Replication lag in seconds, when known. Exported only together with a `lag_source`
    /// other than [`LagSource::None`]; unknown lag exports no lag series at all.
    pub lag_seconds: Option<f64>,
    /// How `lag_seconds` was measured.
    pub lag_source: LagSource,
    /// Latency of the last completed health check, if any.
    pub check_latency: Option<Duration>,
    /// Open data-path (client traffic) connections to this backend.
    pub connections: u64,
    /// Of those, idle in the pool (kept for later sessions).
    pub pool_idle: u64,
    /// Of those, held by sessions that something keeps on them (a transaction, a temporary
    /// table…: `rwproxy_pool_pinned_sessions` says what).
    pub pool_pinned: u64,
    /// A Galera node's `wsrep_local_recv_queue` (write sets received, not yet applied); `None`
    /// for other servers (no series).
    pub galera_recv_queue: Option<u64>,
    /// A Galera node's `wsrep_flow_control_paused` (fraction of time replication was paused by
    /// flow control since the server's status was last flushed); `None`: no series.
    pub galera_flow_control_paused: Option<f64>,
}

#[derive(Debug, Clone, PartialEq, Eq, Hash, EncodeLabelSet)]
struct BackendLabels {
    backend: String,
}

#[derive(Debug, Clone, PartialEq, Eq, Hash, EncodeLabelSet)]
struct BackendRoleLabels {
    backend: String,
    role: BackendRole,
}

#[derive(Debug, Clone, PartialEq, Eq, Hash, EncodeLabelSet)]
struct BackendStateLabels {
    backend: String,
    state: BackendState,
}

#[derive(Debug, Clone, PartialEq, Eq, Hash, EncodeLabelSet)]
struct BackendLagLabels {
    backend: String,
    source: LagSource,
}

#[derive(Debug, Clone, PartialEq, Eq, Hash, EncodeLabelSet)]
struct BackendPoolLabels {
    backend: String,
    event: PoolEvent,
}

#[derive(Debug, Clone, PartialEq, Eq, Hash, EncodeLabelSet)]
struct BackendFailureLabels {
    backend: String,
    kind: FailureKind,
}

/// Lag sources that produce a series (`None` never does).
const MEASURED_LAG_SOURCES: [LagSource; 2] = [LagSource::Heartbeat, LagSource::SecondsBehindMaster];

type FloatGauge = Gauge<f64, AtomicU64>;

/// All per-backend metric families plus the names that currently have series.
#[derive(Debug)]
pub(crate) struct BackendMetrics {
    up: Family<BackendLabels, Gauge>,
    role: Family<BackendRoleLabels, Gauge>,
    state: Family<BackendStateLabels, Gauge>,
    lag: Family<BackendLagLabels, FloatGauge>,
    connections: Family<BackendLabels, Gauge>,
    pool_idle: Family<BackendLabels, Gauge>,
    pool_pinned: Family<BackendLabels, Gauge>,
    pool_events: Family<BackendPoolLabels, Counter>,
    check_duration: Family<BackendLabels, FloatGauge>,
    galera_recv_queue: Family<BackendLabels, Gauge>,
    galera_flow_control_paused: Family<BackendLabels, FloatGauge>,
    state_changes: Family<BackendLabels, Counter>,
    failures: Family<BackendFailureLabels, Counter>,
    /// Backends that have series; guarded so concurrent updates cannot resurrect a removed one
    /// half-way.
    known: Mutex<BTreeSet<String>>,
    /// The pool-event counters of each known backend, found without allocating (pool events
    /// happen at most statements when connections are shared).
    pool_fast: std::sync::RwLock<std::collections::HashMap<String, Vec<Counter>>>,
}

impl BackendMetrics {
    /// Creates the families and registers them in `registry` (which carries the `rwproxy`
    /// prefix).
    pub(crate) fn register(registry: &mut Registry) -> Self {
        let metrics = BackendMetrics {
            up: Family::default(),
            role: Family::default(),
            state: Family::default(),
            lag: Family::default(),
            connections: Family::default(),
            pool_idle: Family::default(),
            pool_pinned: Family::default(),
            pool_events: Family::default(),
            check_duration: Family::default(),
            galera_recv_queue: Family::default(),
            galera_flow_control_paused: Family::default(),
            state_changes: Family::default(),
            failures: Family::default(),
            known: Mutex::new(BTreeSet::new()),
            pool_fast: Default::default(),
        };
        registry.register(
            "backend_up",
            "Whether the last health check of the backend succeeded (1) or not (0)",
            metrics.up.clone(),
        );
        registry.register(
            "backend_role",
            "Role of the backend: 1 for the current role, 0 for the others",
            metrics.role.clone(),
        );
        registry.register(
            "backend_state",
            "Monitor state of the backend: 1 for the current state, 0 for the others",
            metrics.state.clone(),
        );
        registry.register_with_unit(
            "backend_replication_lag",
            "Replication lag of a replica; absent when unknown",
            Unit::Seconds,
            metrics.lag.clone(),
        );
        registry.register(
            "backend_connections",
            "Open data-path connections from the proxy to the backend",
            metrics.connections.clone(),
        );
        registry.register(
            "backend_pool_idle_connections",
            "Of the backend connections, those idle in the pool (kept for later sessions)",
            metrics.pool_idle.clone(),
        );
        registry.register(
            "backend_pool_pinned_connections",
            "Of the backend connections, those held by sessions that something keeps on them (rwproxy_pool_pinned_sessions says what)",
            metrics.pool_pinned.clone(),
        );
        registry.register(
            "backend_pool_events",
            "Pool events by backend: connections reused by another session, restored to the borrower's settings, statements prepared again, connections reset into the pool, statements refused at pool.max_per_backend",
            metrics.pool_events.clone(),
        );
        registry.register_with_unit(
            "backend_check_duration",
            "Latency of the last completed health check of the backend",
            Unit::Seconds,
            metrics.check_duration.clone(),
        );
        registry.register(
            "backend_galera_recv_queue",
            "Write sets a Galera node has received and not yet applied (wsrep_local_recv_queue); absent for other servers",
            metrics.galera_recv_queue.clone(),
        );
        registry.register(
            "backend_galera_flow_control_paused",
            "Fraction of time a Galera node's replication was paused by flow control (wsrep_flow_control_paused); absent for other servers",
            metrics.galera_flow_control_paused.clone(),
        );
        registry.register(
            "backend_state_changes",
            "Number of monitor state transitions of the backend",
            metrics.state_changes.clone(),
        );
        registry.register(
            "backend_failures",
            "Failures talking to the backend, by kind",
            metrics.failures.clone(),
        );
        metrics
    }

    /// Replaces the per-backend series with `views`; backends missing from `views` lose all
    /// their series (counters included).
    pub(crate) fn set(&self, views: &[BackendMetricsView]) {
        let mut known = self.known.lock().unwrap_or_else(PoisonError::into_inner);
        let wanted: BTreeSet<&str> = views.iter().map(|v| v.name.as_str()).collect();
        let gone: Vec<String> = known
            .iter()
            .filter(|name| !wanted.contains(name.as_str()))
            .cloned()
            .collect();
        for name in gone {
            self.remove(&name);
            known.remove(&name);
        }
        for view in views {
            self.apply(view);
            known.insert(view.name.clone());
        }
    }

    /// Counts one failure of `kind` on `backend`.
    pub(crate) fn failure(&self, backend: &str, kind: FailureKind) {
        let mut known = self.known.lock().unwrap_or_else(PoisonError::into_inner);
        self.ensure_counters(&mut known, backend);
        self.failures
            .get_or_create(&BackendFailureLabels {
                backend: backend.to_owned(),
                kind,
            })
            .inc();
    }

    /// Counts one pool event on `backend`.
    pub(crate) fn pool_event(&self, backend: &str, event: PoolEvent) {
        {
            let fast = self
                .pool_fast
                .read()
                .unwrap_or_else(PoisonError::into_inner);
            if let Some(counter) = fast.get(backend).and_then(|c| c.get(event.index())) {
                counter.inc();
                return;
            }
        }
        let mut known = self.known.lock().unwrap_or_else(PoisonError::into_inner);
        self.ensure_counters(&mut known, backend);
        let counters: Vec<Counter> = PoolEvent::ALL
            .iter()
            .map(|e| {
                self.pool_events
                    .get_or_create(&BackendPoolLabels {
                        backend: backend.to_owned(),
                        event: *e,
                    })
                    .clone()
            })
            .collect();
        if let Some(counter) = counters.get(event.index()) {
            counter.inc();
        }
        self.pool_fast
            .write()
            .unwrap_or_else(PoisonError::into_inner)
            .insert(backend.to_owned(), counters);
    }

    /// Counts one state transition of `backend`.
    pub(crate) fn state_changed(&self, backend: &str) {
        let mut known = self.known.lock().unwrap_or_else(PoisonError::into_inner);
        self.ensure_counters(&mut known, backend);
        self.state_changes
            .get_or_create(&BackendLabels {
                backend: backend.to_owned(),
            })
            .inc();
    }

    /// Makes sure the counters of `backend` exist (at 0) and that it is remembered.
    fn ensure_counters(&self, known: &mut BTreeSet<String>, backend: &str) {
        if known.contains(backend) {
            return;
        }
        known.insert(backend.to_owned());
        self.create_counters(backend);
    }

    /// Creates the counters of `backend` at 0 (no-op when they exist), so that rate() sees the
    /// first increment.
    fn create_counters(&self, backend: &str) {
        drop(self.state_changes.get_or_create(&BackendLabels {
            backend: backend.to_owned(),
        }));
        for kind in FailureKind::ALL {
            drop(self.failures.get_or_create(&BackendFailureLabels {
                backend: backend.to_owned(),
                kind: *kind,
            }));
        }
        for event in PoolEvent::ALL {
            drop(self.pool_events.get_or_create(&BackendPoolLabels {
                backend: backend.to_owned(),
                event: *event,
            }));
        }
    }

    fn apply(&self, view: &BackendMetricsView) {
        let backend = || BackendLabels {
            backend: view.name.clone(),
        };
        self.up.get_or_create(&backend()).set(i64::from(view.up));
        for role in BackendRole::ALL {
            self.role
                .get_or_create(&BackendRoleLabels {
                    backend: view.name.clone(),
                    role: *role,
                })
                .set(i64::from(*role == view.role));
        }
        for state in BackendState::ALL {
            self.state
                .get_or_create(&BackendStateLabels {
                    backend: view.name.clone(),
                    state: *state,
                })
                .set(i64::from(*state == view.state));
        }
        for source in MEASURED_LAG_SOURCES {
            let labels = BackendLagLabels {
                backend: view.name.clone(),
                source,
            };
            match view.lag_seconds {
                Some(lag) if lag.is_finite() && view.lag_source == source => {
                    self.lag.get_or_create(&labels).set(lag.max(0.0));
                }
                _ => {
                    self.lag.remove(&labels);
                }
            }
        }
        self.connections
            .get_or_create(&backend())
            .set(i64::try_from(view.connections).unwrap_or(i64::MAX));
        self.pool_idle
            .get_or_create(&backend())
            .set(i64::try_from(view.pool_idle).unwrap_or(i64::MAX));
        self.pool_pinned
            .get_or_create(&backend())
            .set(i64::try_from(view.pool_pinned).unwrap_or(i64::MAX));
        match view.check_latency {
            Some(latency) => {
                self.check_duration
                    .get_or_create(&backend())
                    .set(latency.as_secs_f64());
            }
            None => {
                self.check_duration.remove(&backend());
            }
        }
        match view.galera_recv_queue {
            Some(queue) => {
                self.galera_recv_queue
                    .get_or_create(&backend())
                    .set(i64::try_from(queue).unwrap_or(i64::MAX));
            }
            None => {
                self.galera_recv_queue.remove(&backend());
            }
        }
        match view.galera_flow_control_paused {
            Some(paused) if paused.is_finite() => {
                self.galera_flow_control_paused
                    .get_or_create(&backend())
                    .set(paused.clamp(0.0, 1.0));
            }
            _ => {
                self.galera_flow_control_paused.remove(&backend());
            }
        }
        self.create_counters(&view.name);
    }

    fn remove(&self, name: &str) {
        self.pool_fast
            .write()
            .unwrap_or_else(PoisonError::into_inner)
            .remove(name);
        let backend = BackendLabels {
            backend: name.to_owned(),
        };
        self.up.remove(&backend);
        self.connections.remove(&backend);
        self.pool_idle.remove(&backend);
        self.pool_pinned.remove(&backend);
        self.check_duration.remove(&backend);
        self.galera_recv_queue.remove(&backend);
        self.galera_flow_control_paused.remove(&backend);
        self.state_changes.remove(&backend);
        for role in BackendRole::ALL {
            self.role.remove(&BackendRoleLabels {
                backend: name.to_owned(),
                role: *role,
            });
        }
        for state in BackendState::ALL {
            self.state.remove(&BackendStateLabels {
                backend: name.to_owned(),
                state: *state,
            });
        }
        for source in MEASURED_LAG_SOURCES {
            self.lag.remove(&BackendLagLabels {
                backend: name.to_owned(),
                source,
            });
        }
        for kind in FailureKind::ALL {
            self.failures.remove(&BackendFailureLabels {
                backend: name.to_owned(),
                kind: *kind,
            });
        }
        for event in PoolEvent::ALL {
            self.pool_events.remove(&BackendPoolLabels {
                backend: name.to_owned(),
                event: *event,
            });
        }
    }
}
