//! The `routing` section (the rules themselves are in `rules.rs`).

use std::time::Duration;

use crate::build::rules::build_rules;
use crate::build::users::CONSISTENCIES;
use crate::model::{ReplicaAffinity, ReplicaBalance, RoutingConfig};
use crate::reader::{MapReader, Problems};

const ROUTING_KEYS: &[&str] = &[
    "replica_balance",
    "replica_affinity",
    "read_fallback_to_primary",
    "consistency",
    "causal_read_timeout",
    "rules",
    "transaction_replay",
    "transaction_replay_max_size",
];

/// `routing.transaction_replay_max_size` when not given.
pub const DEFAULT_TRANSACTION_REPLAY_MAX_SIZE: u64 = 1024 * 1024;
const MIN_TRANSACTION_REPLAY_MAX_SIZE: u64 = 1024;
const MAX_TRANSACTION_REPLAY_MAX_SIZE: u64 = 1024 * 1024 * 1024;

const BALANCES: &[(&str, ReplicaBalance)] = &[
    ("round_robin", ReplicaBalance::RoundRobin),
    ("weighted", ReplicaBalance::Weighted),
    ("least_connections", ReplicaBalance::LeastConnections),
];

const AFFINITIES: &[(&str, ReplicaAffinity)] = &[
    ("session", ReplicaAffinity::Session),
    ("statement", ReplicaAffinity::Statement),
];

/// Builds `routing`; `backend_names` are the names rules may route to,
/// `user_names` the users a rule may name (`None` when accounts also come
/// from the backend and so cannot be checked here).
pub(crate) fn build_routing(
    root: &MapReader,
    backend_names: &[String],
    user_names: Option<&[String]>,
    problems: &mut Problems,
) -> RoutingConfig {
    let routing = MapReader::section(
        root.get("routing"),
        &root.path_of("routing"),
        ROUTING_KEYS,
        problems,
    );
    RoutingConfig {
        replica_balance: routing
            .choice("replica_balance", BALANCES, problems)
            .unwrap_or(ReplicaBalance::RoundRobin),
        replica_affinity: routing
            .choice("replica_affinity", AFFINITIES, problems)
            .unwrap_or(ReplicaAffinity::Session),
        read_fallback_to_primary: routing
            .bool("read_fallback_to_primary", problems)
            .unwrap_or(true),
        consistency: routing
            .choice("consistency", CONSISTENCIES, problems)
            .unwrap_or(crate::model::Consistency::Session),
        causal_read_timeout: routing
            .duration("causal_read_timeout", false, problems)
            .unwrap_or(Duration::from_millis(200)),
        rules: build_rules(&routing, backend_names, user_names, problems),
        transaction_replay: routing
            .bool("transaction_replay", problems)
            .unwrap_or(false),
        transaction_replay_max_size: routing
            .size(
                "transaction_replay_max_size",
                MIN_TRANSACTION_REPLAY_MAX_SIZE,
                MAX_TRANSACTION_REPLAY_MAX_SIZE,
                problems,
            )
            .unwrap_or(DEFAULT_TRANSACTION_REPLAY_MAX_SIZE),
    }
}
