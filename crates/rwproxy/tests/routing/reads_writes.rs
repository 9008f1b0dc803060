//! Plain reads go to the replicas, round-robin; writes and locking reads go to the primary.

use std::time::Duration;

use mysql_async::prelude::Queryable;
use rwproxy_testkit::{closed_port, ProxyProcess, StandardConfig};

use crate::support::{
    answered_by, app_via, assert_spread_over_replicas, cluster, create_table, drop_table,
    per_statement, proxy_bin, read_ids, routing_decisions, start_shared, unique_table,
    wait_topology, Ids,
};

#[tokio::test]
async fn reads_alternate_over_both_replicas_in_one_session() {
    let ids = Ids::of(cluster()).await;
    let proxy = start_shared("").await;
    let mut conn = app_via(&proxy).await;
    let seen = read_ids(&mut conn, 12).await;
    assert_spread_over_replicas(&seen, &ids, "12 reads in one session");
    // Round robin over two replicas: every read goes to the other one.
    for pair in seen.windows(2) {
        assert_ne!(
            pair[0], pair[1],
            "round robin sent two reads in a row to the same replica: {seen:?}"
        );
    }
    conn.disconnect().await.unwrap();
}

#[tokio::test]
async fn reads_of_many_sessions_use_both_replicas() {
    let ids = Ids::of(cluster()).await;
    let proxy = start_shared("").await;
    // Each session starts its round robin at a random place: one read per session, many
    // sessions, and both replicas must have answered (2^-15 chance of a false failure).
    let mut seen = Vec::new();
    for _ in 0..16 {
        let mut conn = app_via(&proxy).await;
        seen.push(answered_by(&mut conn, "SELECT @@server_id").await);
        conn.disconnect().await.unwrap();
    }
    assert_spread_over_replicas(&seen, &ids, "first reads of 16 sessions");
}

#[tokio::test]
async fn writes_run_on_the_primary() {
    let cluster = cluster();
    let ids = Ids::of(cluster).await;
    let t = unique_table("writes");
    create_table(cluster, &t).await;
    let proxy = start_shared("").await;
    let mut conn = app_via(&proxy).await;
    for i in 0..4 {
        // The row records the server that executed the INSERT.
        conn.query_drop(format!(
            "INSERT INTO {t} (sid, note) VALUES (@@server_id, 'w{i}')"
        ))
        .await
        .unwrap();
        // A read between writes goes to a replica and does not pull the next write along.
        let reader = answered_by(&mut conn, "SELECT @@server_id").await;
        assert!(ids.is_replica(reader), "read answered by {reader}");
    }
    conn.query_drop(format!(
        "UPDATE {t} SET note = CONCAT(note, '@', @@server_id)"
    ))
    .await
    .unwrap();
    conn.query_drop(format!("DELETE FROM {t} WHERE note LIKE 'w3@%'"))
        .await
        .unwrap();
    assert_eq!(conn.affected_rows(), 1, "the DELETE saw the UPDATE");

    // Checked on the primary directly.
    let rows: Vec<(u32, String)> = cluster
        .admin_rows(0, &format!("SELECT sid, note FROM app.{t} ORDER BY id"))
        .await
        .unwrap()
        .into_iter()
        .map(mysql_async::from_row)
        .collect();
    let expected: Vec<(u32, String)> = (0..3)
        .map(|i| (ids.primary, format!("w{i}@{}", ids.primary)))
        .collect();
    assert_eq!(
        rows, expected,
        "rows written through the proxy, read on the primary"
    );
    conn.disconnect().await.unwrap();
    drop_table(cluster, &t).await;
}

#[tokio::test]
async fn locking_reads_run_on_the_primary() {
    let cluster = cluster();
    let ids = Ids::of(cluster).await;
    let t = unique_table("forupdate");
    create_table(cluster, &t).await;
    cluster
        .admin_exec(0, &format!("INSERT INTO app.{t} (sid) VALUES (0)"))
        .await
        .unwrap();
    cluster
        .wait_replicas_caught_up(Duration::from_secs(10))
        .await
        .unwrap();
    let proxy = start_shared("").await;
    let mut conn = app_via(&proxy).await;

    // Autocommit: a locking read alone is still the primary's.
    for lock in ["FOR UPDATE", "LOCK IN SHARE MODE"] {
        let sql = format!("SELECT @@server_id FROM {t} WHERE id = 1 {lock}");
        assert_eq!(answered_by(&mut conn, &sql).await, ids.primary, "{sql}");
    }

    // Inside a transaction, and the row is really locked there: a direct session on the
    // primary cannot take it while the transaction is open.
    conn.query_drop("BEGIN").await.unwrap();
    let sql = format!("SELECT @@server_id FROM {t} WHERE id = 1 FOR UPDATE");
    assert_eq!(answered_by(&mut conn, &sql).await, ids.primary, "{sql}");
    let mut other = cluster.app_conn(0).await.unwrap();
    other
        .query_drop("SET SESSION innodb_lock_wait_timeout = 1")
        .await
        .unwrap();
    let err = other
        .query_drop(format!("SELECT id FROM {t} WHERE id = 1 FOR UPDATE"))
        .await
        .expect_err("the row locked through the proxy was free on the primary");
    match err {
        mysql_async::Error::Server(e) => assert_eq!(e.code, 1205, "{e:?}"),
        other => panic!("expected a lock wait timeout, got {other:?}"),
    }
    conn.query_drop("COMMIT").await.unwrap();
    other
        .query_drop(format!("SELECT id FROM {t} WHERE id = 1 FOR UPDATE"))
        .await
        .unwrap();
    other.disconnect().await.unwrap();
    conn.disconnect().await.unwrap();
    drop_table(cluster, &t).await;
}

/// Each routing reason a plain application produces is counted under its own label in the
/// exposition: `write`, `read`, `in_transaction`, `read_only_transaction`, `pinned`,
/// `session_command` (docs/metrics.md lists them; a unit test keeps that list exact).
#[tokio::test]
async fn each_routing_reason_is_counted_under_its_label() {
    let proxy = crate::support::start_shared("").await;
    let mut conn = crate::support::app_via(&proxy).await;
    let table = format!("t_reasons_{}", std::process::id());
    let mut before = std::collections::HashMap::new();
    let cases: [(&str, &str); 6] = [
        ("primary", "write"),
        ("replica", "read"),
        ("primary", "in_transaction"),
        ("replica", "read_only_transaction"),
        ("primary", "pinned"),
        ("primary", "session_command"),
    ];
    for (role, reason) in cases {
        before.insert(
            reason,
            crate::support::routing_decisions(&proxy, role, reason).await,
        );
    }
    // Reads first: after this session's first write, read-your-writes may send its reads to
    // the primary.
    conn.query_drop("SELECT 1").await.unwrap();
    conn.query_drop("START TRANSACTION READ ONLY")
        .await
        .unwrap();
    conn.query_drop("SELECT 3").await.unwrap();
    conn.query_drop("COMMIT").await.unwrap();
    conn.query_drop(format!(
        "CREATE TABLE IF NOT EXISTS {table} (id INT PRIMARY KEY)"
    ))
    .await
    .unwrap();
    conn.query_drop("BEGIN").await.unwrap();
    conn.query_drop("SELECT 2").await.unwrap();
    conn.query_drop("COMMIT").await.unwrap();
    conn.query_drop("SET @@session.sql_select_limit = 1000")
        .await
        .unwrap();
    conn.query_drop("CREATE TEMPORARY TABLE tmp_reasons (a INT)")
        .await
        .unwrap();
    conn.query_drop("SELECT 4").await.unwrap();
    conn.query_drop(format!("DROP TABLE {table}"))
        .await
        .unwrap();
    for (role, reason) in cases {
        let now = crate::support::routing_decisions(&proxy, role, reason).await;
        assert!(
            now > before[reason],
            "{role}/{reason} was not counted ({now})"
        );
    }
}

/// With no usable replica (both replicas' addresses refuse connections) a read goes to the
/// primary and is counted as `primary`/`no_replica_fallback`, not as a `read`.
#[tokio::test]
async fn reads_without_a_usable_replica_count_as_no_replica_fallback() {
    let cluster = cluster();
    let ids = Ids::of(cluster).await;
    let mut config = StandardConfig::new(cluster);
    for replica in &mut config.backends[1..] {
        replica.address = format!("127.0.0.1:{}", closed_port().unwrap());
    }
    config.extra = per_statement("");
    let proxy =
        ProxyProcess::start(proxy_bin(), &config.to_yaml()).unwrap_or_else(|e| panic!("{e}"));
    wait_topology(&proxy, 3, 0).await;
    let mut conn = app_via(&proxy).await;
    let fallback = routing_decisions(&proxy, "primary", "no_replica_fallback").await;
    let reads = routing_decisions(&proxy, "replica", "read").await;
    assert_eq!(read_ids(&mut conn, 3).await, vec![ids.primary; 3]);
    assert_eq!(
        routing_decisions(&proxy, "primary", "no_replica_fallback").await,
        fallback + 3.0
    );
    assert_eq!(routing_decisions(&proxy, "replica", "read").await, reads);
    conn.disconnect().await.unwrap();
}
