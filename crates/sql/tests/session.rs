//! Session state: SET in all its forms, USE, text prepared statements, KILL, LOCK TABLES,
//! temporary tables.

#[macro_use]
mod common;

use common::{PRIMARY, REPLICA};
use rwproxy_sql::{classify, StatementKind::*};

#[test]
fn set_autocommit() {
    expect_all! {
        "SET autocommit=0" => SetAutocommit(false), [AUTOCOMMIT_OFF], PRIMARY;
        "SET autocommit = 1" => SetAutocommit(true), [AUTOCOMMIT_ON], PRIMARY;
        "set autocommit=ON" => SetAutocommit(true), [AUTOCOMMIT_ON], PRIMARY;
        "SET AUTOCOMMIT = OFF" => SetAutocommit(false), [AUTOCOMMIT_OFF], PRIMARY;
        "SET autocommit=true" => SetAutocommit(true), [AUTOCOMMIT_ON], PRIMARY;
        "SET autocommit = FALSE" => SetAutocommit(false), [AUTOCOMMIT_OFF], PRIMARY;
        "SET @@autocommit=0" => SetAutocommit(false), [AUTOCOMMIT_OFF], PRIMARY;
        "SET @@session.autocommit = 1" => SetAutocommit(true), [AUTOCOMMIT_ON], PRIMARY;
        "SET @@SESSION.AUTOCOMMIT=0" => SetAutocommit(false), [AUTOCOMMIT_OFF], PRIMARY;
        "SET SESSION autocommit=0" => SetAutocommit(false), [AUTOCOMMIT_OFF], PRIMARY;
        "SET LOCAL autocommit = 1" => SetAutocommit(true), [AUTOCOMMIT_ON], PRIMARY;
        "SET @@local.autocommit=0" => SetAutocommit(false), [AUTOCOMMIT_OFF], PRIMARY;
        "SET autocommit := 0" => SetAutocommit(false), [AUTOCOMMIT_OFF], PRIMARY;
        "SET autocommit='ON'" => SetAutocommit(true), [AUTOCOMMIT_ON], PRIMARY;
        "SET autocommit = 1;" => SetAutocommit(true), [AUTOCOMMIT_ON], PRIMARY;
        "/*!40101 SET autocommit=0 */" => SetAutocommit(false), [AUTOCOMMIT_OFF], PRIMARY;
        "SET /* c */ autocommit /* d */ = /* e */ 1" => SetAutocommit(true), [AUTOCOMMIT_ON], PRIMARY;
        // Mixed with other assignments: a session SET that also switches autocommit.
        "SET autocommit=0, sql_mode='TRADITIONAL'" => SetSession, [AUTOCOMMIT_OFF], PRIMARY;
        "SET sql_mode='', autocommit=1" => SetSession, [AUTOCOMMIT_ON], PRIMARY;
        // Values we cannot evaluate.
        "SET autocommit = @x" => Unknown, [READS_USER_VAR], PRIMARY;
        "SET autocommit = 1 + 0" => Unknown, [], PRIMARY;
        "SET autocommit = DEFAULT" => Unknown, [], PRIMARY;
        "SET autocommit = 2" => Unknown, [], PRIMARY;
        // Global scope: the default for new connections, not this session.
        "SET GLOBAL autocommit = 0" => SetGlobal, [], PRIMARY;
        "SET @@global.autocommit = 0" => SetGlobal, [], PRIMARY;
    }
}

#[test]
fn set_names() {
    expect_all! {
        "SET NAMES utf8mb4" => SetNames, [], PRIMARY;
        "SET NAMES 'utf8mb4' COLLATE 'utf8mb4_unicode_ci'" => SetNames, [], PRIMARY;
        "set names utf8" => SetNames, [], PRIMARY;
        "SET NAMES DEFAULT" => SetNames, [], PRIMARY;
        "SET CHARACTER SET utf8mb4" => SetNames, [], PRIMARY;
        "SET CHARSET 'latin1'" => SetNames, [], PRIMARY;
        "/*!40101 SET NAMES utf8mb4 */" => SetNames, [], PRIMARY;
        "SET NAMES utf8mb4, @x = 1" => SetSession, [ASSIGNS_USER_VAR], PRIMARY;
        "SET NAMES utf8mb4, autocommit = 1" => SetSession, [AUTOCOMMIT_ON], PRIMARY;
    }
}

#[test]
fn set_session_and_user_variables() {
    expect_all! {
        "SET sql_mode = 'STRICT_TRANS_TABLES'" => SetSession, [], PRIMARY;
        "SET SESSION sql_mode='ANSI_QUOTES'" => SetSession, [], PRIMARY;
        "SET @@session.time_zone = '+00:00'" => SetSession, [], PRIMARY;
        "SET time_zone = 'UTC'" => SetSession, [], PRIMARY;
        "SET @x = 1" => SetSession, [ASSIGNS_USER_VAR], PRIMARY;
        "SET @x := 1" => SetSession, [ASSIGNS_USER_VAR], PRIMARY;
        "SET @a = 1, @b = 2" => SetSession, [ASSIGNS_USER_VAR], PRIMARY;
        "SET @count = @count + 1" => SetSession, [ASSIGNS_USER_VAR | READS_USER_VAR], PRIMARY;
        "SET @id = LAST_INSERT_ID()" => SetSession, [ASSIGNS_USER_VAR | PRIMARY_FUNCTION], PRIMARY;
        "SET @`weird name` = 'x'" => SetSession, [ASSIGNS_USER_VAR], PRIMARY;
        "SET @'quoted' = 1" => SetSession, [ASSIGNS_USER_VAR], PRIMARY;
        "SET @x = (SELECT COUNT(*) FROM t)" => SetSession, [ASSIGNS_USER_VAR], PRIMARY;
        "SET @x = (SELECT a FROM t WHERE b = 'x, y')" => SetSession, [ASSIGNS_USER_VAR], PRIMARY;
        "SET SESSION max_execution_time = 1000" => SetSession, [], PRIMARY;
        "SET max_statement_time=10" => SetSession, [], PRIMARY;
        "SET sql_log_bin = 0" => SetSession, [], PRIMARY;
        "SET foreign_key_checks = 0" => SetSession, [], PRIMARY;
        "SET unique_checks=0, foreign_key_checks=0" => SetSession, [], PRIMARY;
        "SET SESSION wait_timeout = 28800" => SetSession, [], PRIMARY;
        "SET @@SQL_SELECT_LIMIT=DEFAULT" => SetSession, [], PRIMARY;
        "SET SQL_SELECT_LIMIT=1000" => SetSession, [], PRIMARY;
        "SET group_concat_max_len = 1000000" => SetSession, [], PRIMARY;
        "SET @@session.sql_mode = CONCAT(@@sql_mode, ',NO_ZERO_DATE')" => SetSession, [SYSVAR_READ], PRIMARY;
        "SET @old = @@session.sql_mode" => SetSession, [ASSIGNS_USER_VAR | SYSVAR_READ], PRIMARY;
        "SET ROLE app_reader" => SetSession, [], PRIMARY;
        "SET ROLE ALL" => SetSession, [], PRIMARY;
        "SET session_track_schema = ON" => SetSession, [], PRIMARY;
        "SET `sql_mode` = ''" => SetSession, [], PRIMARY;
    }
}

#[test]
fn set_global() {
    expect_all! {
        "SET GLOBAL max_connections = 500" => SetGlobal, [], PRIMARY;
        "SET @@global.read_only = 1" => SetGlobal, [], PRIMARY;
        "SET @@GLOBAL.gtid_slave_pos = ''" => SetGlobal, [], PRIMARY;
        "SET PERSIST max_connections = 500" => SetGlobal, [], PRIMARY;
        "SET PERSIST_ONLY back_log = 100" => SetGlobal, [], PRIMARY;
        "SET @@persist.max_connections = 500" => SetGlobal, [], PRIMARY;
        "SET GLOBAL slow_query_log = ON" => SetGlobal, [], PRIMARY;
        "SET GLOBAL a = 1, SESSION b = 2" => SetGlobal, [], PRIMARY;
        "SET SESSION a = 1, GLOBAL b = 2" => SetGlobal, [], PRIMARY;
        // GLOBAL carries over to later assignments without a scope, as on the server.
        "SET GLOBAL wait_timeout = 60, interactive_timeout = 60" => SetGlobal, [], PRIMARY;
        "SET GLOBAL keycache1.key_buffer_size = 128 * 1024" => SetGlobal, [], PRIMARY;
    }
}

#[test]
fn other_set_forms() {
    expect_all! {
        "SET PASSWORD = PASSWORD('secret')" => Other, [], PRIMARY;
        "SET PASSWORD FOR 'bob'@'%' = PASSWORD('x')" => Other, [], PRIMARY;
        "SET DEFAULT ROLE app_reader FOR 'bob'@'%'" => Other, [], PRIMARY;
        "SET RESOURCE GROUP batch" => Other, [], PRIMARY;
        "SET STATEMENT max_statement_time=60 FOR SELECT * FROM t" => Read, [], REPLICA;
        "SET STATEMENT max_statement_time=60, sql_mode='' FOR SELECT * FROM t FOR UPDATE" => Read, [LOCKING_READ], PRIMARY;
        "SET STATEMENT sql_mode='' FOR INSERT INTO t VALUES (1)" => Write, [], PRIMARY;
        "SET STATEMENT optimizer_switch='mrr=off' FOR UPDATE t SET a = 1" => Write, [], PRIMARY;
        "SET STATEMENT max_statement_time=1 FOR SELECT @x := 1" => Read, [ASSIGNS_USER_VAR], PRIMARY;
        "SET STATEMENT a=(1) FOR DELETE FROM t" => Write, [], PRIMARY;
        "SET STATEMENT a=1" => Unknown, [], PRIMARY;
        "SET STATEMENT a=1 FOR" => Unknown, [], PRIMARY;
    }
}

#[test]
fn malformed_set_is_unknown() {
    expect_all! {
        "SET" => Unknown, [], PRIMARY;
        "SET;" => Unknown, [], PRIMARY;
        "SET =" => Unknown, [], PRIMARY;
        "SET x" => Unknown, [], PRIMARY;
        "SET x 1" => Unknown, [], PRIMARY;
        "SET 1 = 2" => Unknown, [], PRIMARY;
        "SET 'x' = 2" => Unknown, [], PRIMARY;
        "SET a = 1 b = 2" => SetSession, [], PRIMARY;
        "SET DEFAULT x = 1" => Unknown, [], PRIMARY;
        "SET x = 1," => Unknown, [], PRIMARY;
    }
}

#[test]
fn use_schema() {
    let cases: [(&[u8], Option<&[u8]>); 8] = [
        (b"USE app", Some(b"app")),
        (b"use `my-db`", Some(b"my-db")),
        (b"USE app;", Some(b"app")),
        (b"/* c */ USE shop", Some(b"shop")),
        (b"USE `we``ird`", Some(b"we``ird")),
        (b"USE \xe6\x97\xa5\xe6\x9c\xac", Some("日本".as_bytes())),
        (b"USE shop; SELECT 1", Some(b"shop")),
        (b"USE `shop` -- go\n", Some(b"shop")),
    ];
    for (sql, schema) in cases {
        let c = classify(sql);
        assert_eq!(c.kind, Use, "{}", String::from_utf8_lossy(sql));
        assert_eq!(c.schema, schema, "{}", String::from_utf8_lossy(sql));
        assert!(!c.is_read_only());
    }
    expect_all! {
        "USE shop; SELECT 1" => Use, [MULTI_STATEMENT], PRIMARY;
        "USE" => Unknown, [], PRIMARY;
        "USE a b" => Unknown, [], PRIMARY;
        "USE 'db'" => Unknown, [], PRIMARY;
        "USE `unterminated" => Unknown, [UNTERMINATED], PRIMARY;
    }
    // Only USE carries a schema.
    assert_eq!(classify(b"SELECT 1").schema, None);
    assert_eq!(classify(b"USE a b").schema, None);
}

#[test]
fn text_prepared_statements() {
    expect_all! {
        "PREPARE stmt1 FROM 'SELECT * FROM t WHERE id = ?'" => PrepareText, [], PRIMARY;
        "PREPARE s FROM @sql" => PrepareText, [READS_USER_VAR], PRIMARY;
        "EXECUTE stmt1" => ExecuteText, [], PRIMARY;
        "EXECUTE stmt1 USING @id" => ExecuteText, [READS_USER_VAR], PRIMARY;
        "EXECUTE stmt1 USING @a, @b" => ExecuteText, [READS_USER_VAR], PRIMARY;
        "DEALLOCATE PREPARE stmt1" => DeallocateText, [], PRIMARY;
        "DROP PREPARE stmt1" => DeallocateText, [], PRIMARY;
        "EXECUTE IMMEDIATE 'SELECT 1'" => Unknown, [], PRIMARY;
        "DEALLOCATE stmt1" => Unknown, [], PRIMARY;
    }
}

#[test]
fn kill() {
    expect_all! {
        "KILL 42" => Kill, [], PRIMARY;
        "KILL CONNECTION 42" => Kill, [], PRIMARY;
        "KILL QUERY 42" => Kill, [], PRIMARY;
        "KILL HARD QUERY 42" => Kill, [], PRIMARY;
        "KILL SOFT CONNECTION 42" => Kill, [], PRIMARY;
        "KILL QUERY ID 42" => Kill, [], PRIMARY;
        "KILL USER bob" => Kill, [], PRIMARY;
        "kill 7;" => Kill, [], PRIMARY;
    }
}

#[test]
fn table_locks() {
    expect_all! {
        "LOCK TABLES t READ" => LockTables, [], PRIMARY;
        "LOCK TABLE t WRITE, u READ LOCAL" => LockTables, [], PRIMARY;
        "lock tables `a` as x read, `b` write" => LockTables, [], PRIMARY;
        "UNLOCK TABLES" => UnlockTables, [], PRIMARY;
        "unlock table" => UnlockTables, [], PRIMARY;
        "LOCK t" => Unknown, [], PRIMARY;
        "UNLOCK t" => Unknown, [], PRIMARY;
        "LOCK INSTANCE FOR BACKUP" => Other, [], PRIMARY;
        "UNLOCK INSTANCE" => Other, [], PRIMARY;
    }
}

#[test]
fn temporary_tables() {
    expect_all! {
        "CREATE TEMPORARY TABLE tmp (id INT)" => Ddl, [CREATE_TEMP_TABLE], PRIMARY;
        "create temporary table if not exists tmp as select * from t" => Ddl, [CREATE_TEMP_TABLE], PRIMARY;
        "CREATE OR REPLACE TEMPORARY TABLE tmp (a int)" => Ddl, [CREATE_TEMP_TABLE], PRIMARY;
        "CREATE TEMPORARY SEQUENCE s" => Ddl, [CREATE_TEMP_TABLE], PRIMARY;
        "DROP TEMPORARY TABLE tmp" => Ddl, [DROP_TEMP_TABLE], PRIMARY;
        "DROP TEMPORARY TABLE IF EXISTS tmp1, tmp2" => Ddl, [DROP_TEMP_TABLE], PRIMARY;
        "CREATE TABLE t (a int)" => Ddl, [], PRIMARY;
        "CREATE TABLE `temporary` (a int)" => Ddl, [], PRIMARY;
        "DROP TABLE t" => Ddl, [], PRIMARY;
        "CREATE OR REPLACE TABLE t (a int)" => Ddl, [], PRIMARY;
    }
}

#[test]
fn diagnostics_about_the_previous_statement() {
    expect_all! {
        "SHOW WARNINGS" => Show, [LAST_STATEMENT_INFO], REPLICA;
        "SHOW WARNINGS LIMIT 10" => Show, [LAST_STATEMENT_INFO], REPLICA;
        "SHOW ERRORS" => Show, [LAST_STATEMENT_INFO], REPLICA;
        "SHOW COUNT(*) WARNINGS" => Show, [LAST_STATEMENT_INFO], REPLICA;
        "SHOW PROFILES" => Show, [LAST_STATEMENT_INFO], REPLICA;
        "SHOW PROFILE FOR QUERY 1" => Show, [LAST_STATEMENT_INFO], REPLICA;
        "SELECT @@warning_count" => Read, [SYSVAR_READ | LAST_STATEMENT_INFO], REPLICA;
        "SELECT @@session.error_count" => Read, [SYSVAR_READ | LAST_STATEMENT_INFO], REPLICA;
        "SELECT ROW_COUNT()" => Read, [PRIMARY_FUNCTION | LAST_STATEMENT_INFO], PRIMARY;
        "GET DIAGNOSTICS @n = NUMBER" => Other, [LAST_STATEMENT_INFO | ASSIGNS_USER_VAR], PRIMARY;
        "GET CURRENT DIAGNOSTICS CONDITION 1 @state = RETURNED_SQLSTATE, @msg = MESSAGE_TEXT"
            => Other, [LAST_STATEMENT_INFO | ASSIGNS_USER_VAR], PRIMARY;
        "GET SOMETHING" => Unknown, [], PRIMARY;
    }
}
