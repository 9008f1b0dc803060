//! Helpers shared by the Galera tests: the cluster, rwproxy processes in `topology: galera`,
//! and what a node says about itself.

use std::collections::BTreeMap;
use std::path::PathBuf;
use std::time::Duration;

use mysql_async::prelude::Queryable;
use mysql_async::Conn;
use rwproxy_testkit::backends_doc::{self, primary_name, readable_names, wait_backends};
use rwproxy_testkit::{ClusterInfo, Galera, ProxyProcess, StandardConfig};

/// Backend names of the nodes, in node order (`node0` is `db1`).
pub const DB: [&str; 3] = ["db1", "db2", "db3"];

/// The rwproxy binary under test (`RWPROXY_TEST_BIN` overrides it).
pub fn proxy_bin() -> PathBuf {
    rwproxy_testkit::paths::proxy_bin_or(env!("CARGO_BIN_EXE_rwproxy"))
}

/// The shared Galera cluster (brought up on first use).
pub fn cluster() -> &'static ClusterInfo {
    Galera::shared()
}

/// Puts the cluster back (every node Synced in one Primary component of three); panics if it
/// cannot, since every later test would fail for that reason.
pub async fn heal() {
    if let Err(e) = Galera::heal(cluster()).await {
        panic!("healing the Galera cluster: {e}");
    }
}

/// rwproxy's config for the cluster: `monitor.topology: galera` with a 200 ms monitor,
/// per-statement read balancing (so a handful of reads visits every reader), `priorities`
/// (one per node, `None` = unset) and `extra` top-level YAML.
pub fn galera_yaml(priorities: [Option<u32>; 3], extra: &str) -> String {
    galera_config(priorities, "statement", extra)
}

/// [`galera_yaml`] with `routing.replica_affinity: affinity`.
pub fn galera_config(priorities: [Option<u32>; 3], affinity: &str, extra: &str) -> String {
    let mut config = StandardConfig::new(cluster());
    config.monitor_interval = "200ms".into();
    config.monitor_extra = "topology: galera\n".into();
    for (backend, priority) in config.backends.iter_mut().zip(priorities) {
        backend.priority = priority;
    }
    config.extra = format!("routing:\n  replica_affinity: {affinity}\n{extra}");
    config.to_yaml()
}

/// Starts rwproxy with `yaml` and waits until it names `writer` and reads go to `readers`.
pub async fn start_proxy(yaml: &str, writer: &str, readers: &[&str]) -> ProxyProcess {
    let proxy = match ProxyProcess::start(proxy_bin(), yaml) {
        Ok(proxy) => proxy,
        Err(e) => panic!("{e}"),
    };
    settle(&proxy, writer, readers, Duration::from_secs(15)).await;
    proxy
}

/// Waits until `proxy` names `writer` (`None`: no writer) and serves reads from exactly
/// `readers`; panics with the last `/backends` and the proxy log otherwise.
pub async fn settle_on(
    proxy: &ProxyProcess,
    writer: Option<&str>,
    readers: &[&str],
    timeout: Duration,
) -> std::time::Instant {
    let what = format!("writer {writer:?}, readers {readers:?}");
    let wanted: Vec<String> = readers.iter().map(|r| r.to_string()).collect();
    match wait_backends(proxy, &what, timeout, |doc| {
        primary_name(doc).as_deref() == writer && readable_names(doc) == wanted
    })
    .await
    {
        Ok((at, _)) => at,
        Err(e) => panic!("{e}\n--- proxy log ---\n{}", proxy.log_tail(30)),
    }
}

/// [`settle_on`] with a writer.
pub async fn settle(
    proxy: &ProxyProcess,
    writer: &str,
    readers: &[&str],
    timeout: Duration,
) -> std::time::Instant {
    settle_on(proxy, Some(writer), readers, timeout).await
}

/// The writer each proxy names now (they must agree at every step of a test).
pub async fn writers(proxies: &[&ProxyProcess]) -> Vec<Option<String>> {
    let mut all = Vec::new();
    for proxy in proxies {
        let doc = match backends_doc::backends(proxy).await {
            Ok(doc) => doc,
            Err(e) => panic!("{e}"),
        };
        all.push(primary_name(&doc));
    }
    all
}

/// An `app` session through rwproxy, schema `app`.
pub async fn app_via(proxy: &ProxyProcess) -> Conn {
    match proxy.connect(&cluster().app, Some("app")).await {
        Ok(conn) => conn,
        Err(e) => panic!("connecting through rwproxy: {e}\n{}", proxy.log_tail(30)),
    }
}

/// `@@wsrep_node_name` of the node that answers this statement on `conn`.
pub async fn answered_by(conn: &mut Conn) -> String {
    match conn
        .query_first::<String, _>("SELECT @@wsrep_node_name")
        .await
    {
        Ok(Some(name)) => name,
        other => panic!("SELECT @@wsrep_node_name: {other:?}"),
    }
}

/// How many of `n` autocommit reads each node answered.
pub async fn readers_of(conn: &mut Conn, n: usize) -> BTreeMap<String, usize> {
    let mut seen = BTreeMap::new();
    for _ in 0..n {
        *seen.entry(answered_by(conn).await).or_insert(0) += 1;
    }
    seen
}

/// The node names in `seen`, sorted.
pub fn names(seen: &BTreeMap<String, usize>) -> Vec<&str> {
    seen.keys().map(String::as_str).collect()
}

/// `wsrep_local_commits` of every node (write sets that originated there), read directly;
/// `None` for a node that does not answer.
pub async fn local_commits() -> Vec<Option<u64>> {
    let mut all = Vec::new();
    for node in 0..cluster().nodes.len() {
        let value = status_of(node, "wsrep_local_commits").await;
        all.push(value.and_then(|v| v.parse().ok()));
    }
    all
}

/// `wsrep_cluster_status` of `node`, read directly (`None` if it does not answer).
pub async fn cluster_status(node: usize) -> Option<String> {
    status_of(node, "wsrep_cluster_status").await
}

/// `wsrep_local_state_comment` of `node`, read directly (`None` if it does not answer).
pub async fn local_state(node: usize) -> Option<String> {
    status_of(node, "wsrep_local_state_comment").await
}

/// The global status variable `name` of `node`, read directly.
async fn status_of(node: usize, name: &str) -> Option<String> {
    let mut conn = cluster().admin_conn(node).await.ok()?;
    let row: Option<(String, String)> = conn
        .query_first(format!("SHOW GLOBAL STATUS LIKE '{name}'"))
        .await
        .ok()
        .flatten();
    let _ = conn.disconnect().await;
    row.map(|(_, v)| v)
}

/// Runs `sql` on `node` as `admin`; panics on failure.
pub async fn admin_exec(node: usize, sql: &str) {
    if let Err(e) = cluster().admin_exec(node, sql).await {
        panic!("{sql} on node{node}: {e}");
    }
}

/// A table name no other test uses, in schema `app`.
pub fn unique_table(tag: &str) -> String {
    use std::sync::atomic::{AtomicU32, Ordering};
    static NEXT: AtomicU32 = AtomicU32::new(0);
    format!(
        "galera_{tag}_{}_{}",
        std::process::id(),
        NEXT.fetch_add(1, Ordering::Relaxed)
    )
}

/// Polls `check` every 100 ms until it returns `Some`, for at most `timeout`.
pub async fn wait_for<T, F, Fut>(timeout: Duration, what: &str, mut check: F) -> T
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = Option<T>>,
{
    let deadline = std::time::Instant::now() + timeout;
    loop {
        if let Some(value) = check().await {
            return value;
        }
        if std::time::Instant::now() >= deadline {
            panic!("{what} did not happen within {timeout:?}");
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}
