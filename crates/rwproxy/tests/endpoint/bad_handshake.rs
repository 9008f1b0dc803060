//! Malformed or missing handshakes: the proxy ends that connection promptly, and other
//! sessions are not disturbed.

use std::time::Duration;

use rwproxy_testkit::wire::{Greeting, InitialHandshake, RawConn, Reply};
use rwproxy_testkit::StandardConfig;

use crate::support::{assert_proxy_serves, cluster, start_proxy, start_standard_proxy, Bystander};

/// Connect and read the greeting, which must be a handshake.
async fn greeted(proxy: &rwproxy_testkit::ProxyProcess) -> (RawConn, InitialHandshake) {
    let mut conn = RawConn::connect(proxy.addr()).await.unwrap();
    match conn.read_greeting().await.unwrap() {
        Greeting::Handshake(h) => (conn, h),
        Greeting::Err(e) => panic!("expected a handshake, got {e}"),
    }
}

/// A refusal, if any, must be a protocol-level error (MySQL uses 08S01 for those, and 28000
/// for an access refusal).
fn assert_protocol_refusal(err: Option<&rwproxy_testkit::wire::ErrPacket>) {
    if let Some(err) = err {
        assert!(
            matches!(
                err.sql_state.as_deref(),
                Some("08S01") | Some("28000") | None
            ),
            "unexpected refusal {err}"
        );
    }
}

#[tokio::test]
async fn garbage_instead_of_a_handshake_response() {
    let proxy = start_standard_proxy();
    let mut bystander = Bystander::join(&proxy).await;
    let (mut conn, _) = greeted(&proxy).await;
    // Not even a framed packet: the "header" claims an 11 MB payload with sequence id 0xAB.
    conn.write_raw(&[0xAB; 64]).await.unwrap();
    // Meanwhile a well-behaved session works.
    assert_proxy_serves(&proxy).await;
    // The proxy must not wait forever for the 11 MB: it rejects or drops the connection
    // no later than the handshake timeout (5 s in the standard config).
    let closing = conn.wait_closed(Duration::from_secs(10)).await.unwrap();
    assert_protocol_refusal(closing.err.as_ref());
    assert_proxy_serves(&proxy).await;
    bystander.assert_unharmed(&proxy).await;
}

#[tokio::test]
async fn framed_garbage_handshake_response_is_refused() {
    let proxy = start_standard_proxy();
    let mut bystander = Bystander::join(&proxy).await;
    let (mut conn, _) = greeted(&proxy).await;
    conn.write_packet(1, &[0xAB; 40]).await.unwrap();
    let closing = conn.wait_closed(Duration::from_secs(10)).await.unwrap();
    assert!(
        closing.after < Duration::from_secs(3),
        "a malformed handshake response must be refused at once, took {:?}",
        closing.after
    );
    assert_protocol_refusal(closing.err.as_ref());
    assert_proxy_serves(&proxy).await;
    bystander.assert_unharmed(&proxy).await;
}

#[tokio::test]
async fn truncated_packet_then_close() {
    let proxy = start_standard_proxy();
    let mut bystander = Bystander::join(&proxy).await;
    let (mut conn, _) = greeted(&proxy).await;
    // Header says 100 bytes, only 10 follow, then the client goes away.
    conn.write_raw(&[100, 0, 0, 1]).await.unwrap();
    conn.write_raw(&[0x55; 10]).await.unwrap();
    conn.shutdown_write().await.unwrap();
    let closing = conn.wait_closed(Duration::from_secs(10)).await.unwrap();
    assert_protocol_refusal(closing.err.as_ref());
    drop(conn);
    assert_proxy_serves(&proxy).await;

    // The same cut-off in the middle of a command of a logged-in session.
    let app = &cluster().app;
    let (mut session, reply) = RawConn::login(proxy.addr(), &app.user, &app.password, None)
        .await
        .unwrap();
    assert_eq!(reply, Reply::Ok);
    session.write_raw(&[200, 0, 0, 0, 0x03]).await.unwrap();
    session.write_raw(b"SELECT").await.unwrap();
    session.shutdown_write().await.unwrap();
    let closing = session.wait_closed(Duration::from_secs(10)).await.unwrap();
    assert_protocol_refusal(closing.err.as_ref());
    assert_proxy_serves(&proxy).await;
    bystander.assert_unharmed(&proxy).await;
}

#[tokio::test]
async fn wrong_sequence_id_in_the_handshake_response() {
    let proxy = start_standard_proxy();
    let mut bystander = Bystander::join(&proxy).await;
    let app = &cluster().app;
    let (mut conn, greeting) = greeted(&proxy).await;
    // Correct would be 1.
    conn.send_login(&greeting, &app.user, &app.password, None, 5)
        .await
        .unwrap();
    let reply = conn.read_auth_result(&app.password).await.unwrap();
    match reply {
        Reply::Closed => {}
        Reply::Err(err) => assert_protocol_refusal(Some(&err)),
        Reply::Ok => panic!("a handshake response with sequence id 5 was accepted"),
        other => panic!("unexpected reply {other:?}"),
    }
    assert_proxy_serves(&proxy).await;
    bystander.assert_unharmed(&proxy).await;
}

#[tokio::test]
async fn wrong_sequence_id_in_a_command() {
    let proxy = start_standard_proxy();
    let mut bystander = Bystander::join(&proxy).await;
    let app = &cluster().app;
    let (mut conn, reply) = RawConn::login(proxy.addr(), &app.user, &app.password, None)
        .await
        .unwrap();
    assert_eq!(reply, Reply::Ok);
    // A command must start at sequence id 0.
    conn.write_packet(3, b"\x03SELECT 1").await.unwrap();
    let reply = conn.read_reply().await.unwrap();
    match reply {
        Reply::Closed => {}
        Reply::Err(err) => {
            assert_protocol_refusal(Some(&err));
            // After a framing error the connection is finished.
            let closing = conn.wait_closed(Duration::from_secs(10)).await.unwrap();
            assert!(closing.after < Duration::from_secs(5));
        }
        other => panic!("a command with sequence id 3 was answered: {other:?}"),
    }
    assert_proxy_serves(&proxy).await;
    bystander.assert_unharmed(&proxy).await;
}

#[tokio::test]
async fn a_silent_client_is_dropped_after_the_handshake_timeout() {
    let cluster = cluster();
    let mut config = StandardConfig::new(cluster);
    config.handshake_timeout = "1s".to_string();
    let proxy = start_proxy(&config.to_yaml());
    let mut bystander = Bystander::join(&proxy).await;

    let mut silent = RawConn::connect(proxy.addr()).await.unwrap();
    let mut silent_after_greeting = RawConn::connect(proxy.addr()).await.unwrap();
    let _ = silent_after_greeting.read_greeting().await.unwrap();

    // A well-behaved session works while the silent ones sit there.
    assert_proxy_serves(&proxy).await;

    for conn in [&mut silent, &mut silent_after_greeting] {
        let closing = conn
            .wait_closed(Duration::from_secs(6))
            .await
            .unwrap_or_else(|e| {
                panic!(
                    "a silent client was not dropped: {e}\n{}",
                    proxy.log_tail(20)
                )
            });
        assert!(
            closing.after < Duration::from_secs(4),
            "dropped only after {:?} with a 1 s handshake timeout",
            closing.after
        );
        assert_protocol_refusal(closing.err.as_ref());
    }
    assert_proxy_serves(&proxy).await;
    bystander.assert_unharmed(&proxy).await;
}
