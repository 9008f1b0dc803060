//! Statements that describe rather than do: `SHOW`, `EXPLAIN`/`DESCRIBE`/`DESC`, and MariaDB's
//! `ANALYZE <statement>` (which does run the statement).

use crate::cursor::Cursor;
use crate::flags::Flags;
use crate::kind::StatementKind;
use crate::statement::statement;

/// After `SHOW`: flag what only one particular connection or server can answer.
pub(crate) fn show(cur: &mut Cursor<'_>) -> StatementKind {
    if cur.eat_word(b"FULL") && cur.peek_is_word(b"PROCESSLIST") {
        cur.flag(Flags::SERVER_STATE);
    }
    if cur.at_statement_end() {
        return StatementKind::Unknown;
    }
    let Some(what) = cur.peek() else {
        return StatementKind::Unknown;
    };
    let about_last_statement: [&[u8]; 5] =
        [b"WARNINGS", b"ERRORS", b"COUNT", b"PROFILE", b"PROFILES"];
    let about_this_server: [&[u8]; 12] = [
        b"MASTER",
        b"BINARY",
        b"BINLOG",
        b"SLAVE",
        b"SLAVES",
        b"REPLICA",
        b"REPLICAS",
        b"ALL",
        b"RELAYLOG",
        b"PROCESSLIST",
        b"EXPLAIN",
        b"ANALYZE",
    ];
    if about_last_statement.iter().any(|k| what.is_word(k)) {
        cur.flag(Flags::LAST_STATEMENT_INFO);
    } else if about_this_server.iter().any(|k| what.is_word(k)) {
        cur.flag(Flags::SERVER_STATE);
    }
    StatementKind::Show
}

/// True if the next token can start a statement that `EXPLAIN` or `ANALYZE` can look at.
fn at_explainable(cur: &mut Cursor<'_>) -> bool {
    let Some(token) = cur.peek() else {
        return false;
    };
    token.is_punct(b'(')
        || [
            &b"SELECT"[..],
            b"WITH",
            b"VALUES",
            b"TABLE",
            b"INSERT",
            b"UPDATE",
            b"DELETE",
            b"REPLACE",
        ]
        .iter()
        .any(|k| token.is_word(k))
}

/// Skip `FORMAT = name` (or `FORMAT = 'name'`) if present.
fn skip_format(cur: &mut Cursor<'_>) {
    if cur.eat_word(b"FORMAT") {
        cur.eat_punct(b'=');
        cur.next();
    }
}

/// What running a statement for its plan amounts to: a read stays a `Show`, anything else is
/// a write (it really runs).
fn executed(inner: StatementKind) -> StatementKind {
    match inner {
        StatementKind::Read | StatementKind::Show => StatementKind::Show,
        StatementKind::Unknown => StatementKind::Unknown,
        _ => StatementKind::Write,
    }
}

/// After `EXPLAIN`, `DESCRIBE` or `DESC`: a table description, a plan (`Show`), or with
/// `ANALYZE` a statement that really runs.
pub(crate) fn explain(cur: &mut Cursor<'_>, depth: u8) -> StatementKind {
    let mut analyze = false;
    loop {
        if cur.eat_word(b"ANALYZE") {
            analyze = true;
        } else if cur.eat_any_word(&[b"EXTENDED", b"PARTITIONS"]) {
        } else if cur.peek_is_word(b"FORMAT") {
            skip_format(cur);
        } else {
            break;
        }
    }
    if at_explainable(cur) {
        let inner = statement(cur, depth + 1).kind;
        return if analyze {
            executed(inner)
        } else {
            StatementKind::Show
        };
    }
    if cur.at_statement_end() {
        return StatementKind::Unknown;
    }
    if cur.eat_word(b"FOR") {
        // EXPLAIN FOR CONNECTION n: the plan of a thread on one particular server.
        cur.flag(Flags::SERVER_STATE);
    }
    StatementKind::Show
}

/// After MariaDB's `ANALYZE`: table maintenance, or a statement run for its plan.
pub(crate) fn analyze(cur: &mut Cursor<'_>, depth: u8) -> StatementKind {
    if cur.eat_any_word(&[b"TABLE", b"TABLES", b"NO_WRITE_TO_BINLOG", b"LOCAL"]) {
        return StatementKind::Ddl;
    }
    skip_format(cur);
    if at_explainable(cur) {
        executed(statement(cur, depth + 1).kind)
    } else {
        StatementKind::Unknown
    }
}
