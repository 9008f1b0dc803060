//! Helpers shared by the endpoint tests.

use std::path::PathBuf;
use std::sync::atomic::{AtomicU32, Ordering};
use std::time::Duration;

use mysql_async::prelude::Queryable;
use mysql_async::{Conn, Row, ServerError, Value};
use rwproxy_testkit::{standard_yaml, Cluster, ClusterInfo, ProxyProcess};

/// The rwproxy binary under test.
pub fn proxy_bin() -> PathBuf {
    rwproxy_testkit::paths::proxy_bin_or(env!("CARGO_BIN_EXE_rwproxy"))
}

pub fn cluster() -> &'static ClusterInfo {
    Cluster::shared()
}

/// Start the proxy with a YAML template (see `rwproxy_testkit::proxy_config`).
pub fn start_proxy(yaml: &str) -> ProxyProcess {
    // Bring the cluster up first so that the proxy's monitor finds it.
    let _ = cluster();
    match ProxyProcess::start(proxy_bin(), yaml) {
        Ok(proxy) => proxy,
        Err(e) => panic!("{e}"),
    }
}

/// The proxy with the standard config for the shared cluster.
pub fn start_standard_proxy() -> ProxyProcess {
    start_proxy(&standard_yaml(cluster(), ""))
}

/// An `app` session through the proxy, schema `app`.
pub async fn app_via(proxy: &ProxyProcess) -> Conn {
    match proxy.connect(&cluster().app, Some("app")).await {
        Ok(conn) => conn,
        Err(e) => panic!(
            "connecting through rwproxy: {e}\n--- proxy log ---\n{}",
            proxy.log_tail(40)
        ),
    }
}

/// An `app` session straight to the primary, schema `app`.
pub async fn app_direct() -> Conn {
    cluster().app_conn(0).await.unwrap()
}

/// A table name in schema `app` that no other test (or test process) uses.
pub fn unique_table(tag: &str) -> String {
    static COUNTER: AtomicU32 = AtomicU32::new(0);
    let n = COUNTER.fetch_add(1, Ordering::Relaxed);
    format!("t_{tag}_{}_{n}", std::process::id())
}

/// A fresh, well-behaved session through the proxy still works.
pub async fn assert_proxy_serves(proxy: &ProxyProcess) {
    let mut conn = app_via(proxy).await;
    let one: Option<i64> = match conn.query_first("SELECT 1").await {
        Ok(v) => v,
        Err(e) => panic!(
            "SELECT 1 through rwproxy failed: {e}\n--- proxy log ---\n{}",
            proxy.log_tail(40)
        ),
    };
    assert_eq!(one, Some(1));
    conn.disconnect().await.unwrap();
}

/// `rwproxy_client_rejections_total{reason}` now.
pub async fn rejections(proxy: &ProxyProcess, reason: &str) -> f64 {
    proxy
        .series(REJECTIONS, &[("reason", reason)])
        .await
        .unwrap_or_else(|e| panic!("{e}"))
}

/// Waits (5 s at most) until `rwproxy_client_rejections_total{reason}` reaches `value`: a
/// refusal is counted once rwproxy has closed the connection. Its value then.
pub async fn wait_rejections(proxy: &ProxyProcess, reason: &str, value: f64) -> f64 {
    proxy
        .wait_series(
            REJECTIONS,
            &[("reason", reason)],
            value,
            Duration::from_secs(5),
        )
        .await
        .unwrap_or_else(|e| panic!("{e}\n--- proxy log ---\n{}", proxy.log_tail(20)))
}

const REJECTIONS: &str = "rwproxy_client_rejections_total";

/// The server error inside a client error; panics (failing the test) on anything else.
pub fn server_error(err: mysql_async::Error) -> ServerError {
    match err {
        mysql_async::Error::Server(e) => e,
        other => panic!("expected a server error (ERR packet), got {other:?}"),
    }
}

/// Rows as plain values, for comparisons.
pub fn values(rows: &[Row]) -> Vec<Vec<Value>> {
    rows.iter().map(|r| r.clone().unwrap()).collect()
}

/// Column names and types of a result, for comparisons.
pub fn column_shape(rows: &[Row]) -> Vec<(String, String)> {
    rows.first()
        .map(|r| {
            r.columns_ref()
                .iter()
                .map(|c| (c.name_str().into_owned(), format!("{:?}", c.column_type())))
                .collect()
        })
        .unwrap_or_default()
}

/// Deterministic pseudo-random bytes (xorshift), so failures are reproducible.
pub fn pseudo_random_bytes(len: usize, seed: u64) -> Vec<u8> {
    let mut state = seed | 1;
    let mut out = Vec::with_capacity(len + 8);
    while out.len() < len {
        state ^= state << 13;
        state ^= state >> 7;
        state ^= state << 17;
        out.extend_from_slice(&state.to_le_bytes());
    }
    out.truncate(len);
    out
}

/// A well-behaved session opened before a test misbehaves, and checked afterwards:
/// it must still answer, on the same connection.
pub struct Bystander {
    conn: Conn,
    id: u64,
}

impl Bystander {
    pub async fn join(proxy: &ProxyProcess) -> Bystander {
        let mut conn = app_via(proxy).await;
        let id: Option<u64> = conn.query_first("SELECT CONNECTION_ID()").await.unwrap();
        Bystander {
            conn,
            id: id.expect("a connection id"),
        }
    }

    pub async fn assert_unharmed(&mut self, proxy: &ProxyProcess) {
        let row: Option<(u64, i64)> =
            match self.conn.query_first("SELECT CONNECTION_ID(), 1 + 1").await {
                Ok(row) => row,
                Err(e) => panic!(
                    "the bystander session broke: {e}\n--- proxy log ---\n{}",
                    proxy.log_tail(40)
                ),
            };
        assert_eq!(row, Some((self.id, 2)), "the bystander session changed");
    }
}
