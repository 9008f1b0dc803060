//! `KILL [HARD | SOFT] [CONNECTION | QUERY] <id>`: which connection a `KILL` statement names.
//! A proxy that gives its clients connection ids of its own carries these out itself; the other
//! forms (`KILL QUERY ID <query id>`, `KILL USER <account>`, an id given as an expression) are
//! not recognised.

use crate::lexer::Lexer;
use crate::options::ClassifyOptions;
use crate::token::{Token, TokenKind};

/// A `KILL` of one connection, or of the statement it runs.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Kill {
    /// The connection id the statement names.
    pub id: u32,
    /// `KILL QUERY`: the connection's running statement only.
    pub query_only: bool,
}

/// Reads `KILL [HARD | SOFT] [CONNECTION | QUERY] <id>` at the start of `sql`, in that order,
/// with comments anywhere (executable comments are read as SQL); the id is a number, which may
/// stand in parentheses and after unary `+`. The statement ends at the end of the text or at
/// `;` (what follows a `;` is not looked at). `None` for anything else.
pub fn parse(sql: &[u8]) -> Option<Kill> {
    // The quoting modes do not matter: a string anywhere before the end makes it no `KILL` of
    // ours, and nothing after the `;` is read.
    let mut lexer = Lexer::new(sql, ClassifyOptions::default());
    if !lexer.next_token()?.is_word(b"KILL") {
        return None;
    }
    let mut token = lexer.next_token()?;
    if token.is_word(b"HARD") || token.is_word(b"SOFT") {
        token = lexer.next_token()?;
    }
    let query_only = token.is_word(b"QUERY");
    if query_only || token.is_word(b"CONNECTION") {
        token = lexer.next_token()?;
    }
    let id = number(token, &mut lexer)?;
    match lexer.next_token() {
        None if !lexer.unterminated => Some(Kill { id, query_only }),
        Some(end) if end.is_statement_end() => Some(Kill { id, query_only }),
        _ => None,
    }
}

/// `<n>`, `+<n>`, `(<n>)`, … starting with `token`: the number, with everything up to its last
/// `)` consumed.
fn number<'a>(mut token: Token<'a>, lexer: &mut Lexer<'a>) -> Option<u32> {
    let mut open = 0usize;
    while token.is_punct(b'(') || token.is_punct(b'+') {
        if token.is_punct(b'(') {
            open += 1;
        }
        token = lexer.next_token()?;
    }
    if token.kind != TokenKind::Number {
        return None;
    }
    let id = token.text.iter().try_fold(0u32, |n, &b| {
        let digit = char::from(b).to_digit(10)?;
        n.checked_mul(10)?.checked_add(digit)
    })?;
    for _ in 0..open {
        if !lexer.next_token()?.is_punct(b')') {
            return None;
        }
    }
    Some(id)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn kill(sql: &[u8]) -> Option<(u32, bool)> {
        parse(sql).map(|k| (k.id, k.query_only))
    }

    #[test]
    fn kill_forms() {
        assert_eq!(kill(b"KILL 12"), Some((12, false)));
        assert_eq!(kill(b"kill query 7"), Some((7, true)));
        assert_eq!(kill(b"KILL CONNECTION 9;"), Some((9, false)));
        assert_eq!(kill(b"KILL HARD QUERY 3"), Some((3, true)));
        assert_eq!(kill(b"KILL soft connection 3"), Some((3, false)));
        assert_eq!(kill(b"KILL 4000000000"), Some((4_000_000_000, false)));
        assert_eq!(kill(b"KILL USER bob"), None);
        assert_eq!(kill(b"SELECT 1"), None);
    }

    #[test]
    fn forms_left_to_the_server() {
        assert_eq!(
            kill(b"KILL QUERY ID 5"),
            None,
            "a query id, not a connection"
        );
        assert_eq!(kill(b"KILL USER 'bob'@'%'"), None);
        assert_eq!(kill(b"KILL"), None);
        assert_eq!(kill(b"KILL QUERY"), None);
        assert_eq!(kill(b"KILL 5 + 1"), None, "an expression");
        assert_eq!(kill(b"KILL -5"), None);
        assert_eq!(
            kill(b"KILL 4294967296"),
            None,
            "more than a connection id holds"
        );
        assert_eq!(kill(b"KILL 1.5"), None);
        assert_eq!(kill(b"KILL 0x10"), None);
        assert_eq!(kill(b"KILL '5'"), None);
        assert_eq!(kill(b"KILL QUERY HARD 5"), None, "keywords out of order");
        assert_eq!(kill(b"KILL 5 QUERY"), None);
        assert_eq!(kill(b"KILLER 5"), None);
        assert_eq!(kill(b"KILL (5"), None);
        assert_eq!(kill(b"KILL 5)"), None);
    }

    #[test]
    fn comments_anywhere() {
        assert_eq!(kill(b"/* app */ KILL 12"), Some((12, false)));
        assert_eq!(kill(b"KILL /* x */ QUERY /* y */ 7"), Some((7, true)));
        assert_eq!(kill(b"KILL/**/7"), Some((7, false)));
        assert_eq!(kill(b"KILL 7/* why */"), Some((7, false)));
        assert_eq!(kill(b"KILL -- why\n QUERY 7 # done"), Some((7, true)));
        assert_eq!(kill(b"KILL QUERY 7 /* open"), None, "the server rejects it");
        assert_eq!(kill(b"-- KILL 7\nSELECT 1"), None);
    }

    #[test]
    fn executable_comments_are_read() {
        assert_eq!(kill(b"KILL /*!QUERY*/ 7"), Some((7, true)));
        assert_eq!(kill(b"/*!KILL 7*/"), Some((7, false)));
        assert_eq!(kill(b"KILL /*M!100000 HARD */ 7;"), Some((7, false)));
        assert_eq!(kill(b"KILL /*!7"), None, "unterminated");
    }

    #[test]
    fn statement_end_and_numbers() {
        assert_eq!(kill(b"KILL 5 ;"), Some((5, false)));
        assert_eq!(kill(b"KILL 5;\n"), Some((5, false)));
        assert_eq!(kill(b"KILL 5; SELECT 'x"), Some((5, false)));
        assert_eq!(kill(b"KILL +5"), Some((5, false)));
        assert_eq!(kill(b"KILL (5)"), Some((5, false)));
        assert_eq!(kill(b"KILL QUERY ( + (5) );"), Some((5, true)));
        assert_eq!(kill(b"KILL 007"), Some((7, false)));
    }

    #[test]
    fn garbage_is_not_a_kill() {
        assert_eq!(kill(b""), None);
        assert_eq!(kill(b"KILL \xff"), None);
        assert_eq!(kill(b"KILL 5 \xff"), None);
        assert_eq!(kill(b"KILL 5 /* \xff */"), Some((5, false)));
        assert_eq!(kill(b"\xffKILL 5"), None);
        assert_eq!(kill(b"KILL 5\0"), None);
    }
}
