//! What the admin HTTP endpoint serves: metrics refreshed from the latest monitor snapshot,
//! the snapshot itself, the running configuration (secrets redacted) and readiness.

use std::sync::Arc;

use rwproxy_admin::{AdminError, AdminState, BackendMetricsView, Metrics};
use rwproxy_monitor::{BackendState, LagSource, PrimaryState, Role};
use rwproxy_session::ProxyContext;

pub struct State {
    pub ctx: Arc<ProxyContext>,
    pub metrics: Metrics,
    pub digests: Arc<rwproxy_admin::DigestStore>,
}

impl AdminState for State {
    fn metrics_text(&self) -> Result<String, AdminError> {
        let topology = self.ctx.monitor().snapshot();
        let views: Vec<BackendMetricsView> = topology
            .backends
            .iter()
            .map(|b| BackendMetricsView {
                name: b.name.clone(),
                up: b.is_up(),
                role: match b.role {
                    Role::Primary => rwproxy_admin::BackendRole::Primary,
                    Role::Replica => rwproxy_admin::BackendRole::Replica,
                    Role::Unknown => rwproxy_admin::BackendRole::Unknown,
                },
                state: match b.state {
                    BackendState::Up => rwproxy_admin::BackendState::Up,
                    BackendState::Down => rwproxy_admin::BackendState::Down,
                    BackendState::Lagging => rwproxy_admin::BackendState::Lagging,
                    BackendState::ReplicationBroken => {
                        rwproxy_admin::BackendState::ReplicationBroken
                    }
                    BackendState::Starting => rwproxy_admin::BackendState::Starting,
                },
                lag_seconds: b.lag.map(|d| d.as_secs_f64()),
                lag_source: match b.lag_source {
                    LagSource::Heartbeat => rwproxy_admin::LagSource::Heartbeat,
                    LagSource::SecondsBehindMaster => rwproxy_admin::LagSource::SecondsBehindMaster,
                    LagSource::None => rwproxy_admin::LagSource::None,
                },
                check_latency: b.last_check_latency,
                connections: self.ctx.backend_connections(&b.name) as u64,
                pool_idle: self.ctx.pool_idle(&b.name),
                pool_pinned: self.ctx.pinned_connections(&b.name) as u64,
                galera_recv_queue: b.galera.as_ref().map(|g| g.recv_queue),
                galera_flow_control_paused: b
                    .galera
                    .as_ref()
                    .and_then(|g| g.flow_control_paused.as_deref())
                    .and_then(|v| v.trim().parse().ok()),
            })
            .collect();
        self.metrics.set_backends(&views);
        let writable = topology
            .backends
            .iter()
            // Every Galera node is writable; the one rwproxy writes to is what counts.
            .filter(|b| {
                b.is_up()
                    && match b.galera {
                        Some(_) => b.role == Role::Primary,
                        None => !b.read_only,
                    }
            })
            .count();
        self.metrics.set_writable_backends(writable);
        let export_top = self.ctx.config_guard().stats.export_top;
        self.metrics.set_digests(&self.digests.top(export_top));
        self.metrics.encode()
    }

    fn backends_json(&self) -> serde_json::Value {
        let mut json = self.ctx.monitor().snapshot().to_json();
        let cap = self.ctx.config_guard().pool.max_per_backend;
        if let Some(backends) = json.get_mut("backends").and_then(|b| b.as_array_mut()) {
            for backend in backends {
                let Some(name) = backend.get("name").and_then(|n| n.as_str()) else {
                    continue;
                };
                let open = self.ctx.backend_connections(name) as u64;
                let idle = self.ctx.pool_idle(name);
                let pool = serde_json::json!({
                    "open": open,
                    "idle": idle,
                    "busy": open.saturating_sub(idle),
                    "pinned": self.ctx.pinned_connections(name),
                    "max_per_backend": cap,
                });
                if let Some(map) = backend.as_object_mut() {
                    map.insert("pool".into(), pool);
                }
            }
        }
        if let Some(map) = json.as_object_mut() {
            map.insert("accounts".into(), self.ctx.accounts_json());
        }
        json
    }

    fn config_json(&self) -> serde_json::Value {
        self.ctx.config().redacted_json()
    }

    fn queries_json(
        &self,
        sort: rwproxy_admin::DigestSort,
        limit: usize,
        reset: bool,
    ) -> serde_json::Value {
        let doc = self.digests.to_json(sort, limit);
        if reset {
            self.digests.reset();
        }
        doc
    }

    fn switchover(&self, target: Option<String>) -> rwproxy_admin::SwitchoverFuture {
        let monitor = self.ctx.monitor().clone();
        let request = crate::monitor_settings::switchover_request(&self.ctx.config(), target);
        Box::pin(async move {
            let request = request.map_err(|why| (409, why))?;
            match monitor.switchover(request).await {
                Ok(report) => serde_json::to_value(&report).map_err(|e| (500, e.to_string())),
                Err(e) => {
                    tracing::warn!(error = %e, "switchover refused");
                    Err((e.http_status(), e.to_string()))
                }
            }
        })
    }

    fn sessions_json(&self) -> serde_json::Value {
        self.ctx.registry.to_json()
    }

    fn ready(&self) -> Result<(), String> {
        if self.ctx.drain.phase() != rwproxy_session::drain::Phase::Serving {
            return Err("shutting down".into());
        }
        match &self.ctx.monitor().snapshot().primary {
            PrimaryState::One(_) => Ok(()),
            PrimaryState::None => Err("no primary is known".into()),
            PrimaryState::Conflict(names) => {
                Err(format!("several writable backends: {}", names.join(", ")))
            }
        }
    }
}
