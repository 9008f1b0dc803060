//! Refused logins come back as MySQL's own ERR 1045, byte for byte in shape.

use rwproxy_testkit::wire::{RawConn, Reply};

use crate::support::{assert_proxy_serves, cluster, server_error, start_standard_proxy, Bystander};

#[tokio::test]
async fn wrong_password_is_err_1045_28000() {
    let proxy = start_standard_proxy();
    let mut bystander = Bystander::join(&proxy).await;
    let (_, reply) = RawConn::login(
        proxy.addr(),
        &cluster().app.user,
        "wrong-password",
        Some("app"),
    )
    .await
    .unwrap();
    let Reply::Err(err) = reply else {
        panic!("expected ERR 1045, got {reply:?}");
    };
    assert_eq!(err.code, 1045, "{err}");
    assert_eq!(err.sql_state.as_deref(), Some("28000"), "{err}");
    assert!(
        err.message.starts_with("Access denied for user 'app'@'"),
        "{}",
        err.message
    );
    assert_proxy_serves(&proxy).await;
    bystander.assert_unharmed(&proxy).await;
}

#[tokio::test]
async fn unknown_user_is_err_1045() {
    let proxy = start_standard_proxy();
    let (_, reply) = RawConn::login(proxy.addr(), "nobody_here", "whatever", None)
        .await
        .unwrap();
    let err = reply
        .err()
        .cloned()
        .unwrap_or_else(|| panic!("expected ERR, got {reply:?}"));
    assert_eq!(
        (err.code, err.sql_state.as_deref()),
        (1045, Some("28000")),
        "{err}"
    );
    assert!(
        err.message
            .starts_with("Access denied for user 'nobody_here'@'"),
        "{}",
        err.message
    );
    assert_proxy_serves(&proxy).await;
}

#[tokio::test]
async fn mysql_async_sees_access_denied() {
    let proxy = start_standard_proxy();
    let wrong = rwproxy_testkit::Credentials::new(&cluster().app.user, "nope");
    let err = proxy.connect(&wrong, None).await.unwrap_err();
    let rwproxy_testkit::TestkitError::Sql(err) = err else {
        panic!("expected an SQL error, got {err}");
    };
    let e = server_error(err);
    assert_eq!((e.code, e.state.as_str()), (1045, "28000"), "{e:?}");
    assert_proxy_serves(&proxy).await;
}

#[tokio::test]
async fn correct_password_logs_in_at_the_wire_level() {
    let proxy = start_standard_proxy();
    let app = &cluster().app;
    let (mut conn, reply) = RawConn::login(proxy.addr(), &app.user, &app.password, Some("app"))
        .await
        .unwrap();
    assert_eq!(reply, Reply::Ok);
    let rows = conn.query("SELECT DATABASE(), 1 + 1").await.unwrap();
    assert_eq!(
        rows,
        Reply::Rows(vec![vec![Some(b"app".to_vec()), Some(b"2".to_vec())]])
    );
}

/// A user name is what a client says it is: a newline in it cannot forge a log line, escape
/// sequences are not written raw, a 100 KiB name costs the log a few hundred bytes, and a log
/// written to a file has no colour codes.
#[tokio::test]
async fn hostile_user_names_do_not_forge_or_flood_the_log() {
    let proxy = start_standard_proxy();
    let forged = "evil\n2026-01-01T00:00:00Z  INFO rwproxy: forged line\u{1b}[2J";
    let (_, reply) = RawConn::login(proxy.addr(), forged, "x", None)
        .await
        .unwrap();
    assert_eq!(reply.err().map(|e| e.code), Some(1045), "{reply:?}");
    let before = proxy.log_text().len();
    let huge = "u".repeat(100 * 1024);
    let (_, reply) = RawConn::login(proxy.addr(), &huge, "x", None)
        .await
        .unwrap();
    assert!(reply.err().is_some(), "{reply:?}");
    assert_proxy_serves(&proxy).await;
    let log = proxy.log_text();
    assert!(
        !log.lines()
            .any(|l| l.contains("forged line") && !l.contains("evil")),
        "a forged line reached the log:\n{log}"
    );
    assert!(
        !log.contains('\u{1b}'),
        "raw escape sequences (or colours) in the log"
    );
    let grown = log.len() - before;
    assert!(
        grown < 8 * 1024,
        "a refused 100 KiB user name grew the log by {grown} bytes"
    );
}

/// With `tls.require_tls`, a login over plain text is refused with ERR 3159 (HY000), as a server
/// with `require_secure_transport=ON` refuses it.
#[tokio::test]
async fn require_tls_refuses_plain_logins_with_3159() {
    let dir = cluster().dir.join("tls");
    let mut config = rwproxy_testkit::StandardConfig::new(cluster());
    config.tls = Some(rwproxy_testkit::proxy_config::ProxyTls {
        cert: dir.join("server-cert.pem").display().to_string(),
        key: dir.join("server-key.pem").display().to_string(),
        require_tls: true,
    });
    let proxy = crate::support::start_proxy(&config.to_yaml());
    let (_, reply) = RawConn::login(
        proxy.addr(),
        &cluster().app.user,
        &cluster().app.password,
        Some("app"),
    )
    .await
    .unwrap();
    let Reply::Err(err) = reply else {
        panic!("a plain login was accepted with require_tls: {reply:?}");
    };
    assert_eq!(err.code, 3159, "{err}");
    assert_eq!(err.sql_state.as_deref(), Some("HY000"), "{err}");
}
