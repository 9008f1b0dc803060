//! Carrying out the router's placement ([`rwproxy_router::place`]). The router decides; the
//! session only does the I/O a placement may ask for — wait for the monitor to publish a
//! primary (woken by the publication, not by polling), ask a replica to confirm a GTID
//! position — and places again with what it learned.

use std::sync::Arc;
use std::time::Instant;

use rwproxy_config::Consistency;
use rwproxy_router::{
    place, primary_replaced, CausalStep, Decision, DestRole, PlaceInput, Placement, PrimaryWait,
    Reason, Refusal, Target,
};

use crate::session::Session;

/// A statement placed on one backend (the router's [`rwproxy_router::Chosen`], owned).
#[derive(Debug, Clone)]
pub(crate) struct Placed {
    pub backend: Arc<str>,
    pub role: DestRole,
    pub reason: Reason,
    /// A read that may be retried elsewhere if this backend fails before answering.
    pub retryable: bool,
}

/// A routing decision that owns its backend name, so that the session can be borrowed mutably
/// while carrying it out.
#[derive(Debug, Clone)]
pub(crate) struct Routed {
    pub target: OwnedTarget,
    pub reason: Reason,
    pub consistency: Consistency,
}

#[derive(Debug, Clone)]
pub(crate) enum OwnedTarget {
    Primary,
    Replica,
    Backend(String),
    SessionHome,
}

impl Routed {
    pub(crate) fn new(d: &Decision<'_>) -> Self {
        let target = match d.target {
            Target::Backend(b) => OwnedTarget::Backend(b.to_string()),
            Target::Primary => OwnedTarget::Primary,
            Target::Replica => OwnedTarget::Replica,
            Target::SessionHome => OwnedTarget::SessionHome,
        };
        Self {
            target,
            reason: d.reason,
            consistency: d.consistency,
        }
    }

    /// To the primary (for a write, or a statement that can only run there).
    pub(crate) fn primary(reason: Reason) -> Self {
        Self {
            target: OwnedTarget::Primary,
            reason,
            consistency: Consistency::Eventual,
        }
    }

    pub(crate) fn decision(&self) -> Decision<'_> {
        let target = match &self.target {
            OwnedTarget::Primary => Target::Primary,
            OwnedTarget::Replica => Target::Replica,
            OwnedTarget::Backend(b) => Target::Backend(b),
            OwnedTarget::SessionHome => Target::SessionHome,
        };
        Decision {
            target,
            reason: self.reason,
            consistency: self.consistency,
        }
    }
}

/// The answer of a replica asked to confirm a GTID position.
enum Confirmation {
    NotAsked,
    Confirmed(Arc<str>),
    NotConfirmed { timed_out: bool },
}

/// One placement, owned (nothing borrowed from the snapshots).
enum Step {
    Run(Placed, &'static [rwproxy_router::CausalOutcome]),
    Wait,
    Confirm {
        replica: Arc<str>,
        position: Arc<rwproxy_monitor::GtidPosition>,
        timeout: std::time::Duration,
    },
    Refuse(Refusal),
}

impl Session {
    /// Places a routed statement on one backend, doing the waits the placement asks for.
    pub(crate) async fn place(&mut self, routed: &Routed) -> Result<Placed, Refusal> {
        let decision = routed.decision();
        let mut confirmation = Confirmation::NotAsked;
        let mut updates: Option<tokio::sync::watch::Receiver<u64>> = None;
        let mut deadline: Option<tokio::time::Instant> = None;
        loop {
            let expired = deadline.is_some_and(|d| tokio::time::Instant::now() >= d);
            match self.place_once(&decision, &confirmation, expired) {
                Step::Run(placed, causal) => {
                    if placed.role == DestRole::Primary && self.primary_pass.is_none() {
                        match self.ctx.monitor().enter_primary(&placed.backend) {
                            Some(pass) => self.primary_pass = Some(pass),
                            // A switchover's hold (or a new primary) was published since the
                            // placement: placed again, the statement waits for the new primary.
                            None => continue,
                        }
                    }
                    for outcome in causal {
                        self.ctx.observer.causal_read(*outcome);
                    }
                    return Ok(placed);
                }
                Step::Refuse(refusal) => return Err(refusal),
                Step::Confirm {
                    replica,
                    position,
                    timeout,
                } => {
                    confirmation = match self.wait_for_position(&replica, &position, timeout).await
                    {
                        Ok(true) => Confirmation::Confirmed(replica),
                        Ok(false) => Confirmation::NotConfirmed { timed_out: true },
                        Err(err) => {
                            self.note_backend_failure(&err);
                            Confirmation::NotConfirmed { timed_out: false }
                        }
                    };
                }
                Step::Wait => match (&mut updates, deadline) {
                    (Some(updates), Some(deadline)) => {
                        // Woken by the next publication (or the deadline), then placed again.
                        tokio::select! {
                            changed = updates.changed() => {
                                if changed.is_err() {
                                    tokio::time::sleep_until(deadline).await;
                                }
                            }
                            _ = tokio::time::sleep_until(deadline) => {}
                        }
                    }
                    _ => {
                        // Subscribed first, then placed again: a publication in between is
                        // not missed.
                        let wait = self.ctx.config_guard().monitor.write_wait_timeout;
                        updates = Some(self.ctx.monitor().updates());
                        deadline = Some(tokio::time::Instant::now() + wait);
                    }
                },
            }
        }
    }

    /// One call of the router with the current snapshots.
    fn place_once(
        &mut self,
        decision: &Decision<'_>,
        confirmation: &Confirmation,
        wait_expired: bool,
    ) -> Step {
        let config = self.ctx.config_guard();
        let topology = self.ctx.monitor().current();
        let ctx = &self.ctx;
        let weight = |name: &str| config.backend(name).map(|b| b.weight).unwrap_or(1);
        let connections = |name: &str| ctx.backend_connections(name);
        let proxy_write = || ctx.global_write();
        let input = PlaceInput {
            topology: &topology,
            routing: &config.routing,
            weight: &weight,
            connections: &connections,
            open_backend: self.backends.names().next(),
            session_write: self.state.last_write.as_ref(),
            proxy_write: &proxy_write,
            write_position_unknown: self.state.write_position_unknown,
            primary_wait: if wait_expired {
                PrimaryWait::Expired(config.monitor.write_wait_timeout)
            } else {
                PrimaryWait::Allowed
            },
            causal: match confirmation {
                Confirmation::NotAsked => CausalStep::Choose,
                Confirmation::Confirmed(replica) => CausalStep::Confirmed(replica),
                Confirmation::NotConfirmed { timed_out } => CausalStep::NotConfirmed {
                    timed_out: *timed_out,
                },
            },
            now: Instant::now(),
        };
        match place(decision, &input, &mut self.cursor) {
            Placement::Run(chosen) => Step::Run(
                Placed {
                    backend: self.names.get(chosen.backend),
                    role: chosen.role,
                    reason: chosen.reason,
                    retryable: chosen.retryable,
                },
                chosen.causal,
            ),
            Placement::WaitForPrimary => Step::Wait,
            Placement::Confirm {
                replica,
                position,
                timeout,
            } => Step::Confirm {
                replica: self.names.get(replica),
                position,
                timeout,
            },
            Placement::Refuse(refusal) => Step::Refuse(refusal),
        }
    }

    /// After `failed` (the primary) could not be reached: waits until the monitor publishes a
    /// primary other than it, or says it is up again after a check that started later (a
    /// refuted report), up to `monitor.write_wait_timeout`. Whether to try again.
    pub(crate) async fn wait_for_another_primary(&self, failed: &str) -> bool {
        let (wait, interval) = {
            let config = self.ctx.config_guard();
            (config.monitor.write_wait_timeout, config.monitor.interval)
        };
        let mut updates = self.ctx.monitor().updates();
        let started = tokio::time::Instant::now();
        let deadline = started + wait;
        // The monitor checks the backend at once after a report; still up two intervals later,
        // it refuted the report (the failure was this connection's own).
        let refuted_after = started + interval.saturating_mul(2);
        loop {
            let now = tokio::time::Instant::now();
            if primary_replaced(&self.ctx.monitor().current(), failed, now >= refuted_after) {
                return true;
            }
            if now >= deadline {
                return false;
            }
            // The refutation window ends without a publication of its own.
            let wake = if now < refuted_after {
                refuted_after.min(deadline)
            } else {
                deadline
            };
            tokio::select! {
                changed = updates.changed() => {
                    if changed.is_err() {
                        tokio::time::sleep_until(wake).await;
                    }
                }
                _ = tokio::time::sleep_until(wake) => {}
            }
        }
    }
}
