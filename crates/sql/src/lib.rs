//! SQL statement classifier for read/write splitting.
//!
//! [`classify`] reads a statement's bytes once, left to right, with a small tokenizer (no parse
//! tree, no allocation, no I/O) and tells the router what kind of statement it is
//! ([`StatementKind`]), what properties tie it to the primary or to the session ([`Flags`]), and
//! which routing hints the application put in comments. Whatever it cannot decide is
//! [`StatementKind::Unknown`], which the router sends to the primary.
//!
//! ```
//! use rwproxy_sql::{classify, Flags, StatementKind};
//!
//! let c = classify(b"SELECT id FROM users WHERE email = 'a@b.c' FOR UPDATE");
//! assert_eq!(c.kind, StatementKind::Read);
//! assert!(c.flags.contains(Flags::LOCKING_READ));
//! assert!(!c.is_read_only());
//! ```
//!
//! The same tokenizer serves a proxy's other questions about statement text, one module each:
//! [`connection_id`] (replace `CONNECTION_ID()` calls; it allocates only when there is one),
//! [`kill`] (the connection a `KILL` names), [`process_list`] (does it read the process list)
//! and [`temporary_tables`] (how many tables a `DROP TEMPORARY TABLE` names).

mod classification;
pub mod connection_id;
mod cursor;
mod ddl;
pub mod digest;
mod flag_scan;
mod flags;
mod hint;
mod introspection;
pub mod kill;
mod kind;
mod lexer;
mod options;
mod primary_only;
pub mod process_list;
mod query;
mod set_statement;
mod statement;
pub mod temporary_tables;
mod token;
mod transaction;

pub use classification::Classification;
pub use digest::{digest, digest_id, Digest, DigestId};
pub use flags::Flags;
pub use hint::{ConsistencyHint, RouteHint};
pub use kind::StatementKind;
pub use options::ClassifyOptions;

use cursor::Cursor;

/// Classify one statement (or one multi-statement packet) given as raw bytes, assuming the
/// default `sql_mode`. Never panics, whatever the bytes.
pub fn classify(sql: &[u8]) -> Classification<'_> {
    classify_with(sql, ClassifyOptions::default())
}

/// For a proxy session: classifies under the modes the session is believed to run with
/// (`options`), and does not let that belief send a write to a replica. When the verdict is
/// read-only and the text contains a backslash — whose meaning depends on
/// `NO_BACKSLASH_ESCAPES` and `ANSI_QUOTES` — the text is classified again under the other
/// modes; if one of them reads it as complete text that is not read-only (typically a second
/// statement hidden in what the believed mode takes for a string), the result carries
/// [`Flags::AMBIGUOUS_QUOTING`] and goes to the primary. Readings in which the text is
/// unterminated are ignored (the server would reject the text under that mode). Text without
/// a backslash is classified once.
pub fn classify_session(sql: &[u8], options: ClassifyOptions) -> Classification<'_> {
    let mut class = classify_with(sql, options);
    if !class.is_read_only() || !sql.contains(&b'\\') {
        return class;
    }
    let alternatives =
        [(true, false), (false, true), (true, true)].map(|(flip_nbe, flip_ansi)| ClassifyOptions {
            no_backslash_escapes: options.no_backslash_escapes ^ flip_nbe,
            ansi_quotes: options.ansi_quotes ^ flip_ansi,
        });
    for other in alternatives {
        let alt = classify_with(sql, other);
        if !alt.flags.contains(Flags::UNTERMINATED) && !alt.is_read_only() {
            class.flags |= Flags::AMBIGUOUS_QUOTING;
            break;
        }
    }
    class
}

/// Like [`classify`], for a session whose settings change how text is tokenized.
pub fn classify_with(sql: &[u8], options: ClassifyOptions) -> Classification<'_> {
    let mut cur = Cursor::new(sql, options);
    let head = statement::statement(&mut cur, 0);
    cur.drain();

    let mut kind = head.kind;
    let mut flags = cur.scan.flags;
    if cur.scan.saw_into && kind == StatementKind::Read {
        flags |= Flags::SELECT_INTO;
    }
    if cur.lexer.ambiguous_quoting {
        flags |= Flags::AMBIGUOUS_QUOTING;
    }
    if cur.lexer.unterminated {
        // The server rejects such text; what we made of it does not matter.
        flags |= Flags::UNTERMINATED;
        kind = StatementKind::Unknown;
    }
    let schema = match kind {
        StatementKind::Use => head.schema,
        _ => None,
    };
    Classification {
        kind,
        flags,
        hint: cur.lexer.hints.route,
        consistency_hint: cur.lexer.hints.consistency,
        schema,
    }
}
