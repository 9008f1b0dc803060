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
}

impl Shared {
    pub fn new(mut registry: Registry) -> Self {
        let primary = resolve_roles(&mut registry.statuses);
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
        }
    }

    pub fn lock(&self) -> MutexGuard<'_, Registry> {
        self.registry.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// Resolves roles, publishes a new snapshot, logs and broadcasts what
    /// changed, and wakes `wait_for_primary` callers.
    pub fn publish(&self, registry: &mut Registry) {
        let primary = resolve_roles(&mut registry.statuses);
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

    /// Records a finished check from task `task_id` (ignored if that task
    /// has since been replaced or the monitor shut down).
    pub fn record_check(
        &self,
        name: &str,
        task_id: u64,
        outcome: Result<Observation, CheckFailure>,
    ) {
        let mut registry = self.lock();
        if registry.shut_down || registry.tasks.get(name).map(|t| t.id) != Some(task_id) {
            return;
        }
        let ctx = registry.check_context();
        let now = SystemTime::now();
        let Some(status) = registry.statuses.iter_mut().find(|s| s.name == name) else {
            return;
        };
        match &outcome {
            Ok(obs) => state_machine::apply_success(status, obs, &ctx, now),
            Err(failure) => {
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
            },
            timeout: s.timeout,
            interval: s.interval,
            heartbeat_table: registry.heartbeat_table.clone(),
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
            },
            table,
            interval: hb.interval.max(MIN_HEARTBEAT_INTERVAL),
            timeout: registry.settings.timeout,
        })
    }

    pub fn heartbeat_written(&self, at: Instant) {
        self.lock().last_heartbeat_ok = Some(at);
    }

    /// Circuit breaker: Down at once. Returns the wake handle of the
    /// backend's task (monitored mode) when the state changed.
    pub fn report_failure(&self, name: &str, reason: &str) -> ReportOutcome {
        let mut registry = self.lock();
        if registry.shut_down {
            return ReportOutcome::Unchanged;
        }
        let now = SystemTime::now();
        let Some(status) = registry.statuses.iter_mut().find(|s| s.name == name) else {
            return ReportOutcome::Unchanged;
        };
        if !state_machine::apply_reported_failure(status, reason, now) {
            return ReportOutcome::Unchanged;
        }
        let since = status.since;
        self.publish(&mut registry);
        match registry.mode {
            Mode::Monitored => match registry.tasks.get(name) {
                Some(task) => ReportOutcome::WakeTask(Arc::clone(&task.wake)),
                None => ReportOutcome::Unchanged,
            },
            Mode::Static { cooldown } => ReportOutcome::StaticCooldown { cooldown, since },
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
        StateChange::Primary { old, new } => match new {
            PrimaryState::One(_) => {
                tracing::info!(from = %old, to = %new, "primary changed");
            }
            _ => tracing::warn!(from = %old, to = %new, "primary changed"),
        },
    }
}
