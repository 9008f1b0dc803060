//! Transaction control: `BEGIN`, `START TRANSACTION`, `COMMIT`, `ROLLBACK`, savepoints.
//!
//! These are parsed strictly: the session tracks transaction state from them, so a statement that
//! does not have the documented shape is `Unknown` (the server will reject it, and the session
//! state must not change).

use crate::cursor::Cursor;
use crate::flags::Flags;
use crate::kind::StatementKind;

/// Return `kind` if the statement ends here, `Unknown` otherwise.
fn complete(cur: &mut Cursor<'_>, kind: StatementKind) -> StatementKind {
    if cur.at_statement_end() {
        kind
    } else {
        StatementKind::Unknown
    }
}

/// After `BEGIN`: `[WORK]`, or MariaDB's compound statement `BEGIN NOT ATOMIC … END`.
pub(crate) fn begin(cur: &mut Cursor<'_>) -> StatementKind {
    if cur.eat_word(b"NOT") {
        return if cur.eat_word(b"ATOMIC") {
            StatementKind::Other
        } else {
            StatementKind::Unknown
        };
    }
    cur.eat_word(b"WORK");
    complete(cur, StatementKind::Begin { read_only: false })
}

/// After `START`: `TRANSACTION [characteristic [, …]]`, or `START SLAVE|REPLICA|…` (admin).
pub(crate) fn start(cur: &mut Cursor<'_>) -> StatementKind {
    if !cur.eat_word(b"TRANSACTION") {
        return StatementKind::Other;
    }
    let mut read_only = false;
    if cur.at_statement_end() {
        return StatementKind::Begin { read_only };
    }
    loop {
        if cur.eat_word(b"WITH") {
            if !(cur.eat_word(b"CONSISTENT") && cur.eat_word(b"SNAPSHOT")) {
                return StatementKind::Unknown;
            }
        } else if cur.eat_word(b"READ") {
            if cur.eat_word(b"ONLY") {
                read_only = true;
            } else if cur.eat_word(b"WRITE") {
                read_only = false;
            } else {
                return StatementKind::Unknown;
            }
        } else {
            return StatementKind::Unknown;
        }
        if cur.at_statement_end() {
            break;
        }
        if !cur.eat_punct(b',') {
            return StatementKind::Unknown;
        }
    }
    if read_only {
        cur.flag(Flags::READ_ONLY_TXN);
    }
    StatementKind::Begin { read_only }
}

/// The common tail of `COMMIT` and `ROLLBACK`: `[AND [NO] CHAIN] [[NO] RELEASE]`.
fn completion(cur: &mut Cursor<'_>, kind: StatementKind) -> StatementKind {
    if cur.eat_word(b"AND") {
        let no = cur.eat_word(b"NO");
        if !cur.eat_word(b"CHAIN") {
            return StatementKind::Unknown;
        }
        if !no {
            cur.flag(Flags::TXN_CHAIN);
        }
    }
    if cur.eat_word(b"NO") {
        if !cur.eat_word(b"RELEASE") {
            return StatementKind::Unknown;
        }
    } else if cur.eat_word(b"RELEASE") {
        cur.flag(Flags::TXN_RELEASE);
    }
    complete(cur, kind)
}

/// After `COMMIT`.
pub(crate) fn commit(cur: &mut Cursor<'_>) -> StatementKind {
    cur.eat_word(b"WORK");
    completion(cur, StatementKind::Commit)
}

/// After `ROLLBACK`: `[WORK] TO [SAVEPOINT] name`, or a plain rollback.
pub(crate) fn rollback(cur: &mut Cursor<'_>) -> StatementKind {
    cur.eat_word(b"WORK");
    if cur.eat_word(b"TO") {
        cur.eat_word(b"SAVEPOINT");
        return match cur.eat_identifier() {
            Some(_) => complete(cur, StatementKind::RollbackToSavepoint),
            None => StatementKind::Unknown,
        };
    }
    completion(cur, StatementKind::Rollback)
}

/// After `SAVEPOINT`: a name.
pub(crate) fn savepoint(cur: &mut Cursor<'_>) -> StatementKind {
    match cur.eat_identifier() {
        Some(_) => complete(cur, StatementKind::Savepoint),
        None => StatementKind::Unknown,
    }
}

/// After `RELEASE`: `SAVEPOINT name`.
pub(crate) fn release(cur: &mut Cursor<'_>) -> StatementKind {
    if cur.eat_word(b"SAVEPOINT") && cur.eat_identifier().is_some() {
        complete(cur, StatementKind::ReleaseSavepoint)
    } else {
        StatementKind::Unknown
    }
}
