//! `CREATE` and `DROP`: schema changes, except for the temporary tables and prepared statements
//! that belong to the session.

use crate::cursor::Cursor;
use crate::flags::Flags;
use crate::kind::StatementKind;

/// After `CREATE`: `[OR REPLACE] [TEMPORARY] TABLE|SEQUENCE …` or any other object.
pub(crate) fn create(cur: &mut Cursor<'_>) -> StatementKind {
    if cur.eat_word(b"OR") {
        cur.eat_word(b"REPLACE");
    }
    if cur.eat_word(b"TEMPORARY") {
        cur.flag(Flags::CREATE_TEMP_TABLE);
    }
    StatementKind::Ddl
}

/// After `DROP`: `TEMPORARY TABLE …`, `PREPARE name`, or any other object.
pub(crate) fn drop(cur: &mut Cursor<'_>) -> StatementKind {
    if cur.eat_word(b"PREPARE") {
        return StatementKind::DeallocateText;
    }
    if cur.eat_word(b"TEMPORARY") {
        cur.flag(Flags::DROP_TEMP_TABLE);
    }
    StatementKind::Ddl
}
