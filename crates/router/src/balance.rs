use rwproxy_config::ReplicaBalance;
use rwproxy_monitor::{BackendStatus, Topology};

/// What the replica choice needs besides the topology.
pub struct BalanceInput<'a> {
    pub balance: ReplicaBalance,
    /// The configured weight of a backend (1 when unknown).
    pub weight: &'a dyn Fn(&str) -> u32,
    /// Open data-path connections to a backend (for `least_connections`).
    pub connections: &'a dyn Fn(&str) -> usize,
    /// Backends this session must not use now (failed for it, or left behind).
    pub exclude: &'a dyn Fn(&str) -> bool,
}

/// Picks the replica for a read among the healthy, fresh replicas. `counter` is the session's
/// own round-robin position (no state shared between sessions). `None` when no replica is usable.
pub fn choose_replica<'t>(
    topology: &'t Topology,
    input: &BalanceInput<'_>,
    counter: &mut u64,
) -> Option<&'t BackendStatus> {
    let usable = || {
        topology
            .readable_replicas()
            .filter(|b| !(input.exclude)(&b.name))
    };
    let count = usable().count();
    if count == 0 {
        return None;
    }
    *counter = counter.wrapping_add(1);
    match input.balance {
        ReplicaBalance::RoundRobin => usable().nth((*counter % count as u64) as usize),
        ReplicaBalance::Weighted => {
            let total: u64 = usable()
                .map(|b| (input.weight)(&b.name).max(1) as u64)
                .sum();
            let mut point = *counter % total;
            for b in usable() {
                let w = (input.weight)(&b.name).max(1) as u64;
                if point < w {
                    return Some(b);
                }
                point -= w;
            }
            None
        }
        ReplicaBalance::LeastConnections => {
            // Ties are broken by the session's counter so equal replicas still alternate.
            let start = (*counter % count as u64) as usize;
            let all: Vec<&BackendStatus> = usable().collect();
            (0..count)
                .map(|i| all[(start + i) % count])
                .min_by_key(|b| (input.connections)(&b.name))
        }
    }
}
