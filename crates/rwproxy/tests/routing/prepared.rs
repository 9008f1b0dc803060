//! Binary-protocol prepared statements are routed at every execute: a read on the replicas,
//! the same statement inside a transaction on the primary. Closing them (or disconnecting)
//! leaves no statement behind on any server when sessions keep their own connections
//! (`pool.enabled: false`, [`DEDICATED`]); with connection sharing the statements stay prepared
//! on the pooled connections, a bounded number per connection, for any session to use
//! (operations/sharing.rs).

use std::time::{Duration, Instant};

use mysql_async::prelude::Queryable;
use mysql_async::Statement;
use rwproxy_testkit::ClusterInfo;
use tokio::sync::Mutex;

use crate::support::{app_via, assert_spread_over_replicas, cluster, start_shared, Ids};

/// Sessions keep their own backend connections.
const DEDICATED: &str = "pool: { enabled: false }\n";

/// The two tests below count every prepared statement of every node: not at the same time.
static COUNTING: Mutex<()> = Mutex::const_new(());

/// `Prepared_stmt_count` of every node, primary first.
async fn prepared_counts(cluster: &ClusterInfo) -> Vec<u64> {
    let mut counts = Vec::new();
    for node in 0..cluster.nodes.len() {
        let rows = cluster
            .admin_rows(node, "SHOW GLOBAL STATUS LIKE 'Prepared_stmt_count'")
            .await
            .unwrap();
        let value: String = rows
            .first()
            .and_then(|r| r.get::<String, _>(1))
            .expect("a Prepared_stmt_count row");
        counts.push(value.parse().expect("a number"));
    }
    counts
}

/// Polls until no node holds more prepared statements than `baseline` (other test processes
/// may prepare statements too, so "not more than" rather than "equal").
async fn wait_counts_back(cluster: &ClusterInfo, baseline: &[u64], what: &str) {
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        let now = prepared_counts(cluster).await;
        if now.iter().zip(baseline).all(|(n, b)| n <= b) {
            return;
        }
        if Instant::now() >= deadline {
            panic!(
                "{what}: prepared statements leaked: Prepared_stmt_count per node (primary \
                 first) is {now:?}, was {baseline:?} before"
            );
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

async fn exec_id(conn: &mut mysql_async::Conn, stmt: &Statement) -> u32 {
    let id: Option<u32> = conn.exec_first(stmt, ()).await.unwrap();
    id.expect("a row")
}

/// Prepares three statements and runs each on the replicas and inside a transaction on the
/// primary, so every node gets a copy of each. Returns them, still open.
async fn spread_statements(conn: &mut mysql_async::Conn, ids: &Ids) -> Vec<Statement> {
    let mut stmts = Vec::new();
    for sql in [
        "SELECT @@server_id",
        "SELECT @@server_id + 0",
        "SELECT CAST(@@server_id AS UNSIGNED) FROM DUAL WHERE ? = 1",
    ] {
        stmts.push(conn.prep(sql).await.unwrap());
    }
    for stmt in &stmts {
        let params: Vec<mysql_async::Value> = if stmt.num_params() == 1 {
            vec![1.into()]
        } else {
            vec![]
        };
        let mut seen = Vec::new();
        for _ in 0..6 {
            let id: Option<u32> = conn.exec_first(stmt, params.clone()).await.unwrap();
            seen.push(id.expect("a row"));
        }
        assert_spread_over_replicas(&seen, ids, "executes of a prepared read");

        conn.query_drop("BEGIN").await.unwrap();
        for _ in 0..2 {
            let id: Option<u32> = conn.exec_first(stmt, params.clone()).await.unwrap();
            assert_eq!(id, Some(ids.primary), "an execute inside a transaction");
        }
        conn.query_drop("COMMIT").await.unwrap();

        let mut seen = Vec::new();
        for _ in 0..4 {
            let id: Option<u32> = conn.exec_first(stmt, params.clone()).await.unwrap();
            seen.push(id.expect("a row"));
        }
        assert_spread_over_replicas(&seen, ids, "executes after COMMIT");
    }
    stmts
}

#[tokio::test]
async fn prepared_statements_alternate_and_close_everywhere() {
    let _counting = COUNTING.lock().await;
    let cluster = cluster();
    let ids = Ids::of(cluster).await;
    let proxy = start_shared(DEDICATED).await;
    let baseline = prepared_counts(cluster).await;

    let mut conn = app_via(&proxy).await;
    let stmts = spread_statements(&mut conn, &ids).await;
    // The statements exist on every node now (proof that the counter sees them).
    let open = prepared_counts(cluster).await;
    // (`+ 2`, not `+ 3`: another test process may close one of its own meanwhile.)
    for (node, (o, b)) in open.iter().zip(&baseline).enumerate() {
        assert!(
            *o >= b + 2,
            "node {node}: expected at least 2 more prepared statements while open (3 were opened), \
             counts {open:?}, before {baseline:?}"
        );
    }
    // Autocommit SELECT again, with a statement prepared inside a transaction.
    conn.query_drop("START TRANSACTION").await.unwrap();
    let late = conn.prep("SELECT @@server_id - 0").await.unwrap();
    assert_eq!(exec_id(&mut conn, &late).await, ids.primary);
    conn.query_drop("COMMIT").await.unwrap();
    let mut seen = Vec::new();
    for _ in 0..4 {
        seen.push(exec_id(&mut conn, &late).await);
    }
    assert_spread_over_replicas(&seen, &ids, "a statement prepared in a transaction, later");

    for stmt in stmts {
        conn.close(stmt).await.unwrap();
    }
    conn.close(late).await.unwrap();
    // The session is still fine, and nothing is left on any node.
    let seen: Vec<u32> = {
        let mut v = Vec::new();
        for _ in 0..4 {
            v.push(
                conn.query_first("SELECT @@server_id")
                    .await
                    .unwrap()
                    .unwrap(),
            );
        }
        v
    };
    assert_spread_over_replicas(&seen, &ids, "text reads after closing");
    wait_counts_back(cluster, &baseline, "after COM_STMT_CLOSE").await;
    conn.disconnect().await.unwrap();
}

#[tokio::test]
async fn disconnecting_frees_prepared_statements_everywhere() {
    let _counting = COUNTING.lock().await;
    let cluster = cluster();
    let ids = Ids::of(cluster).await;
    let proxy = start_shared(DEDICATED).await;
    let baseline = prepared_counts(cluster).await;
    let mut conn = app_via(&proxy).await;
    let stmts = spread_statements(&mut conn, &ids).await;
    let open = prepared_counts(cluster).await;
    assert!(
        open.iter().zip(&baseline).all(|(o, b)| *o >= b + 2),
        "counts while open {open:?}, before {baseline:?}"
    );
    drop(stmts);
    conn.disconnect().await.unwrap();
    wait_counts_back(cluster, &baseline, "after the client disconnected").await;
}

#[tokio::test]
async fn a_temporary_table_created_by_a_prepared_statement_is_readable() {
    let _counting = COUNTING.lock().await;
    let ids = Ids::of(cluster()).await;
    let proxy = start_shared("").await;
    let mut conn = app_via(&proxy).await;
    let tmp = crate::support::unique_table("ptmp");
    let create = conn
        .prep(format!("CREATE TEMPORARY TABLE {tmp} (id INT)"))
        .await
        .unwrap();
    conn.exec_drop(&create, ()).await.unwrap();
    conn.close(create).await.unwrap();
    for i in 0..4 {
        let result: Result<Option<(u32, i64)>, _> = conn
            .query_first(format!("SELECT @@server_id, COUNT(*) FROM {tmp}"))
            .await;
        match result {
            Ok(row) => assert_eq!(row, Some((ids.primary, 0)), "read {i}"),
            Err(e) => {
                panic!("read {i} of a temporary table created through COM_STMT_EXECUTE failed: {e}")
            }
        }
    }
    conn.disconnect().await.unwrap();
}

#[tokio::test]
async fn a_session_variable_set_by_a_prepared_statement_is_seen_by_every_server() {
    let _counting = COUNTING.lock().await;
    let ids = Ids::of(cluster()).await;
    let proxy = start_shared("").await;
    let mut conn = app_via(&proxy).await;
    let set = conn.prep("SET time_zone = '+04:00'").await.unwrap();
    conn.exec_drop(&set, ()).await.unwrap();
    conn.close(set).await.unwrap();
    let mut answered = Vec::new();
    let mut zones = Vec::new();
    for _ in 0..4 {
        let (id, tz): (u32, String) = conn
            .query_first("SELECT @@server_id, @@time_zone")
            .await
            .unwrap()
            .unwrap();
        answered.push(id);
        zones.push(format!("{tz} on {id}"));
    }
    assert_spread_over_replicas(&answered, &ids, "reads after a prepared SET");
    assert!(
        zones.iter().all(|z| z.starts_with("+04:00 ")),
        "time_zone set by COM_STMT_EXECUTE, then read: {zones:?}"
    );
    conn.disconnect().await.unwrap();
}
