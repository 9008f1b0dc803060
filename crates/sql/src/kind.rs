//! [`StatementKind`]: what sort of statement the router is looking at.

/// The sort of statement, decided from its first keywords.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum StatementKind {
    /// `SELECT`, `VALUES`, `TABLE`, `WITH … SELECT`, `(SELECT …) UNION …`.
    Read,
    /// `INSERT`, `UPDATE`, `DELETE`, `REPLACE`, `LOAD DATA|XML`, `MERGE`, `DO`, `WITH … UPDATE`,
    /// `EXPLAIN ANALYZE <write>`, MariaDB's `ANALYZE <write>`.
    Write,
    /// `CREATE`, `ALTER`, `DROP`, `TRUNCATE`, `RENAME`, `GRANT`, `REVOKE`, and the table
    /// maintenance statements `ANALYZE|OPTIMIZE|REPAIR|CHECK|CHECKSUM TABLE`.
    Ddl,
    /// `CALL proc(…)`.
    Call,
    /// `SHOW`, `DESCRIBE`, `DESC`, `EXPLAIN`, `HELP`, and MariaDB's `ANALYZE <read>`.
    Show,
    /// `BEGIN [WORK]`, `START TRANSACTION [READ ONLY|READ WRITE|WITH CONSISTENT SNAPSHOT], …`.
    Begin {
        /// `START TRANSACTION READ ONLY`.
        read_only: bool,
    },
    /// `COMMIT [WORK] [AND [NO] CHAIN] [[NO] RELEASE]`.
    Commit,
    /// `ROLLBACK [WORK] [AND [NO] CHAIN] [[NO] RELEASE]`.
    Rollback,
    /// `SAVEPOINT name`.
    Savepoint,
    /// `RELEASE SAVEPOINT name`.
    ReleaseSavepoint,
    /// `ROLLBACK [WORK] TO [SAVEPOINT] name`.
    RollbackToSavepoint,
    /// `XA START|BEGIN|END|PREPARE|COMMIT|ROLLBACK|RECOVER …`.
    Xa,
    /// `SET [SESSION] autocommit = 0|1|ON|OFF|TRUE|FALSE` as the only assignment.
    SetAutocommit(bool),
    /// `SET NAMES …`, `SET CHARACTER SET …`, `SET CHARSET …`.
    SetNames,
    /// `SET [SESSION|LOCAL] TRANSACTION ISOLATION LEVEL … | READ ONLY | READ WRITE`.
    SetTransaction,
    /// Any other `SET` of session or user variables (and `SET ROLE`): replayed on every backend.
    SetSession,
    /// `SET GLOBAL …`, `SET PERSIST …`, `SET PERSIST_ONLY …` (also `SET GLOBAL TRANSACTION …`):
    /// for the primary only, never replayed.
    SetGlobal,
    /// `USE db`.
    Use,
    /// `LOCK TABLE[S] …`.
    LockTables,
    /// `UNLOCK TABLE[S]`.
    UnlockTables,
    /// `PREPARE name FROM …`.
    PrepareText,
    /// `EXECUTE name [USING …]`.
    ExecuteText,
    /// `DEALLOCATE PREPARE name`, `DROP PREPARE name`.
    DeallocateText,
    /// `KILL [HARD|SOFT] [CONNECTION|QUERY [ID]] n`, `KILL USER name`.
    Kill,
    /// Recognised, but only for the primary: `FLUSH`, `RESET`, `INSTALL`, `HANDLER`, `PURGE`,
    /// `START SLAVE`, `SET PASSWORD`, `BEGIN NOT ATOMIC`, `LOCK INSTANCE`, …
    Other,
    /// Empty, unterminated, or not understood: the primary decides.
    Unknown,
}
