//! State shared by the monitor's tasks and handles: the working copy of
//! every backend's status (behind a short-held mutex) and the published,
//! lock-free snapshot, plus event and update channels.

use std::collections::HashMap;
use std::sync::{Arc, Mutex, MutexGuard, PoisonError};
use std::time::{Duration, Instant, SystemTime};

use arc_swap::ArcSwap;
use tokio::sync::{broadcast, watch, Notify};
use tokio::task::JoinHandle;

use crate::events::{diff, StateChange};
use crate::heartbeat::HeartbeatInputs;
use crate::heartbeat_table::HeartbeatTable;
use crate::kept_connection::Credentials;
use crate::observation::Observation;
use crate::probe::CheckFailure;
use crate::settings::MonitorSettings;
use crate::state_machine::{self, CheckContext};
use crate::status::{BackendState, BackendStatus};
use crate::topology::{resolve_roles, PrimaryState, Topology};

/// Events buffered for slow subscribers before they start missing some.
const EVENT_CAPACITY: usize = 256;
/// Shortest heartbeat period honoured (guards against a zero interval).
const MIN_HEARTBEAT_INTERVAL: Duration = Duration::from_millis(10);

/// How backends are watched.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Mode {
    /// Real checks with monitor credentials.
    Monitored,
    /// No checks; only the data path's reports move backends to Down, and
    /// they come back after `cooldown`.
    Static { cooldown: Duration },
}

/// A running per-backend task.
pub(crate) struct BackendTask {
    pub id: u64,
    pub handle: JoinHandle<()>,
    pub wake: Arc<Notify>,
}

/// Everything that changes, behind one mutex that is never held across an
/// await.
pub(crate) struct Registry {
    pub mode: Mode,
    pub settings: Arc<MonitorSettings>,
    pub heartbeat_table: Option<HeartbeatTable>,
    /// Configuration order.
    pub statuses: Vec<BackendStatus>,
    pub generation: u64,
    pub tasks: HashMap<String, BackendTask>,
    pub next_task_id: u64,
    pub heartbeat_task: Option<JoinHandle<()>>,
    pub last_heartbeat_ok: Option<Instant>,
    pub shut_down: bool,
    /// Data-path failure reports waiting for the backend's own check to confirm them
    /// (monitored mode): backend name → the newest report.
    pub reports: HashMap<String, PendingReport>,
    /// A switchover runs (one at a time).
    pub switching: bool,
    /// A switchover holds new writes: the published topology has no primary.
    pub hold: bool,
    /// When a switchover last changed the roles: checks started before then are stale.
    pub switched_at: Option<Instant>,
}

/// A data-path failure report not yet confirmed or refuted by a check.
#[derive(Debug, Clone)]
pub(crate) struct PendingReport {
    pub reason: String,
    /// When it arrived: only a check started after this refutes it.
    pub at: Instant,
}

impl Registry {
    pub fn new(mode: Mode, settings: MonitorSettings, statuses: Vec<BackendStatus>) -> Self {
        let heartbeat_table = heartbeat_table(&settings);
        Self {
            mode,
            settings: Arc::new(settings),
            heartbeat_table,
            statuses,
            generation: 0,
            tasks: HashMap::new(),
            next_task_id: 1,
            heartbeat_task: None,
            last_heartbeat_ok: None,
            shut_down: false,
            reports: HashMap::new(),
            switching: false,
            hold: false,
            switched_at: None,
        }
    }

    fn check_context(&self) -> CheckContext {
        let s = &self.settings;
        CheckContext {
            failure_threshold: s.failure_threshold,
            recovery_checks: s.recovery_checks,
            max_replication_lag: s.max_replication_lag,
            pinned_primary_exists: self.statuses.iter().any(|b| b.pinned_primary),
            heartbeat_usable: self.heartbeat_usable(Instant::now()),
            topology: s.topology,
            galera_max_recv_queue: s.galera_max_recv_queue,
        }
    }

    /// The heartbeat row's age means lag only while the writer keeps up.
    fn heartbeat_usable(&self, now: Instant) -> bool {
        match (&self.settings.heartbeat, self.last_heartbeat_ok) {
            (Some(hb), Some(last)) => {
                let window = hb
                    .interval
                    .saturating_mul(2)
                    .saturating_add(self.settings.timeout);
                now.saturating_duration_since(last) <= window
            }
            _ => false,
        }
    }

    /// Aborts every task (on shutdown and drop).
    pub fn abort_tasks(&mut self) {
        for (_, task) in self.tasks.drain() {
            task.handle.abort();
        }
        if let Some(task) = self.heartbeat_task.take() {
            task.abort();
        }
    }
}

/// Parses the configured heartbeat table, logging (and disabling the
/// heartbeat) when the name is unusable.
pub(crate) fn heartbeat_table(settings: &MonitorSettings) -> Option<HeartbeatTable> {
    let hb = settings.heartbeat.as_ref()?;
    match HeartbeatTable::parse(&hb.table) {
        Ok(table) => Some(table),
        Err(err) => {
            tracing::error!(error = %err, "heartbeat disabled");
            None
        }
    }
}

pub(crate) struct Shared {
    pub snapshot: ArcSwap<Topology>,
    registry: Mutex<Registry>,
    pub events: broadcast::Sender<StateChange>,
    pub published: watch::Sender<u64>,
    /// Statements and transactions placed on the primary and not finished (see
    /// [`crate::primary_gate`]).
    pub gate: Arc<crate::primary_gate::PrimaryGate>,
}

impl Shared {
    pub fn new(mut registry: Registry) -> Self {
        let primary = resolve_roles(&mut registry.statuses, registry.settings.topology);
        let topology = Topology {
            generation: registry.generation,
            backends: registry.statuses.clone(),
            primary,
        };
        let (events, _) = broadcast::channel(EVENT_CAPACITY);
        let (published, _) = watch::channel(registry.generation);
        Self {
            snapshot: ArcSwap::from_pointee(topology),
            registry: Mutex::new(registry),
            events,
            published,
            gate: Arc::default(),
        }
    }

    pub fn lock(&self) -> MutexGuard<'_, Registry> {
        self.registry.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// Resolves roles, publishes a new snapshot, logs and broadcasts what
    /// changed, and wakes `wait_for_primary` callers.
    pub fn publish(&self, registry: &mut Registry) {
        let mut primary = resolve_roles(&mut registry.statuses, registry.settings.topology);
        if registry.hold {
            // A switchover holds writes: they wait for the new primary.
            primary = PrimaryState::None;
        }
        registry.generation = registry.generation.wrapping_add(1);
        let topology = Arc::new(Topology {
            generation: registry.generation,
            backends: registry.statuses.clone(),
            primary,
        });
        let previous = self.snapshot.swap(Arc::clone(&topology));
        for change in diff(&previous, &topology) {
            log_change(&change);
            // No subscribers is fine.
            let _ = self.events.send(change);
        }
        self.published.send_replace(registry.generation);
    }

    /// Records a finished check from task `task_id`, started at `started` (ignored if that
    /// task has since been replaced or the monitor shut down).
    ///
    /// A pending data-path report is settled here: a failed check confirms it (Down at once,
    /// whatever `failure_threshold` says); a successful check that started after the report
    /// refutes it (no state change).
    pub fn record_check(
        &self,
        name: &str,
        task_id: u64,
        started: Instant,
        outcome: Result<Observation, CheckFailure>,
    ) {
        let mut registry = self.lock();
        if registry.shut_down || registry.tasks.get(name).map(|t| t.id) != Some(task_id) {
            return;
        }
        // A check that began before a switchover changed the roles saw the old ones.
        if registry.switched_at.is_some_and(|at| started < at) {
            return;
        }
        let ctx = registry.check_context();
        let now = SystemTime::now();
        let report = match &outcome {
            Err(_) => registry.reports.remove(name),
            Ok(_) => {
                let refuted = registry.reports.get(name).is_some_and(|r| started >= r.at);
                if refuted {
                    registry.reports.remove(name)
                } else {
                    None
                }
            }
        };
        let Some(status) = registry.statuses.iter_mut().find(|s| s.name == name) else {
            return;
        };
        match (&outcome, report) {
            (Ok(obs), report) => {
                if let Some(report) = report {
                    tracing::info!(backend = %name, report = %report.reason, "a data-path failure report was not confirmed by the backend's check; state unchanged");
                }
                state_machine::apply_success(status, obs, &ctx, now)
            }
            (Err(failure), Some(report)) => state_machine::apply_confirmed_failure(
                status,
                &failure.reason,
                &report.reason,
                failure.latency,
                now,
            ),
            (Err(failure), None) => {
                state_machine::apply_failure(status, &failure.reason, failure.latency, &ctx, now)
            }
        }
        self.publish(&mut registry);
    }

    /// What a backend task needs for its next check; None once shut down.
    pub fn check_inputs(&self) -> Option<CheckInputs> {
        let registry = self.lock();
        if registry.shut_down {
            return None;
        }
        let s = &registry.settings;
        Some(CheckInputs {
            credentials: Credentials {
                user: s.user.clone(),
                password: s.password.clone(),
                tls: s.tls.clone(),
            },
            timeout: s.timeout,
            interval: s.interval,
            heartbeat_table: registry.heartbeat_table.clone(),
            topology: s.topology,
        })
    }

    /// What the heartbeat writer needs; None when it should stop.
    pub fn heartbeat_inputs(&self) -> Option<HeartbeatInputs> {
        let registry = self.lock();
        if registry.shut_down {
            return None;
        }
        let table = registry.heartbeat_table.clone()?;
        let hb = registry.settings.heartbeat.as_ref()?;
        let primary_address = self.snapshot.load().primary().map(|p| p.address.clone());
        Some(HeartbeatInputs {
            primary_address,
            credentials: Credentials {
                user: registry.settings.user.clone(),
                password: registry.settings.password.clone(),
                tls: registry.settings.tls.clone(),
            },
            table,
            interval: hb.interval.max(MIN_HEARTBEAT_INTERVAL),
            timeout: registry.settings.timeout,
        })
    }

    pub fn heartbeat_written(&self, at: Instant) {
        self.lock().last_heartbeat_ok = Some(at);
    }

    /// A data-path failure report. Monitored mode: nothing changes yet; the
    /// report waits for the backend's next check, which is started at once
    /// (the returned wake handle). Static mode (no checks): circuit breaker,
    /// Down at once for the cooldown.
    pub fn report_failure(&self, name: &str, reason: &str) -> ReportOutcome {
        let mut registry = self.lock();
        if registry.shut_down {
            return ReportOutcome::Unchanged;
        }
        let now = SystemTime::now();
        let mode = registry.mode;
        let Some(status) = registry.statuses.iter_mut().find(|s| s.name == name) else {
            return ReportOutcome::Unchanged;
        };
        match mode {
            Mode::Monitored => {
                if status.state == BackendState::Down {
                    return ReportOutcome::Unchanged;
                }
                let Some(wake) = registry.tasks.get(name).map(|t| Arc::clone(&t.wake)) else {
                    return ReportOutcome::Unchanged;
                };
                registry.reports.insert(
                    name.to_string(),
                    PendingReport {
                        reason: reason.to_string(),
                        at: Instant::now(),
                    },
                );
                ReportOutcome::WakeTask(wake)
            }
            Mode::Static { cooldown } => {
                if !state_machine::apply_reported_failure(status, reason, now) {
                    return ReportOutcome::Unchanged;
                }
                let since = status.since;
                self.publish(&mut registry);
                ReportOutcome::StaticCooldown { cooldown, since }
            }
        }
    }

    /// Static mode: the breaker closes again after the cooldown, unless the
    /// backend went down anew in the meantime.
    pub fn end_static_cooldown(&self, name: &str, since: SystemTime) {
        let mut registry = self.lock();
        if registry.shut_down {
            return;
        }
        let now = SystemTime::now();
        let Some(status) = registry.statuses.iter_mut().find(|s| s.name == name) else {
            return;
        };
        if status.state != BackendState::Down || status.since != since {
            return;
        }
        status.state = BackendState::Up;
        status.since = now;
        status.reason = "static: retrying after circuit-breaker cooldown".to_string();
        self.publish(&mut registry);
    }

    pub fn primary_state(&self) -> PrimaryState {
        self.snapshot.load().primary.clone()
    }
}

impl Drop for Shared {
    fn drop(&mut self) {
        self.lock().abort_tasks();
    }
}

/// What a backend task needs for one check.
pub(crate) struct CheckInputs {
    pub credentials: Credentials,
    pub timeout: Duration,
    pub interval: Duration,
    pub heartbeat_table: Option<HeartbeatTable>,
    pub topology: crate::galera::TopologyMode,
}

/// What `report_failure` asks the caller to do next.
pub(crate) enum ReportOutcome {
    Unchanged,
    WakeTask(Arc<Notify>),
    StaticCooldown {
        cooldown: Duration,
        since: SystemTime,
    },
}

fn log_change(change: &StateChange) {
    match change {
        StateChange::Backend {
            backend,
            old_state,
            new_state,
            old_role,
            new_role,
            reason,
        } => {
            if *new_state == BackendState::Up {
                tracing::info!(backend = %backend, from = %old_state, to = %new_state, role_from = %old_role, role_to = %new_role, reason = %reason, "backend state changed");
            } else {
                tracing::warn!(backend = %backend, from = %old_state, to = %new_state, role_from = %old_role, role_to = %new_role, reason = %reason, "backend state changed");
            }
        }
        StateChange::Primary { old, new, rule } => match new {
            PrimaryState::One(_) => match rule {
                Some(rule) => {
                    tracing::info!(from = %old, to = %new, rule = %rule, "galera writer changed")
                }
                None => tracing::info!(from = %old, to = %new, "primary changed"),
            },
            _ => tracing::warn!(from = %old, to = %new, "primary changed"),
        },
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::settings::BackendSpec;
    use crate::status::ServerFlavor;

    fn primary_obs() -> Observation {
        Observation {
            flavor: ServerFlavor::MariaDb,
            version: "10.11.6-MariaDB".into(),
            server_id: 1,
            read_only: false,
            gtid_current_pos: None,
            gtid_slave_pos: None,
            channels: vec![],
            replication_error: None,
            heartbeat_lag: None,
            latency: Duration::from_millis(1),
            galera: None,
        }
    }

    fn refused() -> CheckFailure {
        CheckFailure {
            reason: "connection refused".into(),
            latency: Duration::from_millis(1),
        }
    }

    /// A monitored registry with one backend, Up as the primary, and a task entry (id 1) that
    /// does nothing.
    fn monitored() -> Shared {
        let spec = BackendSpec::new("db1", "127.0.0.1:1");
        let statuses = vec![BackendStatus::starting(&spec, SystemTime::now())];
        let mut registry = Registry::new(Mode::Monitored, MonitorSettings::default(), statuses);
        registry.tasks.insert(
            "db1".into(),
            BackendTask {
                id: 1,
                handle: tokio::spawn(async {}),
                wake: Arc::new(Notify::new()),
            },
        );
        let shared = Shared::new(registry);
        shared.record_check("db1", 1, Instant::now(), Ok(primary_obs()));
        assert_eq!(shared.primary_state(), PrimaryState::One("db1".into()));
        shared
    }

    fn state(shared: &Shared) -> BackendState {
        shared.snapshot.load().backends[0].state
    }

    #[tokio::test]
    async fn a_report_changes_nothing_until_a_check_confirms_it() {
        let shared = monitored();
        let generation = shared.snapshot.load().generation;
        assert!(matches!(
            shared.report_failure("db1", "connection reset"),
            ReportOutcome::WakeTask(_)
        ));
        assert_eq!(state(&shared), BackendState::Up);
        assert_eq!(shared.snapshot.load().generation, generation);
        // One failed check confirms it: Down at once, although the threshold is 2.
        shared.record_check("db1", 1, Instant::now(), Err(refused()));
        assert_eq!(state(&shared), BackendState::Down);
        let reason = shared.snapshot.load().backends[0].reason.clone();
        assert!(reason.contains("connection refused"), "{reason}");
        assert!(reason.contains("connection reset"), "{reason}");
        assert!(shared.lock().reports.is_empty());
    }

    #[tokio::test]
    async fn a_healthy_check_refutes_a_report() {
        let shared = monitored();
        shared.report_failure("db1", "packet truncated");
        shared.record_check("db1", 1, Instant::now(), Ok(primary_obs()));
        assert_eq!(state(&shared), BackendState::Up);
        assert!(shared.lock().reports.is_empty());
        // A later single failed check is judged by the threshold again.
        shared.record_check("db1", 1, Instant::now(), Err(refused()));
        assert_eq!(state(&shared), BackendState::Up);
    }

    #[tokio::test]
    async fn a_check_started_before_the_report_does_not_refute_it() {
        let shared = monitored();
        let started = Instant::now();
        std::thread::sleep(Duration::from_millis(2));
        shared.report_failure("db1", "connection reset");
        shared.record_check("db1", 1, started, Ok(primary_obs()));
        assert_eq!(shared.lock().reports.len(), 1);
        shared.record_check("db1", 1, Instant::now(), Err(refused()));
        assert_eq!(state(&shared), BackendState::Down);
    }
}
