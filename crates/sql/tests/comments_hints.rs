//! Comments of every kind, executable comments, and routing hints.

#[macro_use]
mod common;

use common::{PRIMARY, REPLICA};
use rwproxy_sql::{classify, ConsistencyHint, RouteHint, StatementKind::*};

#[test]
fn route_hints() {
    let cases: [(&str, Option<RouteHint>); 16] = [
        ("/* rwproxy:primary */ SELECT 1", Some(RouteHint::Primary)),
        (
            "SELECT /* rwproxy:replica */ * FROM t",
            Some(RouteHint::Replica),
        ),
        (
            "SELECT * FROM t -- rwproxy:primary",
            Some(RouteHint::Primary),
        ),
        (
            "SELECT * FROM t # rwproxy:replica\n",
            Some(RouteHint::Replica),
        ),
        ("/*rwproxy:primary*/SELECT 1", Some(RouteHint::Primary)),
        (
            "/*   RWPROXY:PRIMARY   */ SELECT 1",
            Some(RouteHint::Primary),
        ),
        (
            "/*\n rwproxy:replica\n*/ SELECT 1",
            Some(RouteHint::Replica),
        ),
        (
            "/* rwproxy:replica */ /* rwproxy:primary */ SELECT 1",
            Some(RouteHint::Primary),
        ),
        ("SELECT 1; /* rwproxy:primary */", Some(RouteHint::Primary)),
        ("/* rwproxy:primary */", Some(RouteHint::Primary)),
        ("SELECT 'rwproxy:primary'", None),
        ("SELECT '/* rwproxy:primary */'", None),
        ("SELECT \"/* rwproxy:primary */\"", None),
        ("SELECT `/* rwproxy:primary */` FROM t", None),
        ("/* rwproxy:primary please */ SELECT 1", None),
        ("/*+ rwproxy:primary */ SELECT 1", None),
    ];
    for (sql, hint) in cases {
        assert_eq!(classify(sql.as_bytes()).hint, hint, "{sql}");
    }
}

#[test]
fn consistency_hints() {
    let cases: [(&str, Option<ConsistencyHint>); 7] = [
        (
            "/* rwproxy:consistency=session */ SELECT 1",
            Some(ConsistencyHint::Session),
        ),
        (
            "/* rwproxy:consistency=global */ SELECT 1",
            Some(ConsistencyHint::Global),
        ),
        (
            "SELECT 1 -- rwproxy:consistency=eventual",
            Some(ConsistencyHint::Eventual),
        ),
        (
            "/* RWPROXY:CONSISTENCY=SESSION */ SELECT 1",
            Some(ConsistencyHint::Session),
        ),
        ("/* rwproxy:consistency=strong */ SELECT 1", None),
        ("/* rwproxy:consistency = session */ SELECT 1", None),
        ("SELECT 'rwproxy:consistency=global'", None),
    ];
    for (sql, hint) in cases {
        assert_eq!(classify(sql.as_bytes()).consistency_hint, hint, "{sql}");
    }
    let both = classify(b"/* rwproxy:consistency=global */ /* rwproxy:replica */ SELECT 1");
    assert_eq!(both.hint, Some(RouteHint::Replica));
    assert_eq!(both.consistency_hint, Some(ConsistencyHint::Global));
}

#[test]
fn hints_do_not_change_kind_or_flags() {
    expect_all! {
        "/* rwproxy:primary */ SELECT 1" => Read, [], REPLICA;
        "/* rwproxy:replica */ UPDATE t SET a = 1" => Write, [], PRIMARY;
        "/* rwproxy:replica */ SELECT * FROM t FOR UPDATE" => Read, [LOCKING_READ], PRIMARY;
        "/* rwproxy:primary */ BEGIN" => Begin { read_only: false }, [], PRIMARY;
        "/* rwproxy:primary */" => Unknown, [], PRIMARY;
    }
}

#[test]
fn ordinary_comments_are_skipped() {
    expect_all! {
        "-- comment\nSELECT 1" => Read, [], REPLICA;
        "# comment\nSELECT 1" => Read, [], REPLICA;
        "/* multi\nline */ SELECT 1" => Read, [], REPLICA;
        "SELECT 1 /* trailing */" => Read, [], REPLICA;
        "/**/SELECT 1" => Read, [], REPLICA;
        "/***/SELECT 1" => Read, [], REPLICA;
        "/* a */ /* b */ INSERT INTO t VALUES (1)" => Write, [], PRIMARY;
        "--\nSELECT 1" => Read, [], REPLICA;
        "--\tcomment\nDELETE FROM t" => Write, [], PRIMARY;
        "SELECT 1 --" => Read, [], REPLICA;
        "SELECT 1--1" => Read, [], REPLICA;
        "SELECT 2 - -1" => Read, [], REPLICA;
        "/* comment with 'quote */ SELECT 1" => Read, [], REPLICA;
        "/* comment with \"quote and `tick */ SELECT 1" => Read, [], REPLICA;
        "SELECT 1 /* nested /* not really */" => Read, [], REPLICA;
        "SELECT '/*' , 1 -- '*/" => Read, [], REPLICA;
        "SELECT 1 /*application:Blog,controller:posts,action:index*/" => Read, [], REPLICA;
        "SELECT * FROM t /*controller='index',framework='django%3A4.2'*/" => Read, [], REPLICA;
        "/*+ MAX_EXECUTION_TIME(1000) */ SELECT 1" => Read, [], REPLICA;
        "SELECT /*+ BKA(t1) NO_BKA(t2) */ * FROM t1 JOIN t2" => Read, [], REPLICA;
        "\r\n-- header\r\nSELECT 1\r\n" => Read, [], REPLICA;
        "/* DELETE FROM t */ SELECT 1" => Read, [], REPLICA;
        "-- DROP TABLE t\nSELECT 1" => Read, [], REPLICA;
        "/* SELECT */ DELETE FROM t" => Write, [], PRIMARY;
    }
}

#[test]
fn semicolons_in_comments_are_not_statement_separators() {
    expect_all! {
        "SELECT 1 # comment ; DELETE FROM t" => Read, [], REPLICA;
        "SELECT 1 -- ; DELETE FROM t\n" => Read, [], REPLICA;
        "SELECT 1 /* ; DELETE FROM t */" => Read, [], REPLICA;
        "SELECT 1; -- trailing comment" => Read, [], REPLICA;
        "SELECT 1; /* trailing */" => Read, [], REPLICA;
        "SELECT 1; # x\n" => Read, [], REPLICA;
        "SELECT 1;\n\n" => Read, [], REPLICA;
        "SELECT 1; -- x\n DELETE FROM t" => Read, [MULTI_STATEMENT], PRIMARY;
    }
}

#[test]
fn executable_comments_are_sql() {
    expect_all! {
        "/*!40101 SELECT 1 */" => Read, [], REPLICA;
        "/*!SELECT 1*/" => Read, [], REPLICA;
        "/*M!100100 SELECT 1 */" => Read, [], REPLICA;
        "/*M! SELECT 1 */" => Read, [], REPLICA;
        "/*!50000 INSERT INTO t VALUES (1) */" => Write, [], PRIMARY;
        "SELECT 1 /*!, LAST_INSERT_ID() */" => Read, [PRIMARY_FUNCTION], PRIMARY;
        "SELECT * FROM t /*!50000 FOR UPDATE */" => Read, [LOCKING_READ], PRIMARY;
        "SELECT * FROM t /*M! FOR UPDATE */" => Read, [LOCKING_READ], PRIMARY;
        // The version is not checked: a server might run it, so we act as if it will.
        "SELECT * FROM t /*!99999 FOR UPDATE */" => Read, [LOCKING_READ], PRIMARY;
        "/*!40101 SET NAMES utf8 */" => SetNames, [], PRIMARY;
        "SELECT 1 /*!50000 /* inner */ , 2 */" => Read, [], REPLICA;
        "SELECT /*!40001 SQL_NO_CACHE */ * FROM t" => Read, [], REPLICA;
        "SELECT 1 /*!; DELETE FROM t */" => Read, [MULTI_STATEMENT], PRIMARY;
        "/*!*/ SELECT 1" => Read, [], REPLICA;
        "/*m!100100 DELETE FROM t */ SELECT 1" => Read, [], REPLICA;
    }
}

#[test]
fn unterminated_comments() {
    expect_all! {
        "/* unterminated SELECT 1" => Unknown, [UNTERMINATED], PRIMARY;
        "SELECT 1 /* unterminated" => Unknown, [UNTERMINATED], PRIMARY;
        "SELECT 1 /*! , 2" => Unknown, [UNTERMINATED], PRIMARY;
        "/*!40101 SET NAMES utf8" => Unknown, [UNTERMINATED], PRIMARY;
        "SELECT 1 /*/" => Unknown, [UNTERMINATED], PRIMARY;
        "SELECT 1 -- unterminated line comments are fine" => Read, [], REPLICA;
    }
}
