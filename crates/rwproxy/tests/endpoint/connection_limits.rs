//! More clients than `max_client_connections`: ERR 1040 "Too many connections".

use std::time::{Duration, Instant};

use mysql_async::prelude::Queryable;
use rwproxy_testkit::wire::{Greeting, RawConn, Reply};
use rwproxy_testkit::{ProxyProcess, StandardConfig};

use crate::support::{app_via, cluster, rejections, start_proxy, wait_rejections};

const LIMIT: u32 = 3;

fn limited_proxy() -> ProxyProcess {
    let mut config = StandardConfig::new(cluster());
    config.max_client_connections = LIMIT;
    start_proxy(&config.to_yaml())
}

/// Try one more raw login; the ERR packet the proxy refused it with, if any.
async fn extra_login(proxy: &ProxyProcess) -> Option<rwproxy_testkit::wire::ErrPacket> {
    let app = &cluster().app;
    let mut conn = RawConn::connect(proxy.addr()).await.unwrap();
    // The refusal may come instead of the greeting (as MariaDB does it) or after login.
    let greeting = match conn.read_greeting().await.unwrap() {
        Greeting::Err(err) => return Some(err),
        Greeting::Handshake(h) => h,
    };
    conn.send_login(&greeting, &app.user, &app.password, None, 1)
        .await
        .unwrap();
    match conn.read_auth_result(&app.password).await.unwrap() {
        Reply::Err(err) => Some(err),
        Reply::Ok => None,
        other => panic!("unexpected reply to the extra login: {other:?}"),
    }
}

#[tokio::test]
async fn one_client_too_many_gets_err_1040() {
    let proxy = limited_proxy();
    let mut held = Vec::new();
    for _ in 0..LIMIT {
        held.push(app_via(&proxy).await);
    }
    let err = extra_login(&proxy)
        .await
        .unwrap_or_else(|| panic!("client {} of {LIMIT} allowed was let in", LIMIT + 1));
    assert_eq!(err.code, 1040, "{err}");
    assert!(
        err.message.contains("Too many connections"),
        "{}",
        err.message
    );
    if let Some(state) = &err.sql_state {
        assert_eq!(state, "08004", "{err}");
    }

    // The sessions within the limit keep working.
    for conn in held.iter_mut() {
        let one: Option<i32> = conn.query_first("SELECT 1").await.unwrap();
        assert_eq!(one, Some(1));
    }

    // A slot that frees up can be used again.
    let conn = held.pop().unwrap();
    conn.disconnect().await.unwrap();
    let deadline = Instant::now() + Duration::from_secs(5);
    loop {
        match extra_login(&proxy).await {
            None => break,
            Some(err) if err.code == 1040 && Instant::now() < deadline => {
                tokio::time::sleep(Duration::from_millis(100)).await;
            }
            Some(err) => panic!("the freed slot was not reusable: {err}"),
        }
    }
}

#[tokio::test]
async fn refused_clients_do_not_use_up_slots() {
    let proxy = limited_proxy();
    let mut held = Vec::new();
    for _ in 0..LIMIT {
        held.push(app_via(&proxy).await);
    }
    for _ in 0..10 {
        let err = extra_login(&proxy).await.expect("refused");
        assert_eq!(err.code, 1040);
    }
    held.clear();
    // Every slot comes back once the held sessions are gone.
    let deadline = Instant::now() + Duration::from_secs(5);
    let mut fresh = Vec::new();
    while fresh.len() < LIMIT as usize {
        match proxy.connect(&cluster().app, None).await {
            Ok(conn) => fresh.push(conn),
            Err(e) if Instant::now() < deadline => {
                let _ = e;
                tokio::time::sleep(Duration::from_millis(100)).await;
            }
            Err(e) => panic!("only {} of {LIMIT} slots came back: {e}", fresh.len()),
        }
    }
}

/// Each client refused for `max_client_connections` is counted once in
/// `rwproxy_client_rejections_total{reason="max_connections"}`.
#[tokio::test]
async fn refusals_count_as_max_connections() {
    let proxy = limited_proxy();
    let mut held = Vec::new();
    for _ in 0..LIMIT {
        held.push(app_via(&proxy).await);
    }
    let before = rejections(&proxy, "max_connections").await;
    for _ in 0..2 {
        let err = extra_login(&proxy).await.expect("refused");
        assert_eq!(err.code, 1040, "{err}");
    }
    let now = wait_rejections(&proxy, "max_connections", before + 2.0).await;
    assert_eq!(now, before + 2.0);
    drop(held);
}
