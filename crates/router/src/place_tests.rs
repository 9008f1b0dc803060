//! Placement, table-driven: every case a session meets, from a topology written out in full.

use std::collections::HashMap;
use std::sync::Arc;
use std::time::{Duration, Instant, SystemTime};

use rwproxy_config::{Config, Consistency};
use rwproxy_monitor::Topology;
use rwproxy_monitor::{BackendSpec, BackendState, BackendStatus, GtidPosition, PrimaryState, Role};
use rwproxy_sql::classify;

use crate::{
    after_failure, decide, place, primary_replaced, AfterFailure, CausalOutcome, CausalStep,
    Chosen, Decision, DestRole, FailedAttempt, PlaceInput, Placement, PrimaryWait, ReadCursor,
    Reason, Refusal, SessionView, Target, EXCLUDE_FOR,
};

use BackendState::{Down, Lagging, ReplicationBroken, Up};

/// One backend: name, role, state, `gtid_current_pos`.
type Node = (&'static str, Role, BackendState, Option<&'static str>);

const PRIMARY: Node = ("db1", Role::Primary, Up, Some("0-1-100"));
const R2: Node = ("db2", Role::Replica, Up, Some("0-1-100"));
const R3: Node = ("db3", Role::Replica, Up, Some("0-1-90"));

fn topology(nodes: &[Node], primary: PrimaryState, generation: u64) -> Topology {
    let now = SystemTime::UNIX_EPOCH;
    let backends = nodes
        .iter()
        .map(|(name, role, state, gtid)| {
            let mut b = BackendStatus::starting(&BackendSpec::new(*name, "127.0.0.1:1"), now);
            b.role = *role;
            b.state = *state;
            b.read_only = *role == Role::Replica;
            b.reason = format!("{name} test state");
            b.gtid_current_pos = gtid.map(|g| GtidPosition::parse(g).expect("test gtid"));
            b
        })
        .collect();
    Topology {
        generation,
        backends,
        primary,
    }
}

/// What a check sees of a synced Galera node.
fn galera_status() -> rwproxy_monitor::GaleraStatus {
    rwproxy_monitor::GaleraStatus::from_rows(
        &[
            ("wsrep_local_state".into(), "4".into()),
            ("wsrep_cluster_status".into(), "Primary".into()),
            ("wsrep_local_recv_queue".into(), "0".into()),
        ],
        Some("OFF"),
        Some("NONE"),
        Some("node2"),
    )
}

fn one(name: &str) -> PrimaryState {
    PrimaryState::One(name.into())
}

/// A configuration with `routing:` settings; db3 weighs 3.
fn config(routing: &str) -> Config {
    let yaml = format!(
        "backends:\n  - {{ name: db1, address: 127.0.0.1:3316, primary: true }}\n  - {{ name: db2, address: 127.0.0.1:3317 }}\n  - {{ name: db3, address: 127.0.0.1:3318, weight: 3 }}\nusers:\n  - {{ name: app, password: x }}\nrouting:\n{routing}"
    );
    let env: HashMap<String, String> = HashMap::new();
    rwproxy_config::parse(&yaml, &env).expect("test config")
}

/// Everything a placement reads, owned by the test.
struct World {
    topology: Topology,
    config: Config,
    connections: HashMap<&'static str, usize>,
    session_write: Option<Arc<GtidPosition>>,
    proxy_write: Option<Arc<GtidPosition>>,
    write_position_unknown: bool,
    open_backend: Option<&'static str>,
    now: Instant,
}

impl World {
    fn new(nodes: &[Node], primary: PrimaryState) -> Self {
        Self {
            topology: topology(nodes, primary, 1),
            config: config("  {}"),
            connections: HashMap::new(),
            session_write: None,
            proxy_write: None,
            write_position_unknown: false,
            open_backend: None,
            now: Instant::now(),
        }
    }

    fn routing(mut self, routing: &str) -> Self {
        self.config = config(routing);
        self
    }

    fn wrote(mut self, gtid: &str) -> Self {
        self.session_write = Some(Arc::new(GtidPosition::parse(gtid).expect("gtid")));
        self
    }

    /// Places `decision` with the given causal step and primary wait; returns an owned result.
    fn place_with(
        &self,
        decision: &Decision<'_>,
        cursor: &mut ReadCursor,
        causal: CausalStep<'_>,
        primary_wait: PrimaryWait,
    ) -> Outcome {
        let weight = |name: &str| self.config.backend(name).map(|b| b.weight).unwrap_or(1);
        let connections = |name: &str| self.connections.get(name).copied().unwrap_or(0);
        let proxy_write = || self.proxy_write.clone();
        let input = PlaceInput {
            topology: &self.topology,
            routing: &self.config.routing,
            weight: &weight,
            connections: &connections,
            open_backend: self.open_backend,
            session_write: self.session_write.as_ref(),
            proxy_write: &proxy_write,
            write_position_unknown: self.write_position_unknown,
            primary_wait,
            causal,
            now: self.now,
        };
        Outcome::from(place(decision, &input, cursor))
    }

    fn place(&self, decision: &Decision<'_>, cursor: &mut ReadCursor) -> Outcome {
        self.place_with(decision, cursor, CausalStep::Choose, PrimaryWait::Allowed)
    }

    /// Where `sql` runs for a session in state `view` (decide, then place).
    fn route(&self, sql: &str, view: &SessionView<'_>, cursor: &mut ReadCursor) -> Outcome {
        let d = decide(
            &classify(sql.as_bytes()),
            sql.as_bytes(),
            "app",
            Some("app"),
            view,
            &self.config.routing,
        );
        self.place(&d, cursor)
    }
}

/// A placement without borrows, for comparing with the table.
#[derive(Debug, Clone, PartialEq, Eq)]
enum Outcome {
    Run {
        backend: String,
        role: DestRole,
        reason: Reason,
        retryable: bool,
        causal: Vec<CausalOutcome>,
    },
    Wait,
    Confirm {
        replica: String,
        position: String,
    },
    Refuse(u16, String),
}

impl From<Placement<'_>> for Outcome {
    fn from(p: Placement<'_>) -> Self {
        match p {
            Placement::Run(Chosen {
                backend,
                role,
                reason,
                retryable,
                causal,
            }) => Outcome::Run {
                backend: backend.to_string(),
                role,
                reason,
                retryable,
                causal: causal.to_vec(),
            },
            Placement::WaitForPrimary => Outcome::Wait,
            Placement::Confirm {
                replica, position, ..
            } => Outcome::Confirm {
                replica: replica.to_string(),
                position: position.to_string(),
            },
            Placement::Refuse(r) => {
                let ((code, _), message) = r.client_error();
                Outcome::Refuse(code, message)
            }
        }
    }
}

impl Outcome {
    fn backend(&self) -> &str {
        match self {
            Outcome::Run { backend, .. } => backend,
            other => panic!("not run: {other:?}"),
        }
    }
}

fn run(backend: &str, role: DestRole, reason: Reason, causal: &[CausalOutcome]) -> Outcome {
    Outcome::Run {
        backend: backend.into(),
        role,
        reason,
        retryable: role == DestRole::Replica,
        causal: causal.to_vec(),
    }
}

fn decision(target: Target<'_>, reason: Reason, consistency: Consistency) -> Decision<'_> {
    Decision {
        target,
        reason,
        consistency,
    }
}

const READ: Decision<'static> = Decision {
    target: Target::Replica,
    reason: Reason::Read,
    consistency: Consistency::Eventual,
};
const WRITE: Decision<'static> = Decision {
    target: Target::Primary,
    reason: Reason::Write,
    consistency: Consistency::Eventual,
};

#[test]
fn single_placements() {
    use CausalOutcome::*;
    use DestRole::{Primary as P, Replica as R};
    let session_read = decision(Target::Replica, Reason::Read, Consistency::Session);
    let global_read = decision(Target::Replica, Reason::Read, Consistency::Global);
    let home = decision(
        Target::SessionHome,
        Reason::SessionCommand,
        Consistency::Eventual,
    );
    let named = |b| decision(Target::Backend(b), Reason::Rule, Consistency::Eventual);
    let lagging2 = ("db2", Role::Replica, Lagging, Some("0-1-100"));
    let broken3 = ("db3", Role::Replica, ReplicationBroken, Some("0-1-100"));
    let down = |n: &'static str, r| (n, r, Down, None);
    let all_down = [down("db1", Role::Primary), down("db2", Role::Replica)];
    let both_replicas = [PRIMARY, R2, R3];
    struct Case<'d> {
        name: &'static str,
        world: World,
        decision: Decision<'d>,
        causal: CausalStep<'static>,
        wait: PrimaryWait,
        expect: Outcome,
    }
    let case = |name, world, decision, expect| Case {
        name,
        world,
        decision,
        causal: CausalStep::Choose,
        wait: PrimaryWait::Allowed,
        expect,
    };
    let cases = [
        case(
            "a write goes to the primary",
            World::new(&both_replicas, one("db1")),
            WRITE,
            run("db1", P, Reason::Write, &[]),
        ),
        case(
            "no primary: a write waits for one",
            World::new(&[R2, R3], PrimaryState::None),
            WRITE,
            Outcome::Wait,
        ),
        Case {
            wait: PrimaryWait::Expired(Duration::from_millis(1500)),
            ..case(
                "no primary past write_wait_timeout: 1290 naming why",
                World::new(&[down("db1", Role::Primary), R2], PrimaryState::None),
                WRITE,
                Outcome::Refuse(
                    1290,
                    "rwproxy: no primary available after waiting 1500 ms; writes are refused: backend 'db1' (127.0.0.1:1) is down: db1 test state".into(),
                ),
            )
        },
        case(
            "every backend down: 1429 at once, no wait",
            World::new(&all_down, PrimaryState::None),
            WRITE,
            Outcome::Refuse(
                1429,
                "rwproxy: cannot reach any backend: backend 'db1' (127.0.0.1:1) is down: db1 test state; backend 'db2' (127.0.0.1:1) is down: db2 test state".into(),
            ),
        ),
        case(
            "two writable servers: writes refused (1290)",
            World::new(&both_replicas, PrimaryState::Conflict(vec!["db1".into(), "db2".into()])),
            WRITE,
            Outcome::Refuse(
                1290,
                "rwproxy: several backends are writable at once (db1, db2); writes are refused until exactly one primary remains".into(),
            ),
        ),
        case(
            "a read goes to a replica",
            World::new(&[PRIMARY, R2], one("db1")),
            READ,
            run("db2", R, Reason::Read, &[]),
        ),
        case(
            "no usable replica: the primary serves the read",
            World::new(&[PRIMARY, lagging2, broken3], one("db1")),
            READ,
            run("db1", P, Reason::NoReplicaFallback, &[]),
        ),
        case(
            "no usable replica and no fallback: 1429",
            World::new(&[PRIMARY, lagging2], one("db1")).routing("  read_fallback_to_primary: false"),
            READ,
            Outcome::Refuse(
                1429,
                "rwproxy: no replica is available for reads and read_fallback_to_primary is off".into(),
            ),
        ),
        case(
            "no primary: a lagging replica serves the read (degraded)",
            World::new(&[down("db1", Role::Primary), lagging2], PrimaryState::None),
            READ,
            run("db2", R, Reason::NoPrimaryDegraded, &[]),
        ),
        case(
            "no primary, no replica answering yet: the read waits for a primary",
            World::new(&[down("db1", Role::Primary), ("db2", Role::Replica, BackendState::Starting, None)], PrimaryState::None),
            READ,
            Outcome::Wait,
        ),
        case(
            "degraded, but no replica has the session's write: wait for a primary",
            World::new(&[down("db1", Role::Primary), ("db2", Role::Replica, Lagging, Some("0-1-90"))], PrimaryState::None).wrote("0-1-100"),
            session_read,
            Outcome::Wait,
        ),
        case(
            "session consistency: a replica already at the write's position",
            World::new(&both_replicas, one("db1")).wrote("0-1-95"),
            session_read,
            run("db2", R, Reason::Read, &[ReplicaFresh]),
        ),
        case(
            "session consistency: no replica known at the position: ask one to confirm",
            World::new(&[PRIMARY, R3], one("db1")).wrote("0-1-95"),
            session_read,
            Outcome::Confirm {
                replica: "db3".into(),
                position: "0-1-95".into(),
            },
        ),
        Case {
            causal: CausalStep::Confirmed("db3"),
            ..case(
                "the replica confirmed: it serves the read",
                World::new(&[PRIMARY, R3], one("db1")).wrote("0-1-95"),
                session_read,
                run("db3", R, Reason::CausalWait, &[ReplicaAfterWait]),
            )
        },
        Case {
            causal: CausalStep::NotConfirmed { timed_out: true },
            ..case(
                "the confirmation timed out: the primary serves the read",
                World::new(&[PRIMARY, R3], one("db1")).wrote("0-1-95"),
                session_read,
                run("db1", P, Reason::CausalFallback, &[Timeout, PrimaryFallback]),
            )
        },
        Case {
            causal: CausalStep::NotConfirmed { timed_out: false },
            ..case(
                "the confirmation failed: the primary serves the read",
                World::new(&[PRIMARY, R3], one("db1")).wrote("0-1-95"),
                session_read,
                run("db1", P, Reason::CausalFallback, &[PrimaryFallback]),
            )
        },
        case(
            "galera: a node not known at the position is not asked; the writer serves the read",
            {
                let mut w = World::new(&[PRIMARY, R3], one("db1")).wrote("0-1-95");
                w.topology.backends[1].galera = Some(galera_status());
                w
            },
            session_read,
            run("db1", P, Reason::CausalFallback, &[PrimaryFallback]),
        ),
        case(
            "galera: a node already at the position serves the read",
            {
                let mut w = World::new(&[PRIMARY, R3], one("db1")).wrote("0-1-80");
                w.topology.backends[1].galera = Some(galera_status());
                w
            },
            session_read,
            run("db3", R, Reason::Read, &[ReplicaFresh]),
        ),
        case(
            "a session that never wrote pays nothing under session consistency",
            World::new(&[PRIMARY, R3], one("db1")),
            session_read,
            run("db3", R, Reason::Read, &[]),
        ),
        case(
            "eventual consistency ignores the session's write",
            World::new(&[PRIMARY, R3], one("db1")).wrote("0-1-95"),
            READ,
            run("db3", R, Reason::Read, &[]),
        ),
        case(
            "global consistency follows the proxy's newest write",
            World {
                proxy_write: Some(Arc::new(GtidPosition::parse("0-1-99").expect("gtid"))),
                ..World::new(&both_replicas, one("db1"))
            },
            global_read,
            run("db2", R, Reason::Read, &[ReplicaFresh]),
        ),
        case(
            "a write position that could not be parsed: causal reads go to the primary",
            World {
                write_position_unknown: true,
                ..World::new(&both_replicas, one("db1"))
            },
            session_read,
            run("db1", P, Reason::CausalFallback, &[PrimaryFallback]),
        ),
        case(
            "causal read, no replica at all: the ordinary fallback",
            World::new(&[PRIMARY, lagging2], one("db1")).wrote("0-1-95"),
            session_read,
            run("db1", P, Reason::NoReplicaFallback, &[]),
        ),
        case(
            "a session command runs on the primary",
            World::new(&both_replicas, one("db1")),
            home,
            run("db1", P, Reason::SessionCommand, &[]),
        ),
        case(
            "no primary: a session command runs where the session already is",
            World {
                open_backend: Some("db3"),
                ..World::new(&both_replicas, PrimaryState::None)
            },
            home,
            Outcome::Run {
                backend: "db3".into(),
                role: R,
                reason: Reason::SessionCommand,
                retryable: false,
                causal: vec![],
            },
        ),
        case(
            "no primary and no connection yet: a session command runs on a replica",
            World::new(&[R2], PrimaryState::None),
            home,
            run("db2", R, Reason::SessionCommand, &[]),
        ),
        case(
            "a named backend that is the primary",
            World::new(&both_replicas, one("db1")),
            named("db1"),
            run("db1", P, Reason::Rule, &[]),
        ),
        case(
            "a named replica is used whatever its state (the rule says so)",
            World::new(&[PRIMARY, lagging2], one("db1")),
            named("db2"),
            Outcome::Run {
                backend: "db2".into(),
                role: R,
                reason: Reason::Rule,
                retryable: false,
                causal: vec![],
            },
        ),
        case(
            "a named backend that is not configured: 1429",
            World::new(&both_replicas, one("db1")),
            named("db9"),
            Outcome::Refuse(1429, "rwproxy: backend 'db9' is not configured".into()),
        ),
    ];
    for c in cases {
        let mut cursor = ReadCursor::default();
        let got = c
            .world
            .place_with(&c.decision, &mut cursor, c.causal, c.wait);
        assert_eq!(got, c.expect, "{}", c.name);
    }
}

#[test]
fn statements_decided_and_placed() {
    use DestRole::{Primary as P, Replica as R};
    let world = World::new(&[PRIMARY, R2], one("db1"))
        .routing("  rules:\n    - { match: 'reports', route: primary }\n    - { match: 'archive', route: db2 }");
    let idle = SessionView::default();
    let in_trx = SessionView {
        in_transaction: true,
        transaction_backend: Some("db2"),
        ..Default::default()
    };
    let ro_next = SessionView {
        next_transaction_read_only: true,
        ..Default::default()
    };
    let pinned = SessionView {
        pinned: true,
        ..Default::default()
    };
    let not_retryable = |b: &str, role, reason| Outcome::Run {
        backend: b.into(),
        role,
        reason,
        retryable: false,
        causal: vec![],
    };
    let cases: [(&str, &SessionView<'_>, Outcome); 10] = [
        ("SELECT 1", &idle, run("db2", R, Reason::Read, &[])),
        (
            "START TRANSACTION READ ONLY",
            &idle,
            run("db2", R, Reason::ReadOnlyTransaction, &[]),
        ),
        (
            "BEGIN",
            &ro_next,
            run("db2", R, Reason::ReadOnlyTransaction, &[]),
        ),
        ("BEGIN", &idle, run("db1", P, Reason::InTransaction, &[])),
        (
            "SELECT 1",
            &in_trx,
            not_retryable("db2", R, Reason::InTransaction),
        ),
        (
            "SELECT * FROM tmp",
            &pinned,
            run("db1", P, Reason::Pinned, &[]),
        ),
        (
            "SELECT /* rwproxy:primary */ 1",
            &idle,
            run("db1", P, Reason::Hint, &[]),
        ),
        (
            "SELECT /* rwproxy:replica */ NOW()",
            &idle,
            run("db2", R, Reason::Hint, &[]),
        ),
        (
            "SELECT * FROM reports",
            &idle,
            run("db1", P, Reason::Rule, &[]),
        ),
        (
            "SELECT * FROM archive",
            &idle,
            not_retryable("db2", R, Reason::Rule),
        ),
    ];
    for (sql, view, expect) in cases {
        let got = world.route(sql, view, &mut ReadCursor::default());
        assert_eq!(got, expect, "{sql}");
    }
}

/// Reads spread by the configured balance.
#[test]
fn balancing_weights_and_least_connections() {
    let nodes = [PRIMARY, R2, R3];
    let count = |world: &World, n: usize, affinity_statement: bool| {
        let mut cursor = ReadCursor::default();
        let mut seen: HashMap<String, usize> = HashMap::new();
        for _ in 0..n {
            let got = world.place(&READ, &mut cursor);
            *seen.entry(got.backend().to_string()).or_default() += 1;
            if !affinity_statement {
                cursor = ReadCursor::starting_at(cursor.rr);
            }
        }
        seen
    };
    let rr = World::new(&nodes, one("db1")).routing("  replica_affinity: statement");
    let seen = count(&rr, 100, true);
    assert_eq!((seen["db2"], seen["db3"]), (50, 50));
    let weighted = World::new(&nodes, one("db1"))
        .routing("  replica_affinity: statement\n  replica_balance: weighted");
    let seen = count(&weighted, 400, true);
    assert_eq!((seen["db2"], seen["db3"]), (100, 300));
    let mut least = World::new(&nodes, one("db1"))
        .routing("  replica_affinity: statement\n  replica_balance: least_connections");
    least.connections.insert("db2", 7);
    least.connections.insert("db3", 2);
    let seen = count(&least, 10, true);
    assert_eq!(seen.get("db3"), Some(&10));
    least.connections.insert("db3", 9);
    let seen = count(&least, 10, true);
    assert_eq!(seen.get("db2"), Some(&10));
    // Session affinity: new sessions (cursors one step apart) alternate.
    let sessions = World::new(&nodes, one("db1"));
    let firsts: Vec<String> = (0..4)
        .map(|id| {
            sessions
                .place(&READ, &mut ReadCursor::starting_at(id))
                .backend()
                .to_string()
        })
        .collect();
    assert_eq!(firsts, ["db3", "db2", "db3", "db2"]);
}

/// `replica_affinity: session`: a session keeps its replica while the readable set is the
/// same; chooses again when a replica leaves or joins.
#[test]
fn affinity_with_replicas_leaving_and_joining() {
    let four = ("db4", Role::Replica, Up, Some("0-1-100"));
    let mut world = World::new(&[PRIMARY, R2, R3], one("db1"));
    let mut cursor = ReadCursor::starting_at(0);
    let first = world.place(&READ, &mut cursor).backend().to_string();
    assert_eq!(first, "db3");
    for _ in 0..5 {
        assert_eq!(world.place(&READ, &mut cursor).backend(), first);
    }
    // A new topology generation with the same readable set: kept.
    world.topology = topology(&[PRIMARY, R2, R3], one("db1"), 2);
    assert_eq!(world.place(&READ, &mut cursor).backend(), first);
    // Its replica starts lagging: the session moves, and stays on the new one.
    let lagging3 = ("db3", Role::Replica, Lagging, Some("0-1-100"));
    world.topology = topology(&[PRIMARY, R2, lagging3], one("db1"), 3);
    assert_eq!(world.place(&READ, &mut cursor).backend(), "db2");
    assert_eq!(cursor.read_home(), Some("db2"));
    // It comes back: the readable set changed, so the session chooses again (sessions spread
    // over the returning replica) and keeps that choice.
    world.topology = topology(&[PRIMARY, R2, R3], one("db1"), 4);
    let again = world.place(&READ, &mut cursor).backend().to_string();
    for _ in 0..3 {
        assert_eq!(world.place(&READ, &mut cursor).backend(), again);
    }
    // Over many sessions a joining replica gets its share.
    world.topology = topology(&[PRIMARY, R2, R3, four], one("db1"), 5);
    let mut on_four = 0;
    for id in 0..30 {
        let mut c = ReadCursor::starting_at(id);
        world.topology = topology(&[PRIMARY, R2, R3], one("db1"), 5);
        world.place(&READ, &mut c);
        world.topology = topology(&[PRIMARY, R2, R3, four], one("db1"), 6);
        if world.place(&READ, &mut c).backend() == "db4" {
            on_four += 1;
        }
    }
    assert_eq!(on_four, 10);
}

/// A backend that failed for a session is skipped by it for [`EXCLUDE_FOR`], then used again.
#[test]
fn exclusions_expire() {
    let mut world =
        World::new(&[PRIMARY, R2, R3], one("db1")).routing("  replica_affinity: statement");
    let mut cursor = ReadCursor::starting_at(0);
    assert_eq!(world.place(&READ, &mut cursor).backend(), "db3");
    cursor.exclude("db3", world.now);
    assert!(cursor.is_excluded("db3", world.now));
    for _ in 0..3 {
        assert_eq!(world.place(&READ, &mut cursor).backend(), "db2");
    }
    // Both replicas failed: the primary serves reads meanwhile.
    cursor.exclude("db2", world.now);
    assert_eq!(
        world.place(&READ, &mut cursor),
        run("db1", DestRole::Primary, Reason::NoReplicaFallback, &[])
    );
    // The exclusions end; reads spread over both replicas again.
    world.now += EXCLUDE_FOR;
    assert!(!cursor.is_excluded("db3", world.now));
    let seen: std::collections::HashSet<String> = (0..2)
        .map(|_| world.place(&READ, &mut cursor).backend().to_string())
        .collect();
    assert_eq!(seen.len(), 2, "{seen:?}");
    // Excluding a backend twice keeps one entry that runs from the second time.
    let mut c = ReadCursor::default();
    let t0 = world.now;
    c.exclude("db2", t0);
    c.exclude("db2", t0 + Duration::from_secs(1));
    assert!(c.is_excluded("db2", t0 + EXCLUDE_FOR));
    assert!(!c.is_excluded("db2", t0 + EXCLUDE_FOR + Duration::from_secs(1)));
}

/// A causal read with a session write: the confirmation loop as the session runs it.
#[test]
fn causal_confirmation_sets_the_read_home() {
    let world = World::new(&[PRIMARY, R3], one("db1")).wrote("0-1-95");
    let read = decision(Target::Replica, Reason::Read, Consistency::Session);
    let mut cursor = ReadCursor::default();
    let first = world.place(&read, &mut cursor);
    let Outcome::Confirm { replica, .. } = first else {
        panic!("expected a confirmation, got {first:?}");
    };
    let got = world.place_with(
        &read,
        &mut cursor,
        CausalStep::Confirmed(&replica),
        PrimaryWait::Allowed,
    );
    assert_eq!(got.backend(), "db3");
    assert_eq!(cursor.read_home(), Some("db3"));
    // The primary gone meanwhile: the fallback waits for one.
    let mut gone = World::new(&[R3], PrimaryState::None).wrote("0-1-95");
    gone.topology.backends[0].gtid_current_pos = None;
    let got = gone.place_with(
        &read,
        &mut cursor,
        CausalStep::NotConfirmed { timed_out: true },
        PrimaryWait::Allowed,
    );
    assert_eq!(got, Outcome::Wait);
}

#[test]
fn what_follows_a_failure() {
    use AfterFailure::*;
    use DestRole::{Primary as P, Replica as R};
    let attempt = |role, retryable, attempts, in_transaction, refused_login, never_sent| {
        after_failure(&FailedAttempt {
            role,
            retryable,
            attempts,
            in_transaction,
            refused_login,
            never_sent,
        })
    };
    let cases = [
        // role, retryable, attempts, in trx, refused login, never sent → next
        (
            (R, true, 1, false, false, false),
            Retry { on_primary: false },
        ),
        ((R, true, 1, false, true, true), Retry { on_primary: true }),
        ((R, true, 2, false, false, true), GiveUp),
        ((R, true, 1, true, false, true), GiveUp),
        ((P, false, 1, false, false, true), WaitForPrimary),
        ((P, false, 3, false, false, true), WaitForPrimary),
        ((P, false, 4, false, false, true), GiveUp),
        ((P, false, 1, false, false, false), GiveUp),
        ((P, false, 1, true, false, true), GiveUp),
        ((R, false, 1, false, false, true), GiveUp),
    ];
    for ((role, retryable, attempts, trx, login, unsent), expect) in cases {
        assert_eq!(
            attempt(role, retryable, attempts, trx, login, unsent),
            expect,
            "{role:?} retryable={retryable} attempts={attempts} trx={trx} login={login} unsent={unsent}"
        );
    }
}

#[test]
fn a_replaced_or_confirmed_primary_ends_the_wait() {
    let failed = topology(&[PRIMARY, R2], one("db1"), 1);
    assert!(!primary_replaced(&failed, "db1", false));
    assert!(
        primary_replaced(&failed, "db1", true),
        "said up by a later check"
    );
    let promoted = topology(&[("db1", Role::Primary, Down, None), R2], one("db2"), 2);
    assert!(primary_replaced(&promoted, "db1", false));
    let none = topology(
        &[("db1", Role::Primary, Down, None), R2],
        PrimaryState::None,
        2,
    );
    assert!(!primary_replaced(&none, "db1", true));
    let still_down = topology(&[("db1", Role::Primary, Down, None), R2], one("db1"), 3);
    assert!(!primary_replaced(&still_down, "db1", true));
}

#[test]
fn refusals_carry_mysql_codes() {
    let cases = [
        (
            Refusal::WriteConflict {
                writable: vec!["a".into()],
            },
            1290,
        ),
        (
            Refusal::NoPrimary {
                waited_ms: 1,
                problems: vec![],
            },
            1290,
        ),
        (Refusal::Unreachable { problems: vec![] }, 1429),
        (
            Refusal::NotConfigured {
                backend: "x".into(),
            },
            1429,
        ),
        (Refusal::NoReplica, 1429),
    ];
    for (refusal, code) in cases {
        let ((got, state), _) = refusal.client_error();
        assert_eq!((got, state), (code, b"HY000"), "{refusal:?}");
    }
    assert_eq!(
        Refusal::NoPrimary {
            waited_ms: 5,
            problems: vec![]
        }
        .client_error()
        .1,
        "rwproxy: no primary available after waiting 5 ms; writes are refused"
    );
}
