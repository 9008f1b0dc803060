//! Helpers shared by the routing tests: starting a proxy that is ready to split reads, asking
//! which server answered, and reading the admin endpoint.

use std::collections::BTreeMap;
use std::path::PathBuf;
use std::sync::atomic::{AtomicU32, Ordering};
use std::time::Duration;

use mysql_async::prelude::Queryable;
use mysql_async::{Conn, Opts};
use rwproxy_testkit::{Cluster, ClusterInfo, ProxyProcess, StandardConfig};

/// How long a proxy may take to see its primary and every replica as usable.
const ROUTABLE_TIMEOUT: Duration = Duration::from_secs(15);

/// The rwproxy binary under test.
pub fn proxy_bin() -> PathBuf {
    rwproxy_testkit::paths::proxy_bin_or(env!("CARGO_BIN_EXE_rwproxy"))
}

/// The shared cluster (primary 3316, replicas 3317 and 3318 by default).
pub fn cluster() -> &'static ClusterInfo {
    Cluster::shared()
}

/// The `@@server_id` of every node of a cluster, in node order (node 0 is the primary).
#[derive(Debug, Clone)]
pub struct Ids {
    pub primary: u32,
    pub replicas: Vec<u32>,
}

impl Ids {
    pub async fn of(cluster: &ClusterInfo) -> Ids {
        let mut all = Vec::new();
        for node in &cluster.nodes {
            let id = cluster
                .server_id_of(node.port)
                .await
                .unwrap_or_else(|e| panic!("@@server_id of node on port {}: {e}", node.port));
            all.push(id);
        }
        let primary = all[0];
        let replicas = all[1..].to_vec();
        let mut distinct = all.clone();
        distinct.sort_unstable();
        distinct.dedup();
        assert_eq!(
            distinct.len(),
            all.len(),
            "the nodes must have distinct server ids: {all:?}"
        );
        Ids { primary, replicas }
    }

    pub fn is_replica(&self, id: u32) -> bool {
        self.replicas.contains(&id)
    }
}

/// Start the proxy with `config` and wait until its monitor knows the primary and sees every
/// replica of `cluster` as readable, so that reads are split from the first statement on.
pub async fn start_routable(cluster: &ClusterInfo, config: &StandardConfig) -> ProxyProcess {
    let proxy = match ProxyProcess::start(proxy_bin(), &config.to_yaml()) {
        Ok(p) => p,
        Err(e) => panic!("{e}"),
    };
    wait_topology(
        &proxy,
        1 + cluster.replicas().len(),
        cluster.replicas().len(),
    )
    .await;
    proxy
}

/// The standard configuration for the shared cluster, plus `extra` top-level YAML, ready.
pub async fn start_shared(extra: &str) -> ProxyProcess {
    let cluster = cluster();
    let mut config = StandardConfig::new(cluster);
    config.extra = per_statement(extra);
    start_routable(cluster, &config).await
}

/// `extra` YAML with `routing.replica_affinity: statement` added: most routing tests balance
/// every read on its own, so that one session shows where each kind of statement goes
/// (`affinity.rs` covers the default, `session`).
pub fn per_statement(extra: &str) -> String {
    const AFFINITY: &str = "  replica_affinity: statement\n";
    match extra.strip_prefix("routing:\n") {
        Some(rest) => format!("routing:\n{AFFINITY}{rest}"),
        None => format!("routing:\n{AFFINITY}{extra}"),
    }
}

/// Polls `/backends` until one primary is known and `readable` backends are readable replicas
/// (out of `total`).
pub async fn wait_topology(proxy: &ProxyProcess, total: usize, readable: usize) {
    if let Err(last) = proxy.wait_topology(total, readable, ROUTABLE_TIMEOUT).await {
        panic!(
            "the proxy did not see 1 primary and {readable} readable replicas within {:?}; \
             last /backends: {last}\n--- proxy log ---\n{}",
            ROUTABLE_TIMEOUT,
            proxy.log_tail(40)
        );
    }
}

/// The state (`up`, `down`, …) the proxy's monitor reports for a backend.
pub async fn backend_state(proxy: &ProxyProcess, name: &str) -> Option<String> {
    let body = admin_get(proxy, "/backends").await.ok()?;
    let json: serde_json::Value = serde_json::from_str(&body).ok()?;
    json["backends"]
        .as_array()?
        .iter()
        .find(|b| b["name"] == name)
        .and_then(|b| b["state"].as_str().map(str::to_string))
}

/// `GET path` on the proxy's admin port; the body of a 200 answer.
pub async fn admin_get(proxy: &ProxyProcess, path: &str) -> Result<String, String> {
    match proxy.admin_get(path).await? {
        (200, body) => Ok(body),
        (status, body) => Err(format!("{path}: HTTP {status}: {body}")),
    }
}

/// The value of one `rwproxy_routing_decisions_total{role,reason}` counter.
pub async fn routing_decisions(proxy: &ProxyProcess, role: &str, reason: &str) -> f64 {
    proxy
        .series(
            "rwproxy_routing_decisions_total",
            &[("role", role), ("reason", reason)],
        )
        .await
        .unwrap_or_else(|e| panic!("no routing counter for role={role} reason={reason}: {e}"))
}

/// An `app` session through the proxy with schema `db` (and no statement cache, so that every
/// prepared statement the test sees is one it asked for).
pub async fn app_session(proxy: &ProxyProcess, cluster: &ClusterInfo, db: Option<&str>) -> Conn {
    let opts: Opts = proxy.opts(&cluster.app, db).stmt_cache_size(0).into();
    match Conn::new(opts).await {
        Ok(conn) => conn,
        Err(e) => panic!(
            "connecting through rwproxy: {e}\n--- proxy log ---\n{}",
            proxy.log_tail(40)
        ),
    }
}

/// An `app` session through the proxy on the shared cluster, schema `app`.
pub async fn app_via(proxy: &ProxyProcess) -> Conn {
    app_session(proxy, cluster(), Some("app")).await
}

/// The server that answered `SELECT @@server_id` (prefixed by `prefix`, e.g. a hint).
pub async fn answered_by(conn: &mut Conn, sql: &str) -> u32 {
    match conn.query_first::<u32, _>(sql).await {
        Ok(Some(id)) => id,
        Ok(None) => panic!("{sql}: no row"),
        Err(e) => panic!("{sql}: {e}"),
    }
}

/// `n` times `SELECT @@server_id`: the ids that answered, in order.
pub async fn read_ids(conn: &mut Conn, n: usize) -> Vec<u32> {
    let mut ids = Vec::with_capacity(n);
    for _ in 0..n {
        ids.push(answered_by(conn, "SELECT @@server_id").await);
    }
    ids
}

/// How many times each id appears.
pub fn tally(ids: &[u32]) -> BTreeMap<u32, usize> {
    let mut map = BTreeMap::new();
    for id in ids {
        *map.entry(*id).or_insert(0) += 1;
    }
    map
}

/// Asserts that the reads were answered by replicas only, and by every replica.
pub fn assert_spread_over_replicas(ids: &[u32], expected: &Ids, what: &str) {
    assert!(
        ids.iter().all(|id| expected.is_replica(*id)),
        "{what}: a read was answered by a non-replica (primary {}, replicas {:?}): {ids:?}",
        expected.primary,
        expected.replicas
    );
    for r in &expected.replicas {
        assert!(
            ids.contains(r),
            "{what}: replica {r} never answered a read: {ids:?}"
        );
    }
}

/// A table name in schema `app` that no other test (or test process) uses.
pub fn unique_table(tag: &str) -> String {
    static COUNTER: AtomicU32 = AtomicU32::new(0);
    let n = COUNTER.fetch_add(1, Ordering::Relaxed);
    format!("t_route_{tag}_{}_{n}", std::process::id())
}

/// Creates `app.<table>` on the primary (directly), with an auto-increment id and the server id
/// of whoever inserts a row, and waits until the replicas have it.
pub async fn create_table(cluster: &ClusterInfo, table: &str) {
    cluster
        .admin_exec(
            0,
            &format!(
                "CREATE TABLE app.{table} (id INT AUTO_INCREMENT PRIMARY KEY, \
                 sid INT UNSIGNED NOT NULL, note VARCHAR(40) NULL) ENGINE=InnoDB"
            ),
        )
        .await
        .unwrap();
    cluster
        .wait_replicas_caught_up(Duration::from_secs(10))
        .await
        .unwrap();
}

/// Drops `app.<table>` on the primary (best effort).
pub async fn drop_table(cluster: &ClusterInfo, table: &str) {
    let _ = cluster
        .admin_exec(0, &format!("DROP TABLE IF EXISTS app.{table}"))
        .await;
}

/// Polls `/backends` until the monitor has seen every replica at (or past) the primary's
/// binlog position as of now.
pub async fn wait_monitor_caught_up(proxy: &ProxyProcess, cluster: &ClusterInfo) {
    if let Err(e) = proxy
        .wait_monitor_caught_up(cluster, Duration::from_secs(10))
        .await
    {
        panic!("{e}");
    }
}
