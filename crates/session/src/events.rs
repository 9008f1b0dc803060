//! Signals to one session from outside it: `KILL CONNECTION`, the shutdown's phases, the down
//! watch. One bit per kind of signal and the session's waker.
//!
//! A session is one task, so every place it waits (the command loop, a statement's relay, the
//! shutdown's cut-off around a statement) registers the same waker: a signal wakes the task,
//! and each waiting place looks at its own bits. A bit stays raised until a place that waits
//! for it takes it, so a signal that arrives while nobody waits for it is not lost. Waiting
//! costs two atomic operations per poll, where a `tokio::sync::Notify` per kind took a lock to
//! enter and leave its waiter list at every statement.

use std::fmt;
use std::future::Future;
use std::ops::BitOr;
use std::sync::atomic::{AtomicU8, Ordering};
use std::task::{Context, Poll};

use atomic_waker::AtomicWaker;

/// A set of signals.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Signals(u8);

impl Signals {
    /// `KILL CONNECTION` named this session.
    pub const KILLED: Signals = Signals(1);
    /// The shutdown stopped accepting: close between statements, outside a transaction.
    pub const DRAIN_CLOSING: Signals = Signals(2);
    /// The shutdown ran out of time: close now, cutting off a running statement.
    pub const DRAIN_STOP: Signals = Signals(4);
    /// The monitor declared down the backend of the statement in flight (the session checks
    /// the topology: a signal left over from an earlier statement ends nothing).
    pub const BACKEND_DOWN: Signals = Signals(8);

    pub fn contains(self, other: Signals) -> bool {
        self.0 & other.0 == other.0
    }
}

impl BitOr for Signals {
    type Output = Signals;
    fn bitor(self, rhs: Signals) -> Signals {
        Signals(self.0 | rhs.0)
    }
}

/// The signals raised for one session and not yet taken, and its waker.
#[derive(Default)]
pub struct SessionEvents {
    pending: AtomicU8,
    waker: AtomicWaker,
}

impl fmt::Debug for SessionEvents {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("SessionEvents")
            .field("pending", &self.pending.load(Ordering::Relaxed))
            .finish()
    }
}

impl SessionEvents {
    /// Raises `signals` and wakes the session.
    pub fn raise(&self, signals: Signals) {
        self.pending.fetch_or(signals.0, Ordering::AcqRel);
        self.waker.wake();
    }

    /// Takes whichever of `signals` are raised.
    fn take(&self, signals: Signals) -> Signals {
        if self.pending.load(Ordering::Acquire) & signals.0 == 0 {
            return Signals(0);
        }
        Signals(self.pending.fetch_and(!signals.0, Ordering::AcqRel) & signals.0)
    }

    fn poll_wait(&self, cx: &mut Context<'_>, signals: Signals) -> Poll<Signals> {
        // Registered before looking, so that a signal raised in between wakes the task.
        self.waker.register(cx.waker());
        let got = self.take(signals);
        if got.0 != 0 {
            Poll::Ready(got)
        } else {
            Poll::Pending
        }
    }

    /// Waits until one of `signals` is raised; takes and returns those raised.
    pub fn wait(&self, signals: Signals) -> impl Future<Output = Signals> + '_ {
        std::future::poll_fn(move |cx| self.poll_wait(cx, signals))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::Arc;
    use std::time::Duration;

    #[tokio::test]
    async fn a_signal_raised_before_the_wait_is_not_lost_and_is_taken_once() {
        let events = SessionEvents::default();
        events.raise(Signals::KILLED);
        let got = events.wait(Signals::KILLED | Signals::DRAIN_STOP).await;
        assert_eq!(got, Signals::KILLED);
        // Taken: a second wait does not end.
        let again = tokio::time::timeout(Duration::from_millis(20), events.wait(Signals::KILLED));
        assert!(again.await.is_err());
    }

    #[tokio::test]
    async fn a_wait_ignores_other_signals_and_leaves_them_raised() {
        let events = SessionEvents::default();
        events.raise(Signals::BACKEND_DOWN);
        let other = tokio::time::timeout(
            Duration::from_millis(20),
            events.wait(Signals::KILLED | Signals::DRAIN_CLOSING),
        );
        assert!(other.await.is_err());
        assert_eq!(
            events.wait(Signals::BACKEND_DOWN).await,
            Signals::BACKEND_DOWN
        );
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn a_signal_from_another_thread_wakes_a_waiting_session() {
        let events = Arc::new(SessionEvents::default());
        let waiter = {
            let events = events.clone();
            tokio::spawn(async move { events.wait(Signals::DRAIN_STOP).await })
        };
        tokio::time::sleep(Duration::from_millis(20)).await;
        std::thread::spawn({
            let events = events.clone();
            move || events.raise(Signals::DRAIN_STOP)
        })
        .join()
        .unwrap();
        let got = tokio::time::timeout(Duration::from_secs(5), waiter)
            .await
            .expect("woken")
            .unwrap();
        assert!(got.contains(Signals::DRAIN_STOP));
    }
}
