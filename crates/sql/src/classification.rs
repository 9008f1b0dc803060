//! [`Classification`]: everything the classifier found out about one statement.

use crate::flags::Flags;
use crate::hint::{ConsistencyHint, RouteHint};
use crate::kind::StatementKind;

/// The classifier's verdict on one statement (or one multi-statement packet, whose kind is that
/// of its first statement and which carries [`Flags::MULTI_STATEMENT`]).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Classification<'a> {
    pub kind: StatementKind,
    pub flags: Flags,
    /// From a `/* rwproxy:primary */` or `/* rwproxy:replica */` comment anywhere in the text.
    pub hint: Option<RouteHint>,
    /// From a `/* rwproxy:consistency=eventual|session|global */` comment.
    pub consistency_hint: Option<ConsistencyHint>,
    /// For `USE db`: the schema name, without backticks. Doubled backticks inside a quoted name
    /// are left as they are (the classifier does not allocate).
    pub schema: Option<&'a [u8]>,
}

/// Flags that make a read unfit for a replica.
const NOT_FOR_REPLICA: Flags = Flags::LOCKING_READ
    .union(Flags::PRIMARY_FUNCTION)
    .union(Flags::SELECT_INTO)
    .union(Flags::ASSIGNS_USER_VAR)
    .union(Flags::MULTI_STATEMENT)
    .union(Flags::CALC_FOUND_ROWS)
    .union(Flags::SERVER_STATE)
    .union(Flags::UNTERMINATED)
    .union(Flags::AMBIGUOUS_QUOTING);

impl Classification<'_> {
    /// True only for statements a replica may answer: `Read` or `Show` without any flag that
    /// ties it to the primary (locking read, primary-only function, `SELECT … INTO`, user
    /// variable assignment, several statements, `SQL_CALC_FOUND_ROWS`, server-specific `SHOW`,
    /// unterminated or ambiguous text). Route hints are not taken into account here.
    pub fn is_read_only(&self) -> bool {
        matches!(self.kind, StatementKind::Read | StatementKind::Show)
            && !self.flags.intersects(NOT_FOR_REPLICA)
    }

    /// True for statements that start, end or shape a transaction: `BEGIN`, `COMMIT`,
    /// `ROLLBACK`, savepoints and `XA`.
    pub fn is_transaction_control(&self) -> bool {
        matches!(
            self.kind,
            StatementKind::Begin { .. }
                | StatementKind::Commit
                | StatementKind::Rollback
                | StatementKind::Savepoint
                | StatementKind::ReleaseSavepoint
                | StatementKind::RollbackToSavepoint
                | StatementKind::Xa
        )
    }
}
