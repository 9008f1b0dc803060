//! `large_packet_budget`: the memory every client connection together may hold for packets
//! being received. While one client's large packet holds the budget, small statements of
//! others go on, a second large packet waits and is then refused with ERR 1041 (HY000) and a
//! close, and once the first packet is done the budget is free again.

use std::time::Duration;

use rwproxy_testkit::wire::{RawConn, Reply, COM_QUERY};
use rwproxy_testkit::{ProxyProcess, StandardConfig};

use crate::support::{cluster, start_proxy, Bystander};

const MIB: usize = 1024 * 1024;

fn proxy() -> ProxyProcess {
    let mut config = StandardConfig::new(cluster());
    config.max_allowed_packet = "8MiB".to_string();
    config.extra = "large_packet_budget: 8MiB\n".to_string();
    start_proxy(&config.to_yaml())
}

async fn login(proxy: &ProxyProcess) -> RawConn {
    let app = &cluster().app;
    let (mut conn, reply) = RawConn::login(proxy.addr(), &app.user, &app.password, Some("app"))
        .await
        .unwrap();
    assert_eq!(reply, Reply::Ok);
    conn.read_timeout = Duration::from_secs(30);
    conn
}

/// `SELECT LENGTH('xxx…')` as a COM_QUERY payload of `len` bytes.
fn query_of_len(len: usize) -> Vec<u8> {
    let mut payload = Vec::with_capacity(len);
    payload.push(COM_QUERY);
    payload.extend_from_slice(b"SELECT LENGTH('");
    payload.resize(len - 2, b'x');
    payload.extend_from_slice(b"')");
    payload
}

fn framed(payload: &[u8]) -> Vec<u8> {
    let len = payload.len();
    assert!(len < 0xFF_FFFF);
    let mut out = vec![len as u8, (len >> 8) as u8, (len >> 16) as u8, 0];
    out.extend_from_slice(payload);
    out
}

fn single_value(reply: &Reply) -> String {
    match reply {
        Reply::Rows(rows) if rows.len() == 1 && rows[0].len() == 1 => {
            String::from_utf8_lossy(rows[0][0].as_deref().unwrap_or_default()).into_owned()
        }
        other => panic!("expected one value, got {other:?}"),
    }
}

#[tokio::test]
async fn a_second_large_packet_waits_for_the_budget_then_is_refused_with_1041() {
    let proxy = proxy();
    let mut bystander = Bystander::join(&proxy).await;

    // A sends 6 MiB of a statement and holds back its last byte: the proxy holds ~6 MiB.
    let mut a = login(&proxy).await;
    let big = framed(&query_of_len(6 * MIB));
    a.write_raw(&big[..big.len() - 1]).await.unwrap();
    tokio::time::sleep(Duration::from_millis(500)).await;

    // Small statements of others are not held up.
    let mut b = login(&proxy).await;
    assert_eq!(single_value(&b.query("SELECT 1").await.unwrap()), "1");
    bystander.assert_unharmed(&proxy).await;

    // B's 4 MiB statement does not fit next to A's: it waits, then is refused and closed.
    let payload = query_of_len(4 * MIB);
    let _ = tokio::time::timeout(Duration::from_secs(20), b.write_logical(0, &payload)).await;
    let reply = b.read_reply().await.unwrap();
    let err = reply
        .err()
        .unwrap_or_else(|| panic!("expected ERR 1041, got {reply:?}\n{}", proxy.log_tail(20)));
    assert_eq!(
        (err.code, err.sql_state.as_deref()),
        (1041, Some("HY000")),
        "{err:?}"
    );
    assert!(
        err.message.contains("large_packet_budget"),
        "{}",
        err.message
    );
    b.wait_closed(Duration::from_secs(10)).await.unwrap();

    // A's statement completes, whole.
    a.write_raw(&big[big.len() - 1..]).await.unwrap();
    let expected = (6 * MIB - 1 - "SELECT LENGTH('')".len()).to_string();
    assert_eq!(single_value(&a.read_reply().await.unwrap()), expected);

    // The budget is free again: a 4 MiB statement goes through.
    let mut c = login(&proxy).await;
    c.write_logical(0, &payload).await.unwrap();
    let expected = (4 * MIB - 1 - "SELECT LENGTH('')".len()).to_string();
    assert_eq!(single_value(&c.read_reply().await.unwrap()), expected);

    let (status, metrics) = proxy.admin_get("/metrics").await.unwrap();
    assert_eq!(status, 200);
    assert!(
        metrics
            .lines()
            .any(|l| l == "rwproxy_large_packet_budget_exhausted_total 1"),
        "{metrics}"
    );
    bystander.assert_unharmed(&proxy).await;
}
