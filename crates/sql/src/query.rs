//! Queries that do not start with `SELECT`: `(SELECT …) UNION …` and `WITH cte AS (…) …`.

use crate::cursor::Cursor;
use crate::kind::StatementKind;
use crate::statement::MAX_DEPTH;

/// After a leading `(`: any number of further `(`, then a query.
pub(crate) fn parenthesized(cur: &mut Cursor<'_>, depth: u8) -> StatementKind {
    if depth > MAX_DEPTH {
        return StatementKind::Unknown;
    }
    while cur.eat_punct(b'(') {}
    if cur.eat_word(b"WITH") {
        return with(cur, depth + 1);
    }
    if cur.eat_any_word(&[b"SELECT", b"VALUES", b"TABLE"]) {
        StatementKind::Read
    } else {
        StatementKind::Unknown
    }
}

/// After `WITH`: `[RECURSIVE] name [(cols)] AS (…) [CYCLE … RESTRICT] [, …]` and then the
/// statement the common table expressions serve.
pub(crate) fn with(cur: &mut Cursor<'_>, depth: u8) -> StatementKind {
    if depth > MAX_DEPTH {
        return StatementKind::Unknown;
    }
    cur.eat_word(b"RECURSIVE");
    loop {
        if cur.eat_identifier().is_none() {
            return StatementKind::Unknown;
        }
        if cur.eat_punct(b'(') && !cur.skip_balanced() {
            return StatementKind::Unknown;
        }
        if !cur.eat_word(b"AS") || !cur.eat_punct(b'(') || !cur.skip_balanced() {
            return StatementKind::Unknown;
        }
        if cur.eat_word(b"CYCLE") {
            // MariaDB: CYCLE col [, col] RESTRICT
            while !cur.eat_word(b"RESTRICT") {
                if cur.at_statement_end() {
                    return StatementKind::Unknown;
                }
                cur.next();
            }
        }
        if !cur.eat_punct(b',') {
            break;
        }
    }
    let Some(main) = cur.peek() else {
        return StatementKind::Unknown;
    };
    if main.is_punct(b'(') {
        cur.next();
        return parenthesized(cur, depth + 1);
    }
    if [&b"SELECT"[..], b"VALUES", b"TABLE"]
        .iter()
        .any(|k| main.is_word(k))
    {
        StatementKind::Read
    } else if [&b"UPDATE"[..], b"DELETE", b"INSERT", b"REPLACE"]
        .iter()
        .any(|k| main.is_word(k))
    {
        StatementKind::Write
    } else {
        StatementKind::Unknown
    }
}
