//! `login_throttle`: an address that keeps failing to log in is refused for a while, before
//! the greeting, with ERR 1129 (HY000) as the server refuses a blocked host. A connection that
//! only opens and closes (a TCP health check) is no failure, and a success forgives.

use std::time::Duration;

use rwproxy_testkit::wire::{Greeting, RawConn, Reply};
use rwproxy_testkit::{ProxyProcess, StandardConfig};

use crate::support::{cluster, start_proxy, Bystander};

const BLOCK_FOR_SECS: u64 = 3;

fn proxy() -> ProxyProcess {
    let mut config = StandardConfig::new(cluster());
    config.extra = format!("login_throttle: {{ max_failures: 3, block_for: {BLOCK_FOR_SECS}s }}\n");
    start_proxy(&config.to_yaml())
}

/// rwproxy counts a login's outcome just after the client has its answer; the pauses below
/// keep one login's count ahead of the next login on this loaded test machine.
const SETTLE: Duration = Duration::from_millis(100);

async fn login(proxy: &ProxyProcess, password: &str) -> Reply {
    let app = &cluster().app;
    let (_conn, reply) = RawConn::login(proxy.addr(), &app.user, password, Some("app"))
        .await
        .unwrap();
    tokio::time::sleep(SETTLE).await;
    reply
}

async fn assert_denied(proxy: &ProxyProcess) {
    let app = &cluster().app;
    let (mut conn, reply) =
        RawConn::login(proxy.addr(), &app.user, "not-the-password", Some("app"))
            .await
            .unwrap();
    let err = reply.err().unwrap_or_else(|| panic!("{reply:?}"));
    assert_eq!(err.code, 1045, "{err:?}");
    // rwproxy counts the failure as it closes the connection: wait for the close.
    conn.wait_closed(Duration::from_secs(5)).await.unwrap();
    tokio::time::sleep(SETTLE).await;
}

async fn metric(proxy: &ProxyProcess, series: &str) -> f64 {
    let (status, body) = proxy.admin_get("/metrics").await.unwrap();
    assert_eq!(status, 200);
    body.lines()
        .find_map(|l| l.strip_prefix(series)?.trim().parse::<f64>().ok())
        .unwrap_or(0.0)
}

#[tokio::test]
async fn an_address_failing_logins_is_refused_for_block_for_then_served_again() {
    let proxy = proxy();
    let mut bystander = Bystander::join(&proxy).await;
    let password = cluster().app.password.clone();

    // Health checks that connect, read the greeting and close are not failures.
    for _ in 0..5 {
        let mut probe = RawConn::connect(proxy.addr()).await.unwrap();
        assert!(matches!(
            probe.read_greeting().await.unwrap(),
            Greeting::Handshake(_)
        ));
    }
    // Two failures, then a success: forgiven.
    assert_denied(&proxy).await;
    assert_denied(&proxy).await;
    assert_eq!(login(&proxy, &password).await, Reply::Ok);
    assert_denied(&proxy).await;
    assert_denied(&proxy).await;
    assert_eq!(
        login(&proxy, &password).await,
        Reply::Ok,
        "forgiven by the success"
    );

    // Three in a row: the address is blocked, the right password included, before the
    // greeting.
    for _ in 0..3 {
        assert_denied(&proxy).await;
    }
    let mut refused = RawConn::connect(proxy.addr()).await.unwrap();
    let greeting = refused.read_greeting().await.unwrap();
    let Greeting::Err(err) = greeting else {
        panic!("a blocked address was greeted: {greeting:?}");
    };
    assert_eq!(
        (err.code, err.sql_state.as_deref()),
        (1129, Some("HY000")),
        "{err:?}"
    );
    assert!(err.message.contains("blocked"), "{}", err.message);
    let reply = login(&proxy, &password).await;
    assert_eq!(reply.err().map(|e| e.code), Some(1129), "{reply:?}");
    // A session that was open before is not touched.
    bystander.assert_unharmed(&proxy).await;

    let blocked = metric(&proxy, "rwproxy_login_sources_blocked_total ").await;
    assert_eq!(
        blocked,
        1.0,
        "blocks counted\n--- proxy log ---\n{}",
        proxy.log_tail(40)
    );
    assert!(
        metric(
            &proxy,
            "rwproxy_client_rejections_total{reason=\"host_blocked\"} "
        )
        .await
            >= 2.0
    );

    // After block_for, served again.
    tokio::time::sleep(Duration::from_secs(BLOCK_FOR_SECS) + Duration::from_millis(500)).await;
    assert_eq!(login(&proxy, &password).await, Reply::Ok);
}

#[tokio::test]
async fn without_login_throttle_failures_never_block() {
    let proxy = start_proxy(&StandardConfig::new(cluster()).to_yaml());
    for _ in 0..12 {
        assert_denied(&proxy).await;
    }
    assert_eq!(login(&proxy, &cluster().app.password).await, Reply::Ok);
}

/// Each way a login ends counts under its own `rwproxy_client_rejections_total` reason: a
/// connection that reads the greeting and closes (a TCP health check) is `client_closed`, a
/// wrong password `auth_failed` — never one for the other.
#[tokio::test]
async fn refusals_count_under_their_own_reason() {
    let proxy = proxy();
    let closed = "rwproxy_client_rejections_total{reason=\"client_closed\"} ";
    let denied = "rwproxy_client_rejections_total{reason=\"auth_failed\"} ";
    // The test kit's own readiness probe may be counted too: counts are compared with a
    // baseline taken once it settled.
    tokio::time::sleep(SETTLE).await;
    let closed_before = metric(&proxy, closed).await;
    for _ in 0..3 {
        let mut probe = RawConn::connect(proxy.addr()).await.unwrap();
        assert!(matches!(
            probe.read_greeting().await.unwrap(),
            Greeting::Handshake(_)
        ));
    }
    // Counted once rwproxy sees the close.
    let deadline = tokio::time::Instant::now() + Duration::from_secs(5);
    while metric(&proxy, closed).await < closed_before + 3.0
        && tokio::time::Instant::now() < deadline
    {
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    let closed_after = metric(&proxy, closed).await;
    assert_eq!(closed_after, closed_before + 3.0, "{}", proxy.log_tail(20));
    assert_eq!(metric(&proxy, denied).await, 0.0);
    assert_denied(&proxy).await;
    assert_eq!(metric(&proxy, denied).await, 1.0);
    assert_eq!(metric(&proxy, closed).await, closed_after);
}
