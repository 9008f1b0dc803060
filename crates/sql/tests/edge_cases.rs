//! Nasty input: keywords hidden in literals, broken text, odd bytes, huge statements, query
//! shapes that do not start with SELECT.

#[macro_use]
mod common;

use common::{kind_and_flags, PRIMARY, REPLICA};
use rwproxy_sql::{
    classify, classify_with, ClassifyOptions, Flags, StatementKind, StatementKind::*,
};

#[test]
fn empty_and_garbage() {
    expect_all! {
        "" => Unknown, [], PRIMARY;
        "   " => Unknown, [], PRIMARY;
        "\n\t\r" => Unknown, [], PRIMARY;
        ";" => Unknown, [], PRIMARY;
        ";;" => Unknown, [MULTI_STATEMENT], PRIMARY;
        "-- only a comment" => Unknown, [], PRIMARY;
        "FOO BAR" => Unknown, [], PRIMARY;
        "123" => Unknown, [], PRIMARY;
        "'SELECT 1'" => Unknown, [], PRIMARY;
        "`SELECT` 1" => Unknown, [], PRIMARY;
        "SELECTED 1" => Unknown, [], PRIMARY;
        "SELECT_1" => Unknown, [], PRIMARY;
        "INSERTX INTO t" => Unknown, [], PRIMARY;
        "@x" => Unknown, [READS_USER_VAR], PRIMARY;
        "EXPLAIN" => Unknown, [], PRIMARY;
        "SHOW" => Unknown, [], PRIMARY;
        "SHOW;" => Unknown, [], PRIMARY;
        "ANALYZE" => Unknown, [], PRIMARY;
        "WITH" => Unknown, [], PRIMARY;
    }
}

#[test]
fn simple_reads() {
    expect_all! {
        "SELECT" => Read, [], REPLICA;
        "select 1" => Read, [], REPLICA;
        "SeLeCt 1" => Read, [], REPLICA;
        "  \n SELECT 1" => Read, [], REPLICA;
        "select*from t" => Read, [], REPLICA;
        "SELECT(1)" => Read, [], REPLICA;
        "SELECT ?" => Read, [], REPLICA;
        "SELECT 1 FROM DUAL" => Read, [], REPLICA;
        "SELECT 'a' 'b'" => Read, [], REPLICA;
        "SELECT x'DEADBEEF', b'0101', N'nat', _utf8mb4'x' COLLATE utf8mb4_bin" => Read, [], REPLICA;
        "SELECT 1e10, .5, 0x1F, 1.5e-3" => Read, [], REPLICA;
        "SELECT * FROM `ユーザー` WHERE 名前 = 'テスト'" => Read, [], REPLICA;
        "SELECT @" => Read, [], REPLICA;
        "SELECT @@" => Read, [SYSVAR_READ], REPLICA;
        "SELECT 1 UNION SELECT 2" => Read, [], REPLICA;
        "SELECT 1 UNION ALL SELECT 2 ORDER BY 1" => Read, [], REPLICA;
        "SELECT * FROM t1 INTERSECT SELECT * FROM t2" => Read, [], REPLICA;
        "SELECT * FROM t1 EXCEPT SELECT * FROM t2" => Read, [], REPLICA;
        "SELECT HIGH_PRIORITY STRAIGHT_JOIN SQL_NO_CACHE * FROM t" => Read, [], REPLICA;
        "SELECT * FROM t WHERE a = '\\\\'" => Read, [], REPLICA;
        "SELECT JSON_EXTRACT(doc, '$.a') FROM t" => Read, [], REPLICA;
        "SELECT a FROM t WHERE b REGEXP '^[a-z]+;$'" => Read, [], REPLICA;
    }
}

#[test]
fn parenthesized_and_with_queries() {
    expect_all! {
        "(SELECT 1)" => Read, [], REPLICA;
        "((SELECT 1))" => Read, [], REPLICA;
        "(SELECT a FROM t) UNION (SELECT b FROM u)" => Read, [], REPLICA;
        "(SELECT a FROM t ORDER BY a LIMIT 1) UNION ALL (SELECT b FROM u) ORDER BY 1" => Read, [], REPLICA;
        "(SELECT a FROM t FOR UPDATE) UNION (SELECT 1)" => Read, [LOCKING_READ], PRIMARY;
        "( WITH c AS (SELECT 1) SELECT * FROM c )" => Read, [], REPLICA;
        "(VALUES (1))" => Read, [], REPLICA;
        "(INSERT INTO t VALUES (1))" => Unknown, [], PRIMARY;
        "(" => Unknown, [], PRIMARY;
        "()" => Unknown, [], PRIMARY;
        "WITH cte AS (SELECT 1) SELECT * FROM cte" => Read, [], REPLICA;
        "with cte as (select 1) select * from cte" => Read, [], REPLICA;
        "WITH RECURSIVE r (n) AS (SELECT 1 UNION ALL SELECT n + 1 FROM r WHERE n < 10) SELECT * FROM r" => Read, [], REPLICA;
        "WITH a AS (SELECT 1), b AS (SELECT 2) SELECT * FROM a, b" => Read, [], REPLICA;
        "WITH `c` AS (SELECT 'a)') SELECT * FROM c" => Read, [], REPLICA;
        "WITH c AS (SELECT 1) (SELECT * FROM c)" => Read, [], REPLICA;
        "WITH c AS (SELECT 1) TABLE c" => Read, [], REPLICA;
        "WITH c AS (SELECT id FROM t) UPDATE t JOIN c USING (id) SET t.x = 1" => Write, [], PRIMARY;
        "WITH c AS (SELECT id FROM t) DELETE t FROM t JOIN c USING (id)" => Write, [], PRIMARY;
        "WITH c AS (SELECT 1) INSERT INTO t SELECT * FROM c" => Write, [], PRIMARY;
        "WITH c AS (SELECT 1 FOR UPDATE) SELECT * FROM c" => Read, [LOCKING_READ], PRIMARY;
        "WITH c AS (SELECT LAST_INSERT_ID()) SELECT * FROM c" => Read, [PRIMARY_FUNCTION], PRIMARY;
        "WITH RECURSIVE t AS (SELECT 1 AS a UNION SELECT a + 1 FROM t WHERE a < 3) CYCLE a RESTRICT SELECT * FROM t"
            => Read, [], REPLICA;
        "WITH c AS (SELECT 1" => Unknown, [], PRIMARY;
        "WITH c (SELECT 1) SELECT 1" => Unknown, [], PRIMARY;
        "WITH c AS SELECT 1" => Unknown, [], PRIMARY;
        "WITH c AS (SELECT 1) DROP TABLE t" => Unknown, [], PRIMARY;
        "WITH c AS (SELECT 1)" => Unknown, [], PRIMARY;
        "WITH 'c' AS (SELECT 1) SELECT 1" => Unknown, [], PRIMARY;
    }
}

#[test]
fn table_value_and_handler_statements() {
    expect_all! {
        "VALUES (1)" => Read, [], REPLICA;
        "VALUES (1), (2)" => Read, [], REPLICA;
        "VALUES ROW(1, 2), ROW(3, 4)" => Read, [], REPLICA;
        "TABLE t" => Read, [], REPLICA;
        "TABLE t ORDER BY a LIMIT 1" => Read, [], REPLICA;
        "HANDLER t OPEN" => Other, [], PRIMARY;
        "HANDLER t READ FIRST" => Other, [], PRIMARY;
        "HANDLER t READ `PRIMARY` = (1)" => Other, [], PRIMARY;
        "HANDLER t CLOSE" => Other, [], PRIMARY;
    }
}

#[test]
fn several_statements() {
    expect_all! {
        "SELECT 1; SELECT 2" => Read, [MULTI_STATEMENT], PRIMARY;
        "SELECT * FROM t; DELETE FROM t" => Read, [MULTI_STATEMENT], PRIMARY;
        "SELECT 1;DROP TABLE t" => Read, [MULTI_STATEMENT], PRIMARY;
        "SELECT 1;;" => Read, [MULTI_STATEMENT], PRIMARY;
        "SELECT 'a;b'" => Read, [], REPLICA;
        "SELECT `a;b` FROM t" => Read, [], REPLICA;
        "SELECT \"a;b\"" => Read, [], REPLICA;
        "SELECT 1;" => Read, [], REPLICA;
        "SELECT 1 ;  " => Read, [], REPLICA;
        "INSERT INTO t VALUES (1); SELECT LAST_INSERT_ID()" => Write, [MULTI_STATEMENT | PRIMARY_FUNCTION], PRIMARY;
        "SHOW TABLES; SHOW DATABASES" => Show, [MULTI_STATEMENT], PRIMARY;
    }
}

#[test]
fn keywords_inside_literals() {
    expect_all! {
        "SELECT 'DELETE FROM t'" => Read, [], REPLICA;
        "SELECT \"INSERT\"" => Read, [], REPLICA;
        "SELECT 'it''s FOR UPDATE'" => Read, [], REPLICA;
        "SELECT 'a\\'; DELETE FROM t; -- '" => Read, [], REPLICA;
        "SELECT \"a\"\"; DELETE FROM t; -- \"" => Read, [], REPLICA;
        "SELECT `a``; DELETE FROM t; -- `" => Read, [], REPLICA;
        "SELECT * FROM t WHERE name = 'O\\'Reilly; DROP TABLE t'" => Read, [], REPLICA;
        "SELECT 'LAST_INSERT_ID()', 'GET_LOCK(1,2)', 'NEXT VALUE FOR s'" => Read, [], REPLICA;
        "SELECT 'SELECT @x := 1 INTO @y'" => Read, [], REPLICA;
    }
}

#[test]
fn no_backslash_escapes_changes_where_strings_end() {
    let sql = b"SELECT 'a\\'; DELETE FROM t; -- '";
    let default = classify(sql);
    assert_eq!(default.kind, Read);
    assert!(default.is_read_only());

    let strict = classify_with(
        sql,
        ClassifyOptions {
            no_backslash_escapes: true,
            ..ClassifyOptions::default()
        },
    );
    assert_eq!(strict.kind, Read);
    assert!(strict.flags.contains(Flags::MULTI_STATEMENT));
    assert!(!strict.is_read_only());

    // Without backslash escapes `'a\'` is complete and the rest is SQL.
    let (kind, flags) = {
        let c = classify_with(
            b"SELECT 'C:\\' FROM t FOR UPDATE",
            ClassifyOptions {
                no_backslash_escapes: true,
                ..ClassifyOptions::default()
            },
        );
        (c.kind, c.flags)
    };
    assert_eq!(kind, Read);
    assert_eq!(flags, Flags::LOCKING_READ);
    // With them, the same text is an unterminated string.
    assert_eq!(
        kind_and_flags(b"SELECT 'C:\\' FROM t FOR UPDATE"),
        (Unknown, Flags::UNTERMINATED)
    );
}

#[test]
fn escaped_double_quote_is_ambiguous_under_ansi_quotes() {
    // Under ANSI_QUOTES, `"x\"` is an identifier and the DELETE is a second statement.
    expect_all! {
        "SELECT \"x\\\"; DELETE FROM t; -- \"" => Read, [AMBIGUOUS_QUOTING], PRIMARY;
        "SELECT \"say \\\"hi\\\"\"" => Read, [AMBIGUOUS_QUOTING], PRIMARY;
        "SELECT 'say \\\"hi\\\"'" => Read, [], REPLICA;
        "SELECT \"a\\\\\"" => Read, [], REPLICA;
    }
}

#[test]
fn unterminated_literals() {
    expect_all! {
        "SELECT 'abc" => Unknown, [UNTERMINATED], PRIMARY;
        "SELECT \"abc" => Unknown, [UNTERMINATED], PRIMARY;
        "SELECT `abc" => Unknown, [UNTERMINATED], PRIMARY;
        "SELECT 'abc\\'" => Unknown, [UNTERMINATED], PRIMARY;
        "SELECT 'it''" => Unknown, [UNTERMINATED], PRIMARY;
        "INSERT INTO t VALUES ('x" => Unknown, [UNTERMINATED], PRIMARY;
        "SELECT '" => Unknown, [UNTERMINATED], PRIMARY;
        "SELECT @'abc" => Unknown, [UNTERMINATED | READS_USER_VAR], PRIMARY;
        "SELECT 1 FROM t WHERE a = '; DELETE FROM t" => Unknown, [UNTERMINATED], PRIMARY;
    }
}

#[test]
fn nul_bytes() {
    assert_eq!(kind_and_flags(b"SELECT 1\0"), (Read, Flags::empty()));
    assert_eq!(kind_and_flags(b"SELECT '\0'"), (Read, Flags::empty()));
    assert_eq!(kind_and_flags(b"\0SELECT 1"), (Unknown, Flags::empty()));
    assert_eq!(
        kind_and_flags(b"SELECT 1;\0DELETE FROM t"),
        (Read, Flags::MULTI_STATEMENT)
    );
    assert_eq!(
        kind_and_flags(b"SELECT 1 /* \0 */ FOR UPDATE"),
        (Read, Flags::LOCKING_READ)
    );
    assert_eq!(kind_and_flags(&[0u8; 64]), (Unknown, Flags::empty()));
}

#[test]
fn invalid_utf8() {
    assert_eq!(
        kind_and_flags(b"SELECT \xff\xfe FROM t"),
        (Read, Flags::empty())
    );
    assert_eq!(kind_and_flags(b"\xffSELECT 1"), (Unknown, Flags::empty()));
    assert_eq!(kind_and_flags(b"SELECT '\xc3\x28'"), (Read, Flags::empty()));
    assert_eq!(
        kind_and_flags(b"SELECT \xe2\x82 FROM t FOR UPDATE"),
        (Read, Flags::LOCKING_READ)
    );
    assert_eq!(
        kind_and_flags(b"UPDATE t SET a = '\xfe\xff' WHERE b = `\x80`"),
        (Write, Flags::empty())
    );
    assert_eq!(kind_and_flags(b"USE \xff\xff"), (Use, Flags::empty()));
    assert_eq!(classify(b"USE \xff\xff").schema, Some(&b"\xff\xff"[..]));
    assert_eq!(
        kind_and_flags(b"/* \xff rwproxy:primary */ SELECT 1"),
        (Read, Flags::empty())
    );
}

#[test]
fn very_long_input() {
    let mut columns = String::from("SELECT ");
    for i in 0..100_000 {
        columns.push_str(&format!("c{i}, "));
    }
    columns.push_str("1 FROM t");
    assert_eq!(kind_and_flags(columns.as_bytes()), (Read, Flags::empty()));

    let long_string = format!("SELECT '{}' FROM t", "x".repeat(1 << 20));
    assert_eq!(
        kind_and_flags(long_string.as_bytes()),
        (Read, Flags::empty())
    );

    let locked = format!("SELECT {} FROM t FOR UPDATE", "a + ".repeat(200_000) + "1");
    assert_eq!(
        kind_and_flags(locked.as_bytes()),
        (Read, Flags::LOCKING_READ)
    );

    let unterminated = format!("SELECT '{}", "y".repeat(1 << 20));
    assert_eq!(
        kind_and_flags(unterminated.as_bytes()),
        (Unknown, Flags::UNTERMINATED)
    );
}

#[test]
fn deep_nesting_does_not_exhaust_the_stack() {
    let n = 100_000;
    let parens = format!("{}SELECT 1{}", "(".repeat(n), ")".repeat(n));
    assert_eq!(kind_and_flags(parens.as_bytes()).0, Read);

    let explains = format!("{}SELECT 1", "EXPLAIN ".repeat(n));
    assert_ne!(classify(explains.as_bytes()).kind, Read);

    let analyzes = format!("{}SELECT 1", "ANALYZE ".repeat(n));
    assert_eq!(classify(analyzes.as_bytes()).kind, Unknown);

    let set_statements = format!("{}SELECT 1", "SET STATEMENT a=1 FOR ".repeat(n));
    assert_eq!(classify(set_statements.as_bytes()).kind, Unknown);

    let withs = format!("{}SELECT 1", "WITH c AS (SELECT 1) (".repeat(n));
    assert_eq!(classify(withs.as_bytes()).kind, Unknown);

    let nested_explain = "EXPLAIN ANALYZE ".repeat(n) + "DELETE FROM t";
    assert_ne!(classify(nested_explain.as_bytes()).kind, Read);

    let cte_parens = format!(
        "WITH c AS ({}SELECT 1{}) SELECT * FROM c",
        "(".repeat(n),
        ")".repeat(n)
    );
    assert_eq!(classify(cte_parens.as_bytes()).kind, Read);
}

#[test]
fn account_names_are_not_user_variables() {
    expect_all! {
        "GRANT SELECT ON db.* TO 'app'@'%'" => Ddl, [], PRIMARY;
        "REVOKE ALL PRIVILEGES ON *.* FROM 'app'@'localhost'" => Ddl, [], PRIMARY;
        "CREATE USER 'bob'@'%' IDENTIFIED BY 'pw'" => Ddl, [], PRIMARY;
        "CREATE USER bob@localhost" => Ddl, [], PRIMARY;
        "DROP USER `bob`@`10.0.%`" => Ddl, [], PRIMARY;
        "SHOW GRANTS FOR 'app'@'%'" => Show, [], REPLICA;
        "SHOW GRANTS FOR CURRENT_USER()" => Show, [], REPLICA;
        "SELECT 'a' @x" => Read, [READS_USER_VAR], REPLICA;
    }
}

#[test]
fn explain_describe_analyze() {
    expect_all! {
        "EXPLAIN SELECT * FROM t" => Show, [], REPLICA;
        "explain select * from t where id = 1" => Show, [], REPLICA;
        "EXPLAIN UPDATE t SET a = 1" => Show, [], REPLICA;
        "EXPLAIN DELETE FROM t WHERE id = 1" => Show, [], REPLICA;
        "EXPLAIN INSERT INTO t VALUES (1)" => Show, [], REPLICA;
        "EXPLAIN EXTENDED SELECT 1" => Show, [], REPLICA;
        "EXPLAIN PARTITIONS SELECT 1" => Show, [], REPLICA;
        "EXPLAIN FORMAT=JSON SELECT 1" => Show, [], REPLICA;
        "EXPLAIN FORMAT = TREE SELECT * FROM t" => Show, [], REPLICA;
        "EXPLAIN (SELECT 1) UNION (SELECT 2)" => Show, [], REPLICA;
        "EXPLAIN WITH c AS (SELECT 1) SELECT * FROM c" => Show, [], REPLICA;
        "EXPLAIN ANALYZE SELECT * FROM t" => Show, [], REPLICA;
        "EXPLAIN ANALYZE FORMAT=TREE SELECT * FROM t" => Show, [], REPLICA;
        "EXPLAIN ANALYZE DELETE FROM t WHERE id = 1" => Write, [], PRIMARY;
        "EXPLAIN ANALYZE UPDATE t SET a = 1" => Write, [], PRIMARY;
        "EXPLAIN SELECT * FROM t FOR UPDATE" => Show, [LOCKING_READ], PRIMARY;
        "EXPLAIN FOR CONNECTION 12" => Show, [SERVER_STATE], PRIMARY;
        "DESCRIBE users" => Show, [], REPLICA;
        "DESC users" => Show, [], REPLICA;
        "desc `users` `email`" => Show, [], REPLICA;
        "DESCRIBE SELECT * FROM t" => Show, [], REPLICA;
        "EXPLAIN users" => Show, [], REPLICA;
        "ANALYZE SELECT * FROM t" => Show, [], REPLICA;
        "ANALYZE FORMAT=JSON SELECT 1" => Show, [], REPLICA;
        "ANALYZE UPDATE t SET a = 1" => Write, [], PRIMARY;
        "ANALYZE DELETE FROM t" => Write, [], PRIMARY;
        "ANALYZE FORMAT=JSON INSERT INTO t SELECT * FROM u" => Write, [], PRIMARY;
        "ANALYZE TABLE t" => Ddl, [], PRIMARY;
        "ANALYZE NO_WRITE_TO_BINLOG TABLE t" => Ddl, [], PRIMARY;
        "ANALYZE LOCAL TABLE t1, t2" => Ddl, [], PRIMARY;
        "ANALYZE garbage" => Unknown, [], PRIMARY;
        "HELP 'contents'" => Show, [], REPLICA;
        "help select" => Show, [], REPLICA;
    }
}

#[test]
fn every_kind_is_reachable() {
    // A guard against a dispatch arm silently going missing.
    let samples: [(&str, StatementKind); 26] = [
        ("SELECT 1", Read),
        ("DELETE FROM t", Write),
        ("ALTER TABLE t ADD c INT", Ddl),
        ("CALL p()", Call),
        ("SHOW TABLES", Show),
        ("BEGIN", Begin { read_only: false }),
        ("START TRANSACTION READ ONLY", Begin { read_only: true }),
        ("COMMIT", Commit),
        ("ROLLBACK", Rollback),
        ("SAVEPOINT s", Savepoint),
        ("RELEASE SAVEPOINT s", ReleaseSavepoint),
        ("ROLLBACK TO s", RollbackToSavepoint),
        ("XA RECOVER", Xa),
        ("SET autocommit=1", SetAutocommit(true)),
        ("SET NAMES utf8", SetNames),
        ("SET TRANSACTION READ ONLY", SetTransaction),
        ("SET @a=1", SetSession),
        ("SET GLOBAL a=1", SetGlobal),
        ("USE d", Use),
        ("LOCK TABLES t READ", LockTables),
        ("UNLOCK TABLES", UnlockTables),
        ("PREPARE s FROM 'SELECT 1'", PrepareText),
        ("EXECUTE s", ExecuteText),
        ("DEALLOCATE PREPARE s", DeallocateText),
        ("KILL 1", Kill),
        ("FLUSH TABLES", Other),
    ];
    for (sql, kind) in samples {
        assert_eq!(classify(sql.as_bytes()).kind, kind, "{sql}");
    }
}
