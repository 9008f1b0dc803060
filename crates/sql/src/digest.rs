//! Statement fingerprints for per-query statistics (`/queries`): the same tokenizer as the
//! classifier, so that `SELECT * FROM t WHERE id = 7` and `select *  from t where id=42 -- x`
//! are one digest, `SELECT * FROM t WHERE id = ?`.
//!
//! Rules: comments are dropped (a routing hint is reported apart, as a label); string and number
//! literals become `?` (a sign in front of a number goes with it); a parenthesised list of
//! nothing but literals becomes `(...)`, and a run of such lists (`VALUES (1,2),(3,4)`) one
//! `(...),...`; unquoted words are lower-cased; identifiers in backticks, user and system
//! variables are kept; tokens are separated by one space where the statement had any space or
//! where two words would otherwise run together. The text is capped at [`MAX_TEXT`] bytes; the
//! id is a 64-bit FNV-1a hash of the whole normalised text, the same in every rwproxy.

use crate::hint::RouteHint;
use crate::lexer::Lexer;
use crate::options::ClassifyOptions;
use crate::token::TokenKind;

/// Longest normalised text kept (longer statements are cut, with `…`, but hashed whole).
pub const MAX_TEXT: usize = 1024;

/// A statement's fingerprint.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Digest {
    /// FNV-1a 64 of the whole normalised text.
    pub id: u64,
    /// The normalised text, at most [`MAX_TEXT`] bytes (cut at a character boundary).
    pub text: String,
    /// The routing hint the statement carried in a comment, if any.
    pub hint: Option<RouteHint>,
}

const FNV_OFFSET: u64 = 0xcbf2_9ce4_8422_2325;
const FNV_PRIME: u64 = 0x0000_0100_0000_01b3;

/// A statement's digest id and hint, without the text (what counting an already known statement
/// needs; computed without allocating).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct DigestId {
    /// FNV-1a 64 of the whole normalised text (the same as [`Digest::id`]).
    pub id: u64,
    /// The routing hint the statement carried in a comment, if any.
    pub hint: Option<RouteHint>,
}

/// Where normalised bytes go: a hash only, or a hash and the text.
trait Sink {
    fn push(&mut self, bytes: &[u8]);
    /// `bytes` in ASCII lower case.
    fn push_lower(&mut self, bytes: &[u8]);
}

#[inline]
fn fnv(hash: u64, b: u8) -> u64 {
    (hash ^ u64::from(b)).wrapping_mul(FNV_PRIME)
}

impl Sink for u64 {
    #[inline]
    fn push(&mut self, bytes: &[u8]) {
        for &b in bytes {
            *self = fnv(*self, b);
        }
    }
    #[inline]
    fn push_lower(&mut self, bytes: &[u8]) {
        for &b in bytes {
            *self = fnv(*self, b.to_ascii_lowercase());
        }
    }
}

/// The normalised text, built piece by piece, hashed as it grows.
struct Text {
    text: String,
    hash: u64,
    cut: bool,
}

impl Text {
    fn append(&mut self, bytes: &[u8]) {
        if self.cut {
            return;
        }
        let s = String::from_utf8_lossy(bytes);
        if self.text.len() + s.len() > MAX_TEXT {
            let mut end = MAX_TEXT.saturating_sub(self.text.len());
            while end > 0 && !s.is_char_boundary(end) {
                end -= 1;
            }
            self.text.push_str(&s[..end]);
            self.text.push('…');
            self.cut = true;
        } else {
            self.text.push_str(&s);
        }
    }
}

impl Sink for Text {
    fn push(&mut self, bytes: &[u8]) {
        self.hash.push(bytes);
        self.append(bytes);
    }
    fn push_lower(&mut self, bytes: &[u8]) {
        self.hash.push_lower(bytes);
        self.append(&bytes.to_ascii_lowercase());
    }
}

/// What a piece's bytes are: `start..end` of the statement.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct Span {
    start: u32,
    end: u32,
}

/// One normalised token (its text named by position in the statement, so that the list of
/// pieces borrows nothing and one list per thread is reused from statement to statement).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Piece {
    /// `?` for a literal.
    Literal,
    /// `(...)`: a parenthesised list of literals.
    List,
    /// `,...` after a list: more lists of the same kind.
    MoreLists,
    /// An unquoted word, lower-cased.
    Word(Span),
    /// `` `name` ``
    Quoted(Span),
    /// `@name` (also an account's host part).
    At(Span),
    /// `@@name`, lower-cased.
    SysVar(Span),
    Assign,
    Punct(u8),
}

impl Piece {
    fn emit(&self, sql: &[u8], sink: &mut impl Sink) {
        let text = |s: &Span| {
            sql.get(s.start as usize..s.end as usize)
                .unwrap_or_default()
        };
        match self {
            Piece::Literal => sink.push(b"?"),
            Piece::List => sink.push(b"(...)"),
            Piece::MoreLists => sink.push(b",..."),
            Piece::Word(s) => sink.push_lower(text(s)),
            Piece::Quoted(s) => {
                sink.push(b"`");
                sink.push(text(s));
                sink.push(b"`");
            }
            Piece::At(s) => {
                sink.push(b"@");
                sink.push(text(s));
            }
            Piece::SysVar(s) => {
                sink.push(b"@@");
                sink.push_lower(text(s));
            }
            Piece::Assign => sink.push(b":="),
            Piece::Punct(p) => sink.push(std::slice::from_ref(p)),
        }
    }

    fn is_wordlike(&self) -> bool {
        matches!(
            self,
            Piece::Word(_)
                | Piece::Quoted(_)
                | Piece::At(_)
                | Piece::SysVar(_)
                | Piece::Assign
                | Piece::Literal
        )
    }
}

thread_local! {
    /// The pieces of the statement being fingerprinted, reused (no allocation per statement).
    static PIECES: std::cell::RefCell<Vec<Piece>> = const { std::cell::RefCell::new(Vec::new()) };
}

/// Fingerprints `sql` (the statement's bytes, without the command byte): id and text.
pub fn digest(sql: &[u8], options: ClassifyOptions) -> Digest {
    let mut text = Text {
        text: String::with_capacity(sql.len().min(MAX_TEXT) + 8),
        hash: FNV_OFFSET,
        cut: false,
    };
    let hint = normalise(sql, options, &mut text);
    Digest {
        id: text.hash,
        text: text.text,
        hint,
    }
}

/// The digest id of `sql` (as [`digest`] computes it) without building its text.
pub fn digest_id(sql: &[u8], options: ClassifyOptions) -> DigestId {
    let mut hash = FNV_OFFSET;
    let hint = normalise(sql, options, &mut hash);
    DigestId { id: hash, hint }
}

/// Writes the normalised statement into `sink`; returns the routing hint.
fn normalise(sql: &[u8], options: ClassifyOptions, sink: &mut impl Sink) -> Option<RouteHint> {
    PIECES.with(|cell| match cell.try_borrow_mut() {
        Ok(mut pieces) => {
            pieces.clear();
            let hint = normalise_into(sql, options, &mut pieces, sink);
            // A huge statement does not leave a huge list behind.
            if pieces.capacity() > 4096 {
                *pieces = Vec::new();
            }
            hint
        }
        // Only if a sink re-entered (it does not): a list of its own.
        Err(_) => normalise_into(sql, options, &mut Vec::new(), sink),
    })
}

fn normalise_into(
    sql: &[u8],
    options: ClassifyOptions,
    pieces: &mut Vec<Piece>,
    sink: &mut impl Sink,
) -> Option<RouteHint> {
    let base = sql.as_ptr() as usize;
    // Token texts are slices of `sql`: their position in it.
    let span = |t: &[u8]| {
        let start = (t.as_ptr() as usize).saturating_sub(base).min(sql.len());
        Span {
            start: start as u32,
            end: (start + t.len()).min(sql.len()) as u32,
        }
    };
    let mut lexer = Lexer::new(sql, options);
    // Where each open parenthesis is in `pieces`, and whether its content is literals only.
    let mut open: [(usize, bool); 32] = [(0, false); 32];
    let mut depth = 0usize;
    // Parentheses nested deeper than `open` holds are never folded.
    let mut lost = 0usize;
    while let Some(token) = lexer.next_token() {
        let piece = match token.kind {
            TokenKind::String | TokenKind::Number => {
                // `- 5` after an operator or a parenthesis is one literal.
                if pieces.last() == Some(&Piece::Punct(b'-'))
                    && !matches!(
                        pieces.len().checked_sub(2).map(|i| &pieces[i]),
                        Some(p) if p.is_wordlike() || *p == Piece::Punct(b')')
                    )
                {
                    pieces.pop();
                }
                Piece::Literal
            }
            TokenKind::Word => Piece::Word(span(token.text)),
            TokenKind::QuotedIdent => Piece::Quoted(span(token.text)),
            TokenKind::UserVar | TokenKind::AccountHost => Piece::At(span(token.text)),
            TokenKind::SysVar => Piece::SysVar(span(token.text)),
            TokenKind::Assign => Piece::Assign,
            TokenKind::Punct(p) => Piece::Punct(p),
        };
        match piece {
            Piece::Punct(b'(') => {
                if depth < open.len() && lost == 0 {
                    open[depth] = (pieces.len(), true);
                    depth += 1;
                } else {
                    lost += 1;
                }
                pieces.push(piece);
            }
            Piece::Punct(b')') => {
                let top = if lost > 0 {
                    lost -= 1;
                    None
                } else if depth > 0 {
                    depth -= 1;
                    Some(open[depth])
                } else {
                    None
                };
                match top {
                    Some((at, true)) if pieces.len() > at + 1 => {
                        pieces.truncate(at);
                        // `(...), (...)` → `(...),...`
                        let n = pieces.len();
                        let after_list = n >= 2 && pieces[n - 1] == Piece::Punct(b',');
                        if after_list && pieces[n - 2] == Piece::List {
                            pieces[n - 1] = Piece::MoreLists;
                        } else if after_list && pieces[n - 2] == Piece::MoreLists {
                            pieces.pop();
                        } else {
                            pieces.push(Piece::List);
                        }
                    }
                    _ => pieces.push(piece),
                }
                if depth > 0 && lost == 0 {
                    open[depth - 1].1 = false;
                }
            }
            Piece::Punct(b',') | Piece::Literal => pieces.push(piece),
            other => {
                // A sign may belong to the literal that follows; anything else makes the list
                // more than literals.
                if !matches!(other, Piece::Punct(b'-' | b'+')) && depth > 0 && lost == 0 {
                    open[depth - 1].1 = false;
                }
                pieces.push(other);
            }
        }
    }
    let mut prev: Option<&Piece> = None;
    for piece in pieces.iter() {
        if let Some(p) = prev {
            let tight = matches!(
                piece,
                Piece::Punct(b',' | b')' | b';' | b'.') | Piece::MoreLists
            ) || matches!(p, Piece::Punct(b'(' | b'.'))
                || (matches!(piece, Piece::Punct(b'(') | Piece::List) && p.is_wordlike());
            if !tight {
                sink.push(b" ");
            }
        }
        piece.emit(sql, sink);
        prev = Some(piece);
    }
    lexer.hints.route
}

#[cfg(test)]
mod tests {
    use super::*;

    fn d(sql: &str) -> Digest {
        digest(sql.as_bytes(), ClassifyOptions::default())
    }

    #[test]
    fn literals_comments_case_and_spacing_do_not_matter() {
        let a = d("SELECT * FROM users WHERE id = 7");
        let b = d("select *   from users\n where id=42 -- the answer");
        let c = d("/* app:checkout */ SELECT * FROM users WHERE id = 'x'");
        assert_eq!(a.text, "select * from users where id = ?");
        assert_eq!(a, b);
        assert_eq!(a.id, c.id);
        assert_ne!(a.id, d("SELECT * FROM users WHERE name = 7").id);
    }

    #[test]
    fn in_lists_and_multi_row_values_fold() {
        assert_eq!(
            d("SELECT a FROM t WHERE id IN (1, 2, 3)").text,
            "select a from t where id in(...)"
        );
        assert_eq!(
            d("SELECT a FROM t WHERE id IN (1)").id,
            d("SELECT a FROM t WHERE id IN (1,2,3,4,5,6,7,8,9)").id
        );
        let one = d("INSERT INTO t (a, b) VALUES (1, 'x')");
        let many = d("INSERT INTO t (a, b) VALUES (1, 'x'), (2, 'y'), (3, 'z')");
        assert_eq!(one.text, "insert into t(a, b) values(...)");
        assert_eq!(many.text, "insert into t(a, b) values(...),...");
        assert_eq!(many.id, d("INSERT INTO t (a, b) VALUES (5,'q'),(6,'r')").id);
        // A function call with a column is not folded.
        assert_eq!(
            d("SELECT COALESCE(a, 1) FROM t").text,
            "select coalesce(a, ?) from t"
        );
    }

    #[test]
    fn signs_go_with_numbers_but_not_after_operands() {
        assert_eq!(
            d("SELECT a FROM t WHERE b = -5").id,
            d("SELECT a FROM t WHERE b = 5").id
        );
        assert_eq!(d("SELECT f(-5)").id, d("SELECT f(5)").id);
        assert_eq!(d("SELECT a - 5 FROM t").text, "select a - ? from t");
        assert_eq!(
            d("UPDATE t SET x = x - 1 WHERE id = -3").text,
            "update t set x = x - ? where id = ?"
        );
    }

    #[test]
    fn variables_identifiers_and_hints() {
        let x = d("/* rwproxy:primary */ SELECT @@Session.Autocommit, @v, `Weird Name` FROM t");
        assert_eq!(
            x.text,
            "select @@session.autocommit, @v, `Weird Name` from t"
        );
        assert_eq!(x.hint, Some(RouteHint::Primary));
        assert_eq!(
            d("SELECT ? FROM t WHERE id = ?").text,
            "select ? from t where id = ?"
        );
    }

    #[test]
    fn long_statements_are_cut_but_hashed_whole() {
        let long_a = format!("SELECT {} FROM t", vec!["a"; 2000].join(", "));
        let long_b = format!("SELECT {} FROM t", vec!["a"; 2001].join(", "));
        let (a, b) = (d(&long_a), d(&long_b));
        assert!(a.text.len() <= MAX_TEXT + '…'.len_utf8());
        assert!(a.text.ends_with('…'));
        assert_ne!(a.id, b.id);
    }

    #[test]
    fn the_id_is_stable() {
        // FNV-1a 64 of "select ?": the same in every build and every rwproxy.
        assert_eq!(d("SELECT 1").id, {
            let mut h = FNV_OFFSET;
            for b in b"select ?" {
                h = (h ^ u64::from(*b)).wrapping_mul(FNV_PRIME);
            }
            h
        });
    }

    #[test]
    fn the_id_alone_is_the_id_of_the_text() {
        let deep = format!("SELECT {}1{} FROM t", "(".repeat(40), ")".repeat(40));
        let deep_list = format!(
            "SELECT f{}(1, 2){} FROM t",
            "(a, ".repeat(40),
            ")".repeat(40)
        );
        for sql in [
            "SELECT * FROM Users WHERE id IN (1, 2, 3) AND b = -5",
            "INSERT INTO t (a, b) VALUES (1, 'x'), (2, 'y')",
            "/* rwproxy:replica */ SELECT @@Session.X, @v := 1, `Q`",
            "GRANT SELECT ON *.* TO 'bob'@'%'",
            "SELECT ((((",
            "SELECT ))))",
            &deep,
            &deep_list,
        ] {
            let full = d(sql);
            let id = digest_id(sql.as_bytes(), ClassifyOptions::default());
            assert_eq!((id.id, id.hint), (full.id, full.hint), "{sql}");
            let mut h = FNV_OFFSET;
            for b in full.text.as_bytes() {
                h = fnv(h, *b);
            }
            assert_eq!(h, full.id, "the id is the hash of the text: {sql}");
        }
        // Lists are folded at any depth the tracker holds (32), not beyond.
        let nested = |n: usize| format!("SELECT f{}(1, 2){}", "(a, ".repeat(n), ")".repeat(n));
        assert!(d(&nested(30)).text.contains("(...)"));
        assert!(!d(&nested(40)).text.contains("(...)"));
    }

    #[test]
    fn any_bytes_give_a_digest_without_panic() {
        let mut seed = 7u64;
        for len in 0..400 {
            let bytes: Vec<u8> = (0..len)
                .map(|_| {
                    seed = seed
                        .wrapping_mul(6364136223846793005)
                        .wrapping_add(1442695040888963407);
                    (seed >> 56) as u8
                })
                .collect();
            let _ = digest(&bytes, ClassifyOptions::default());
        }
        let _ = d("SELECT ((((");
        let _ = d("SELECT ))))");
        let _ = d("'unterminated");
    }
}
