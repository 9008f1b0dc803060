//! The kit against the real shared cluster: the cluster is up and replicating, and the raw
//! wire client speaks correctly to MariaDB itself (so proxy tests built on it are sound).

use std::net::SocketAddr;
use std::time::Duration;

use mysql_async::prelude::Queryable;
use rwproxy_testkit::wire::{Greeting, RawConn, Reply};
use rwproxy_testkit::Cluster;

fn primary_addr() -> SocketAddr {
    SocketAddr::from(([127, 0, 0, 1], Cluster::shared().primary().port))
}

#[tokio::test]
async fn shared_cluster_replicates_to_both_replicas() {
    let cluster = Cluster::shared();
    assert_eq!(cluster.nodes.len(), 3);
    let table = format!("app.testkit_repl_{}", std::process::id());
    cluster
        .admin_exec(
            0,
            &format!("CREATE OR REPLACE TABLE {table} (id INT PRIMARY KEY); INSERT INTO {table} VALUES (7)"),
        )
        .await
        .unwrap();
    cluster
        .wait_replicas_caught_up(Duration::from_secs(10))
        .await
        .unwrap();
    let mut ids = Vec::new();
    for node in 0..3 {
        let v: Option<i32> = cluster
            .admin_scalar(node, &format!("SELECT id FROM {table}"))
            .await
            .unwrap();
        assert_eq!(v, Some(7), "node{node}");
        ids.push(
            cluster
                .server_id_of(cluster.nodes[node].port)
                .await
                .unwrap(),
        );
        let ro: Option<i32> = cluster
            .admin_scalar(node, "SELECT @@read_only")
            .await
            .unwrap();
        assert_eq!(ro, Some(i32::from(node > 0)), "read_only of node{node}");
    }
    ids.sort_unstable();
    ids.dedup();
    assert_eq!(ids.len(), 3, "server ids must differ");
    cluster
        .admin_exec(0, &format!("DROP TABLE {table}"))
        .await
        .unwrap();
}

#[tokio::test]
async fn app_user_cannot_write_on_a_replica() {
    let cluster = Cluster::shared();
    let mut conn = cluster.app_conn(1).await.unwrap();
    let err = conn
        .query_drop("CREATE TABLE app.should_not_exist (a INT)")
        .await
        .unwrap_err();
    match err {
        mysql_async::Error::Server(e) => assert_eq!(e.code, 1290, "{e:?}"),
        other => panic!("expected a server error, got {other:?}"),
    }
}

#[tokio::test]
async fn raw_client_logs_in_and_queries() {
    let cluster = Cluster::shared();
    let (mut conn, reply) = RawConn::login(
        primary_addr(),
        &cluster.app.user,
        &cluster.app.password,
        Some("app"),
    )
    .await
    .unwrap();
    assert_eq!(reply, Reply::Ok);
    let rows = conn.query("SELECT 1, NULL, 'x', DATABASE()").await.unwrap();
    assert_eq!(
        rows,
        Reply::Rows(vec![vec![
            Some(b"1".to_vec()),
            None,
            Some(b"x".to_vec()),
            Some(b"app".to_vec())
        ]])
    );
    let err = conn.query("SELEC 1").await.unwrap();
    assert_eq!(err.err().map(|e| e.code), Some(1064));
}

#[tokio::test]
async fn raw_client_sees_access_denied() {
    let cluster = Cluster::shared();
    let (_, reply) = RawConn::login(primary_addr(), &cluster.app.user, "wrong", None)
        .await
        .unwrap();
    let err = reply.err().cloned().expect("an ERR packet");
    assert_eq!(err.code, 1045);
    assert_eq!(err.sql_state.as_deref(), Some("28000"));
    assert!(
        err.message
            .starts_with("Access denied for user 'app'@'127.0.0.1'"),
        "{}",
        err.message
    );
}

#[tokio::test]
async fn raw_client_greeting_is_a_handshake() {
    let mut conn = RawConn::connect(primary_addr()).await.unwrap();
    match conn.read_greeting().await.unwrap() {
        Greeting::Handshake(h) => {
            assert_eq!(h.scramble.len(), 20);
            assert!(h.server_version.contains("MariaDB"), "{}", h.server_version);
        }
        Greeting::Err(e) => panic!("unexpected {e}"),
    }
}

#[tokio::test]
async fn mariadb_closes_a_session_that_sends_garbage() {
    let mut conn = RawConn::connect(primary_addr()).await.unwrap();
    let _ = conn.read_greeting().await.unwrap();
    // 0xA3: garbage without the CLIENT_SSL bit (the cluster offers TLS; with it the server
    // would wait for a TLS handshake).
    conn.write_packet(1, &[0xA3; 40]).await.unwrap();
    let closing = conn.wait_closed(Duration::from_secs(10)).await.unwrap();
    // MariaDB rejects the malformed handshake response with an ERR packet, then closes.
    let err = closing.err.expect("an ERR packet before the close");
    assert!(err.code >= 1000, "{err}");
}
