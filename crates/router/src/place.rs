//! Placement: a [`Decision`] resolved to one backend of the current topology, as a value.
//! The session carries it out: it runs the statement, waits for a primary (on the monitor's
//! notification) or asks a replica to confirm a GTID position, and then places again with what
//! it learned. Nothing here does I/O or reads the clock.

use std::sync::Arc;
use std::time::Duration;
use std::time::Instant;

use rwproxy_config::{Consistency, ReplicaAffinity, RoutingConfig};
use rwproxy_monitor::{BackendState, GtidPosition, PrimaryState, Topology};

use crate::chosen::{CausalOutcome, Chosen, DestRole, Refusal};
use crate::cursor::ReadCursor;
use crate::{choose_replica, BalanceInput, Decision, Reason, Target};

/// Whether a statement for the primary may still wait for one.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum PrimaryWait {
    /// `write_wait_timeout` has not run out (or the wait has not started).
    Allowed,
    /// The session waited this long for a primary, in vain.
    Expired(Duration),
}

/// Where the confirmation of a read's GTID position stands.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum CausalStep<'a> {
    /// Not asked yet: choose a replica.
    Choose,
    /// This replica confirmed the position.
    Confirmed(&'a str),
    /// The replica did not confirm it: it timed out, or the wait failed.
    NotConfirmed { timed_out: bool },
}

/// What placement needs besides the decision and the session's cursor.
pub struct PlaceInput<'a> {
    pub topology: &'a Topology,
    pub routing: &'a RoutingConfig,
    /// The configured weight of a backend.
    pub weight: &'a dyn Fn(&str) -> u32,
    /// Open data-path connections to a backend, from all sessions.
    pub connections: &'a dyn Fn(&str) -> usize,
    /// A backend the session already has a connection to (a session command's home while
    /// there is no primary).
    pub open_backend: Option<&'a str>,
    /// The position of the session's newest write (`session` consistency).
    pub session_write: Option<&'a Arc<GtidPosition>>,
    /// The position of this proxy's newest write (`global` consistency); asked only then.
    pub proxy_write: &'a dyn Fn() -> Option<Arc<GtidPosition>>,
    /// A write of this session produced a GTID that could not be parsed: its reads under
    /// causal consistency go to the primary.
    pub write_position_unknown: bool,
    pub primary_wait: PrimaryWait,
    pub causal: CausalStep<'a>,
    pub now: Instant,
}

/// What to do with a statement.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Placement<'a> {
    /// Run it there.
    Run(Chosen<'a>),
    /// There is no primary (a failover is under way): wait for the monitor to publish one, up
    /// to `write_wait_timeout`, then place again (with [`PrimaryWait::Expired`] once it has run
    /// out).
    WaitForPrimary,
    /// Ask `replica` to confirm it has applied `position` within `timeout`, then place again
    /// with the answer ([`CausalStep`]).
    Confirm {
        replica: &'a str,
        position: Arc<GtidPosition>,
        timeout: Duration,
    },
    /// It cannot run now; the client gets the error.
    Refuse(Refusal),
}

/// Places a decision on the topology. Reads use (and move) the session's cursor.
pub fn place<'a>(
    decision: &Decision<'a>,
    input: &PlaceInput<'a>,
    cursor: &mut ReadCursor,
) -> Placement<'a> {
    let reason = decision.reason;
    match decision.target {
        Target::Primary => primary(input, reason, &[]),
        Target::Backend(name) => named(name, input, reason),
        Target::SessionHome => {
            if let PrimaryState::One(p) = &input.topology.primary {
                return run(p, DestRole::Primary, reason, false, &[]);
            }
            // No primary: a server the session already uses, else any replica.
            if let Some(open) = input.open_backend {
                return run(open, DestRole::Replica, reason, false, &[]);
            }
            replica(input, cursor, reason, None)
        }
        Target::Replica => read(decision, input, cursor),
    }
}

fn run<'a>(
    backend: &'a str,
    role: DestRole,
    reason: Reason,
    retryable: bool,
    causal: &'static [CausalOutcome],
) -> Placement<'a> {
    Placement::Run(Chosen {
        backend,
        role,
        reason,
        retryable,
        causal,
    })
}

/// The current primary; with none, wait (or, past the wait or with every backend down, refuse).
fn primary<'a>(
    input: &PlaceInput<'a>,
    reason: Reason,
    causal: &'static [CausalOutcome],
) -> Placement<'a> {
    let topology = input.topology;
    match &topology.primary {
        PrimaryState::One(name) => return run(name, DestRole::Primary, reason, false, causal),
        PrimaryState::Conflict(names) => {
            return Placement::Refuse(Refusal::WriteConflict {
                writable: names.clone(),
            })
        }
        PrimaryState::None => {}
    }
    let all_down = topology
        .backends
        .iter()
        .all(|b| b.state == BackendState::Down);
    let waited = match input.primary_wait {
        PrimaryWait::Allowed if !all_down => return Placement::WaitForPrimary,
        PrimaryWait::Allowed => Duration::ZERO,
        PrimaryWait::Expired(waited) => waited,
    };
    let problems = topology
        .backends
        .iter()
        .filter(|b| !b.is_up())
        .map(|b| {
            format!(
                "backend '{}' ({}) is {}: {}",
                b.name,
                b.address,
                b.state.as_str(),
                b.reason
            )
        })
        .collect();
    // 2003 only when no server answers at all; reachable servers without a writable one are a
    // "no primary" situation (1290).
    let none_reachable = !topology.backends.iter().any(|b| answers(b.state));
    Placement::Refuse(if all_down || none_reachable {
        Refusal::Unreachable { problems }
    } else {
        Refusal::NoPrimary {
            waited_ms: waited.as_millis(),
            problems,
        }
    })
}

/// The server answers queries (whatever its lag or replication state).
fn answers(state: BackendState) -> bool {
    matches!(
        state,
        BackendState::Up | BackendState::Lagging | BackendState::ReplicationBroken
    )
}

fn named<'a>(name: &'a str, input: &PlaceInput<'a>, reason: Reason) -> Placement<'a> {
    if input.topology.get(name).is_none() {
        return Placement::Refuse(Refusal::NotConfigured {
            backend: name.to_string(),
        });
    }
    let role = match &input.topology.primary {
        PrimaryState::One(p) if p == name => DestRole::Primary,
        _ => DestRole::Replica,
    };
    run(name, role, reason, false, &[])
}

/// A read: a fresh replica (one that has the session's position, when it must see one).
fn read<'a>(
    decision: &Decision<'a>,
    input: &PlaceInput<'a>,
    cursor: &mut ReadCursor,
) -> Placement<'a> {
    use CausalOutcome::*;
    let causal = decision.consistency != Consistency::Eventual;
    if causal && input.write_position_unknown {
        return primary(input, Reason::CausalFallback, &[PrimaryFallback]);
    }
    let required = match decision.consistency {
        Consistency::Eventual => None,
        Consistency::Session => input.session_write.cloned(),
        Consistency::Global => (input.proxy_write)(),
    };
    let Some(required) = required else {
        return replica(input, cursor, decision.reason, None);
    };
    match input.causal {
        CausalStep::Confirmed(name) => {
            cursor.set_home(name, input.topology, input.now);
            return run(
                name,
                DestRole::Replica,
                Reason::CausalWait,
                true,
                &[ReplicaAfterWait],
            );
        }
        CausalStep::NotConfirmed { timed_out: true } => {
            return primary(input, Reason::CausalFallback, &[Timeout, PrimaryFallback])
        }
        CausalStep::NotConfirmed { timed_out: false } => {
            return primary(input, Reason::CausalFallback, &[PrimaryFallback])
        }
        CausalStep::Choose => {}
    }
    let now = input.now;
    cursor.refresh_home(input.topology, now);
    let preferred = preferred(input, cursor);
    let mut rr = cursor.rr;
    // A replica the monitor already saw at or past the position.
    let stale = |name: &str| {
        cursor.is_excluded(name, now)
            || !input
                .topology
                .get(name)
                .and_then(|b| b.gtid_current_pos.as_ref())
                .is_some_and(|p| p.contains(&required))
    };
    let fresh = choose(input, &stale, preferred, &mut rr);
    // Only when no replica is known fresh: one balancing step per read.
    let any = match fresh {
        Some(_) => None,
        None => choose(
            input,
            &|name| cursor.is_excluded(name, now),
            preferred,
            &mut rr,
        ),
    };
    cursor.rr = rr;
    if let Some(name) = fresh {
        cursor.set_home(name, input.topology, now);
        return run(name, DestRole::Replica, Reason::Read, true, &[ReplicaFresh]);
    }
    match any {
        // A Galera node applies write sets without replication threads, so it cannot be asked
        // to wait for a GTID; the writer has every write already.
        Some(replica)
            if input
                .topology
                .get(replica)
                .is_some_and(|b| b.galera.is_some()) =>
        {
            primary(input, Reason::CausalFallback, &[PrimaryFallback])
        }
        // Ask the replica to confirm it has applied the position, within the timeout.
        Some(replica) => Placement::Confirm {
            replica,
            position: required,
            timeout: input.routing.causal_read_timeout,
        },
        // No replica at all: the ordinary no-replica cases apply.
        None => replica(input, cursor, decision.reason, Some(&required)),
    }
}

fn preferred<'c>(input: &PlaceInput<'_>, cursor: &'c ReadCursor) -> Option<&'c str> {
    match input.routing.replica_affinity {
        ReplicaAffinity::Session => cursor.read_home(),
        ReplicaAffinity::Statement => None,
    }
}

fn choose<'a>(
    input: &PlaceInput<'a>,
    exclude: &dyn Fn(&str) -> bool,
    preferred: Option<&str>,
    rr: &mut u64,
) -> Option<&'a str> {
    let balance = BalanceInput {
        balance: input.routing.replica_balance,
        weight: input.weight,
        connections: input.connections,
        exclude,
        preferred,
    };
    choose_replica(input.topology, &balance, rr).map(|b| b.name.as_str())
}

/// A healthy, fresh replica; with none, a degraded one while there is no primary, else the
/// primary (or a refusal when reads may not fall back to it).
fn replica<'a>(
    input: &PlaceInput<'a>,
    cursor: &mut ReadCursor,
    reason: Reason,
    required: Option<&GtidPosition>,
) -> Placement<'a> {
    let now = input.now;
    cursor.refresh_home(input.topology, now);
    let mut rr = cursor.rr;
    let chosen = choose(
        input,
        &|name| cursor.is_excluded(name, now),
        preferred(input, cursor),
        &mut rr,
    );
    cursor.rr = rr;
    if let Some(name) = chosen {
        cursor.set_home(name, input.topology, now);
        return run(name, DestRole::Replica, reason, true, &[]);
    }
    if let Some(name) = degraded(input, cursor, required) {
        return run(
            name,
            DestRole::Replica,
            Reason::NoPrimaryDegraded,
            true,
            &[],
        );
    }
    if input.routing.read_fallback_to_primary {
        return primary(input, Reason::NoReplicaFallback, &[]);
    }
    Placement::Refuse(Refusal::NoReplica)
}

/// With no primary at all (it died; a failover is under way) replicas cannot catch up with
/// anyone, so reads go to a replica that still answers, whatever its lag, as long as it has
/// what the session must see (`required`).
fn degraded<'a>(
    input: &PlaceInput<'a>,
    cursor: &mut ReadCursor,
    required: Option<&GtidPosition>,
) -> Option<&'a str> {
    if !matches!(input.topology.primary, PrimaryState::None) {
        return None;
    }
    let usable = |b: &&rwproxy_monitor::BackendStatus| {
        b.read_only
            && answers(b.state)
            && !cursor.is_excluded(&b.name, input.now)
            && required.is_none_or(|r| b.gtid_current_pos.as_ref().is_some_and(|p| p.contains(r)))
    };
    let count = input.topology.backends.iter().filter(usable).count();
    if count == 0 {
        return None;
    }
    let rr = cursor.rr.wrapping_add(1);
    let name = input
        .topology
        .backends
        .iter()
        .filter(usable)
        .nth((rr % count as u64) as usize)
        .map(|b| b.name.as_str());
    cursor.rr = rr;
    name
}
