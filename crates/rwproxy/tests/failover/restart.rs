//! A backend restarts (`kill -9`, then started again) while client sessions sit idle with
//! connections to it: once `/backends` shows it up again, the next statement of every idle
//! session succeeds — writes included — and the backend does not flap (issue #13).

use mysql_async::prelude::Queryable;
use mysql_async::Conn;
use rwproxy_testkit::{ProxyProcess, TestSignal};

use crate::support::*;

const SESSIONS: usize = 10;

/// `rwproxy_backend_state_changes_total` of one backend.
async fn state_changes(proxy: &ProxyProcess, backend: &str) -> f64 {
    let (status, body) = admin_get(proxy, "/metrics").await.unwrap();
    assert_eq!(status, 200);
    let prefix = format!("rwproxy_backend_state_changes_total{{backend=\"{backend}\"}} ");
    body.lines()
        .find_map(|l| l.strip_prefix(&prefix)?.trim().parse::<f64>().ok())
        .unwrap_or(0.0)
}

/// Kill node `node` (configured as `name`), start it again and wait until `/backends` shows
/// it `up` again with `db1` the primary.
async fn restart(
    cluster: &rwproxy_testkit::ThrowawayCluster,
    proxy: &ProxyProcess,
    node: usize,
    name: &str,
) {
    signal_node(cluster, node, TestSignal::Kill);
    wait_state(proxy, name, "down", secs(10)).await;
    // `up` starts the node; right after a primary restart the replicas' IO threads may still
    // be between two reconnect attempts, which `up` reports as a failure: ask again.
    let mut attempt = 0;
    while let Err(e) = cluster.up() {
        attempt += 1;
        if attempt == 5 {
            panic!("restarting node{node}: {e}");
        }
        tokio::time::sleep(secs(2)).await;
    }
    let settled = wait_backends(
        proxy,
        &format!("{name} up again, db1 primary"),
        secs(30),
        |b| primary_name(b).as_deref() == Some("db1") && state_of(b, name).as_deref() == Some("up"),
    )
    .await;
    if let Err(e) = settled {
        panic!("{e}\n--- proxy log ---\n{}", proxy.log_tail(30));
    }
}

async fn sessions(proxy: &ProxyProcess, cluster: &rwproxy_testkit::ClusterInfo) -> Vec<Conn> {
    let mut out = Vec::new();
    for _ in 0..SESSIONS {
        out.push(app_via(proxy, cluster).await);
    }
    out
}

#[tokio::test]
async fn idle_sessions_write_again_after_a_primary_restart_without_flapping_it() {
    let _serial = serial().await;
    let cluster = throwaway("fo-restart-p", 3494);
    let proxy = start_proxy(&fast_yaml(&cluster, "")).await;
    admin_exec(
        &cluster,
        0,
        "CREATE TABLE app.t_restart (id INT AUTO_INCREMENT PRIMARY KEY, s INT)",
    )
    .await;
    let mut conns = sessions(&proxy, &cluster).await;
    for (i, conn) in conns.iter_mut().enumerate() {
        conn.query_drop(format!("INSERT INTO t_restart (s) VALUES ({i})"))
            .await
            .unwrap();
    }

    restart(&cluster, &proxy, 0, "db1").await;
    let before = state_changes(&proxy, "db1").await;

    let mut failures = Vec::new();
    for (i, conn) in conns.iter_mut().enumerate() {
        if let Err(e) = conn
            .query_drop(format!("INSERT INTO t_restart (s) VALUES ({})", 100 + i))
            .await
        {
            failures.push(format!("session {i}: {e}"));
        }
    }
    // Give a report, had there been one, time to turn into a state change.
    tokio::time::sleep(ms(1000)).await;
    let after = state_changes(&proxy, "db1").await;
    let doc = backends(&proxy).await.unwrap();
    assert!(
        failures.is_empty(),
        "idle sessions failed after the restart:\n{}\n--- proxy log ---\n{}",
        failures.join("\n"),
        proxy.log_tail(30)
    );
    assert_eq!(
        before,
        after,
        "db1 changed state {} more time(s) after it was back\n--- proxy log ---\n{}",
        after - before,
        proxy.log_tail(30)
    );
    assert_eq!(primary_name(&doc).as_deref(), Some("db1"));
    let rows: Option<i64> = cluster
        .admin_scalar(0, "SELECT COUNT(*) FROM app.t_restart WHERE s >= 100")
        .await
        .unwrap();
    assert_eq!(rows, Some(SESSIONS as i64));
}

#[tokio::test]
async fn idle_sessions_read_again_after_a_replica_restart_without_flapping_it() {
    let _serial = serial().await;
    let cluster = throwaway("fo-restart-r", 3497);
    let proxy = start_proxy(&fast_yaml(&cluster, "")).await;
    let victim_id = node_server_id(&cluster, 1).await;
    let mut conns = sessions(&proxy, &cluster).await;
    let mut on_victim = 0;
    for conn in conns.iter_mut() {
        let id: Option<u32> = conn.query_first("SELECT @@server_id").await.unwrap();
        if id == Some(victim_id) {
            on_victim += 1;
        }
    }
    assert!(
        on_victim > 0,
        "no session reads from db2; the test proves nothing"
    );

    restart(&cluster, &proxy, 1, "db2").await;
    let before = state_changes(&proxy, "db2").await;

    let mut failures = Vec::new();
    for (i, conn) in conns.iter_mut().enumerate() {
        if let Err(e) = conn.query_drop("SELECT @@server_id").await {
            failures.push(format!("session {i}: {e}"));
        }
    }
    tokio::time::sleep(ms(1000)).await;
    let after = state_changes(&proxy, "db2").await;
    assert!(
        failures.is_empty(),
        "idle sessions failed after the restart:\n{}\n--- proxy log ---\n{}",
        failures.join("\n"),
        proxy.log_tail(30)
    );
    assert_eq!(
        before,
        after,
        "db2 changed state {} more time(s) after it was back\n--- proxy log ---\n{}",
        after - before,
        proxy.log_tail(30)
    );
    let doc = backends(&proxy).await.unwrap();
    assert_eq!(state_of(&doc, "db2").as_deref(), Some("up"));
}
