//! Read-your-writes through GTIDs. Every write's GTID comes back in the OK packet's session
//! state (rwproxy switches that tracking on for its backend connections); a read under
//! `session` (or `global`) consistency goes to a replica that has applied the session's (or
//! this proxy's) newest write: one the monitor already saw there, else one that confirms it
//! within `causal_read_timeout` (`MASTER_GTID_WAIT` / `WAIT_FOR_EXECUTED_GTID_SET`), else the
//! primary. A session that never wrote pays nothing.

use std::sync::Arc;

use rwproxy_config::Consistency;
use rwproxy_monitor::GtidPosition;
use rwproxy_router::{choose_replica, BalanceInput, Reason};

use crate::observer::{CausalOutcome, DestRole};
use crate::query::{Chosen, Refusal};
use crate::session::Session;

impl Session {
    /// Records the GTID a statement produced.
    pub(crate) fn note_gtid(&mut self, gtid: &str) {
        let Ok(position) = GtidPosition::parse(gtid) else {
            tracing::warn!(
                gtid,
                "unparseable GTID from session tracking; reads after this write go to the primary"
            );
            self.state.write_position_unknown = true;
            return;
        };
        match &mut self.state.last_write {
            Some(p) => {
                if Arc::make_mut(p).merge_max(&position).is_err() {
                    *p = Arc::new(position.clone());
                }
            }
            None => self.state.last_write = Some(Arc::new(position.clone())),
        }
        self.ctx.note_global_write(&position);
    }

    /// The position a read under `consistency` must see, if any.
    pub(crate) fn required_position(&self, consistency: Consistency) -> Option<Arc<GtidPosition>> {
        match consistency {
            Consistency::Eventual => None,
            Consistency::Session => self.state.last_write.clone(),
            Consistency::Global => self.ctx.global_write(),
        }
    }

    /// Picks the replica for a read that must see `consistency`'s position, or the primary.
    /// `required` is [`Session::required_position`] for the read's consistency.
    pub(crate) async fn causal_replica(
        &mut self,
        consistency: Consistency,
        required: Option<&Arc<GtidPosition>>,
    ) -> Result<Option<Chosen>, Refusal> {
        if consistency != Consistency::Eventual && self.state.write_position_unknown {
            self.ctx
                .observer
                .causal_read(CausalOutcome::PrimaryFallback);
            return Ok(Some(Chosen {
                backend: self.primary().await?,
                role: DestRole::Primary,
                reason: Reason::CausalFallback,
                retryable: false,
            }));
        }
        let Some(required) = required.cloned() else {
            return Ok(None);
        };
        let config = self.ctx.config();
        let topology = self.ctx.monitor().snapshot();
        self.refresh_read_home(&topology);
        // A replica the monitor already saw at or past the position.
        let (fresh, any, rr) = {
            let weight = |name: &str| config.backend(name).map(|b| b.weight).unwrap_or(1);
            let connections = |name: &str| self.ctx.backend_connections(name);
            let stale = |name: &str| {
                self.is_excluded(name)
                    || !topology
                        .get(name)
                        .and_then(|b| b.gtid_current_pos.as_ref())
                        .is_some_and(|p| p.contains(&required))
            };
            let excluded = |name: &str| self.is_excluded(name);
            let mut rr = self.rr;
            let fresh = choose_replica(
                &topology,
                &BalanceInput {
                    balance: config.routing.replica_balance,
                    weight: &weight,
                    connections: &connections,
                    exclude: &stale,
                    preferred: self.preferred_replica(&config),
                },
                &mut rr,
            )
            .map(|b| b.name.as_str());
            // Only when no replica is known fresh: one balancing step per read.
            let any = if fresh.is_none() {
                choose_replica(
                    &topology,
                    &BalanceInput {
                        balance: config.routing.replica_balance,
                        weight: &weight,
                        connections: &connections,
                        exclude: &excluded,
                        preferred: self.preferred_replica(&config),
                    },
                    &mut rr,
                )
                .map(|b| b.name.as_str())
            } else {
                None
            };
            (fresh, any, rr)
        };
        self.rr = rr;
        let (fresh, any) = (
            fresh.map(|n| self.names.get(n)),
            any.map(|n| self.names.get(n)),
        );
        if let Some(backend) = fresh {
            self.set_read_home(&backend, &topology);
            self.ctx.observer.causal_read(CausalOutcome::ReplicaFresh);
            return Ok(Some(Chosen {
                backend,
                role: DestRole::Replica,
                reason: Reason::Read,
                retryable: true,
            }));
        }
        let Some(candidate) = any else {
            // No replica at all: the normal no-replica fallback applies.
            return Ok(None);
        };
        // Ask the replica to confirm it has applied the position, within the timeout.
        let timeout = config.routing.causal_read_timeout;
        match self.wait_for_position(&candidate, &required, timeout).await {
            Ok(true) => {
                self.set_read_home(&candidate, &topology);
                self.ctx
                    .observer
                    .causal_read(CausalOutcome::ReplicaAfterWait);
                Ok(Some(Chosen {
                    backend: candidate,
                    role: DestRole::Replica,
                    reason: Reason::CausalWait,
                    retryable: true,
                }))
            }
            Ok(false) => {
                self.ctx.observer.causal_read(CausalOutcome::Timeout);
                self.primary_fallback().await
            }
            Err(err) => {
                self.note_backend_failure(&err);
                self.primary_fallback().await
            }
        }
    }

    /// No replica confirmed the position in time: the read goes to the primary.
    async fn primary_fallback(&mut self) -> Result<Option<Chosen>, Refusal> {
        self.ctx
            .observer
            .causal_read(CausalOutcome::PrimaryFallback);
        Ok(Some(Chosen {
            backend: self.primary().await?,
            role: DestRole::Primary,
            reason: Reason::CausalFallback,
            retryable: false,
        }))
    }

    /// Whether `backend` applies `position` within `timeout` (false on timeout).
    async fn wait_for_position(
        &mut self,
        backend: &str,
        position: &GtidPosition,
        timeout: std::time::Duration,
    ) -> Result<bool, rwproxy_backend::BackendError> {
        self.drop_if_stale(backend).await?;
        let slot = self
            .backends
            .ready(&self.ctx, backend, &self.who, &self.state)
            .await?;
        let secs = timeout.as_secs_f64();
        let sql = if slot.conn.is_mariadb() {
            format!("SELECT MASTER_GTID_WAIT('{position}', {secs:.3})")
        } else {
            format!("SELECT WAIT_FOR_EXECUTED_GTID_SET('{position}', {secs:.3})")
        };
        let outcome = slot.conn.query(&sql).await?;
        if let Some((code, _, message)) = &outcome.error {
            tracing::warn!(backend, code, %message, "GTID wait failed; reading from the primary");
            return Ok(false);
        }
        let value = outcome
            .rows
            .first()
            .and_then(|r| r.first().cloned().flatten());
        Ok(value.as_deref() == Some("0"))
    }
}
