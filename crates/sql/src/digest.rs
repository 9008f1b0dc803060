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

/// The normalised text, built token by token, hashed as it grows.
struct Out {
    text: String,
    hash: u64,
    cut: bool,
}

impl Out {
    fn push_bytes(&mut self, bytes: &[u8]) {
        for &b in bytes {
            self.hash = (self.hash ^ u64::from(b)).wrapping_mul(FNV_PRIME);
        }
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

/// One normalised token.
#[derive(Debug, Clone, PartialEq, Eq)]
enum Piece {
    /// `?` for a literal.
    Literal,
    /// `(...)`: a parenthesised list of literals.
    List,
    /// `,...` after a list: more lists of the same kind.
    MoreLists,
    Word(Vec<u8>),
    Text(Vec<u8>),
    Punct(u8),
}

impl Piece {
    fn bytes(&self) -> &[u8] {
        match self {
            Piece::Literal => b"?",
            Piece::List => b"(...)",
            Piece::MoreLists => b",...",
            Piece::Word(w) | Piece::Text(w) => w,
            Piece::Punct(p) => std::slice::from_ref(p),
        }
    }

    fn is_wordlike(&self) -> bool {
        matches!(self, Piece::Word(_) | Piece::Text(_) | Piece::Literal)
    }
}

/// Fingerprints `sql` (the statement's bytes, without the command byte).
pub fn digest(sql: &[u8], options: ClassifyOptions) -> Digest {
    let mut lexer = Lexer::new(sql, options);
    let mut pieces: Vec<Piece> = Vec::new();
    // Where each open parenthesis is in `pieces`, and whether its content is literals only.
    let mut open: Vec<(usize, bool)> = Vec::new();
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
            TokenKind::Word => Piece::Word(token.text.to_ascii_lowercase()),
            TokenKind::QuotedIdent => {
                let mut t = Vec::with_capacity(token.text.len() + 2);
                t.push(b'`');
                t.extend_from_slice(token.text);
                t.push(b'`');
                Piece::Text(t)
            }
            TokenKind::UserVar => {
                let mut t = Vec::with_capacity(token.text.len() + 1);
                t.push(b'@');
                t.extend_from_slice(token.text);
                Piece::Text(t)
            }
            TokenKind::SysVar => {
                let mut t = Vec::with_capacity(token.text.len() + 2);
                t.extend_from_slice(b"@@");
                t.extend_from_slice(&token.text.to_ascii_lowercase());
                Piece::Text(t)
            }
            TokenKind::AccountHost => {
                let mut t = Vec::with_capacity(token.text.len() + 1);
                t.push(b'@');
                t.extend_from_slice(token.text);
                Piece::Text(t)
            }
            TokenKind::Assign => Piece::Text(b":=".to_vec()),
            TokenKind::Punct(p) => Piece::Punct(p),
        };
        match piece {
            Piece::Punct(b'(') => {
                open.push((pieces.len(), true));
                pieces.push(piece);
            }
            Piece::Punct(b')') => match open.pop() {
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
                    if let Some(outer) = open.last_mut() {
                        outer.1 = false;
                    }
                }
                _ => {
                    pieces.push(piece);
                    if let Some(outer) = open.last_mut() {
                        outer.1 = false;
                    }
                }
            },
            Piece::Punct(b',') => pieces.push(piece),
            Piece::Literal => pieces.push(piece),
            other => {
                // A sign may belong to the literal that follows; anything else makes the list
                // more than literals.
                if !matches!(other, Piece::Punct(b'-' | b'+')) {
                    if let Some(inner) = open.last_mut() {
                        inner.1 = false;
                    }
                }
                pieces.push(other);
            }
        }
    }
    let mut out = Out {
        text: String::with_capacity(sql.len().min(MAX_TEXT) + 8),
        hash: FNV_OFFSET,
        cut: false,
    };
    let mut prev: Option<&Piece> = None;
    for piece in &pieces {
        if let Some(p) = prev {
            let tight = matches!(
                piece,
                Piece::Punct(b',' | b')' | b';' | b'.') | Piece::MoreLists
            ) || matches!(p, Piece::Punct(b'(' | b'.'))
                || (matches!(piece, Piece::Punct(b'(') | Piece::List) && p.is_wordlike());
            if !tight {
                out.push_bytes(b" ");
            }
        }
        out.push_bytes(piece.bytes());
        prev = Some(piece);
    }
    Digest {
        id: out.hash,
        text: out.text,
        hint: lexer.hints.route,
    }
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
