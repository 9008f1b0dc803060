//! `CONNECTION_ID()` as the client knows it. Behind rwproxy a session runs on several backend
//! connections, each with its own server thread id; the id the client was given in the greeting
//! (and that `KILL` takes) is rwproxy's. Statements calling `CONNECTION_ID()` get it substituted
//! with that id before they are sent, so the answer is the same wherever they run. The server
//! names a result column after its expression's text, so the names of columns whose text
//! covers a substitution are mapped back ([`Substituted::original_name`]): `SELECT
//! CONNECTION_ID()` answers a column called `CONNECTION_ID()`, as from the server.

const NAME: &[u8] = b"connection_id";

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
        // Offsets in the original: shift by what replacements before each point changed.
        let mut shift: isize = 0;
        let mut original_at = None;
        let mut covered = false;
        for &(start, new_len, old_len) in &self.spans {
            if start + new_len <= at {
                shift += old_len as isize - new_len as isize;
                continue;
            }
            if start < at || start + new_len > end {
                if start >= end {
                    break;
                }
                return None; // a replacement only partly inside the name
            }
            if original_at.is_none() {
                original_at = Some((at as isize + shift) as usize);
            }
            covered = true;
            shift += old_len as isize - new_len as isize;
        }
        if !covered {
            return None;
        }
        let from = original_at?;
        let to = (end as isize + shift) as usize;
        self.original.get(from..to).map(<[u8]>::to_vec)
    }
}

/// Returns the statement with every `CONNECTION_ID()` call (outside strings, quoted
/// identifiers and comments) replaced by `id`, or `None` when there is none.
pub fn substitute(sql: &[u8], id: u32) -> Option<Substituted> {
    // Cheap rejection first: most statements never mention it.
    if !sql
        .windows(NAME.len())
        .any(|w| w.eq_ignore_ascii_case(NAME))
    {
        return None;
    }
    let mut out = Vec::with_capacity(sql.len() + 8);
    let mut i = 0;
    let mut spans = Vec::new();
    while i < sql.len() {
        let c = sql[i];
        match c {
            b'\'' | b'"' | b'`' => {
                let start = i;
                i += 1;
                while i < sql.len() {
                    if sql[i] == b'\\' && c != b'`' {
                        i += 2;
                        continue;
                    }
                    if sql[i] == c {
                        i += 1;
                        if i < sql.len() && sql[i] == c {
                            i += 1;
                            continue;
                        }
                        break;
                    }
                    i += 1;
                }
                out.extend_from_slice(&sql[start..i.min(sql.len())]);
            }
            b'/' if sql.get(i + 1) == Some(&b'*') && sql.get(i + 2) != Some(&b'!') => {
                let end = sql[i + 2..]
                    .windows(2)
                    .position(|w| w == b"*/")
                    .map(|p| i + 2 + p + 2)
                    .unwrap_or(sql.len());
                out.extend_from_slice(&sql[i..end]);
                i = end;
            }
            b'#' => {
                let end = sql[i..]
                    .iter()
                    .position(|b| *b == b'\n')
                    .map(|p| i + p)
                    .unwrap_or(sql.len());
                out.extend_from_slice(&sql[i..end]);
                i = end;
            }
            b'-' if sql.get(i + 1) == Some(&b'-')
                && sql.get(i + 2).is_none_or(|b| b.is_ascii_whitespace()) =>
            {
                let end = sql[i..]
                    .iter()
                    .position(|b| *b == b'\n')
                    .map(|p| i + p)
                    .unwrap_or(sql.len());
                out.extend_from_slice(&sql[i..end]);
                i = end;
            }
            _ if sql.len() - i >= NAME.len()
                && sql[i..i + NAME.len()].eq_ignore_ascii_case(NAME)
                && (i == 0 || !is_ident(sql[i - 1])) =>
            {
                let mut j = i + NAME.len();
                while j < sql.len() && sql[j].is_ascii_whitespace() {
                    j += 1;
                }
                if sql.get(j) == Some(&b'(') {
                    let mut k = j + 1;
                    while k < sql.len() && sql[k].is_ascii_whitespace() {
                        k += 1;
                    }
                    if sql.get(k) == Some(&b')') {
                        let text = id.to_string();
                        spans.push((out.len(), text.len(), k + 1 - i));
                        out.extend_from_slice(text.as_bytes());
                        i = k + 1;
                        continue;
                    }
                }
                out.push(c);
                i += 1;
            }
            _ => {
                out.push(c);
                i += 1;
            }
        }
    }
    (!spans.is_empty()).then(|| Substituted {
        sql: out,
        original: sql.to_vec(),
        spans,
    })
}

fn is_ident(b: u8) -> bool {
    b.is_ascii_alphanumeric() || b == b'_' || b == b'$' || b == b'.' || b == b'@'
}

#[cfg(test)]
mod tests {
    use super::substitute;

    fn sub(s: &str) -> Option<String> {
        substitute(s.as_bytes(), 42).map(|v| String::from_utf8(v.sql).unwrap())
    }

    fn names(sql: &str, columns: &[&str]) -> Vec<String> {
        let s = substitute(sql.as_bytes(), 42).unwrap();
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
        assert_eq!(sub("SELECT 1 /* CONNECTION_ID() */"), None);
        assert_eq!(sub("SELECT 1"), None);
        assert_eq!(
            sub("SELECT \"a\\\"b\", CONNECTION_ID() AS id").as_deref(),
            Some("SELECT \"a\\\"b\", 42 AS id")
        );
    }
}
