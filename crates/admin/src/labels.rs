//! The closed vocabularies used as metric label values.
//!
//! Every label except `backend` and `hash` takes its value from one of the enums in this
//! file, which keeps the number of time series small and known in advance. Each enum has
//! `ALL` (every variant, in index order), `index()` (position in `ALL`, used to address
//! pre-created counters without a lookup) and `as_str()` (the exported label value).

use std::fmt::Write as _;

use prometheus_client::encoding::{EncodeLabelValue, LabelValueEncoder};

/// Defines a label enum with its `ALL`, `index()`, `as_str()` and label encoding.
macro_rules! label_enum {
    (
        $(#[$meta:meta])*
        pub enum $name:ident { $( $(#[$vmeta:meta])* $variant:ident => $text:literal ),+ $(,)? }
    ) => {
        $(#[$meta])*
        #[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
        pub enum $name { $( $(#[$vmeta])* $variant ),+ }

        impl $name {
            /// Every variant, in the order used by [`Self::index`].
            pub const ALL: &'static [$name] = &[$($name::$variant),+];

            /// Position of this variant in [`Self::ALL`].
            pub fn index(self) -> usize {
                self as usize
            }

            /// The label value exported for this variant.
            pub fn as_str(self) -> &'static str {
                match self { $($name::$variant => $text),+ }
            }
        }

        impl std::fmt::Display for $name {
            fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
                f.write_str(self.as_str())
            }
        }

        impl EncodeLabelValue for $name {
            fn encode(&self, encoder: &mut LabelValueEncoder) -> std::fmt::Result {
                encoder.write_str(self.as_str())
            }
        }
    };
}

label_enum! {
    /// Where the router sent a statement.
    pub enum DestRole {
        /// The writable primary.
        Primary => "primary",
        /// A read-only replica.
        Replica => "replica",
    }
}

label_enum! {
    /// Why the router picked the destination it picked.
    pub enum Reason {
        /// The statement writes (or may write).
        Write => "write",
        /// A plain read outside a transaction.
        Read => "read",
        /// Inside an explicit read-write transaction.
        InTransaction => "in_transaction",
        /// The session is pinned to the primary (temporary tables, locks, user variables...).
        Pinned => "pinned",
        /// A routing hint in a comment.
        Hint => "hint",
        /// A configured routing rule matched.
        Rule => "rule",
        /// The statement must run where the previous one ran (`FOUND_ROWS()`, `ROW_COUNT()`,
        /// `LAST_INSERT_ID()` without argument, …).
        PreviousStatement => "previous_statement",
        /// The read waited for a replica to catch up (causal consistency).
        CausalWait => "causal_wait",
        /// Causal consistency could not be met on a replica; the primary served the read.
        CausalFallback => "causal_fallback",
        /// No usable replica; the read fell back to the primary.
        NoReplicaFallback => "no_replica_fallback",
        /// `START TRANSACTION READ ONLY` routed to a replica.
        ReadOnlyTransaction => "read_only_transaction",
        /// A session-level command (`SET`, `USE`, ...) replayed or sent to the primary.
        SessionCommand => "session_command",
        /// No primary (it died; a failover is under way): a replica still answering served the
        /// read whatever its lag.
        NoPrimaryDegraded => "no_primary_degraded",
    }
}

label_enum! {
    /// Why a client connection was refused before it became usable.
    pub enum RejectReason {
        /// `max_client_connections` reached.
        MaxConnections => "max_connections",
        /// Wrong user name or password.
        AuthFailed => "auth_failed",
        /// The listener requires TLS and the client did not ask for it.
        TlsRequired => "tls_required",
        /// The TLS handshake failed.
        TlsError => "tls_error",
        /// The client did not finish the handshake in time.
        HandshakeTimeout => "handshake_timeout",
        /// The client sent a malformed handshake.
        ProtocolError => "protocol_error",
        /// The login finished after the shutdown stopped taking new sessions.
        ShuttingDown => "shutting_down",
        /// The client closed the connection before finishing the handshake.
        ClientClosed => "client_closed",
        /// The client's address is blocked after failed logins (`login_throttle`).
        HostBlocked => "host_blocked",
    }
}

label_enum! {
    /// What happened to a backend connection in the pool.
    pub enum PoolEvent {
        /// A session took an idle connection instead of opening one.
        Reused => "reused",
        /// A finished session's connection was reset and kept for reuse.
        Reset => "reset",
        /// A session found the backend at `pool.max_per_backend` for all of `pool.wait_timeout`.
        Full => "full",
        /// A connection borrowed from another session in another state was reset and the
        /// borrower's session state applied on it.
        Restored => "restored",
        /// A prepared statement was prepared on a connection that did not hold it yet.
        Reprepared => "reprepared",
        /// At the cap, an idle connection of another account was logged in as the session's
        /// (`COM_CHANGE_USER`) instead of being closed for a new one.
        ChangedUser => "changed_user",
    }
}

label_enum! {
    /// Why a session keeps its backend connections instead of lending them to the pool
    /// between statements.
    pub enum HoldReason {
        /// An open transaction (also an implicit one with autocommit off).
        Transaction => "transaction",
        /// Temporary tables.
        TemporaryTables => "temporary_tables",
        /// `LOCK TABLES`, `GET_LOCK()`.
        Locks => "locks",
        /// User variables.
        UserVariables => "user_variables",
        /// SQL-level `PREPARE`.
        SqlPrepared => "sql_prepared",
        /// A procedure was called.
        ProcedureCall => "procedure_call",
        /// XA transactions.
        Xa => "xa",
        /// `SET sql_log_bin`.
        SqlLogBin => "sql_log_bin",
        /// `LAST_INSERT_ID(expr)`.
        LastInsertId => "last_insert_id",
        /// An open cursor or long data of a prepared statement.
        Cursor => "cursor",
        /// Session settings rwproxy could not log.
        UnloggedSettings => "unlogged_settings",
        /// A statement rwproxy does not recognise.
        UnknownStatement => "unknown_statement",
        /// The previous statement's warnings or error, or a statement that reads them.
        Diagnostics => "diagnostics",
    }
}

label_enum! {
    /// What became of a transaction whose server was lost while transaction replay recorded it
    /// (`attempted` once per loss, then exactly one of the others).
    pub enum ReplayOutcome {
        /// The transaction's server was lost; replay was considered.
        Attempted => "attempted",
        /// Replayed on the new primary; the client went on without an error.
        Succeeded => "succeeded",
        /// A replayed statement gave a different result.
        Mismatch => "mismatch",
        /// A statement that may commit was in flight: its outcome is unknown, never replayed.
        CommitInFlight => "commit_in_flight",
        /// The transaction outgrew `routing.transaction_replay_max_size`.
        TooLarge => "too_large",
        /// The transaction ran something that is not recorded.
        Unsupported => "unsupported",
        /// No primary appeared within `monitor.write_wait_timeout`.
        NoPrimary => "no_primary",
        /// Replaying on the new primary failed.
        Error => "error",
    }
}

label_enum! {
    /// Which rule of the Galera writer choice picked a new writer.
    pub enum WriterRule {
        /// The only usable node.
        Sole => "sole",
        /// The lowest configured `priority`.
        Priority => "priority",
        /// Equal priorities: the lowest `wsrep_node_name`.
        NodeName => "node_name",
        /// Equal priorities and node names: the lowest `wsrep_gcomm_uuid`.
        GcommUuid => "gcomm_uuid",
        /// Everything else equal: the configured backend name.
        BackendName => "backend_name",
    }
}

label_enum! {
    /// The outcome of a read that asked for causal (read-your-writes) consistency.
    pub enum CausalOutcome {
        /// A replica was already up to date.
        ReplicaFresh => "replica_fresh",
        /// A replica became up to date after waiting.
        ReplicaAfterWait => "replica_after_wait",
        /// No replica was fresh enough; the primary served the read.
        PrimaryFallback => "primary_fallback",
        /// The wait timed out (whatever happened next).
        Timeout => "timeout",
    }
}

label_enum! {
    /// The result of a configuration reload.
    pub enum ReloadResult {
        /// The new configuration is in effect.
        Success => "success",
        /// The new configuration was rejected; the old one stays in effect.
        Failure => "failure",
    }
}

label_enum! {
    /// What went wrong talking to a backend.
    pub enum FailureKind {
        /// Opening (or authenticating) a connection failed.
        Connect => "connect",
        /// A query failed at the connection level (I/O error, lost connection).
        Query => "query",
        /// An operation timed out.
        Timeout => "timeout",
    }
}

label_enum! {
    /// The role the monitor assigned to a backend.
    pub enum BackendRole {
        /// The writable primary.
        Primary => "primary",
        /// A replica.
        Replica => "replica",
        /// Not known yet (never reached, or ambiguous).
        Unknown => "unknown",
    }
}

label_enum! {
    /// The health state the monitor assigned to a backend.
    pub enum BackendState {
        /// Reachable and usable.
        Up => "up",
        /// Unreachable or failing checks.
        Down => "down",
        /// A replica whose lag is above the limit.
        Lagging => "lagging",
        /// A replica whose replication threads are stopped or failing.
        ReplicationBroken => "replication_broken",
        /// Not checked successfully yet.
        Starting => "starting",
    }
}

label_enum! {
    /// How a replica's lag was measured.
    pub enum LagSource {
        /// From the heartbeat table (sub-second precision).
        Heartbeat => "heartbeat",
        /// From `Seconds_Behind_Master` in `SHOW SLAVE STATUS`.
        SecondsBehindMaster => "seconds_behind_master",
        /// Not measured (primary, or unknown); no lag series is exported.
        None => "none",
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::BTreeSet;

    #[test]
    fn index_matches_position_in_all() {
        for (i, r) in Reason::ALL.iter().enumerate() {
            assert_eq!(r.index(), i);
        }
        for (i, r) in BackendState::ALL.iter().enumerate() {
            assert_eq!(r.index(), i);
        }
        assert_eq!(Reason::ALL.len(), 13);
        assert_eq!(DestRole::ALL.len(), 2);
    }

    #[test]
    fn label_values_are_snake_case() {
        let all: Vec<&str> = Reason::ALL
            .iter()
            .map(|r| r.as_str())
            .chain(RejectReason::ALL.iter().map(|r| r.as_str()))
            .chain(BackendState::ALL.iter().map(|r| r.as_str()))
            .chain(LagSource::ALL.iter().map(|r| r.as_str()))
            .chain(CausalOutcome::ALL.iter().map(|r| r.as_str()))
            .chain(WriterRule::ALL.iter().map(|r| r.as_str()))
            .chain(PoolEvent::ALL.iter().map(|r| r.as_str()))
            .chain(ReplayOutcome::ALL.iter().map(|r| r.as_str()))
            .chain(HoldReason::ALL.iter().map(|r| r.as_str()))
            .collect();
        for v in all {
            assert!(
                v.bytes().all(|b| b.is_ascii_lowercase() || b == b'_'),
                "{v}"
            );
        }
        assert_eq!(Reason::NoReplicaFallback.to_string(), "no_replica_fallback");
    }

    /// Every label list of docs/metrics.md that says it is exact, in document order: the
    /// backticked lower-case words of the paragraph that are followed by `(` or `,`.
    fn documented_lists() -> Vec<BTreeSet<String>> {
        const START: &str = "` (exactly these";
        let doc = include_str!(concat!(
            env!("CARGO_MANIFEST_DIR"),
            "/../../docs/metrics.md"
        ));
        doc.match_indices(START)
            .map(|(at, _)| {
                let para = &doc[at + START.len()..];
                let end = [para.find("\n* "), para.find("\n\n")]
                    .into_iter()
                    .flatten()
                    .min()
                    .unwrap_or(para.len());
                let para = &para[..end];
                let para = para.split_whitespace().collect::<Vec<_>>().join(" ");
                let mut out = BTreeSet::new();
                let mut rest = para.as_str();
                while let Some(open) = rest.find('`') {
                    let after = &rest[open + 1..];
                    let Some(close) = after.find('`') else { break };
                    let word = &after[..close];
                    let tail = after[close + 1..].trim_start();
                    if !word.is_empty()
                        && word.bytes().all(|b| b.is_ascii_lowercase() || b == b'_')
                        && (tail.starts_with('(') || tail.starts_with(','))
                    {
                        out.insert(word.to_string());
                    }
                    rest = &after[close + 1..];
                }
                out
            })
            .collect()
    }

    #[test]
    fn docs_list_exactly_the_labels_the_code_emits() {
        let lists = documented_lists();
        assert_eq!(
            lists.len(),
            6,
            "routing reasons, rejection reasons, pool events, Galera writer rules, replay outcomes, pinned-session reasons"
        );
        let routing: BTreeSet<String> = Reason::ALL.iter().map(|r| r.to_string()).collect();
        let rejections: BTreeSet<String> =
            RejectReason::ALL.iter().map(|r| r.to_string()).collect();
        assert_eq!(lists[0], routing, "rwproxy_routing_decisions_total reasons");
        assert_eq!(
            lists[1], rejections,
            "rwproxy_client_rejections_total reasons"
        );
        let events: BTreeSet<String> = PoolEvent::ALL.iter().map(|r| r.to_string()).collect();
        assert_eq!(lists[2], events, "rwproxy_backend_pool_events_total events");
        let rules: BTreeSet<String> = WriterRule::ALL.iter().map(|r| r.to_string()).collect();
        assert_eq!(lists[3], rules, "rwproxy_galera_writer_changes_total rules");
        let replays: BTreeSet<String> = ReplayOutcome::ALL.iter().map(|r| r.to_string()).collect();
        assert_eq!(
            lists[4], replays,
            "rwproxy_transaction_replays_total outcomes"
        );
        let holds: BTreeSet<String> = HoldReason::ALL.iter().map(|r| r.to_string()).collect();
        assert_eq!(lists[5], holds, "rwproxy_pool_pinned_sessions reasons");
    }
}
