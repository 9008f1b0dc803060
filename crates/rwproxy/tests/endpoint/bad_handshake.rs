//! Malformed or missing handshakes: the proxy ends that connection promptly, and other
//! sessions are not disturbed.

use std::time::Duration;

use rwproxy_testkit::wire::{Greeting, InitialHandshake, RawConn, Reply};
use rwproxy_testkit::StandardConfig;

use crate::support::{
    assert_proxy_serves, cluster, rejections, start_proxy, start_standard_proxy, wait_rejections,
    Bystander,
};

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

/// Before authentication a client may not make the proxy buffer a big packet: the limit is
/// 66 KiB (a handshake response with 64 KiB of connection attributes fits), not
/// `max_allowed_packet`. The refusal comes as soon as the packet header arrives.
#[tokio::test]
async fn an_oversized_packet_before_authentication_is_refused_at_once() {
    let proxy = start_standard_proxy();
    let mut bystander = Bystander::join(&proxy).await;
    let (mut conn, _) = greeted(&proxy).await;
    let claimed: usize = 1 << 20;
    let len = (claimed as u32).to_le_bytes();
    conn.write_raw(&[len[0], len[1], len[2], 1]).await.unwrap();
    // Part of the payload only: the proxy must not wait for the rest.
    conn.write_raw(&vec![0u8; 100 * 1024]).await.unwrap();
    let closing = conn.wait_closed(Duration::from_secs(10)).await.unwrap();
    let err = closing
        .err
        .unwrap_or_else(|| panic!("closed without an error packet after {:?}", closing.after));
    assert_eq!(err.code, 1153, "{err}");
    assert!(
        closing.after < Duration::from_secs(2),
        "refused only after {:?}",
        closing.after
    );
    assert_proxy_serves(&proxy).await;
    bystander.assert_unharmed(&proxy).await;

    // A login with 32 KiB of connection attributes is well within the limit.
    let (mut conn, greeting) = greeted(&proxy).await;
    let app = &cluster().app;
    let auth = rwproxy_testkit::wire::scramble_native(&app.password, &greeting.scramble);
    const CLIENT_CONNECT_ATTRS: u32 = 0x0010_0000;
    let mut payload = rwproxy_testkit::wire::handshake_response(
        rwproxy_testkit::wire::DEFAULT_CLIENT_CAPABILITIES | CLIENT_CONNECT_ATTRS,
        &app.user,
        &auth,
        Some("app"),
        "mysql_native_password",
    );
    let value = vec![b'x'; 32 * 1024];
    let mut attrs = vec![3u8];
    attrs.extend_from_slice(b"big");
    attrs.push(0xFC);
    attrs.extend_from_slice(&(value.len() as u16).to_le_bytes());
    attrs.extend_from_slice(&value);
    payload.push(0xFC);
    payload.extend_from_slice(&(attrs.len() as u16).to_le_bytes());
    payload.extend_from_slice(&attrs);
    conn.write_packet(1, &payload).await.unwrap();
    let reply = conn.read_auth_result(&app.password).await.unwrap();
    assert!(matches!(reply, Reply::Ok), "{reply:?}");
    let reply = conn.query("SELECT 1").await.unwrap();
    assert!(matches!(reply, Reply::Rows(_)), "{reply:?}");
}

/// A handshake response with every capability bit set, CLIENT_SSL included, but no SSL request
/// and no TLS: refused with 1043 (08S01), never logged in over plain text.
#[tokio::test]
async fn ssl_capability_without_an_ssl_request_is_refused() {
    let proxy = start_standard_proxy();
    let app = &cluster().app;
    let (mut conn, greeting) = greeted(&proxy).await;
    let auth = rwproxy_testkit::wire::scramble_native(&app.password, &greeting.scramble);
    let mut login = rwproxy_testkit::wire::handshake_response(
        u32::MAX,
        &app.user,
        &auth,
        Some("app"),
        "mysql_native_password",
    );
    login.push(0); // CLIENT_CONNECT_ATTRS: no attributes
    conn.write_packet(1, &login).await.unwrap();
    let reply = conn.read_auth_result(&app.password).await.unwrap();
    match reply {
        Reply::Err(e) => {
            assert_eq!(e.code, 1043, "{e}");
            assert_eq!(e.sql_state.as_deref(), Some("08S01"), "{e}");
            assert!(e.message.contains("CLIENT_SSL"), "{e}");
        }
        other => panic!("logged in over plain text with CLIENT_SSL set: {other:?}"),
    }
    assert_proxy_serves(&proxy).await;
}

/// A malformed handshake response is counted in `rwproxy_client_rejections_total` as
/// `protocol_error`, once, and as nothing else.
#[tokio::test]
async fn a_malformed_handshake_response_counts_as_protocol_error() {
    let proxy = start_standard_proxy();
    let before = rejections(&proxy, "protocol_error").await;
    let denied = rejections(&proxy, "auth_failed").await;
    let (mut conn, _) = greeted(&proxy).await;
    conn.write_packet(1, &[0xAB; 40]).await.unwrap();
    let closing = conn.wait_closed(Duration::from_secs(10)).await.unwrap();
    let err = closing.err.expect("an ERR packet before the close");
    assert_eq!(err.code, 1043, "{err}");
    let now = wait_rejections(&proxy, "protocol_error", before + 1.0).await;
    assert_eq!(now, before + 1.0);
    assert_eq!(rejections(&proxy, "auth_failed").await, denied);
}

/// A client that connects and never answers the greeting is counted in
/// `rwproxy_client_rejections_total` as `handshake_timeout` when the timeout closes it.
#[tokio::test]
async fn a_silent_client_counts_as_handshake_timeout() {
    let mut config = StandardConfig::new(cluster());
    config.handshake_timeout = "1s".to_string();
    let proxy = start_proxy(&config.to_yaml());
    let before = rejections(&proxy, "handshake_timeout").await;
    let (mut silent, _) = greeted(&proxy).await;
    silent.wait_closed(Duration::from_secs(4)).await.unwrap();
    let now = wait_rejections(&proxy, "handshake_timeout", before + 1.0).await;
    assert_eq!(now, before + 1.0);
}
