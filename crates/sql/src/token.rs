//! The tokens the lexer hands to the classifier, and small helpers to compare them with keywords.

/// What kind of lexeme a [`Token`] is.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum TokenKind {
    /// An unquoted identifier or keyword (`SELECT`, `users`, `last_insert_id`).
    Word,
    /// A backtick-quoted identifier; `text` is the content between the backticks.
    QuotedIdent,
    /// A `'…'` or `"…"` literal; `text` is the content between the quotes, escapes untouched.
    String,
    /// Something starting with a digit (`42`, `1.5e3`, `0x1f`).
    Number,
    /// `@name`, `@'name'`, `` @`name` ``; `text` is the name.
    UserVar,
    /// The host part of an account name (`'bob'@'%'`): an `@` glued to the previous token.
    AccountHost,
    /// `@@name` or `@@scope.name`; `text` is what follows the `@@`.
    SysVar,
    /// `:=`
    Assign,
    /// Any other single byte: `(`, `)`, `,`, `;`, `=`, `.`, `*`, NUL, …
    Punct(u8),
}

/// One lexeme, borrowing its text from the statement.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Token<'a> {
    pub kind: TokenKind,
    pub text: &'a [u8],
}

impl<'a> Token<'a> {
    /// True if this is the unquoted word `keyword` (ASCII case-insensitive). `keyword` must be
    /// upper case ASCII.
    #[inline]
    pub fn is_word(&self, keyword: &[u8]) -> bool {
        self.kind == TokenKind::Word && eq_keyword(self.text, keyword)
    }

    /// True if this is the punctuation byte `byte`.
    #[inline]
    pub fn is_punct(&self, byte: u8) -> bool {
        self.kind == TokenKind::Punct(byte)
    }

    /// True for a token that ends a statement: `;`.
    #[inline]
    pub fn is_statement_end(&self) -> bool {
        self.is_punct(b';')
    }

    /// The identifier this token names, if it is one (plain word or backtick-quoted).
    #[inline]
    pub fn identifier(&self) -> Option<&'a [u8]> {
        match self.kind {
            TokenKind::Word | TokenKind::QuotedIdent => Some(self.text),
            _ => None,
        }
    }
}

/// ASCII case-insensitive comparison of `text` with an upper-case `keyword`.
#[inline]
pub(crate) fn eq_keyword(text: &[u8], keyword: &[u8]) -> bool {
    text.len() == keyword.len()
        && text
            .iter()
            .zip(keyword)
            .all(|(&t, &k)| t.to_ascii_uppercase() == k)
}

/// True if `text` equals one of the upper-case `keywords`.
#[inline]
pub(crate) fn is_one_of(text: &[u8], keywords: &[&[u8]]) -> bool {
    keywords.iter().any(|k| eq_keyword(text, k))
}

/// True if the upper-case `word` occurs anywhere in `text` (ASCII case-insensitive), even inside
/// a longer word, a string or a comment: a quick test that lets text which cannot contain it
/// skip tokenizing.
pub(crate) fn mentions(text: &[u8], word: &[u8]) -> bool {
    !word.is_empty() && text.windows(word.len()).any(|w| eq_keyword(w, word))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn keyword_comparison_ignores_case_but_not_length() {
        assert!(eq_keyword(b"select", b"SELECT"));
        assert!(eq_keyword(b"SeLeCt", b"SELECT"));
        assert!(!eq_keyword(b"selects", b"SELECT"));
        assert!(!eq_keyword(b"selec", b"SELECT"));
        assert!(!eq_keyword(b"s\xc3lect", b"SELECT"));
    }

    #[test]
    fn mentions_finds_the_word_anywhere() {
        assert!(mentions(b"select my_Connection_Id()", b"CONNECTION_ID"));
        assert!(mentions(b"CONNECTION_ID", b"CONNECTION_ID"));
        assert!(!mentions(b"CONNECTION_I", b"CONNECTION_ID"));
        assert!(!mentions(b"", b"CONNECTION_ID"));
        assert!(!mentions(b"abc", b""));
    }

    #[test]
    fn identifier_only_for_words_and_backticks() {
        let word = Token {
            kind: TokenKind::Word,
            text: b"db",
        };
        let quoted = Token {
            kind: TokenKind::QuotedIdent,
            text: b"my db",
        };
        let string = Token {
            kind: TokenKind::String,
            text: b"db",
        };
        assert_eq!(word.identifier(), Some(&b"db"[..]));
        assert_eq!(quoted.identifier(), Some(&b"my db"[..]));
        assert_eq!(string.identifier(), None);
    }
}
