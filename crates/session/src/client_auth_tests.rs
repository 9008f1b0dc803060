//! Client authentication over in-memory streams, with a client written byte by byte: the right
//! password logs in, a wrong one gets 1045 (28000), and malformed, truncated, oversized or
//! abandoned handshakes end with the right error or a clean close — never a panic, never a
//! login.

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use rwproxy_monitor::{BackendSpec, Monitor};
use rwproxy_testkit::wire::{handshake_response, scramble_native, InitialHandshake};
use rwproxy_transport::{MaybeTls, PacketStream};
use tokio::io::{AsyncReadExt, AsyncWriteExt, DuplexStream};

use super::authenticate;
use crate::error::ClientError;
use crate::observer::{NoopObserver, Rejection};
use crate::ProxyContext;

const CLIENT_PROTOCOL_41: u32 = 0x200;
const CLIENT_SECURE_CONNECTION: u32 = 0x8000;
const CLIENT_PLUGIN_AUTH: u32 = 0x8_0000;
const CAPS: u32 = CLIENT_PROTOCOL_41 | CLIENT_SECURE_CONNECTION | CLIENT_PLUGIN_AUTH;

fn context() -> ProxyContext {
    // No monitor credentials: roles come from the configuration; the backend is never reached
    // (nothing listens on port 1), so the greeting is rwproxy's own.
    let yaml = "listen: 127.0.0.1:0\n\
        users:\n  - { name: app, password: app_pass }\n\
        backends:\n  - { name: db1, address: 127.0.0.1:1, primary: true }\n\
        timeouts: { connect: 100ms, handshake: 2s }\n";
    let env = std::collections::HashMap::<String, String>::new();
    let config = Arc::new(rwproxy_config::parse(yaml, &env).expect("test configuration"));
    let monitor = Monitor::static_topology(vec![BackendSpec::new("db1", "127.0.0.1:1").pinned()]);
    ProxyContext::new(config, monitor, Arc::new(NoopObserver))
}

fn peer() -> SocketAddr {
    "127.0.0.1:40000".parse().expect("address")
}

async fn read_packet(io: &mut DuplexStream) -> Option<(u8, Vec<u8>)> {
    let mut header = [0u8; 4];
    io.read_exact(&mut header).await.ok()?;
    let len = u32::from_le_bytes([header[0], header[1], header[2], 0]) as usize;
    let mut payload = vec![0u8; len];
    io.read_exact(&mut payload).await.ok()?;
    Some((header[3], payload))
}

async fn write_packet(io: &mut DuplexStream, seq: u8, payload: &[u8]) {
    let mut out = (payload.len() as u32).to_le_bytes()[..3].to_vec();
    out.push(seq);
    out.extend_from_slice(payload);
    let _ = io.write_all(&out).await;
}

/// Runs `authenticate` against a client `script` (given the greeting's nonce, it writes what it
/// wants); returns the server's result and the first packet the client got after its own.
async fn login<F, Fut>(script: F) -> (Result<(), ClientError>, Option<(u8, Vec<u8>)>)
where
    F: FnOnce(DuplexStream, Vec<u8>) -> Fut + Send + 'static,
    Fut: std::future::Future<Output = Option<DuplexStream>> + Send,
{
    let ctx = context();
    let (server, mut client) = tokio::io::duplex(1 << 16);
    // As the listener makes it: small packets only until the client is authenticated.
    let stream = PacketStream::new(
        MaybeTls::Duplex(server),
        crate::listener::PRE_AUTH_MAX_PACKET,
    );
    let auth = tokio::spawn(async move {
        authenticate(&ctx, stream, 7, peer())
            .await
            .map(|(_stream, _client)| ())
    });
    let (seq, greeting) = read_packet(&mut client).await.expect("a greeting");
    assert_eq!(seq, 0);
    let hello = InitialHandshake::parse(&greeting).expect("a HandshakeV10 greeting");
    let client = script(client, hello.scramble.clone()).await;
    let answer = match client {
        Some(mut c) => tokio::time::timeout(Duration::from_secs(5), read_packet(&mut c))
            .await
            .ok()
            .flatten(),
        None => None,
    };
    let result = tokio::time::timeout(Duration::from_secs(5), auth)
        .await
        .expect("authentication ended")
        .expect("no panic");
    (result, answer)
}

fn err_code(packet: &Option<(u8, Vec<u8>)>) -> Option<(u16, String)> {
    let (_, p) = packet.as_ref()?;
    if p.first() != Some(&0xff) {
        return None;
    }
    let code = u16::from_le_bytes([p[1], p[2]]);
    let state = String::from_utf8_lossy(p.get(4..9)?).into_owned();
    Some((code, state))
}

#[tokio::test]
async fn the_right_password_logs_in() {
    let (result, answer) = login(|mut c, nonce| async move {
        let auth = scramble_native("app_pass", &nonce);
        let p = handshake_response(CAPS, "app", &auth, None, "mysql_native_password");
        write_packet(&mut c, 1, &p).await;
        Some(c)
    })
    .await;
    assert!(result.is_ok(), "{result:?}");
    let (seq, ok) = answer.expect("an answer");
    assert_eq!((seq, ok.first()), (2, Some(&0x00)), "{ok:?}");
}

#[tokio::test]
async fn a_wrong_password_gets_1045() {
    let (result, answer) = login(|mut c, nonce| async move {
        let auth = scramble_native("not-the-password", &nonce);
        let p = handshake_response(CAPS, "app", &auth, None, "mysql_native_password");
        write_packet(&mut c, 1, &p).await;
        Some(c)
    })
    .await;
    assert_eq!(
        err_code(&answer),
        Some((1045, "28000".into())),
        "{answer:?}"
    );
    let e = result.expect_err("refused");
    assert_eq!(e.rejection(), Rejection::AuthFailed, "{e}");
}

#[tokio::test]
async fn an_unknown_user_gets_1045_like_a_wrong_password() {
    let (result, answer) = login(|mut c, nonce| async move {
        let auth = scramble_native("app_pass", &nonce);
        let p = handshake_response(CAPS, "nobody", &auth, None, "mysql_native_password");
        write_packet(&mut c, 1, &p).await;
        Some(c)
    })
    .await;
    assert_eq!(
        err_code(&answer),
        Some((1045, "28000".into())),
        "{answer:?}"
    );
    assert!(result.is_err());
}

#[tokio::test]
async fn truncated_handshakes_are_bad_handshakes_not_panics() {
    let full = handshake_response(CAPS, "app", &[7u8; 20], None, "mysql_native_password");
    // Every prefix of a valid response, the empty one included.
    for cut in [0usize, 1, 4, 8, 31, 32, 33, 36, 40, full.len() - 1] {
        let part = full[..cut].to_vec();
        let (result, answer) = login(move |mut c, _| async move {
            write_packet(&mut c, 1, &part).await;
            Some(c)
        })
        .await;
        let e = result.expect_err("a truncated handshake must not log in");
        match err_code(&answer) {
            Some((code, _)) => assert!(
                [1043, 1045, 1158].contains(&code),
                "cut at {cut}: error {code}"
            ),
            None => assert!(answer.is_none(), "cut at {cut}: {answer:?}"),
        }
        assert_ne!(e.rejection(), Rejection::ClientClosed, "cut at {cut}: {e}");
    }
}

#[tokio::test]
async fn an_oversized_handshake_is_refused_without_reading_it_all() {
    let (result, answer) = login(|mut c, _| async move {
        // Announces 15 MiB before authentication: far past what a handshake needs.
        let mut header = ((15u32 << 20).to_le_bytes()[..3]).to_vec();
        header.push(1);
        let _ = c.write_all(&header).await;
        let _ = c.write_all(&[0u8; 4096]).await;
        Some(c)
    })
    .await;
    let e = result.expect_err("refused");
    assert_eq!(e.rejection(), Rejection::ProtocolError, "{e}");
    if let Some((code, _)) = err_code(&answer) {
        assert!([1043, 1153].contains(&code), "{code}");
    }
}

#[tokio::test]
async fn a_client_that_leaves_after_the_greeting_is_client_closed() {
    let (result, answer) = login(|c, _| async move {
        drop(c);
        None
    })
    .await;
    assert!(answer.is_none());
    let e = result.expect_err("no login");
    assert_eq!(e.rejection(), Rejection::ClientClosed, "{e}");
}

#[tokio::test]
async fn random_bytes_never_log_in_and_never_panic() {
    let mut seed = 0x9e37_79b9_7f4a_7c15u64;
    for round in 0..64 {
        let len = (round * 7) % 200;
        let bytes: Vec<u8> = (0..len)
            .map(|_| {
                seed = seed
                    .wrapping_mul(6364136223846793005)
                    .wrapping_add(1442695040888963407);
                (seed >> 56) as u8
            })
            .collect();
        let (result, _) = login(move |mut c, _| async move {
            write_packet(&mut c, 1, &bytes).await;
            Some(c)
        })
        .await;
        assert!(result.is_err(), "round {round}: random bytes logged in");
    }
}
