//! Helpers shared by the failure tests: private clusters, a proxy with a fast monitor, the
//! admin endpoint's `/backends`, and a steady read load that records who answered.

use std::path::PathBuf;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use mysql_async::prelude::Queryable;
use mysql_async::Conn;
use rwproxy_testkit::{connect, Cluster, ClusterInfo, Credentials, ProxyProcess, StandardConfig};
use rwproxy_testkit::{TestSignal, ThrowawayCluster};
use serde_json::Value;
use tokio::task::JoinHandle;

/// Monitor timings every failure test runs with.
pub const MONITOR_INTERVAL: &str = "200ms";
pub const MONITOR_TIMEOUT: &str = "500ms";

/// A load query (or a connect) that has not answered after this long counts as failed.
pub const QUERY_LIMIT: Duration = Duration::from_secs(3);

/// How often `/backends` is polled.
const POLL_EVERY: Duration = Duration::from_millis(20);

/// The tests of this binary run one at a time: each one breaks a cluster and measures how
/// fast the proxy notices, which parallel tests on a small machine would distort.
pub async fn serial() -> tokio::sync::MutexGuard<'static, ()> {
    static SERIAL: tokio::sync::Mutex<()> = tokio::sync::Mutex::const_new(());
    SERIAL.lock().await
}

/// The rwproxy binary under test (`RWPROXY_TEST_BIN` overrides it).
pub fn proxy_bin() -> PathBuf {
    rwproxy_testkit::paths::proxy_bin_or(env!("CARGO_BIN_EXE_rwproxy"))
}

/// A private cluster `name` with its primary on `base_port` (replicas on the next two ports).
pub fn throwaway(name: &str, base_port: u16) -> ThrowawayCluster {
    match Cluster::throwaway(name, base_port) {
        Ok(cluster) => cluster,
        Err(e) => panic!("cannot bring up the throwaway cluster {name}: {e}"),
    }
}

/// The standard test configuration with the monitor at a 200 ms interval and a 500 ms
/// timeout. `monitor_extra` is more `monitor:` keys, each line indented by two spaces.
pub fn fast_yaml(cluster: &ClusterInfo, monitor_extra: &str) -> String {
    let mut config = StandardConfig::new(cluster);
    config.monitor_interval = MONITOR_INTERVAL.to_string();
    // JSON log lines carry parseable timestamps (see `log_events`).
    let yaml = config
        .to_yaml()
        .replace("log: { format: text,", "log: { format: json,");
    let old = "  timeout: 1s\n";
    assert_eq!(
        yaml.matches(old).count(),
        1,
        "the standard config changed shape:\n{yaml}"
    );
    yaml.replace(
        old,
        &format!("  timeout: {MONITOR_TIMEOUT}\n{monitor_extra}"),
    )
}

/// Start rwproxy with `yaml` and wait until every backend is up with `db1` the primary.
pub async fn start_proxy(yaml: &str) -> ProxyProcess {
    start_proxy_with_token(yaml, None).await
}

/// [`start_proxy`] for a configuration whose admin endpoint wants `token`.
pub async fn start_proxy_with_token(yaml: &str, token: Option<&str>) -> ProxyProcess {
    let mut proxy = match ProxyProcess::start(proxy_bin(), yaml) {
        Ok(proxy) => proxy,
        Err(e) => panic!("{e}"),
    };
    proxy.admin_token = token.map(str::to_string);
    let settled = wait_backends(&proxy, "every backend up, db1 primary", secs(10), |b| {
        primary_name(b).as_deref() == Some("db1")
            && ["db1", "db2", "db3"]
                .iter()
                .all(|n| state_of(b, n).as_deref() == Some("up"))
    })
    .await;
    if let Err(e) = settled {
        panic!("{e}\n--- proxy log ---\n{}", proxy.log_tail(40));
    }
    proxy
}

pub fn secs(s: u64) -> Duration {
    Duration::from_secs(s)
}

pub fn ms(m: u64) -> Duration {
    Duration::from_millis(m)
}

/// [`fast_yaml`] with `write_wait_timeout: 5s`, the admin endpoint guarded by `token`, and a
/// `switchover:` section using the cluster's `admin` and `repl` accounts.
pub fn switchover_yaml(cluster: &ClusterInfo, token: &str) -> String {
    let extra = "  write_wait_timeout: 5s\n";
    fast_yaml(cluster, extra)
        .replace(
            "  listen: {admin}\n",
            &format!("  listen: {{admin}}\n  token: \"{token}\"\n"),
        )
        + "switchover: { user: admin, password: admin_pass, replication_user: repl, replication_password: repl_pass, max_lag: 2s, drain_timeout: 2s, catch_up_timeout: 2s }\n"
}

/// One POST on the admin endpoint (with `token` as bearer, if any): status and body.
pub async fn admin_post(proxy: &ProxyProcess, path: &str, token: Option<&str>) -> (u16, String) {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let mut s = tokio::net::TcpStream::connect(proxy.admin_addr())
        .await
        .unwrap();
    let auth = token.map_or(String::new(), |t| format!("Authorization: Bearer {t}\r\n"));
    s.write_all(
        format!("POST {path} HTTP/1.1\r\nHost: x\r\n{auth}Content-Length: 0\r\nConnection: close\r\n\r\n")
            .as_bytes(),
    )
    .await
    .unwrap();
    let mut answer = String::new();
    s.read_to_string(&mut answer).await.unwrap();
    let status = answer
        .split(' ')
        .nth(1)
        .and_then(|c| c.parse().ok())
        .unwrap_or(0);
    let body = answer
        .split_once("\r\n\r\n")
        .map_or("", |(_, b)| b)
        .to_string();
    (status, body)
}

/// One GET on the admin endpoint: status and body.
pub async fn admin_get(proxy: &ProxyProcess, path: &str) -> Result<(u16, String), String> {
    proxy.admin_get(path).await
}

pub use rwproxy_testkit::backends_doc::{backend_of, backends, primary_name, wait_backends};

/// `state` of backend `name` in a `/backends` document.
pub fn state_of(doc: &Value, name: &str) -> Option<String> {
    backend_of(doc, name)?
        .get("state")?
        .as_str()
        .map(str::to_string)
}

/// Waits (15 s at most) until `/backends` names `name` the primary; panics with the proxy
/// log otherwise.
pub async fn wait_primary(proxy: &ProxyProcess, name: &str) {
    let settled = wait_backends(proxy, &format!("{name} primary"), secs(15), |b| {
        primary_name(b).as_deref() == Some(name)
    })
    .await;
    if let Err(e) = settled {
        panic!("{e}\n--- proxy log ---\n{}", proxy.log_tail(30));
    }
}

/// Like [`wait_backends`] for one backend's state; panics with the proxy log on timeout.
pub async fn wait_state(
    proxy: &ProxyProcess,
    name: &str,
    state: &str,
    timeout: Duration,
) -> Instant {
    let what = format!("{name} {state}");
    match wait_backends(proxy, &what, timeout, |doc| {
        state_of(doc, name).as_deref() == Some(state)
    })
    .await
    {
        Ok((at, _)) => at,
        Err(e) => panic!("{e}\n--- proxy log ---\n{}", proxy.log_tail(30)),
    }
}

/// Send a signal to a node; panics on failure.
pub fn signal_node(cluster: &ClusterInfo, node: usize, signal: TestSignal) {
    let result = match signal {
        TestSignal::Kill => cluster.kill9(node),
        TestSignal::Stop => cluster.sigstop(node),
        TestSignal::Cont => cluster.sigcont(node),
        other => panic!("no such node operation: {other:?}"),
    };
    if let Err(e) = result {
        panic!("signal {signal:?} to node{node}: {e}");
    }
}

/// Resumes a frozen node when dropped, so that a failing test does not leave a stopped
/// mariadbd behind (its teardown would hang on it).
pub struct ContOnDrop<'a> {
    pub cluster: &'a ClusterInfo,
    pub node: usize,
}

impl Drop for ContOnDrop<'_> {
    fn drop(&mut self) {
        let _ = self.cluster.sigcont(self.node);
    }
}

/// What one load query got.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Outcome {
    /// `SELECT @@server_id` answered with this id.
    Server(u32),
    /// An error, or no answer within [`QUERY_LIMIT`].
    Failed(String),
}

/// One load query: which client, when it was sent, when it ended, and what it got.
#[derive(Debug, Clone)]
pub struct Sample {
    pub client: usize,
    pub started: Instant,
    pub finished: Instant,
    pub outcome: Outcome,
}

impl Sample {
    pub fn server(&self) -> Option<u32> {
        match self.outcome {
            Outcome::Server(id) => Some(id),
            Outcome::Failed(_) => None,
        }
    }
}

/// Clients looping `SELECT @@server_id` through the proxy, outside any transaction.
pub struct ReadLoad {
    stop: Arc<AtomicBool>,
    samples: Arc<Mutex<Vec<Sample>>>,
    workers: Vec<JoinHandle<()>>,
}

impl ReadLoad {
    /// Start `clients` clients against the proxy on `port`.
    pub fn start(port: u16, creds: &Credentials, clients: usize) -> ReadLoad {
        let stop = Arc::new(AtomicBool::new(false));
        let samples = Arc::new(Mutex::new(Vec::new()));
        let workers = (0..clients)
            .map(|client| {
                tokio::spawn(read_worker(
                    port,
                    creds.clone(),
                    client,
                    Arc::clone(&stop),
                    Arc::clone(&samples),
                ))
            })
            .collect();
        ReadLoad {
            stop,
            samples,
            workers,
        }
    }

    /// Everything recorded so far.
    pub fn samples(&self) -> Vec<Sample> {
        self.samples.lock().unwrap().clone()
    }

    /// Wait until a read started at or after `since` is answered by `server_id`; when.
    pub async fn wait_seen(
        &self,
        server_id: u32,
        since: Instant,
        timeout: Duration,
    ) -> Option<Instant> {
        let deadline = Instant::now() + timeout;
        loop {
            let seen = self
                .samples()
                .iter()
                .filter(|s| s.started >= since && s.server() == Some(server_id))
                .map(|s| s.finished)
                .min();
            if seen.is_some() {
                return seen;
            }
            if Instant::now() >= deadline {
                return None;
            }
            tokio::time::sleep(POLL_EVERY).await;
        }
    }

    /// Stop the clients and return every sample.
    pub async fn stop(self) -> Vec<Sample> {
        self.stop.store(true, Ordering::SeqCst);
        for worker in self.workers {
            // A worker ends within one QUERY_LIMIT; don't wait forever on a broken one.
            let _ = tokio::time::timeout(QUERY_LIMIT + secs(2), worker).await;
        }
        let mut all = self.samples.lock().unwrap().clone();
        all.sort_by_key(|s| s.started);
        all
    }
}

async fn read_worker(
    port: u16,
    creds: Credentials,
    client: usize,
    stop: Arc<AtomicBool>,
    samples: Arc<Mutex<Vec<Sample>>>,
) {
    let record = |started: Instant, outcome: Outcome| {
        samples.lock().unwrap().push(Sample {
            client,
            started,
            finished: Instant::now(),
            outcome,
        });
    };
    let mut conn: Option<Conn> = None;
    while !stop.load(Ordering::SeqCst) {
        let started = Instant::now();
        let mut c = match conn.take() {
            Some(c) => c,
            None => {
                match tokio::time::timeout(QUERY_LIMIT, connect(port, &creds, Some("app"))).await {
                    Ok(Ok(c)) => c,
                    Ok(Err(e)) => {
                        record(started, Outcome::Failed(format!("connect: {e}")));
                        tokio::time::sleep(ms(50)).await;
                        continue;
                    }
                    Err(_) => {
                        record(
                            started,
                            Outcome::Failed("connect: no answer within 3 s".into()),
                        );
                        continue;
                    }
                }
            }
        };
        let started = Instant::now();
        match tokio::time::timeout(QUERY_LIMIT, c.query_first::<u32, _>("SELECT @@server_id")).await
        {
            Ok(Ok(Some(id))) => {
                record(started, Outcome::Server(id));
                conn = Some(c);
            }
            Ok(Ok(None)) => {
                record(started, Outcome::Failed("no row".into()));
                conn = Some(c);
            }
            // A broken or hung session is dropped; the next round opens a new one.
            Ok(Err(e)) => record(started, Outcome::Failed(e.to_string())),
            Err(_) => record(started, Outcome::Failed("no answer within 3 s".into())),
        }
        tokio::time::sleep(ms(5)).await;
    }
    if let Some(c) = conn {
        let _ = tokio::time::timeout(secs(1), c.disconnect()).await;
    }
}

/// Failed samples, described for an assertion message.
pub fn failures(samples: &[Sample], origin: Instant) -> Vec<String> {
    samples
        .iter()
        .filter_map(|s| match &s.outcome {
            Outcome::Failed(why) => Some(format!(
                "client {} at +{} ms (ended +{} ms): {why}",
                s.client,
                signed_ms(s.started, origin),
                signed_ms(s.finished, origin)
            )),
            Outcome::Server(_) => None,
        })
        .collect()
}

/// Reads started in `[from, to)` answered by `server_id`.
pub fn answered_by(samples: &[Sample], server_id: u32, from: Instant, to: Instant) -> Vec<&Sample> {
    samples
        .iter()
        .filter(|s| s.started >= from && s.started < to && s.server() == Some(server_id))
        .collect()
}

/// Milliseconds from `origin` to `t`, negative when `t` is earlier.
pub fn signed_ms(t: Instant, origin: Instant) -> i64 {
    if t >= origin {
        (t - origin).as_millis() as i64
    } else {
        -((origin - t).as_millis() as i64)
    }
}

/// A direct admin connection to a node; panics on failure.
pub async fn admin_conn(cluster: &ClusterInfo, node: usize) -> Conn {
    match cluster.admin_conn(node).await {
        Ok(conn) => conn,
        Err(e) => panic!("admin connection to node{node}: {e}"),
    }
}

/// Run statements on a node as admin; panics on failure.
pub async fn admin_exec(cluster: &ClusterInfo, node: usize, sql: &str) {
    if let Err(e) = cluster.admin_exec(node, sql).await {
        panic!("on node{node}: {sql}: {e}");
    }
}

/// `@@server_id` of node `node`, asked directly.
pub async fn node_server_id(cluster: &ClusterInfo, node: usize) -> u32 {
    let port = cluster.nodes[node].port;
    match cluster.server_id_of(port).await {
        Ok(id) => id,
        Err(e) => panic!("server_id of node{node}: {e}"),
    }
}

/// The load must reach both replicas before a test breaks one.
pub async fn wait_both_replicas_serve(load: &ReadLoad, ids: [u32; 2], proxy: &ProxyProcess) {
    let since = Instant::now();
    for id in ids {
        if load.wait_seen(id, since, secs(5)).await.is_none() {
            panic!(
                "no read reached server_id {id} within 5 s; failures: {:?}\n--- proxy log ---\n{}",
                failures(&load.samples(), since),
                proxy.log_tail(30)
            );
        }
    }
}

/// A connection through the proxy as `app`, schema `app`.
pub async fn app_via(proxy: &ProxyProcess, cluster: &ClusterInfo) -> Conn {
    match connect(proxy.port, &cluster.app, Some("app")).await {
        Ok(conn) => conn,
        Err(e) => panic!(
            "connecting through rwproxy: {e}\n--- proxy log ---\n{}",
            proxy.log_tail(30)
        ),
    }
}

/// One JSON log line of the proxy: its wall-clock time and its fields.
#[derive(Debug, Clone)]
pub struct LogEvent {
    pub at: std::time::SystemTime,
    pub fields: Value,
}

impl LogEvent {
    pub fn message(&self) -> &str {
        self.fields
            .get("message")
            .and_then(Value::as_str)
            .unwrap_or("")
    }

    pub fn field(&self, name: &str) -> Option<String> {
        self.fields.get(name).map(|v| match v {
            Value::String(s) => s.clone(),
            other => other.to_string(),
        })
    }
}

/// Every JSON line of the proxy's log (lines that are not JSON are skipped).
pub fn log_events(proxy: &ProxyProcess) -> Vec<LogEvent> {
    proxy
        .log_text()
        .lines()
        .filter_map(|line| serde_json::from_str::<Value>(line).ok())
        .filter_map(|v| {
            let at = parse_rfc3339_utc(v.get("timestamp")?.as_str()?)?;
            Some(LogEvent {
                at,
                fields: v.get("fields").cloned().unwrap_or(Value::Null),
            })
        })
        .collect()
}

/// `YYYY-MM-DDTHH:MM:SS[.fraction]Z` to a `SystemTime`.
pub fn parse_rfc3339_utc(text: &str) -> Option<std::time::SystemTime> {
    let text = text.strip_suffix('Z')?;
    let (date, time) = text.split_once('T')?;
    let mut d = date.split('-').map(|p| p.parse::<i64>().ok());
    let (y, m, day) = (d.next()??, d.next()??, d.next()??);
    let (hms, frac) = time.split_once('.').unwrap_or((time, ""));
    let mut t = hms.split(':').map(|p| p.parse::<i64>().ok());
    let (hh, mm, ss) = (t.next()??, t.next()??, t.next()??);
    let nanos = if frac.is_empty() {
        0
    } else {
        let digits: String = frac.chars().take(9).collect();
        digits.parse::<u64>().ok()? * 10u64.pow(9 - digits.len() as u32)
    };
    // Days since 1970-01-01 of a proleptic Gregorian date (era arithmetic, March-based years).
    let y = if m <= 2 { y - 1 } else { y };
    let era = y.div_euclid(400);
    let yoe = y - era * 400;
    let mp = (m + 9) % 12;
    let doy = (153 * mp + 2) / 5 + day - 1;
    let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    let days = era * 146_097 + doe - 719_468;
    let secs = u64::try_from(days * 86_400 + hh * 3600 + mm * 60 + ss).ok()?;
    Some(std::time::UNIX_EPOCH + Duration::from_secs(secs) + Duration::from_nanos(nanos))
}

/// The `Instant` of a wall-clock time, given one moment known on both clocks.
pub fn instant_of(at: std::time::SystemTime, anchor: (Instant, std::time::SystemTime)) -> Instant {
    let (anchor_instant, anchor_wall) = anchor;
    match at.duration_since(anchor_wall) {
        Ok(after) => anchor_instant + after,
        Err(before) => anchor_instant
            .checked_sub(before.duration())
            .unwrap_or(anchor_instant),
    }
}

#[test]
fn rfc3339_timestamps_parse() {
    let t = parse_rfc3339_utc("2024-02-29T23:59:58.25Z").unwrap();
    let since = t.duration_since(std::time::UNIX_EPOCH).unwrap();
    // date -u -d 2024-02-29T23:59:58Z +%s
    assert_eq!(since.as_secs(), 1_709_251_198);
    assert_eq!(since.subsec_millis(), 250);
    assert_eq!(
        parse_rfc3339_utc("1970-01-01T00:00:00Z"),
        Some(std::time::UNIX_EPOCH)
    );
    assert_eq!(parse_rfc3339_utc("yesterday"), None);
}
