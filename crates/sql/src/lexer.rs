//! Single-pass tokenizer over raw statement bytes.
//!
//! Comments are consumed here and never reach the classifier, except that their text is checked
//! for routing hints. The content of executable comments (`/*! … */`, `/*!50100 … */`,
//! `/*M! … */`, `/*M!100100 … */`) is tokenized as SQL, whatever the version number says: if a
//! server might run it, the classifier must see it. Strings and backtick identifiers come out as
//! one token each, so nothing inside them is ever taken for a keyword.
//!
//! Bytes that are not valid UTF-8 are treated like letters (MySQL identifiers may contain any
//! non-ASCII character); nothing here can panic on any input.

use crate::hint::Hints;
use crate::options::ClassifyOptions;
use crate::token::{Token, TokenKind};

pub(crate) struct Lexer<'a> {
    src: &'a [u8],
    pos: usize,
    backslash_escapes: bool,
    ansi_quotes: bool,
    in_executable_comment: bool,
    /// How many times an executable comment opened or closed so far.
    executable_edges: u32,
    /// Where the previous token ended and what it was, to tell `'bob'@'host'` from `@var`.
    prev_end: usize,
    prev_kind: Option<TokenKind>,
    /// Hints found in comments so far.
    pub hints: Hints,
    /// A string, identifier or comment was still open at the end of the input.
    pub unterminated: bool,
    /// A `"…"` literal contained `\"`, which ends the token early if the session runs with
    /// `ANSI_QUOTES` (there `"` quotes identifiers, where a backslash is not an escape).
    pub ambiguous_quoting: bool,
}

/// Byte classes, looked up once per byte on the hot path.
const WORD: u8 = 1;
const WORD_START: u8 = 2;
const SPACE: u8 = 4;

static CLASSES: [u8; 256] = byte_classes();

const fn byte_classes() -> [u8; 256] {
    let mut table = [0u8; 256];
    let mut i = 0;
    while i < 256 {
        let b = i as u8;
        let mut class = 0;
        // MySQL identifiers may contain any non-ASCII byte.
        if b.is_ascii_alphabetic() || b == b'_' || b == b'$' || b >= 0x80 {
            class |= WORD | WORD_START;
        }
        if b.is_ascii_digit() {
            class |= WORD;
        }
        // The whitespace bytes MySQL skips between tokens.
        if matches!(b, b' ' | b'\t' | b'\n' | b'\r' | 0x0b | 0x0c) {
            class |= SPACE;
        }
        table[i] = class;
        i += 1;
    }
    table
}

#[inline]
fn is_word_byte(b: u8) -> bool {
    CLASSES[b as usize] & WORD != 0
}

#[inline]
fn is_word_start(b: u8) -> bool {
    CLASSES[b as usize] & WORD_START != 0
}

#[inline]
fn is_space(b: u8) -> bool {
    CLASSES[b as usize] & SPACE != 0
}

impl<'a> Lexer<'a> {
    pub fn new(src: &'a [u8], options: ClassifyOptions) -> Self {
        Lexer {
            src,
            pos: 0,
            backslash_escapes: !options.no_backslash_escapes,
            ansi_quotes: options.ansi_quotes,
            in_executable_comment: false,
            executable_edges: 0,
            prev_end: usize::MAX,
            prev_kind: None,
            hints: Hints::default(),
            unterminated: false,
            ambiguous_quoting: false,
        }
    }

    /// Where the input is read next: right after the token last returned (or at the end).
    /// Word and punctuation tokens carry their raw text, so such a token starts at this
    /// position less its length.
    #[inline]
    pub fn position(&self) -> usize {
        self.pos
    }

    /// How many times an executable comment (`/*! … */`) opened or closed so far. The same count
    /// at two positions means no such comment opened or closed between them: the text between
    /// can be cut out without unbalancing one.
    #[inline]
    pub fn executable_edges(&self) -> u32 {
        self.executable_edges
    }

    #[inline]
    fn byte_at(&self, index: usize) -> Option<u8> {
        self.src.get(index).copied()
    }

    /// The next token, or `None` at the end of the input (and for ever after).
    pub fn next_token(&mut self) -> Option<Token<'a>> {
        let first = self.skip_trivia()?;
        let start = self.pos;
        let kind = match first {
            b'"' if self.ansi_quotes => self.quoted_ident(b'"'),
            b'\'' | b'"' => self.quoted(first),
            b'`' => self.backtick(),
            b'@' => self.at_sign(start),
            b':' if self.byte_at(start + 1) == Some(b'=') => {
                self.pos += 2;
                TokenKind::Assign
            }
            b'0'..=b'9' => {
                self.pos = self.scan_while(start, |b| is_word_byte(b) || b == b'.');
                TokenKind::Number
            }
            b if is_word_start(b) => {
                self.pos = self.scan_while(start, is_word_byte);
                TokenKind::Word
            }
            other => {
                self.pos += 1;
                TokenKind::Punct(other)
            }
        };
        let text = token_text(self.src, start, self.pos, kind);
        self.prev_end = self.pos;
        self.prev_kind = Some(kind);
        Some(Token { kind, text })
    }

    /// Skip whitespace and comments; return the first byte of the next token.
    fn skip_trivia(&mut self) -> Option<u8> {
        loop {
            self.pos = self.scan_while(self.pos, is_space);
            let Some(b) = self.byte_at(self.pos) else {
                if self.in_executable_comment {
                    self.in_executable_comment = false;
                    self.unterminated = true;
                }
                return None;
            };
            let next = self.byte_at(self.pos + 1);
            match b {
                b'/' if next == Some(b'*') => self.block_comment(),
                b'*' if next == Some(b'/') && self.in_executable_comment => {
                    self.in_executable_comment = false;
                    self.executable_edges = self.executable_edges.wrapping_add(1);
                    self.pos += 2;
                }
                b'-' if next == Some(b'-')
                    && self.byte_at(self.pos + 2).is_none_or(|c| c <= b' ') =>
                {
                    self.line_comment(self.pos + 2)
                }
                b'#' => self.line_comment(self.pos + 1),
                _ => return Some(b),
            }
        }
    }

    /// At `/*`: open an executable comment, or skip a plain one and look at its text for a hint.
    fn block_comment(&mut self) {
        let body = self.pos + 2;
        let executable_from = match (self.byte_at(body), self.byte_at(body + 1)) {
            (Some(b'!'), _) => Some(body + 1),
            (Some(b'M'), Some(b'!')) => Some(body + 2),
            _ => None,
        };
        if let Some(after_bang) = executable_from {
            self.pos = self.scan_while(after_bang, |b| b.is_ascii_digit());
            self.in_executable_comment = true;
            self.executable_edges = self.executable_edges.wrapping_add(1);
            return;
        }
        match find_pair(self.src, body, b'*', b'/') {
            Some(end) => {
                self.hints.record_comment(&self.src[body..end]);
                self.pos = end + 2;
            }
            None => {
                self.unterminated = true;
                self.pos = self.src.len();
            }
        }
    }

    /// A `-- ` or `#` comment whose text starts at `body` and runs to the end of the line.
    fn line_comment(&mut self, body: usize) {
        let body = body.min(self.src.len());
        let end = self.src[body..]
            .iter()
            .position(|&b| b == b'\n')
            .map_or(self.src.len(), |offset| body + offset);
        self.hints.record_comment(&self.src[body..end]);
        self.pos = (end + 1).min(self.src.len());
    }

    /// A `'…'` or `"…"` literal: the quote doubled or backslash-escaped does not end it.
    fn quoted(&mut self, quote: u8) -> TokenKind {
        let mut i = self.pos + 1;
        loop {
            match self.byte_at(i) {
                None => {
                    self.unterminated = true;
                    self.pos = self.src.len();
                    return TokenKind::String;
                }
                Some(b) if b == quote => {
                    if self.byte_at(i + 1) == Some(quote) {
                        i += 2;
                    } else {
                        self.pos = i + 1;
                        return TokenKind::String;
                    }
                }
                Some(b'\\') if self.backslash_escapes => {
                    if quote == b'"' && self.byte_at(i + 1) == Some(b'"') {
                        self.ambiguous_quoting = true;
                    }
                    i += 2;
                }
                Some(_) => i += 1,
            }
        }
    }

    /// A `"…"` identifier under `ANSI_QUOTES`: only a doubled `"` does not end it.
    fn quoted_ident(&mut self, quote: u8) -> TokenKind {
        let mut i = self.pos + 1;
        loop {
            match self.byte_at(i) {
                None => {
                    self.unterminated = true;
                    self.pos = self.src.len();
                    return TokenKind::QuotedIdent;
                }
                Some(b) if b == quote && self.byte_at(i + 1) == Some(quote) => i += 2,
                Some(b) if b == quote => {
                    self.pos = i + 1;
                    return TokenKind::QuotedIdent;
                }
                Some(_) => i += 1,
            }
        }
    }

    /// A backtick identifier; a doubled backtick does not end it.
    fn backtick(&mut self) -> TokenKind {
        self.pos = self.skip_backtick(self.pos);
        TokenKind::QuotedIdent
    }

    /// Return the position after the backtick identifier starting at `open`.
    fn skip_backtick(&mut self, open: usize) -> usize {
        let mut i = open + 1;
        loop {
            match self.byte_at(i) {
                None => {
                    self.unterminated = true;
                    return self.src.len();
                }
                Some(b'`') if self.byte_at(i + 1) == Some(b'`') => i += 2,
                Some(b'`') => return i + 1,
                Some(_) => i += 1,
            }
        }
    }

    /// `@@sysvar`, `@uservar`, `@'quoted var'`, or the host part of `'user'@'host'`.
    fn at_sign(&mut self, start: usize) -> TokenKind {
        let glued_to_name = self.prev_end == start
            && matches!(
                self.prev_kind,
                Some(TokenKind::String | TokenKind::QuotedIdent | TokenKind::Word)
            );
        let after = start + 1;
        if glued_to_name {
            self.pos = after;
            match self.byte_at(after) {
                Some(q @ (b'\'' | b'"')) => {
                    self.pos = after;
                    self.quoted(q);
                }
                Some(b'`') => self.pos = self.skip_backtick(after),
                _ => {
                    self.pos = self.scan_while(after, |b| is_word_byte(b) || b == b'.' || b == b'%')
                }
            }
            return TokenKind::AccountHost;
        }
        match self.byte_at(after) {
            Some(b'@') => {
                self.pos = self.scan_while(after + 1, |b| is_word_byte(b) || b == b'.');
                TokenKind::SysVar
            }
            Some(q @ (b'\'' | b'"')) => {
                self.pos = after;
                self.quoted(q);
                TokenKind::UserVar
            }
            Some(b'`') => {
                self.pos = self.skip_backtick(after);
                TokenKind::UserVar
            }
            Some(b) if is_word_byte(b) || b == b'.' => {
                self.pos = self.scan_while(after, |b| is_word_byte(b) || b == b'.');
                TokenKind::UserVar
            }
            _ => {
                self.pos = after;
                TokenKind::Punct(b'@')
            }
        }
    }

    /// The first position at or after `from` whose byte does not satisfy `keep`.
    #[inline]
    fn scan_while(&self, from: usize, keep: impl Fn(u8) -> bool) -> usize {
        let from = from.min(self.src.len());
        self.src[from..]
            .iter()
            .position(|&b| !keep(b))
            .map_or(self.src.len(), |offset| from + offset)
    }
}

/// The position of the first `a` immediately followed by `b`, at or after `from`.
fn find_pair(src: &[u8], from: usize, a: u8, b: u8) -> Option<usize> {
    let tail = src.get(from..)?;
    tail.windows(2)
        .position(|w| w[0] == a && w[1] == b)
        .map(|offset| from + offset)
}

/// The text a token carries: the content without quotes for quoted tokens, the name without the
/// `@`/`@@` for variables, the raw bytes otherwise.
fn token_text(src: &[u8], start: usize, end: usize, kind: TokenKind) -> &[u8] {
    let raw = &src[start..end];
    match kind {
        TokenKind::String | TokenKind::QuotedIdent => strip_quotes(raw),
        TokenKind::SysVar => raw.get(2..).unwrap_or_default(),
        TokenKind::UserVar | TokenKind::AccountHost => {
            strip_quotes(raw.get(1..).unwrap_or_default())
        }
        _ => raw,
    }
}

/// `'abc'` → `abc`; an unterminated `'abc` → `abc`; anything not quoted is returned as is.
fn strip_quotes(raw: &[u8]) -> &[u8] {
    match raw.first() {
        Some(&q @ (b'\'' | b'"' | b'`')) => {
            let inner = &raw[1..];
            match inner.last() {
                Some(&last) if last == q && !inner.is_empty() => &inner[..inner.len() - 1],
                _ => inner,
            }
        }
        _ => raw,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn kinds(sql: &str) -> Vec<(TokenKind, String)> {
        let mut lexer = Lexer::new(sql.as_bytes(), ClassifyOptions::default());
        let mut out = Vec::new();
        while let Some(token) = lexer.next_token() {
            out.push((token.kind, String::from_utf8_lossy(token.text).into_owned()));
        }
        out
    }

    fn texts(sql: &str) -> Vec<String> {
        kinds(sql).into_iter().map(|(_, text)| text).collect()
    }

    #[test]
    fn splits_words_numbers_and_punctuation() {
        assert_eq!(
            texts("SELECT a,b FROM t WHERE id=42;"),
            ["SELECT", "a", ",", "b", "FROM", "t", "WHERE", "id", "=", "42", ";"]
        );
    }

    #[test]
    fn strings_and_identifiers_are_single_tokens() {
        let tokens = kinds(r#"SELECT 'it''s', 'a\'b', "x", `we``ird`"#);
        assert_eq!(tokens[1], (TokenKind::String, "it''s".into()));
        assert_eq!(tokens[3], (TokenKind::String, r"a\'b".into()));
        assert_eq!(tokens[5], (TokenKind::String, "x".into()));
        assert_eq!(tokens[7], (TokenKind::QuotedIdent, "we``ird".into()));
        assert_eq!(tokens.len(), 8);
    }

    #[test]
    fn no_backslash_escapes_ends_string_at_backslash_quote() {
        let sql = br"SELECT 'a\', 1";
        let mut lexer = Lexer::new(
            sql,
            ClassifyOptions {
                no_backslash_escapes: true,
                ..ClassifyOptions::default()
            },
        );
        let mut count = 0;
        while lexer.next_token().is_some() {
            count += 1;
        }
        assert_eq!(count, 4, "SELECT, 'a\\', comma, 1");
        assert!(!lexer.unterminated);
    }

    #[test]
    fn comments_are_skipped_but_executable_comments_are_not() {
        assert_eq!(
            texts("/* c */ SELECT -- x\n 1 # y\n /*!40101 , 2 */ /*M!100100 , 3*/"),
            ["SELECT", "1", ",", "2", ",", "3"]
        );
    }

    #[test]
    fn double_dash_needs_whitespace_to_be_a_comment() {
        assert_eq!(texts("SELECT 1--1"), ["SELECT", "1", "-", "-", "1"]);
        assert_eq!(texts("SELECT 1 --"), ["SELECT", "1"]);
        assert_eq!(texts("SELECT 1 --\tx"), ["SELECT", "1"]);
    }

    #[test]
    fn variables_and_account_hosts() {
        let tokens = kinds("SET @a = @@session.sql_mode, @`b c` := 1; GRANT x TO 'u'@'%' ");
        assert_eq!(tokens[1], (TokenKind::UserVar, "a".into()));
        assert_eq!(tokens[3], (TokenKind::SysVar, "session.sql_mode".into()));
        assert_eq!(tokens[5], (TokenKind::UserVar, "b c".into()));
        assert_eq!(tokens[6].0, TokenKind::Assign);
        let host = tokens.last().unwrap();
        assert_eq!(host, &(TokenKind::AccountHost, "%".into()));
    }

    #[test]
    fn unterminated_things_are_reported() {
        for sql in [
            "SELECT 'abc",
            "SELECT `abc",
            "SELECT 1 /* x",
            "SELECT 1 /*!40101 , 2",
        ] {
            let mut lexer = Lexer::new(sql.as_bytes(), ClassifyOptions::default());
            while lexer.next_token().is_some() {}
            assert!(lexer.unterminated, "{sql}");
        }
        let mut lexer = Lexer::new(b"SELECT 'abc' /* x */", ClassifyOptions::default());
        while lexer.next_token().is_some() {}
        assert!(!lexer.unterminated);
    }

    #[test]
    fn escaped_double_quote_is_flagged_as_ambiguous() {
        let mut lexer = Lexer::new(br#"SELECT "a\"b""#, ClassifyOptions::default());
        while lexer.next_token().is_some() {}
        assert!(lexer.ambiguous_quoting);
        let mut lexer = Lexer::new(br#"SELECT 'a\"b', "a""b""#, ClassifyOptions::default());
        while lexer.next_token().is_some() {}
        assert!(!lexer.ambiguous_quoting);
    }
}
