//! The primary dies (`kill -9`) and an operator promotes a replica by hand. The same running
//! rwproxy must find the new primary and take writes again within 2 s of the promotion.

use std::time::{Duration, Instant};

use mysql_async::prelude::Queryable;
use mysql_async::Conn;

use crate::support::*;

const NEW_PRIMARY: usize = 1;
const OTHER_REPLICA: usize = 2;

/// One write attempt through the proxy, on `conn` (reopened if it broke): the server that
/// took it, or the error.
async fn try_write(
    proxy: &rwproxy_testkit::ProxyProcess,
    cluster: &rwproxy_testkit::ClusterInfo,
    conn: &mut Option<Conn>,
    id: u32,
) -> Result<u32, String> {
    if conn.is_none() {
        let opened = tokio::time::timeout(
            secs(3),
            rwproxy_testkit::connect(proxy.port, &cluster.app, Some("app")),
        )
        .await
        .map_err(|_| "connect: no answer within 3 s".to_string())?
        .map_err(|e| format!("connect: {e}"))?;
        *conn = Some(opened);
    }
    let c = conn.as_mut().expect("just opened");
    let sql = format!("INSERT INTO fo_promo VALUES ({id}, @@server_id)");
    let outcome = tokio::time::timeout(secs(5), c.query_drop(sql)).await;
    match outcome {
        Ok(Ok(())) => {
            let who: Option<u32> = cluster
                .admin_scalar(
                    NEW_PRIMARY,
                    &format!("SELECT who FROM app.fo_promo WHERE id = {id}"),
                )
                .await
                .map_err(|e| format!("reading back: {e}"))?;
            who.ok_or_else(|| format!("write {id} acknowledged but not on the new primary"))
        }
        Ok(Err(e)) => {
            if !matches!(e, mysql_async::Error::Server(_)) {
                *conn = None;
            }
            Err(e.to_string())
        }
        Err(_) => {
            *conn = None;
            Err("no answer within 5 s".into())
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn writes_resume_within_two_seconds_of_a_manual_promotion() {
    let _serial = serial().await;
    let cluster = throwaway("fo-promote", 3479);
    let proxy = start_proxy(&fast_yaml(&cluster, "")).await;
    let new_primary_id = node_server_id(&cluster, NEW_PRIMARY).await;

    let mut session = Some(app_via(&proxy, &cluster).await);
    let s = session.as_mut().unwrap();
    s.query_drop("CREATE TABLE fo_promo (id INT PRIMARY KEY, who INT)")
        .await
        .unwrap();
    s.query_drop("INSERT INTO fo_promo VALUES (0, @@server_id)")
        .await
        .unwrap();
    cluster.wait_replicas_caught_up(secs(5)).await.unwrap();

    // Opened before the crash: a new connection cannot log in while no server can answer
    // the client library's start-up queries (see `reads_are_served_while_the_primary_is_dead`).
    let mut probe = app_via(&proxy, &cluster).await;

    let killed = Instant::now();
    cluster.kill9(0).unwrap();
    wait_state(&proxy, "db1", "down", secs(2)).await;
    // While there is no primary, a write waits write_wait_timeout (2 s) and gets ERR 1290.
    let asked = Instant::now();
    let err = probe
        .query_drop("INSERT INTO fo_promo VALUES (-1, @@server_id)")
        .await
        .expect_err("a write succeeded with the primary dead");
    let waited = asked.elapsed();
    // Checked at the end, so that the promotion timing is measured either way.
    let outage_error = match &err {
        mysql_async::Error::Server(e) if e.code == 1290 => None,
        other => Some(format!(
            "with the primary dead and both replicas reachable, a write should get ERR 1290 \
             after write_wait_timeout; got {other:?}"
        )),
    };
    assert!(
        waited >= ms(1800) && waited < secs(4),
        "the refused write took {waited:?}; write_wait_timeout is 2 s"
    );

    // Promote node1 and re-point node2 at it, as an operator would.
    admin_exec(
        &cluster,
        NEW_PRIMARY,
        "STOP SLAVE; RESET SLAVE ALL; SET GLOBAL read_only = OFF",
    )
    .await;
    let promoted = Instant::now();
    let repoint = format!(
        "STOP SLAVE; CHANGE MASTER TO MASTER_HOST='127.0.0.1', MASTER_PORT={}, \
         MASTER_USER='{}', MASTER_PASSWORD='{}', MASTER_USE_GTID=slave_pos, \
         MASTER_CONNECT_RETRY=1; START SLAVE",
        cluster.nodes[NEW_PRIMARY].port, cluster.repl.user, cluster.repl.password
    );
    admin_exec(&cluster, OTHER_REPLICA, &repoint).await;

    // Keep writing on the session opened before the crash (reopened only if it broke).
    let mut attempts = Vec::new();
    let mut first_ok: Option<(Duration, u32)> = None;
    let mut id = 1;
    while promoted.elapsed() < secs(6) {
        let sent = promoted.elapsed();
        let result = try_write(&proxy, &cluster, &mut session, id).await;
        id += 1;
        match result {
            Ok(who) => {
                first_ok = Some((sent, who));
                break;
            }
            Err(e) => attempts.push(format!("+{} ms: {e}", sent.as_millis())),
        }
        tokio::time::sleep(ms(50)).await;
    }
    let (after, who) = first_ok.unwrap_or_else(|| {
        panic!(
            "no write succeeded within 6 s of the promotion:\n{}\n--- proxy log ---\n{}",
            attempts.join("\n"),
            proxy.log_tail(25)
        )
    });
    eprintln!(
        "primary killed; promotion {} ms later; first write accepted {} ms after the promotion \
         (failed attempts: {attempts:?})",
        (promoted - killed).as_millis(),
        after.as_millis()
    );
    assert_eq!(
        who, new_primary_id,
        "the write must land on the promoted server"
    );
    assert!(
        after <= secs(2),
        "writes resumed only {after:?} after the promotion"
    );
    let doc = backends(&proxy).await.unwrap();
    assert_eq!(primary_name(&doc).as_deref(), Some("db2"), "{doc}");

    // The re-pointed replica follows the new primary, and reads through the proxy still work.
    let target: String = cluster
        .admin_scalar(NEW_PRIMARY, "SELECT @@gtid_binlog_pos")
        .await
        .unwrap()
        .unwrap_or_default();
    let mut replica = admin_conn(&cluster, OTHER_REPLICA).await;
    let reached: Option<i64> = replica
        .exec_first("SELECT MASTER_GTID_WAIT(?, 5)", (target.as_str(),))
        .await
        .unwrap();
    assert_eq!(reached, Some(0), "node2 did not follow the new primary");
    replica.disconnect().await.unwrap();
    let mut reader = app_via(&proxy, &cluster).await;
    let rows: Option<i64> = reader
        .query_first("SELECT COUNT(*) FROM fo_promo")
        .await
        .unwrap();
    assert!(rows.unwrap_or(0) >= 2, "reads after the failover: {rows:?}");
    if let Some(problem) = outage_error {
        panic!("{problem}");
    }
}

/// While the primary is dead and nobody has promoted a replica yet, the replicas still hold
/// the data up to the crash: reads (outside transactions) should keep being served by them
/// rather than wait for a primary, and each is counted as `replica`/`no_primary_degraded`.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn reads_are_served_while_the_primary_is_dead() {
    let _serial = serial().await;
    let cluster = throwaway("fo-nopri", 3491);
    let proxy = start_proxy(&fast_yaml(&cluster, "")).await;
    let replica_ids = [
        node_server_id(&cluster, 1).await,
        node_server_id(&cluster, 2).await,
    ];
    let mut session = app_via(&proxy, &cluster).await;
    let before: Option<u32> = session.query_first("SELECT @@server_id").await.unwrap();
    assert!(
        before.is_some_and(|id| replica_ids.contains(&id)),
        "{before:?}"
    );

    cluster.kill9(0).unwrap();
    wait_state(&proxy, "db1", "down", secs(2)).await;
    // Let the replicas notice too (their IO threads go to "Connecting").
    tokio::time::sleep(ms(600)).await;
    let doc = backends(&proxy).await.unwrap();
    let degraded = || async {
        proxy
            .series(
                "rwproxy_routing_decisions_total",
                &[("role", "replica"), ("reason", "no_primary_degraded")],
            )
            .await
            .unwrap_or_else(|e| panic!("{e}"))
    };
    let degraded_before = degraded().await;
    let asked = Instant::now();
    let read =
        tokio::time::timeout(secs(5), session.query_first::<u32, _>("SELECT @@server_id")).await;
    let took = asked.elapsed();
    match read {
        Ok(Ok(Some(id))) => {
            assert!(replica_ids.contains(&id), "answered by server_id {id}");
            assert!(took < ms(500), "the read took {took:?}");
        }
        Ok(Ok(None)) => panic!("no row"),
        Ok(Err(e)) => panic!(
            "a plain read failed {} ms after asking, with the primary dead and both replicas \
             running: {e}\n/backends: {doc}",
            took.as_millis()
        ),
        Err(_) => panic!("a plain read did not answer within 5 s"),
    }
    assert_eq!(
        degraded().await,
        degraded_before + 1.0,
        "the read must count as replica/no_primary_degraded; /backends: {doc}"
    );
}
