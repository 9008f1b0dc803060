//! What to do after the backend a statement was placed on failed it.

use rwproxy_monitor::{PrimaryState, Topology};

use crate::chosen::DestRole;

/// A failed attempt to run a statement.
#[derive(Debug, Clone, Copy)]
pub struct FailedAttempt {
    pub role: DestRole,
    /// The placement said the statement may be retried elsewhere (a read).
    pub retryable: bool,
    /// Attempts so far, this one included.
    pub attempts: u32,
    pub in_transaction: bool,
    /// The backend refused the session's login (a replica may not have a new account yet).
    pub refused_login: bool,
    /// The statement was never written to the server (connecting, logging in or writing
    /// failed): running it elsewhere cannot run it twice.
    pub never_sent: bool,
}

/// The next step after a failed attempt.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum AfterFailure {
    /// Place the statement again (the failed backend is excluded for the session); on the
    /// primary when `on_primary`.
    Retry { on_primary: bool },
    /// The primary could not be reached before the statement was sent: wait (up to
    /// `write_wait_timeout`) for the monitor to publish another primary, or to refute the
    /// failure, then run it there.
    WaitForPrimary,
    /// Answer the client with the failure.
    GiveUp,
}

/// A read that failed before any byte of its answer is retried once elsewhere; a statement
/// that never reached an unreachable primary waits for the next one; anything else (a write
/// whose outcome is unknown, anything inside a transaction) is the client's error.
pub fn after_failure(f: &FailedAttempt) -> AfterFailure {
    if f.retryable && f.attempts == 1 && !f.in_transaction {
        // A replica that has not applied an account (or grant) created a moment ago refuses
        // the login the primary accepts: the primary answers.
        return AfterFailure::Retry {
            on_primary: f.refused_login && f.role != DestRole::Primary,
        };
    }
    if f.never_sent && f.role == DestRole::Primary && !f.in_transaction && f.attempts <= 3 {
        return AfterFailure::WaitForPrimary;
    }
    AfterFailure::GiveUp
}

/// After `failed` (the primary) could not be reached: whether the topology now has a primary to
/// try — another one, or the same one said up again by a check that started after the failure
/// (`refute_window_over`: two monitor intervals have passed; the failure was the connection's
/// own).
pub fn primary_replaced(topology: &Topology, failed: &str, refute_window_over: bool) -> bool {
    match &topology.primary {
        PrimaryState::One(p) if p.as_str() != failed => true,
        PrimaryState::One(_) => {
            refute_window_over && topology.get(failed).is_some_and(|b| b.is_up())
        }
        _ => false,
    }
}
