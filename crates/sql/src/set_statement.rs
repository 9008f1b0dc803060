//! `SET`: session and user variables, `autocommit`, character sets, transaction characteristics,
//! global variables, and MariaDB's `SET STATEMENT … FOR <statement>`.

use crate::cursor::Cursor;
use crate::flags::Flags;
use crate::kind::StatementKind;
use crate::statement::statement;
use crate::token::{eq_keyword, is_one_of, TokenKind};

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Scope {
    Session,
    Global,
}

const GLOBAL_SCOPES: &[&[u8]] = &[b"GLOBAL", b"PERSIST", b"PERSIST_ONLY"];
const SESSION_SCOPES: &[&[u8]] = &[b"SESSION", b"LOCAL"];

/// After `SET`.
pub(crate) fn set(cur: &mut Cursor<'_>, depth: u8) -> StatementKind {
    if cur.eat_word(b"STATEMENT") {
        return statement_for(cur, depth);
    }
    if cur.eat_any_word(&[b"PASSWORD", b"RESOURCE"]) {
        return StatementKind::Other;
    }
    if cur.eat_word(b"ROLE") {
        return StatementKind::SetSession;
    }
    if cur.eat_word(b"DEFAULT") {
        // SET DEFAULT ROLE … changes the account, on the primary.
        return if cur.eat_word(b"ROLE") {
            StatementKind::Other
        } else {
            StatementKind::Unknown
        };
    }
    assignments(cur)
}

/// What a list of assignments set, as far as routing cares.
#[derive(Default)]
struct Assigned {
    items: u32,
    names: bool,
    global: bool,
    /// `None`: not assigned; `Some(None)`: assigned something we cannot evaluate.
    autocommit: Option<Option<bool>>,
}

/// `[scope] target = expr [, [scope] target = expr …]`, where a target may also be
/// `NAMES …`, `CHARACTER SET …` or `CHARSET …`. A scope keyword holds for the assignments after
/// it until the next scope keyword, as on the server.
fn assignments(cur: &mut Cursor<'_>) -> StatementKind {
    let mut scope = Scope::Session;
    let mut explicit_session = false;
    let mut seen = Assigned::default();
    loop {
        seen.items += 1;
        if cur.eat_any_word(GLOBAL_SCOPES) {
            scope = Scope::Global;
        } else if cur.eat_any_word(SESSION_SCOPES) {
            scope = Scope::Session;
            explicit_session = true;
        }
        if seen.items == 1 && cur.eat_word(b"TRANSACTION") {
            return transaction(cur, scope, explicit_session);
        }
        if !assignment(cur, scope, &mut seen) {
            return StatementKind::Unknown;
        }
        if cur.at_statement_end() {
            break;
        }
        if !cur.eat_punct(b',') {
            return StatementKind::Unknown;
        }
    }
    verdict(cur, &seen)
}

fn verdict(cur: &mut Cursor<'_>, seen: &Assigned) -> StatementKind {
    if let Some(Some(on)) = seen.autocommit {
        cur.flag(if on {
            Flags::AUTOCOMMIT_ON
        } else {
            Flags::AUTOCOMMIT_OFF
        });
    }
    if seen.global {
        return StatementKind::SetGlobal;
    }
    match seen.autocommit {
        Some(None) => StatementKind::Unknown,
        Some(Some(on)) if seen.items == 1 => StatementKind::SetAutocommit(on),
        None if seen.names && seen.items == 1 => StatementKind::SetNames,
        _ => StatementKind::SetSession,
    }
}

/// One `target = expr` (or `NAMES …`). False if it does not have that shape.
fn assignment(cur: &mut Cursor<'_>, scope: Scope, seen: &mut Assigned) -> bool {
    let Some(target) = cur.next() else {
        return false;
    };
    if target.is_word(b"NAMES")
        || target.is_word(b"CHARSET")
        || (target.is_word(b"CHARACTER") && cur.eat_word(b"SET"))
    {
        seen.names = true;
        cur.skip_expression();
        return true;
    }
    let (item_scope, is_autocommit) = match target.kind {
        TokenKind::Word | TokenKind::QuotedIdent => {
            let mut name = target.text;
            // Structured variables: `keycache1.key_buffer_size`.
            while cur.eat_punct(b'.') {
                match cur.eat_identifier() {
                    Some(part) => name = part,
                    None => return false,
                }
            }
            (scope, eq_keyword(name, b"AUTOCOMMIT"))
        }
        TokenKind::SysVar => {
            cur.scan.mark_assignment_target();
            let (scope, name) = split_sysvar(target.text);
            (scope, eq_keyword(name, b"AUTOCOMMIT"))
        }
        TokenKind::UserVar => {
            cur.scan.mark_assignment_target();
            (Scope::Session, false)
        }
        _ => return false,
    };
    let at_operator = cur
        .peek()
        .is_some_and(|t| t.is_punct(b'=') || t.kind == TokenKind::Assign);
    if !at_operator {
        return false;
    }
    cur.next();
    if item_scope == Scope::Global {
        seen.global = true;
        cur.skip_expression();
    } else if is_autocommit {
        seen.autocommit = Some(autocommit_value(cur));
    } else {
        cur.skip_expression();
    }
    true
}

/// `@@[scope.]name` → the scope it names (session when none) and the bare name.
fn split_sysvar(text: &[u8]) -> (Scope, &[u8]) {
    let Some(dot) = text.iter().position(|&b| b == b'.') else {
        return (Scope::Session, text);
    };
    let (prefix, name) = (&text[..dot], &text[dot + 1..]);
    if is_one_of(prefix, GLOBAL_SCOPES) {
        (Scope::Global, name)
    } else {
        // `session.`, `local.`, or a structured variable such as `keycache1.key_buffer_size`.
        (Scope::Session, name)
    }
}

/// The value assigned to `autocommit`, if it is a single literal we can read.
fn autocommit_value(cur: &mut Cursor<'_>) -> Option<bool> {
    let token = cur.peek()?;
    let value = match token.kind {
        TokenKind::Number | TokenKind::Word | TokenKind::String => {
            let text = token.text;
            if is_one_of(text, &[b"1", b"ON", b"TRUE"]) {
                Some(true)
            } else if is_one_of(text, &[b"0", b"OFF", b"FALSE"]) {
                Some(false)
            } else {
                None
            }
        }
        _ => None,
    };
    if value.is_some() {
        cur.next();
        if cur.at_statement_end() || cur.peek().is_some_and(|t| t.is_punct(b',')) {
            return value;
        }
    }
    cur.skip_expression();
    None
}

/// After `SET [scope] TRANSACTION`: `ISOLATION LEVEL …` and/or `READ ONLY|WRITE`.
fn transaction(cur: &mut Cursor<'_>, scope: Scope, explicit_session: bool) -> StatementKind {
    let mut read_only = false;
    loop {
        if cur.eat_word(b"ISOLATION") {
            if !cur.eat_word(b"LEVEL") || !isolation_level(cur) {
                return StatementKind::Unknown;
            }
        } else if cur.eat_word(b"READ") {
            if cur.eat_word(b"ONLY") {
                read_only = true;
            } else if cur.eat_word(b"WRITE") {
                read_only = false;
            } else {
                return StatementKind::Unknown;
            }
        } else {
            return StatementKind::Unknown;
        }
        if cur.at_statement_end() {
            break;
        }
        if !cur.eat_punct(b',') {
            return StatementKind::Unknown;
        }
    }
    if scope == Scope::Global {
        return StatementKind::SetGlobal;
    }
    if explicit_session {
        cur.flag(Flags::SESSION_SCOPE);
    }
    if read_only {
        cur.flag(Flags::READ_ONLY_TXN);
    }
    StatementKind::SetTransaction
}

/// `READ UNCOMMITTED | READ COMMITTED | REPEATABLE READ | SERIALIZABLE`.
fn isolation_level(cur: &mut Cursor<'_>) -> bool {
    if cur.eat_word(b"READ") {
        cur.eat_any_word(&[b"UNCOMMITTED", b"COMMITTED"])
    } else if cur.eat_word(b"REPEATABLE") {
        cur.eat_word(b"READ")
    } else {
        cur.eat_word(b"SERIALIZABLE")
    }
}

/// MariaDB's `SET STATEMENT var = value [, …] FOR <statement>`: the kind is the inner statement's.
fn statement_for(cur: &mut Cursor<'_>, depth: u8) -> StatementKind {
    let mut parens = 0usize;
    while let Some(token) = cur.peek() {
        if token.is_statement_end() {
            break;
        }
        if parens == 0 && token.is_word(b"FOR") {
            cur.next();
            // This FOR introduces a statement; `FOR UPDATE t …` is not a locking clause.
            cur.scan.forget_lookback();
            return statement(cur, depth + 1).kind;
        }
        match token.kind {
            TokenKind::Punct(b'(') => parens += 1,
            TokenKind::Punct(b')') => parens = parens.saturating_sub(1),
            _ => {}
        }
        cur.next();
    }
    StatementKind::Unknown
}
