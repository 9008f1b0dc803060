//! The routing policy, as pure functions over what they decide on: a classified statement, a
//! view of the session's state, the routing configuration, and (for reads) the monitor's
//! topology snapshot. No I/O, no locks; the session carries the decision out.
//!
//! [`decide`] answers "primary, some replica, or this named backend, and why";
//! [`choose_replica`] picks the replica for a read.

mod balance;
mod decide;

pub use balance::{choose_replica, readable_set_id, BalanceInput};
pub use decide::{decide, is_session_command, Decision, Reason, SessionView, Target};
