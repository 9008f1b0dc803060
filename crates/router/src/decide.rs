use rwproxy_config::{Consistency, RouteTarget, RoutingConfig};
use rwproxy_sql::{Classification, ConsistencyHint, Flags, RouteHint, StatementKind};

/// Where a statement goes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Target<'a> {
    /// The single active primary.
    Primary,
    /// A healthy, fresh replica (chosen by [`crate::choose_replica`]).
    Replica,
    /// This backend by name (the one holding the transaction, a rule's backend, the server that
    /// ran the previous statement).
    Backend(&'a str),
    /// A session command (`SET`, `USE`, …): run where the session is at home (the primary when
    /// it is up, else any server), then replayed on every other connection of the session.
    SessionHome,
}

/// Why; each reason is counted in metrics.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Reason {
    Write,
    Read,
    InTransaction,
    ReadOnlyTransaction,
    Pinned,
    Hint,
    Rule,
    SessionCommand,
    PreviousStatement,
    /// Placement: the read waited for a replica to reach the session's GTID position.
    CausalWait,
    /// Placement: no replica reached the session's position in time; the primary served it.
    CausalFallback,
    /// Placement: no usable replica; the read went to the primary.
    NoReplicaFallback,
    /// Placement: no primary (a failover is under way); a replica served the read whatever its
    /// lag.
    NoPrimaryDegraded,
}

impl Reason {
    pub fn as_str(self) -> &'static str {
        match self {
            Reason::Write => "write",
            Reason::Read => "read",
            Reason::InTransaction => "in_transaction",
            Reason::ReadOnlyTransaction => "read_only_transaction",
            Reason::Pinned => "pinned",
            Reason::Hint => "hint",
            Reason::Rule => "rule",
            Reason::SessionCommand => "session_command",
            Reason::PreviousStatement => "previous_statement",
            Reason::CausalWait => "causal_wait",
            Reason::CausalFallback => "causal_fallback",
            Reason::NoReplicaFallback => "no_replica_fallback",
            Reason::NoPrimaryDegraded => "no_primary_degraded",
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Decision<'a> {
    pub target: Target<'a>,
    pub reason: Reason,
    /// The consistency this statement asks for (hint, then rule, then user, then global).
    pub consistency: Consistency,
}

/// What the policy needs to know about the session.
#[derive(Debug, Clone, Copy, Default)]
pub struct SessionView<'a> {
    /// The server said a transaction is open (`SERVER_STATUS_IN_TRANS`).
    pub in_transaction: bool,
    /// The backend holding the open transaction.
    pub transaction_backend: Option<&'a str>,
    /// `autocommit` is off: every statement runs in a transaction on the primary.
    pub autocommit_off: bool,
    /// `SET TRANSACTION READ ONLY` was issued: the next `BEGIN` may go to a replica.
    pub next_transaction_read_only: bool,
    /// Something only the primary's connection holds: temporary tables, `LOCK TABLES`,
    /// `GET_LOCK`, SQL-level prepared statements.
    pub pinned: bool,
    /// A user variable was assigned by a statement that ran on the primary only.
    pub user_vars_on_primary: bool,
    /// The server that ran the previous statement.
    pub last_backend: Option<&'a str>,
    /// The consistency the session's user asks for (per-user override), if any.
    pub user_consistency: Option<Consistency>,
}

fn hint_consistency(h: ConsistencyHint) -> Consistency {
    match h {
        ConsistencyHint::Eventual => Consistency::Eventual,
        ConsistencyHint::Session => Consistency::Session,
        ConsistencyHint::Global => Consistency::Global,
    }
}

/// Decides where a statement goes. Anything not known to be safe on a replica goes to the
/// primary.
pub fn decide<'a>(
    c: &Classification<'_>,
    sql: &[u8],
    user: &str,
    schema: Option<&str>,
    s: &SessionView<'a>,
    routing: &'a RoutingConfig,
) -> Decision<'a> {
    let mut consistency = s.user_consistency.unwrap_or(routing.consistency);
    let decision = |target, reason, consistency| Decision {
        target,
        reason,
        consistency,
    };

    // A transaction stays on its server, whatever else is said.
    if s.in_transaction {
        if let Some(b) = s.transaction_backend {
            return decision(Target::Backend(b), Reason::InTransaction, consistency);
        }
        return decision(Target::Primary, Reason::InTransaction, consistency);
    }
    if s.autocommit_off
        && !matches!(c.kind, StatementKind::SetAutocommit(_))
        && !is_session_command(c.kind)
    {
        return decision(Target::Primary, Reason::InTransaction, consistency);
    }

    match c.kind {
        StatementKind::Begin { read_only } => {
            let read_only =
                read_only || c.flags.contains(Flags::READ_ONLY_TXN) || s.next_transaction_read_only;
            return if read_only && !s.pinned && !s.autocommit_off {
                decision(Target::Replica, Reason::ReadOnlyTransaction, consistency)
            } else {
                decision(Target::Primary, Reason::InTransaction, consistency)
            };
        }
        StatementKind::Kill => return decision(Target::Primary, Reason::Write, consistency),
        k if is_session_command(k) => {
            return decision(Target::SessionHome, Reason::SessionCommand, consistency)
        }
        _ => {}
    }

    // Rules, in order; the first match wins.
    if !routing.rules.is_empty() {
        if let Ok(text) = std::str::from_utf8(sql) {
            if let Some(rule) = routing.rules.iter().find(|r| r.matches(text, user, schema)) {
                if let Some(rc) = rule.consistency {
                    consistency = rc;
                }
                if let Some(h) = c.consistency_hint {
                    consistency = hint_consistency(h);
                }
                let target = match &rule.route {
                    RouteTarget::Primary => Target::Primary,
                    RouteTarget::Replica => Target::Replica,
                    RouteTarget::Backend(name) => Target::Backend(name.as_str()),
                };
                return decision(target, Reason::Rule, consistency);
            }
        }
    }
    if let Some(h) = c.consistency_hint {
        consistency = hint_consistency(h);
    }

    match c.hint {
        Some(RouteHint::Primary) => return decision(Target::Primary, Reason::Hint, consistency),
        Some(RouteHint::Replica) => return decision(Target::Replica, Reason::Hint, consistency),
        None => {}
    }

    // Questions about the previous statement go where it ran.
    if c.flags.contains(Flags::LAST_STATEMENT_INFO) {
        return match s.last_backend {
            Some(b) => decision(Target::Backend(b), Reason::PreviousStatement, consistency),
            None => decision(Target::Primary, Reason::PreviousStatement, consistency),
        };
    }
    if s.pinned {
        return decision(Target::Primary, Reason::Pinned, consistency);
    }
    if s.user_vars_on_primary && c.flags.contains(Flags::READS_USER_VAR) {
        return decision(Target::Primary, Reason::Pinned, consistency);
    }
    if c.is_read_only() {
        decision(Target::Replica, Reason::Read, consistency)
    } else {
        decision(Target::Primary, Reason::Write, consistency)
    }
}

/// A statement prepared in the binary protocol: as its text would be, except that a session
/// command cannot usefully be prepared and runs on the primary.
pub fn for_prepared(d: Decision<'_>) -> Decision<'_> {
    match d.target {
        Target::SessionHome => Decision {
            target: Target::Primary,
            ..d
        },
        _ => d,
    }
}

/// A `COM_STMT_EXECUTE`: where its long data was sent (the parameters live there), a bulk
/// execute on the primary (it writes), else as its text decides ([`for_prepared`]).
pub fn decide_execute<'a>(
    long_data_on: Option<&'a str>,
    bulk: bool,
    text: impl FnOnce() -> Decision<'a>,
) -> Decision<'a> {
    let fixed = |target, reason| Decision {
        target,
        reason,
        consistency: Consistency::Eventual,
    };
    match long_data_on {
        Some(b) => fixed(Target::Backend(b), Reason::Pinned),
        None if bulk => fixed(Target::Primary, Reason::Write),
        None => for_prepared(text()),
    }
}

/// Statements that change session state and are replayed on every backend connection.
pub fn is_session_command(kind: StatementKind) -> bool {
    matches!(
        kind,
        StatementKind::SetSession
            | StatementKind::SetNames
            | StatementKind::SetAutocommit(_)
            | StatementKind::SetTransaction
            | StatementKind::Use
    )
}

#[cfg(test)]
mod tests {
    use super::*;
    use rwproxy_sql::classify;

    fn routing(yaml_rules: &str) -> RoutingConfig {
        let yaml = format!(
            "backends:\n  - {{ name: db1, address: 127.0.0.1:3316, primary: true }}\n  - {{ name: db2, address: 127.0.0.1:3317 }}\nusers:\n  - {{ name: app, password: x }}\nrouting:\n  rules:\n{yaml_rules}"
        );
        let env: std::collections::HashMap<String, String> = Default::default();
        rwproxy_config::parse(&yaml, &env).unwrap().routing
    }

    fn route<'a>(sql: &str, s: &SessionView<'a>, r: &'a RoutingConfig) -> Decision<'a> {
        decide(
            &classify(sql.as_bytes()),
            sql.as_bytes(),
            "app",
            Some("app"),
            s,
            r,
        )
    }

    #[test]
    fn reads_and_writes() {
        let r = routing("    []");
        let s = SessionView::default();
        assert_eq!(
            route("SELECT * FROM t WHERE id = 1", &s, &r).target,
            Target::Replica
        );
        assert_eq!(
            route("INSERT INTO t VALUES (1)", &s, &r).target,
            Target::Primary
        );
        assert_eq!(
            route("SELECT * FROM t FOR UPDATE", &s, &r).target,
            Target::Primary
        );
        assert_eq!(route("CALL p()", &s, &r).target, Target::Primary);
        assert_eq!(
            route("CREATE TABLE x (a int)", &s, &r).target,
            Target::Primary
        );
        assert_eq!(route("gibberish here", &s, &r).target, Target::Primary);
        assert_eq!(
            route("SET NAMES utf8mb4", &s, &r).target,
            Target::SessionHome
        );
        assert_eq!(route("USE app", &s, &r).target, Target::SessionHome);
    }

    #[test]
    fn transactions_stay_put() {
        let r = routing("    []");
        let s = SessionView {
            in_transaction: true,
            transaction_backend: Some("db2"),
            ..Default::default()
        };
        let d = route("INSERT INTO t VALUES (1)", &s, &r);
        assert_eq!(
            (d.target, d.reason),
            (Target::Backend("db2"), Reason::InTransaction)
        );
        let s = SessionView {
            autocommit_off: true,
            ..Default::default()
        };
        assert_eq!(route("SELECT 1", &s, &r).target, Target::Primary);
        assert_eq!(
            route("SET autocommit=1", &s, &r).target,
            Target::SessionHome
        );
        let s = SessionView::default();
        assert_eq!(
            route("START TRANSACTION READ ONLY", &s, &r).target,
            Target::Replica
        );
        assert_eq!(route("BEGIN", &s, &r).target, Target::Primary);
        assert_eq!(route("START TRANSACTION", &s, &r).target, Target::Primary);
    }

    #[test]
    fn previous_statement_and_pins() {
        let r = routing("    []");
        let s = SessionView {
            last_backend: Some("db3"),
            ..Default::default()
        };
        assert_eq!(
            route("SHOW WARNINGS", &s, &r).target,
            Target::Backend("db3")
        );
        assert_eq!(
            route("SELECT LAST_INSERT_ID()", &s, &r).target,
            Target::Primary
        );
        let s = SessionView {
            pinned: true,
            ..Default::default()
        };
        assert_eq!(route("SELECT * FROM tmp", &s, &r).reason, Reason::Pinned);
        let s = SessionView {
            user_vars_on_primary: true,
            ..Default::default()
        };
        assert_eq!(route("SELECT @x", &s, &r).target, Target::Primary);
        assert_eq!(route("SELECT 1", &s, &r).target, Target::Replica);
    }

    #[test]
    fn prepared_statements_and_executes() {
        let r = routing("    []");
        let s = SessionView::default();
        let set = for_prepared(route("SET NAMES utf8mb4", &s, &r));
        assert_eq!(
            (set.target, set.reason),
            (Target::Primary, Reason::SessionCommand)
        );
        let read = for_prepared(route("SELECT 1", &s, &r));
        assert_eq!(read.target, Target::Replica);
        let text = || route("SELECT 1", &s, &r);
        let d = decide_execute(Some("db2"), false, text);
        assert_eq!(
            (d.target, d.reason),
            (Target::Backend("db2"), Reason::Pinned)
        );
        let d = decide_execute(None, true, text);
        assert_eq!((d.target, d.reason), (Target::Primary, Reason::Write));
        assert_eq!(decide_execute(None, false, text).target, Target::Replica);
    }

    #[test]
    fn hints_and_rules() {
        let r = routing("    - { match: '(?i)^select .* from reports', route: primary }\n    - { match: 'archive', route: db2, consistency: eventual }");
        let s = SessionView::default();
        let d = route("SELECT * FROM reports", &s, &r);
        assert_eq!((d.target, d.reason), (Target::Primary, Reason::Rule));
        let d = route("SELECT * FROM archive", &s, &r);
        assert_eq!(d.target, Target::Backend("db2"));
        assert_eq!(d.consistency, Consistency::Eventual);
        let d = route("SELECT /* rwproxy:primary */ 1", &s, &r);
        assert_eq!((d.target, d.reason), (Target::Primary, Reason::Hint));
        let d = route("SELECT /* rwproxy:consistency=global */ 1", &s, &r);
        assert_eq!(d.consistency, Consistency::Global);
        assert_eq!(route("SELECT 1", &s, &r).consistency, Consistency::Session);
    }
}
