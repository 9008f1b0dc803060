//! How many temporary tables a `DROP TEMPORARY TABLE a, b, …` names. Commas inside comments,
//! strings and quoted identifiers do not count.

/// The number of tables listed after `DROP TEMPORARY TABLE[S] [IF EXISTS]`.
pub fn tables_named(sql: &[u8]) -> u32 {
    let mut names = 0u32;
    let mut in_list = false;
    let mut saw_name = false;
    let mut i = 0;
    let mut words_before = 0;
    while i < sql.len() {
        let c = sql[i];
        match c {
            b'/' if sql.get(i + 1) == Some(&b'*') => {
                i = sql[i + 2..]
                    .windows(2)
                    .position(|w| w == b"*/")
                    .map(|p| i + 2 + p + 2)
                    .unwrap_or(sql.len());
            }
            b'#' => i = skip_line(sql, i),
            b'-' if sql.get(i + 1) == Some(&b'-') => i = skip_line(sql, i),
            b'`' | b'\'' | b'"' => {
                let mut j = i + 1;
                while j < sql.len() && sql[j] != c {
                    j += if sql[j] == b'\\' && c != b'`' { 2 } else { 1 };
                }
                i = j + 1;
                if in_list {
                    saw_name = true;
                }
            }
            b',' if in_list => {
                if saw_name {
                    names += 1;
                }
                saw_name = false;
                i += 1;
            }
            b if b.is_ascii_alphanumeric() || b == b'_' || b == b'$' || b == b'.' => {
                let start = i;
                while i < sql.len()
                    && (sql[i].is_ascii_alphanumeric() || matches!(sql[i], b'_' | b'$' | b'.'))
                {
                    i += 1;
                }
                let word = &sql[start..i];
                if !in_list {
                    words_before += 1;
                    if word.eq_ignore_ascii_case(b"table") || word.eq_ignore_ascii_case(b"tables") {
                        in_list = words_before >= 3;
                    }
                } else if word.eq_ignore_ascii_case(b"if")
                    || word.eq_ignore_ascii_case(b"exists") && !saw_name
                {
                    // `IF EXISTS` before the first name
                } else if word.eq_ignore_ascii_case(b"restrict")
                    || word.eq_ignore_ascii_case(b"cascade")
                {
                    break;
                } else {
                    saw_name = true;
                }
            }
            _ => i += 1,
        }
    }
    if saw_name {
        names += 1;
    }
    names
}

fn skip_line(sql: &[u8], i: usize) -> usize {
    sql[i..]
        .iter()
        .position(|b| *b == b'\n')
        .map(|p| i + p)
        .unwrap_or(sql.len())
}

#[cfg(test)]
mod tests {
    use super::tables_named;

    #[test]
    fn counts_names_not_commas() {
        assert_eq!(tables_named(b"DROP TEMPORARY TABLE t1"), 1);
        assert_eq!(tables_named(b"DROP TEMPORARY TABLE t1, t2"), 2);
        assert_eq!(
            tables_named(b"DROP TEMPORARY TABLE IF EXISTS t1, `a,b`, app.t3"),
            3
        );
        assert_eq!(
            tables_named(b"DROP TEMPORARY TABLE other /* was: a, b */"),
            1
        );
        assert_eq!(tables_named(b"drop temporary tables x -- a, b\n"), 1);
        assert_eq!(tables_named(b"DROP TEMPORARY TABLE t1 RESTRICT"), 1);
    }
}
