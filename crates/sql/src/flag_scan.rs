//! Rules that raise flags wherever their tokens appear, whatever the statement: locking clauses,
//! primary-only functions, variables, `INTO`, and a second statement after `;`.
//!
//! Every token the classifier consumes passes through [`FlagScan::observe`], in order, so these
//! rules see the whole text exactly once. They look back at most two tokens, which they remember
//! as small tags rather than whole tokens (this runs once per token and must stay cheap).

use crate::flags::Flags;
use crate::primary_only::{function_flags, is_sequence_pseudo_column, sysvar_flags};
use crate::token::{eq_keyword, Token, TokenKind};

/// What the rules need to remember about a recent token.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
enum Recent {
    #[default]
    Other,
    /// Any word not listed below.
    Word,
    For,
    Value,
    Next,
    Previous,
    In,
    Lock,
    Into,
    /// The punctuation `.`.
    Dot,
}

/// A variable whose role (read or assigned) depends on the token after it.
#[derive(Debug, Clone, Copy, Default)]
enum PendingVar<'a> {
    #[default]
    None,
    User,
    /// `@@name`, with its text.
    System(&'a [u8]),
}

#[derive(Default)]
pub(crate) struct FlagScan<'a> {
    pub flags: Flags,
    /// An `INTO` keyword was seen (the caller decides whether that was `SELECT … INTO`).
    pub saw_into: bool,
    prev: Recent,
    prev2: Recent,
    /// The text of the previous token when it was a word (a possible function name).
    prev_word: &'a [u8],
    pending_var: PendingVar<'a>,
    /// Inside `INTO @a, @b, …`: variables here are assigned.
    in_into_list: bool,
    after_semicolon: bool,
}

impl<'a> FlagScan<'a> {
    #[inline]
    pub fn observe(&mut self, token: &Token<'a>) {
        if self.after_semicolon {
            self.flags |= Flags::MULTI_STATEMENT;
        }
        let pending = std::mem::take(&mut self.pending_var);
        if !matches!(pending, PendingVar::None) {
            self.resolve_var(pending, token.kind == TokenKind::Assign);
        }
        let mut recent = Recent::Other;
        let mut keeps_into_list = false;
        match token.kind {
            TokenKind::Word => {
                recent = self.word(token.text);
                keeps_into_list = recent == Recent::Into;
            }
            TokenKind::Punct(b'(') if self.prev == Recent::Word => {
                self.flags |= function_flags(self.prev_word);
            }
            TokenKind::Punct(b';') => self.after_semicolon = true,
            TokenKind::Punct(b'.') => recent = Recent::Dot,
            TokenKind::Punct(b',') => keeps_into_list = true,
            TokenKind::UserVar if self.in_into_list => {
                self.flags |= Flags::ASSIGNS_USER_VAR;
                keeps_into_list = true;
            }
            TokenKind::UserVar => self.pending_var = PendingVar::User,
            TokenKind::SysVar => self.pending_var = PendingVar::System(token.text),
            _ => {}
        }
        if !keeps_into_list {
            self.in_into_list = false;
        }
        self.prev2 = self.prev;
        self.prev = recent;
        if recent == Recent::Word {
            self.prev_word = token.text;
        }
    }

    /// The variable just consumed is the target of an assignment (`SET @x = …`), not a read.
    pub fn mark_assignment_target(&mut self) {
        if let PendingVar::User = std::mem::take(&mut self.pending_var) {
            self.flags |= Flags::ASSIGNS_USER_VAR;
        }
    }

    /// Start the look-back rules afresh, as at the start of a statement.
    pub fn forget_lookback(&mut self) {
        self.prev = Recent::Other;
        self.prev2 = Recent::Other;
    }

    /// Settle what is still pending at the end of the input.
    pub fn finish(&mut self) {
        let pending = std::mem::take(&mut self.pending_var);
        self.resolve_var(pending, false);
    }

    fn resolve_var(&mut self, var: PendingVar<'a>, assigned: bool) {
        self.flags |= match (var, assigned) {
            (PendingVar::None, _) => Flags::empty(),
            (PendingVar::User, true) => Flags::ASSIGNS_USER_VAR,
            (PendingVar::User, false) => Flags::READS_USER_VAR,
            (PendingVar::System(name), _) => sysvar_flags(name),
        };
    }

    /// Apply the word rules and say how the word is to be remembered.
    #[inline]
    fn word(&mut self, text: &[u8]) -> Recent {
        match text.len() {
            2 if eq_keyword(text, b"IN") => Recent::In,
            3 if eq_keyword(text, b"FOR") => {
                if self.prev == Recent::Value
                    && matches!(self.prev2, Recent::Next | Recent::Previous)
                {
                    // NEXT VALUE FOR seq, PREVIOUS VALUE FOR seq
                    self.flags |= Flags::PRIMARY_FUNCTION;
                }
                Recent::For
            }
            4 if eq_keyword(text, b"INTO") => {
                self.saw_into = true;
                self.in_into_list = true;
                Recent::Into
            }
            4 if eq_keyword(text, b"NEXT") => Recent::Next,
            4 if eq_keyword(text, b"LOCK") => Recent::Lock,
            5 if eq_keyword(text, b"VALUE") => Recent::Value,
            5 if eq_keyword(text, b"SHARE") => {
                if self.prev == Recent::For
                    || (self.prev == Recent::In && self.prev2 == Recent::Lock)
                {
                    self.flags |= Flags::LOCKING_READ;
                }
                Recent::Word
            }
            6 if eq_keyword(text, b"UPDATE") => {
                if self.prev == Recent::For {
                    self.flags |= Flags::LOCKING_READ;
                }
                Recent::Word
            }
            7 if self.prev == Recent::Dot && is_sequence_pseudo_column(text) => {
                // seq.NEXTVAL, seq.CURRVAL
                self.flags |= Flags::PRIMARY_FUNCTION;
                Recent::Word
            }
            8 if eq_keyword(text, b"PREVIOUS") => Recent::Previous,
            19 if eq_keyword(text, b"SQL_CALC_FOUND_ROWS") => {
                self.flags |= Flags::CALC_FOUND_ROWS;
                Recent::Word
            }
            _ => Recent::Word,
        }
    }
}
