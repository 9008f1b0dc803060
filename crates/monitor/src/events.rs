//! State-change events (for metrics and logs) and how they are derived by
//! comparing two consecutive topology snapshots.

use crate::galera::WriterRule;
use crate::status::{BackendState, Role};
use crate::topology::{PrimaryState, Topology};

/// Something observable changed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum StateChange {
    /// A backend's state or role changed.
    Backend {
        backend: String,
        old_state: BackendState,
        new_state: BackendState,
        old_role: Role,
        new_role: Role,
        reason: String,
    },
    /// The primary changed (including to none or to a conflict).
    Primary {
        old: PrimaryState,
        new: PrimaryState,
        /// Galera: the rule of the writer choice that picked the new writer.
        rule: Option<WriterRule>,
    },
}

/// The changes from `old` to `new`, backends first. A backend new in `new`
/// is compared against Starting/Unknown; removed backends produce nothing.
pub fn diff(old: &Topology, new: &Topology) -> Vec<StateChange> {
    let mut changes = Vec::new();
    for b in &new.backends {
        let (old_state, old_role) = old
            .get(&b.name)
            .map(|o| (o.state, o.role))
            .unwrap_or((BackendState::Starting, Role::Unknown));
        if old_state != b.state || old_role != b.role {
            changes.push(StateChange::Backend {
                backend: b.name.clone(),
                old_state,
                new_state: b.state,
                old_role,
                new_role: b.role,
                reason: b.reason.clone(),
            });
        }
    }
    if old.primary != new.primary {
        let rule = match &new.primary {
            PrimaryState::One(name) => new.get(name).and_then(|b| b.writer_rule),
            _ => None,
        };
        changes.push(StateChange::Primary {
            old: old.primary.clone(),
            new: new.primary.clone(),
            rule,
        });
    }
    changes
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::settings::BackendSpec;
    use crate::status::BackendStatus;
    use std::time::SystemTime;

    fn topo(states: &[(&str, BackendState, Role)], primary: PrimaryState) -> Topology {
        let backends = states
            .iter()
            .map(|(name, state, role)| {
                let mut b = BackendStatus::starting(
                    &BackendSpec::new(*name, "127.0.0.1:1"),
                    SystemTime::UNIX_EPOCH,
                );
                b.state = *state;
                b.role = *role;
                b.reason = format!("{name} is {state}");
                b
            })
            .collect();
        Topology {
            generation: 0,
            backends,
            primary,
        }
    }

    #[test]
    fn reports_state_role_and_primary_changes() {
        let old = topo(
            &[
                ("db1", BackendState::Up, Role::Primary),
                ("db2", BackendState::Up, Role::Replica),
            ],
            PrimaryState::One("db1".into()),
        );
        let new = topo(
            &[
                ("db1", BackendState::Down, Role::Unknown),
                ("db2", BackendState::Up, Role::Replica),
                ("db3", BackendState::Up, Role::Replica),
            ],
            PrimaryState::None,
        );
        let changes = diff(&old, &new);
        assert_eq!(changes.len(), 3, "{changes:?}");
        assert_eq!(
            changes[0],
            StateChange::Backend {
                backend: "db1".into(),
                old_state: BackendState::Up,
                new_state: BackendState::Down,
                old_role: Role::Primary,
                new_role: Role::Unknown,
                reason: "db1 is down".into(),
            }
        );
        assert!(
            matches!(&changes[1], StateChange::Backend { backend, old_state: BackendState::Starting, .. } if backend == "db3")
        );
        assert_eq!(
            changes[2],
            StateChange::Primary {
                old: PrimaryState::One("db1".into()),
                new: PrimaryState::None,
                rule: None,
            }
        );
    }

    #[test]
    fn nothing_changed_means_no_events() {
        let t = topo(
            &[("db1", BackendState::Up, Role::Primary)],
            PrimaryState::One("db1".into()),
        );
        assert!(diff(&t, &t.clone()).is_empty());
    }
}
