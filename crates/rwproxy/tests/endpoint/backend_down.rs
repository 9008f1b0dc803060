//! A backend that is down or mute: the client gets a prompt ERR naming the backend,
//! within the configured timeouts, and the proxy keeps serving.

use std::net::TcpListener;
use std::time::{Duration, Instant};

use mysql_async::prelude::Queryable;
use rwproxy_testkit::wire::{ErrPacket, RawConn, Reply};
use rwproxy_testkit::{closed_port, ProxyBackend, ProxyProcess, StandardConfig};

use crate::support::{
    app_via, cluster, server_error, start_proxy, start_standard_proxy, unique_table,
};

fn proxy_with_single_backend(name: &str, address: &str) -> ProxyProcess {
    let mut config = StandardConfig::new(cluster());
    config.backends = vec![ProxyBackend {
        name: name.to_string(),
        address: address.to_string(),
        weight: 1,
        primary: Some(true),
        priority: None,
    }];
    config.connect_timeout = "1s".to_string();
    config.handshake_timeout = "2s".to_string();
    start_proxy(&config.to_yaml())
}

/// Log in and run a query; the first ERR packet on the way, and how long it took.
async fn first_error(proxy: &ProxyProcess) -> (Option<ErrPacket>, Duration) {
    let app = &cluster().app;
    let started = Instant::now();
    let (mut conn, reply) = RawConn::login(proxy.addr(), &app.user, &app.password, None)
        .await
        .unwrap();
    match reply {
        Reply::Err(err) => return (Some(err), started.elapsed()),
        Reply::Ok => {}
        other => panic!("unexpected login reply {other:?}"),
    }
    let reply = conn.query("SELECT 1").await.unwrap();
    (reply.err().cloned(), started.elapsed())
}

#[tokio::test]
async fn a_closed_backend_port_is_a_prompt_err_1429() {
    let port = closed_port().unwrap();
    let address = format!("127.0.0.1:{port}");
    let proxy = proxy_with_single_backend("deadend", &address);
    for attempt in 0..2 {
        let (err, took) = first_error(&proxy).await;
        let err = err.unwrap_or_else(|| panic!("attempt {attempt}: a query ran without a backend"));
        assert_eq!(err.code, 1429, "{err}");
        assert!(
            err.message.contains("deadend") || err.message.contains(&address),
            "the error must name the backend: {err}"
        );
        assert!(
            took < Duration::from_secs(3),
            "attempt {attempt}: took {took:?} with a 1 s connect timeout"
        );
    }
}

#[tokio::test]
async fn a_mute_backend_fails_within_the_timeouts() {
    // Accepts TCP connections (the kernel does) but never says a word.
    let mute = TcpListener::bind("127.0.0.1:0").unwrap();
    let address = mute.local_addr().unwrap().to_string();
    let proxy = proxy_with_single_backend("mute", &address);
    let (err, took) = first_error(&proxy).await;
    let err = err.expect("a query ran without a working backend");
    assert!(matches!(err.code, 1429 | 1927), "{err}");
    assert!(
        took < Duration::from_secs(6),
        "took {took:?} with connect 1 s + handshake 2 s"
    );
    // The proxy is still there and answers the next client the same way.
    let (again, _) = first_error(&proxy).await;
    assert!(again.is_some());
    drop(mute);
}

/// `rwproxy_backend_failures_total{backend, kind}` now.
async fn failures(proxy: &ProxyProcess, backend: &str, kind: &str) -> f64 {
    proxy
        .series(
            "rwproxy_backend_failures_total",
            &[("backend", backend), ("kind", kind)],
        )
        .await
        .unwrap_or_else(|e| panic!("{e}"))
}

/// A backend whose port refuses connections: every statement sent there (by a rule naming it)
/// counts one `connect` failure for it, and no other kind.
#[tokio::test]
async fn a_backend_refusing_connections_counts_connect_failures() {
    let port = closed_port().unwrap();
    let mut config = StandardConfig::new(cluster());
    config.backends.push(ProxyBackend {
        name: "deadend".to_string(),
        address: format!("127.0.0.1:{port}"),
        weight: 1,
        primary: None,
        priority: None,
    });
    config.extra = "routing:\n  rules:\n    - { match: 'deadend_probe', route: deadend }\n".into();
    let proxy = start_proxy(&config.to_yaml());
    let mut conn = app_via(&proxy).await;
    let before = failures(&proxy, "deadend", "connect").await;
    for attempt in 1..=2 {
        let err = conn
            .query_drop("SELECT 'deadend_probe'")
            .await
            .expect_err("a statement ran on a backend that refuses connections");
        let err = server_error(err);
        assert_eq!(err.code, 1429, "{err:?}");
        assert_eq!(
            failures(&proxy, "deadend", "connect").await,
            before + f64::from(attempt),
            "attempt {attempt}\n--- proxy log ---\n{}",
            proxy.log_tail(20)
        );
    }
    assert_eq!(failures(&proxy, "deadend", "query").await, 0.0);
    assert_eq!(failures(&proxy, "deadend", "timeout").await, 0.0);
    conn.disconnect().await.unwrap();
}

/// A backend connection that dies in the middle of a statement (its server thread ended with
/// `KILL CONNECTION` on the primary; the server closes it without a reply) counts one `query`
/// failure for that backend, and the client gets ERR 2013.
#[tokio::test]
async fn a_backend_connection_killed_mid_statement_counts_a_query_failure() {
    let proxy = start_standard_proxy();
    let mut conn = app_via(&proxy).await;
    let marker = unique_table("killed");
    let before = failures(&proxy, "db1", "query").await;
    let sql = format!("SELECT /* rwproxy:primary */ '{marker}', SLEEP(20)");
    let running = tokio::spawn(async move {
        let result = conn.query_drop(sql).await;
        (result, conn)
    });
    // The server thread running it: the proxy's connection to the primary.
    let find = format!(
        "SELECT ID FROM information_schema.PROCESSLIST \
         WHERE INFO LIKE '%{marker}%SLEEP%' AND ID <> CONNECTION_ID()"
    );
    let deadline = Instant::now() + Duration::from_secs(5);
    let thread = loop {
        if let Some(id) = cluster().admin_scalar::<u64>(0, &find).await.unwrap() {
            break id;
        }
        assert!(
            Instant::now() < deadline,
            "the statement never showed up on the primary\n--- proxy log ---\n{}",
            proxy.log_tail(20)
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    };
    cluster()
        .admin_exec(0, &format!("KILL CONNECTION {thread}"))
        .await
        .unwrap();
    let (result, conn) = tokio::time::timeout(Duration::from_secs(10), running)
        .await
        .expect("the statement did not end after its backend connection was killed")
        .unwrap();
    let err = server_error(result.expect_err("the killed statement succeeded"));
    assert_eq!(err.code, 1927, "{err:?}");
    assert_eq!(
        failures(&proxy, "db1", "query").await,
        before + 1.0,
        "--- proxy log ---\n{}",
        proxy.log_tail(20)
    );
    assert_eq!(failures(&proxy, "db1", "connect").await, 0.0);
    assert_eq!(failures(&proxy, "db1", "timeout").await, 0.0);
    conn.disconnect().await.unwrap();
}
