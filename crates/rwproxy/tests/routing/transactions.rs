//! Transactions run whole on one server: the primary for ordinary ones (including their first
//! SELECT), one replica for `START TRANSACTION READ ONLY`.

use std::time::Duration;

use mysql_async::prelude::Queryable;

use crate::support::{
    answered_by, app_via, assert_spread_over_replicas, cluster, create_table, drop_table, read_ids,
    start_shared, unique_table, wait_monitor_caught_up, Ids,
};

#[tokio::test]
async fn begin_keeps_every_statement_on_the_primary_until_commit() {
    let cluster = cluster();
    let ids = Ids::of(cluster).await;
    let t = unique_table("begin");
    create_table(cluster, &t).await;
    let proxy = start_shared("").await;
    let mut conn = app_via(&proxy).await;

    for begin in ["BEGIN", "START TRANSACTION", "START TRANSACTION READ WRITE"] {
        conn.query_drop(begin).await.unwrap();
        // The first statement of the transaction is a plain read: still the primary.
        assert_eq!(
            answered_by(&mut conn, "SELECT @@server_id").await,
            ids.primary,
            "first SELECT after {begin}"
        );
        conn.query_drop(format!(
            "INSERT INTO {t} (sid, note) VALUES (@@server_id, '{begin}')"
        ))
        .await
        .unwrap();
        // The transaction's own uncommitted row is visible: same server, same transaction.
        let n: Option<i64> = conn
            .query_first(format!("SELECT COUNT(*) FROM {t} WHERE note = '{begin}'"))
            .await
            .unwrap();
        assert_eq!(n, Some(1), "uncommitted row not seen inside {begin}");
        assert_eq!(
            read_ids(&mut conn, 3).await,
            vec![ids.primary; 3],
            "reads inside {begin}"
        );
        conn.query_drop("COMMIT").await.unwrap();
        let after = read_ids(&mut conn, 6).await;
        assert_spread_over_replicas(&after, &ids, &format!("reads after {begin} … COMMIT"));
    }

    // ROLLBACK ends it too, and the row is gone.
    conn.query_drop("BEGIN").await.unwrap();
    conn.query_drop(format!(
        "INSERT INTO {t} (sid, note) VALUES (@@server_id, 'rolled')"
    ))
    .await
    .unwrap();
    conn.query_drop("ROLLBACK").await.unwrap();
    let after = read_ids(&mut conn, 4).await;
    assert_spread_over_replicas(&after, &ids, "reads after ROLLBACK");

    let rows: Vec<u32> = cluster
        .admin_rows(0, &format!("SELECT sid FROM app.{t} ORDER BY id"))
        .await
        .unwrap()
        .into_iter()
        .map(mysql_async::from_row)
        .collect();
    assert_eq!(
        rows,
        vec![ids.primary; 3],
        "committed rows, written by the primary"
    );
    conn.disconnect().await.unwrap();
    drop_table(cluster, &t).await;
}

#[tokio::test]
async fn autocommit_off_keeps_the_session_on_the_primary_until_it_is_back_on() {
    let cluster = cluster();
    let ids = Ids::of(cluster).await;
    let t = unique_table("autocommit");
    create_table(cluster, &t).await;
    let proxy = start_shared("").await;
    let mut conn = app_via(&proxy).await;

    conn.query_drop("SET autocommit=0").await.unwrap();
    assert_eq!(
        answered_by(&mut conn, "SELECT @@server_id").await,
        ids.primary,
        "first SELECT after SET autocommit=0"
    );
    conn.query_drop(format!("INSERT INTO {t} (sid) VALUES (@@server_id)"))
        .await
        .unwrap();
    // Not committed yet: a direct session on the primary does not see it.
    let outside: Option<i64> = cluster
        .admin_scalar(0, &format!("SELECT COUNT(*) FROM app.{t}"))
        .await
        .unwrap();
    assert_eq!(
        outside,
        Some(0),
        "the INSERT was committed under autocommit=0"
    );
    conn.query_drop("COMMIT").await.unwrap();
    // After COMMIT the next transaction starts implicitly: still the primary.
    assert_eq!(
        read_ids(&mut conn, 4).await,
        vec![ids.primary; 4],
        "reads after COMMIT with autocommit still off"
    );
    conn.query_drop("SET autocommit=1").await.unwrap();
    let after = read_ids(&mut conn, 6).await;
    assert_spread_over_replicas(&after, &ids, "reads after SET autocommit=1");

    // The other spelling, and back on with SET SESSION.
    conn.query_drop("SET @@session.autocommit = OFF")
        .await
        .unwrap();
    assert_eq!(
        answered_by(&mut conn, "SELECT @@server_id").await,
        ids.primary,
        "first SELECT after SET @@session.autocommit = OFF"
    );
    conn.query_drop("SET SESSION autocommit = ON")
        .await
        .unwrap();
    let after = read_ids(&mut conn, 6).await;
    assert_spread_over_replicas(&after, &ids, "reads after SET SESSION autocommit = ON");

    let committed: Option<u32> = cluster
        .admin_scalar(0, &format!("SELECT sid FROM app.{t}"))
        .await
        .unwrap();
    assert_eq!(committed, Some(ids.primary));
    conn.disconnect().await.unwrap();
    drop_table(cluster, &t).await;
}

#[tokio::test]
async fn read_only_transaction_stays_on_one_replica() {
    let cluster = cluster();
    let ids = Ids::of(cluster).await;
    let t = unique_table("rotxn");
    create_table(cluster, &t).await;
    cluster
        .admin_exec(
            0,
            &format!("INSERT INTO app.{t} (sid) VALUES (1), (2), (3)"),
        )
        .await
        .unwrap();
    cluster
        .wait_replicas_caught_up(Duration::from_secs(10))
        .await
        .unwrap();
    let proxy = start_shared("").await;
    let mut conn = app_via(&proxy).await;

    let mut holders = Vec::new();
    for round in 0..4 {
        conn.query_drop("START TRANSACTION READ ONLY")
            .await
            .unwrap();
        let first = answered_by(&mut conn, "SELECT @@server_id").await;
        assert!(
            ids.is_replica(first),
            "round {round}: a READ ONLY transaction ran on {first}, not a replica"
        );
        let sum: Option<i64> = conn
            .query_first(format!("SELECT SUM(sid) FROM {t}"))
            .await
            .unwrap();
        assert_eq!(sum, Some(6));
        assert_eq!(
            read_ids(&mut conn, 4).await,
            vec![first; 4],
            "round {round}: the transaction moved"
        );
        // A write in it fails: it is a read-only transaction (on a read-only replica, too).
        let err = conn
            .query_drop(format!("INSERT INTO {t} (sid) VALUES (9)"))
            .await
            .expect_err("a write inside START TRANSACTION READ ONLY succeeded");
        assert!(matches!(err, mysql_async::Error::Server(_)), "{err:?}");
        assert_eq!(answered_by(&mut conn, "SELECT @@server_id").await, first);
        conn.query_drop("COMMIT").await.unwrap();
        holders.push(first);
    }
    // Successive read-only transactions are balanced like reads.
    assert_spread_over_replicas(&holders, &ids, "replicas holding READ ONLY transactions");
    let after = read_ids(&mut conn, 4).await;
    assert_spread_over_replicas(&after, &ids, "reads after the last COMMIT");
    conn.disconnect().await.unwrap();
    drop_table(cluster, &t).await;
}

#[tokio::test]
async fn reads_after_a_write_still_alternate_over_both_replicas() {
    // With `consistency: session` (the default), a session that wrote reads from replicas that
    // have its write. Once both have it, round robin must still alternate between them.
    let cluster = cluster();
    let ids = Ids::of(cluster).await;
    let t = unique_table("rrwrite");
    create_table(cluster, &t).await;
    let proxy = start_shared("").await;
    let mut conn = app_via(&proxy).await;
    conn.query_drop(format!("INSERT INTO {t} (sid) VALUES (@@server_id)"))
        .await
        .unwrap();
    cluster
        .wait_replicas_caught_up(Duration::from_secs(10))
        .await
        .unwrap();
    wait_monitor_caught_up(&proxy, cluster).await;
    let seen = read_ids(&mut conn, 8).await;
    assert_spread_over_replicas(&seen, &ids, "8 reads after a write in the same session");
    conn.disconnect().await.unwrap();
    drop_table(cluster, &t).await;
}

#[tokio::test]
async fn set_transaction_read_only_then_begin_is_one_read_only_transaction() {
    let cluster = cluster();
    let ids = Ids::of(cluster).await;
    let t = unique_table("settxro");
    create_table(cluster, &t).await;
    let proxy = start_shared("").await;
    let mut conn = app_via(&proxy).await;
    conn.query_drop("SET TRANSACTION READ ONLY").await.unwrap();
    conn.query_drop("START TRANSACTION").await.unwrap();
    let holder = answered_by(&mut conn, "SELECT @@server_id").await;
    assert_eq!(
        read_ids(&mut conn, 3).await,
        vec![holder; 3],
        "the transaction moved"
    );
    let err = conn
        .query_drop(format!("INSERT INTO {t} (sid) VALUES (@@server_id)"))
        .await
        .expect_err("a write in a READ ONLY transaction succeeded");
    assert!(matches!(err, mysql_async::Error::Server(_)), "{err:?}");
    conn.query_drop("COMMIT").await.unwrap();
    // The characteristic was for one transaction only: the next one writes, on the primary.
    conn.query_drop("START TRANSACTION").await.unwrap();
    conn.query_drop(format!("INSERT INTO {t} (sid) VALUES (@@server_id)"))
        .await
        .unwrap();
    conn.query_drop("COMMIT").await.unwrap();
    let sid: Option<u32> = cluster
        .admin_scalar(0, &format!("SELECT sid FROM app.{t}"))
        .await
        .unwrap();
    assert_eq!(sid, Some(ids.primary));
    conn.disconnect().await.unwrap();
    drop_table(cluster, &t).await;
}
