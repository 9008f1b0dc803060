//! Ends the wait of statements whose backend the monitor declares down (a frozen or hung
//! server answers nothing, and TCP alone would wait for minutes), and closes the backend's
//! pooled connections.
//!
//! No timer per statement: one task follows the monitor's state-change events and, when a
//! backend goes down, notifies the sessions whose statement in flight waits on it
//! ([`crate::events::Signals::BACKEND_DOWN`]). A session re-checks the topology before giving up, so
//! a notification left over from an earlier statement ends nothing.

use std::sync::Arc;

use rwproxy_monitor::{BackendState, StateChange};
use tokio::sync::broadcast::error::RecvError;

use crate::context::ProxyContext;
use crate::registry::SessionHandle;

/// Follows the monitor's events for as long as the monitor runs.
pub async fn run(ctx: Arc<ProxyContext>) {
    let mut events = ctx.monitor().subscribe_events();
    loop {
        match events.recv().await {
            Ok(StateChange::Backend {
                backend,
                new_state: BackendState::Down,
                ..
            }) => {
                // Its pooled connections are dead or about to be: none is handed out again.
                ctx.pool_backend_down(&backend);
                notify_waiting_on(&ctx, |name| name == backend)
            }
            Ok(_) => {}
            // Events were missed: check every statement in flight against the topology.
            Err(RecvError::Lagged(_)) => {
                let topology = ctx.monitor().snapshot();
                notify_waiting_on(&ctx, |name| {
                    topology
                        .get(name)
                        .is_some_and(|b| b.state == BackendState::Down)
                });
            }
            Err(RecvError::Closed) => return,
        }
    }
}

fn notify_waiting_on(ctx: &ProxyContext, down: impl Fn(&str) -> bool) {
    let mut woken = 0usize;
    ctx.registry.for_each(|session: &SessionHandle| {
        let waiting = session
            .in_flight()
            .is_some_and(|flight| down(&flight.backend))
            || session.connecting().is_some_and(|name| down(&name));
        if waiting {
            session.events.raise(crate::events::Signals::BACKEND_DOWN);
            woken += 1;
        }
    });
    if woken > 0 {
        tracing::info!(
            statements = woken,
            "backend declared down: ending the statements waiting on it"
        );
    }
}

/// Whether the monitor currently has `backend` down.
pub(crate) fn is_down(ctx: &ProxyContext, backend: &str) -> bool {
    ctx.monitor()
        .current()
        .get(backend)
        .is_some_and(|b| b.state == BackendState::Down)
}
