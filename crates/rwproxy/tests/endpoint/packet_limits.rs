//! A client packet over `max_allowed_packet` is refused with ERR 1153, as MariaDB does.

use std::time::Duration;

use rwproxy_testkit::wire::{RawConn, Reply, COM_QUERY};
use rwproxy_testkit::StandardConfig;

use crate::support::{assert_proxy_serves, cluster, start_proxy, Bystander};

fn proxy_with_1_mib_limit() -> rwproxy_testkit::ProxyProcess {
    let mut config = StandardConfig::new(cluster());
    config.max_allowed_packet = "1MiB".to_string();
    start_proxy(&config.to_yaml())
}

async fn login(proxy: &rwproxy_testkit::ProxyProcess) -> RawConn {
    let app = &cluster().app;
    let (conn, reply) = RawConn::login(proxy.addr(), &app.user, &app.password, Some("app"))
        .await
        .unwrap();
    assert_eq!(reply, Reply::Ok);
    conn
}

fn query_of_len(len: usize) -> Vec<u8> {
    let mut payload = Vec::with_capacity(len + 16);
    payload.push(COM_QUERY);
    payload.extend_from_slice(b"SELECT '");
    payload.resize(len - 1, b'x');
    payload.push(b'\'');
    payload
}

async fn assert_refused_as_too_large(conn: &mut RawConn, proxy: &rwproxy_testkit::ProxyProcess) {
    let reply = conn.read_reply().await.unwrap();
    let Reply::Err(err) = reply else {
        panic!(
            "expected ERR 1153, got {reply:?}\n--- proxy log ---\n{}",
            proxy.log_tail(20)
        );
    };
    assert_eq!(err.code, 1153, "{err}");
    assert_eq!(err.sql_state.as_deref(), Some("08S01"), "{err}");
    assert!(
        err.message.contains("max_allowed_packet"),
        "{}",
        err.message
    );
    // MariaDB closes the connection after this error; so must the proxy.
    let closing = conn.wait_closed(Duration::from_secs(10)).await.unwrap();
    assert!(closing.after < Duration::from_secs(5));
}

#[tokio::test]
async fn com_query_over_max_allowed_packet_is_err_1153() {
    let proxy = proxy_with_1_mib_limit();
    let mut bystander = Bystander::join(&proxy).await;
    let mut conn = login(&proxy).await;
    conn.write_logical(0, &query_of_len(2 * 1024 * 1024))
        .await
        .unwrap();
    assert_refused_as_too_large(&mut conn, &proxy).await;
    assert_proxy_serves(&proxy).await;
    bystander.assert_unharmed(&proxy).await;
}

#[tokio::test]
async fn a_multi_packet_query_over_the_limit_is_refused_too() {
    let proxy = proxy_with_1_mib_limit();
    let mut bystander = Bystander::join(&proxy).await;
    let mut conn = login(&proxy).await;
    // 17 MiB: one full 16 MiB packet plus a continuation.
    let payload = query_of_len(17 * 1024 * 1024);
    // The proxy may stop reading or close while we are still writing; that is fine.
    let _ = tokio::time::timeout(Duration::from_secs(10), conn.write_logical(0, &payload)).await;
    let reply = conn.read_reply().await;
    match reply {
        Ok(Reply::Err(err)) => assert_eq!(
            (err.code, err.sql_state.as_deref()),
            (1153, Some("08S01")),
            "{err}"
        ),
        Ok(Reply::Closed) | Err(_) => {}
        Ok(other) => panic!("a 17 MiB query over a 1 MiB limit was answered: {other:?}"),
    }
    assert_proxy_serves(&proxy).await;
    bystander.assert_unharmed(&proxy).await;
}

#[tokio::test]
async fn a_query_under_the_limit_passes() {
    let proxy = proxy_with_1_mib_limit();
    let mut conn = login(&proxy).await;
    let reply = conn
        .command(COM_QUERY, &query_of_len(512 * 1024)[1..])
        .await
        .unwrap();
    let Reply::Rows(rows) = reply else {
        panic!("expected a result set, got {reply:?}");
    };
    assert_eq!(rows.len(), 1);
    assert_eq!(rows[0][0].as_ref().map(Vec::len), Some(512 * 1024 - 10));
}
