//! Clients over TLS to rwproxy: `caching_sha2_password` full authentication, seen on the wire
//! by a raw TLS client (the first login of an account after start gets "perform full
//! authentication", 0x01 0x04, and sends the password in clear inside TLS; the next login
//! gets "fast auth OK", 0x01 0x03), the same rule for `COM_CHANGE_USER`, and `require_tls`.
//!
//! The proxy's certificate is the shared cluster's server certificate (for 127.0.0.1), so the
//! clients verify it against the cluster's CA.

use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use mysql_async::prelude::Queryable;
use mysql_async::{ChangeUserOpts, Conn, OptsBuilder, SslOpts};
use rwproxy_testkit::wire::{
    handshake_response, scramble_native, ErrPacket, Greeting, InitialHandshake, RawConn, Reply,
    DEFAULT_CLIENT_CAPABILITIES,
};
use rwproxy_testkit::{ProxyProcess, ProxyTls, ProxyUser, StandardConfig};
use sha2::{Digest, Sha256};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;
use tokio_rustls::client::TlsStream;
use tokio_rustls::rustls;
use tokio_rustls::rustls::pki_types::pem::PemObject;
use tokio_rustls::rustls::pki_types::{CertificateDer, ServerName};

use crate::support::{cluster, rejections, start_proxy, wait_rejections};

const CLIENT_SSL: u32 = 0x0000_0800;
const CACHING_SHA2: &str = "caching_sha2_password";
const COM_CHANGE_USER: u8 = 0x11;

fn tls_file(name: &str) -> PathBuf {
    let path = cluster().dir.join("tls").join(name);
    assert!(
        path.exists(),
        "{} is made by integration/cluster.sh",
        path.display()
    );
    path
}

/// A proxy with client TLS (`require_tls` as given), `app` a `caching_sha2_password` user and
/// `admin` a `mysql_native_password` one.
fn sha2_proxy(require_tls: bool) -> ProxyProcess {
    let c = cluster();
    let mut config = StandardConfig::new(c);
    config.users = vec![
        ProxyUser::caching_sha2(&c.app.user, &c.app.password),
        ProxyUser::native(&c.admin.user, &c.admin.password),
    ];
    config.tls = Some(ProxyTls {
        cert: tls_file("server-cert.pem").display().to_string(),
        key: tls_file("server-key.pem").display().to_string(),
        require_tls,
    });
    start_proxy(&config.to_yaml())
}

/// `caching_sha2_password`'s scramble: SHA256(pw) XOR SHA256(SHA256(SHA256(pw)) + nonce).
fn scramble_sha2(password: &str, nonce: &[u8]) -> Vec<u8> {
    let stage1 = Sha256::digest(password.as_bytes());
    let stage2 = Sha256::digest(stage1);
    let mut hasher = Sha256::new();
    hasher.update(stage2);
    hasher.update(nonce);
    let mix = hasher.finalize();
    stage1.iter().zip(mix.iter()).map(|(a, b)| a ^ b).collect()
}

/// The payload of an SSL request: capabilities with `CLIENT_SSL`, max packet, collation, 23
/// filler bytes (32 bytes, sequence id 1).
fn ssl_request() -> Vec<u8> {
    let mut request = Vec::new();
    request.extend_from_slice(&(DEFAULT_CLIENT_CAPABILITIES | CLIENT_SSL).to_le_bytes());
    request.extend_from_slice(&(16u32 << 20).to_le_bytes());
    request.push(45);
    request.extend_from_slice(&[0u8; 23]);
    request
}

/// A raw protocol client over TLS, verifying the proxy against the cluster's CA.
struct TlsClient {
    stream: TlsStream<TcpStream>,
    nonce: Vec<u8>,
}

/// How an authentication ended, and the `AuthMoreData` payloads (after the 0x01) on the way.
#[derive(Debug)]
struct AuthOutcome {
    more_data: Vec<Vec<u8>>,
    /// Whether the client was asked for, and sent, its password in clear.
    sent_cleartext: bool,
    reply: Reply,
}

async fn read_plain_packet(stream: &mut TcpStream) -> (u8, Vec<u8>) {
    let mut header = [0u8; 4];
    stream.read_exact(&mut header).await.unwrap();
    let len = u32::from_le_bytes([header[0], header[1], header[2], 0]) as usize;
    let mut payload = vec![0u8; len];
    stream.read_exact(&mut payload).await.unwrap();
    (header[3], payload)
}

impl TlsClient {
    /// Greeting, SSL request, TLS handshake (the proxy's certificate verified).
    async fn connect(port: u16) -> TlsClient {
        let mut tcp = TcpStream::connect(("127.0.0.1", port)).await.unwrap();
        let (_, greeting) = read_plain_packet(&mut tcp).await;
        let greeting = InitialHandshake::parse(&greeting).unwrap();
        let mut frame = vec![32, 0, 0, 1];
        frame.extend_from_slice(&ssl_request());
        tcp.write_all(&frame).await.unwrap();

        let mut roots = rustls::RootCertStore::empty();
        for cert in CertificateDer::pem_file_iter(tls_file("ca.pem")).unwrap() {
            roots.add(cert.unwrap()).unwrap();
        }
        let provider = Arc::new(rustls::crypto::ring::default_provider());
        let config = rustls::ClientConfig::builder_with_provider(provider)
            .with_safe_default_protocol_versions()
            .unwrap()
            .with_root_certificates(roots)
            .with_no_client_auth();
        let connector = tokio_rustls::TlsConnector::from(Arc::new(config));
        let name = ServerName::try_from("127.0.0.1").unwrap();
        let stream = connector.connect(name, tcp).await.unwrap();
        TlsClient {
            stream,
            nonce: greeting.scramble,
        }
    }

    async fn read_packet(&mut self) -> Option<(u8, Vec<u8>)> {
        let mut header = [0u8; 4];
        let read = tokio::time::timeout(
            std::time::Duration::from_secs(10),
            self.stream.read_exact(&mut header),
        )
        .await
        .expect("no answer from the proxy within 10 s");
        if read.is_err() {
            return None;
        }
        let len = u32::from_le_bytes([header[0], header[1], header[2], 0]) as usize;
        let mut payload = vec![0u8; len];
        self.stream.read_exact(&mut payload).await.unwrap();
        Some((header[3], payload))
    }

    async fn write_packet(&mut self, seq: u8, payload: &[u8]) {
        let len = (payload.len() as u32).to_le_bytes();
        let mut frame = vec![len[0], len[1], len[2], seq];
        frame.extend_from_slice(payload);
        self.stream.write_all(&frame).await.unwrap();
        self.stream.flush().await.unwrap();
    }

    /// Follows `caching_sha2_password` (or native) to its end: OK or ERR.
    async fn finish_auth(&mut self, password: &str) -> AuthOutcome {
        let mut outcome = AuthOutcome {
            more_data: Vec::new(),
            sent_cleartext: false,
            reply: Reply::Closed,
        };
        loop {
            let Some((seq, payload)) = self.read_packet().await else {
                return outcome;
            };
            match payload.first() {
                Some(0x00) => {
                    outcome.reply = Reply::Ok;
                    return outcome;
                }
                Some(0xFF) => {
                    outcome.reply = Reply::Err(ErrPacket::parse(&payload).unwrap());
                    return outcome;
                }
                Some(0x01) => {
                    outcome.more_data.push(payload[1..].to_vec());
                    if payload[1..] == [0x04] {
                        // Full authentication: the password in clear (TLS protects it).
                        let mut clear = password.as_bytes().to_vec();
                        clear.push(0);
                        self.write_packet(seq.wrapping_add(1), &clear).await;
                        outcome.sent_cleartext = true;
                    }
                }
                Some(0xFE) => {
                    // Auth switch (the account's plugin): answer with the new nonce.
                    let body = &payload[1..];
                    let end = body.iter().position(|&b| b == 0).unwrap_or(body.len());
                    let plugin = String::from_utf8_lossy(&body[..end]).into_owned();
                    let data = body.get(end + 1..).unwrap_or_default();
                    let nonce = data.strip_suffix(&[0]).unwrap_or(data);
                    let answer = if plugin == CACHING_SHA2 {
                        scramble_sha2(password, nonce)
                    } else {
                        scramble_native(password, nonce)
                    };
                    self.write_packet(seq.wrapping_add(1), &answer).await;
                }
                other => panic!("unexpected packet during authentication: {other:?}"),
            }
        }
    }

    /// Logs in over TLS with `plugin` (`caching_sha2_password` or `mysql_native_password`).
    async fn login(
        port: u16,
        user: &str,
        password: &str,
        plugin: &str,
    ) -> (TlsClient, AuthOutcome) {
        let mut client = TlsClient::connect(port).await;
        let scramble = if plugin == CACHING_SHA2 {
            scramble_sha2(password, &client.nonce)
        } else {
            scramble_native(password, &client.nonce)
        };
        let response = handshake_response(
            DEFAULT_CLIENT_CAPABILITIES | CLIENT_SSL,
            user,
            &scramble,
            None,
            plugin,
        );
        client.write_packet(2, &response).await;
        let outcome = client.finish_auth(password).await;
        (client, outcome)
    }

    /// `COM_CHANGE_USER` to a `caching_sha2_password` account, scrambled with the greeting's
    /// nonce.
    async fn change_user(&mut self, user: &str, password: &str) -> AuthOutcome {
        let payload = change_user_payload(user, &scramble_sha2(password, &self.nonce));
        self.write_packet(0, &payload).await;
        self.finish_auth(password).await
    }
}

/// `COM_CHANGE_USER` with `caching_sha2_password`, schema `app`, utf8mb4_general_ci.
fn change_user_payload(user: &str, scramble: &[u8]) -> Vec<u8> {
    let mut payload = vec![COM_CHANGE_USER];
    payload.extend_from_slice(user.as_bytes());
    payload.push(0);
    payload.push(scramble.len() as u8);
    payload.extend_from_slice(scramble);
    payload.extend_from_slice(b"app\0");
    payload.extend_from_slice(&45u16.to_le_bytes());
    payload.extend_from_slice(CACHING_SHA2.as_bytes());
    payload.push(0);
    payload
}

fn assert_ok(outcome: &AuthOutcome, what: &str, proxy: &ProxyProcess) {
    assert!(
        matches!(outcome.reply, Reply::Ok),
        "{what}: {outcome:?}\n--- proxy log ---\n{}",
        proxy.log_tail(20)
    );
}

/// The first login of a `caching_sha2_password` account over TLS does the full exchange; the
/// next one, with the same password, the fast path. A wrong password in the full exchange is
/// refused.
#[tokio::test]
async fn caching_sha2_first_login_over_tls_is_a_full_authentication() {
    let c = cluster();
    let proxy = sha2_proxy(false);
    let (user, password) = (c.app.user.as_str(), c.app.password.as_str());

    let (_first, outcome) = TlsClient::login(proxy.port, user, password, CACHING_SHA2).await;
    assert_ok(&outcome, "first login", &proxy);
    assert_eq!(
        outcome.more_data,
        vec![vec![0x04]],
        "first login: {outcome:?}"
    );
    assert!(outcome.sent_cleartext);

    let (_second, outcome) = TlsClient::login(proxy.port, user, password, CACHING_SHA2).await;
    assert_ok(&outcome, "second login", &proxy);
    assert_eq!(
        outcome.more_data,
        vec![vec![0x03]],
        "second login: {outcome:?}"
    );
    assert!(!outcome.sent_cleartext);
}

/// `COM_CHANGE_USER` follows the login's rule: to an account that has not completed a full
/// authentication since start, over TLS, the full exchange (and the password sent in clear
/// must be right); once it has, the fast path.
#[tokio::test]
async fn caching_sha2_change_user_over_tls_is_a_full_authentication_first() {
    let c = cluster();
    let proxy = sha2_proxy(false);
    let (user, password) = (c.app.user.as_str(), c.app.password.as_str());
    let (mut client, outcome) = TlsClient::login(
        proxy.port,
        &c.admin.user,
        &c.admin.password,
        "mysql_native_password",
    )
    .await;
    assert_ok(&outcome, "login as admin", &proxy);

    let outcome = client.change_user(user, password).await;
    assert_ok(&outcome, "first change user", &proxy);
    assert_eq!(
        outcome.more_data,
        vec![vec![0x04]],
        "first change user: {outcome:?}"
    );
    assert!(outcome.sent_cleartext);

    let outcome = client.change_user(user, password).await;
    assert_ok(&outcome, "second change user", &proxy);
    assert_eq!(
        outcome.more_data,
        vec![vec![0x03]],
        "second change user: {outcome:?}"
    );

    // A wrong password that scrambles right cannot exist; the clear text is checked too: a
    // fresh proxy, and the right scramble followed by a wrong clear-text password.
    let proxy = sha2_proxy(false);
    let (mut client, outcome) = TlsClient::login(
        proxy.port,
        &c.admin.user,
        &c.admin.password,
        "mysql_native_password",
    )
    .await;
    assert_ok(&outcome, "login as admin", &proxy);
    let payload = change_user_payload(user, &scramble_sha2(password, &client.nonce));
    client.write_packet(0, &payload).await;
    let (seq, more) = client.read_packet().await.unwrap();
    assert_eq!(more, vec![0x01, 0x04]);
    client.write_packet(seq + 1, b"not-the-password\0").await;
    let (_, answer) = client.read_packet().await.unwrap();
    let err = ErrPacket::parse(&answer).unwrap_or_else(|| panic!("not an ERR: {answer:?}"));
    assert_eq!(err.code, 1045, "{err}");
}

/// mysql_async's `change_user` over TLS to a `caching_sha2_password` account (it answers the
/// full exchange) works, and the proxy remembers the account afterwards: a raw login gets
/// the fast path, which only a completed full authentication gives.
#[tokio::test]
async fn mysql_async_change_user_over_tls_to_a_caching_sha2_user() {
    let c = cluster();
    let proxy = sha2_proxy(false);
    let ssl = SslOpts::default()
        .with_disable_built_in_roots(true)
        .with_root_certs(vec![tls_file("ca.pem").into()]);
    let opts = OptsBuilder::default()
        .ip_or_hostname("127.0.0.1")
        .tcp_port(proxy.port)
        .prefer_socket(false)
        .user(Some(c.admin.user.clone()))
        .pass(Some(c.admin.password.clone()))
        .ssl_opts(ssl);
    let mut conn = Conn::new(opts)
        .await
        .unwrap_or_else(|e| panic!("login over TLS: {e}\n{}", proxy.log_tail(20)));
    conn.change_user(
        ChangeUserOpts::default()
            .with_user(Some(c.app.user.clone()))
            .with_pass(Some(c.app.password.clone()))
            .with_db_name(Some("app".to_string())),
    )
    .await
    .unwrap_or_else(|e| panic!("change user over TLS: {e}\n{}", proxy.log_tail(20)));
    let who: Option<String> = conn.query_first("SELECT CURRENT_USER()").await.unwrap();
    let who = who.unwrap_or_default();
    assert!(who.starts_with(&format!("{}@", c.app.user)), "{who}");
    conn.disconnect().await.unwrap();

    let (_client, outcome) =
        TlsClient::login(proxy.port, &c.app.user, &c.app.password, CACHING_SHA2).await;
    assert_ok(&outcome, "login after change user", &proxy);
    assert_eq!(
        outcome.more_data,
        vec![vec![0x03]],
        "the change user did not complete a full authentication: {outcome:?}"
    );
}

/// `require_tls: true`: a plain-text login gets ERR 3159 (SQLSTATE HY000), before any
/// password check; over TLS the same account logs in.
#[tokio::test]
async fn require_tls_refuses_a_plain_text_login_with_3159() {
    let c = cluster();
    let proxy = sha2_proxy(true);
    let addr = format!("127.0.0.1:{}", proxy.port).parse().unwrap();
    let (_conn, reply) = RawConn::login(addr, &c.admin.user, &c.admin.password, None)
        .await
        .unwrap();
    let err = match reply {
        Reply::Err(err) => err,
        other => panic!("a plain-text login was answered {other:?}"),
    };
    assert_eq!(err.code, 3159, "{err}");
    assert_eq!(err.sql_state.as_deref(), Some("HY000"), "{err}");
    assert!(err.message.contains("insecure transport"), "{err}");

    let (_client, outcome) = TlsClient::login(
        proxy.port,
        &c.admin.user,
        &c.admin.password,
        "mysql_native_password",
    )
    .await;
    assert_ok(&outcome, "login over TLS", &proxy);
}

/// Refused TLS logins are counted in `rwproxy_client_rejections_total` under their own
/// reasons: a plain-text login under `require_tls` as `tls_required`, a client whose TLS
/// handshake fails (bytes that are no TLS record after its SSL request) as `tls_error`.
#[tokio::test]
async fn tls_refusals_count_as_tls_required_and_tls_error() {
    let c = cluster();
    let proxy = sha2_proxy(true);
    let required = rejections(&proxy, "tls_required").await;
    let failed = rejections(&proxy, "tls_error").await;

    let (_conn, reply) = RawConn::login(proxy.addr(), &c.admin.user, &c.admin.password, None)
        .await
        .unwrap();
    assert!(
        matches!(&reply, Reply::Err(e) if e.code == 3159),
        "{reply:?}"
    );
    let now = wait_rejections(&proxy, "tls_required", required + 1.0).await;
    assert_eq!(now, required + 1.0);
    assert_eq!(rejections(&proxy, "tls_error").await, failed);

    let mut conn = RawConn::connect(proxy.addr()).await.unwrap();
    assert!(matches!(
        conn.read_greeting().await.unwrap(),
        Greeting::Handshake(_)
    ));
    conn.write_packet(1, &ssl_request()).await.unwrap();
    // Where the ClientHello belongs, bytes that are no TLS record.
    conn.write_raw(b"GET / HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n")
        .await
        .unwrap();
    conn.wait_closed(Duration::from_secs(5)).await.unwrap();
    let now = wait_rejections(&proxy, "tls_error", failed + 1.0).await;
    assert_eq!(now, failed + 1.0);
    assert_eq!(rejections(&proxy, "tls_required").await, required + 1.0);
}
