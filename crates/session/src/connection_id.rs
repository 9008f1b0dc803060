//! `CONNECTION_ID()` as the client knows it. Behind rwproxy a session runs on several backend
//! connections, each with its own server thread id; the id the client was given in the greeting
//! (and that `KILL` takes) is rwproxy's. Statements calling `CONNECTION_ID()` get it substituted
//! with that id before they are sent, so the answer is the same wherever they run.

const NAME: &[u8] = b"connection_id";

/// Returns the statement with every `CONNECTION_ID()` call (outside strings, quoted
/// identifiers and comments) replaced by `id`, or `None` when there is none.
pub fn substitute(sql: &[u8], id: u32) -> Option<Vec<u8>> {
    // Cheap rejection first: most statements never mention it.
    if !sql
        .windows(NAME.len())
        .any(|w| w.eq_ignore_ascii_case(NAME))
    {
        return None;
    }
    let mut out = Vec::with_capacity(sql.len() + 8);
    let mut i = 0;
    let mut changed = false;
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
                        out.extend_from_slice(id.to_string().as_bytes());
                        i = k + 1;
                        changed = true;
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
    changed.then_some(out)
}

fn is_ident(b: u8) -> bool {
    b.is_ascii_alphanumeric() || b == b'_' || b == b'$' || b == b'.' || b == b'@'
}

#[cfg(test)]
mod tests {
    use super::substitute;

    fn sub(s: &str) -> Option<String> {
        substitute(s.as_bytes(), 42).map(|v| String::from_utf8(v).unwrap())
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
