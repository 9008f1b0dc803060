//! Statements in the shape ORMs and database drivers send them.

#[macro_use]
mod common;

use common::{PRIMARY, REPLICA};
use rwproxy_sql::StatementKind::*;

#[test]
fn hibernate() {
    expect_all! {
        "select user0_.id as id1_0_, user0_.email as email2_0_, user0_.name as name3_0_ from users user0_ where user0_.id=?"
            => Read, [], REPLICA;
        "/* load com.example.domain.User */ select user0_.id as id1_0_0_, user0_.email as email2_0_0_ from users user0_ where user0_.id=?"
            => Read, [], REPLICA;
        "select count(*) as col_0_0_ from orders order0_ where order0_.status=?"
            => Read, [], REPLICA;
        "select order0_.id as id1_1_, order0_.customer_id as customer3_1_ from orders order0_ inner join customers customer1_ on order0_.customer_id=customer1_.id where customer1_.country=? order by order0_.created_at desc limit ?"
            => Read, [], REPLICA;
        "insert into users (email, name, id) values (?, ?, ?)" => Write, [], PRIMARY;
        "/* insert com.example.domain.User */ insert into users (email, name) values (?, ?)"
            => Write, [], PRIMARY;
        "update users set email=?, name=?, version=? where id=? and version=?" => Write, [], PRIMARY;
        "delete from users where id=? and version=?" => Write, [], PRIMARY;
        "select user0_.id as id1_0_ from users user0_ where user0_.id=? for update" => Read, [LOCKING_READ], PRIMARY;
        "select user0_.id as id1_0_ from users user0_ where user0_.id=? for update nowait" => Read, [LOCKING_READ], PRIMARY;
        "select user0_.id as id1_0_ from users user0_ where user0_.id=? for update skip locked" => Read, [LOCKING_READ], PRIMARY;
        "select user0_.id as id1_0_ from users user0_ where user0_.id=? lock in share mode" => Read, [LOCKING_READ], PRIMARY;
        "select next_val as id_val from hibernate_sequence for update" => Read, [LOCKING_READ], PRIMARY;
        "update hibernate_sequence set next_val= ? where next_val=?" => Write, [], PRIMARY;
        "select nextval(hibernate_sequence)" => Read, [PRIMARY_FUNCTION], PRIMARY;
        "select next value for hibernate_sequence" => Read, [PRIMARY_FUNCTION], PRIMARY;
        "/* dynamic native SQL query */ select 1" => Read, [], REPLICA;
        "select @@session.transaction_read_only" => Read, [SYSVAR_READ], REPLICA;
        "select user0_.id from users user0_ where user0_.email like ? escape '!'" => Read, [], REPLICA;
        "select distinct tag0_.name as col_0_0_ from tags tag0_ where tag0_.id in (? , ? , ?)" => Read, [], REPLICA;
    }
}

#[test]
fn django() {
    expect_all! {
        "SELECT `auth_user`.`id`, `auth_user`.`password`, `auth_user`.`last_login`, `auth_user`.`is_superuser`, `auth_user`.`username` FROM `auth_user` WHERE `auth_user`.`username` = 'admin' LIMIT 21"
            => Read, [], REPLICA;
        "SELECT (1) AS `a` FROM `auth_user` WHERE `auth_user`.`username` = 'bob' LIMIT 1" => Read, [], REPLICA;
        "SELECT `django_session`.`session_key`, `django_session`.`session_data` FROM `django_session` WHERE (`django_session`.`expire_date` > '2024-05-01 10:00:00.000000' AND `django_session`.`session_key` = 'x1y2') LIMIT 21"
            => Read, [], REPLICA;
        "INSERT INTO `django_session` (`session_key`, `session_data`, `expire_date`) VALUES ('x1y2', 'e30:1rX', '2024-05-15 10:00:00.000000')"
            => Write, [], PRIMARY;
        "UPDATE `auth_user` SET `last_login` = '2024-05-01 10:00:00.000000' WHERE `auth_user`.`id` = 1" => Write, [], PRIMARY;
        "DELETE FROM `django_session` WHERE `django_session`.`session_key` IN ('x1y2')" => Write, [], PRIMARY;
        "SELECT `shop_order`.`id`, `shop_order`.`total` FROM `shop_order` WHERE `shop_order`.`id` = 7 LIMIT 21 FOR UPDATE"
            => Read, [LOCKING_READ], PRIMARY;
        "SELECT `shop_order`.`id` FROM `shop_order` WHERE `shop_order`.`id` = 7 FOR UPDATE SKIP LOCKED" => Read, [LOCKING_READ], PRIMARY;
        "SET SESSION TRANSACTION ISOLATION LEVEL READ COMMITTED" => SetTransaction, [SESSION_SCOPE], PRIMARY;
        "SET SQL_AUTO_IS_NULL = 0" => SetSession, [], PRIMARY;
        "SELECT VERSION()" => Read, [], REPLICA;
        "CREATE TABLE `django_migrations` (`id` bigint AUTO_INCREMENT NOT NULL PRIMARY KEY, `app` varchar(255) NOT NULL, `name` varchar(255) NOT NULL, `applied` datetime(6) NOT NULL)"
            => Ddl, [], PRIMARY;
        "ALTER TABLE `polls_choice` ADD CONSTRAINT `polls_choice_question_id_c5b4b260_fk_polls_question_id` FOREIGN KEY (`question_id`) REFERENCES `polls_question` (`id`)"
            => Ddl, [], PRIMARY;
        "CREATE INDEX `polls_choice_question_id_c5b4b260` ON `polls_choice` (`question_id`)" => Ddl, [], PRIMARY;
        "SELECT `django_migrations`.`id`, `django_migrations`.`app`, `django_migrations`.`name` FROM `django_migrations`" => Read, [], REPLICA;
        "SELECT engine FROM information_schema.tables WHERE table_name = 'polls_choice' AND table_schema = DATABASE()" => Read, [], REPLICA;
        "SELECT COUNT(*) AS `__count` FROM `blog_entry` WHERE `blog_entry`.`pub_date` >= '2024-01-01'" => Read, [], REPLICA;
        "INSERT INTO `blog_entry` (`headline`, `body`) VALUES ('Hi', 'It''s \\\"quoted\\\"')" => Write, [], PRIMARY;
        "UPDATE `blog_entry` SET `views` = (`blog_entry`.`views` + 1) WHERE `blog_entry`.`id` = 3" => Write, [], PRIMARY;
        "SELECT `blog_entry`.`id` FROM `blog_entry` WHERE `blog_entry`.`headline` LIKE BINARY '%Lennon%'" => Read, [], REPLICA;
    }
}

#[test]
fn sqlalchemy() {
    expect_all! {
        "SELECT users.id AS users_id, users.name AS users_name, users.fullname AS users_fullname FROM users WHERE users.id = %s"
            => Read, [], REPLICA;
        "INSERT INTO users (name, fullname) VALUES (%s, %s)" => Write, [], PRIMARY;
        "UPDATE users SET fullname=%s WHERE users.id = %s" => Write, [], PRIMARY;
        "SELECT DATABASE()" => Read, [], REPLICA;
        "SHOW VARIABLES LIKE 'sql_mode'" => Show, [], REPLICA;
        "SHOW VARIABLES LIKE 'lower_case_table_names'" => Show, [], REPLICA;
        "SELECT CAST('test plain returns' AS CHAR(60)) AS anon_1" => Read, [], REPLICA;
        "SELECT @@transaction_isolation" => Read, [SYSVAR_READ], REPLICA;
        "SELECT @@tx_isolation" => Read, [SYSVAR_READ], REPLICA;
        "SHOW COLLATION WHERE `Charset` = 'utf8mb4' AND `Collation` = 'utf8mb4_bin'" => Show, [], REPLICA;
        "SELECT count(*) AS count_1 FROM (SELECT users.id AS users_id FROM users) AS anon_1" => Read, [], REPLICA;
        "WITH anon_1 AS (SELECT orders.customer_id AS customer_id, sum(orders.total) AS total FROM orders GROUP BY orders.customer_id) SELECT customers.name, anon_1.total FROM customers JOIN anon_1 ON customers.id = anon_1.customer_id"
            => Read, [], REPLICA;
        "SELECT users.id FROM users WHERE users.id = %s FOR UPDATE" => Read, [LOCKING_READ], PRIMARY;
        "SELECT users.id FROM users WHERE users.id = %s LOCK IN SHARE MODE" => Read, [LOCKING_READ], PRIMARY;
        "SELECT users.id FROM users WHERE users.id IN (__[POSTCOMPILE_id_1])" => Read, [], REPLICA;
        "ROLLBACK" => Rollback, [], PRIMARY;
        "XA START 'a0b1c2'" => Xa, [], PRIMARY;
        "SELECT users.name, count(addresses.id) AS count_1 FROM users LEFT OUTER JOIN addresses ON users.id = addresses.user_id GROUP BY users.name HAVING count(addresses.id) > %(count_2)s"
            => Read, [], REPLICA;
        "DELETE FROM addresses WHERE addresses.user_id = %(user_id_1)s" => Write, [], PRIMARY;
        "SELECT users.id FROM users WHERE (users.name LIKE concat('%%', %s, '%%'))" => Read, [], REPLICA;
    }
}

#[test]
fn rails_active_record() {
    expect_all! {
        "SELECT `users`.* FROM `users` WHERE `users`.`id` = 1 LIMIT 1" => Read, [], REPLICA;
        "SELECT 1 AS one FROM `users` WHERE `users`.`email` = BINARY 'a@b.c' LIMIT 1" => Read, [], REPLICA;
        "INSERT INTO `users` (`email`, `created_at`, `updated_at`) VALUES ('a@b.c', '2024-05-01 10:00:00', '2024-05-01 10:00:00')"
            => Write, [], PRIMARY;
        "UPDATE `posts` SET `posts`.`views` = COALESCE(`posts`.`views`, 0) + 1 WHERE `posts`.`id` = 1" => Write, [], PRIMARY;
        "DELETE FROM `comments` WHERE `comments`.`id` = 12" => Write, [], PRIMARY;
        "SET  @@SESSION.sql_mode = CONCAT(CONCAT(@@sql_mode, ',STRICT_ALL_TABLES'), ',NO_AUTO_VALUE_ON_ZERO'),  @@SESSION.sql_auto_is_null = 0, @@SESSION.wait_timeout = 2147483"
            => SetSession, [SYSVAR_READ], PRIMARY;
        "SET NAMES utf8mb4 COLLATE utf8mb4_unicode_ci" => SetNames, [], PRIMARY;
        "BEGIN" => Begin { read_only: false }, [], PRIMARY;
        "COMMIT" => Commit, [], PRIMARY;
        "SAVEPOINT active_record_1" => Savepoint, [], PRIMARY;
        "RELEASE SAVEPOINT active_record_1" => ReleaseSavepoint, [], PRIMARY;
        "ROLLBACK TO SAVEPOINT active_record_1" => RollbackToSavepoint, [], PRIMARY;
        "SELECT `schema_migrations`.`version` FROM `schema_migrations` ORDER BY `schema_migrations`.`version` ASC" => Read, [], REPLICA;
        "SELECT GET_LOCK('3011203926', 0)" => Read, [PRIMARY_FUNCTION | USES_GET_LOCK], PRIMARY;
        "SELECT RELEASE_LOCK('3011203926')" => Read, [PRIMARY_FUNCTION], PRIMARY;
        "SELECT `posts`.* FROM `posts` WHERE `posts`.`id` = 1 LIMIT 1 FOR UPDATE" => Read, [LOCKING_READ], PRIMARY;
        "SELECT COUNT(*) FROM `posts`" => Read, [], REPLICA;
        "SELECT `users`.* FROM `users` WHERE `users`.`id` IN (1, 2, 3)" => Read, [], REPLICA;
        "SELECT `users`.* FROM `users` /*application:Blog,controller:users,action:index*/" => Read, [], REPLICA;
        "SHOW FULL FIELDS FROM `users`" => Show, [], REPLICA;
        "SHOW CREATE TABLE `users`" => Show, [], REPLICA;
        "SELECT column_name FROM information_schema.statistics WHERE index_name = 'PRIMARY' AND table_schema = database() AND table_name = 'users' ORDER BY seq_in_index"
            => Read, [], REPLICA;
        "CREATE TABLE `ar_internal_metadata` (`key` varchar(255) NOT NULL PRIMARY KEY, `value` varchar(255), `created_at` datetime(6) NOT NULL, `updated_at` datetime(6) NOT NULL)"
            => Ddl, [], PRIMARY;
        "INSERT INTO `schema_migrations` (`version`) VALUES ('20240501100000')" => Write, [], PRIMARY;
    }
}

#[test]
fn laravel_eloquent() {
    expect_all! {
        "select * from `users` where `email` = ? and `users`.`deleted_at` is null limit 1" => Read, [], REPLICA;
        "insert into `users` (`name`, `email`, `updated_at`, `created_at`) values (?, ?, ?, ?)" => Write, [], PRIMARY;
        "update `users` set `remember_token` = ?, `users`.`updated_at` = ? where `id` = ?" => Write, [], PRIMARY;
        "select count(*) as aggregate from `posts` where `posts`.`user_id` = ? and `posts`.`user_id` is not null" => Read, [], REPLICA;
        "select * from `jobs` where `queue` = ? and ((`reserved_at` is null and `available_at` <= ?) or (`reserved_at` <= ?)) order by `id` asc limit 1 for update skip locked"
            => Read, [LOCKING_READ], PRIMARY;
        "select * from `cache_locks` where `key` = ? lock in share mode" => Read, [LOCKING_READ], PRIMARY;
        "set names 'utf8mb4' collate 'utf8mb4_unicode_ci'" => SetNames, [], PRIMARY;
        "set session sql_mode='ONLY_FULL_GROUP_BY,STRICT_TRANS_TABLES,NO_ZERO_IN_DATE,NO_ZERO_DATE,ERROR_FOR_DIVISION_BY_ZERO,NO_ENGINE_SUBSTITUTION'"
            => SetSession, [], PRIMARY;
        "select exists(select * from `users` where `email` = ?) as `exists`" => Read, [], REPLICA;
        "insert into `migrations` (`migration`, `batch`) values (?, ?)" => Write, [], PRIMARY;
        "create table `migrations` (`id` int unsigned not null auto_increment primary key, `migration` varchar(255) not null, `batch` int not null) default character set utf8mb4 collate 'utf8mb4_unicode_ci'"
            => Ddl, [], PRIMARY;
        "select * from information_schema.tables where table_schema = ? and table_name = ? and table_type = 'BASE TABLE'" => Read, [], REPLICA;
        "insert into `sessions` (`id`, `payload`, `last_activity`) values (?, ?, ?) on duplicate key update `payload` = values(`payload`), `last_activity` = values(`last_activity`)"
            => Write, [], PRIMARY;
        "delete from `password_reset_tokens` where `email` = ?" => Write, [], PRIMARY;
        "select `posts`.*, (select count(*) from `comments` where `posts`.`id` = `comments`.`post_id`) as `comments_count` from `posts`"
            => Read, [], REPLICA;
        "update `jobs` set `reserved_at` = ?, `attempts` = ? where `id` = ?" => Write, [], PRIMARY;
        "select max(`batch`) as aggregate from `migrations`" => Read, [], REPLICA;
        "truncate table `failed_jobs`" => Ddl, [], PRIMARY;
    }
}

#[test]
fn sequelize() {
    expect_all! {
        "SELECT `id`, `username`, `createdAt`, `updatedAt` FROM `Users` AS `User` WHERE `User`.`id` = 1;" => Read, [], REPLICA;
        "INSERT INTO `Users` (`id`,`username`,`createdAt`,`updatedAt`) VALUES (DEFAULT,?,?,?);" => Write, [], PRIMARY;
        "UPDATE `Users` SET `username`=?,`updatedAt`=? WHERE `id` = ?" => Write, [], PRIMARY;
        "DELETE FROM `Users` WHERE `id` = 5" => Write, [], PRIMARY;
        "START TRANSACTION;" => Begin { read_only: false }, [], PRIMARY;
        "SET SESSION TRANSACTION ISOLATION LEVEL REPEATABLE READ;" => SetTransaction, [SESSION_SCOPE], PRIMARY;
        "COMMIT;" => Commit, [], PRIMARY;
        "ROLLBACK;" => Rollback, [], PRIMARY;
        "SET autocommit = 1;" => SetAutocommit(true), [AUTOCOMMIT_ON], PRIMARY;
        "SHOW INDEX FROM `Users`" => Show, [], REPLICA;
        "SELECT TABLE_NAME, COLUMN_NAME, CONSTRAINT_NAME, REFERENCED_TABLE_NAME FROM INFORMATION_SCHEMA.KEY_COLUMN_USAGE WHERE TABLE_NAME = 'Users' AND CONSTRAINT_NAME != 'PRIMARY' AND CONSTRAINT_SCHEMA = 'app'"
            => Read, [], REPLICA;
        "SELECT 1+1 AS result" => Read, [], REPLICA;
        "CREATE TABLE IF NOT EXISTS `Users` (`id` INTEGER NOT NULL auto_increment , `username` VARCHAR(255), PRIMARY KEY (`id`)) ENGINE=InnoDB;"
            => Ddl, [], PRIMARY;
        "SELECT `User`.`id`, `Posts`.`id` AS `Posts.id` FROM `Users` AS `User` LEFT OUTER JOIN `Posts` AS `Posts` ON `User`.`id` = `Posts`.`userId`;"
            => Read, [], REPLICA;
        "SELECT `id` FROM `Users` AS `User` WHERE `User`.`id` = 1 FOR UPDATE;" => Read, [LOCKING_READ], PRIMARY;
        "SELECT `id` FROM `Users` AS `User` WHERE `User`.`id` = 1 LOCK IN SHARE MODE;" => Read, [LOCKING_READ], PRIMARY;
    }
}

#[test]
fn prisma() {
    expect_all! {
        "SELECT `app`.`User`.`id`, `app`.`User`.`email`, `app`.`User`.`name` FROM `app`.`User` WHERE `app`.`User`.`id` = ? LIMIT ? OFFSET ?"
            => Read, [], REPLICA;
        "INSERT INTO `app`.`User` (`email`,`name`) VALUES (?,?)" => Write, [], PRIMARY;
        "SELECT `app`.`Post`.`id`, `app`.`Post`.`authorId` FROM `app`.`Post` WHERE `app`.`Post`.`authorId` IN (?,?)" => Read, [], REPLICA;
        "UPDATE `app`.`Post` SET `published` = ? WHERE (`app`.`Post`.`id` = ? AND 1=1)" => Write, [], PRIMARY;
        "DELETE FROM `app`.`Post` WHERE (`app`.`Post`.`id` IN (?) AND 1=1)" => Write, [], PRIMARY;
        "BEGIN" => Begin { read_only: false }, [], PRIMARY;
        "COMMIT" => Commit, [], PRIMARY;
        "SET TRANSACTION ISOLATION LEVEL SERIALIZABLE" => SetTransaction, [], PRIMARY;
        "SELECT GET_LOCK(?, 10)" => Read, [PRIMARY_FUNCTION | USES_GET_LOCK], PRIMARY;
        "SELECT id, checksum, finished_at, migration_name FROM `_prisma_migrations` ORDER BY started_at ASC" => Read, [], REPLICA;
        "SELECT @@version, @@version_comment" => Read, [SYSVAR_READ], REPLICA;
        "SELECT COUNT(*) AS `_count._all` FROM (SELECT `app`.`User`.`id` FROM `app`.`User` WHERE 1=1 LIMIT ? OFFSET ?) AS `sub`"
            => Read, [], REPLICA;
    }
}

#[test]
fn gorm() {
    expect_all! {
        "SELECT * FROM `users` WHERE `users`.`deleted_at` IS NULL ORDER BY `users`.`id` LIMIT 1" => Read, [], REPLICA;
        "INSERT INTO `users` (`created_at`,`updated_at`,`deleted_at`,`name`,`age`) VALUES ('2024-05-01 10:00:00.123','2024-05-01 10:00:00.123',NULL,'jinzhu',18)"
            => Write, [], PRIMARY;
        "UPDATE `users` SET `deleted_at`='2024-05-01 10:00:00.123' WHERE `users`.`id` = 10 AND `users`.`deleted_at` IS NULL" => Write, [], PRIMARY;
        "SELECT * FROM `users` WHERE `users`.`id` = 10 AND `users`.`deleted_at` IS NULL ORDER BY `users`.`id` LIMIT 1 FOR UPDATE"
            => Read, [LOCKING_READ], PRIMARY;
        "SELECT * FROM `users` FOR SHARE OF `users`" => Read, [LOCKING_READ], PRIMARY;
        "SELECT count(*) FROM `users` WHERE name = 'jinzhu'" => Read, [], REPLICA;
        "SELECT DATABASE()" => Read, [], REPLICA;
        "SELECT SCHEMA_NAME from Information_schema.SCHEMATA where SCHEMA_NAME LIKE 'gorm%' ORDER BY SCHEMA_NAME='gorm' DESC,SCHEMA_NAME limit 1"
            => Read, [], REPLICA;
        "SELECT count(*) FROM information_schema.tables WHERE table_schema = 'gorm' AND table_name = 'users' AND table_type = 'BASE TABLE'"
            => Read, [], REPLICA;
        "SAVEPOINT sp0x140001c2a80" => Savepoint, [], PRIMARY;
        "ROLLBACK TO SAVEPOINT sp0x140001c2a80" => RollbackToSavepoint, [], PRIMARY;
        "INSERT INTO `users` (`name`) VALUES ('a') ON DUPLICATE KEY UPDATE `name`=VALUES(`name`)" => Write, [], PRIMARY;
        "CREATE TABLE `users` (`id` bigint unsigned AUTO_INCREMENT,`created_at` datetime(3) NULL,`name` longtext,PRIMARY KEY (`id`),INDEX `idx_users_deleted_at` (`deleted_at`))"
            => Ddl, [], PRIMARY;
        "SELECT * FROM `users` WHERE name IN ('jinzhu','jinzhu 2') AND `users`.`deleted_at` IS NULL" => Read, [], REPLICA;
    }
}

#[test]
fn jdbc_and_connector_init() {
    expect_all! {
        "/* mysql-connector-java-8.0.33 (Revision: 7d6b0800528b6b25c68b52dc10d6c1c8429c100c) */SELECT  @@session.auto_increment_increment AS auto_increment_increment, @@character_set_client AS character_set_client, @@character_set_connection AS character_set_connection, @@character_set_results AS character_set_results, @@character_set_server AS character_set_server, @@collation_server AS collation_server, @@collation_connection AS collation_connection, @@init_connect AS init_connect, @@interactive_timeout AS interactive_timeout, @@license AS license, @@lower_case_table_names AS lower_case_table_names, @@max_allowed_packet AS max_allowed_packet, @@net_write_timeout AS net_write_timeout, @@performance_schema AS performance_schema, @@sql_mode AS sql_mode, @@system_time_zone AS system_time_zone, @@time_zone AS time_zone, @@transaction_isolation AS transaction_isolation, @@wait_timeout AS wait_timeout"
            => Read, [SYSVAR_READ], REPLICA;
        "SET NAMES utf8mb4" => SetNames, [], PRIMARY;
        "SET character_set_results = NULL" => SetSession, [], PRIMARY;
        "SET autocommit=1" => SetAutocommit(true), [AUTOCOMMIT_ON], PRIMARY;
        "SET autocommit=0" => SetAutocommit(false), [AUTOCOMMIT_OFF], PRIMARY;
        "SELECT @@session.transaction_isolation" => Read, [SYSVAR_READ], REPLICA;
        "SELECT @@session.tx_read_only" => Read, [SYSVAR_READ], REPLICA;
        "SET SESSION TRANSACTION READ ONLY" => SetTransaction, [SESSION_SCOPE | READ_ONLY_TXN], PRIMARY;
        "SET SESSION TRANSACTION READ WRITE" => SetTransaction, [SESSION_SCOPE], PRIMARY;
        "SET SESSION TRANSACTION ISOLATION LEVEL READ COMMITTED" => SetTransaction, [SESSION_SCOPE], PRIMARY;
        "SHOW WARNINGS" => Show, [LAST_STATEMENT_INFO], REPLICA;
        "SET sql_mode='STRICT_TRANS_TABLES'" => SetSession, [], PRIMARY;
        "SHOW VARIABLES WHERE Variable_name ='language' OR Variable_name = 'net_write_timeout' OR Variable_name = 'interactive_timeout'"
            => Show, [], REPLICA;
        "/* ping */ SELECT 1" => Read, [], REPLICA;
        // MariaDB Connector/J: autocommit mixed with other settings in one SET.
        "set autocommit=1, sql_mode = concat(@@sql_mode,',STRICT_TRANS_TABLES'), session_track_schema=1, session_track_system_variables='auto_increment_increment,autocommit'"
            => SetSession, [SYSVAR_READ | AUTOCOMMIT_ON], PRIMARY;
        "SELECT @@max_allowed_packet,@@system_time_zone,@@time_zone,@@auto_increment_increment" => Read, [SYSVAR_READ], REPLICA;
        // mysql-connector-python
        "SET NAMES 'utf8mb4' COLLATE 'utf8mb4_general_ci'" => SetNames, [], PRIMARY;
        "SET @@session.autocommit = OFF" => SetAutocommit(false), [AUTOCOMMIT_OFF], PRIMARY;
        // PyMySQL / mysqlclient
        "SET AUTOCOMMIT = 0" => SetAutocommit(false), [AUTOCOMMIT_OFF], PRIMARY;
        // go-sql-driver/mysql
        "SELECT @@max_allowed_packet" => Read, [SYSVAR_READ], REPLICA;
        // node mysql2
        "SELECT 1 + 1 AS solution" => Read, [], REPLICA;
        "SELECT LAST_INSERT_ID()" => Read, [PRIMARY_FUNCTION], PRIMARY;
        "SELECT CONNECTION_ID()" => Read, [], REPLICA;
    }
}

#[test]
fn phpmyadmin() {
    expect_all! {
        "SELECT CURRENT_USER();" => Read, [], REPLICA;
        "SHOW SESSION VARIABLES LIKE 'FOREIGN_KEY_CHECKS';" => Show, [], REPLICA;
        "SELECT @@lower_case_table_names" => Read, [SYSVAR_READ], REPLICA;
        "SHOW MASTER LOGS" => Show, [SERVER_STATE], PRIMARY;
        "SHOW SLAVE STATUS" => Show, [SERVER_STATE], PRIMARY;
        "SELECT * FROM `shop`.`orders` LIMIT 0, 25" => Read, [], REPLICA;
        "SHOW TABLE STATUS FROM `shop`" => Show, [], REPLICA;
        "SELECT `SCHEMA_NAME` FROM `INFORMATION_SCHEMA`.`SCHEMATA`, (SELECT DB_first_level FROM ( SELECT DISTINCT SUBSTRING_INDEX(SCHEMA_NAME, '_', 1) DB_first_level FROM INFORMATION_SCHEMA.SCHEMATA WHERE TRUE ) t ORDER BY DB_first_level ASC LIMIT 0, 100) t2 WHERE TRUE AND 1 = LOCATE(CONCAT(DB_first_level, '_'), CONCAT(SCHEMA_NAME, '_')) ORDER BY SCHEMA_NAME ASC"
            => Read, [], REPLICA;
        "SET SQL_QUOTE_SHOW_CREATE = 1" => SetSession, [], PRIMARY;
        "SHOW GRANTS" => Show, [], REPLICA;
        "SHOW PROCESSLIST" => Show, [SERVER_STATE], PRIMARY;
        "SHOW FULL PROCESSLIST" => Show, [SERVER_STATE], PRIMARY;
        "SELECT `PRIVILEGE_TYPE` FROM `INFORMATION_SCHEMA`.`SCHEMA_PRIVILEGES` WHERE GRANTEE='''root''@''localhost''' AND PRIVILEGE_TYPE='CREATE USER'"
            => Read, [], REPLICA;
        "SHOW BINARY LOGS" => Show, [SERVER_STATE], PRIMARY;
        "KILL 42" => Kill, [], PRIMARY;
        "FLUSH PRIVILEGES" => Other, [], PRIMARY;
        "SHOW ENGINES" => Show, [], REPLICA;
        "SELECT 1 FROM `mysql`.`user` LIMIT 1" => Read, [], REPLICA;
        "SELECT SQL_CALC_FOUND_ROWS * FROM `shop`.`orders` LIMIT 0, 25" => Read, [CALC_FOUND_ROWS], PRIMARY;
        "SELECT FOUND_ROWS()" => Read, [PRIMARY_FUNCTION | LAST_STATEMENT_INFO], PRIMARY;
        "SHOW FULL TABLES FROM `shop`" => Show, [], REPLICA;
        "SHOW GRANTS FOR 'app'@'%'" => Show, [], REPLICA;
    }
}
