//! The statements and transactions this rwproxy has placed on the primary and not finished.
//!
//! A switchover holds new writes by publishing a topology without a primary, then waits until
//! the old primary has no open transaction. A statement placed on the primary just before the
//! hold but not yet sent (waiting for a pooled connection, say) is invisible to the server's
//! `INNODB_TRX`, and would reach the old primary after it turned read-only (error 1290). So a
//! session takes a [`PrimaryPass`] when a statement is placed on the primary and keeps it until
//! the statement ended outside a transaction; the switchover, after publishing the hold, waits
//! until no pass is out.
//!
//! Ordering (a Dekker handshake, both sides `SeqCst`): the session counts itself in, then reads
//! the published topology; the switchover publishes the hold, then reads the count. Either the
//! session sees the hold (it gives the pass back and is placed again: it waits for the new
//! primary) or the switchover sees the pass (it waits for it).

use std::sync::atomic::{fence, AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::Duration;

use tokio::sync::Notify;

use crate::topology::{PrimaryState, Topology};

#[derive(Default)]
pub(crate) struct PrimaryGate {
    out: AtomicUsize,
    returned: Notify,
}

/// Held while a statement or transaction placed on the primary is not finished; dropping it
/// gives it back.
pub struct PrimaryPass {
    gate: Arc<PrimaryGate>,
}

impl std::fmt::Debug for PrimaryPass {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("PrimaryPass")
    }
}

impl Drop for PrimaryPass {
    fn drop(&mut self) {
        if self.gate.out.fetch_sub(1, Ordering::SeqCst) == 1 {
            self.gate.returned.notify_waiters();
        }
    }
}

impl PrimaryGate {
    /// A pass for a statement placed on `backend` as the primary, when the topology read after
    /// counting it in (`current`) still names `backend` the primary; `None` when it does not
    /// (a hold or a new primary published since the placement).
    pub fn enter<T: std::ops::Deref<Target = Arc<Topology>>>(
        self: &Arc<Self>,
        backend: &str,
        current: impl FnOnce() -> T,
    ) -> Option<PrimaryPass> {
        self.out.fetch_add(1, Ordering::SeqCst);
        let pass = PrimaryPass {
            gate: Arc::clone(self),
        };
        fence(Ordering::SeqCst);
        let topology = current();
        match &topology.primary {
            PrimaryState::One(name) if name == backend => Some(pass),
            _ => None,
        }
    }

    /// Passes out now.
    pub fn out(&self) -> usize {
        self.out.load(Ordering::SeqCst)
    }

    /// Waits until every pass is back, up to `timeout`; the passes still out then (0: all back).
    /// Call after publishing the hold.
    pub async fn drained(&self, timeout: Duration) -> usize {
        fence(Ordering::SeqCst);
        let deadline = tokio::time::Instant::now() + timeout;
        loop {
            let returned = self.returned.notified();
            tokio::pin!(returned);
            // Registered before the count is read: a return in between is not missed.
            returned.as_mut().enable();
            let out = self.out();
            if out == 0 {
                return 0;
            }
            if tokio::time::timeout_at(deadline, returned).await.is_err() {
                return self.out();
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::status::BackendStatus;

    /// A published topology with this primary, as the monitor keeps it.
    fn topology(primary: PrimaryState) -> arc_swap::ArcSwap<Topology> {
        arc_swap::ArcSwap::from_pointee(Topology {
            generation: 1,
            backends: Vec::<BackendStatus>::new(),
            primary,
        })
    }

    #[test]
    fn a_pass_is_given_only_while_the_backend_is_the_published_primary() {
        let gate = Arc::new(PrimaryGate::default());
        let db1 = topology(PrimaryState::One("db1".into()));
        let pass = gate.enter("db1", || db1.load());
        assert!(pass.is_some());
        assert_eq!(gate.out(), 1);
        // A hold (no primary) or another primary: no pass, and nothing counted.
        let held = topology(PrimaryState::None);
        assert!(gate.enter("db1", || held.load()).is_none());
        let db2 = topology(PrimaryState::One("db2".into()));
        assert!(gate.enter("db1", || db2.load()).is_none());
        assert_eq!(gate.out(), 1);
        drop(pass);
        assert_eq!(gate.out(), 0);
    }

    #[tokio::test(start_paused = true)]
    async fn drained_waits_for_every_pass_and_gives_up_at_the_timeout() {
        let gate = Arc::new(PrimaryGate::default());
        let db1 = topology(PrimaryState::One("db1".into()));
        let a = gate.enter("db1", || db1.load());
        let b = gate.enter("db1", || db1.load());
        assert_eq!(gate.drained(Duration::from_millis(50)).await, 2);
        let waiter = {
            let gate = Arc::clone(&gate);
            tokio::spawn(async move { gate.drained(Duration::from_secs(10)).await })
        };
        tokio::time::sleep(Duration::from_millis(10)).await;
        drop(a);
        tokio::time::sleep(Duration::from_millis(10)).await;
        assert!(!waiter.is_finished(), "one pass is still out");
        drop(b);
        assert_eq!(waiter.await.ok(), Some(0));
    }
}
