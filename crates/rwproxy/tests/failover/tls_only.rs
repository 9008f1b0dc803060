//! Backends that take only TLS connections (`cluster.sh up --tls-only`: every node has
//! `require_secure_transport=ON`, replication runs over verified TLS). With `backend_tls`
//! (verified against the cluster's CA) the monitor sees every backend with its role, reads go
//! to the replicas, writes to the primary, and a session reads its own writes. Without
//! `backend_tls` the monitor reports every backend down, saying why, and clients are told.

use mysql_async::prelude::Queryable;
use rwproxy_testkit::{connect, Cluster, ProxyProcess, StandardConfig, ThrowawayCluster};
use serde_json::Value;

use crate::support::*;

const CLUSTER: &str = "fo-tls-only";
const BASE_PORT: u16 = 3506;

fn tls_only_cluster() -> ThrowawayCluster {
    match Cluster::throwaway_tls_only(CLUSTER, BASE_PORT) {
        Ok(cluster) => cluster,
        Err(e) => panic!("cannot bring up the TLS-only cluster {CLUSTER}: {e}"),
    }
}

/// The standard configuration (fast monitor, `consistency: session`), with `backend_tls`
/// verified against the cluster's CA or without it.
fn yaml(cluster: &ThrowawayCluster, backend_tls: bool) -> String {
    let mut config = StandardConfig::new(cluster);
    assert!(
        config.backend_tls_ca.is_some(),
        "a TLS-only cluster gets backend_tls"
    );
    if !backend_tls {
        config.backend_tls_ca = None;
    }
    config.monitor_interval = MONITOR_INTERVAL.to_string();
    config.extra = "routing: { consistency: session }\n".to_string();
    config.to_yaml()
}

fn reason_of(doc: &Value, name: &str) -> String {
    backend_of(doc, name)
        .and_then(|b| b.get("reason"))
        .and_then(Value::as_str)
        .unwrap_or_default()
        .to_string()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn tls_only_backends_are_monitored_and_used_over_verified_tls() {
    let _serial = serial().await;
    let cluster = tls_only_cluster();
    assert!(cluster.tls_only, "cluster.sh env does not say TLS only");
    let proxy = start_proxy(&yaml(&cluster, true)).await;

    // Roles as the monitor sees them, over TLS.
    let doc = backends(&proxy).await.unwrap_or_else(|e| panic!("{e}"));
    for (name, role) in [("db1", "primary"), ("db2", "replica"), ("db3", "replica")] {
        let b = backend_of(&doc, name).unwrap_or_else(|| panic!("{name} missing: {doc}"));
        assert_eq!(b["state"], "up", "{name}: {b}");
        assert_eq!(b["role"], role, "{name}: {b}");
    }

    let mut conn = connect(proxy.port, &cluster.app, Some("app"))
        .await
        .unwrap_or_else(|e| panic!("login through the proxy: {e}\n{}", proxy.log_tail(30)));
    // Reads: the replicas (server ids 2 and 3).
    for _ in 0..6 {
        let id: Option<u32> = conn.query_first("SELECT @@server_id").await.unwrap();
        assert!(matches!(id, Some(2 | 3)), "a read answered by {id:?}");
    }
    // The server that answered takes only TLS connections, so rwproxy's hop to it is TLS. The
    // session's own status describes the client's hop (plain here), as the server would.
    let required: Option<u8> = conn
        .query_first("SELECT @@require_secure_transport")
        .await
        .unwrap();
    assert_eq!(
        required,
        Some(1),
        "a backend that also takes plain connections"
    );
    let cipher: Option<(String, String)> = conn
        .query_first("SHOW SESSION STATUS LIKE 'Ssl_cipher'")
        .await
        .unwrap();
    assert!(
        cipher.as_ref().is_some_and(|(_, c)| c.is_empty()),
        "the client's plain connection reported with a cipher: {cipher:?}"
    );

    // Writes: the primary (server id 1), each read at once through the same session from a
    // replica that has it already (consistency: session).
    conn.query_drop("CREATE TABLE t_tls_only (id INT PRIMARY KEY, written_by INT)")
        .await
        .unwrap();
    for id in 1..=10u32 {
        conn.exec_drop("INSERT INTO t_tls_only VALUES (?, @@server_id)", (id,))
            .await
            .unwrap();
        let row: Option<(u32, u32)> = conn
            .exec_first(
                "SELECT written_by, @@server_id FROM t_tls_only WHERE id = ?",
                (id,),
            )
            .await
            .unwrap();
        match row {
            Some((1, 2 | 3)) => {}
            other => panic!("write {id}: (written by, read from) = {other:?}"),
        }
    }
    conn.disconnect().await.unwrap();
    drop(proxy);

    // Without backend_tls: every backend is down, and the reason says what to do.
    let proxy = match ProxyProcess::start(proxy_bin(), &yaml(&cluster, false)) {
        Ok(proxy) => proxy,
        Err(e) => panic!("{e}"),
    };
    let all_down = wait_backends(&proxy, "every backend down", secs(5), |doc| {
        ["db1", "db2", "db3"]
            .iter()
            .all(|n| state_of(doc, n).as_deref() == Some("down"))
    })
    .await;
    let (_, doc) = all_down.unwrap_or_else(|e| panic!("{e}\n{}", proxy.log_tail(30)));
    for name in ["db1", "db2", "db3"] {
        let reason = reason_of(&doc, name);
        assert!(
            reason.contains("requires secure transport; enable backend_tls"),
            "{name}: {reason}"
        );
    }
    let error = match connect(proxy.port, &cluster.app, Some("app")).await {
        Ok(mut conn) => match conn.query_drop("SELECT 1").await {
            Ok(()) => panic!("a query succeeded with every backend down"),
            Err(e) => e.to_string(),
        },
        Err(e) => e.to_string(),
    };
    assert!(
        error.contains("ERROR 1429")
            && error.contains("cannot reach any backend")
            && error.contains("requires secure transport; enable backend_tls"),
        "the client saw: {error}"
    );
}
