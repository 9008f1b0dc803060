//! Sessions across a change of primary made elsewhere (`cluster.sh promote`, as an operator or
//! an orchestrator does it): idle sessions — plain, with session state (`SET`, `USE`), with a
//! prepared statement — all succeed on their next statement, which runs on the new primary
//! with the session's state, after an external switchover and after `kill -9` of the primary
//! plus a promotion (issue #16).

use mysql_async::prelude::Queryable;
use mysql_async::Conn;
use rwproxy_testkit::{ProxyProcess, TestSignal, ThrowawayCluster};

use crate::support::*;

const CLUSTER: &str = "fo-continuity";
const BASE_PORT: u16 = 3515;

struct Idle {
    plain: Conn,
    stateful: Conn,
    prepared: Conn,
    stmt: mysql_async::Statement,
}

async fn open_sessions(proxy: &ProxyProcess, cluster: &ThrowawayCluster) -> Idle {
    let plain = app_via(proxy, cluster).await;
    let mut stateful = app_via(proxy, cluster).await;
    stateful
        .query_drop("SET SESSION time_zone = '+02:00', SESSION sql_mode = 'ANSI_QUOTES'")
        .await
        .unwrap();
    stateful.query_drop("USE app").await.unwrap();
    let mut prepared = app_via(proxy, cluster).await;
    let stmt = prepared
        .prep("INSERT INTO t_continuity (who, server) VALUES (?, @@server_id)")
        .await
        .unwrap();
    Idle {
        plain,
        stateful,
        prepared,
        stmt,
    }
}

/// The next statement of every idle session: each must succeed on the primary `server_id`.
async fn next_statements(idle: &mut Idle, proxy: &ProxyProcess, primary: u32, round: &str) {
    let tail = |e: &dyn std::fmt::Display| {
        format!("{round}: {e}\n--- proxy log ---\n{}", proxy.log_tail(30))
    };
    idle.plain
        .query_drop(format!(
            "INSERT INTO t_continuity (who, server) VALUES ('plain {round}', @@server_id)"
        ))
        .await
        .unwrap_or_else(|e| panic!("{}", tail(&e)));
    let state: Option<(String, String, u32)> = idle
        .stateful
        .query_first(format!(
            "INSERT INTO t_continuity (who, server) VALUES ('stateful {round}', @@server_id) \
             RETURNING @@time_zone, @@sql_mode, @@server_id"
        ))
        .await
        .unwrap_or_else(|e| panic!("{}", tail(&e)));
    assert_eq!(
        state,
        Some(("+02:00".to_string(), "ANSI_QUOTES".to_string(), primary)),
        "{round}: the session's state on the new primary"
    );
    idle.prepared
        .exec_drop(&idle.stmt, (format!("prepared {round}"),))
        .await
        .unwrap_or_else(|e| panic!("{}", tail(&e)));
}

async fn rows_written_on(
    cluster: &ThrowawayCluster,
    node: usize,
    round: &str,
) -> Vec<(String, u32)> {
    cluster
        .admin_rows(
            node,
            &format!(
                "SELECT who, server FROM app.t_continuity WHERE who LIKE '% {round}' ORDER BY who"
            ),
        )
        .await
        .unwrap()
        .into_iter()
        .map(mysql_async::from_row::<(String, u32)>)
        .collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn idle_sessions_continue_on_the_new_primary_after_external_switches() {
    let _serial = serial().await;
    let cluster = throwaway(CLUSTER, BASE_PORT);
    admin_exec(
        &cluster,
        0,
        "CREATE TABLE app.t_continuity (id INT AUTO_INCREMENT PRIMARY KEY, who VARCHAR(64), server INT)",
    )
    .await;
    let proxy = start_proxy(&fast_yaml(&cluster, "")).await;
    let mut idle = open_sessions(&proxy, &cluster).await;
    next_statements(&mut idle, &proxy, 1, "before").await;

    // 1. A planned switchover done outside rwproxy: node1 (db2) becomes the primary.
    tokio::task::block_in_place(|| cluster.promote(1)).unwrap();
    wait_primary(&proxy, "db2").await;
    next_statements(&mut idle, &proxy, 2, "switchover").await;
    let rows = rows_written_on(&cluster, 1, "switchover").await;
    assert_eq!(rows.len(), 3, "{rows:?}");
    assert!(rows.iter().all(|(_, server)| *server == 2), "{rows:?}");

    // 2. The primary dies (kill -9) and node2 (db3) is promoted.
    signal_node(&cluster, 1, TestSignal::Kill);
    tokio::task::block_in_place(|| cluster.promote(2)).unwrap();
    wait_primary(&proxy, "db3").await;
    next_statements(&mut idle, &proxy, 3, "failover").await;
    let rows = rows_written_on(&cluster, 2, "failover").await;
    assert_eq!(rows.len(), 3, "{rows:?}");
    assert!(rows.iter().all(|(_, server)| *server == 3), "{rows:?}");
}

/// A session with state that cannot move (a temporary table, a user variable) is told, on its
/// next statement after the primary changed or restarted, what it lost, and is closed — never
/// a "table doesn't exist" from a server that never saw the table. Sessions without such state
/// continue.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sessions_with_state_that_cannot_move_are_told_what_was_lost() {
    let _serial = serial().await;
    let cluster = throwaway("fo-pinned", 3521);
    let proxy = start_proxy(&fast_yaml(&cluster, "")).await;
    let mut plain = app_via(&proxy, &cluster).await;
    plain.query_drop("SELECT 1").await.unwrap();
    let mut temp = app_via(&proxy, &cluster).await;
    temp.query_drop("CREATE TEMPORARY TABLE tt (id INT)")
        .await
        .unwrap();
    temp.query_drop("INSERT INTO tt VALUES (1)").await.unwrap();
    let mut uservar = app_via(&proxy, &cluster).await;
    uservar.query_drop("SELECT @picked := 42").await.unwrap();

    // 1. The primary moves elsewhere.
    tokio::task::block_in_place(|| cluster.promote(1)).unwrap();
    wait_primary(&proxy, "db2").await;
    for (conn, what) in [
        (&mut temp, "temporary tables"),
        (&mut uservar, "user variables"),
    ] {
        let err = match conn.query_drop("SELECT 1").await {
            Err(mysql_async::Error::Server(e)) => e,
            other => panic!(
                "expected ERR 1927 naming {what}, got {other:?}\n{}",
                proxy.log_tail(20)
            ),
        };
        assert_eq!((err.code, err.state.as_str()), (1927, "70100"), "{err:?}");
        assert!(err.message.contains(what), "{}", err.message);
        assert!(
            err.message.contains("no longer the primary"),
            "{}",
            err.message
        );
        assert!(
            conn.query_drop("SELECT 1").await.is_err(),
            "the session must be closed"
        );
    }
    plain.query_drop("SELECT 1").await.unwrap();

    // 2. The primary restarts: the connection holding the temporary table is gone.
    let mut temp = app_via(&proxy, &cluster).await;
    temp.query_drop("CREATE TEMPORARY TABLE tt2 (id INT)")
        .await
        .unwrap();
    signal_node(&cluster, 1, rwproxy_testkit::TestSignal::Kill);
    let mut attempt = 0;
    while let Err(e) = tokio::task::block_in_place(|| cluster.up()) {
        attempt += 1;
        assert!(attempt < 5, "restarting node1: {e}");
        tokio::time::sleep(secs(2)).await;
    }
    let settled = wait_backends(&proxy, "db2 up and primary again", secs(30), |b| {
        primary_name(b).as_deref() == Some("db2") && state_of(b, "db2").as_deref() == Some("up")
    })
    .await;
    assert!(settled.is_ok(), "{settled:?}");
    let err = match temp.query_drop("SELECT * FROM tt2").await {
        Err(mysql_async::Error::Server(e)) => e,
        other => panic!(
            "expected an error naming the lost table, got {other:?}\n{}",
            proxy.log_tail(20)
        ),
    };
    assert_ne!(
        err.code, 1146,
        "a 'table doesn't exist' from a server that never saw it: {err:?}"
    );
    assert!(err.message.contains("temporary tables"), "{}", err.message);
    assert!(
        temp.query_drop("SELECT 1").await.is_err(),
        "the session must be closed"
    );
    plain.query_drop("SELECT 1").await.unwrap();
}

/// The primary dies under a write load and another is promoted a second later (issue #16 item
/// 2): statements that were in flight on the dead primary get 2013 (their outcome is unknown);
/// statements sent after it wait for the new primary and run there — none gets "cannot
/// connect" (2003).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn writes_during_a_failover_wait_for_the_new_primary() {
    use std::sync::atomic::{AtomicBool, Ordering};
    use std::sync::{Arc, Mutex};

    let _serial = serial().await;
    let cluster = throwaway("fo-window", 3530);
    admin_exec(
        &cluster,
        0,
        "CREATE TABLE app.t_window (id INT AUTO_INCREMENT PRIMARY KEY, client INT, server INT)",
    )
    .await;
    let yaml = fast_yaml(&cluster, "  write_wait_timeout: 5s\n");
    let proxy = start_proxy(&yaml).await;
    let stop = Arc::new(AtomicBool::new(false));
    let errors = Arc::new(Mutex::new(Vec::<(u16, String)>::new()));
    let mut tasks = Vec::new();
    const CLIENTS: usize = 4;
    for client in 0..CLIENTS {
        let mut conn = app_via(&proxy, &cluster).await;
        let (stop, errors) = (stop.clone(), errors.clone());
        tasks.push(tokio::spawn(async move {
            let mut ok_after = 0u32;
            while !stop.load(Ordering::Relaxed) {
                let r = conn
                    .query_drop(format!(
                        "INSERT INTO t_window (client, server) VALUES ({client}, @@server_id)"
                    ))
                    .await;
                match r {
                    Ok(()) => ok_after += 1,
                    Err(mysql_async::Error::Server(e)) => {
                        errors.lock().unwrap().push((e.code, e.message))
                    }
                    Err(e) => {
                        // The client library gave the connection up: this client stops.
                        errors.lock().unwrap().push((0, e.to_string()));
                        return ok_after;
                    }
                }
            }
            ok_after
        }));
    }
    tokio::time::sleep(ms(700)).await;
    signal_node(&cluster, 0, rwproxy_testkit::TestSignal::Kill);
    tokio::time::sleep(ms(1000)).await;
    tokio::task::block_in_place(|| cluster.promote(1)).unwrap();
    wait_primary(&proxy, "db2").await;
    tokio::time::sleep(ms(700)).await;
    stop.store(true, Ordering::Relaxed);
    let mut total = 0;
    for t in tasks {
        total += t.await.unwrap();
    }
    let errors = errors.lock().unwrap().clone();
    println!("{total} writes succeeded; errors: {errors:?}");
    assert!(
        errors.iter().all(|(code, _)| *code == 1927 || *code == 0),
        "only statements in flight at the kill may fail (1927, 08S01): {errors:#?}\n{}",
        proxy.log_tail(30)
    );
    assert!(
        errors.len() <= CLIENTS,
        "more failures than statements in flight: {errors:#?}"
    );
    let rows: Option<i64> = cluster
        .admin_scalar(1, "SELECT COUNT(*) FROM app.t_window WHERE server = 2")
        .await
        .unwrap();
    assert!(rows.unwrap_or(0) > 0, "no write ran on the new primary");
}

/// A transaction open on the primary during a switchover made elsewhere: its writes are then
/// refused by the old, read-only primary (1290, as the server answers); the client's next
/// `BEGIN` — which on the server would implicitly commit there and start again there, forever
/// refused — ends the old transaction on the old server (rolled back when it cannot commit,
/// the client told why), and the transaction after that runs on the new primary.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_transaction_left_on_the_old_primary_does_not_hold_the_session_there() {
    let _serial = serial().await;
    let cluster = throwaway("fo-stale-trx", 3640);
    admin_exec(
        &cluster,
        0,
        "CREATE TABLE app.t_stale (id INT PRIMARY KEY, server INT)",
    )
    .await;
    let proxy = start_proxy(&fast_yaml(&cluster, "")).await;
    let mut conn = app_via(&proxy, &cluster).await;
    conn.query_drop("BEGIN").await.unwrap();
    conn.query_drop("INSERT INTO t_stale VALUES (1, @@server_id)")
        .await
        .unwrap();
    // The same with prepared statements (a prepared BEGIN, as sysbench sends it).
    let insert = "INSERT INTO t_stale VALUES (?, @@server_id)";
    let mut ps = app_via(&proxy, &cluster).await;
    ps.exec_drop("BEGIN", ()).await.unwrap();
    ps.exec_drop(insert, (11,)).await.unwrap();
    // With transaction replay on, a transaction that stopped being replayable (it ran a
    // session command) is treated as without replay.
    let replaying =
        start_proxy(&(fast_yaml(&cluster, "") + "routing: { transaction_replay: true }\n")).await;
    let mut unreplayable = app_via(&replaying, &cluster).await;
    unreplayable.query_drop("BEGIN").await.unwrap();
    unreplayable
        .query_drop("INSERT INTO t_stale VALUES (21, @@server_id)")
        .await
        .unwrap();
    unreplayable
        .query_drop("SET SESSION time_zone = '+01:00'")
        .await
        .unwrap();

    tokio::task::block_in_place(|| cluster.promote(1)).unwrap();
    wait_primary(&replaying, "db2").await;
    wait_primary(&proxy, "db2").await;
    // Still in the transaction on the old primary: the server refuses the write.
    let refused = conn
        .query_drop("INSERT INTO t_stale VALUES (2, @@server_id)")
        .await
        .unwrap_err();
    assert!(refused.to_string().contains("1290"), "{refused}");
    let refused = ps.exec_drop(insert, (12,)).await.unwrap_err();
    assert!(refused.to_string().contains("1290"), "{refused}");
    if let Err(e) = ps.exec_drop("BEGIN", ()).await {
        assert!(e.to_string().contains("no longer the primary"), "{e}");
        ps.exec_drop("BEGIN", ()).await.unwrap();
    }
    ps.exec_drop(insert, (13,))
        .await
        .unwrap_or_else(|e| panic!("after a prepared BEGIN: {e}\n{}", proxy.log_tail(30)));
    ps.exec_drop("COMMIT", ()).await.unwrap();

    // The client starts over. However the old transaction ends on the old server, the
    // session then works on the new primary.
    if let Err(e) = conn.query_drop("BEGIN").await {
        assert!(e.to_string().contains("no longer the primary"), "{e}");
        conn.query_drop("BEGIN").await.unwrap();
    }
    conn.query_drop("INSERT INTO t_stale VALUES (3, @@server_id)")
        .await
        .unwrap_or_else(|e| panic!("after BEGIN: {e}\n{}", proxy.log_tail(30)));
    conn.query_drop("COMMIT").await.unwrap();
    if let Err(e) = unreplayable.query_drop("BEGIN").await {
        assert!(e.to_string().contains("no longer the primary"), "{e}");
        unreplayable.query_drop("BEGIN").await.unwrap();
    }
    unreplayable
        .query_drop("INSERT INTO t_stale VALUES (23, @@server_id)")
        .await
        .unwrap_or_else(|e| panic!("after BEGIN (replay on): {e}\n{}", replaying.log_tail(30)));
    unreplayable.query_drop("COMMIT").await.unwrap();
    let rows: Vec<(i32, u32)> = cluster
        .admin_rows(1, "SELECT id, server FROM app.t_stale ORDER BY id")
        .await
        .unwrap()
        .into_iter()
        .map(mysql_async::from_row)
        .collect();
    assert_eq!(
        rows,
        vec![(3, 2), (13, 2), (23, 2)],
        "the new primary (server_id 2) has the new transactions only"
    );
}
