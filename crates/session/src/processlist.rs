//! One connection id. A client learns its id from the greeting (rwproxy's session id), gets the
//! same from `CONNECTION_ID()` and `KILL`s with it; on the server its statements run on backend
//! connections with thread ids of their own. So that a client finds itself (and other rwproxy
//! clients) in the process list, the `Id` column of `SHOW [FULL] PROCESSLIST` and the `ID` column
//! of `information_schema.PROCESSLIST` are rewritten in text-protocol results: a row whose id is
//! the thread of one of this rwproxy's backend connections shows the id of the client session
//! that holds it. In such a statement `CONNECTION_ID()` is the server's id of the connection it
//! runs on, so that `WHERE ID = CONNECTION_ID()` still finds the client's own row.
//!
//! Pure functions over packets; the relay calls them (docs/compatibility.md tells the limits).

use std::collections::HashMap;

use bytes::{BufMut, BytesMut};
use rwproxy_protocol::lenenc;
use rwproxy_sql::ClassifyOptions;

use crate::coldef;

/// `MYSQL_TYPE_LONGLONG`, the type of the process list's id columns.
const TYPE_LONGLONG: u8 = 0x08;

/// Which process-list form a statement may return.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ProcessList {
    /// `SHOW [FULL] PROCESSLIST`: an `Id` column with no table.
    Show,
    /// A query of `information_schema.PROCESSLIST`.
    Table,
}

/// Whether a text statement may read the process list, and in which form: it names
/// `PROCESSLIST` outside strings and comments ([`rwproxy_sql::process_list::named`], read under
/// the session's quoting modes `options`). `is_show` tells whether it is a `SHOW` statement
/// (asked only for such statements: most never pay for it).
pub fn reads_process_list(
    sql: &[u8],
    options: ClassifyOptions,
    is_show: impl FnOnce() -> bool,
) -> Option<ProcessList> {
    if !rwproxy_sql::process_list::named(sql, options) {
        return None;
    }
    Some(if is_show() {
        ProcessList::Show
    } else {
        ProcessList::Table
    })
}

/// Whether the column described by `def` holds process ids.
pub fn is_process_id_column(def: &[u8], form: ProcessList) -> bool {
    let Some(n) = coldef::names(def) else {
        return false;
    };
    if coldef::column_type(&n) != Some(TYPE_LONGLONG) {
        return false;
    }
    match form {
        ProcessList::Show => n.schema.is_empty() && n.table.is_empty() && n.name == b"Id",
        ProcessList::Table => {
            n.schema.eq_ignore_ascii_case(b"information_schema")
                && n.org_table.eq_ignore_ascii_case(b"PROCESSLIST")
                && n.org_name.eq_ignore_ascii_case(b"ID")
        }
    }
}

/// Rewrites the cells at `columns` (sorted) of a text row whose value is a key of `owners`.
/// Writes the new row into `out` and returns `true` when anything changed.
pub fn rewrite_row(
    row: &[u8],
    columns: &[usize],
    owners: &HashMap<u32, u32>,
    out: &mut BytesMut,
) -> bool {
    let mut changed = false;
    let mut pos = 0usize;
    let mut copied = 0usize;
    let mut index = 0usize;
    let mut next = columns.iter().copied().peekable();
    out.clear();
    while pos < row.len() {
        let Some(&wanted) = next.peek() else { break };
        let cell_start = pos;
        let (value, used) = if row[pos] == 0xFB {
            (None, 1)
        } else {
            match lenenc::read_str(&row[pos..]) {
                Ok((v, used)) => (Some(v), used),
                Err(_) => return false,
            }
        };
        pos += used;
        if index == wanted {
            next.next();
            let owner = value
                .and_then(|v| std::str::from_utf8(v).ok())
                .and_then(|v| v.parse::<u32>().ok())
                .and_then(|thread| owners.get(&thread));
            if let Some(id) = owner {
                out.put_slice(&row[copied..cell_start]);
                let text = id.to_string();
                out.put_u8(text.len() as u8);
                out.put_slice(text.as_bytes());
                copied = pos;
                changed = true;
            }
        }
        index += 1;
    }
    if changed {
        out.put_slice(&row[copied..]);
    }
    changed
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::coldef::tests::coldef;

    fn lenenc_str(out: &mut Vec<u8>, s: &[u8]) {
        out.push(s.len() as u8);
        out.extend_from_slice(s);
    }

    fn row(cells: &[Option<&str>]) -> Vec<u8> {
        let mut r = Vec::new();
        for c in cells {
            match c {
                Some(s) => lenenc_str(&mut r, s.as_bytes()),
                None => r.push(0xFB),
            }
        }
        r
    }

    #[test]
    fn recognises_both_forms_and_nothing_else() {
        let options = ClassifyOptions::default();
        assert_eq!(
            reads_process_list(b"show full PROCESSLIST", options, || true),
            Some(ProcessList::Show)
        );
        assert_eq!(
            reads_process_list(
                b"SELECT * FROM information_schema.processlist",
                options,
                || false
            ),
            Some(ProcessList::Table)
        );
        assert_eq!(
            reads_process_list(b"SELECT id FROM t", options, || unreachable!()),
            None
        );
        // The word in a comment or a longer name: not the process list.
        assert_eq!(
            reads_process_list(
                b"SELECT CONNECTION_ID() FROM processlist_log /* processlist */",
                options,
                || unreachable!()
            ),
            None
        );
        let show = coldef("", "", "", "Id", "", TYPE_LONGLONG);
        assert!(is_process_id_column(&show, ProcessList::Show));
        assert!(!is_process_id_column(&show, ProcessList::Table));
        let is = coldef(
            "information_schema",
            "p",
            "PROCESSLIST",
            "id",
            "ID",
            TYPE_LONGLONG,
        );
        assert!(is_process_id_column(&is, ProcessList::Table));
        // An application table's id column, or an expression named Id, is left alone.
        let app = coldef(
            "app",
            "processlist_log",
            "processlist_log",
            "id",
            "id",
            TYPE_LONGLONG,
        );
        assert!(!is_process_id_column(&app, ProcessList::Table));
        let time = coldef(
            "information_schema",
            "PROCESSLIST",
            "PROCESSLIST",
            "TIME",
            "TIME",
            3,
        );
        assert!(!is_process_id_column(&time, ProcessList::Table));
        assert!(!is_process_id_column(&[1, 2, 3], ProcessList::Show));
        assert!(!is_process_id_column(&[], ProcessList::Show));
    }

    #[test]
    fn rewrites_owned_ids_only() {
        let owners: HashMap<u32, u32> = [(1201, 7), (55, 123_456)].into_iter().collect();
        let mut out = BytesMut::new();
        let r = row(&[Some("1201"), Some("app"), None, Some("Query")]);
        assert!(rewrite_row(&r, &[0], &owners, &mut out));
        assert_eq!(
            &out[..],
            &row(&[Some("7"), Some("app"), None, Some("Query")])[..]
        );
        let r = row(&[Some("x"), Some("55")]);
        assert!(rewrite_row(&r, &[1], &owners, &mut out));
        assert_eq!(&out[..], &row(&[Some("x"), Some("123456")])[..]);
        // Someone else's connection, a NULL, garbage: unchanged.
        assert!(!rewrite_row(&row(&[Some("99")]), &[0], &owners, &mut out));
        assert!(!rewrite_row(&row(&[None]), &[0], &owners, &mut out));
        assert!(!rewrite_row(&[0xFC, 1], &[0], &owners, &mut out));
        assert!(!rewrite_row(&[], &[0], &owners, &mut out));
    }
}
