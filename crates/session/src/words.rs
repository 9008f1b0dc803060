//! Which of the words that make rwproxy change a statement or its reply appear in the text:
//! `CONNECTION_ID` (substituted), `PROCESSLIST` (ids rewritten), `STATUS` (the client
//! connection's status shown). One pass over the text, no allocation: every statement pays it.

/// The words found (in any case, anywhere: a false positive only costs a closer look).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Words {
    pub connection_id: bool,
    pub processlist: bool,
    pub status: bool,
}

pub fn scan(sql: &[u8]) -> Words {
    let mut w = Words::default();
    let at = |i: usize, word: &[u8]| {
        sql.get(i..i + word.len())
            .is_some_and(|s| s.eq_ignore_ascii_case(word))
    };
    for (i, b) in sql.iter().enumerate() {
        match b | 0x20 {
            b'c' if !w.connection_id => w.connection_id = at(i, b"connection_id"),
            b'p' if !w.processlist => w.processlist = at(i, b"processlist"),
            b's' if !w.status => w.status = at(i, b"status"),
            _ => {}
        }
    }
    w
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn finds_each_word_in_any_case() {
        assert_eq!(scan(b"SELECT 1"), Words::default());
        let w = scan(b"select Connection_Id(), 1 from information_schema.PROCESSLIST");
        assert!(w.connection_id && w.processlist && !w.status);
        assert!(scan(b"SHOW SESSION STATUS").status);
        assert!(!scan(b"SELECT statu").status);
        assert!(scan(b"STATUS").status);
    }
}
