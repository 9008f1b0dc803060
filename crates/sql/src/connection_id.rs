//! `CONNECTION_ID()` calls, replaced by a number. Behind a proxy a session runs on several
//! server connections, each with its own thread id, while the client knows one id: the proxy
//! substitutes that id for each call before the statement is sent, so the answer is the same
//! wherever it runs. The server names a result column after its expression's text, so the names
//! of columns whose text covers a substitution can be mapped back
//! ([`Substituted::original_name`]): `SELECT CONNECTION_ID()` answers a column called
//! `CONNECTION_ID()`, as from the server.
//!
//! A call is the word `CONNECTION_ID` (any case, not qualified by a schema: `db.connection_id()`
//! is a stored function), then `(` and `)`, with whitespace or comments between them; inside an
//! executable comment (`/*! … */`, `/*M! … */`) too, since the server runs it. Nothing inside a
//! string, a quoted identifier or a plain comment is a call.

use crate::lexer::Lexer;
use crate::options::ClassifyOptions;
use crate::token::{mentions, Token};

const NAME: &[u8] = b"CONNECTION_ID";

/// A statement with its `CONNECTION_ID()` calls replaced.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Substituted {
    /// The statement as sent.
    pub sql: Vec<u8>,
    /// The statement as the client wrote it.
    original: Vec<u8>,
    /// Each replacement: (start in `sql`, its length, length of the call it replaced).
    spans: Vec<(usize, usize, usize)>,
}

impl Substituted {
    /// The name a result column would have had from the unchanged statement, when `name` is
    /// the text of an expression that covers a replacement. `cursor` keeps the search moving
    /// forward through the select list (columns come in order); `None` leaves `name` as is.
    pub fn original_name(&self, name: &[u8], cursor: &mut usize) -> Option<Vec<u8>> {
        if name.is_empty() || name == b"?" || *cursor >= self.sql.len() {
            return None;
        }
        let at = *cursor
            + self.sql[*cursor..]
                .windows(name.len())
                .position(|w| w == name)?;
        let end = at + name.len();
        *cursor = end;
        // Offsets in the original: shift by what replacements before each point changed (a
        // value may be longer or shorter than the call it replaced).
        let mut shift = 0isize;
        let mut original_at = None;
        let mut covered = false;
        let delta = |new_len: usize, old_len: usize| old_len as isize - new_len as isize;
        for &(start, new_len, old_len) in &self.spans {
            if start + new_len <= at {
                shift += delta(new_len, old_len);
                continue;
            }
            if start < at || start + new_len > end {
                if start >= end {
                    break;
                }
                return None; // a replacement only partly inside the name
            }
            if original_at.is_none() {
                original_at = Some(at.checked_add_signed(shift)?);
            }
            covered = true;
            shift += delta(new_len, old_len);
        }
        if !covered {
            return None;
        }
        let from = original_at?;
        self.original
            .get(from..end.checked_add_signed(shift)?)
            .map(<[u8]>::to_vec)
    }
}

/// Where a call was found, as the lexer walks towards its `)`.
#[derive(Clone, Copy)]
enum Seen {
    Nothing,
    /// Call number `which`'s name, starting at `start`, with `edges` executable-comment edges
    /// before it.
    Name {
        which: usize,
        start: usize,
        edges: u32,
    },
    /// The name and `(`.
    Open {
        which: usize,
        start: usize,
        edges: u32,
    },
}

/// Returns the statement with every `CONNECTION_ID()` call replaced by `id`, or `None` when
/// there is none (without allocating). `options` are the session's quoting modes.
pub fn substitute(sql: &[u8], id: u32, options: ClassifyOptions) -> Option<Substituted> {
    substitute_calls(sql, &[(NAME, &id.to_string())], options)
}

/// Returns the statement with every call of each named function without arguments (`NAME()`,
/// any case, not schema-qualified) replaced by its value, or `None` when there is none. The
/// values are SQL literals (numbers).
pub fn substitute_calls(
    sql: &[u8],
    calls: &[(&[u8], &str)],
    options: ClassifyOptions,
) -> Option<Substituted> {
    // Cheap rejection first: most statements never mention them.
    if !calls.iter().any(|(name, _)| mentions(sql, name)) {
        return None;
    }
    let mut lexer = Lexer::new(sql, options);
    let mut seen = Seen::Nothing;
    let mut previous: Option<Token<'_>> = None;
    let mut out: Option<Output> = None;
    while let Some(token) = lexer.next_token() {
        seen = match seen {
            Seen::Name {
                which,
                start,
                edges,
            } if token.is_punct(b'(') => Seen::Open {
                which,
                start,
                edges,
            },
            Seen::Open {
                which,
                start,
                edges,
            } if token.is_punct(b')') && lexer.executable_edges() == edges => {
                let end = lexer.position();
                out.get_or_insert_with(|| Output::new(sql)).replace(
                    sql,
                    start,
                    end,
                    calls[which].1,
                );
                Seen::Nothing
            }
            _ if !previous.is_some_and(|p| p.is_punct(b'.')) => {
                match calls.iter().position(|(name, _)| token.is_word(name)) {
                    Some(which) => Seen::Name {
                        which,
                        start: lexer.position() - token.text.len(),
                        edges: lexer.executable_edges(),
                    },
                    None => Seen::Nothing,
                }
            }
            _ => Seen::Nothing,
        };
        previous = Some(token);
    }
    out.map(|out| out.finish(sql))
}

/// The substituted statement as it is built.
struct Output {
    sql: Vec<u8>,
    spans: Vec<(usize, usize, usize)>,
    /// How much of the input is in `sql` already.
    copied: usize,
}

impl Output {
    fn new(original: &[u8]) -> Self {
        Output {
            sql: Vec::with_capacity(original.len()),
            spans: Vec::new(),
            copied: 0,
        }
    }

    /// Replaces `original[start..end]`, a call after what was copied so far, by `value`.
    fn replace(&mut self, original: &[u8], start: usize, end: usize, value: &str) {
        self.sql
            .extend_from_slice(original.get(self.copied..start).unwrap_or_default());
        self.spans.push((self.sql.len(), value.len(), end - start));
        self.sql.extend_from_slice(value.as_bytes());
        self.copied = end;
    }

    fn finish(mut self, original: &[u8]) -> Substituted {
        self.sql
            .extend_from_slice(original.get(self.copied..).unwrap_or_default());
        Substituted {
            sql: self.sql,
            original: original.to_vec(),
            spans: self.spans,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sub_with(s: &str, options: ClassifyOptions) -> Option<String> {
        substitute(s.as_bytes(), 42, options).map(|v| String::from_utf8(v.sql).unwrap())
    }

    fn sub(s: &str) -> Option<String> {
        sub_with(s, ClassifyOptions::default())
    }

    fn names(sql: &str, columns: &[&str]) -> Vec<String> {
        let s = substitute(sql.as_bytes(), 42, ClassifyOptions::default()).unwrap();
        let mut cursor = 0;
        columns
            .iter()
            .map(|c| {
                s.original_name(c.as_bytes(), &mut cursor)
                    .map(|n| String::from_utf8(n).unwrap())
                    .unwrap_or_else(|| c.to_string())
            })
            .collect()
    }

    #[test]
    fn column_names_are_mapped_back() {
        // The columns the server names after the statement as sent, and what the client sees.
        assert_eq!(
            names("SELECT CONNECTION_ID()", &["42"]),
            ["CONNECTION_ID()"]
        );
        assert_eq!(
            names(
                "SELECT 42, connection_id ( ), CONNECTION_ID()+1, CONNECTION_ID() AS x",
                &["42", "42", "42+1", "x"]
            ),
            ["42", "connection_id ( )", "CONNECTION_ID()+1", "x"]
        );
        assert_eq!(
            names("SELECT (CONNECTION_ID()), 'a'", &["(42)", "a"]),
            ["(CONNECTION_ID())", "a"]
        );
        // Prepared-statement parameters and names not in the statement stay.
        assert_eq!(
            names("SELECT CONNECTION_ID() FROM t WHERE a = ?", &["?", "42"]),
            ["?", "CONNECTION_ID()"]
        );
        assert_eq!(names("SELECT CONNECTION_ID()", &["other"]), ["other"]);
        // Two calls in one column, and a column only partly over a replacement.
        assert_eq!(
            names(
                "SELECT CONNECTION_ID() + connection_id(), CONNECTION_ID()",
                &["42 + 42", "2"]
            ),
            ["CONNECTION_ID() + connection_id()", "2"]
        );
        assert_eq!(names("SELECT CONNECTION_ID()", &["4", "42"]), ["4", "42"]);
    }

    #[test]
    fn replaces_calls_only() {
        assert_eq!(sub("SELECT CONNECTION_ID()").as_deref(), Some("SELECT 42"));
        assert_eq!(
            sub("select connection_id ( ), 1 + 1").as_deref(),
            Some("select 42, 1 + 1")
        );
        assert_eq!(sub("SELECT 'CONNECTION_ID()'"), None);
        assert_eq!(sub("SELECT `connection_id()` FROM t"), None);
        assert_eq!(sub("SELECT my_connection_id()"), None);
        assert_eq!(sub("SELECT connection_id2()"), None);
        assert_eq!(sub("SELECT @connection_id, @@connection_id"), None);
        assert_eq!(sub("SELECT 1 /* CONNECTION_ID() */"), None);
        assert_eq!(sub("SELECT 1 -- CONNECTION_ID()\n"), None);
        assert_eq!(sub("SELECT 1 # CONNECTION_ID()"), None);
        assert_eq!(sub("SELECT 1"), None);
        assert_eq!(sub("SELECT CONNECTION_ID"), None);
        assert_eq!(sub("SELECT CONNECTION_ID(1)"), None);
        assert_eq!(
            sub("SELECT \"a\\\"b\", CONNECTION_ID() AS id").as_deref(),
            Some("SELECT \"a\\\"b\", 42 AS id")
        );
        assert_eq!(
            sub("SELECT CONNECTION_ID(), 'x', CONNECTION_ID();").as_deref(),
            Some("SELECT 42, 'x', 42;")
        );
    }

    #[test]
    fn a_schema_qualified_function_is_not_the_builtin() {
        assert_eq!(sub("SELECT app.connection_id()"), None);
        assert_eq!(sub("SELECT app . connection_id()"), None);
        assert_eq!(sub("SELECT `app`.connection_id()"), None);
        // After a `.` (here nonsense the server rejects), whatever stands before it; the
        // replacement may then be read as a number `42.`: substituting twice is not the same.
        assert_eq!(
            sub("SELECT CONNECTION_ID(). connection_id()").as_deref(),
            Some("SELECT 42. connection_id()")
        );
    }

    #[test]
    fn comments_inside_the_call_are_part_of_it() {
        assert_eq!(
            sub("SELECT CONNECTION_ID(/* me */), 1").as_deref(),
            Some("SELECT 42, 1")
        );
        assert_eq!(
            sub("SELECT CONNECTION_ID -- x\n ( )").as_deref(),
            Some("SELECT 42")
        );
    }

    #[test]
    fn executable_comments_run_so_their_calls_count() {
        assert_eq!(
            sub("SELECT 1 /*! , CONNECTION_ID() */").as_deref(),
            Some("SELECT 1 /*! , 42 */")
        );
        assert_eq!(
            sub("SELECT 1 /*!50700 , CONNECTION_ID() */").as_deref(),
            Some("SELECT 1 /*!50700 , 42 */")
        );
        assert_eq!(
            sub("SELECT 1 /*M!100100 , CONNECTION_ID() */").as_deref(),
            Some("SELECT 1 /*M!100100 , 42 */")
        );
        // A call split across a comment's end is left alone rather than unbalancing it.
        assert_eq!(sub("SELECT /*!CONNECTION_ID(*/)"), None);
        assert_eq!(sub("SELECT CONNECTION_ID/*!()*/"), None);
    }

    #[test]
    fn quoting_modes_decide_where_strings_end() {
        // With NO_BACKSLASH_ESCAPES, `'a\'` is a whole string: the call after it is real.
        let nbe = ClassifyOptions {
            no_backslash_escapes: true,
            ..ClassifyOptions::default()
        };
        let sql = r"SELECT 'a\', CONNECTION_ID()";
        assert_eq!(sub(sql), None);
        assert_eq!(sub_with(sql, nbe).as_deref(), Some(r"SELECT 'a\', 42"));
        // With ANSI_QUOTES, `"…"` is an identifier, where a backslash is an ordinary byte.
        let ansi = ClassifyOptions {
            ansi_quotes: true,
            ..ClassifyOptions::default()
        };
        let sql = r#"SELECT "a\", CONNECTION_ID()"#;
        assert_eq!(sub(sql), None);
        assert_eq!(sub_with(sql, ansi).as_deref(), Some(r#"SELECT "a\", 42"#));
        assert_eq!(sub_with(r#"SELECT "CONNECTION_ID()""#, ansi), None);
    }

    #[test]
    fn bytes_that_are_not_utf8_are_copied_unchanged() {
        let sql = b"SELECT '\xff\xfe', CONNECTION_ID(), `\xc3` -- \x80";
        let s = substitute(sql, 7, ClassifyOptions::default()).unwrap();
        assert_eq!(s.sql, b"SELECT '\xff\xfe', 7, `\xc3` -- \x80");
        assert_eq!(
            substitute(b"\xffCONNECTION_ID()", 7, ClassifyOptions::default()),
            None
        );
        assert_eq!(
            substitute(b"CONNECTION_ID(", 7, ClassifyOptions::default()),
            None
        );
    }

    #[test]
    fn several_calls_and_values_longer_than_the_call() {
        let calls: &[(&[u8], &str)] = &[
            (b"ROW_COUNT", "-1"),
            (b"FOUND_ROWS", "18446744073709551615"),
        ];
        let s = substitute_calls(
            b"SELECT row_count(), FOUND_ROWS() AS f, FOUND_ROWS()+1, 'ROW_COUNT()', db.row_count()",
            calls,
            ClassifyOptions::default(),
        )
        .unwrap();
        assert_eq!(
            String::from_utf8(s.sql.clone()).unwrap(),
            "SELECT -1, 18446744073709551615 AS f, 18446744073709551615+1, 'ROW_COUNT()', db.row_count()"
        );
        let mut cursor = 0;
        let shown: Vec<_> = ["-1", "f", "18446744073709551615+1"]
            .iter()
            .map(|c| {
                s.original_name(c.as_bytes(), &mut cursor)
                    .map(|n| String::from_utf8(n).unwrap())
                    .unwrap_or_else(|| c.to_string())
            })
            .collect();
        assert_eq!(shown, ["row_count()", "f", "FOUND_ROWS()+1"]);
        assert!(substitute_calls(b"SELECT 1", calls, ClassifyOptions::default()).is_none());
    }
}
