#!/bin/bash
# Runs once on the primary's first start: the accounts rwproxy and the replicas use.
set -euo pipefail
mariadb -uroot -p"$MARIADB_ROOT_PASSWORD" <<SQL
CREATE DATABASE IF NOT EXISTS app;
CREATE USER IF NOT EXISTS 'app'@'%' IDENTIFIED BY '${APP_DB_PASSWORD}';
GRANT ALL ON app.* TO 'app'@'%';
CREATE USER IF NOT EXISTS 'monitor'@'%' IDENTIFIED BY '${MONITOR_PASSWORD}';
GRANT PROCESS, BINLOG MONITOR, SLAVE MONITOR ON *.* TO 'monitor'@'%';
GRANT SELECT ON mysql.global_priv TO 'monitor'@'%';
CREATE USER IF NOT EXISTS 'repl'@'%' IDENTIFIED BY '${REPL_PASSWORD}';
GRANT REPLICATION SLAVE ON *.* TO 'repl'@'%';
SQL
