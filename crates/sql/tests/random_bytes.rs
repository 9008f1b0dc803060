//! Property tests on generated input: the classifier never panics, its answers are internally
//! consistent, and a write appended to a read-only statement is never missed. The same for the
//! other readers of statement text (`connection_id`, `kill`, `process_list`,
//! `temporary_tables`): no panic, and what follows a statement's end does not change their answer.

use rwproxy_sql::{
    classify, classify_with, connection_id, kill, process_list, temporary_tables, Classification,
    ClassifyOptions, Flags, StatementKind,
};

/// xorshift64*: small, deterministic, good enough to spread bytes around.
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        self.0.wrapping_mul(0x2545_F491_4F6C_DD1D)
    }

    fn below(&mut self, n: usize) -> usize {
        (self.next() % n as u64) as usize
    }
}

/// Pieces that steer generated text into the interesting corners of the tokenizer and rules.
const PIECES: &[&[u8]] = &[
    b"SELECT ",
    b"select ",
    b"INSERT ",
    b"UPDATE ",
    b"DELETE ",
    b"WITH ",
    b"SET ",
    b"SHOW ",
    b"EXPLAIN ",
    b"ANALYZE ",
    b"BEGIN",
    b"START TRANSACTION ",
    b"COMMIT",
    b"ROLLBACK TO ",
    b"SAVEPOINT ",
    b"USE ",
    b"LOCK ",
    b"TABLES ",
    b"FOR ",
    b"UPDATE",
    b"SHARE",
    b"LOCK IN SHARE MODE",
    b"INTO ",
    b"@x",
    b"@@autocommit",
    b"@@session.",
    b"autocommit",
    b"=",
    b":=",
    b"0",
    b"1",
    b"ON",
    b"GLOBAL ",
    b"SESSION ",
    b"NAMES ",
    b"STATEMENT ",
    b"AS ",
    b"RECURSIVE ",
    b"(",
    b")",
    b",",
    b";",
    b"'",
    b"\"",
    b"`",
    b"\\",
    b"/*",
    b"*/",
    b"/*!",
    b"/*M!",
    b"/*!50100",
    b"--",
    b"-- ",
    b"#",
    b"\n",
    b" ",
    b"\t",
    b"\0",
    b"\xff",
    b"\xc3",
    b"LAST_INSERT_ID",
    b"GET_LOCK",
    b"NEXT VALUE FOR ",
    b"rwproxy:primary",
    b"rwproxy:consistency=session",
    b"t",
    b"x",
    b".",
    b"nextval",
    b"*",
];

fn random_bytes(rng: &mut Rng, max_len: usize) -> Vec<u8> {
    let len = rng.below(max_len + 1);
    (0..len).map(|_| rng.next() as u8).collect()
}

/// More pieces, for the statements a session reads beyond classifying them (drawn together
/// with [`PIECES`], which has the quotes and comment markers).
const SESSION_PIECES: &[&[u8]] = &[
    b"KILL ",
    b"kill",
    b"HARD ",
    b"SOFT ",
    b"QUERY ",
    b"CONNECTION ",
    b"ID ",
    b"USER ",
    b"DROP ",
    b"TEMPORARY ",
    b"TABLE ",
    b"tables ",
    b"SEQUENCE ",
    b"IF ",
    b"EXISTS ",
    b"SET STATEMENT x=1 FOR ",
    b"CONNECTION_ID",
    b"connection_id",
    b"PROCESSLIST",
    b"information_schema",
    b"()",
    b"+",
    b"-",
    b"5",
    b"42",
    b"4294967296",
    b"/*M!100100 ",
    b"@",
];

/// Up to `max_pieces` pieces drawn from the lists `pieces` (as one list), with a random byte
/// now and then.
fn random_soup(rng: &mut Rng, pieces: &[&[&[u8]]], max_pieces: usize) -> Vec<u8> {
    let count = rng.below(max_pieces + 1);
    let total: usize = pieces.iter().map(|list| list.len()).sum();
    let mut out = Vec::new();
    for _ in 0..count {
        if rng.below(8) == 0 {
            out.push(rng.next() as u8);
        } else {
            let mut index = rng.below(total);
            for list in pieces {
                if let Some(piece) = list.get(index) {
                    out.extend_from_slice(piece);
                    break;
                }
                index -= list.len();
            }
        }
    }
    out
}

const NOT_FOR_REPLICA: [Flags; 9] = [
    Flags::LOCKING_READ,
    Flags::PRIMARY_FUNCTION,
    Flags::SELECT_INTO,
    Flags::ASSIGNS_USER_VAR,
    Flags::MULTI_STATEMENT,
    Flags::CALC_FOUND_ROWS,
    Flags::SERVER_STATE,
    Flags::UNTERMINATED,
    Flags::AMBIGUOUS_QUOTING,
];

fn check_consistency(input: &[u8], c: &Classification<'_>) {
    let shown = String::from_utf8_lossy(input);
    if c.is_read_only() {
        assert!(
            matches!(c.kind, StatementKind::Read | StatementKind::Show),
            "read-only but {:?}: {shown:?}",
            c.kind
        );
        for flag in NOT_FOR_REPLICA {
            assert!(
                !c.flags.contains(flag),
                "read-only with {flag:?}: {shown:?}"
            );
        }
    }
    if c.flags.contains(Flags::UNTERMINATED) {
        assert_eq!(c.kind, StatementKind::Unknown, "{shown:?}");
    }
    if c.schema.is_some() {
        assert_eq!(c.kind, StatementKind::Use, "{shown:?}");
    }
    if let Some(schema) = c.schema {
        // The schema is borrowed from the input.
        let start = schema.as_ptr() as usize;
        let base = input.as_ptr() as usize;
        assert!(start >= base && start + schema.len() <= base + input.len());
    }
}

/// Appending a write after a newline and `;` must always cost read-only status: a comment or
/// string left open would have made the statement unterminated already.
fn check_appended_write_is_seen(input: &[u8], options: ClassifyOptions) {
    if !classify_with(input, options).is_read_only() {
        return;
    }
    let mut extended = input.to_vec();
    extended.extend_from_slice(b"\n;DELETE FROM t");
    let c = classify_with(&extended, options);
    assert!(
        !c.is_read_only(),
        "missed an appended write after {:?}: {:?}",
        String::from_utf8_lossy(input),
        c
    );
}

#[test]
fn random_bytes_never_panic() {
    let mut rng = Rng(0x9E37_79B9_7F4A_7C15);
    for _ in 0..100_000 {
        let input = random_bytes(&mut rng, 96);
        let c = classify(&input);
        check_consistency(&input, &c);
        assert_eq!(c, classify(&input), "not deterministic");
        check_appended_write_is_seen(&input, ClassifyOptions::default());
    }
}

#[test]
fn random_sql_soup_never_panics() {
    let mut rng = Rng(0xD1B5_4A32_D192_ED03);
    let strict = ClassifyOptions {
        no_backslash_escapes: true,
        ..ClassifyOptions::default()
    };
    for _ in 0..100_000 {
        let input = random_soup(&mut rng, &[PIECES], 24);
        for options in [ClassifyOptions::default(), strict] {
            let c = classify_with(&input, options);
            check_consistency(&input, &c);
            check_appended_write_is_seen(&input, options);
        }
    }
}

#[test]
fn every_prefix_of_real_statements_is_safe() {
    let statements: [&[u8]; 6] = [
        b"/* rwproxy:replica */ SELECT `a`, 'b''c', \"d\\\"e\" FROM t WHERE x = @v -- end\n",
        b"/*!40101 SET @OLD_SQL_MODE=@@SQL_MODE, SQL_MODE='NO_AUTO_VALUE_ON_ZERO' */;",
        b"WITH RECURSIVE r (n) AS (SELECT 1 UNION ALL SELECT n + 1 FROM r) SELECT * FROM r FOR UPDATE",
        b"START TRANSACTION WITH CONSISTENT SNAPSHOT, READ ONLY; SELECT 1 # x",
        b"SET STATEMENT max_statement_time=1 FOR SELECT NEXT VALUE FOR s INTO @x",
        b"USE `we``ird`; EXPLAIN ANALYZE FORMAT=JSON DELETE FROM t /*M!100100 LIMIT 1 */",
    ];
    for sql in statements {
        for end in 0..=sql.len() {
            let prefix = &sql[..end];
            let c = classify(prefix);
            check_consistency(prefix, &c);
            check_appended_write_is_seen(prefix, ClassifyOptions::default());
        }
    }
}

/// Every combination of the quoting modes.
const ALL_MODES: [ClassifyOptions; 4] = [
    ClassifyOptions {
        no_backslash_escapes: false,
        ansi_quotes: false,
    },
    ClassifyOptions {
        no_backslash_escapes: true,
        ansi_quotes: false,
    },
    ClassifyOptions {
        no_backslash_escapes: false,
        ansi_quotes: true,
    },
    ClassifyOptions {
        no_backslash_escapes: true,
        ansi_quotes: true,
    },
];

/// Text after a newline and a `;` belongs to another statement (no quote in it can close what
/// `input` left open).
const NEXT_STATEMENT: &[u8] = b"\n;DROP TEMPORARY TABLE x, y; KILL 9; SELECT CONNECTION_ID()";

/// The other readers of statement text on `input`: no panic, answers that agree with each
/// other and with the classifier, and none changed by a statement appended after `;`.
fn check_session_text(input: &[u8], options: ClassifyOptions) {
    let shown = String::from_utf8_lossy(input);
    let mut extended = input.to_vec();
    extended.extend_from_slice(NEXT_STATEMENT);

    let substituted = connection_id::substitute(input, 42, options);
    if let Some(s) = &substituted {
        assert_ne!(s.sql, input, "{shown:?}");
        // The whole statement as sent maps back to the statement as written.
        assert_eq!(
            s.original_name(&s.sql, &mut 0).as_deref(),
            Some(input),
            "{shown:?}"
        );
        let mut cursor = 0;
        for name in [&b"42"[..], b"4", b"2", b" 42", b"42)", b"?", b""] {
            let _ = s.original_name(name, &mut cursor);
        }
    }
    // In text that ends complete, the appended statement's own call is replaced too, and
    // what `input` had stays as it was.
    let complete = !classify_with(input, options)
        .flags
        .contains(Flags::UNTERMINATED);
    if complete {
        let appended = connection_id::substitute(&extended, 42, options)
            .unwrap_or_else(|| panic!("the appended call is missed after {shown:?}"));
        let mut expected = substituted.map_or_else(|| input.to_vec(), |s| s.sql);
        expected.extend_from_slice(b"\n;DROP TEMPORARY TABLE x, y; KILL 9; SELECT 42");
        assert_eq!(
            String::from_utf8_lossy(&appended.sql),
            String::from_utf8_lossy(&expected),
            "{shown:?}"
        );
    }

    let killed = kill::parse(input);
    if killed.is_some() {
        let kind = classify_with(input, options).kind;
        assert!(
            matches!(kind, StatementKind::Kill | StatementKind::Unknown),
            "{kind:?} for {shown:?}"
        );
    }
    assert_eq!(kill::parse(&extended), killed, "{shown:?}");

    let named = temporary_tables::named_by_drop(input, options);
    let commas = input.iter().filter(|&&b| b == b',').count();
    assert!(named as usize <= commas + 1, "{named} names in {shown:?}");
    assert_eq!(
        temporary_tables::named_by_drop(&extended, options),
        named,
        "{shown:?}"
    );

    if complete && process_list::named(input, options) {
        assert!(process_list::named(&extended, options), "{shown:?}");
    }
}

#[test]
fn session_text_readers_on_random_bytes() {
    let mut rng = Rng(0x2545_F491_4F6C_DD1D);
    for _ in 0..20_000 {
        let input = random_bytes(&mut rng, 96);
        for options in ALL_MODES {
            check_session_text(&input, options);
        }
    }
}

#[test]
fn session_text_readers_on_random_sql_soup() {
    let mut rng = Rng(0x94D0_49BB_1331_11EB);
    for _ in 0..50_000 {
        let input = random_soup(&mut rng, &[SESSION_PIECES, PIECES], 16);
        for options in ALL_MODES {
            check_session_text(&input, options);
        }
    }
}
