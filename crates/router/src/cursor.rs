//! A session's own placement state: its round-robin position, the replica it keeps reading
//! from (`replica_affinity: session`), and the backends that failed for it recently. Changed
//! only by [`crate::place`] and [`ReadCursor::exclude`]; time is passed in.

use std::time::{Duration, Instant};

use rwproxy_monitor::Topology;

use crate::readable_set_id;

/// How long a backend that failed for a session is skipped by it.
pub const EXCLUDE_FOR: Duration = Duration::from_secs(2);

/// The replica a session reads from while `replica_affinity: session` keeps it there.
#[derive(Debug, Clone, PartialEq, Eq)]
struct ReadHome {
    backend: String,
    /// The topology generation it was last confirmed against.
    generation: u64,
    /// [`readable_set_id`] (less this session's exclusions) when it was chosen.
    readable_set: u64,
    /// Some replica was excluded for this session when it was chosen: checked again at every
    /// read, so the session may move back when the exclusion ends.
    with_exclusions: bool,
}

/// Per-session placement state.
#[derive(Debug, Clone, Default)]
pub struct ReadCursor {
    /// Round-robin position (sessions start one step apart).
    pub(crate) rr: u64,
    home: Option<ReadHome>,
    excluded: Vec<(String, Instant)>,
}

impl ReadCursor {
    /// A cursor whose round-robin position starts at `position` (a session's id: consecutive
    /// sessions then spread over the replicas).
    pub fn starting_at(position: u64) -> Self {
        Self {
            rr: position,
            ..Self::default()
        }
    }

    /// `name` failed for this session: skipped for [`EXCLUDE_FOR`].
    pub fn exclude(&mut self, name: &str, now: Instant) {
        self.excluded
            .retain(|(n, at)| n != name && now.saturating_duration_since(*at) < EXCLUDE_FOR);
        self.excluded.push((name.to_string(), now));
    }

    pub fn is_excluded(&self, name: &str, now: Instant) -> bool {
        self.excluded
            .iter()
            .any(|(n, at)| n == name && now.saturating_duration_since(*at) < EXCLUDE_FOR)
    }

    /// The replica reads stay on (`replica_affinity: session`), if one was chosen.
    pub fn read_home(&self) -> Option<&str> {
        self.home.as_ref().map(|h| h.backend.as_str())
    }

    /// Forgets the read home when the readable replicas changed since it was chosen, so that
    /// sessions spread again over a replica that joined (or came back).
    pub(crate) fn refresh_home(&mut self, topology: &Topology, now: Instant) {
        let Some(home) = &self.home else {
            return;
        };
        if !self.excluded.is_empty() {
            self.excluded
                .retain(|(_, at)| now.saturating_duration_since(*at) < EXCLUDE_FOR);
        }
        if home.generation == topology.generation
            && !home.with_exclusions
            && self.excluded.is_empty()
        {
            return;
        }
        let set = readable_set_id(topology, &|name| self.is_excluded(name, now));
        let with_exclusions = !self.excluded.is_empty();
        match &mut self.home {
            Some(home) if home.readable_set == set => {
                home.generation = topology.generation;
                home.with_exclusions = with_exclusions;
            }
            _ => self.home = None,
        }
    }

    /// Remembers the replica a read was sent to.
    pub(crate) fn set_home(&mut self, name: &str, topology: &Topology, now: Instant) {
        match &self.home {
            Some(home) if home.backend == name => {}
            _ => {
                self.home = Some(ReadHome {
                    backend: name.to_string(),
                    generation: topology.generation,
                    readable_set: readable_set_id(topology, &|n| self.is_excluded(n, now)),
                    with_exclusions: !self.excluded.is_empty(),
                })
            }
        }
    }
}
