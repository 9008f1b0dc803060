//! Errors returned by the monitor handle.

use std::time::Duration;

use crate::topology::PrimaryState;

/// `wait_for_primary` gave up.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("no primary after waiting {}: primary is {state}", crate::human::duration(*waited))]
pub struct NoPrimary {
    /// The primary state when the wait ended (`None` or `Conflict`).
    pub state: PrimaryState,
    pub waited: Duration,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn message_names_the_state() {
        let e = NoPrimary {
            state: PrimaryState::Conflict(vec!["db1".into(), "db2".into()]),
            waited: Duration::from_millis(1500),
        };
        assert_eq!(
            e.to_string(),
            "no primary after waiting 1.5s: primary is conflict between db1, db2"
        );
    }
}
