//! Transaction replay (issue #16 item 3, `routing.transaction_replay`): a transaction open on
//! the primary when it dies (kill -9) and a replica is promoted. With replay on, the client's
//! next statements succeed and its COMMIT commits exactly its rows on the new primary (also
//! after a switch made elsewhere while the old primary still answers); with replay off the
//! client gets an error. A replayed read that gives another result on the new
//! primary, a COMMIT in flight at the failure and a transaction over
//! `transaction_replay_max_size` are not carried over: the client gets an error and nothing of
//! the transaction is committed. The same holds for transactions of prepared statements
//! (`COM_STMT_EXECUTE`), which the replay prepares again on the new primary.

use mysql_async::prelude::Queryable;
use mysql_async::Conn;
use rwproxy_testkit::{ProxyProcess, TestSignal, ThrowawayCluster};

use crate::support::*;

const TABLE: &str = "CREATE TABLE app.t_replay (id INT PRIMARY KEY, who VARCHAR(32), v INT)";
const METRIC: &str = "rwproxy_transaction_replays_total";

/// The failure tests' configuration, writes waiting up to 15 s for a primary, and transaction
/// replay `on` (or off) with `max_size`.
fn replay_yaml(cluster: &ThrowawayCluster, on: bool, max_size: &str) -> String {
    let yaml = fast_yaml(cluster, "  write_wait_timeout: 15s\n");
    assert!(!yaml.contains("\nrouting:"), "{yaml}");
    format!(
        "{yaml}\nrouting:\n  transaction_replay: {on}\n  transaction_replay_max_size: {max_size}\n"
    )
}

/// A cluster with `t_replay` holding the committed row (1, 'seed', 10) on every node.
async fn seeded_cluster(name: &str, base_port: u16) -> ThrowawayCluster {
    let cluster = throwaway(name, base_port);
    admin_exec(&cluster, 0, TABLE).await;
    admin_exec(
        &cluster,
        0,
        "INSERT INTO app.t_replay VALUES (1, 'seed', 10)",
    )
    .await;
    cluster.wait_replicas_caught_up(secs(10)).await.unwrap();
    cluster
}

/// Runs `sql` and expects the server error `code`; its message.
async fn expect_error(conn: &mut Conn, sql: &str, code: u16, proxy: &ProxyProcess) -> String {
    match conn.query_drop(sql).await {
        Err(mysql_async::Error::Server(e)) if e.code == code => e.message,
        other => panic!(
            "{sql}: expected error {code}, got {other:?}\n--- proxy log ---\n{}",
            proxy.log_tail(30)
        ),
    }
}

/// Ids of `t_replay` rows from 100 on, as node `node` has them.
async fn ids_on(cluster: &ThrowawayCluster, node: usize) -> Vec<i32> {
    cluster
        .admin_rows(
            node,
            "SELECT id FROM app.t_replay WHERE id >= 100 ORDER BY id",
        )
        .await
        .unwrap()
        .into_iter()
        .map(mysql_async::from_row::<i32>)
        .collect()
}

async fn replays(proxy: &ProxyProcess, outcome: &str) -> f64 {
    proxy
        .series(METRIC, &[("outcome", outcome)])
        .await
        .unwrap_or_else(|e| panic!("{e}"))
}

/// (a) Writes and reads in a transaction, the primary killed, a replica promoted while the
/// client's next statement waits: with replay on, that statement and the rest of the
/// transaction run on the new primary and the COMMIT commits exactly the transaction's rows;
/// through a proxy with replay off, the same situation is an error.
/// kill -9 of the primary (node 0), node 1 promoted, and rwproxy naming it the primary.
async fn kill_and_promote(cluster: &ThrowawayCluster, proxy: &ProxyProcess) {
    signal_node(cluster, 0, TestSignal::Kill);
    tokio::task::block_in_place(|| cluster.promote(1)).unwrap();
    wait_primary(proxy, "db2").await;
}

/// A replay whose second statement read something else on the new primary: the client got
/// 1213 / 40001 saying so, the metrics count one mismatch, and nothing of it was committed.
async fn assert_mismatch_rolled_back(
    result: Result<(), mysql_async::Error>,
    proxy: &ProxyProcess,
    cluster: &ThrowawayCluster,
) -> mysql_async::ServerError {
    let err = match result {
        Err(mysql_async::Error::Server(e)) => e,
        other => panic!(
            "expected 1213, got {other:?}\n--- proxy log ---\n{}",
            proxy.log_tail(30)
        ),
    };
    assert_eq!((err.code, err.state.as_str()), (1213, "40001"), "{err:?}");
    assert!(
        err.message
            .contains("statement 2 of the transaction gave a different result"),
        "{}",
        err.message
    );
    assert_eq!(replays(proxy, "attempted").await, 1.0);
    assert_eq!(replays(proxy, "mismatch").await, 1.0);
    assert_eq!(replays(proxy, "succeeded").await, 0.0);
    assert_eq!(
        ids_on(cluster, 1).await,
        Vec::<i32>::new(),
        "nothing committed"
    );
    err
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_transaction_survives_the_death_of_the_primary_with_replay_on() {
    let _serial = serial().await;
    let cluster = seeded_cluster("fo-replay", 3600).await;
    let on_proxy = start_proxy(&replay_yaml(&cluster, true, "1MiB")).await;
    let off_proxy = start_proxy(&replay_yaml(&cluster, false, "1MiB")).await;
    let mut on = app_via(&on_proxy, &cluster).await;
    let mut off = app_via(&off_proxy, &cluster).await;
    for (conn, id, who) in [(&mut on, 100, "on"), (&mut off, 200, "off")] {
        conn.query_drop("BEGIN").await.unwrap();
        conn.query_drop(format!(
            "INSERT INTO t_replay (id, who, v) VALUES ({id}, '{who}', 1)"
        ))
        .await
        .unwrap();
        let seed: Option<(i64, i64)> = conn
            .query_first("SELECT COUNT(*), SUM(v) FROM t_replay WHERE id < 100")
            .await
            .unwrap();
        assert_eq!(seed, Some((1, 10)));
    }

    signal_node(&cluster, 0, TestSignal::Kill);
    // The next statement is sent at once: it waits for a primary, which appears half a
    // second later.
    let next = tokio::spawn(async move {
        let result = on
            .query_drop("INSERT INTO t_replay (id, who, v) VALUES (101, 'on', 2)")
            .await;
        (on, result)
    });
    tokio::time::sleep(ms(500)).await;
    tokio::task::block_in_place(|| cluster.promote(1)).unwrap();
    let (mut on, result) = next.await.unwrap();
    if let Err(e) = result {
        panic!(
            "the statement after the failover: {e}\n--- proxy log ---\n{}",
            on_proxy.log_tail(40)
        );
    }
    let seen: Vec<(i32, u32)> = on
        .query("SELECT id, @@server_id FROM t_replay WHERE id >= 100 ORDER BY id")
        .await
        .unwrap();
    assert_eq!(
        seen,
        vec![(100, 2), (101, 2)],
        "the transaction on the new primary"
    );
    on.query_drop("COMMIT")
        .await
        .unwrap_or_else(|e| panic!("COMMIT: {e}\n--- proxy log ---\n{}", on_proxy.log_tail(30)));
    assert_eq!(replays(&on_proxy, "attempted").await, 1.0);
    assert_eq!(replays(&on_proxy, "succeeded").await, 1.0);

    // Replay off: the transaction is lost, the client is told.
    wait_primary(&off_proxy, "db2").await;
    let message = expect_error(
        &mut off,
        "INSERT INTO t_replay (id, who, v) VALUES (201, 'off', 2)",
        1927,
        &off_proxy,
    )
    .await;
    assert!(message.contains("transaction is lost"), "{message}");
    assert_eq!(replays(&off_proxy, "attempted").await, 0.0);
    off.query_drop("SELECT 1").await.unwrap();

    assert_eq!(
        ids_on(&cluster, 1).await,
        vec![100, 101],
        "exactly the replayed transaction's rows are committed on the new primary"
    );

    // A switch made elsewhere while the old primary still answers (db2 becomes a replica of
    // db3): the open transaction is abandoned on db2 and replayed on db3.
    on.query_drop("BEGIN").await.unwrap();
    on.query_drop("INSERT INTO t_replay (id, who, v) VALUES (110, 'on', 3)")
        .await
        .unwrap();
    tokio::task::block_in_place(|| cluster.promote(2)).unwrap();
    wait_primary(&on_proxy, "db3").await;
    let seen: Vec<(i32, u32)> = on
        .query("SELECT id, @@server_id FROM t_replay WHERE id >= 110 ORDER BY id")
        .await
        .unwrap_or_else(|e| panic!("{e}\n--- proxy log ---\n{}", on_proxy.log_tail(30)));
    assert_eq!(
        seen,
        vec![(110, 3)],
        "the transaction moved to the new primary"
    );
    on.query_drop("COMMIT").await.unwrap();
    assert_eq!(replays(&on_proxy, "attempted").await, 2.0);
    assert_eq!(replays(&on_proxy, "succeeded").await, 2.0);
    assert_eq!(ids_on(&cluster, 2).await, vec![100, 101, 110]);
}

/// (b) A row the transaction read is changed on the new primary before the replay: the replay
/// sees another result, rolls back, and the client gets 1213 / 40001; nothing of the
/// transaction is committed, and the session goes on outside a transaction.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_replay_that_reads_something_else_is_rolled_back_with_1213() {
    let _serial = serial().await;
    let cluster = seeded_cluster("fo-replay-mismatch", 3603).await;
    let proxy = start_proxy(&replay_yaml(&cluster, true, "1MiB")).await;
    let mut conn = app_via(&proxy, &cluster).await;
    conn.query_drop("START TRANSACTION").await.unwrap();
    let v: Option<i32> = conn
        .query_first("SELECT v FROM t_replay WHERE id = 1")
        .await
        .unwrap();
    assert_eq!(v, Some(10));
    conn.query_drop("INSERT INTO t_replay (id, who, v) VALUES (100, 'tx', 10)")
        .await
        .unwrap();

    kill_and_promote(&cluster, &proxy).await;
    admin_exec(&cluster, 1, "UPDATE app.t_replay SET v = 11 WHERE id = 1").await;

    let result = conn
        .query_drop("INSERT INTO t_replay (id, who, v) VALUES (101, 'tx', 10)")
        .await;
    let err = assert_mismatch_rolled_back(result, &proxy, &cluster).await;
    assert!(err.message.contains("rwproxy"), "{}", err.message);

    // The session is usable, outside a transaction: a retry commits.
    let in_trx: Option<i32> = conn.query_first("SELECT @@in_transaction").await.unwrap();
    assert_eq!(in_trx, Some(0));
    conn.query_drop("BEGIN").await.unwrap();
    conn.query_drop("INSERT INTO t_replay (id, who, v) VALUES (102, 'retry', 11)")
        .await
        .unwrap();
    conn.query_drop("COMMIT").await.unwrap();
    assert_eq!(ids_on(&cluster, 1).await, vec![102]);
}

/// (c) The primary dies while the COMMIT is in flight: its outcome is unknown, so it is never
/// replayed; the client gets an error saying so, and the new primary has none of it.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_commit_in_flight_is_not_replayed() {
    let _serial = serial().await;
    let cluster = seeded_cluster("fo-replay-commit", 3606).await;
    let proxy = start_proxy(&replay_yaml(&cluster, true, "1MiB")).await;
    let mut conn = app_via(&proxy, &cluster).await;
    conn.query_drop("BEGIN").await.unwrap();
    conn.query_drop("INSERT INTO t_replay (id, who, v) VALUES (100, 'tx', 1)")
        .await
        .unwrap();

    // Frozen, the primary takes the COMMIT without running it; then it dies.
    let _thaw = ContOnDrop {
        cluster: &cluster,
        node: 0,
    };
    signal_node(&cluster, 0, TestSignal::Stop);
    let commit = tokio::spawn(async move {
        let result = conn.query_drop("COMMIT").await;
        (conn, result)
    });
    tokio::time::sleep(ms(300)).await;
    signal_node(&cluster, 0, TestSignal::Kill);
    tokio::task::block_in_place(|| cluster.promote(1)).unwrap();
    let (mut conn, result) = commit.await.unwrap();
    let err = match result {
        Err(mysql_async::Error::Server(e)) => e,
        other => panic!(
            "expected an error for the COMMIT, got {other:?}\n--- proxy log ---\n{}",
            proxy.log_tail(30)
        ),
    };
    assert_eq!(err.code, 1927, "{err:?}");
    assert!(
        err.message.contains("outcome is unknown"),
        "{}",
        err.message
    );
    assert_eq!(replays(&proxy, "attempted").await, 1.0);
    assert_eq!(replays(&proxy, "commit_in_flight").await, 1.0);
    assert_eq!(replays(&proxy, "succeeded").await, 0.0);
    wait_primary(&proxy, "db2").await;
    assert_eq!(
        ids_on(&cluster, 1).await,
        Vec::<i32>::new(),
        "nothing committed"
    );
    conn.query_drop("INSERT INTO t_replay (id, who, v) VALUES (101, 'after', 1)")
        .await
        .unwrap();
    assert_eq!(ids_on(&cluster, 1).await, vec![101]);
}

/// (d) A transaction larger than `transaction_replay_max_size` is not replayable: after the
/// failover the client gets 1213 naming the limit, and nothing of it is committed.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_transaction_over_the_size_limit_is_not_replayed() {
    let _serial = serial().await;
    let cluster = seeded_cluster("fo-replay-size", 3609).await;
    let proxy = start_proxy(&replay_yaml(&cluster, true, "1KiB")).await;
    let mut conn = app_via(&proxy, &cluster).await;
    conn.query_drop("BEGIN").await.unwrap();
    let long = "x".repeat(1500);
    conn.query_drop(format!(
        "INSERT INTO t_replay (id, who, v) SELECT 100, LEFT('{long}', 32), 1"
    ))
    .await
    .unwrap();

    kill_and_promote(&cluster, &proxy).await;
    let err = match conn
        .query_drop("INSERT INTO t_replay (id, who, v) VALUES (101, 'tx', 1)")
        .await
    {
        Err(mysql_async::Error::Server(e)) => e,
        other => panic!(
            "expected 1213, got {other:?}\n--- proxy log ---\n{}",
            proxy.log_tail(30)
        ),
    };
    assert_eq!((err.code, err.state.as_str()), (1213, "40001"), "{err:?}");
    assert!(
        err.message.contains("transaction_replay_max_size"),
        "{}",
        err.message
    );
    assert_eq!(replays(&proxy, "too_large").await, 1.0);
    assert_eq!(replays(&proxy, "succeeded").await, 0.0);
    assert_eq!(
        ids_on(&cluster, 1).await,
        Vec::<i32>::new(),
        "nothing committed"
    );
    // A small transaction afterwards is recorded and commits.
    conn.query_drop("BEGIN").await.unwrap();
    conn.query_drop("INSERT INTO t_replay (id, who, v) VALUES (102, 'small', 1)")
        .await
        .unwrap();
    conn.query_drop("COMMIT").await.unwrap();
    assert_eq!(ids_on(&cluster, 1).await, vec![102]);
}

/// (e) The same as (a) with prepared statements (the binary protocol, as sysbench runs them):
/// a statement prepared before the transaction, a prepared BEGIN, writes and reads executed
/// with parameters, and a statement prepared, executed and closed inside the transaction. The
/// primary is killed and a replica promoted while the next execute waits: the replay prepares
/// the statements again on the new primary, executes them with the same parameters and
/// compares their results; the client's execute and COMMIT succeed, and the new primary has
/// exactly the transaction's rows, once. Then a BEGIN in flight at the next primary's death
/// (outside a transaction) runs on the one promoted after it.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_transaction_of_prepared_statements_survives_the_death_of_the_primary() {
    let _serial = serial().await;
    let cluster = seeded_cluster("fo-replay-ps", 3660).await;
    let proxy = start_proxy(&replay_yaml(&cluster, true, "1MiB")).await;
    let mut conn = app_via(&proxy, &cluster).await;
    let read = conn
        .prep("SELECT who, v FROM t_replay WHERE id = ?")
        .await
        .unwrap();
    let insert = conn
        .prep("INSERT INTO t_replay (id, who, v) VALUES (?, ?, ?)")
        .await
        .unwrap();
    let seed: Option<(String, i32)> = conn.exec_first(&read, (1,)).await.unwrap();
    assert_eq!(seed, Some(("seed".to_string(), 10)));

    conn.exec_drop("BEGIN", ()).await.unwrap();
    conn.exec_drop(&insert, (100, "ps", 1)).await.unwrap();
    let seed: Option<(String, i32)> = conn.exec_first(&read, (1,)).await.unwrap();
    assert_eq!(seed, Some(("seed".to_string(), 10)));
    conn.exec_drop("UPDATE t_replay SET v = v + ? WHERE id = ?", (5, 100))
        .await
        .unwrap();
    let once = conn
        .prep("SELECT COUNT(*), SUM(v) FROM t_replay WHERE id >= ?")
        .await
        .unwrap();
    let mine: Option<(i64, i64)> = conn.exec_first(&once, (100,)).await.unwrap();
    assert_eq!(mine, Some((1, 6)));
    conn.close(once).await.unwrap();

    signal_node(&cluster, 0, TestSignal::Kill);
    let next_insert = insert.clone();
    let next = tokio::spawn(async move {
        let result = conn.exec_drop(&next_insert, (101, "ps", 2)).await;
        (conn, result)
    });
    tokio::time::sleep(ms(500)).await;
    tokio::task::block_in_place(|| cluster.promote(1)).unwrap();
    let (mut conn, result) = next.await.unwrap();
    if let Err(e) = result {
        panic!(
            "the execute after the failover: {e}\n--- proxy log ---\n{}",
            proxy.log_tail(40)
        );
    }
    let seen: Vec<(i32, i32, u32)> = conn
        .exec(
            "SELECT id, v, @@server_id FROM t_replay WHERE id >= ? ORDER BY id",
            (100,),
        )
        .await
        .unwrap();
    assert_eq!(
        seen,
        vec![(100, 6, 2), (101, 2, 2)],
        "the transaction on the new primary"
    );
    conn.exec_drop("COMMIT", ())
        .await
        .unwrap_or_else(|e| panic!("COMMIT: {e}\n--- proxy log ---\n{}", proxy.log_tail(30)));
    assert_eq!(replays(&proxy, "attempted").await, 1.0);
    assert_eq!(replays(&proxy, "succeeded").await, 1.0);
    assert_eq!(
        ids_on(&cluster, 1).await,
        vec![100, 101],
        "exactly the replayed transaction's rows are committed on the new primary"
    );
    let committed: Vec<(i32, String, i32)> = cluster
        .admin_rows(
            1,
            "SELECT id, who, v FROM app.t_replay WHERE id >= 100 ORDER BY id",
        )
        .await
        .unwrap()
        .into_iter()
        .map(mysql_async::from_row)
        .collect();
    assert_eq!(
        committed,
        vec![(100, "ps".to_string(), 6), (101, "ps".to_string(), 2)]
    );
    // The session's prepared statements go on working on the new primary.
    let row: Option<(String, i32)> = conn.exec_first(&read, (101,)).await.unwrap();
    assert_eq!(row, Some(("ps".to_string(), 2)));

    // A BEGIN in flight when the primary dies, outside a transaction, left nothing behind:
    // it waits for the next primary and runs there, prepared or as text. Both sessions hold a
    // connection to db2 (they wrote there); db2 is frozen, takes the BEGINs without answering,
    // and dies.
    let mut text = app_via(&proxy, &cluster).await;
    text.query_drop("INSERT INTO t_replay (id, who, v) VALUES (102, 'text', 1)")
        .await
        .unwrap();
    conn.exec_drop(&insert, (103, "ps", 1)).await.unwrap();
    // The node promoted below must have these rows before the primary dies: replication is
    // asynchronous, and on a loaded machine a committed row can still be on its way (the kill
    // would then lose it whatever the proxy does).
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(10);
    while !ids_on(&cluster, 2).await.contains(&103) {
        assert!(
            std::time::Instant::now() < deadline,
            "node 2 did not replicate rows 102 and 103 within 10 s"
        );
        tokio::time::sleep(ms(50)).await;
    }
    let _thaw = ContOnDrop {
        cluster: &cluster,
        node: 1,
    };
    signal_node(&cluster, 1, TestSignal::Stop);
    let text_begin = tokio::spawn(async move {
        let result = text.query_drop("BEGIN").await;
        (text, result)
    });
    let ps_begin = tokio::spawn(async move {
        let result = conn.exec_drop("BEGIN", ()).await;
        (conn, result)
    });
    tokio::time::sleep(ms(300)).await;
    signal_node(&cluster, 1, TestSignal::Kill);
    tokio::time::sleep(ms(300)).await;
    tokio::task::block_in_place(|| cluster.promote(2)).unwrap();
    let (mut text, text_result) = text_begin.await.unwrap();
    let (mut conn, ps_result) = ps_begin.await.unwrap();
    for (what, result) in [("text", text_result), ("prepared", ps_result)] {
        if let Err(e) = result {
            panic!(
                "the {what} BEGIN in flight at the kill: {e}\n--- proxy log ---\n{}",
                proxy.log_tail(40)
            );
        }
    }
    text.query_drop("INSERT INTO t_replay (id, who, v) VALUES (104, 'text', 1)")
        .await
        .unwrap();
    conn.exec_drop(&insert, (105, "ps", 1)).await.unwrap();
    let on: Vec<(i32, u32)> = conn
        .exec("SELECT @@in_transaction, @@server_id", ())
        .await
        .unwrap();
    assert_eq!(
        on,
        vec![(1, 3)],
        "the transaction is open on the new primary"
    );
    text.query_drop("COMMIT").await.unwrap();
    conn.exec_drop("COMMIT", ()).await.unwrap();
    assert_eq!(
        ids_on(&cluster, 2).await,
        vec![100, 101, 102, 103, 104, 105]
    );
}

/// (f) The mismatch case of (b) with prepared statements: a row read by an execute is changed
/// on the new primary before the replay; the client's next execute gets 1213 / 40001, nothing
/// of the transaction is committed, and a retry commits.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_replay_of_prepared_statements_that_reads_something_else_is_rolled_back_with_1213() {
    let _serial = serial().await;
    let cluster = seeded_cluster("fo-replay-ps-mismatch", 3663).await;
    let proxy = start_proxy(&replay_yaml(&cluster, true, "1MiB")).await;
    let mut conn = app_via(&proxy, &cluster).await;
    let insert = "INSERT INTO t_replay (id, who, v) VALUES (?, ?, ?)";
    conn.exec_drop("START TRANSACTION", ()).await.unwrap();
    let v: Option<i32> = conn
        .exec_first("SELECT v FROM t_replay WHERE id = ?", (1,))
        .await
        .unwrap();
    assert_eq!(v, Some(10));
    conn.exec_drop(insert, (100, "tx", 10)).await.unwrap();

    kill_and_promote(&cluster, &proxy).await;
    admin_exec(&cluster, 1, "UPDATE app.t_replay SET v = 11 WHERE id = 1").await;

    let result = conn.exec_drop(insert, (101, "tx", 10)).await;
    assert_mismatch_rolled_back(result, &proxy, &cluster).await;

    let in_trx: Option<i32> = conn
        .exec_first("SELECT @@in_transaction", ())
        .await
        .unwrap();
    assert_eq!(in_trx, Some(0));
    conn.exec_drop("BEGIN", ()).await.unwrap();
    conn.exec_drop(insert, (102, "retry", 11)).await.unwrap();
    conn.exec_drop("COMMIT", ()).await.unwrap();
    assert_eq!(ids_on(&cluster, 1).await, vec![102]);
}
