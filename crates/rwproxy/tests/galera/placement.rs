//! Writes originate on one node only (the servers' own `wsrep_local_commits` say so), reads go
//! to the other synced nodes (`@@wsrep_node_name` of the node that answered), a configured
//! `priority` moves the writer, and what a client reads through rwproxy is what the node
//! itself returns.

use mysql_async::prelude::Queryable;
use rwproxy_testkit::backends_doc::backends;
use rwproxy_testkit::metrics::series;
use rwproxy_testkit::Galera;

use crate::support::*;

const WRITES: u64 = 40;

async fn writes_and_reads(priorities: [Option<u32>; 3], writer: usize, rule: &str) {
    let readers: Vec<&str> = (0..3).filter(|&n| n != writer).map(|n| DB[n]).collect();
    let proxy = start_proxy(&galera_yaml(priorities, ""), DB[writer], &readers).await;
    // The rule that chose it, in /backends and in the metrics: one change, to this writer.
    let doc = backends(&proxy).await.unwrap();
    assert_eq!(doc["primary"]["rule"], rule, "{doc}");
    let text = proxy.admin_get("/metrics").await.unwrap().1;
    let changes = |r: &str| {
        series(&text, "rwproxy_galera_writer_changes_total", &[("rule", r)]).unwrap_or(-1.0)
    };
    for other in [
        "sole",
        "priority",
        "node_name",
        "gcomm_uuid",
        "backend_name",
    ] {
        let expected = if other == rule { 1.0 } else { 0.0 };
        assert_eq!(
            changes(other),
            expected,
            "writer changes by {other}:\n{text}"
        );
    }
    // Each node's receive queue (its lag-like figure) and flow-control pause are exported.
    for name in DB {
        let queue = series(
            &text,
            "rwproxy_backend_galera_recv_queue",
            &[("backend", name)],
        );
        assert!(queue.is_some_and(|q| q >= 0.0), "{name}: {queue:?}\n{text}");
        let paused = series(
            &text,
            "rwproxy_backend_galera_flow_control_paused",
            &[("backend", name)],
        );
        assert!(
            paused.is_some_and(|p| (0.0..=1.0).contains(&p)),
            "{name}: {paused:?}"
        );
    }
    let table = unique_table("placement");
    let mut conn = app_via(&proxy).await;
    conn.query_drop(format!(
        "CREATE TABLE {table} (id INT PRIMARY KEY, node VARCHAR(16))"
    ))
    .await
    .unwrap();

    let before = local_commits().await;
    for id in 0..WRITES {
        conn.query_drop(format!(
            "INSERT INTO {table} VALUES ({id}, @@wsrep_node_name)"
        ))
        .await
        .unwrap();
    }
    let after = local_commits().await;
    for node in 0..3 {
        let (Some(b), Some(a)) = (before[node], after[node]) else {
            panic!("node{node} did not answer: {before:?} {after:?}");
        };
        if node == writer {
            assert!(a - b >= WRITES, "node{node} originated {} writes", a - b);
        } else {
            assert_eq!(
                a - b,
                0,
                "node{node} originated writes: {before:?} -> {after:?}"
            );
        }
    }
    // Each row says where its INSERT ran.
    let mut direct = cluster().app_conn(writer).await.unwrap();
    let origins: Vec<String> = direct
        .query(format!("SELECT DISTINCT node FROM {table}"))
        .await
        .unwrap();
    assert_eq!(origins, vec![format!("node{writer}")]);

    // Reads: only the other nodes, each of them (a session that has not written: this one's
    // reads would go to the writer under the default `consistency: session`).
    let mut reader = app_via(&proxy).await;
    let seen = readers_of(&mut reader, 30).await;
    let expected: Vec<String> = (0..3)
        .filter(|&n| n != writer)
        .map(|n| format!("node{n}"))
        .collect();
    assert_eq!(names(&seen), expected, "{seen:?}");
    // A transaction runs on the writer, its reads too.
    conn.query_drop("START TRANSACTION").await.unwrap();
    conn.query_drop(format!("UPDATE {table} SET node = node WHERE id = 0"))
        .await
        .unwrap();
    assert_eq!(answered_by(&mut conn).await, format!("node{writer}"));
    conn.query_drop("COMMIT").await.unwrap();

    conn.query_drop(format!("DROP TABLE {table}"))
        .await
        .unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn writes_land_on_one_node_and_reads_on_the_others() {
    let _one = Galera::exclusive().await;
    heal().await;
    // Equal priorities: the tie-break (wsrep_node_name) picks node0.
    writes_and_reads([None, None, None], 0, "node_name").await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_lowest_priority_is_the_writer() {
    let _one = Galera::exclusive().await;
    heal().await;
    writes_and_reads([Some(3), Some(2), Some(1)], 2, "priority").await;
}

/// The same queries through rwproxy and directly on the node that served them: values, column
/// metadata and warnings are the same.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_read_through_rwproxy_is_what_the_node_returns() {
    let _one = Galera::exclusive().await;
    heal().await;
    // Session affinity: all reads of the session go to one node, the one that answered first.
    let yaml = galera_config([None; 3], "session", "");
    let proxy = start_proxy(&yaml, DB[0], &DB[1..]).await;
    let mut via = app_via(&proxy).await;
    let node = answered_by(&mut via).await;
    let index: usize = node.trim_start_matches("node").parse().unwrap();
    let mut direct = cluster().app_conn(index).await.unwrap();
    let queries = [
        "SELECT 1 AS one, 'x' AS letter, NULL AS nothing, 1.5 AS num, NOW() IS NOT NULL AS t",
        "SELECT CAST('2026-12-05' AS DATE) AS d, CAST(42 AS UNSIGNED) AS u, 1e3 AS f",
        "SELECT CAST('abc' AS SIGNED) AS truncated",
        "SHOW VARIABLES LIKE 'wsrep_on'",
        "SELECT COUNT(*) FROM information_schema.tables WHERE table_schema = 'mysql'",
    ];
    for sql in queries {
        let a = observe(&mut via, sql).await;
        let b = observe(&mut direct, sql).await;
        assert_eq!(a, b, "{sql} through rwproxy vs directly on {node}");
    }
    assert_eq!(
        answered_by(&mut via).await,
        node,
        "the session stayed on its node"
    );
}

/// Rows, column names, types and flags, the warning count and the info text a client sees.
async fn observe(conn: &mut mysql_async::Conn, sql: &str) -> String {
    let mut result = conn.query_iter(sql).await.unwrap();
    let columns: Vec<String> = result
        .columns_ref()
        .iter()
        .map(|c| format!("{}:{:?}:{:?}", c.name_str(), c.column_type(), c.flags()))
        .collect();
    let rows: Vec<mysql_async::Row> = result.collect().await.unwrap();
    let rows: Vec<Vec<mysql_async::Value>> = rows.into_iter().map(|r| r.unwrap()).collect();
    let warnings = conn.get_warnings();
    let info = conn.info();
    format!("{columns:?} {rows:?} warnings={warnings} info={info:?}")
}
