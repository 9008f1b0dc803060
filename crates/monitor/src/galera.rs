//! Galera clusters: what one check reads on a node (`wsrep_*` status and variables), when a
//! node may take traffic, and the writer choice. Every node of a Galera cluster is writable;
//! writing to several at once turns conflicts into certification failures, so exactly one
//! usable node is the writer and the others serve reads. The choice is a pure function of what
//! the checks saw — the configured `priority`, then the node's own `wsrep_node_name`, then its
//! `wsrep_gcomm_uuid` — so every rwproxy watching the same cluster picks the same writer without
//! talking to the others, whenever it was started.

use serde::Serialize;

/// `wsrep_local_state` of a node that is in sync with the cluster.
pub const SYNCED: u32 = 4;

/// How the monitor tells replication from Galera (`monitor.topology`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum TopologyMode {
    /// A node with `wsrep_on=ON` is judged as a Galera node, any other by its replication.
    #[default]
    Auto,
    /// Never look at `wsrep_*`.
    Replication,
    /// Every backend must be a Galera node; one that is not gets no traffic.
    Galera,
}

/// What one check saw of a Galera node.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct GaleraStatus {
    pub node_name: String,
    pub gcomm_uuid: String,
    /// `wsrep_local_state`: 1 Joining, 2 Donor/Desynced, 3 Joined, 4 Synced.
    pub local_state: u32,
    pub local_state_comment: String,
    /// `wsrep_cluster_status`: `Primary`, `non-Primary` or `Disconnected`.
    pub cluster_status: String,
    pub cluster_size: u32,
    pub local_index: Option<u32>,
    pub desync: bool,
    /// `wsrep_reject_queries`: `NONE`, `ALL` or `ALL_KILL`.
    pub reject_queries: String,
    /// `wsrep_local_recv_queue`: write sets received and not yet applied.
    pub recv_queue: u64,
    /// `wsrep_flow_control_paused`: the fraction of time replication was paused by flow control
    /// since the previous `SHOW STATUS`.
    pub flow_control_paused: Option<String>,
}

/// The status variables one check reads.
pub const STATUS_SQL: &str = "SHOW GLOBAL STATUS WHERE Variable_name IN (\
     'wsrep_local_state', 'wsrep_local_state_comment', 'wsrep_cluster_status', \
     'wsrep_cluster_size', 'wsrep_local_index', 'wsrep_local_recv_queue', 'wsrep_gcomm_uuid', \
     'wsrep_flow_control_paused')";
/// The variables one check reads.
pub const VARIABLES_SQL: &str =
    "SELECT @@global.wsrep_desync, @@global.wsrep_reject_queries, @@global.wsrep_node_name";

impl GaleraStatus {
    /// Builds the status from `SHOW STATUS` rows (name, value) and the three variables
    /// ([`VARIABLES_SQL`]). Missing or unparsable values read as "not usable" values (state 0,
    /// cluster status empty), never as healthy.
    pub fn from_rows(
        status: &[(String, String)],
        desync: Option<&str>,
        reject_queries: Option<&str>,
        node_name: Option<&str>,
    ) -> Self {
        let get = |name: &str| {
            status
                .iter()
                .find(|(n, _)| n.eq_ignore_ascii_case(name))
                .map(|(_, v)| v.trim())
        };
        let number = |name: &str| get(name).and_then(|v| v.parse::<u64>().ok());
        Self {
            node_name: node_name.unwrap_or_default().to_string(),
            gcomm_uuid: get("wsrep_gcomm_uuid").unwrap_or_default().to_string(),
            local_state: number("wsrep_local_state")
                .and_then(|v| u32::try_from(v).ok())
                .unwrap_or(0),
            local_state_comment: get("wsrep_local_state_comment")
                .unwrap_or_default()
                .to_string(),
            cluster_status: get("wsrep_cluster_status").unwrap_or_default().to_string(),
            cluster_size: number("wsrep_cluster_size")
                .and_then(|v| u32::try_from(v).ok())
                .unwrap_or(0),
            local_index: number("wsrep_local_index").and_then(|v| u32::try_from(v).ok()),
            desync: crate::observation::parse_bool_var(desync).unwrap_or(true),
            reject_queries: reject_queries.unwrap_or("UNKNOWN").trim().to_string(),
            recv_queue: number("wsrep_local_recv_queue").unwrap_or(u64::MAX),
            flow_control_paused: get("wsrep_flow_control_paused").map(str::to_string),
        }
    }
}

/// Whether a Galera node may take traffic.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum GaleraHealth {
    /// Synced, in the primary component, neither desynced nor rejecting queries, its receive
    /// queue under the bound.
    Usable,
    /// In the cluster but behind or busy (not synced, desynced, a donor, a long receive
    /// queue): no traffic until it catches up.
    Behind(String),
    /// Outside the primary component, or refusing queries: no traffic.
    Unusable(String),
}

/// Judges one node.
pub fn evaluate(g: &GaleraStatus, max_recv_queue: u64) -> GaleraHealth {
    if !g.cluster_status.eq_ignore_ascii_case("Primary") {
        return GaleraHealth::Unusable(format!(
            "galera: not in the primary component (wsrep_cluster_status={})",
            or_unknown(&g.cluster_status)
        ));
    }
    if !g.reject_queries.eq_ignore_ascii_case("NONE") {
        return GaleraHealth::Unusable(format!(
            "galera: rejecting queries (wsrep_reject_queries={})",
            g.reject_queries
        ));
    }
    if g.desync {
        return GaleraHealth::Behind("galera: desynced (wsrep_desync=ON)".into());
    }
    if g.local_state != SYNCED {
        return GaleraHealth::Behind(format!(
            "galera: not synced (wsrep_local_state={} {})",
            g.local_state,
            or_unknown(&g.local_state_comment)
        ));
    }
    if g.recv_queue > max_recv_queue {
        return GaleraHealth::Behind(format!(
            "galera: receive queue {} > {max_recv_queue} (monitor.galera_max_recv_queue)",
            g.recv_queue
        ));
    }
    GaleraHealth::Usable
}

fn or_unknown(s: &str) -> &str {
    if s.is_empty() {
        "unknown"
    } else {
        s
    }
}

/// A node as the writer choice sees it.
#[derive(Debug, Clone, Copy)]
pub struct WriterCandidate<'a> {
    /// Configured `priority` (lower wins).
    pub priority: u32,
    pub node_name: &'a str,
    pub gcomm_uuid: &'a str,
    /// The backend's configured name: the last tie-break only.
    pub name: &'a str,
}

/// Which rule of the writer choice decided it: the first key on which the writer beats the
/// runner-up (reported in `/backends`, the logs and `rwproxy_galera_writer_changes_total`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum WriterRule {
    /// The only usable node.
    Sole,
    /// The lowest configured `priority`.
    Priority,
    /// Equal priorities: the lowest `wsrep_node_name`.
    NodeName,
    /// Equal priorities and node names: the lowest `wsrep_gcomm_uuid`.
    GcommUuid,
    /// Everything else equal: the configured backend name.
    BackendName,
}

impl WriterRule {
    pub fn as_str(self) -> &'static str {
        match self {
            WriterRule::Sole => "sole",
            WriterRule::Priority => "priority",
            WriterRule::NodeName => "node_name",
            WriterRule::GcommUuid => "gcomm_uuid",
            WriterRule::BackendName => "backend_name",
        }
    }
}

impl std::fmt::Display for WriterRule {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

/// The writer among usable nodes: the lowest `priority`, then the lowest `wsrep_node_name`,
/// then the lowest `wsrep_gcomm_uuid` (names are what the cluster itself reports, the same for
/// every observer). The index into `candidates` and the rule that decided, or `None` when
/// there is no candidate.
pub fn choose_writer<'a>(candidates: &[WriterCandidate<'a>]) -> Option<(usize, WriterRule)> {
    fn key<'a>(c: &WriterCandidate<'a>) -> (u32, &'a str, &'a str, &'a str) {
        (c.priority, c.node_name, c.gcomm_uuid, c.name)
    }
    let (best, winner) = candidates
        .iter()
        .enumerate()
        .min_by(|(_, a), (_, b)| key(a).cmp(&key(b)))?;
    let runner_up = candidates
        .iter()
        .enumerate()
        .filter(|&(i, _)| i != best)
        .map(|(_, c)| c)
        .min_by(|a, b| key(a).cmp(&key(b)));
    let rule = match runner_up {
        None => WriterRule::Sole,
        Some(r) if r.priority != winner.priority => WriterRule::Priority,
        Some(r) if r.node_name != winner.node_name => WriterRule::NodeName,
        Some(r) if r.gcomm_uuid != winner.gcomm_uuid => WriterRule::GcommUuid,
        Some(_) => WriterRule::BackendName,
    };
    Some((best, rule))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn rows(pairs: &[(&str, &str)]) -> Vec<(String, String)> {
        pairs
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect()
    }

    fn synced() -> GaleraStatus {
        GaleraStatus::from_rows(
            &rows(&[
                ("wsrep_local_state", "4"),
                ("wsrep_local_state_comment", "Synced"),
                ("wsrep_cluster_status", "Primary"),
                ("wsrep_cluster_size", "3"),
                ("wsrep_local_index", "1"),
                ("wsrep_local_recv_queue", "0"),
                ("wsrep_gcomm_uuid", "aaa"),
                ("wsrep_flow_control_paused", "0.000000"),
            ]),
            Some("OFF"),
            Some("NONE"),
            Some("node1"),
        )
    }

    #[test]
    fn parses_what_the_server_reports() {
        let g = synced();
        assert_eq!(
            (g.local_state, g.cluster_size, g.local_index, g.recv_queue),
            (4, 3, Some(1), 0)
        );
        assert_eq!((g.node_name.as_str(), g.desync), ("node1", false));
        assert_eq!(evaluate(&g, 100), GaleraHealth::Usable);
        // Nothing known: never usable.
        let empty = GaleraStatus::from_rows(&[], None, None, None);
        assert!(matches!(evaluate(&empty, 100), GaleraHealth::Unusable(_)));
    }

    #[test]
    fn each_reason_to_keep_a_node_out() {
        type Change = Box<dyn Fn(&mut GaleraStatus)>;
        let cases: Vec<(&str, Change, bool)> = vec![
            (
                "non-Primary",
                Box::new(|g| g.cluster_status = "non-Primary".into()),
                false,
            ),
            (
                "rejecting",
                Box::new(|g| g.reject_queries = "ALL".into()),
                false,
            ),
            ("desynced", Box::new(|g| g.desync = true), true),
            (
                "donor",
                Box::new(|g| {
                    g.local_state = 2;
                    g.local_state_comment = "Donor/Desynced".into()
                }),
                true,
            ),
            ("joining", Box::new(|g| g.local_state = 1), true),
            ("queue", Box::new(|g| g.recv_queue = 101), true),
        ];
        for (name, change, behind) in cases {
            let mut g = synced();
            change(&mut g);
            let health = evaluate(&g, 100);
            assert_eq!(
                matches!(health, GaleraHealth::Behind(_)),
                behind,
                "{name}: {health:?}"
            );
            assert_ne!(health, GaleraHealth::Usable, "{name}");
        }
        let mut at_bound = synced();
        at_bound.recv_queue = 100;
        assert_eq!(evaluate(&at_bound, 100), GaleraHealth::Usable);
    }

    #[test]
    fn the_writer_is_the_same_whatever_the_order_seen() {
        let c = |priority, node_name, uuid, name| WriterCandidate {
            priority,
            node_name,
            gcomm_uuid: uuid,
            name,
        };
        let nodes = [
            c(0, "node2", "c", "db3"),
            c(0, "node0", "b", "db1"),
            c(0, "node1", "a", "db2"),
        ];
        assert_eq!(choose_writer(&nodes), Some((1, WriterRule::NodeName)));
        let reversed: Vec<_> = nodes.iter().rev().copied().collect();
        let (i, rule) = choose_writer(&reversed).unwrap();
        assert_eq!(
            (reversed[i].node_name, rule),
            ("node0", WriterRule::NodeName)
        );
        // Priority first.
        let preferred = [c(5, "node0", "a", "db1"), c(1, "node9", "z", "db9")];
        assert_eq!(choose_writer(&preferred), Some((1, WriterRule::Priority)));
        // The runner-up decides the rule, not the last of the field.
        let near = [
            c(1, "node0", "a", "db1"),
            c(0, "node2", "c", "db3"),
            c(0, "node1", "b", "db2"),
        ];
        assert_eq!(choose_writer(&near), Some((2, WriterRule::NodeName)));
        // Same node name (default host names on one host): the cluster's uuid decides.
        let same = [c(0, "host", "bbb", "x1"), c(0, "host", "aaa", "x2")];
        assert_eq!(choose_writer(&same), Some((1, WriterRule::GcommUuid)));
        let twins = [c(0, "host", "aaa", "x2"), c(0, "host", "aaa", "x1")];
        assert_eq!(choose_writer(&twins), Some((1, WriterRule::BackendName)));
        assert_eq!(
            choose_writer(&[c(7, "n", "u", "only")]),
            Some((0, WriterRule::Sole))
        );
        assert_eq!(choose_writer(&[]), None);
    }
}
