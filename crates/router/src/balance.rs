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
    /// The replica the session read from last (`replica_affinity: session`): chosen again
    /// while it is usable, without a balancing step.
    pub preferred: Option<&'a str>,
}

/// Identifies the set of replicas a session may read from (readable, less those `exclude`d):
/// changes when a replica joins or leaves it (a session with replica affinity then chooses
/// again, so a replica that comes back gets its share of the sessions).
pub fn readable_set_id(topology: &Topology, exclude: &dyn Fn(&str) -> bool) -> u64 {
    // FNV-1a over the names, each followed by a separator.
    let mut hash: u64 = 0xcbf2_9ce4_8422_2325;
    for b in topology.readable_replicas().filter(|b| !exclude(&b.name)) {
        for &byte in b.name.as_bytes().iter().chain(&[0xff]) {
            hash ^= u64::from(byte);
            hash = hash.wrapping_mul(0x0100_0000_01b3);
        }
    }
    hash
}

/// Picks the replica for a read among the healthy, fresh replicas. `counter` is the session's
/// own round-robin position (no state shared between sessions). `None` when no replica is usable.
pub fn choose_replica<'t>(
    topology: &'t Topology,
    input: &BalanceInput<'_>,
    counter: &mut u64,
) -> Option<&'t BackendStatus> {
    // A replica whose last check failed (suspect: up, but below the failure threshold) gets no
    // new reads while another replica is fine: a frozen server must not hold up sessions until
    // the monitor declares it down.
    let any_sound = topology
        .readable_replicas()
        .any(|b| !(input.exclude)(&b.name) && b.consecutive_failures == 0);
    let usable = || {
        topology
            .readable_replicas()
            .filter(|b| !(input.exclude)(&b.name))
            .filter(move |b| !any_sound || b.consecutive_failures == 0)
    };
    if let Some(home) = input.preferred {
        if let Some(b) = usable().find(|b| b.name == home) {
            return Some(b);
        }
    }
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

#[cfg(test)]
mod tests {
    use std::time::SystemTime;

    use rwproxy_monitor::{BackendSpec, BackendState, PrimaryState, Role};

    use super::*;

    fn topology(replicas: &[(&str, BackendState)]) -> Topology {
        let now = SystemTime::now();
        let mut backends = vec![{
            let mut b = BackendStatus::starting(&BackendSpec::new("db1", "127.0.0.1:1"), now);
            b.state = BackendState::Up;
            b.role = Role::Primary;
            b
        }];
        for (name, state) in replicas {
            let mut b = BackendStatus::starting(&BackendSpec::new(*name, "127.0.0.1:2"), now);
            b.state = *state;
            b.role = Role::Replica;
            backends.push(b);
        }
        Topology {
            generation: 1,
            backends,
            primary: PrimaryState::One("db1".into()),
        }
    }

    fn pick(
        t: &Topology,
        balance: ReplicaBalance,
        preferred: Option<&str>,
        counter: &mut u64,
    ) -> Option<String> {
        let weight = |name: &str| if name == "db3" { 3 } else { 1 };
        let connections = |name: &str| if name == "db2" { 5 } else { 1 };
        let exclude = |name: &str| name == "db4";
        let input = BalanceInput {
            balance,
            weight: &weight,
            connections: &connections,
            exclude: &exclude,
            preferred,
        };
        choose_replica(t, &input, counter).map(|b| b.name.clone())
    }

    #[test]
    fn round_robin_alternates_over_usable_replicas_only() {
        let t = topology(&[
            ("db2", BackendState::Up),
            ("db3", BackendState::Up),
            ("db4", BackendState::Up),
            ("db5", BackendState::Lagging),
        ]);
        let mut counter = 0;
        let seen: Vec<_> = (0..4)
            .map(|_| pick(&t, ReplicaBalance::RoundRobin, None, &mut counter).unwrap())
            .collect();
        assert_eq!(seen, ["db3", "db2", "db3", "db2"]);
    }

    #[test]
    fn a_suspect_replica_gets_no_reads_while_another_is_sound() {
        let mut t = topology(&[("db2", BackendState::Up), ("db3", BackendState::Up)]);
        t.backends[1].consecutive_failures = 1; // db2 missed its last check
        let mut counter = 0;
        for balance in [
            ReplicaBalance::RoundRobin,
            ReplicaBalance::Weighted,
            ReplicaBalance::LeastConnections,
        ] {
            for preferred in [None, Some("db2")] {
                for _ in 0..4 {
                    assert_eq!(
                        pick(&t, balance, preferred, &mut counter).as_deref(),
                        Some("db3")
                    );
                }
            }
        }
        // Every replica suspect: they still serve (better than the primary for nothing).
        t.backends[2].consecutive_failures = 1;
        let seen: std::collections::HashSet<_> = (0..4)
            .map(|_| pick(&t, ReplicaBalance::RoundRobin, None, &mut counter).unwrap())
            .collect();
        assert_eq!(seen.len(), 2);
    }

    #[test]
    fn weighted_follows_weights_and_least_connections_the_fewest() {
        let t = topology(&[("db2", BackendState::Up), ("db3", BackendState::Up)]);
        let mut counter = 0;
        let heavy = (0..400)
            .filter(|_| pick(&t, ReplicaBalance::Weighted, None, &mut counter).unwrap() == "db3")
            .count();
        assert_eq!(heavy, 300);
        for _ in 0..3 {
            assert_eq!(
                pick(&t, ReplicaBalance::LeastConnections, None, &mut counter).unwrap(),
                "db3"
            );
        }
    }

    #[test]
    fn a_usable_preferred_replica_is_kept_without_a_balancing_step() {
        let t = topology(&[("db2", BackendState::Up), ("db3", BackendState::Up)]);
        for balance in [
            ReplicaBalance::RoundRobin,
            ReplicaBalance::Weighted,
            ReplicaBalance::LeastConnections,
        ] {
            let mut counter = 7;
            for _ in 0..5 {
                assert_eq!(pick(&t, balance, Some("db2"), &mut counter).unwrap(), "db2");
            }
            assert_eq!(counter, 7, "{balance:?}: the counter moved");
        }
    }

    #[test]
    fn the_readable_set_id_changes_with_the_set_only() {
        let both = topology(&[("db2", BackendState::Up), ("db3", BackendState::Up)]);
        let mut again = topology(&[("db2", BackendState::Up), ("db3", BackendState::Up)]);
        again.generation = 9;
        again.backends[1].checks = 40;
        let none = |_: &str| false;
        let id = |t: &Topology| readable_set_id(t, &none);
        assert_eq!(id(&both), id(&again));
        let one = topology(&[("db2", BackendState::Up), ("db3", BackendState::Lagging)]);
        let other = topology(&[("db2", BackendState::Lagging), ("db3", BackendState::Up)]);
        let ids = [&both, &one, &other].map(id);
        assert!(ids[0] != ids[1] && ids[1] != ids[2] && ids[0] != ids[2]);
        // An excluded replica is out of the set, as if it were not readable.
        assert_eq!(readable_set_id(&both, &|n: &str| n == "db3"), ids[1]);
        // Names are separated: "db2"+"3" is not "db23".
        let split = topology(&[("ab", BackendState::Up), ("c", BackendState::Up)]);
        let joined = topology(&[("a", BackendState::Up), ("bc", BackendState::Up)]);
        assert_ne!(id(&split), id(&joined));
    }

    #[test]
    fn an_unusable_preferred_replica_is_replaced() {
        let t = topology(&[
            ("db2", BackendState::Lagging),
            ("db3", BackendState::Up),
            ("db4", BackendState::Up),
        ]);
        let mut counter = 0;
        // Lagging, excluded, unknown: the choice falls to the balancer.
        for gone in ["db2", "db4", "db9"] {
            assert_eq!(
                pick(&t, ReplicaBalance::RoundRobin, Some(gone), &mut counter).unwrap(),
                "db3"
            );
        }
        let none = topology(&[("db2", BackendState::Down)]);
        assert_eq!(
            pick(&none, ReplicaBalance::RoundRobin, Some("db2"), &mut counter),
            None
        );
    }
}
