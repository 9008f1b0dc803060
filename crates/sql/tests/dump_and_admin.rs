//! What mysqldump / mariadb-dump and administration tools send.

#[macro_use]
mod common;

use common::{PRIMARY, REPLICA};
use rwproxy_sql::StatementKind::*;

#[test]
fn mysqldump_output() {
    expect_all! {
        "/*!40101 SET @OLD_CHARACTER_SET_CLIENT=@@CHARACTER_SET_CLIENT */;" => SetSession, [ASSIGNS_USER_VAR | SYSVAR_READ], PRIMARY;
        "/*!40101 SET @OLD_CHARACTER_SET_RESULTS=@@CHARACTER_SET_RESULTS */;" => SetSession, [ASSIGNS_USER_VAR | SYSVAR_READ], PRIMARY;
        "/*!40101 SET NAMES utf8mb4 */;" => SetNames, [], PRIMARY;
        "/*!40103 SET @OLD_TIME_ZONE=@@TIME_ZONE */;" => SetSession, [ASSIGNS_USER_VAR | SYSVAR_READ], PRIMARY;
        "/*!40103 SET TIME_ZONE='+00:00' */;" => SetSession, [], PRIMARY;
        "/*!40014 SET @OLD_UNIQUE_CHECKS=@@UNIQUE_CHECKS, UNIQUE_CHECKS=0 */;" => SetSession, [ASSIGNS_USER_VAR | SYSVAR_READ], PRIMARY;
        "/*!40014 SET @OLD_FOREIGN_KEY_CHECKS=@@FOREIGN_KEY_CHECKS, FOREIGN_KEY_CHECKS=0 */;" => SetSession, [ASSIGNS_USER_VAR | SYSVAR_READ], PRIMARY;
        "/*!40101 SET @OLD_SQL_MODE=@@SQL_MODE, SQL_MODE='NO_AUTO_VALUE_ON_ZERO' */;" => SetSession, [ASSIGNS_USER_VAR | SYSVAR_READ], PRIMARY;
        "/*!40111 SET @OLD_SQL_NOTES=@@SQL_NOTES, SQL_NOTES=0 */;" => SetSession, [ASSIGNS_USER_VAR | SYSVAR_READ], PRIMARY;
        "/*M!100616 SET @OLD_NOTE_VERBOSITY=@@NOTE_VERBOSITY, NOTE_VERBOSITY=0 */;" => SetSession, [ASSIGNS_USER_VAR | SYSVAR_READ], PRIMARY;
        "/*!40101 SET SQL_MODE=@OLD_SQL_MODE */;" => SetSession, [READS_USER_VAR], PRIMARY;
        "/*!40103 SET TIME_ZONE=@OLD_TIME_ZONE */;" => SetSession, [READS_USER_VAR], PRIMARY;
        "/*!40101 SET @saved_cs_client     = @@character_set_client */;" => SetSession, [ASSIGNS_USER_VAR | SYSVAR_READ], PRIMARY;
        "/*!40101 SET character_set_client = @saved_cs_client */;" => SetSession, [READS_USER_VAR], PRIMARY;
        "DROP TABLE IF EXISTS `users`;" => Ddl, [], PRIMARY;
        "CREATE TABLE `users` (\n  `id` int(11) NOT NULL AUTO_INCREMENT,\n  `email` varchar(255) NOT NULL,\n  PRIMARY KEY (`id`)\n) ENGINE=InnoDB AUTO_INCREMENT=3 DEFAULT CHARSET=utf8mb4 COLLATE=utf8mb4_general_ci;"
            => Ddl, [], PRIMARY;
        "LOCK TABLES `users` WRITE;" => LockTables, [], PRIMARY;
        "/*!40000 ALTER TABLE `users` DISABLE KEYS */;" => Ddl, [], PRIMARY;
        "INSERT INTO `users` VALUES (1,'a@b.c','it\\'s'),(2,'x;y','-- not a comment');" => Write, [], PRIMARY;
        "/*!40000 ALTER TABLE `users` ENABLE KEYS */;" => Ddl, [], PRIMARY;
        "UNLOCK TABLES;" => UnlockTables, [], PRIMARY;
        "/*!50003 CREATE*/ /*!50017 DEFINER=`root`@`localhost`*/ /*!50003 TRIGGER trg BEFORE INSERT ON t FOR EACH ROW SET NEW.x = 1 */;"
            => Ddl, [], PRIMARY;
        "/*!50001 CREATE ALGORITHM=UNDEFINED */ /*!50013 DEFINER=`root`@`localhost` SQL SECURITY DEFINER */ /*!50001 VIEW `v` AS select `t`.`id` AS `id` from `t` */;"
            => Ddl, [], PRIMARY;
        "/*!50001 DROP VIEW IF EXISTS `v`*/;" => Ddl, [], PRIMARY;
        "CREATE DATABASE /*!32312 IF NOT EXISTS*/ `shop` /*!40100 DEFAULT CHARACTER SET utf8mb4 */;" => Ddl, [], PRIMARY;
        "USE `shop`;" => Use, [], PRIMARY;
    }
}

#[test]
fn mysqldump_session() {
    expect_all! {
        "/*!40100 SET @@SQL_MODE='' */" => SetSession, [], PRIMARY;
        "/*!40103 SET TIME_ZONE='+00:00' */" => SetSession, [], PRIMARY;
        "SET SESSION TRANSACTION ISOLATION LEVEL REPEATABLE READ" => SetTransaction, [SESSION_SCOPE], PRIMARY;
        "START TRANSACTION /*!40100 WITH CONSISTENT SNAPSHOT */" => Begin { read_only: false }, [], PRIMARY;
        "FLUSH /*!40101 LOCAL */ TABLES" => Other, [], PRIMARY;
        "FLUSH TABLES WITH READ LOCK" => Other, [], PRIMARY;
        "SHOW MASTER STATUS" => Show, [SERVER_STATE], PRIMARY;
        "SHOW BINARY LOG STATUS" => Show, [SERVER_STATE], PRIMARY;
        "SELECT @@GLOBAL.GTID_MODE" => Read, [SYSVAR_READ], REPLICA;
        "SELECT @@GLOBAL.gtid_binlog_pos" => Read, [SYSVAR_READ], REPLICA;
        "SHOW VARIABLES LIKE 'gtid\\_mode'" => Show, [], REPLICA;
        "SELECT LOGFILE_GROUP_NAME, FILE_NAME, TOTAL_EXTENTS, INITIAL_SIZE, ENGINE, EXTRA FROM INFORMATION_SCHEMA.FILES WHERE FILE_TYPE = 'UNDO LOG' AND FILE_NAME IS NOT NULL GROUP BY LOGFILE_GROUP_NAME, FILE_NAME, ENGINE, TOTAL_EXTENTS, INITIAL_SIZE ORDER BY LOGFILE_GROUP_NAME"
            => Read, [], REPLICA;
        "SAVEPOINT sp" => Savepoint, [], PRIMARY;
        "show tables" => Show, [], REPLICA;
        "show table status like 'users'" => Show, [], REPLICA;
        "SET SQL_QUOTE_SHOW_CREATE=1" => SetSession, [], PRIMARY;
        "SET SESSION character_set_results = 'binary'" => SetSession, [], PRIMARY;
        "show create table `users`" => Show, [], REPLICA;
        "SET SESSION character_set_results = 'utf8mb4'" => SetSession, [], PRIMARY;
        "show fields from `users`" => Show, [], REPLICA;
        "SELECT /*!40001 SQL_NO_CACHE */ * FROM `users`" => Read, [], REPLICA;
        "SELECT /*!40001 SQL_NO_CACHE */ * FROM `users` INTO OUTFILE '/tmp/users.txt'" => Read, [SELECT_INTO], PRIMARY;
        "ROLLBACK TO SAVEPOINT sp" => RollbackToSavepoint, [], PRIMARY;
        "RELEASE SAVEPOINT sp" => ReleaseSavepoint, [], PRIMARY;
        "/*!80000 SET SESSION information_schema_stats_expiry=0 */" => SetSession, [], PRIMARY;
        "LOCK TABLES `a` READ /*!32311 LOCAL */,`b` READ /*!32311 LOCAL */" => LockTables, [], PRIMARY;
        "SHOW TRIGGERS LIKE 'users'" => Show, [], REPLICA;
        "SHOW CREATE TRIGGER `trg`" => Show, [], REPLICA;
        "SHOW FUNCTION STATUS WHERE Db = 'shop'" => Show, [], REPLICA;
        "SHOW CREATE PROCEDURE `p`" => Show, [], REPLICA;
        "SHOW EVENTS" => Show, [], REPLICA;
    }
}

#[test]
fn replication_and_server_state() {
    expect_all! {
        "SHOW SLAVE STATUS" => Show, [SERVER_STATE], PRIMARY;
        "SHOW REPLICA STATUS" => Show, [SERVER_STATE], PRIMARY;
        "SHOW ALL SLAVES STATUS" => Show, [SERVER_STATE], PRIMARY;
        "SHOW ALL REPLICAS STATUS" => Show, [SERVER_STATE], PRIMARY;
        "SHOW SLAVE HOSTS" => Show, [SERVER_STATE], PRIMARY;
        "SHOW REPLICAS" => Show, [SERVER_STATE], PRIMARY;
        "SHOW BINLOG EVENTS IN 'mysql-bin.000001'" => Show, [SERVER_STATE], PRIMARY;
        "SHOW RELAYLOG EVENTS" => Show, [SERVER_STATE], PRIMARY;
        "SHOW EXPLAIN FOR 5" => Show, [SERVER_STATE], PRIMARY;
        "SHOW ANALYZE FOR 5" => Show, [SERVER_STATE], PRIMARY;
        "SHOW GLOBAL STATUS LIKE 'Threads_connected'" => Show, [], REPLICA;
        "SHOW STATUS" => Show, [], REPLICA;
        "SHOW DATABASES" => Show, [], REPLICA;
        "SHOW ENGINE INNODB STATUS" => Show, [], REPLICA;
        "SHOW FULL COLUMNS FROM t" => Show, [], REPLICA;
        "CHANGE MASTER TO MASTER_HOST='10.0.0.1', MASTER_USE_GTID=slave_pos" => Other, [], PRIMARY;
        "START SLAVE" => Other, [], PRIMARY;
        "STOP SLAVE" => Other, [], PRIMARY;
        "STOP REPLICA" => Other, [], PRIMARY;
        "RESET MASTER" => Other, [], PRIMARY;
        "PURGE BINARY LOGS TO 'mysql-bin.000010'" => Other, [], PRIMARY;
    }
}

#[test]
fn maintenance_and_administration() {
    expect_all! {
        "OPTIMIZE TABLE t" => Ddl, [], PRIMARY;
        "CHECK TABLE t" => Ddl, [], PRIMARY;
        "REPAIR TABLE t" => Ddl, [], PRIMARY;
        "CHECKSUM TABLE t" => Ddl, [], PRIMARY;
        "RENAME TABLE a TO b" => Ddl, [], PRIMARY;
        "TRUNCATE TABLE t" => Ddl, [], PRIMARY;
        "TRUNCATE t" => Ddl, [], PRIMARY;
        "ALTER TABLE t ADD COLUMN c INT, ALGORITHM=INPLACE, LOCK=NONE" => Ddl, [], PRIMARY;
        "CREATE INDEX i ON t (a)" => Ddl, [], PRIMARY;
        "DROP INDEX i ON t" => Ddl, [], PRIMARY;
        "CREATE DEFINER=`root`@`%` PROCEDURE p() BEGIN SELECT 1; END" => Ddl, [MULTI_STATEMENT], PRIMARY;
        "CREATE SEQUENCE s START WITH 1 INCREMENT BY 1" => Ddl, [], PRIMARY;
        "ALTER SEQUENCE s RESTART 100" => Ddl, [], PRIMARY;
        "GRANT ALL ON shop.* TO 'app'@'10.%' WITH GRANT OPTION" => Ddl, [], PRIMARY;
        "FLUSH LOGS" => Other, [], PRIMARY;
        "FLUSH STATUS" => Other, [], PRIMARY;
        "RESET QUERY CACHE" => Other, [], PRIMARY;
        "INSTALL PLUGIN x SONAME 'x.so'" => Other, [], PRIMARY;
        "INSTALL SONAME 'auth_ed25519'" => Other, [], PRIMARY;
        "UNINSTALL SONAME 'x'" => Other, [], PRIMARY;
        "SHUTDOWN" => Other, [], PRIMARY;
        "BACKUP STAGE START" => Other, [], PRIMARY;
        "SIGNAL SQLSTATE '45000' SET MESSAGE_TEXT = 'nope'" => Other, [], PRIMARY;
        "CACHE INDEX t IN hot_cache" => Other, [], PRIMARY;
        "LOAD INDEX INTO CACHE t1" => Other, [], PRIMARY;
        "BINLOG 'AAAA'" => Other, [], PRIMARY;
        "CALL p()" => Call, [], PRIMARY;
        "call shop.refresh_totals(42)" => Call, [], PRIMARY;
    }
}
