//! Text whose meaning depends on `NO_BACKSLASH_ESCAPES` and `ANSI_QUOTES`: classified under the
//! session's modes, and never sent to a replica when another mode would read a write into it.

use rwproxy_sql::{classify_session, classify_with, ClassifyOptions, Flags, StatementKind};

const DEFAULT: ClassifyOptions = ClassifyOptions {
    no_backslash_escapes: false,
    ansi_quotes: false,
};
const NBE: ClassifyOptions = ClassifyOptions {
    no_backslash_escapes: true,
    ansi_quotes: false,
};
const ANSI: ClassifyOptions = ClassifyOptions {
    no_backslash_escapes: false,
    ansi_quotes: true,
};

/// A read in the default mode, two statements (one a write) with NO_BACKSLASH_ESCAPES.
const HIDDEN_INSERT: &[u8] = br"SELECT 'a\'; INSERT INTO t VALUES ('x') -- '";

#[test]
fn no_backslash_escapes_exposes_the_hidden_statement() {
    let default = classify_with(HIDDEN_INSERT, DEFAULT);
    assert_eq!(default.kind, StatementKind::Read);
    assert!(default.is_read_only());
    let nbe = classify_with(HIDDEN_INSERT, NBE);
    assert!(nbe.flags.contains(Flags::MULTI_STATEMENT), "{nbe:?}");
    assert!(!nbe.is_read_only());
    assert!(!classify_session(HIDDEN_INSERT, NBE).is_read_only());
}

#[test]
fn a_wrong_belief_about_the_mode_still_keeps_the_write_on_the_primary() {
    // The session is believed to run with the default mode but may not: the text reads as a
    // write under another mode, so it must not go to a replica.
    let c = classify_session(HIDDEN_INSERT, DEFAULT);
    assert!(c.flags.contains(Flags::AMBIGUOUS_QUOTING), "{c:?}");
    assert!(!c.is_read_only());
}

#[test]
fn ordinary_escaped_quotes_stay_reads() {
    for sql in [
        br"SELECT * FROM users WHERE name = 'O\'Brien'".as_slice(),
        br"SELECT 'a\\' FROM t",
        br"SELECT * FROM t WHERE a = 'O\'Brien' OR b = 'D\'Arcy'",
        br"SELECT 'C:\\path\\file', 'tab\there'",
        b"SELECT 'no backslash at all; INSERT' FROM t",
    ] {
        let c = classify_session(sql, DEFAULT);
        assert!(c.is_read_only(), "{}: {c:?}", String::from_utf8_lossy(sql));
    }
    // The same under NO_BACKSLASH_ESCAPES, where a backslash is an ordinary character.
    let c = classify_session(br"SELECT 'C:\dir\' FROM t", NBE);
    assert!(c.is_read_only(), "{c:?}");
}

#[test]
fn ansi_quotes_make_double_quotes_identifiers() {
    // With ANSI_QUOTES `"a\"` is the identifier a\ and the INSERT is a second statement.
    let sql = br#"SELECT "a\"; INSERT INTO t VALUES (1) -- ""#;
    let ansi = classify_with(sql, ANSI);
    assert!(ansi.flags.contains(Flags::MULTI_STATEMENT), "{ansi:?}");
    assert!(!classify_session(sql, ANSI).is_read_only());
    // Believed default: the escaped double quote is ambiguous already.
    assert!(!classify_session(sql, DEFAULT).is_read_only());
    // A plain quoted identifier under ANSI_QUOTES is still a read.
    let c = classify_session(br#"SELECT "col" FROM "t" WHERE "x" = 'it''s'"#, ANSI);
    assert_eq!(c.kind, StatementKind::Read);
    assert!(c.is_read_only(), "{c:?}");
    // Doubled quotes inside an ANSI identifier do not end it.
    let c = classify_with(br#"SELECT "a""; DELETE FROM t" FROM t"#, ANSI);
    assert!(!c.flags.contains(Flags::MULTI_STATEMENT), "{c:?}");
}

#[test]
fn unterminated_alternatives_are_ignored_and_nothing_panics() {
    // Every prefix of tricky text, under every mode: no panic, and a read-only verdict only
    // when no complete alternative reading is a write.
    let text = br#"SELECT 'a\'b', "c\"d", `e\`, 'f''g' ; DELETE FROM t -- '"#;
    for end in 0..=text.len() {
        for options in [DEFAULT, NBE, ANSI] {
            let _ = classify_session(&text[..end], options);
        }
    }
}
