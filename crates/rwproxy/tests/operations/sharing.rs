//! Connection sharing (issue #15): live sessions take turns on the same backend connection,
//! with `pool.max_per_backend: 1` so that every statement of every session of a test's account
//! runs on one server connection. Each test catches one way state could leak from one session
//! to another: what each session sees is compared with what a direct connection in the same
//! state sees.

use std::time::Duration;

use mysql_async::prelude::Queryable;
use mysql_async::Conn;
use rwproxy_testkit::metrics::series;

use crate::pool::{account, direct, events, start, threads, user, via};
use crate::support::{scrape, shared, unique_table};

/// One connection per backend, shared by every session; a statement waits up to 5 s for it.
const SHARED: &str = "{ enabled: true, max_per_backend: 1, wait_timeout: 5s }";

/// What a session can see of its movable state.
const SETTINGS: &str = "SELECT @@session.time_zone, @@session.sql_mode, DATABASE(), \
     @@session.character_set_client, @@session.collation_connection, @@session.tx_isolation, \
     @v, @@session.autocommit";

async fn settings(conn: &mut Conn) -> Vec<mysql_async::Value> {
    let row: mysql_async::Row = conn.query_first(SETTINGS).await.unwrap().unwrap();
    row.unwrap()
}

async fn run_all(conn: &mut Conn, statements: &[&str]) {
    for sql in statements {
        if let Err(e) = conn.query_drop(*sql).await {
            panic!("{sql}: {e}");
        }
    }
}

/// `rwproxy_pool_pinned_sessions{reason}` once it equals `want` (it is updated right after a
/// reply is sent, so a client may ask a moment before), or its value after 5 s.
async fn pinned(proxy: &rwproxy_testkit::ProxyProcess, reason: &str, want: f64) -> f64 {
    let deadline = std::time::Instant::now() + Duration::from_secs(5);
    loop {
        let text = scrape(proxy, None).await;
        let now =
            series(&text, "rwproxy_pool_pinned_sessions", &[("reason", reason)]).unwrap_or(0.0);
        if now == want || std::time::Instant::now() >= deadline {
            return now;
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn interleaved_sessions_each_keep_their_own_settings() {
    let creds = account("share_settings").await;
    let proxy = start(vec![user(&creds)], SHARED);
    let a_settings = [
        "SET time_zone = '+05:00'",
        "SET sql_mode = 'ANSI_QUOTES'",
        "SET NAMES latin1",
        "SET SESSION TRANSACTION ISOLATION LEVEL SERIALIZABLE",
        "SET @v = 1",
    ];
    let b_settings = [
        "SET time_zone = '-03:00'",
        "SET sql_mode = 'STRICT_TRANS_TABLES,NO_ZERO_DATE'",
        "SET NAMES utf8mb4 COLLATE utf8mb4_unicode_ci",
        "SET SESSION TRANSACTION ISOLATION LEVEL READ COMMITTED",
        "SET @v = 2",
        "SET autocommit = 0",
        "USE information_schema",
    ];
    // The same settings on direct connections: what each session must see.
    let mut direct_a = direct(&creds, Some("app")).await;
    run_all(&mut direct_a, &a_settings).await;
    let mut direct_b = direct(&creds, Some("app")).await;
    run_all(&mut direct_b, &b_settings).await;
    let want_a = settings(&mut direct_a).await;
    let want_b = settings(&mut direct_b).await;
    assert_ne!(want_a, want_b);
    drop((direct_a, direct_b));

    let mut a = via(&proxy, &creds, Some("app")).await;
    let mut b = via(&proxy, &creds, Some("app")).await;
    let mut plain = via(&proxy, &creds, Some("app")).await;
    let want_plain = settings(&mut direct(&creds, Some("app")).await).await;
    run_all(&mut a, &a_settings).await;
    run_all(&mut b, &b_settings).await;
    // autocommit = 0: b's reads open a transaction, ended each time so it lends again.
    for round in 0..10 {
        assert_eq!(settings(&mut a).await, want_a, "session a, round {round}");
        assert_eq!(settings(&mut b).await, want_b, "session b, round {round}");
        b.query_drop("COMMIT").await.unwrap();
        assert_eq!(
            settings(&mut plain).await,
            want_plain,
            "session without settings, round {round}"
        );
    }
    assert_eq!(
        threads("share_settings").await,
        1,
        "every session ran on the one shared server connection"
    );
    assert!(
        events(&proxy, "restored").await >= 10.0,
        "the shared connection was reset and given each session's settings"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn temporary_tables_and_user_variables_keep_the_connection() {
    let creds = account("share_pins").await;
    let proxy = start(
        vec![user(&creds)],
        "{ enabled: true, max_per_backend: 1, wait_timeout: 400ms }",
    );
    let mut a = via(&proxy, &creds, Some("app")).await;
    let mut b = via(&proxy, &creds, Some("app")).await;
    a.query_drop("CREATE TEMPORARY TABLE share_tmp (x INT)")
        .await
        .unwrap();
    assert_eq!(pinned(&proxy, "temporary_tables", 1.0).await, 1.0);
    assert_eq!(pinned_connections(&proxy).await, (1.0, 1));
    // The one connection is a's: b waits, then gets 1040.
    let err = b.query_drop("SELECT 1").await.unwrap_err();
    assert!(err.to_string().contains("1040"), "{err}");
    a.query_drop("INSERT INTO share_tmp VALUES (7)")
        .await
        .unwrap();
    let x: Option<i64> = a.query_first("SELECT x FROM share_tmp").await.unwrap();
    assert_eq!(x, Some(7));
    a.query_drop("DROP TEMPORARY TABLE share_tmp")
        .await
        .unwrap();
    assert_eq!(pinned(&proxy, "temporary_tables", 0.0).await, 0.0);
    assert_eq!(pinned_connections(&proxy).await, (0.0, 0));
    b.query_drop("SELECT 1").await.unwrap();

    // A user variable assigned in a statement (not a SET, which moves with the session).
    let v: Option<i64> = a.query_first("SELECT @w := 5").await.unwrap();
    assert_eq!(v, Some(5));
    assert_eq!(pinned(&proxy, "user_variables", 1.0).await, 1.0);
    let err = b.query_drop("SELECT 2").await.unwrap_err();
    assert!(err.to_string().contains("1040"), "{err}");
    let w: Option<i64> = a.query_first("SELECT @w").await.unwrap();
    assert_eq!(w, Some(5));
    drop(a);
    // a's session ended: its connection was reset for the next one.
    tokio::time::sleep(Duration::from_millis(200)).await;
    let w: Option<Option<i64>> = b.query_first("SELECT @w").await.unwrap();
    assert_eq!(w, Some(None), "a's user variable on b's statement");
    assert_eq!(pinned(&proxy, "user_variables", 0.0).await, 0.0);
    assert_eq!(
        pinned_connections(&proxy).await,
        (0.0, 0),
        "a's session ended"
    );
}

/// db1's connections held by pinned sessions: the gauge and `/backends`' `pool.pinned`.
async fn pinned_connections(proxy: &rwproxy_testkit::ProxyProcess) -> (f64, u64) {
    let text = scrape(proxy, None).await;
    let gauge = series(
        &text,
        "rwproxy_backend_pool_pinned_connections",
        &[("backend", "db1")],
    )
    .unwrap_or(-1.0);
    let doc = rwproxy_testkit::backends_doc::backends(proxy)
        .await
        .unwrap();
    let pinned = doc["backends"]
        .as_array()
        .and_then(|b| b.iter().find(|b| b["name"] == "db1"))
        .and_then(|b| b["pool"]["pinned"].as_u64())
        .unwrap_or(u64::MAX);
    (gauge, pinned)
}

/// `LAST_INSERT_ID()`, `ROW_COUNT()`, `FOUND_ROWS()` and `SHOW WARNINGS` after another
/// session's statements ran on the same connection: each session sees its own, as directly.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn each_session_sees_its_own_insert_id_row_count_and_found_rows() {
    let creds = account("share_diag").await;
    let table = unique_table("share_diag");
    let proxy = start(vec![user(&creds)], SHARED);
    let mut setup = direct(&creds, Some("app")).await;
    setup
        .query_drop(format!(
            "CREATE TABLE {table} (id INT AUTO_INCREMENT PRIMARY KEY, v INT)"
        ))
        .await
        .unwrap();
    let mut a = via(&proxy, &creds, Some("app")).await;
    let mut b = via(&proxy, &creds, Some("app")).await;

    a.query_drop(format!("INSERT INTO {table} (v) VALUES (1), (1), (1)"))
        .await
        .unwrap();
    let a_id: Option<u64> = a.query_first("SELECT LAST_INSERT_ID()").await.unwrap();
    b.query_drop(format!("INSERT INTO {table} (v) VALUES (2)"))
        .await
        .unwrap();
    let b_id: Option<u64> = b.query_first("SELECT LAST_INSERT_ID()").await.unwrap();
    assert_ne!(a_id, b_id);
    // a again, after b's insert on the same connection.
    let again: (Option<u64>, Option<u64>) = a
        .query_first("SELECT LAST_INSERT_ID(), @@identity")
        .await
        .unwrap()
        .unwrap();
    assert_eq!(again, (a_id, a_id), "a's insert id after b's insert");

    // ROW_COUNT(): a's UPDATE, then b's SELECT on the connection, then a asks.
    a.query_drop(format!("UPDATE {table} SET v = 10 WHERE v = 1"))
        .await
        .unwrap();
    b.query_drop(format!("SELECT * FROM {table}"))
        .await
        .unwrap();
    let rc: Option<i64> = a.query_first("SELECT ROW_COUNT()").await.unwrap();
    assert_eq!(rc, Some(3), "a's ROW_COUNT() after b's SELECT");
    // FOUND_ROWS(): rows of a's last SELECT, not of b's.
    a.query_drop(format!("SELECT * FROM {table} WHERE v = 10"))
        .await
        .unwrap();
    b.query_drop(format!("SELECT * FROM {table} LIMIT 1"))
        .await
        .unwrap();
    let (found, rc): (Option<u64>, Option<i64>) = a
        .query_first("SELECT FOUND_ROWS(), ROW_COUNT()")
        .await
        .unwrap()
        .unwrap();
    assert_eq!((found, rc), (Some(3), Some(-1)));

    // Warnings: the server keeps them until a statement that uses a table, so a keeps the
    // connection until then (a statement without a table, like SHOW WARNINGS, reads them
    // again); b's statement meanwhile waits for it.
    a.query_drop(format!("INSERT IGNORE INTO {table} (id, v) VALUES (1, 0)"))
        .await
        .unwrap();
    let b_task = tokio::spawn(async move {
        let one: Option<i64> = b.query_first("SELECT 1").await.unwrap();
        (b, one)
    });
    tokio::time::sleep(Duration::from_millis(100)).await;
    for _ in 0..2 {
        let warnings: Vec<(String, u32, String)> = a.query("SHOW WARNINGS").await.unwrap();
        assert_eq!(warnings.len(), 1, "{warnings:?}");
        assert_eq!(warnings[0].1, 1062);
        let one: Option<i64> = a.query_first("SELECT 1").await.unwrap();
        assert_eq!(one, Some(1));
    }
    assert_eq!(pinned(&proxy, "diagnostics", 1.0).await, 1.0);
    assert!(
        !b_task.is_finished(),
        "b ran while a's warnings were on the connection"
    );
    a.query_drop(format!("SELECT COUNT(*) FROM {table}"))
        .await
        .unwrap();
    let (mut b, one) = b_task.await.unwrap();
    assert_eq!(one, Some(1));
    // b's statement had no warning: none shows, whoever ran before on the connection.
    let warnings: Vec<(String, u32, String)> = b.query("SHOW WARNINGS").await.unwrap();
    assert!(warnings.is_empty(), "{warnings:?}");
    assert_eq!(threads("share_diag").await, 2, "one shared, one direct");
    setup
        .query_drop(format!("DROP TABLE {table}"))
        .await
        .unwrap();
}

/// Global `Prepared_stmt_count` of the primary.
async fn prepared_count() -> i64 {
    let rows = shared()
        .admin_rows(0, "SHOW GLOBAL STATUS LIKE 'Prepared_stmt_count'")
        .await
        .unwrap();
    rows.first()
        .and_then(|r| r.get::<String, _>(1))
        .and_then(|v| v.parse().ok())
        .expect("a Prepared_stmt_count row")
}

/// 100 sessions prepare 500 distinct statements and keep them open; every execute answers
/// right (statements are prepared again where a session runs), and the server holds a bounded
/// number of them.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn prepared_statements_of_many_sessions_stay_bounded() {
    const SESSIONS: usize = 100;
    const PER_SESSION: usize = 5;
    let creds = account("share_prep").await;
    let proxy = start(vec![user(&creds)], SHARED);
    let before = prepared_count().await;
    let mut sessions = Vec::new();
    for s in 0..SESSIONS {
        let mut conn = via(&proxy, &creds, Some("app")).await;
        let mut stmts = Vec::new();
        for k in 0..PER_SESSION {
            let n = s * PER_SESSION + k;
            let stmt = conn.prep(format!("SELECT ? + {n} AS n{n}")).await.unwrap();
            let got: Option<i64> = conn.exec_first(&stmt, (1,)).await.unwrap();
            assert_eq!(got, Some(n as i64 + 1));
            stmts.push((n, stmt));
        }
        sessions.push((conn, stmts));
    }
    // Every session again, after the others filled the connection's cache.
    for (conn, stmts) in &mut sessions {
        for (n, stmt) in stmts.iter() {
            let got: Option<i64> = conn.exec_first(stmt, (2,)).await.unwrap();
            assert_eq!(got, Some(*n as i64 + 2));
        }
    }
    let grown = prepared_count().await - before;
    assert!(
        grown <= 256 + 20,
        "Prepared_stmt_count grew by {grown} for {} open statements",
        SESSIONS * PER_SESSION
    );
    assert!(events(&proxy, "reprepared").await >= (SESSIONS * PER_SESSION) as f64);
    assert_eq!(threads("share_prep").await, 1);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn reset_connection_and_change_user_between_sessions() {
    let creds = account("share_reset").await;
    let other = account("share_reset_b").await;
    let proxy = start(vec![user(&creds), user(&other)], SHARED);
    let mut a = via(&proxy, &creds, Some("app")).await;
    let mut b = via(&proxy, &creds, Some("app")).await;
    run_all(&mut a, &["SET time_zone = '+07:00'", "SET @v = 7"]).await;
    run_all(&mut b, &["SET time_zone = '+08:00'", "SET @v = 8"]).await;
    a.reset().await.unwrap();
    let want_fresh = settings(&mut direct(&creds, Some("app")).await).await;
    assert_eq!(
        settings(&mut a).await,
        want_fresh,
        "a after COM_RESET_CONNECTION"
    );
    let tz: Option<String> = b.query_first("SELECT @@session.time_zone").await.unwrap();
    assert_eq!(tz.as_deref(), Some("+08:00"), "b untouched by a's reset");
    b.change_user(
        mysql_async::ChangeUserOpts::default()
            .with_user(Some(other.user.clone()))
            .with_pass(Some(other.password.clone()))
            .with_db_name(Some("app".to_string())),
    )
    .await
    .unwrap();
    let (who, v, tz): (String, Option<i64>, String) = b
        .query_first("SELECT CURRENT_USER(), @v, @@session.time_zone")
        .await
        .unwrap()
        .unwrap();
    assert_eq!((who.as_str(), v), ("share_reset_b@%", None));
    assert_ne!(
        tz, "+08:00",
        "b's settings are gone with its change of user"
    );
    let v: Option<Option<i64>> = a.query_first("SELECT @v").await.unwrap();
    assert_eq!(v, Some(None));
}

/// `KILL QUERY` aimed at one session, sent over and over while that session and another take
/// turns with short statements on the one shared server connection: a kill that arrives just
/// as the target's statement ends must not interrupt the other session's statement, which may
/// already run on that thread. rwproxy marks the thread before the kill is sent and never lends
/// a marked connection (it is closed instead); without the mark the bystander is interrupted.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_kill_aimed_at_one_session_never_interrupts_another_on_the_shared_connection() {
    use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
    use std::sync::Arc;

    let creds = account("share_kill").await;
    // The statements read a table: an interrupted one leaves an error that only a statement
    // with a table clears, and until then the session keeps its connection.
    let table = unique_table("share_kill");
    let mut setup = direct(&creds, Some("app")).await;
    setup
        .query_drop(format!(
            "CREATE TABLE {table} (id INT PRIMARY KEY); INSERT INTO {table} VALUES (1)"
        ))
        .await
        .unwrap();
    let proxy = start(vec![user(&creds)], SHARED);
    let mut target = via(&proxy, &creds, Some("app")).await;
    let id: u64 = target
        .query_first("SELECT CONNECTION_ID()")
        .await
        .unwrap()
        .expect("a connection id");
    let stop = Arc::new(AtomicBool::new(false));
    // A short statement: interrupted, MariaDB answers 1317 (or SLEEP() returns 1).
    let sql = format!("SELECT SLEEP(0.002) FROM {table}");
    async fn short(conn: &mut Conn, sql: &str) -> Result<bool, mysql_async::Error> {
        match conn.query_first::<i64, _>(sql).await {
            Ok(v) => Ok(v == Some(1)),
            Err(mysql_async::Error::Server(e)) if e.code == 1317 => Ok(true),
            Err(e) => Err(e),
        }
    }
    let target_hit = Arc::new(AtomicU64::new(0));
    let target_task = {
        let (stop, hit, sql) = (stop.clone(), target_hit.clone(), sql.clone());
        tokio::spawn(async move {
            while !stop.load(Ordering::Relaxed) {
                if short(&mut target, &sql).await.unwrap() {
                    hit.fetch_add(1, Ordering::Relaxed);
                }
            }
        })
    };
    let mut bystander = via(&proxy, &creds, Some("app")).await;
    let bystander_task = {
        let stop = stop.clone();
        tokio::spawn(async move {
            let (mut ran, mut interrupted) = (0u64, 0u64);
            while !stop.load(Ordering::Relaxed) {
                ran += 1;
                if short(&mut bystander, &sql).await.unwrap() {
                    interrupted += 1;
                }
            }
            (ran, interrupted)
        })
    };
    let mut killer = via(&proxy, &creds, Some("app")).await;
    for _ in 0..300 {
        killer.query_drop(format!("KILL QUERY {id}")).await.unwrap();
        tokio::time::sleep(Duration::from_millis(2)).await;
    }
    stop.store(true, Ordering::Relaxed);
    target_task.await.unwrap();
    let (ran, interrupted) = bystander_task.await.unwrap();
    println!(
        "target interrupted {} times; bystander ran {ran} statements",
        target_hit.load(Ordering::Relaxed)
    );
    assert!(
        target_hit.load(Ordering::Relaxed) > 0,
        "no kill reached the target"
    );
    assert!(ran > 50, "the bystander ran only {ran} statements");
    assert_eq!(
        interrupted, 0,
        "a kill meant for session {id} interrupted another session's statement"
    );
    setup
        .query_drop(format!("DROP TABLE {table}"))
        .await
        .unwrap();
}
