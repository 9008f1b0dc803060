//! State only the primary's connection holds keeps the session's reads on the primary: for as
//! long as the state lives (LOCK TABLES, SQL PREPARE) or for the rest of the session (GET_LOCK,
//! several statements in one packet, too many session commands to replay).

use mysql_async::prelude::Queryable;
use mysql_async::Conn;

use crate::support::{
    app_via, assert_spread_over_replicas, cluster, create_table, drop_table, read_ids,
    start_shared, unique_table, Ids,
};

async fn assert_on_primary(conn: &mut Conn, ids: &Ids, what: &str) {
    assert_eq!(
        read_ids(conn, 4).await,
        vec![ids.primary; 4],
        "reads while {what}"
    );
}

async fn assert_on_replicas(conn: &mut Conn, ids: &Ids, what: &str) {
    let seen = read_ids(conn, 4).await;
    assert_spread_over_replicas(&seen, ids, what);
}

#[tokio::test]
async fn lock_tables_and_sql_prepare_pin_until_released() {
    let cluster = cluster();
    let ids = Ids::of(cluster).await;
    let t = unique_table("locks");
    create_table(cluster, &t).await;
    let proxy = start_shared("").await;
    let mut conn = app_via(&proxy).await;
    assert_on_replicas(&mut conn, &ids, "reads at first").await;

    conn.query_drop(format!("LOCK TABLES {t} READ"))
        .await
        .unwrap();
    assert_on_primary(&mut conn, &ids, "LOCK TABLES is held").await;
    conn.query_drop("UNLOCK TABLES").await.unwrap();
    assert_on_replicas(&mut conn, &ids, "reads after UNLOCK TABLES").await;

    conn.query_drop("PREPARE route_s FROM 'SELECT @@server_id'")
        .await
        .unwrap();
    let executed: Option<u32> = conn.query_first("EXECUTE route_s").await.unwrap();
    assert_eq!(
        executed,
        Some(ids.primary),
        "EXECUTE of a SQL prepared statement"
    );
    assert_on_primary(&mut conn, &ids, "a SQL prepared statement exists").await;
    conn.query_drop("DEALLOCATE PREPARE route_s").await.unwrap();
    assert_on_replicas(&mut conn, &ids, "reads after DEALLOCATE PREPARE").await;
    conn.disconnect().await.unwrap();
    drop_table(cluster, &t).await;
}

#[tokio::test]
async fn get_lock_pins_for_the_rest_of_the_session() {
    let cluster = cluster();
    let ids = Ids::of(cluster).await;
    let proxy = start_shared("").await;
    let mut conn = app_via(&proxy).await;
    let name = unique_table("lock");
    let (got, id): (i64, u32) = conn
        .query_first(format!("SELECT GET_LOCK('{name}', 0), @@server_id"))
        .await
        .unwrap()
        .unwrap();
    assert_eq!((got, id), (1, ids.primary));
    assert_on_primary(&mut conn, &ids, "a named lock is held").await;
    let released: Option<i64> = conn
        .query_first(format!("SELECT RELEASE_LOCK('{name}')"))
        .await
        .unwrap();
    assert_eq!(released, Some(1), "RELEASE_LOCK ran where GET_LOCK did");
    assert_on_primary(
        &mut conn,
        &ids,
        "after RELEASE_LOCK (GET_LOCK pins for good)",
    )
    .await;
    conn.disconnect().await.unwrap();
}

#[tokio::test]
async fn user_variables_follow_where_they_were_set() {
    let cluster = cluster();
    let ids = Ids::of(cluster).await;
    let proxy = start_shared("").await;

    // SET @v is a session command: replayed everywhere, readable on the replicas.
    let mut conn = app_via(&proxy).await;
    conn.query_drop("SET @route_v = 7").await.unwrap();
    let mut answered = Vec::new();
    for _ in 0..4 {
        let (id, v): (u32, Option<i64>) = conn
            .query_first("SELECT @@server_id, @route_v")
            .await
            .unwrap()
            .unwrap();
        assert_eq!(v, Some(7), "@route_v on server {id}");
        answered.push(id);
    }
    assert_spread_over_replicas(&answered, &ids, "reads of a SET user variable");
    conn.disconnect().await.unwrap();

    // Assigned inside a SELECT: only the primary has it, so reads of @vars go there; reads
    // without a user variable still go to the replicas.
    let mut conn = app_via(&proxy).await;
    let (v, id): (i64, u32) = conn
        .query_first("SELECT @route_w := 5, @@server_id")
        .await
        .unwrap()
        .unwrap();
    assert_eq!((v, id), (5, ids.primary));
    for _ in 0..3 {
        let (id, w): (u32, Option<i64>) = conn
            .query_first("SELECT @@server_id, @route_w")
            .await
            .unwrap()
            .unwrap();
        assert_eq!((id, w), (ids.primary, Some(5)));
    }
    assert_on_replicas(&mut conn, &ids, "reads without user variables").await;
    conn.disconnect().await.unwrap();
}

#[tokio::test]
async fn multi_statements_pin_the_session() {
    let cluster = cluster();
    let ids = Ids::of(cluster).await;
    let proxy = start_shared("").await;
    let mut conn = app_via(&proxy).await;
    assert_on_replicas(&mut conn, &ids, "reads at first").await;
    let mut result = conn
        .query_iter("SELECT @@server_id; SELECT @@server_id")
        .await
        .unwrap();
    let first: Vec<u32> = result.collect().await.unwrap();
    let second: Vec<u32> = result.collect().await.unwrap();
    drop(result);
    assert_eq!((first, second), (vec![ids.primary], vec![ids.primary]));
    assert_on_primary(&mut conn, &ids, "after a multi-statement packet").await;
    conn.disconnect().await.unwrap();
}

#[tokio::test]
async fn too_many_session_commands_pin_the_session() {
    let cluster = cluster();
    let ids = Ids::of(cluster).await;
    let proxy = start_shared("").await;
    let mut conn = app_via(&proxy).await;
    for i in 0..256 {
        conn.query_drop(format!("SET @route_many_{i} = {i}"))
            .await
            .unwrap();
    }
    // 256 distinct session commands are still replayed.
    let (id, v): (u32, Option<i64>) = conn
        .query_first("SELECT @@server_id, @route_many_255")
        .await
        .unwrap()
        .unwrap();
    assert!(ids.is_replica(id), "256 session commands: read on {id}");
    assert_eq!(v, Some(255));
    conn.query_drop("SET @route_many_256 = 256").await.unwrap();
    assert_on_primary(&mut conn, &ids, "257 session commands were logged").await;
    let v: Option<i64> = conn.query_first("SELECT @route_many_0").await.unwrap();
    assert_eq!(v, Some(0));
    // Past the limit the log stops growing; the session keeps working on the primary.
    for i in 257..1000 {
        conn.query_drop(format!("SET @route_many_{i} = {i}"))
            .await
            .unwrap();
    }
    let v: Option<i64> = conn.query_first("SELECT @route_many_999").await.unwrap();
    assert_eq!(v, Some(999));
    assert_on_primary(&mut conn, &ids, "1000 session commands were run").await;
    assert_eq!(overflows(&proxy).await, 1.0, "one session overflowed once");
    conn.disconnect().await.unwrap();

    // A few large session commands overflow the log by size (64 KiB) as well.
    let mut conn = app_via(&proxy).await;
    assert_on_replicas(&mut conn, &ids, "a new session reads from replicas").await;
    let big = "x".repeat(70 * 1024);
    conn.query_drop(format!("SET @route_big = '{big}'"))
        .await
        .unwrap();
    assert_on_primary(&mut conn, &ids, "a 70 KiB session command was run").await;
    let len: Option<i64> = conn.query_first("SELECT LENGTH(@route_big)").await.unwrap();
    assert_eq!(len, Some(70 * 1024));
    assert_eq!(overflows(&proxy).await, 2.0);
    conn.disconnect().await.unwrap();
}

/// `rwproxy_session_replay_log_overflows_total`.
async fn overflows(proxy: &rwproxy_testkit::ProxyProcess) -> f64 {
    let body = crate::support::admin_get(proxy, "/metrics").await.unwrap();
    body.lines()
        .find_map(|l| {
            l.strip_prefix("rwproxy_session_replay_log_overflows_total ")?
                .trim()
                .parse()
                .ok()
        })
        .unwrap_or_else(|| panic!("no rwproxy_session_replay_log_overflows_total in /metrics"))
}
