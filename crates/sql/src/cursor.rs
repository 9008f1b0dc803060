//! [`Cursor`]: the token stream the statement rules walk, with one token of lookahead. Every
//! token it hands out also goes through the [`FlagScan`].

use crate::flag_scan::FlagScan;
use crate::flags::Flags;
use crate::lexer::Lexer;
use crate::options::ClassifyOptions;
use crate::token::{Token, TokenKind};

pub(crate) struct Cursor<'a> {
    pub lexer: Lexer<'a>,
    peeked: Option<Option<Token<'a>>>,
    pub scan: FlagScan<'a>,
}

impl<'a> Cursor<'a> {
    pub fn new(sql: &'a [u8], options: ClassifyOptions) -> Self {
        Cursor {
            lexer: Lexer::new(sql, options),
            peeked: None,
            scan: FlagScan::default(),
        }
    }

    /// The next token, without consuming it.
    #[inline]
    pub fn peek(&mut self) -> Option<Token<'a>> {
        match self.peeked {
            Some(token) => token,
            None => {
                let token = self.lexer.next_token();
                self.peeked = Some(token);
                token
            }
        }
    }

    /// Consume the next token.
    #[inline]
    #[allow(clippy::should_implement_trait)] // not an iterator: it also feeds the flag scan
    pub fn next(&mut self) -> Option<Token<'a>> {
        let token = match self.peeked.take() {
            Some(token) => token,
            None => self.lexer.next_token(),
        };
        if let Some(token) = token {
            self.scan.observe(&token);
        }
        token
    }

    /// True if the next token is the word `keyword`.
    #[inline]
    pub fn peek_is_word(&mut self, keyword: &[u8]) -> bool {
        self.peek().is_some_and(|t| t.is_word(keyword))
    }

    /// Consume the next token if it is the word `keyword`.
    #[inline]
    pub fn eat_word(&mut self, keyword: &[u8]) -> bool {
        let found = self.peek_is_word(keyword);
        if found {
            self.next();
        }
        found
    }

    /// Consume the next token if it is one of `keywords`.
    pub fn eat_any_word(&mut self, keywords: &[&[u8]]) -> bool {
        let found = self
            .peek()
            .is_some_and(|t| keywords.iter().any(|k| t.is_word(k)));
        if found {
            self.next();
        }
        found
    }

    /// Consume the next token if it is the punctuation `byte`.
    #[inline]
    pub fn eat_punct(&mut self, byte: u8) -> bool {
        let found = self.peek().is_some_and(|t| t.is_punct(byte));
        if found {
            self.next();
        }
        found
    }

    /// Consume an identifier (word or backtick-quoted) and return its text.
    pub fn eat_identifier(&mut self) -> Option<&'a [u8]> {
        let name = self.peek()?.identifier()?;
        self.next();
        Some(name)
    }

    /// True at the end of the input or at the `;` that ends the statement.
    #[inline]
    pub fn at_statement_end(&mut self) -> bool {
        self.peek().is_none_or(|t| t.is_statement_end())
    }

    /// Having consumed a `(`, consume up to and including its matching `)`. False if the input
    /// ends first.
    pub fn skip_balanced(&mut self) -> bool {
        let mut depth = 1usize;
        while let Some(token) = self.next() {
            match token.kind {
                TokenKind::Punct(b'(') => depth += 1,
                TokenKind::Punct(b')') => {
                    depth -= 1;
                    if depth == 0 {
                        return true;
                    }
                }
                _ => {}
            }
        }
        false
    }

    /// Consume the tokens of one expression: up to, not including, a `,` outside parentheses or
    /// the end of the statement.
    pub fn skip_expression(&mut self) {
        let mut depth = 0usize;
        while let Some(token) = self.peek() {
            match token.kind {
                TokenKind::Punct(b',') if depth == 0 => return,
                TokenKind::Punct(b';') => return,
                TokenKind::Punct(b'(') => depth += 1,
                TokenKind::Punct(b')') => depth = depth.saturating_sub(1),
                _ => {}
            }
            self.next();
        }
    }

    /// Raise flags decided by a statement rule.
    #[inline]
    pub fn flag(&mut self, flags: Flags) {
        self.scan.flags |= flags;
    }

    /// Consume everything that is left, so the flag scan sees all of it.
    pub fn drain(&mut self) {
        while self.next().is_some() {}
        self.scan.finish();
    }
}
