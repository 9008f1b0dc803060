//! Locking reads, primary-only functions, user variables and `INTO`: what keeps a read off the
//! replicas.

#[macro_use]
mod common;

use common::{PRIMARY, REPLICA};
use rwproxy_sql::StatementKind::*;

#[test]
fn locking_reads() {
    expect_all! {
        "SELECT * FROM t WHERE id = 1 FOR UPDATE" => Read, [LOCKING_READ], PRIMARY;
        "select * from t where id = 1 for update" => Read, [LOCKING_READ], PRIMARY;
        "SELECT * FROM t WHERE id = 1\nFOR\n  UPDATE" => Read, [LOCKING_READ], PRIMARY;
        "SELECT * FROM t FOR /* really */ UPDATE" => Read, [LOCKING_READ], PRIMARY;
        "SELECT * FROM t FOR SHARE" => Read, [LOCKING_READ], PRIMARY;
        "SELECT * FROM t LOCK IN SHARE MODE" => Read, [LOCKING_READ], PRIMARY;
        "select * from t lock in share mode" => Read, [LOCKING_READ], PRIMARY;
        "SELECT * FROM t FOR UPDATE NOWAIT" => Read, [LOCKING_READ], PRIMARY;
        "SELECT * FROM t FOR UPDATE WAIT 5" => Read, [LOCKING_READ], PRIMARY;
        "SELECT * FROM t FOR UPDATE SKIP LOCKED" => Read, [LOCKING_READ], PRIMARY;
        "SELECT * FROM t FOR SHARE SKIP LOCKED" => Read, [LOCKING_READ], PRIMARY;
        "SELECT * FROM t JOIN u ON t.id = u.t_id FOR UPDATE OF t" => Read, [LOCKING_READ], PRIMARY;
        "(SELECT * FROM t FOR UPDATE)" => Read, [LOCKING_READ], PRIMARY;
        "SELECT * FROM t WHERE id IN (SELECT id FROM u FOR UPDATE)" => Read, [LOCKING_READ], PRIMARY;
        "WITH c AS (SELECT id FROM t) SELECT * FROM c FOR UPDATE" => Read, [LOCKING_READ], PRIMARY;
        "SELECT * FROM t /*!50000 FOR UPDATE */" => Read, [LOCKING_READ], PRIMARY;
        "INSERT INTO t SELECT * FROM u FOR UPDATE" => Write, [LOCKING_READ], PRIMARY;
    }
}

#[test]
fn lookalikes_are_not_locking() {
    expect_all! {
        "SELECT 'FOR UPDATE'" => Read, [], REPLICA;
        "SELECT \"FOR SHARE\"" => Read, [], REPLICA;
        "SELECT * FROM t /* FOR UPDATE */" => Read, [], REPLICA;
        "SELECT * FROM t -- FOR UPDATE\n" => Read, [], REPLICA;
        "SELECT * FROM t # LOCK IN SHARE MODE" => Read, [], REPLICA;
        "SELECT `for update` FROM t" => Read, [], REPLICA;
        "SELECT for_update FROM t" => Read, [], REPLICA;
        "SELECT `update` FROM `for`" => Read, [], REPLICA;
        "SELECT 1 AS `lock`" => Read, [], REPLICA;
        "SELECT * FROM t FOR SYSTEM_TIME AS OF TIMESTAMP '2024-01-01 00:00:00'" => Read, [], REPLICA;
        "SELECT 'LOCK IN SHARE MODE' AS hint" => Read, [], REPLICA;
        "SELECT * FROM t WHERE note = 'for' AND x = 'update'" => Read, [], REPLICA;
        "SELECT share FROM stocks" => Read, [], REPLICA;
        "SELECT * FROM t WHERE a IN (1) AND lock_mode = 'share'" => Read, [], REPLICA;
    }
}

#[test]
fn primary_only_functions() {
    expect_all! {
        "SELECT LAST_INSERT_ID()" => Read, [PRIMARY_FUNCTION], PRIMARY;
        "select last_insert_id()" => Read, [PRIMARY_FUNCTION], PRIMARY;
        "SELECT LAST_INSERT_ID ()" => Read, [PRIMARY_FUNCTION], PRIMARY;
        "SELECT * FROM t WHERE id = LAST_INSERT_ID()" => Read, [PRIMARY_FUNCTION], PRIMARY;
        "SELECT FOUND_ROWS()" => Read, [PRIMARY_FUNCTION | LAST_STATEMENT_INFO], PRIMARY;
        "SELECT ROW_COUNT()" => Read, [PRIMARY_FUNCTION | LAST_STATEMENT_INFO], PRIMARY;
        "SELECT GET_LOCK('lock1', 10)" => Read, [PRIMARY_FUNCTION | USES_GET_LOCK], PRIMARY;
        "select get_lock(concat('job:', 42), -1) as got" => Read, [PRIMARY_FUNCTION | USES_GET_LOCK], PRIMARY;
        "SELECT RELEASE_LOCK('lock1')" => Read, [PRIMARY_FUNCTION], PRIMARY;
        "SELECT RELEASE_ALL_LOCKS()" => Read, [PRIMARY_FUNCTION], PRIMARY;
        "SELECT IS_FREE_LOCK('l')" => Read, [PRIMARY_FUNCTION], PRIMARY;
        "SELECT IS_USED_LOCK('l')" => Read, [PRIMARY_FUNCTION], PRIMARY;
        "SELECT NEXTVAL(s)" => Read, [PRIMARY_FUNCTION], PRIMARY;
        "SELECT nextval(`db`.`s`)" => Read, [PRIMARY_FUNCTION], PRIMARY;
        "SELECT LASTVAL(s)" => Read, [PRIMARY_FUNCTION], PRIMARY;
        "SELECT SETVAL(s, 100)" => Read, [PRIMARY_FUNCTION], PRIMARY;
        "SELECT NEXT VALUE FOR s" => Read, [PRIMARY_FUNCTION], PRIMARY;
        "select next value for db.s" => Read, [PRIMARY_FUNCTION], PRIMARY;
        "SELECT PREVIOUS VALUE FOR s" => Read, [PRIMARY_FUNCTION], PRIMARY;
        "SELECT s.nextval" => Read, [PRIMARY_FUNCTION], PRIMARY;
        "SELECT s.currval" => Read, [PRIMARY_FUNCTION], PRIMARY;
        "SELECT @@IDENTITY" => Read, [SYSVAR_READ | PRIMARY_FUNCTION], PRIMARY;
        "SELECT @@last_insert_id" => Read, [SYSVAR_READ | PRIMARY_FUNCTION], PRIMARY;
        "SELECT @@session.identity" => Read, [SYSVAR_READ | PRIMARY_FUNCTION], PRIMARY;
        "SELECT COUNT(*), MAX(id), NOW(), UUID() FROM t" => Read, [], REPLICA;
        "INSERT INTO t (id, a) VALUES (NEXT VALUE FOR s, 1)" => Write, [PRIMARY_FUNCTION], PRIMARY;
        "INSERT INTO log (ref) VALUES (LAST_INSERT_ID())" => Write, [PRIMARY_FUNCTION], PRIMARY;
        "DO GET_LOCK('x', 0)" => Write, [PRIMARY_FUNCTION | USES_GET_LOCK], PRIMARY;
        "DO RELEASE_LOCK('x')" => Write, [PRIMARY_FUNCTION], PRIMARY;
        "SELECT SQL_CALC_FOUND_ROWS * FROM t LIMIT 10" => Read, [CALC_FOUND_ROWS], PRIMARY;
        "select sql_calc_found_rows id from t limit 10, 10" => Read, [CALC_FOUND_ROWS], PRIMARY;
    }
}

#[test]
fn function_names_need_a_call() {
    expect_all! {
        "SELECT last_insert_id_col FROM t" => Read, [], REPLICA;
        "SELECT last_insert_id FROM t" => Read, [], REPLICA;
        "SELECT 'LAST_INSERT_ID()'" => Read, [], REPLICA;
        "SELECT \"get_lock('x', 1)\"" => Read, [], REPLICA;
        "SELECT * FROM t /* LAST_INSERT_ID() */" => Read, [], REPLICA;
        "SELECT COUNT(*) FROM t WHERE next_value = 1" => Read, [], REPLICA;
        "SELECT value FROM t WHERE next = 1" => Read, [], REPLICA;
        "SELECT get_lock_count FROM stats" => Read, [], REPLICA;
        "SELECT is_free_lock FROM t" => Read, [], REPLICA;
        "SELECT found_rows, row_count FROM stats" => Read, [], REPLICA;
        "SELECT nextval FROM seq_table" => Read, [], REPLICA;
        "SELECT my_last_insert_id() FROM t" => Read, [], REPLICA;
        "SELECT @@identity_insert_mode" => Read, [SYSVAR_READ], REPLICA;
        "SELECT `SQL_CALC_FOUND_ROWS` FROM t" => Read, [], REPLICA;
    }
}

#[test]
fn user_variables_and_into() {
    expect_all! {
        "SELECT id INTO @id FROM t WHERE x = 1" => Read, [SELECT_INTO | ASSIGNS_USER_VAR], PRIMARY;
        "SELECT a, b FROM t LIMIT 1 INTO @a, @b" => Read, [SELECT_INTO | ASSIGNS_USER_VAR], PRIMARY;
        "SELECT * FROM t INTO OUTFILE '/tmp/t.csv' FIELDS TERMINATED BY ','" => Read, [SELECT_INTO], PRIMARY;
        "SELECT * FROM t INTO DUMPFILE '/tmp/d.bin'" => Read, [SELECT_INTO], PRIMARY;
        "SELECT 'INTO @x'" => Read, [], REPLICA;
        "SELECT @x := 1" => Read, [ASSIGNS_USER_VAR], PRIMARY;
        "SELECT @x" => Read, [READS_USER_VAR], REPLICA;
        "SELECT @x, @y FROM dual" => Read, [READS_USER_VAR], REPLICA;
        "SELECT * FROM t WHERE a = @x" => Read, [READS_USER_VAR], REPLICA;
        "SELECT @x = 1" => Read, [READS_USER_VAR], REPLICA;
        "SELECT @`quoted var`" => Read, [READS_USER_VAR], REPLICA;
        "SELECT @rownum := @rownum + 1 AS rank, name FROM t, (SELECT @rownum := 0) r"
            => Read, [ASSIGNS_USER_VAR | READS_USER_VAR], PRIMARY;
        "SELECT a INTO @a FROM t WHERE b = @b" => Read, [SELECT_INTO | ASSIGNS_USER_VAR | READS_USER_VAR], PRIMARY;
        "UPDATE t SET a = (@x := a + 1)" => Write, [ASSIGNS_USER_VAR], PRIMARY;
        "INSERT INTO t VALUES (@x)" => Write, [READS_USER_VAR], PRIMARY;
        "CALL sp_update_stats(1, @out)" => Call, [READS_USER_VAR], PRIMARY;
        "SELECT '@x', \"@y\", `@z` FROM t" => Read, [], REPLICA;
        "SELECT @@version" => Read, [SYSVAR_READ], REPLICA;
        "SELECT @@global.read_only, @@session.sql_mode" => Read, [SYSVAR_READ], REPLICA;
    }
}

#[test]
fn writes() {
    expect_all! {
        "INSERT INTO t SELECT * FROM u" => Write, [], PRIMARY;
        "INSERT INTO t (a) SELECT a FROM u WHERE b > 1" => Write, [], PRIMARY;
        "INSERT IGNORE INTO t VALUES (1)" => Write, [], PRIMARY;
        "INSERT LOW_PRIORITY INTO t SET a = 1" => Write, [], PRIMARY;
        "REPLACE INTO t VALUES (1)" => Write, [], PRIMARY;
        "replace t set a = 1" => Write, [], PRIMARY;
        "UPDATE t SET a = 1 WHERE id = 2" => Write, [], PRIMARY;
        "UPDATE LOW_PRIORITY IGNORE t SET a = 1" => Write, [], PRIMARY;
        "DELETE FROM t WHERE id = 1" => Write, [], PRIMARY;
        "DELETE t1 FROM t1 JOIN t2 ON t1.id = t2.id WHERE t2.x = 0" => Write, [], PRIMARY;
        "DELETE FROM t RETURNING id" => Write, [], PRIMARY;
        "INSERT INTO t VALUES (1) RETURNING id" => Write, [], PRIMARY;
        "LOAD DATA LOCAL INFILE '/tmp/x.csv' INTO TABLE t FIELDS TERMINATED BY ','" => Write, [], PRIMARY;
        "LOAD XML LOCAL INFILE 'p.xml' INTO TABLE person ROWS IDENTIFIED BY '<person>'" => Write, [], PRIMARY;
        "MERGE INTO t USING u ON t.id = u.id WHEN MATCHED THEN UPDATE SET t.a = u.a" => Write, [], PRIMARY;
        "DO SLEEP(1)" => Write, [], PRIMARY;
        "DO 1" => Write, [], PRIMARY;
        "CREATE TABLE t2 AS SELECT * FROM t" => Ddl, [], PRIMARY;
        "CREATE TABLE t2 SELECT * FROM t FOR UPDATE" => Ddl, [LOCKING_READ], PRIMARY;
    }
}
