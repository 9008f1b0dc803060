//! The routing policy, as pure functions over what they decide on: a classified statement, a
//! view of the session's state, the routing configuration, and (for reads) the monitor's
//! topology snapshot. No I/O, no locks; the session carries the decision out.
//!
//! [`decide`] answers "primary, some replica, or this named backend, and why"; [`place`]
//! resolves that to one backend of the monitor's current topology (or says to wait for a
//! primary, to confirm a GTID position on a replica first, or to refuse), moving the session's
//! [`ReadCursor`]; [`choose_replica`] is the balancing step; [`after_failure`] says what
//! follows a failed attempt.

mod balance;
mod chosen;
mod cursor;
mod decide;
mod failure;
mod place;
#[cfg(test)]
mod place_tests;

pub use balance::{choose_replica, readable_set_id, BalanceInput};
pub use chosen::{CausalOutcome, Chosen, DestRole, Refusal};
pub use cursor::{ReadCursor, EXCLUDE_FOR};
pub use decide::{
    decide, decide_execute, for_prepared, is_session_command, Decision, Reason, SessionView, Target,
};
pub use failure::{after_failure, primary_replaced, AfterFailure, FailedAttempt};
pub use place::{place, CausalStep, PlaceInput, Placement, PrimaryWait};
