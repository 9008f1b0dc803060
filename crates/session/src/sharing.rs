//! Connection sharing, the policy: when a session may give its backend connections back to the
//! pool between statements (where any session of the same account can borrow them), what keeps
//! it on them, and what of a statement's outcome a later statement may ask for on another
//! connection. Pure: the session feeds it what each statement was and what it did.
//!
//! What moves with the session: everything in its log of session commands (`SET`, `SET NAMES`,
//! `USE`, autocommit, isolation…), applied on a borrowed connection before the statement, and
//! `ROW_COUNT()`, `FOUND_ROWS()`, `LAST_INSERT_ID()`, answered from what the previous
//! statement's reply said. What does not move keeps the session on its connections: an open
//! transaction, temporary tables, locks, user variables, SQL-level prepared statements (pinned
//! state, see [`crate::session_state::Pins`]), procedure calls, XA, `sql_log_bin`, an open
//! cursor, long data waiting for its execute, statements rwproxy does not recognise, and for
//! one statement the warnings or error of the previous one.

use rwproxy_sql::{Flags, StatementKind};

/// Why a session keeps its backend connections (the `reason` label of
/// `rwproxy_pool_pinned_sessions`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum HoldReason {
    /// An open transaction (also an implicit one with autocommit off).
    Transaction,
    TemporaryTables,
    /// `LOCK TABLES`, `GET_LOCK()`, `FLUSH TABLES WITH READ LOCK`.
    Locks,
    UserVariables,
    /// `PREPARE … FROM` (SQL-level prepared statements).
    SqlPrepared,
    /// `CALL`: a procedure may create temporary tables or change the session unseen.
    ProcedureCall,
    Xa,
    /// `SET sql_log_bin`.
    SqlLogBin,
    /// `LAST_INSERT_ID(expr)` set the value in a way a reply does not show.
    LastInsertId,
    /// A prepared statement with an open cursor, or long data waiting for its execute.
    Cursor,
    /// Session commands rwproxy could not log (replay log limit, multi-statement text).
    UnloggedSettings,
    /// A statement rwproxy does not recognise (`HANDLER`, `FLUSH`, …).
    UnknownStatement,
    /// The previous statement's warnings or error are still to be read.
    Diagnostics,
}

impl HoldReason {
    pub const ALL: [HoldReason; 13] = [
        HoldReason::Transaction,
        HoldReason::TemporaryTables,
        HoldReason::Locks,
        HoldReason::UserVariables,
        HoldReason::SqlPrepared,
        HoldReason::ProcedureCall,
        HoldReason::Xa,
        HoldReason::SqlLogBin,
        HoldReason::LastInsertId,
        HoldReason::Cursor,
        HoldReason::UnloggedSettings,
        HoldReason::UnknownStatement,
        HoldReason::Diagnostics,
    ];

    pub fn label(self) -> &'static str {
        match self {
            HoldReason::Transaction => "transaction",
            HoldReason::TemporaryTables => "temporary_tables",
            HoldReason::Locks => "locks",
            HoldReason::UserVariables => "user_variables",
            HoldReason::SqlPrepared => "sql_prepared",
            HoldReason::ProcedureCall => "procedure_call",
            HoldReason::Xa => "xa",
            HoldReason::SqlLogBin => "sql_log_bin",
            HoldReason::LastInsertId => "last_insert_id",
            HoldReason::Cursor => "cursor",
            HoldReason::UnloggedSettings => "unlogged_settings",
            HoldReason::UnknownStatement => "unknown_statement",
            HoldReason::Diagnostics => "diagnostics",
        }
    }
}

/// What the session's statements so far left that keeps it on its connections, beyond the
/// pins of [`crate::session_state::Pins`].
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Holds {
    /// For the rest of the session (or until `COM_RESET_CONNECTION` / `COM_CHANGE_USER`).
    pub lasting: Option<HoldReason>,
    /// With autocommit off a statement may have opened a transaction the server does not flag
    /// (a plain read takes a snapshot): held until `COMMIT` or `ROLLBACK`.
    pub implicit_transaction: bool,
    /// `SET TRANSACTION` (without SESSION) shapes the next transaction on this connection.
    pub next_transaction: bool,
    /// The previous statement had warnings or failed: `SHOW WARNINGS` must see them.
    pub diagnostics: bool,
    /// `SQL_CALC_FOUND_ROWS`: `FOUND_ROWS()` is the server's count until the next result set.
    pub calc_found_rows: bool,
}

/// What one statement was and did, as far as holding goes.
#[derive(Debug, Clone, Copy)]
pub struct StatementFacts<'a> {
    pub kind: StatementKind,
    pub flags: Flags,
    pub sql: &'a [u8],
    pub failed: bool,
    pub warnings: u16,
    pub result_set: bool,
    /// Autocommit is off after the statement.
    pub autocommit_off: bool,
}

impl Holds {
    /// Updates the holds after a statement.
    pub fn after_statement(&mut self, s: &StatementFacts<'_>) {
        self.diagnostics = s.failed || s.warnings > 0;
        if s.result_set {
            self.calc_found_rows = false;
        }
        if s.flags.contains(Flags::CALC_FOUND_ROWS) && !s.failed {
            self.calc_found_rows = true;
        }
        let session_command = matches!(
            s.kind,
            StatementKind::SetSession
                | StatementKind::SetNames
                | StatementKind::SetAutocommit(_)
                | StatementKind::SetTransaction
                | StatementKind::Use
        );
        if s.kind == StatementKind::SetTransaction && !s.flags.contains(Flags::SESSION_SCOPE) {
            self.next_transaction = !s.failed;
        } else if !session_command {
            self.next_transaction = false;
        }
        self.implicit_transaction = s.autocommit_off
            && match s.kind {
                StatementKind::Commit | StatementKind::Rollback => {
                    s.flags.contains(Flags::TXN_CHAIN)
                }
                _ if session_command => self.implicit_transaction,
                _ => true,
            };
        if self.lasting.is_none() && !s.failed {
            self.lasting = lasting_reason(s);
        }
    }

    /// Session commands that change nothing but the session (`COM_INIT_DB`, `COM_SET_OPTION`,
    /// `COM_PING`) leave the diagnostics of the statement before them.
    pub fn after_session_command(&mut self, failed: bool) {
        if failed {
            self.diagnostics = true;
        }
    }
}

/// A reason a statement keeps the session on its connections for good.
fn lasting_reason(s: &StatementFacts<'_>) -> Option<HoldReason> {
    match s.kind {
        StatementKind::Call => return Some(HoldReason::ProcedureCall),
        StatementKind::Xa => return Some(HoldReason::Xa),
        StatementKind::Other | StatementKind::Unknown => return Some(HoldReason::UnknownStatement),
        StatementKind::SetSession if mentions(s.sql, b"sql_log_bin") => {
            return Some(HoldReason::SqlLogBin)
        }
        _ => {}
    }
    if sets_last_insert_id(s.sql) {
        return Some(HoldReason::LastInsertId);
    }
    None
}

/// Whether `sql` may call `LAST_INSERT_ID(expr)` (with an argument: it sets the value). Any
/// mention followed by `(` and something other than `)` counts, also inside strings or comments
/// (a false positive only keeps the session on its connection).
pub fn sets_last_insert_id(sql: &[u8]) -> bool {
    const NAME: &[u8] = b"last_insert_id";
    let mut i = 0;
    while let Some(at) = find_ci(&sql[i..], NAME) {
        let mut j = i + at + NAME.len();
        while sql.get(j).is_some_and(|b| b.is_ascii_whitespace()) {
            j += 1;
        }
        if sql.get(j) == Some(&b'(') {
            j += 1;
            while sql.get(j).is_some_and(|b| b.is_ascii_whitespace()) {
                j += 1;
            }
            if sql.get(j).is_some_and(|b| *b != b')') {
                return true;
            }
        }
        i += at + NAME.len();
    }
    false
}

/// Whether `sql` may read the session's last insert id (`LAST_INSERT_ID()`, `@@identity`,
/// `@@last_insert_id`): before it runs on a connection another session used, the value is set
/// there.
pub fn reads_insert_id(sql: &[u8]) -> bool {
    mentions(sql, b"last_insert_id") || mentions(sql, b"identity")
}

fn mentions(sql: &[u8], word: &[u8]) -> bool {
    find_ci(sql, word).is_some()
}

fn find_ci(hay: &[u8], needle: &[u8]) -> Option<usize> {
    hay.windows(needle.len())
        .position(|w| w.eq_ignore_ascii_case(needle))
}

/// What the previous statement left for the functions that read it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Diagnostics {
    /// `ROW_COUNT()`: affected rows of an OK, -1 after a result set or an error.
    pub row_count: i64,
    /// `FOUND_ROWS()`: rows of the last result set.
    pub found_rows: u64,
    /// `LAST_INSERT_ID()`.
    pub insert_id: u64,
    /// The connection (its serial) that ran the previous statement.
    pub serial: u64,
}

impl Default for Diagnostics {
    /// What a new connection answers before its first statement.
    fn default() -> Self {
        Diagnostics {
            row_count: 0,
            found_rows: 1,
            insert_id: 0,
            serial: 0,
        }
    }
}

impl Diagnostics {
    /// The values to put in place of `ROW_COUNT()` and `FOUND_ROWS()` in a statement that runs
    /// on another connection than the previous one.
    pub fn calls(&self) -> [(&'static [u8], String); 2] {
        [
            (b"ROW_COUNT", self.row_count.to_string()),
            (b"FOUND_ROWS", self.found_rows.to_string()),
        ]
    }

    /// After a statement whose reply said this.
    pub fn after_statement(
        &mut self,
        failed: bool,
        result_set: bool,
        result_rows: u64,
        affected: u64,
        insert_id: u64,
    ) {
        self.row_count = if failed || result_set {
            -1
        } else {
            i64::try_from(affected).unwrap_or(i64::MAX)
        };
        if result_set {
            self.found_rows = result_rows;
        }
        if insert_id != 0 {
            self.insert_id = insert_id;
        }
    }
}

/// Why the session must keep its connections after the statement that just ran, or `None` when
/// it may give them back.
pub fn hold(
    holds: &Holds,
    in_transaction: bool,
    pins: &crate::session_state::Pins,
    user_vars: bool,
    cursor_or_long_data: bool,
) -> Option<HoldReason> {
    if in_transaction || holds.implicit_transaction || holds.next_transaction {
        return Some(HoldReason::Transaction);
    }
    if pins.temporary_tables > 0 {
        return Some(HoldReason::TemporaryTables);
    }
    if pins.lock_tables || pins.named_locks {
        return Some(HoldReason::Locks);
    }
    if user_vars {
        return Some(HoldReason::UserVariables);
    }
    if pins.sql_prepared > 0 {
        return Some(HoldReason::SqlPrepared);
    }
    if pins.replay_overflow {
        return Some(HoldReason::UnloggedSettings);
    }
    if let Some(r) = holds.lasting {
        return Some(r);
    }
    if cursor_or_long_data {
        return Some(HoldReason::Cursor);
    }
    if holds.diagnostics || holds.calc_found_rows {
        return Some(HoldReason::Diagnostics);
    }
    None
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::session_state::Pins;

    fn facts(kind: StatementKind, sql: &str) -> StatementFacts<'_> {
        StatementFacts {
            kind,
            flags: Flags::empty(),
            sql: sql.as_bytes(),
            failed: false,
            warnings: 0,
            result_set: false,
            autocommit_off: false,
        }
    }

    fn held(h: &Holds) -> Option<HoldReason> {
        hold(h, false, &Pins::default(), false, false)
    }

    #[test]
    fn plain_statements_release() {
        let mut h = Holds::default();
        h.after_statement(&facts(StatementKind::Read, "SELECT 1"));
        assert_eq!(held(&h), None);
        h.after_statement(&facts(StatementKind::SetSession, "SET time_zone='+01:00'"));
        assert_eq!(held(&h), None);
        h.after_statement(&facts(StatementKind::Write, "INSERT INTO t VALUES (1)"));
        assert_eq!(held(&h), None);
    }

    #[test]
    fn warnings_and_errors_hold_for_one_statement() {
        let mut h = Holds::default();
        let mut f = facts(StatementKind::Write, "INSERT IGNORE INTO t VALUES (1)");
        f.warnings = 1;
        h.after_statement(&f);
        assert_eq!(held(&h), Some(HoldReason::Diagnostics));
        h.after_statement(&facts(StatementKind::Show, "SHOW WARNINGS"));
        assert_eq!(held(&h), None);
        let mut f = facts(StatementKind::Read, "SELECT * FROM nope");
        f.failed = true;
        h.after_statement(&f);
        assert_eq!(held(&h), Some(HoldReason::Diagnostics));
    }

    #[test]
    fn lasting_reasons() {
        for (kind, sql, reason) in [
            (StatementKind::Call, "CALL p()", HoldReason::ProcedureCall),
            (StatementKind::Xa, "XA START 'x'", HoldReason::Xa),
            (
                StatementKind::Other,
                "HANDLER t OPEN",
                HoldReason::UnknownStatement,
            ),
            (
                StatementKind::SetSession,
                "SET sql_log_bin = 0",
                HoldReason::SqlLogBin,
            ),
            (
                StatementKind::Read,
                "SELECT LAST_INSERT_ID(42)",
                HoldReason::LastInsertId,
            ),
        ] {
            let mut h = Holds::default();
            h.after_statement(&facts(kind, sql));
            h.after_statement(&facts(StatementKind::Read, "SELECT 1"));
            assert_eq!(held(&h), Some(reason), "{sql}");
        }
        // A failed CALL changed nothing.
        let mut h = Holds::default();
        let mut f = facts(StatementKind::Call, "CALL nope()");
        f.failed = true;
        h.after_statement(&f);
        h.after_statement(&facts(StatementKind::Read, "SELECT 1"));
        assert_eq!(held(&h), None);
    }

    #[test]
    fn last_insert_id_with_and_without_argument() {
        assert!(!sets_last_insert_id(b"SELECT LAST_INSERT_ID()"));
        assert!(!sets_last_insert_id(b"select last_insert_id ( )"));
        assert!(sets_last_insert_id(
            b"UPDATE t SET id = LAST_INSERT_ID(id + 1)"
        ));
        assert!(sets_last_insert_id(
            b"SELECT LAST_INSERT_ID(), last_insert_id(5)"
        ));
        assert!(reads_insert_id(b"SELECT @@IDENTITY"));
        assert!(!reads_insert_id(b"SELECT 1"));
    }

    #[test]
    fn autocommit_off_holds_until_commit() {
        let mut h = Holds::default();
        let mut f = facts(StatementKind::Read, "SELECT * FROM t");
        f.autocommit_off = true;
        h.after_statement(&f);
        assert_eq!(held(&h), Some(HoldReason::Transaction));
        let mut set = facts(StatementKind::SetSession, "SET @@time_zone='+00:00'");
        set.autocommit_off = true;
        h.after_statement(&set);
        assert_eq!(held(&h), Some(HoldReason::Transaction));
        let mut commit = facts(StatementKind::Commit, "COMMIT");
        commit.autocommit_off = true;
        h.after_statement(&commit);
        assert_eq!(held(&h), None);
        // A session command after the commit opens nothing.
        h.after_statement(&set);
        assert_eq!(held(&h), None);
    }

    #[test]
    fn next_transaction_characteristics_hold() {
        let mut h = Holds::default();
        h.after_statement(&facts(
            StatementKind::SetTransaction,
            "SET TRANSACTION ISOLATION LEVEL SERIALIZABLE",
        ));
        assert_eq!(held(&h), Some(HoldReason::Transaction));
        h.after_statement(&facts(StatementKind::Read, "SELECT 1"));
        assert_eq!(held(&h), None);
        let mut session = facts(
            StatementKind::SetTransaction,
            "SET SESSION TRANSACTION ISOLATION LEVEL SERIALIZABLE",
        );
        session.flags = Flags::SESSION_SCOPE;
        h.after_statement(&session);
        assert_eq!(held(&h), None);
    }

    #[test]
    fn calc_found_rows_holds_until_the_next_result_set() {
        let mut h = Holds::default();
        let mut f = facts(
            StatementKind::Read,
            "SELECT SQL_CALC_FOUND_ROWS * FROM t LIMIT 1",
        );
        f.flags = Flags::CALC_FOUND_ROWS;
        f.result_set = true;
        h.after_statement(&f);
        assert_eq!(held(&h), Some(HoldReason::Diagnostics));
        h.after_statement(&facts(StatementKind::Write, "UPDATE t SET a = 1"));
        assert_eq!(held(&h), Some(HoldReason::Diagnostics));
        let mut r = facts(StatementKind::Read, "SELECT FOUND_ROWS()");
        r.result_set = true;
        h.after_statement(&r);
        assert_eq!(held(&h), None);
    }

    #[test]
    fn pins_and_transactions_hold() {
        let h = Holds::default();
        assert_eq!(
            hold(&h, true, &Pins::default(), false, false),
            Some(HoldReason::Transaction)
        );
        let pins = Pins {
            temporary_tables: 1,
            ..Pins::default()
        };
        assert_eq!(
            hold(&h, false, &pins, false, false),
            Some(HoldReason::TemporaryTables)
        );
        assert_eq!(
            hold(&h, false, &Pins::default(), true, false),
            Some(HoldReason::UserVariables)
        );
        assert_eq!(
            hold(&h, false, &Pins::default(), false, true),
            Some(HoldReason::Cursor)
        );
    }

    #[test]
    fn diagnostics_follow_the_reply() {
        let mut d = Diagnostics::default();
        d.after_statement(false, true, 3, 0, 0);
        assert_eq!((d.row_count, d.found_rows), (-1, 3));
        d.after_statement(false, false, 0, 2, 7);
        assert_eq!((d.row_count, d.found_rows, d.insert_id), (2, 3, 7));
        d.after_statement(true, false, 0, 0, 0);
        assert_eq!((d.row_count, d.found_rows, d.insert_id), (-1, 3, 7));
    }
}
