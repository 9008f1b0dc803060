//! Graceful shutdown, in phases every session and the accept loops can wait for.
//!
//! On SIGTERM the process announces the drain (`/ready` answers 503) and keeps serving for
//! `shutdown.delay`, while load balancers and Kubernetes take it out of rotation; then it stops
//! accepting and sessions close at their next boundary outside a transaction (idle ones at
//! once); at `shutdown.timeout` whatever still runs is cut off with ERR 1053. The phases only
//! move forward.

use std::sync::atomic::{AtomicU8, Ordering};

use tokio::sync::Notify;

/// Where the shutdown stands.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
#[repr(u8)]
pub enum Phase {
    /// Normal operation.
    Serving = 0,
    /// Shutting down: `/ready` says so; clients are still accepted and served as usual.
    Announced = 1,
    /// No new connections; sessions close at their next boundary outside a transaction.
    Closing = 2,
    /// Out of time: statements still running get ERR 1053 and every session closes.
    Stopping = 3,
}

impl Phase {
    fn from_u8(v: u8) -> Phase {
        match v {
            0 => Phase::Serving,
            1 => Phase::Announced,
            2 => Phase::Closing,
            _ => Phase::Stopping,
        }
    }
}

/// The process's drain state.
#[derive(Debug, Default)]
pub struct Drain {
    phase: AtomicU8,
    changed: Notify,
}

impl Drain {
    #[inline]
    pub fn phase(&self) -> Phase {
        Phase::from_u8(self.phase.load(Ordering::Acquire))
    }

    /// Moves to `to` (never back) and wakes everyone waiting.
    pub fn advance(&self, to: Phase) {
        self.phase.fetch_max(to as u8, Ordering::AcqRel);
        self.changed.notify_waiters();
    }

    /// Resolves once the phase is `at` or later.
    pub async fn reached(&self, at: Phase) {
        loop {
            let changed = self.changed.notified();
            tokio::pin!(changed);
            // Registered before the check, so an advance in between is not missed.
            changed.as_mut().enable();
            if self.phase() >= at {
                return;
            }
            changed.await;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::Arc;

    #[tokio::test]
    async fn phases_only_move_forward_and_wake_waiters() {
        let drain = Arc::new(Drain::default());
        assert_eq!(drain.phase(), Phase::Serving);
        let waiter = {
            let drain = drain.clone();
            tokio::spawn(async move { drain.reached(Phase::Closing).await })
        };
        drain.advance(Phase::Announced);
        tokio::task::yield_now().await;
        assert!(!waiter.is_finished());
        drain.advance(Phase::Closing);
        waiter.await.unwrap();
        drain.advance(Phase::Announced);
        assert_eq!(drain.phase(), Phase::Closing, "never back");
        // Already reached: at once.
        drain.reached(Phase::Announced).await;
    }
}
