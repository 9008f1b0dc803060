//! Starting the monitor and the handle everyone else holds.

use std::sync::Arc;
use std::time::{Duration, SystemTime};

use tokio::sync::{broadcast, Notify};

use crate::backend_task;
use crate::error::NoPrimary;
use crate::events::StateChange;
use crate::heartbeat;
use crate::settings::{BackendSpec, MonitorSettings};
use crate::shared::{heartbeat_table, BackendTask, Mode, Registry, ReportOutcome, Shared};
use crate::status::{BackendState, BackendStatus};
use crate::topology::Topology;

/// How long a static-mode backend stays down after a data-path failure
/// report before it is tried again.
pub const DEFAULT_STATIC_COOLDOWN: Duration = Duration::from_secs(2);

/// Entry points; see [`MonitorHandle`] for what a running monitor offers.
pub struct Monitor;

impl Monitor {
    /// Starts watching `backends`: one task per backend, plus the heartbeat
    /// writer when configured. Never fails: problems that
    /// [`crate::validate`] would report are logged and tolerated.
    ///
    /// Must be called inside a Tokio runtime. The tasks stop on
    /// [`MonitorHandle::shutdown`] or when the last handle is dropped.
    pub fn spawn(settings: MonitorSettings, backends: Vec<BackendSpec>) -> MonitorHandle {
        let now = SystemTime::now();
        let specs = dedup(backends);
        let statuses = specs
            .iter()
            .map(|spec| BackendStatus::starting(spec, now))
            .collect();
        let registry = Registry::new(Mode::Monitored, settings, statuses);
        let handle = MonitorHandle {
            shared: Arc::new(Shared::new(registry)),
        };
        {
            let mut registry = handle.shared.lock();
            for spec in &specs {
                handle.start_task(&mut registry, spec);
            }
            handle.sync_heartbeat_task(&mut registry);
            handle.shared.publish(&mut registry);
        }
        handle
    }

    /// The mode without monitor credentials: the pinned backend (or, when
    /// none is pinned, the first one) is the primary, the rest replicas, all
    /// Up. Only [`MonitorHandle::report_failure`] changes that: the backend
    /// is Down for [`DEFAULT_STATIC_COOLDOWN`], then tried again.
    pub fn static_topology(backends: Vec<BackendSpec>) -> MonitorHandle {
        Self::static_topology_with_cooldown(backends, DEFAULT_STATIC_COOLDOWN)
    }

    /// [`Monitor::static_topology`] with a chosen cooldown.
    pub fn static_topology_with_cooldown(
        backends: Vec<BackendSpec>,
        cooldown: Duration,
    ) -> MonitorHandle {
        let specs = dedup(backends);
        let statuses = static_statuses(&specs, SystemTime::now());
        let mut registry = Registry::new(
            Mode::Static { cooldown },
            MonitorSettings::default(),
            statuses,
        );
        registry.generation = 1;
        MonitorHandle {
            shared: Arc::new(Shared::new(registry)),
        }
    }
}

/// Keeps the first of several backends with the same name.
fn dedup(backends: Vec<BackendSpec>) -> Vec<BackendSpec> {
    let mut out: Vec<BackendSpec> = Vec::with_capacity(backends.len());
    for spec in backends {
        if out.iter().any(|b| b.name == spec.name) {
            tracing::warn!(backend = %spec.name, "backend listed twice; keeping the first");
        } else {
            out.push(spec);
        }
    }
    out
}

fn static_statuses(specs: &[BackendSpec], now: SystemTime) -> Vec<BackendStatus> {
    let primary = specs
        .iter()
        .position(|s| s.pinned_primary)
        .or(if specs.is_empty() { None } else { Some(0) });
    specs
        .iter()
        .enumerate()
        .map(|(i, spec)| static_status(spec, Some(i) == primary, now))
        .collect()
}

fn static_status(spec: &BackendSpec, is_primary: bool, now: SystemTime) -> BackendStatus {
    let mut status = BackendStatus::starting(spec, now);
    status.state = BackendState::Up;
    status.read_only = !is_primary;
    status.reason = if is_primary {
        "static: configured primary".to_string()
    } else {
        "static: configured replica".to_string()
    };
    status
}

/// A cheap, cloneable handle to a running (or static) monitor.
#[derive(Clone)]
pub struct MonitorHandle {
    shared: Arc<Shared>,
}

impl MonitorHandle {
    /// The current topology; lock-free.
    pub fn snapshot(&self) -> Arc<Topology> {
        self.shared.snapshot.load_full()
    }

    /// The current topology, borrowed for a moment: no reference count is touched (the hot
    /// path's read; do not hold it across an await).
    pub fn current(&self) -> arc_swap::Guard<Arc<Topology>> {
        self.shared.snapshot.load()
    }

    /// A pass for a statement placed on `backend` as the primary, to hold until the statement
    /// ended outside a transaction; `None` when `backend` is not the published primary any more
    /// (a switchover's hold, or a new primary): place the statement again. A switchover waits
    /// for every pass to come back before it drains the old primary.
    pub fn enter_primary(&self, backend: &str) -> Option<crate::PrimaryPass> {
        self.shared
            .gate
            .enter(backend, || self.shared.snapshot.load())
    }

    /// The data path failed to use `backend`: mark it Down at once. It
    /// returns after a successful check (replicas: `recovery_checks` good
    /// checks), or in static mode after the cooldown. Unknown names are
    /// ignored.
    pub fn report_failure(&self, backend: &str, reason: &str) {
        match self.shared.report_failure(backend, reason) {
            ReportOutcome::Unchanged => {}
            // Check again soon rather than waiting out the interval.
            ReportOutcome::WakeTask(wake) => wake.notify_one(),
            ReportOutcome::StaticCooldown { cooldown, since } => {
                let Ok(runtime) = tokio::runtime::Handle::try_current() else {
                    tracing::warn!(backend, "no Tokio runtime: backend stays down");
                    return;
                };
                let shared = Arc::downgrade(&self.shared);
                let name = backend.to_string();
                runtime.spawn(async move {
                    tokio::time::sleep(cooldown).await;
                    if let Some(shared) = shared.upgrade() {
                        shared.end_static_cooldown(&name, since);
                    }
                });
            }
        }
    }

    /// A receiver that wakes at every publication of a new topology (mark it seen, look at
    /// [`MonitorHandle::current`], then wait on `changed()`: nothing published in between is
    /// missed).
    pub fn updates(&self) -> tokio::sync::watch::Receiver<u64> {
        self.shared.published.subscribe()
    }

    /// Waits until there is exactly one usable primary, or `timeout`.
    /// Woken by every publication; no polling.
    pub async fn wait_for_primary(&self, timeout: Duration) -> Result<Arc<Topology>, NoPrimary> {
        let mut updates = self.shared.published.subscribe();
        let wait = async {
            loop {
                let topology = self.snapshot();
                if topology.primary().is_some() {
                    return Some(topology);
                }
                if updates.changed().await.is_err() {
                    return None;
                }
            }
        };
        match tokio::time::timeout(timeout, wait).await {
            Ok(Some(topology)) => Ok(topology),
            _ => Err(NoPrimary {
                state: self.shared.primary_state(),
                waited: timeout,
            }),
        }
    }

    /// A planned switchover to `req.target` (see [`crate::switchover`]).
    pub async fn switchover(
        &self,
        req: crate::switchover::SwitchoverRequest,
    ) -> Result<crate::switchover::SwitchoverReport, crate::switchover::SwitchoverError> {
        let result = crate::switchover::run(&self.shared, req).await;
        // Every backend is checked again at once, so the monitor confirms the new roles.
        let registry = self.shared.lock();
        for task in registry.tasks.values() {
            task.wake.notify_one();
        }
        result
    }

    /// Hot reload: new settings and backend list. New backends start in
    /// Starting, removed ones stop being watched, a changed address restarts
    /// that backend's watch; others keep their state. In static mode the
    /// settings are ignored and new backends start Up.
    pub fn reconfigure(&self, settings: MonitorSettings, backends: Vec<BackendSpec>) {
        let mut registry = self.shared.lock();
        if registry.shut_down {
            return;
        }
        let now = SystemTime::now();
        let specs = dedup(backends);
        if registry.mode == Mode::Monitored {
            registry.heartbeat_table = heartbeat_table(&settings);
            registry.settings = Arc::new(settings);
        }
        let mut statuses = Vec::with_capacity(specs.len());
        for spec in &specs {
            let kept = registry
                .statuses
                .iter()
                .find(|s| s.name == spec.name && s.address == spec.address)
                .cloned();
            match kept {
                Some(mut status) => {
                    status.pinned_primary = spec.pinned_primary;
                    statuses.push(status);
                }
                None => {
                    if let Some(task) = registry.tasks.remove(&spec.name) {
                        task.handle.abort();
                    }
                    match registry.mode {
                        Mode::Monitored => {
                            statuses.push(BackendStatus::starting(spec, now));
                            self.start_task(&mut registry, spec);
                        }
                        Mode::Static { .. } => {
                            statuses.push(static_status(spec, spec.pinned_primary, now));
                        }
                    }
                }
            }
        }
        let removed: Vec<String> = registry
            .tasks
            .keys()
            .filter(|name| !specs.iter().any(|s| &s.name == *name))
            .cloned()
            .collect();
        for name in removed {
            if let Some(task) = registry.tasks.remove(&name) {
                task.handle.abort();
            }
        }
        registry.statuses = statuses;
        self.sync_heartbeat_task(&mut registry);
        self.shared.publish(&mut registry);
    }

    /// Changes of state and role, and of the primary; for metrics and logs.
    pub fn subscribe_events(&self) -> broadcast::Receiver<StateChange> {
        self.shared.events.subscribe()
    }

    /// Stops all checking. The last snapshot stays readable.
    pub fn shutdown(&self) {
        let mut registry = self.shared.lock();
        registry.shut_down = true;
        registry.abort_tasks();
    }

    fn start_task(&self, registry: &mut Registry, spec: &BackendSpec) {
        let id = registry.next_task_id;
        registry.next_task_id = registry.next_task_id.wrapping_add(1);
        let wake = Arc::new(Notify::new());
        let handle = tokio::spawn(backend_task::run(
            Arc::downgrade(&self.shared),
            spec.name.clone(),
            spec.address.clone(),
            id,
            Arc::clone(&wake),
        ));
        registry
            .tasks
            .insert(spec.name.clone(), BackendTask { id, handle, wake });
    }

    /// Starts or stops the heartbeat writer to match the settings.
    fn sync_heartbeat_task(&self, registry: &mut Registry) {
        let wanted = registry.mode == Mode::Monitored && registry.heartbeat_table.is_some();
        match (&registry.heartbeat_task, wanted) {
            (None, true) => {
                let shared = Arc::downgrade(&self.shared);
                registry.heartbeat_task = Some(tokio::spawn(heartbeat::run(shared)));
            }
            (Some(task), false) => {
                task.abort();
                registry.heartbeat_task = None;
                registry.last_heartbeat_ok = None;
            }
            _ => {}
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::status::Role;
    use crate::topology::PrimaryState;

    fn specs() -> Vec<BackendSpec> {
        vec![
            BackendSpec::new("db1", "127.0.0.1:1"),
            BackendSpec::new("db2", "127.0.0.1:2").pinned(),
            BackendSpec::new("db3", "127.0.0.1:3"),
        ]
    }

    #[tokio::test]
    async fn static_topology_uses_the_pin() {
        let handle = Monitor::static_topology(specs());
        let topo = handle.snapshot();
        assert_eq!(topo.primary, PrimaryState::One("db2".into()));
        assert_eq!(topo.get("db1").unwrap().role, Role::Replica);
        assert_eq!(topo.readable_replicas().count(), 2);
        assert!(topo.backends.iter().all(|b| b.state == BackendState::Up));
        let got = handle
            .wait_for_primary(Duration::from_millis(10))
            .await
            .unwrap();
        assert_eq!(got.primary().unwrap().name, "db2");
    }

    #[tokio::test]
    async fn static_topology_without_pin_takes_the_first() {
        let specs = vec![
            BackendSpec::new("a", "127.0.0.1:1"),
            BackendSpec::new("b", "127.0.0.1:2"),
        ];
        let topo = Monitor::static_topology(specs).snapshot();
        assert_eq!(topo.primary, PrimaryState::One("a".into()));
        assert_eq!(topo.get("b").unwrap().role, Role::Replica);
    }

    #[tokio::test(start_paused = true)]
    async fn static_circuit_breaker_opens_and_closes() {
        let handle = Monitor::static_topology_with_cooldown(specs(), Duration::from_secs(3));
        let mut events = handle.subscribe_events();
        handle.report_failure("db2", "connection reset");
        let topo = handle.snapshot();
        assert_eq!(topo.get("db2").unwrap().state, BackendState::Down);
        assert_eq!(
            topo.get("db2").unwrap().reason,
            "reported by data path: connection reset"
        );
        assert_eq!(topo.primary, PrimaryState::None);
        assert!(handle
            .wait_for_primary(Duration::from_secs(1))
            .await
            .is_err());
        match events.recv().await.unwrap() {
            StateChange::Backend {
                backend, new_state, ..
            } => {
                assert_eq!(backend, "db2");
                assert_eq!(new_state, BackendState::Down);
            }
            other => panic!("unexpected {other:?}"),
        }
        // Comes back after the cooldown, waking the waiter.
        let topo = handle
            .wait_for_primary(Duration::from_secs(5))
            .await
            .unwrap();
        assert_eq!(topo.primary().unwrap().name, "db2");
        // Unknown backend names are ignored.
        handle.report_failure("nope", "x");
    }

    #[tokio::test]
    async fn static_reconfigure_adds_and_removes() {
        let handle = Monitor::static_topology(specs());
        let before = handle.snapshot().generation;
        handle.reconfigure(
            MonitorSettings::default(),
            vec![
                BackendSpec::new("db2", "127.0.0.1:2").pinned(),
                BackendSpec::new("db4", "127.0.0.1:4"),
            ],
        );
        let topo = handle.snapshot();
        assert!(topo.generation > before);
        let names: Vec<_> = topo.backends.iter().map(|b| b.name.as_str()).collect();
        assert_eq!(names, vec!["db2", "db4"]);
        assert_eq!(topo.get("db4").unwrap().state, BackendState::Up);
        assert_eq!(topo.primary, PrimaryState::One("db2".into()));
    }

    #[tokio::test]
    async fn monitored_unreachable_backends_go_down_and_shutdown_stops() {
        // Ports from dropped listeners refuse connections.
        let ports: Vec<u16> = (0..2)
            .map(|_| {
                std::net::TcpListener::bind("127.0.0.1:0")
                    .unwrap()
                    .local_addr()
                    .unwrap()
                    .port()
            })
            .collect();
        let settings = MonitorSettings {
            user: "monitor".into(),
            password: "pw".into(),
            interval: Duration::from_millis(20),
            ..MonitorSettings::default()
        };
        let handle = Monitor::spawn(
            settings,
            vec![
                BackendSpec::new("a", format!("127.0.0.1:{}", ports[0])),
                BackendSpec::new("b", format!("127.0.0.1:{}", ports[1])),
            ],
        );
        assert!(handle
            .snapshot()
            .backends
            .iter()
            .all(|b| b.state == BackendState::Starting));
        let err = handle
            .wait_for_primary(Duration::from_millis(300))
            .await
            .unwrap_err();
        assert_eq!(err.state, PrimaryState::None);
        let topo = handle.snapshot();
        for b in &topo.backends {
            assert_eq!(b.state, BackendState::Down, "{b:?}");
            assert_eq!(b.reason, "connection refused");
        }
        handle.shutdown();
        let generation = handle.snapshot().generation;
        tokio::time::sleep(Duration::from_millis(100)).await;
        assert_eq!(handle.snapshot().generation, generation);
    }
}
