//! The entry rule: decide the statement kind from its first keyword, handing the statements that
//! need a closer look to their own module.

use crate::cursor::Cursor;
use crate::flags::Flags;
use crate::kind::StatementKind;
use crate::token::TokenKind;
use crate::{ddl, introspection, query, set_statement, transaction};

/// How deep statements may nest (`EXPLAIN ANALYZE SET STATEMENT … FOR WITH …`) before we give up
/// and answer `Unknown`. Keeps hostile input from exhausting the stack.
pub(crate) const MAX_DEPTH: u8 = 4;

/// The longest keyword that starts a statement we know (`UNINSTALL`, `DEALLOCATE`, …).
const KEYWORD_BUF: usize = 12;

/// What the rule for the first keyword decided.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Head<'a> {
    pub kind: StatementKind,
    /// The schema of `USE db`.
    pub schema: Option<&'a [u8]>,
}

impl From<StatementKind> for Head<'_> {
    fn from(kind: StatementKind) -> Self {
        Head { kind, schema: None }
    }
}

/// Upper-case `text` into `buf` if it fits; otherwise return an empty slice (no keyword we look
/// for is that long).
fn upper<'b>(text: &[u8], buf: &'b mut [u8; KEYWORD_BUF]) -> &'b [u8] {
    if text.len() > KEYWORD_BUF {
        return &[];
    }
    let out = &mut buf[..text.len()];
    for (o, t) in out.iter_mut().zip(text) {
        *o = t.to_ascii_uppercase();
    }
    out
}

/// Classify the statement starting at the cursor.
pub(crate) fn statement<'a>(cur: &mut Cursor<'a>, depth: u8) -> Head<'a> {
    if depth > MAX_DEPTH {
        return StatementKind::Unknown.into();
    }
    let Some(first) = cur.next() else {
        return StatementKind::Unknown.into();
    };
    if first.is_punct(b'(') {
        return query::parenthesized(cur, depth).into();
    }
    if first.kind != TokenKind::Word {
        return StatementKind::Unknown.into();
    }
    let mut buf = [0u8; KEYWORD_BUF];
    let kind = match upper(first.text, &mut buf) {
        b"SELECT" | b"VALUES" | b"TABLE" => StatementKind::Read,
        b"WITH" => query::with(cur, depth),
        b"INSERT" | b"UPDATE" | b"DELETE" | b"REPLACE" | b"MERGE" | b"DO" => StatementKind::Write,
        b"LOAD" => load(cur),
        b"CREATE" => ddl::create(cur),
        b"DROP" => ddl::drop(cur),
        b"ALTER" | b"TRUNCATE" | b"RENAME" | b"GRANT" | b"REVOKE" | b"OPTIMIZE" | b"REPAIR"
        | b"CHECK" | b"CHECKSUM" => StatementKind::Ddl,
        b"ANALYZE" => introspection::analyze(cur, depth),
        b"SHOW" => introspection::show(cur),
        b"EXPLAIN" | b"DESCRIBE" | b"DESC" => introspection::explain(cur, depth),
        b"HELP" => StatementKind::Show,
        b"CALL" => StatementKind::Call,
        b"BEGIN" => transaction::begin(cur),
        b"START" => transaction::start(cur),
        b"COMMIT" => transaction::commit(cur),
        b"ROLLBACK" => transaction::rollback(cur),
        b"SAVEPOINT" => transaction::savepoint(cur),
        b"RELEASE" => transaction::release(cur),
        b"XA" => StatementKind::Xa,
        b"SET" => set_statement::set(cur, depth),
        b"USE" => return use_schema(cur),
        b"LOCK" => lock(cur),
        b"UNLOCK" => unlock(cur),
        b"PREPARE" => StatementKind::PrepareText,
        b"EXECUTE" => execute(cur),
        b"DEALLOCATE" => deallocate(cur),
        b"KILL" => StatementKind::Kill,
        b"GET" => get(cur),
        b"FLUSH" | b"RESET" | b"INSTALL" | b"UNINSTALL" | b"PURGE" | b"CHANGE" | b"STOP"
        | b"SHUTDOWN" | b"BINLOG" | b"CACHE" | b"SIGNAL" | b"RESIGNAL" | b"BACKUP" | b"HANDLER"
        | b"RESTART" | b"CLONE" | b"IMPORT" => StatementKind::Other,
        _ => StatementKind::Unknown,
    };
    kind.into()
}

/// `LOAD DATA …`, `LOAD XML …` write rows; `LOAD INDEX INTO CACHE` does not, but is admin.
fn load(cur: &mut Cursor<'_>) -> StatementKind {
    if cur.peek_is_word(b"INDEX") {
        StatementKind::Other
    } else {
        StatementKind::Write
    }
}

/// `USE db` or ``USE `db` ``.
fn use_schema<'a>(cur: &mut Cursor<'a>) -> Head<'a> {
    match cur.eat_identifier() {
        Some(schema) if cur.at_statement_end() => Head {
            kind: StatementKind::Use,
            schema: Some(schema),
        },
        _ => StatementKind::Unknown.into(),
    }
}

/// `LOCK TABLE[S] …` or `LOCK INSTANCE FOR BACKUP`.
fn lock(cur: &mut Cursor<'_>) -> StatementKind {
    if cur.eat_any_word(&[b"TABLES", b"TABLE"]) {
        StatementKind::LockTables
    } else if cur.eat_word(b"INSTANCE") {
        StatementKind::Other
    } else {
        StatementKind::Unknown
    }
}

/// `UNLOCK TABLE[S]` or `UNLOCK INSTANCE`.
fn unlock(cur: &mut Cursor<'_>) -> StatementKind {
    if cur.eat_any_word(&[b"TABLES", b"TABLE"]) {
        StatementKind::UnlockTables
    } else if cur.eat_word(b"INSTANCE") {
        StatementKind::Other
    } else {
        StatementKind::Unknown
    }
}

/// `EXECUTE name [USING …]`; MariaDB's `EXECUTE IMMEDIATE '<any SQL>'` cannot be judged.
fn execute(cur: &mut Cursor<'_>) -> StatementKind {
    if cur.peek_is_word(b"IMMEDIATE") {
        StatementKind::Unknown
    } else {
        StatementKind::ExecuteText
    }
}

/// `DEALLOCATE PREPARE name`.
fn deallocate(cur: &mut Cursor<'_>) -> StatementKind {
    if cur.eat_word(b"PREPARE") {
        StatementKind::DeallocateText
    } else {
        StatementKind::Unknown
    }
}

/// `GET [CURRENT|STACKED] DIAGNOSTICS …`: reads the previous statement's diagnostics area.
fn get(cur: &mut Cursor<'_>) -> StatementKind {
    cur.eat_any_word(&[b"CURRENT", b"STACKED"]);
    if cur.eat_word(b"DIAGNOSTICS") {
        cur.flag(Flags::LAST_STATEMENT_INFO);
        // Every user variable here is a target: `@n = NUMBER, @m = ROW_COUNT`.
        while !cur.at_statement_end() {
            if cur.next().is_some_and(|t| t.kind == TokenKind::UserVar) {
                cur.scan.mark_assignment_target();
            }
        }
        StatementKind::Other
    } else {
        StatementKind::Unknown
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn upper_fits_or_gives_up() {
        let mut buf = [0u8; KEYWORD_BUF];
        assert_eq!(upper(b"select", &mut buf), b"SELECT");
        let mut buf = [0u8; KEYWORD_BUF];
        assert_eq!(upper(b"a_very_long_identifier", &mut buf), b"");
        let mut buf = [0u8; KEYWORD_BUF];
        assert_eq!(upper(b"s\xffl", &mut buf), b"S\xffL");
    }
}
