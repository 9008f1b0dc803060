//! Shared test helpers: an `AdminState` over real `Metrics`, a server starter, a tiny raw
//! HTTP/1.1 client and a Prometheus text sample lookup.

#![allow(dead_code)]

use std::net::SocketAddr;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use rwproxy_admin::{
    serve, AdminError, AdminState, BackendMetricsView, BackendRole, BackendState, LagSource,
    Metrics,
};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::oneshot;
use tokio::task::JoinHandle;

/// An `AdminState` the way the binary is expected to build one: backend gauges refreshed from
/// a snapshot at scrape time, then the registry encoded.
pub struct TestState {
    pub metrics: Metrics,
    pub backends: Mutex<Vec<BackendMetricsView>>,
    pub ready: Mutex<Result<(), String>>,
}

impl TestState {
    pub fn new() -> Arc<Self> {
        Arc::new(TestState {
            metrics: Metrics::new(),
            backends: Mutex::new(vec![backend("db1", BackendRole::Primary)]),
            ready: Mutex::new(Ok(())),
        })
    }
}

impl AdminState for TestState {
    fn metrics_text(&self) -> Result<String, AdminError> {
        self.metrics.set_backends(&self.backends.lock().unwrap());
        self.metrics.encode()
    }

    fn backends_json(&self) -> serde_json::Value {
        let backends = self.backends.lock().unwrap();
        serde_json::Value::Array(
            backends
                .iter()
                .map(|b| serde_json::json!({"name": b.name, "role": b.role.as_str()}))
                .collect(),
        )
    }

    fn config_json(&self) -> serde_json::Value {
        serde_json::json!({"listen": "127.0.0.1:6033", "admin": {"token": "<redacted>"}})
    }

    fn ready(&self) -> Result<(), String> {
        self.ready.lock().unwrap().clone()
    }
}

pub fn backend(name: &str, role: BackendRole) -> BackendMetricsView {
    BackendMetricsView {
        name: name.to_owned(),
        up: true,
        role,
        state: BackendState::Up,
        lag_seconds: None,
        lag_source: LagSource::None,
        check_latency: Some(Duration::from_millis(3)),
        connections: 0,
        pool_idle: 0,
        pool_pinned: 0,
        galera_recv_queue: None,
        galera_flow_control_paused: None,
    }
}

/// A running admin server on 127.0.0.1.
pub struct Server {
    pub addr: SocketAddr,
    stop: Option<oneshot::Sender<()>>,
    pub task: JoinHandle<()>,
}

impl Server {
    pub async fn start(state: Arc<TestState>, token: Option<&str>) -> Server {
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        let (stop, stopped) = oneshot::channel::<()>();
        let task = tokio::spawn(serve(
            listener,
            state,
            token.map(str::to_owned),
            async move {
                let _ = stopped.await;
            },
        ));
        Server {
            addr,
            stop: Some(stop),
            task,
        }
    }

    /// Signals shutdown and returns the serve task to await.
    pub fn shutdown(mut self) -> JoinHandle<()> {
        if let Some(stop) = self.stop.take() {
            let _ = stop.send(());
        }
        self.task
    }
}

#[derive(Debug)]
pub struct HttpResponse {
    pub status: u16,
    pub headers: Vec<(String, String)>,
    pub body: String,
}

impl HttpResponse {
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(n, _)| n.eq_ignore_ascii_case(name))
            .map(|(_, v)| v.as_str())
    }
}

/// Sends `raw` as-is and reads until the server closes the connection.
pub async fn raw_request(addr: SocketAddr, raw: &[u8]) -> Vec<u8> {
    let mut stream = TcpStream::connect(addr).await.unwrap();
    // The server may answer and close before reading everything (oversized requests).
    let _ = stream.write_all(raw).await;
    let mut out = Vec::new();
    tokio::time::timeout(Duration::from_secs(15), stream.read_to_end(&mut out))
        .await
        .expect("server did not close the connection in time")
        .ok();
    out
}

pub fn parse_response(bytes: &[u8]) -> HttpResponse {
    let text = String::from_utf8_lossy(bytes);
    let (head, body) = text
        .split_once("\r\n\r\n")
        .unwrap_or_else(|| panic!("no header terminator in {text:?}"));
    let mut lines = head.split("\r\n");
    let status_line = lines.next().unwrap();
    let status = status_line
        .split(' ')
        .nth(1)
        .and_then(|s| s.parse().ok())
        .unwrap_or_else(|| panic!("bad status line {status_line:?}"));
    let headers = lines
        .filter_map(|l| l.split_once(':'))
        .map(|(n, v)| (n.trim().to_owned(), v.trim().to_owned()))
        .collect();
    HttpResponse {
        status,
        headers,
        body: body.to_owned(),
    }
}

/// One request with `Connection: close`.
pub async fn request(
    addr: SocketAddr,
    method: &str,
    path: &str,
    extra_headers: &[(&str, &str)],
) -> HttpResponse {
    let mut raw = format!("{method} {path} HTTP/1.1\r\nHost: {addr}\r\nConnection: close\r\n");
    for (name, value) in extra_headers {
        raw.push_str(&format!("{name}: {value}\r\n"));
    }
    raw.push_str("\r\n");
    parse_response(&raw_request(addr, raw.as_bytes()).await)
}

pub async fn get(addr: SocketAddr, path: &str, token: Option<&str>) -> HttpResponse {
    match token {
        Some(token) => {
            let value = format!("Bearer {token}");
            request(addr, "GET", path, &[("Authorization", value.as_str())]).await
        }
        None => request(addr, "GET", path, &[]).await,
    }
}

/// The value of the sample whose name-and-labels part is exactly `series` (e.g.
/// `rwproxy_errors_total{code="1045"}`), if present.
pub fn sample(text: &str, series: &str) -> Option<f64> {
    text.lines().filter(|l| !l.starts_with('#')).find_map(|l| {
        let (name, value) = l.rsplit_once(' ')?;
        (name == series).then(|| value.parse().ok())?
    })
}

/// Every sample line of the series `name` (with any labels).
pub fn series_lines<'a>(text: &'a str, name: &str) -> Vec<&'a str> {
    text.lines()
        .filter(|l| !l.starts_with('#'))
        .filter(|l| {
            l.strip_prefix(name)
                .is_some_and(|rest| rest.starts_with('{') || rest.starts_with(' '))
        })
        .collect()
}
