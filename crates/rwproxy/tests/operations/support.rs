//! Helpers for the operations tests: starting a proxy and waiting until it splits reads,
//! talking HTTP to the admin endpoint, reading Prometheus samples, bounded polling.

use std::future::Future;
use std::path::PathBuf;
use std::sync::atomic::{AtomicU32, Ordering};
use std::time::{Duration, Instant};

use mysql_async::prelude::Queryable;
use mysql_async::Conn;
use rwproxy_testkit::{Cluster, ClusterInfo, ProxyProcess, StandardConfig};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

/// The rwproxy binary under test (`RWPROXY_TEST_BIN` overrides the one cargo built).
pub fn proxy_bin() -> PathBuf {
    rwproxy_testkit::paths::proxy_bin_or(env!("CARGO_BIN_EXE_rwproxy"))
}

/// The shared cluster (`main`: primary 3316, replicas 3317 and 3318).
pub fn shared() -> &'static ClusterInfo {
    Cluster::shared()
}

/// A table name in schema `app` no other test or process uses.
pub fn unique_table(tag: &str) -> String {
    static NEXT: AtomicU32 = AtomicU32::new(0);
    format!(
        "ops_{tag}_{}_{}",
        std::process::id(),
        NEXT.fetch_add(1, Ordering::Relaxed)
    )
}

/// Poll `check` every 50 ms until it returns `Some`, for at most `timeout`; panics with
/// `what` (and the last state `check` reported through `last`) when time runs out.
pub async fn poll_until<T, F, Fut>(timeout: Duration, what: &str, mut check: F) -> T
where
    F: FnMut() -> Fut,
    Fut: Future<Output = Result<T, String>>,
{
    let deadline = Instant::now() + timeout;
    loop {
        let last = match check().await {
            Ok(value) => return value,
            Err(state) => state,
        };
        if Instant::now() >= deadline {
            panic!(
                "timed out after {:.1}s waiting for {what}; last state: {last}",
                timeout.as_secs_f64()
            );
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

/// Start rwproxy with `yaml` and wait until its monitor sees `cluster`'s primary and every
/// replica as readable, so that reads are split from the first statement on.
pub async fn start_routable(cluster: &ClusterInfo, yaml: &str) -> ProxyProcess {
    let proxy = match ProxyProcess::start(proxy_bin(), yaml) {
        Ok(proxy) => proxy,
        Err(e) => panic!("starting rwproxy: {e}"),
    };
    wait_routable(&proxy, cluster.replicas().len(), None).await;
    proxy
}

/// Wait until `/backends` shows one primary and `replicas` readable replicas.
pub async fn wait_routable(proxy: &ProxyProcess, replicas: usize, token: Option<&str>) {
    poll_until(
        Duration::from_secs(15),
        "a primary and readable replicas",
        || async {
            let (status, body) = http_get(proxy, "/backends", token).await?;
            if status != 200 {
                return Err(format!("/backends answered {status}: {body}"));
            }
            let json: serde_json::Value =
                serde_json::from_str(&body).map_err(|e| format!("{e}: {body}"))?;
            let readable = json["backends"]
                .as_array()
                .map(|list| list.iter().filter(|b| b["readable"] == true).count())
                .unwrap_or(0);
            if json["primary"]["state"] == "one" && readable == replicas {
                Ok(())
            } else {
                Err(body)
            }
        },
    )
    .await;
}

/// The standard configuration for `cluster` with a fast monitor and `extra` YAML appended.
pub fn config_for(cluster: &ClusterInfo, extra: &str) -> StandardConfig {
    let mut config = StandardConfig::new(cluster);
    config.monitor_interval = "200ms".into();
    config.extra = extra.to_string();
    config
}

/// An `app` session through the proxy, schema `app`.
pub async fn app_via(proxy: &ProxyProcess, cluster: &ClusterInfo) -> Conn {
    match proxy.connect(&cluster.app, Some("app")).await {
        Ok(conn) => conn,
        Err(e) => panic!(
            "connecting through rwproxy: {e}\n--- proxy log ---\n{}",
            proxy.log_tail(40)
        ),
    }
}

/// `SELECT @@server_id` on a session.
pub async fn server_id(conn: &mut Conn, proxy: &ProxyProcess) -> u32 {
    match conn.query_first::<u32, _>("SELECT @@server_id").await {
        Ok(Some(id)) => id,
        Ok(None) => panic!("SELECT @@server_id returned no row"),
        Err(e) => panic!(
            "SELECT @@server_id through rwproxy failed: {e}\n--- proxy log ---\n{}",
            proxy.log_tail(40)
        ),
    }
}

/// `GET path` on the admin endpoint (HTTP/1.1, one request per connection): status and body.
pub async fn http_get(
    proxy: &ProxyProcess,
    path: &str,
    token: Option<&str>,
) -> Result<(u16, String), String> {
    let mut stream = TcpStream::connect(proxy.admin_addr())
        .await
        .map_err(|e| format!("connecting to the admin endpoint: {e}"))?;
    let auth = token
        .map(|t| format!("Authorization: Bearer {t}\r\n"))
        .unwrap_or_default();
    let request =
        format!("GET {path} HTTP/1.1\r\nHost: 127.0.0.1\r\n{auth}Connection: close\r\n\r\n");
    stream
        .write_all(request.as_bytes())
        .await
        .map_err(|e| format!("sending the request: {e}"))?;
    let mut raw = Vec::new();
    tokio::time::timeout(Duration::from_secs(10), stream.read_to_end(&mut raw))
        .await
        .map_err(|_| format!("GET {path}: no complete answer within 10 s"))?
        .map_err(|e| format!("reading the answer: {e}"))?;
    let text = String::from_utf8_lossy(&raw).into_owned();
    let (head, body) = text
        .split_once("\r\n\r\n")
        .ok_or_else(|| format!("no end of headers in {text:?}"))?;
    let status = head
        .split_whitespace()
        .nth(1)
        .and_then(|s| s.parse::<u16>().ok())
        .ok_or_else(|| format!("no status in {head:?}"))?;
    let chunked = head
        .lines()
        .any(|l| l.to_ascii_lowercase().replace(' ', "") == "transfer-encoding:chunked");
    let body = if chunked {
        dechunk(body)?
    } else {
        body.to_string()
    };
    Ok((status, body))
}

fn dechunk(mut rest: &str) -> Result<String, String> {
    let mut out = String::new();
    loop {
        let (size, after) = rest
            .split_once("\r\n")
            .ok_or_else(|| "truncated chunk size".to_string())?;
        let size = usize::from_str_radix(size.split(';').next().unwrap_or("").trim(), 16)
            .map_err(|e| format!("bad chunk size {size:?}: {e}"))?;
        if size == 0 {
            return Ok(out);
        }
        let chunk = after
            .get(..size)
            .ok_or_else(|| "truncated chunk".to_string())?;
        out.push_str(chunk);
        rest = after.get(size + 2..).unwrap_or("");
    }
}

/// `/metrics` text (panics unless the answer is 200).
pub async fn scrape(proxy: &ProxyProcess, token: Option<&str>) -> String {
    match http_get(proxy, "/metrics", token).await {
        Ok((200, body)) => body,
        Ok((status, body)) => panic!("/metrics answered {status}: {body}"),
        Err(e) => panic!("/metrics: {e}"),
    }
}

/// `/config` or `/backends` as JSON (panics unless the answer is 200).
pub async fn admin_json(proxy: &ProxyProcess, path: &str) -> serde_json::Value {
    match http_get(proxy, path, None).await {
        Ok((200, body)) => {
            serde_json::from_str(&body).unwrap_or_else(|e| panic!("{path}: {e}: {body}"))
        }
        Ok((status, body)) => panic!("{path} answered {status}: {body}"),
        Err(e) => panic!("{path}: {e}"),
    }
}

pub use rwproxy_testkit::metrics::{metric, must_metric};

/// The success/failure counters of configuration reloads.
pub fn reloads(text: &str) -> (f64, f64) {
    (
        must_metric(
            text,
            "rwproxy_config_reloads_total",
            &[("result", "success")],
        ),
        must_metric(
            text,
            "rwproxy_config_reloads_total",
            &[("result", "failure")],
        ),
    )
}

/// Wait until the reload counters reach at least (`success`, `failure`); returns the scrape.
pub async fn wait_reloads(proxy: &ProxyProcess, success: f64, failure: f64) -> String {
    let what = format!("config reloads to reach success={success} failure={failure}");
    poll_until(Duration::from_secs(10), &what, || async {
        let text = scrape(proxy, None).await;
        let (s, f) = reloads(&text);
        if s >= success && f >= failure {
            Ok(text)
        } else {
            Err(format!(
                "success={s} failure={f}; log tail:\n{}",
                proxy.log_tail(5)
            ))
        }
    })
    .await
}
