//! The published snapshot: every backend's status plus who the primary is.
//! Also the pure role decision over all backends.

use std::fmt;
use std::time::{Duration, SystemTime};

use serde_json::{json, Value};

use crate::galera::{self, TopologyMode, WriterCandidate};
use crate::status::{BackendState, BackendStatus, Role};

/// Who takes writes.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum PrimaryState {
    /// Exactly one primary, by backend name.
    One(String),
    /// No usable primary.
    None,
    /// Several writable backends (sorted names): writes must not go anywhere.
    Conflict(Vec<String>),
}

impl fmt::Display for PrimaryState {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::One(name) => write!(f, "{name}"),
            Self::None => f.write_str("none"),
            Self::Conflict(names) => write!(f, "conflict between {}", names.join(", ")),
        }
    }
}

/// An immutable view of all backends, published after every check.
#[derive(Debug, Clone, PartialEq)]
pub struct Topology {
    /// Grows by one with every publication.
    pub generation: u64,
    /// In configuration order.
    pub backends: Vec<BackendStatus>,
    pub primary: PrimaryState,
}

impl Topology {
    /// The primary, when there is exactly one and it is up.
    pub fn primary(&self) -> Option<&BackendStatus> {
        match &self.primary {
            PrimaryState::One(name) => self.get(name).filter(|b| b.is_up()),
            _ => None,
        }
    }

    /// Replicas that may take reads now.
    pub fn readable_replicas(&self) -> impl Iterator<Item = &BackendStatus> {
        self.backends.iter().filter(|b| b.is_readable_replica())
    }

    pub fn get(&self, name: &str) -> Option<&BackendStatus> {
        self.backends.iter().find(|b| b.name == name)
    }

    /// The whole snapshot as JSON for the admin API.
    pub fn to_json(&self) -> Value {
        self.to_json_at(SystemTime::now())
    }

    /// [`Topology::to_json`] with an explicit "now" (for `in_state_ms`).
    pub fn to_json_at(&self, now: SystemTime) -> Value {
        let primary = match &self.primary {
            PrimaryState::One(name) => match self.get(name).and_then(|b| b.writer_rule) {
                Some(rule) => json!({"state": "one", "name": name, "rule": rule.as_str()}),
                None => json!({"state": "one", "name": name}),
            },
            PrimaryState::None => json!({"state": "none"}),
            PrimaryState::Conflict(names) => json!({"state": "conflict", "names": names}),
        };
        let backends: Vec<Value> = self.backends.iter().map(|b| backend_json(b, now)).collect();
        json!({
            "generation": self.generation,
            "primary": primary,
            "backends": backends,
        })
    }
}

fn millis_f64(d: Duration) -> f64 {
    d.as_secs_f64() * 1000.0
}

fn unix_ms(t: SystemTime) -> u64 {
    t.duration_since(SystemTime::UNIX_EPOCH)
        .map(|d| u64::try_from(d.as_millis()).unwrap_or(u64::MAX))
        .unwrap_or(0)
}

fn backend_json(b: &BackendStatus, now: SystemTime) -> Value {
    let in_state = now.duration_since(b.since).unwrap_or(Duration::ZERO);
    json!({
        "name": b.name,
        "address": b.address,
        "pinned_primary": b.pinned_primary,
        "state": b.state.as_str(),
        "role": b.role.as_str(),
        "read_only": b.read_only,
        "readable": b.is_readable_replica(),
        "lag_seconds": b.lag.map(|l| l.as_secs_f64()),
        "lag_source": b.lag_source.as_str(),
        "gtid_current_pos": b.gtid_current_pos.as_ref().map(ToString::to_string),
        "gtid_slave_pos": b.gtid_slave_pos.as_ref().map(ToString::to_string),
        "server_id": b.server_id,
        "version": b.version,
        "flavor": b.flavor.map(|f| f.as_str()),
        "last_check_latency_ms": b.last_check_latency.map(millis_f64),
        "last_check_unix_ms": b.last_check_at.map(unix_ms),
        "checks": b.checks,
        "reason": b.reason,
        "since_unix_ms": unix_ms(b.since),
        "in_state_ms": u64::try_from(in_state.as_millis()).unwrap_or(u64::MAX),
        "consecutive_failures": b.consecutive_failures,
        "consecutive_successes": b.consecutive_successes,
        "priority": b.priority,
        "galera": b.galera,
    })
}

/// Assigns every backend's role and decides the primary.
///
/// - A pinned backend is the primary whatever `read_only` says (if it is Up);
///   every other backend is a replica.
/// - Otherwise the primary is the one Up backend with `read_only=OFF`; two or
///   more such backends are a conflict (their role becomes Unknown), none
///   means no primary. Read-only backends are replicas; backends that are
///   Down or not checked yet have an Unknown role.
///
/// Galera nodes (any backend a check saw as one, or every backend under
/// `monitor.topology: galera`): see [`resolve_galera_roles`].
pub fn resolve_roles(backends: &mut [BackendStatus], mode: TopologyMode) -> PrimaryState {
    let galera = mode == TopologyMode::Galera || backends.iter().any(|b| b.galera.is_some());
    if galera && !backends.iter().any(|b| b.pinned_primary) {
        return resolve_galera_roles(backends);
    }
    if let Some(pin) = backends.iter().position(|b| b.pinned_primary) {
        for (i, b) in backends.iter_mut().enumerate() {
            b.role = if i == pin {
                Role::Primary
            } else {
                Role::Replica
            };
        }
        let pinned = &backends[pin];
        return if pinned.is_up() {
            PrimaryState::One(pinned.name.clone())
        } else {
            PrimaryState::None
        };
    }

    let mut writable: Vec<String> = backends
        .iter()
        .filter(|b| b.is_up() && !b.read_only)
        .map(|b| b.name.clone())
        .collect();
    let single = writable.len() == 1;
    for b in backends.iter_mut() {
        b.role = match b.state {
            BackendState::Down | BackendState::Starting => Role::Unknown,
            _ if !b.read_only => {
                if single {
                    Role::Primary
                } else {
                    Role::Unknown
                }
            }
            _ => Role::Replica,
        };
    }
    match writable.len() {
        0 => PrimaryState::None,
        1 => PrimaryState::One(writable.remove(0)),
        _ => {
            writable.sort();
            PrimaryState::Conflict(writable)
        }
    }
}

/// Galera: every node is writable, so `read_only` decides nothing. The writer is chosen among
/// the usable nodes (Up: synced, in the primary component, …) by [`galera::choose_writer`];
/// the other Galera nodes are replicas (readable while Up); anything else has no role. Two
/// writers cannot happen: there is one minimum. No writer is chosen before every backend has
/// been checked once.
pub fn resolve_galera_roles(backends: &mut [BackendStatus]) -> PrimaryState {
    let usable: Vec<usize> = (0..backends.len())
        .filter(|&i| backends[i].is_up() && backends[i].galera.is_some())
        .collect();
    let candidates: Vec<WriterCandidate<'_>> = usable
        .iter()
        .filter_map(|&i| {
            let b = &backends[i];
            let g = b.galera.as_ref()?;
            Some(WriterCandidate {
                priority: b.priority,
                node_name: &g.node_name,
                gcomm_uuid: &g.gcomm_uuid,
                name: &b.name,
            })
        })
        .collect();
    // Until every configured backend has answered (or failed) a first check, a node not seen
    // yet could be the one that wins: choosing now would name a writer that changes moments
    // later, and two rwproxy processes starting together could write to different nodes.
    let all_seen = backends.iter().all(|b| b.checks > 0);
    let chosen = galera::choose_writer(&candidates)
        .filter(|_| all_seen)
        .map(|(c, rule)| (usable[c], rule));
    let writer = chosen.map(|(i, _)| i);
    for (i, b) in backends.iter_mut().enumerate() {
        b.writer_rule = chosen.and_then(|(w, rule)| (w == i).then_some(rule));
        b.role = if Some(i) == writer {
            Role::Primary
        } else if b.galera.is_some()
            && !matches!(b.state, BackendState::Down | BackendState::Starting)
        {
            Role::Replica
        } else {
            Role::Unknown
        };
    }
    match writer {
        Some(i) => PrimaryState::One(backends[i].name.clone()),
        None => PrimaryState::None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::gtid::GtidPosition;
    use crate::settings::BackendSpec;
    use crate::status::LagSource;

    fn t(secs: u64) -> SystemTime {
        SystemTime::UNIX_EPOCH + Duration::from_secs(secs)
    }

    fn b(name: &str, state: BackendState, read_only: bool) -> BackendStatus {
        let mut s = BackendStatus::starting(&BackendSpec::new(name, "127.0.0.1:1"), t(0));
        s.state = state;
        s.read_only = read_only;
        s.checks = 1;
        s
    }

    fn topo(mut backends: Vec<BackendStatus>) -> Topology {
        let primary = resolve_roles(&mut backends, TopologyMode::Auto);
        Topology {
            generation: 1,
            backends,
            primary,
        }
    }

    #[test]
    fn one_writable_is_the_primary() {
        let t = topo(vec![
            b("db1", BackendState::Up, false),
            b("db2", BackendState::Up, true),
            b("db3", BackendState::Lagging, true),
        ]);
        assert_eq!(t.primary, PrimaryState::One("db1".into()));
        assert_eq!(t.primary().map(|p| p.name.as_str()), Some("db1"));
        assert_eq!(t.get("db1").unwrap().role, Role::Primary);
        assert_eq!(t.get("db3").unwrap().role, Role::Replica);
        let readable: Vec<_> = t.readable_replicas().map(|r| r.name.as_str()).collect();
        assert_eq!(readable, vec!["db2"]);
    }

    #[test]
    fn two_writable_is_a_conflict() {
        let t = topo(vec![
            b("db2", BackendState::Up, false),
            b("db1", BackendState::Up, false),
            b("db3", BackendState::Up, true),
        ]);
        assert_eq!(
            t.primary,
            PrimaryState::Conflict(vec!["db1".into(), "db2".into()])
        );
        assert!(t.primary().is_none());
        assert_eq!(t.get("db1").unwrap().role, Role::Unknown);
        // The true replica still serves reads.
        assert_eq!(t.readable_replicas().count(), 1);
    }

    #[test]
    fn none_writable_or_primary_down_is_none() {
        let t = topo(vec![
            b("db1", BackendState::Down, false),
            b("db2", BackendState::Up, true),
        ]);
        assert_eq!(t.primary, PrimaryState::None);
        assert_eq!(t.get("db1").unwrap().role, Role::Unknown);
        assert!(t.primary().is_none());
    }

    #[test]
    fn failover_is_followed() {
        // Old primary dead, a replica made writable.
        let t = topo(vec![
            b("db1", BackendState::Down, false),
            b("db2", BackendState::Up, false),
            b("db3", BackendState::ReplicationBroken, true),
        ]);
        assert_eq!(t.primary, PrimaryState::One("db2".into()));
        // Old primary back but read-only: still db2.
        let t = topo(vec![
            b("db1", BackendState::ReplicationBroken, true),
            b("db2", BackendState::Up, false),
        ]);
        assert_eq!(t.primary, PrimaryState::One("db2".into()));
        assert_eq!(t.get("db1").unwrap().role, Role::Replica);
    }

    #[test]
    fn pin_overrides_read_only() {
        let mut pinned = b("db2", BackendState::Up, true);
        pinned.pinned_primary = true;
        let t = topo(vec![b("db1", BackendState::Up, false), pinned]);
        assert_eq!(t.primary, PrimaryState::One("db2".into()));
        assert_eq!(t.get("db1").unwrap().role, Role::Replica);
        assert_eq!(t.get("db2").unwrap().role, Role::Primary);
    }

    #[test]
    fn pinned_but_down_means_no_primary() {
        let mut pinned = b("db1", BackendState::Down, false);
        pinned.pinned_primary = true;
        let t = topo(vec![pinned, b("db2", BackendState::Up, false)]);
        assert_eq!(t.primary, PrimaryState::None);
        assert!(t.primary().is_none());
        assert_eq!(t.get("db2").unwrap().role, Role::Replica);
    }

    #[test]
    fn starting_backends_have_no_role() {
        let t = topo(vec![
            b("db1", BackendState::Starting, true),
            b("db2", BackendState::Starting, true),
        ]);
        assert_eq!(t.primary, PrimaryState::None);
        assert!(t.backends.iter().all(|b| b.role == Role::Unknown));
    }

    #[test]
    fn json_shape() {
        let mut r = b("db2", BackendState::Up, true);
        r.lag = Some(Duration::from_millis(1500));
        r.lag_source = LagSource::Heartbeat;
        r.gtid_current_pos = GtidPosition::parse("0-1-42").ok();
        r.server_id = Some(2);
        r.last_check_latency = Some(Duration::from_micros(1500));
        r.since = t(10);
        let topo = topo(vec![b("db1", BackendState::Up, false), r]);
        let v = topo.to_json_at(t(13));
        assert_eq!(v["generation"], 1);
        assert_eq!(v["primary"]["state"], "one");
        assert_eq!(v["primary"]["name"], "db1");
        let db2 = &v["backends"][1];
        assert_eq!(db2["name"], "db2");
        assert_eq!(db2["state"], "up");
        assert_eq!(db2["role"], "replica");
        assert_eq!(db2["readable"], true);
        assert_eq!(db2["lag_seconds"], 1.5);
        assert_eq!(db2["lag_source"], "heartbeat");
        assert_eq!(db2["gtid_current_pos"], "0-1-42");
        assert_eq!(db2["gtid_slave_pos"], Value::Null);
        assert_eq!(db2["server_id"], 2);
        assert_eq!(db2["last_check_latency_ms"], 1.5);
        assert_eq!(db2["since_unix_ms"], 10_000);
        assert_eq!(db2["in_state_ms"], 3_000);
        assert_eq!(v["backends"][0]["lag_seconds"], Value::Null);

        let conflict = Topology {
            generation: 2,
            backends: vec![],
            primary: PrimaryState::Conflict(vec!["a".into(), "b".into()]),
        };
        let v = conflict.to_json();
        assert_eq!(v["primary"]["state"], "conflict");
        assert_eq!(v["primary"]["names"][1], "b");
        assert_eq!(conflict.primary.to_string(), "conflict between a, b");
    }

    fn galera_node(
        name: &str,
        node_name: &str,
        state: BackendState,
        priority: u32,
    ) -> BackendStatus {
        let mut b = BackendStatus::starting(
            &BackendSpec::new(name, "127.0.0.1:1").with_priority(priority),
            t(0),
        );
        b.state = state;
        b.read_only = false;
        b.checks = 1;
        b.galera = Some(crate::galera::GaleraStatus {
            node_name: node_name.into(),
            gcomm_uuid: format!("uuid-{node_name}"),
            local_state: 4,
            local_state_comment: "Synced".into(),
            cluster_status: "Primary".into(),
            cluster_size: 3,
            local_index: None,
            desync: false,
            reject_queries: "NONE".into(),
            recv_queue: 0,
            flow_control_paused: None,
        });
        b
    }

    fn roles(backends: &[BackendStatus]) -> Vec<Role> {
        backends.iter().map(|b| b.role).collect()
    }

    #[test]
    fn galera_one_writer_the_others_read() {
        use BackendState::*;
        let mut nodes = vec![
            galera_node("db1", "node0", Up, 0),
            galera_node("db2", "node1", Up, 0),
            galera_node("db3", "node2", Up, 0),
        ];
        // Every node is writable: with replication rules that would be a conflict.
        assert_eq!(
            resolve_roles(&mut nodes, TopologyMode::Auto),
            PrimaryState::One("db1".into())
        );
        assert_eq!(roles(&nodes), [Role::Primary, Role::Replica, Role::Replica]);
        // The same nodes seen in another order (another rwproxy's configuration): same writer.
        let mut reversed: Vec<_> = nodes.iter().rev().cloned().collect();
        assert_eq!(
            resolve_roles(&mut reversed, TopologyMode::Auto),
            PrimaryState::One("db1".into())
        );
        // The writer leaves (down, desynced, outside the primary component): the next one.
        for state in [Down, Lagging, ReplicationBroken] {
            nodes[0].state = state;
            assert_eq!(
                resolve_roles(&mut nodes, TopologyMode::Auto),
                PrimaryState::One("db2".into()),
                "{state:?}"
            );
            assert_ne!(nodes[0].role, Role::Primary);
            assert!(!nodes[0].is_readable_replica());
        }
        // It comes back synced: it wins the choice again.
        nodes[0].state = Up;
        assert_eq!(
            resolve_roles(&mut nodes, TopologyMode::Auto),
            PrimaryState::One("db1".into())
        );
        // Priority comes first.
        nodes[2].priority = 0;
        nodes[0].priority = 5;
        nodes[1].priority = 5;
        assert_eq!(
            resolve_roles(&mut nodes, TopologyMode::Auto),
            PrimaryState::One("db3".into())
        );
        // None usable: no writer.
        for n in nodes.iter_mut() {
            n.state = Lagging;
        }
        assert_eq!(
            resolve_roles(&mut nodes, TopologyMode::Auto),
            PrimaryState::None
        );
    }

    #[test]
    fn galera_names_no_writer_before_every_backend_was_checked() {
        use BackendState::*;
        let mut nodes = vec![
            galera_node("db1", "node0", Starting, 0),
            galera_node("db2", "node1", Up, 0),
            galera_node("db3", "node2", Up, 0),
        ];
        nodes[0].checks = 0;
        assert_eq!(
            resolve_roles(&mut nodes, TopologyMode::Galera),
            PrimaryState::None
        );
        assert!(nodes[1].is_readable_replica(), "reads go on meanwhile");
        // Its first check failed: it cannot win, the choice is made without it.
        nodes[0].checks = 1;
        assert_eq!(
            resolve_roles(&mut nodes, TopologyMode::Galera),
            PrimaryState::One("db2".into())
        );
        assert_eq!(nodes[1].writer_rule, Some(galera::WriterRule::NodeName));
        // It answered as a synced node: it wins.
        nodes[0].state = Up;
        assert_eq!(
            resolve_roles(&mut nodes, TopologyMode::Galera),
            PrimaryState::One("db1".into())
        );
        assert_eq!(nodes[1].writer_rule, None);
    }

    #[test]
    fn galera_mode_gives_a_plain_server_no_role() {
        let mut backends = vec![
            b("plain", BackendState::Up, false),
            galera_node("db2", "node1", BackendState::Starting, 0),
        ];
        assert_eq!(
            resolve_roles(&mut backends, TopologyMode::Galera),
            PrimaryState::None
        );
        assert_eq!(roles(&backends), [Role::Unknown, Role::Unknown]);
        backends[1].state = BackendState::Up;
        assert_eq!(
            resolve_roles(&mut backends, TopologyMode::Galera),
            PrimaryState::One("db2".into())
        );
    }
}
