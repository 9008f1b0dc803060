//! PROXY protocol v1 and v2 on the client listener (`proxy_protocol.trusted`): from a trusted
//! address the header says who the client is, and that address is what account host matching,
//! logs and `/sessions` see; from any other address a header is not read and the connection is
//! refused; a trusted connection without a valid header is refused. With HAProxy's
//! `send-proxy` and `send-proxy-v2` in front, the client's own port reaches `/sessions`.

use std::net::SocketAddr;
use std::process::{Child, Command, Stdio};
use std::time::Duration;

use mysql_async::prelude::Queryable;
use rwproxy_testkit::wire::{Greeting, RawConn, Reply};
use rwproxy_testkit::{free_port, ProxyProcess, StandardConfig};

use crate::support::{app_direct, cluster, start_proxy, Bystander};

fn proxy(trusted: &str, extra: &str) -> ProxyProcess {
    let mut config = StandardConfig::new(cluster());
    config.extra = format!("proxy_protocol: {{ trusted: [{trusted}] }}\n{extra}");
    start_proxy(&config.to_yaml())
}

fn v1(src: &str, port: u16) -> Vec<u8> {
    format!("PROXY TCP4 {src} 127.0.0.1 {port} 6033\r\n").into_bytes()
}

fn v2(src: [u8; 4], port: u16) -> Vec<u8> {
    let mut h = vec![
        0x0D, 0x0A, 0x0D, 0x0A, 0x00, 0x0D, 0x0A, 0x51, 0x55, 0x49, 0x54, 0x0A, 0x21, 0x11, 0x00,
        0x0C,
    ];
    h.extend_from_slice(&src);
    h.extend_from_slice(&[127, 0, 0, 1]);
    h.extend_from_slice(&port.to_be_bytes());
    h.extend_from_slice(&6033u16.to_be_bytes());
    h
}

/// Sends `header` (if any), then logs in; the login's reply.
async fn login_with(
    addr: SocketAddr,
    header: &[u8],
    user: &str,
    password: &str,
) -> (RawConn, Reply) {
    let mut conn = RawConn::connect(addr).await.unwrap();
    if !header.is_empty() {
        conn.write_raw(header).await.unwrap();
    }
    let greeting = match conn.read_greeting().await {
        Ok(Greeting::Handshake(h)) => h,
        Ok(Greeting::Err(e)) => return (conn, Reply::Err(e)),
        Err(_) => return (conn, Reply::Closed),
    };
    if conn
        .send_login(&greeting, user, password, Some("app"), 1)
        .await
        .is_err()
    {
        return (conn, Reply::Closed);
    }
    let reply = conn
        .read_auth_result(password)
        .await
        .unwrap_or(Reply::Closed);
    (conn, reply)
}

async fn sessions(proxy: &ProxyProcess) -> Vec<serde_json::Value> {
    let (status, body) = proxy.admin_get("/sessions").await.unwrap();
    assert_eq!(status, 200, "{body}");
    serde_json::from_str::<serde_json::Value>(&body)
        .unwrap()
        .as_array()
        .cloned()
        .unwrap_or_default()
}

async fn session_clients(proxy: &ProxyProcess) -> Vec<String> {
    sessions(proxy)
        .await
        .iter()
        .filter_map(|s| s["client"].as_str().map(str::to_string))
        .collect()
}

#[tokio::test]
async fn v1_and_v2_headers_from_a_trusted_address_give_the_real_client() {
    let proxy = proxy("127.0.0.1/32", "");
    let app = &cluster().app;
    let (mut a, reply) = login_with(
        proxy.addr(),
        &v1("10.9.8.7", 5555),
        &app.user,
        &app.password,
    )
    .await;
    assert_eq!(reply, Reply::Ok, "{}", proxy.log_tail(10));
    let (mut b, reply) = login_with(
        proxy.addr(),
        &v2([10, 9, 8, 8], 5556),
        &app.user,
        &app.password,
    )
    .await;
    assert_eq!(reply, Reply::Ok, "{}", proxy.log_tail(10));
    for conn in [&mut a, &mut b] {
        assert!(matches!(
            conn.query("SELECT 1").await.unwrap(),
            Reply::Rows(_)
        ));
    }
    let clients = session_clients(&proxy).await;
    assert!(
        clients.contains(&"10.9.8.7:5555".to_string()),
        "{clients:?}"
    );
    assert!(
        clients.contains(&"10.9.8.8:5556".to_string()),
        "{clients:?}"
    );
    // Log lines name the client next to the balancer's address (`peer`).
    let (_c, reply) = login_with(proxy.addr(), &v1("10.9.8.9", 5558), &app.user, "wrong").await;
    assert_eq!(reply.err().map(|e| e.code), Some(1045));
    tokio::time::sleep(Duration::from_millis(200)).await;
    let log = proxy.log_tail(200);
    assert!(
        log.lines()
            .any(|l| l.contains("client=10.9.8.9:5558") && l.contains("wrong password")),
        "{log}"
    );

    // A trusted connection that starts with something else than a header is refused (closed
    // without a MySQL packet); others are not disturbed.
    let mut bystander_conn = RawConn::connect(proxy.addr()).await.unwrap();
    bystander_conn
        .write_raw(b"GET / HTTP/1.0\r\n\r\n")
        .await
        .unwrap();
    let closing = bystander_conn
        .wait_closed(Duration::from_secs(10))
        .await
        .unwrap();
    assert!(
        closing.err.is_none(),
        "no MySQL packet for a non-PROXY start: {closing:?}"
    );
    assert!(matches!(b.query("SELECT 2").await.unwrap(), Reply::Rows(_)));
}

#[tokio::test]
async fn a_header_from_an_untrusted_address_is_refused() {
    let proxy = proxy("10.0.0.0/8", "");
    let mut bystander = Bystander::join(&proxy).await;
    let app = &cluster().app;
    let (_conn, reply) = login_with(
        proxy.addr(),
        &v1("10.9.8.7", 5555),
        &app.user,
        &app.password,
    )
    .await;
    assert!(
        matches!(reply, Reply::Err(_) | Reply::Closed),
        "a PROXY header from 127.0.0.1 (not trusted) was accepted: {reply:?}"
    );
    // Without a header, clients from untrusted addresses log in as always.
    let (_conn, reply) = login_with(proxy.addr(), b"", &app.user, &app.password).await;
    assert_eq!(reply, Reply::Ok);
    bystander.assert_unharmed(&proxy).await;
}

#[tokio::test]
async fn account_hosts_are_matched_against_the_real_client() {
    // An account only for 127.0.0.1 (where the servers see rwproxy): a client that the balancer
    // says is 10.9.8.7 does not match it; one it says is 127.0.0.1 does.
    let mut admin = cluster().admin_conn(0).await.unwrap();
    admin
        .query_drop("CREATE USER IF NOT EXISTS 'pp_local'@'127.0.0.1' IDENTIFIED BY 'pp_pw'")
        .await
        .unwrap();
    admin
        .query_drop("GRANT SELECT ON app.* TO 'pp_local'@'127.0.0.1'")
        .await
        .unwrap();
    drop(admin);
    let proxy = proxy("127.0.0.1/32", "users_from_backend: true\n");
    let (_conn, reply) = login_with(proxy.addr(), &v1("10.9.8.7", 5555), "pp_local", "pp_pw").await;
    let err = reply.err().unwrap_or_else(|| panic!("{reply:?}"));
    assert_eq!(err.code, 1045, "{err:?}");
    assert!(
        err.message.contains("'pp_local'@'10.9.8.7'"),
        "{}",
        err.message
    );
    let (mut conn, reply) =
        login_with(proxy.addr(), &v1("127.0.0.1", 5557), "pp_local", "pp_pw").await;
    assert_eq!(reply, Reply::Ok, "{}", proxy.log_tail(20));
    assert!(matches!(
        conn.query("SELECT 1").await.unwrap(),
        Reply::Rows(_)
    ));
    let _ = app_direct().await;
}

/// HAProxy from the OS package in TCP mode in front of rwproxy, once with `send-proxy` (v1) and
/// once with `send-proxy-v2`.
struct HaProxy {
    child: Child,
    v1_port: u16,
    v2_port: u16,
    _dir: tempfile::TempDir,
}

impl HaProxy {
    fn start(target: SocketAddr) -> HaProxy {
        let dir = tempfile::tempdir().unwrap();
        let (v1_port, v2_port) = (free_port().unwrap(), free_port().unwrap());
        let cfg = format!(
            "global\n  maxconn 100\ndefaults\n  mode tcp\n  timeout connect 2s\n  timeout client 30s\n  timeout server 30s\n\
             listen v1\n  bind 127.0.0.1:{v1_port}\n  server rw {target} send-proxy\n\
             listen v2\n  bind 127.0.0.1:{v2_port}\n  server rw {target} send-proxy-v2\n"
        );
        let path = dir.path().join("haproxy.cfg");
        std::fs::write(&path, cfg).unwrap();
        let child = Command::new("haproxy")
            .arg("-db")
            .arg("-f")
            .arg(&path)
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("haproxy (Debian package haproxy) must be installed");
        for port in [v1_port, v2_port] {
            let deadline = std::time::Instant::now() + Duration::from_secs(10);
            while std::net::TcpStream::connect(("127.0.0.1", port)).is_err() {
                assert!(
                    std::time::Instant::now() < deadline,
                    "haproxy did not listen"
                );
                std::thread::sleep(Duration::from_millis(50));
            }
        }
        HaProxy {
            child,
            v1_port,
            v2_port,
            _dir: dir,
        }
    }
}

impl Drop for HaProxy {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

#[tokio::test]
async fn haproxy_send_proxy_and_send_proxy_v2_carry_the_client_port() {
    let proxy = proxy("127.0.0.1/32", "");
    let haproxy = HaProxy::start(proxy.addr());
    let app = &cluster().app;
    for port in [haproxy.v1_port, haproxy.v2_port] {
        let addr: SocketAddr = ([127, 0, 0, 1], port).into();
        let (mut conn, reply) = login_with(addr, b"", &app.user, &app.password).await;
        assert_eq!(
            reply,
            Reply::Ok,
            "through haproxy :{port}\n{}",
            proxy.log_tail(20)
        );
        assert!(matches!(
            conn.query("SELECT 1").await.unwrap(),
            Reply::Rows(_)
        ));
        let mine = conn.local_addr().unwrap().to_string();
        let clients = session_clients(&proxy).await;
        assert!(
            clients.contains(&mine),
            "/sessions should show the client {mine} (not HAProxy's own port): {clients:?}"
        );
    }
}
