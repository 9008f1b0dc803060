//! Replica affinity (`routing.replica_affinity: session`): the replica a session keeps reading
//! from, and when it must choose again: its replica stopped being usable, or the set of usable
//! replicas changed (one joined or came back, so sessions spread over it again).

use rwproxy_config::{Config, ReplicaAffinity};
use rwproxy_monitor::Topology;
use rwproxy_router::readable_set_id;

use crate::query::EXCLUDE_FOR;
use crate::session::Session;

/// The replica a session reads from while `replica_affinity: session` keeps it there.
#[derive(Debug, Clone)]
pub(crate) struct ReadHome {
    pub backend: String,
    /// The topology generation it was last confirmed against.
    pub generation: u64,
    /// [`readable_set_id`] (less this session's exclusions) when it was chosen.
    pub readable_set: u64,
    /// Some replica was excluded for this session when it was chosen: checked again at every
    /// read, so the session may move back when the exclusion ends.
    pub with_exclusions: bool,
}

impl Session {
    /// The replica a read should stay on, under `replica_affinity: session`: the last one,
    /// unless the set of readable replicas changed since it was chosen (call
    /// [`Session::refresh_read_home`] with the same topology first).
    pub(crate) fn preferred_replica(&self, config: &Config) -> Option<&str> {
        match config.routing.replica_affinity {
            ReplicaAffinity::Session => self.read_home.as_ref().map(|h| h.backend.as_str()),
            ReplicaAffinity::Statement => None,
        }
    }

    /// Forgets the read home when the readable replicas changed since it was chosen, so that
    /// sessions spread again over a replica that joined (or came back).
    pub(crate) fn refresh_read_home(&mut self, topology: &Topology) {
        let Some(home) = &self.read_home else {
            return;
        };
        if !self.excluded.is_empty() {
            self.excluded.retain(|(_, at)| at.elapsed() < EXCLUDE_FOR);
        }
        if home.generation == topology.generation
            && !home.with_exclusions
            && self.excluded.is_empty()
        {
            return;
        }
        let set = readable_set_id(topology, &|name| self.is_excluded(name));
        let with_exclusions = !self.excluded.is_empty();
        match &mut self.read_home {
            Some(home) if home.readable_set == set => {
                home.generation = topology.generation;
                home.with_exclusions = with_exclusions;
            }
            _ => self.read_home = None,
        }
    }

    /// Remembers the replica a read was sent to.
    pub(crate) fn set_read_home(&mut self, name: &str, topology: &Topology) {
        match &mut self.read_home {
            Some(home) if home.backend == name => {}
            _ => {
                self.read_home = Some(ReadHome {
                    backend: name.to_string(),
                    generation: topology.generation,
                    readable_set: readable_set_id(topology, &|n| self.is_excluded(n)),
                    with_exclusions: !self.excluded.is_empty(),
                })
            }
        }
    }
}
