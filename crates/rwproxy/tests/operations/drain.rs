//! Graceful shutdown (`shutdown.delay`, `shutdown.timeout`), as Kubernetes uses it: on SIGTERM
//! `/ready` answers 503 at once and clients are still served for the delay; then new
//! connections are refused, idle sessions close, a running statement and an open transaction
//! finish, and the process exits 0. Past the timeout, a running statement gets ERR 1053. A
//! second SIGTERM exits at once.

use std::time::{Duration, Instant};

use mysql_async::prelude::Queryable;
use rwproxy_testkit::ProxyProcess;

use crate::support::{app_via, config_for, proxy_bin, scrape, shared, unique_table, wait_routable};

async fn start(shutdown: &str) -> ProxyProcess {
    let cluster = shared();
    let yaml = config_for(cluster, &format!("shutdown: {shutdown}\n")).to_yaml();
    let proxy = match ProxyProcess::start(proxy_bin(), &yaml) {
        Ok(proxy) => proxy,
        Err(e) => panic!("starting rwproxy: {e}"),
    };
    wait_routable(&proxy, cluster.replicas().len(), None).await;
    proxy
}

async fn ready_status(proxy: &ProxyProcess) -> u16 {
    proxy.admin_get("/ready").await.map(|(s, _)| s).unwrap_or(0)
}

fn wait_exit(proxy: &mut ProxyProcess, timeout: Duration) -> i32 {
    match proxy.wait_exit(timeout).unwrap() {
        Some(status) => status.code().unwrap_or(-1),
        None => panic!(
            "rwproxy did not exit within {timeout:?}\n--- log ---\n{}",
            proxy.log_tail(30)
        ),
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sigterm_drains_statements_and_transactions_then_exits_0() {
    let cluster = shared();
    let mut proxy = start("{ delay: 1500ms, timeout: 20s }").await;
    let table = unique_table("drain");
    let mut setup = app_via(&proxy, cluster).await;
    setup
        .query_drop(format!("CREATE TABLE {table} (id INT PRIMARY KEY)"))
        .await
        .unwrap();
    setup.disconnect().await.unwrap();

    let mut idle = app_via(&proxy, cluster).await;
    idle.query_drop("SELECT 1").await.unwrap();
    let mut in_trx = app_via(&proxy, cluster).await;
    in_trx.query_drop("BEGIN").await.unwrap();
    in_trx
        .query_drop(format!("INSERT INTO {table} VALUES (1)"))
        .await
        .unwrap();
    let mut sleeper = app_via(&proxy, cluster).await;
    let sleeping = tokio::spawn(async move {
        let r: Result<Option<i64>, _> = sleeper.query_first("SELECT SLEEP(3)").await;
        (r, sleeper)
    });
    tokio::time::sleep(Duration::from_millis(300)).await;

    let signalled = Instant::now();
    proxy.send_sigterm().unwrap();
    tokio::time::sleep(Duration::from_millis(200)).await;
    assert_eq!(ready_status(&proxy).await, 503, "/ready during the drain");
    // Within the delay, new clients are still served.
    let mut late = app_via(&proxy, cluster).await;
    let one: Option<i64> = late.query_first("SELECT 1").await.unwrap();
    assert_eq!(one, Some(1));
    drop(late);

    // After the delay: refused, and the idle session is closed.
    tokio::time::sleep(
        Duration::from_millis(1500).saturating_sub(signalled.elapsed())
            + Duration::from_millis(500),
    )
    .await;
    assert!(
        proxy.connect(&cluster.app, Some("app")).await.is_err(),
        "a new connection was accepted after the delay"
    );
    assert!(
        idle.query_drop("SELECT 1").await.is_err(),
        "an idle session was kept after the delay"
    );

    // The transaction goes on and commits; then its session is closed too.
    in_trx
        .query_drop(format!("INSERT INTO {table} VALUES (2)"))
        .await
        .unwrap_or_else(|e| panic!("in the drained transaction: {e}\n{}", proxy.log_tail(20)));
    in_trx.query_drop("COMMIT").await.unwrap();
    assert!(in_trx.query_drop("SELECT 1").await.is_err());

    // The running statement finished with its result.
    let (slept, _sleeper) = sleeping.await.unwrap();
    assert_eq!(slept.unwrap(), Some(0), "SELECT SLEEP(3) across the drain");

    assert_eq!(wait_exit(&mut proxy, Duration::from_secs(10)), 0);
    assert!(signalled.elapsed() < Duration::from_secs(15));
    let mut direct = cluster.admin_conn(0).await.unwrap();
    let rows: Option<i64> = direct
        .query_first(format!("SELECT COUNT(*) FROM app.{table}"))
        .await
        .unwrap();
    assert_eq!(rows, Some(2), "the drained transaction's rows");
    direct
        .query_drop(format!("DROP TABLE app.{table}"))
        .await
        .unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn past_the_timeout_a_running_statement_gets_1053_and_the_process_exits_0() {
    let cluster = shared();
    let mut proxy = start("{ delay: 0s, timeout: 1s }").await;
    let mut sleeper = app_via(&proxy, cluster).await;
    let sleeping = tokio::spawn(async move {
        let r: Result<Option<i64>, _> = sleeper.query_first("SELECT SLEEP(20)").await;
        r
    });
    tokio::time::sleep(Duration::from_millis(300)).await;
    proxy.send_sigterm().unwrap();
    let err = match sleeping.await.unwrap() {
        Err(mysql_async::Error::Server(e)) => e,
        other => panic!("expected ERR 1053, got {other:?}\n{}", proxy.log_tail(20)),
    };
    assert_eq!((err.code, err.state.as_str()), (1053, "08S01"), "{err:?}");
    assert_eq!(wait_exit(&mut proxy, Duration::from_secs(10)), 0);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_second_sigterm_exits_at_once() {
    let cluster = shared();
    let mut proxy = start("{ delay: 30s, timeout: 30s }").await;
    let mut conn = app_via(&proxy, cluster).await;
    conn.query_drop("SELECT 1").await.unwrap();
    proxy.send_sigterm().unwrap();
    tokio::time::sleep(Duration::from_millis(300)).await;
    assert_eq!(ready_status(&proxy).await, 503);
    let second = Instant::now();
    proxy.send_sigterm().unwrap();
    assert_eq!(wait_exit(&mut proxy, Duration::from_secs(5)), 1);
    assert!(second.elapsed() < Duration::from_secs(3));
}

/// A connection accepted before the shutdown stopped taking new sessions, whose login only
/// finishes afterwards, is refused with ERR 1053 (as the server refuses a login while it shuts
/// down) and counted as `rwproxy_client_rejections_total{reason="shutting_down"}`.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_login_that_finishes_during_the_drain_gets_1053() {
    use rwproxy_testkit::metrics::series;
    use rwproxy_testkit::wire::{Greeting, RawConn, Reply};

    let cluster = shared();
    let mut proxy = start("{ delay: 1s, timeout: 20s }").await;
    // An open transaction keeps the process (and its /metrics) alive through the drain.
    let mut in_trx = app_via(&proxy, cluster).await;
    in_trx.query_drop("BEGIN").await.unwrap();
    in_trx.query_drop("SELECT 1").await.unwrap();

    let mut raw = RawConn::connect(proxy.addr()).await.unwrap();
    let greeting = match raw.read_greeting().await.unwrap() {
        Greeting::Handshake(h) => h,
        Greeting::Err(e) => panic!("greeting: {e}"),
    };
    let signalled = Instant::now();
    proxy.send_sigterm().unwrap();
    // Past the delay: the listener is closed; this connection was accepted before.
    tokio::time::sleep(Duration::from_millis(1500).saturating_sub(signalled.elapsed())).await;
    assert!(
        proxy.connect(&cluster.app, Some("app")).await.is_err(),
        "a new connection was accepted after the delay"
    );
    raw.send_login(
        &greeting,
        &cluster.app.user,
        &cluster.app.password,
        Some("app"),
        1,
    )
    .await
    .unwrap();
    match raw.read_auth_result(&cluster.app.password).await.unwrap() {
        Reply::Err(e) => {
            assert_eq!(
                (e.code, e.sql_state.as_deref()),
                (1053, Some("08S01")),
                "{e}"
            )
        }
        other => panic!("expected ERR 1053, got {other:?}"),
    }
    // Counted once the refusal is sent: the client may read it a moment before.
    let deadline = Instant::now() + Duration::from_secs(5);
    let mut text = scrape(&proxy, None).await;
    let refused = |text: &str| {
        series(
            text,
            "rwproxy_client_rejections_total",
            &[("reason", "shutting_down")],
        )
    };
    while refused(&text) != Some(1.0) && Instant::now() < deadline {
        tokio::time::sleep(Duration::from_millis(50)).await;
        text = scrape(&proxy, None).await;
    }
    assert_eq!(refused(&text), Some(1.0), "{text}");

    in_trx.query_drop("COMMIT").await.unwrap();
    assert_eq!(wait_exit(&mut proxy, Duration::from_secs(10)), 0);
}
