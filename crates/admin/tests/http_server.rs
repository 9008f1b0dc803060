//! The admin HTTP server on 127.0.0.1: routes, token checks, odd requests, slow clients and
//! shutdown.

mod common;

use std::sync::Arc;
use std::time::{Duration, Instant};

use common::{get, parse_response, raw_request, request, sample, Server, TestState};
use rwproxy_admin::{BackendRole, DestRole, Reason};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

const TOKEN: &str = "s3cret-t0ken-value";

#[tokio::test]
async fn routes_without_token() {
    let state = TestState::new();
    let server = Server::start(Arc::clone(&state), None).await;
    let addr = server.addr;

    let health = get(addr, "/health", None).await;
    assert_eq!(health.status, 200);
    assert_eq!(health.body, "ok");

    let ready = get(addr, "/ready", None).await;
    assert_eq!(ready.status, 200);
    *state.ready.lock().unwrap() = Err("no primary: two writable backends".to_owned());
    let ready = get(addr, "/ready", None).await;
    assert_eq!(ready.status, 503);
    assert_eq!(ready.body, "no primary: two writable backends");

    state
        .metrics
        .routing_decision(DestRole::Replica, Reason::Hint);
    let metrics = get(addr, "/metrics", None).await;
    assert_eq!(metrics.status, 200);
    assert_eq!(
        metrics.header("content-type"),
        Some("text/plain; version=0.0.4; charset=utf-8")
    );
    assert_eq!(
        sample(
            &metrics.body,
            r#"rwproxy_routing_decisions_total{role="replica",reason="hint"}"#
        ),
        Some(1.0)
    );
    assert_eq!(
        sample(&metrics.body, r#"rwproxy_backend_up{backend="db1"}"#),
        Some(1.0)
    );

    let backends = get(addr, "/backends", None).await;
    assert_eq!(backends.status, 200);
    assert_eq!(backends.header("content-type"), Some("application/json"));
    let json: serde_json::Value = serde_json::from_str(&backends.body).unwrap();
    assert_eq!(json[0]["name"], "db1");
    assert_eq!(json[0]["role"], "primary");

    let config = get(addr, "/config", None).await;
    assert_eq!(config.status, 200);
    let json: serde_json::Value = serde_json::from_str(&config.body).unwrap();
    assert_eq!(json["admin"]["token"], "<redacted>");

    server.shutdown().await.unwrap();
}

#[tokio::test]
async fn removed_backend_disappears_from_scrape() {
    let state = TestState::new();
    *state.backends.lock().unwrap() = vec![
        common::backend("db1", BackendRole::Primary),
        common::backend("db2", BackendRole::Replica),
    ];
    let server = Server::start(Arc::clone(&state), None).await;
    let body = get(server.addr, "/metrics", None).await.body;
    assert!(body.contains(r#"backend="db2""#));

    state.backends.lock().unwrap().pop();
    let body = get(server.addr, "/metrics", None).await.body;
    assert!(!body.contains(r#"backend="db2""#));
    assert!(body.contains(r#"backend="db1""#));
    server.shutdown().await.unwrap();
}

#[tokio::test]
async fn token_protects_everything_but_health_and_ready() {
    let state = TestState::new();
    let server = Server::start(state, Some(TOKEN)).await;
    let addr = server.addr;

    let health = get(addr, "/health", None).await;
    assert_eq!(health.status, 200);
    assert_eq!(health.body, "ok");

    // Probes need no token.
    let ready = get(addr, "/ready", None).await;
    assert_eq!(ready.status, 200);

    for path in ["/metrics", "/backends", "/config", "/sessions", "/nope"] {
        let denied = get(addr, path, None).await;
        assert_eq!(denied.status, 401, "{path}");
        assert!(denied
            .header("www-authenticate")
            .is_some_and(|v| v.starts_with("Bearer")));
        assert!(!denied.body.contains(TOKEN));

        let wrong = get(addr, path, Some("s3cret-t0ken-valuf")).await;
        assert_eq!(wrong.status, 401, "{path}");
        let prefix = get(addr, path, Some("s3cret")).await;
        assert_eq!(prefix.status, 401, "{path}");
        let longer = get(addr, path, Some("s3cret-t0ken-value2")).await;
        assert_eq!(longer.status, 401, "{path}");
    }

    for path in ["/metrics", "/ready", "/backends", "/config", "/sessions"] {
        let ok = get(addr, path, Some(TOKEN)).await;
        assert_eq!(ok.status, 200, "{path}");
    }
    // Wrong scheme, lower-case scheme.
    let basic = request(
        addr,
        "GET",
        "/metrics",
        &[("Authorization", "Basic czNjcmV0")],
    )
    .await;
    assert_eq!(basic.status, 401);
    let lower = request(
        addr,
        "GET",
        "/metrics",
        &[("Authorization", &format!("bearer {TOKEN}"))],
    )
    .await;
    assert_eq!(lower.status, 200);

    // Authenticated unknown path and method.
    assert_eq!(get(addr, "/nope", Some(TOKEN)).await.status, 404);
    let auth = format!("Bearer {TOKEN}");
    let post = request(addr, "POST", "/metrics", &[("Authorization", &auth)]).await;
    assert_eq!(post.status, 405);
    server.shutdown().await.unwrap();
}

#[tokio::test]
async fn unknown_paths_and_methods() {
    let server = Server::start(TestState::new(), None).await;
    let addr = server.addr;
    assert_eq!(get(addr, "/", None).await.status, 404);
    assert_eq!(get(addr, "/metrics/", None).await.status, 404);
    assert_eq!(get(addr, "/../etc/passwd", None).await.status, 404);
    // Query strings are ignored for routing.
    assert_eq!(get(addr, "/health?x=1", None).await.status, 200);

    for method in ["POST", "PUT", "DELETE", "HEAD", "OPTIONS", "PATCH"] {
        let response = request(addr, method, "/metrics", &[("Content-Length", "0")]).await;
        assert_eq!(response.status, 405, "{method}");
        assert_eq!(response.header("allow"), Some("GET"), "{method}");
    }
    let health_post = request(addr, "POST", "/health", &[("Content-Length", "0")]).await;
    assert_eq!(health_post.status, 405);
    server.shutdown().await.unwrap();
}

#[tokio::test]
async fn odd_requests_do_not_break_the_server() {
    let server = Server::start(TestState::new(), Some(TOKEN)).await;
    let addr = server.addr;

    let garbage = raw_request(addr, b"\x00\x01\x02 not http at all\r\n\r\n").await;
    if !garbage.is_empty() {
        assert_eq!(parse_response(&garbage).status, 400);
    }
    let huge_header = format!(
        "GET /metrics HTTP/1.1\r\nHost: x\r\nX-Big: {}\r\n\r\n",
        "a".repeat(64 * 1024)
    );
    let response = raw_request(addr, huge_header.as_bytes()).await;
    if !response.is_empty() {
        let status = parse_response(&response).status;
        assert!(status == 431 || status == 400, "{status}");
    }
    let bad_auth = raw_request(
        addr,
        b"GET /metrics HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer \xff\xfe\r\nConnection: close\r\n\r\n",
    )
    .await;
    assert_eq!(parse_response(&bad_auth).status, 401);
    let http10 = raw_request(addr, b"GET /health HTTP/1.0\r\n\r\n").await;
    assert_eq!(parse_response(&http10).status, 200);
    let body_on_get = raw_request(
        addr,
        b"GET /health HTTP/1.1\r\nHost: x\r\nContent-Length: 5\r\nConnection: close\r\n\r\nhello",
    )
    .await;
    assert_eq!(parse_response(&body_on_get).status, 200);
    // A client that connects and leaves without sending anything.
    drop(TcpStream::connect(addr).await.unwrap());

    // Still serving.
    assert_eq!(get(addr, "/health", None).await.status, 200);
    assert_eq!(get(addr, "/metrics", Some(TOKEN)).await.status, 200);
    server.shutdown().await.unwrap();
}

#[tokio::test]
async fn keep_alive_serves_several_requests() {
    let server = Server::start(TestState::new(), None).await;
    let mut stream = TcpStream::connect(server.addr).await.unwrap();
    stream
        .write_all(b"GET /health HTTP/1.1\r\nHost: x\r\n\r\nGET /ready HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n")
        .await
        .unwrap();
    let mut out = Vec::new();
    tokio::time::timeout(Duration::from_secs(5), stream.read_to_end(&mut out))
        .await
        .unwrap()
        .unwrap();
    let text = String::from_utf8(out).unwrap();
    assert_eq!(text.matches("HTTP/1.1 200 OK").count(), 2, "{text}");
    assert!(text.ends_with("ready"));
    server.shutdown().await.unwrap();
}

#[tokio::test]
async fn slow_clients_do_not_block_others() {
    let server = Server::start(TestState::new(), None).await;
    let addr = server.addr;
    // Several clients that send half a request head and stall.
    let mut stalled = Vec::new();
    for _ in 0..8 {
        let mut s = TcpStream::connect(addr).await.unwrap();
        s.write_all(b"GET /metrics HTTP/1.1\r\nHost: x\r\nX-Slow: ")
            .await
            .unwrap();
        stalled.push(s);
    }
    let started = Instant::now();
    let response = tokio::time::timeout(Duration::from_secs(3), get(addr, "/metrics", None))
        .await
        .expect("request blocked behind stalled clients");
    assert_eq!(response.status, 200);
    assert!(started.elapsed() < Duration::from_secs(3));
    drop(stalled);
    server.shutdown().await.unwrap();
}

#[tokio::test]
async fn shutdown_stops_accepting() {
    let server = Server::start(TestState::new(), None).await;
    let addr = server.addr;
    assert_eq!(get(addr, "/health", None).await.status, 200);
    // An idle keep-alive connection must not hold shutdown up.
    let mut idle = TcpStream::connect(addr).await.unwrap();
    idle.write_all(b"GET /health HTTP/1.1\r\nHost: x\r\n\r\n")
        .await
        .unwrap();
    let mut buf = [0u8; 512];
    let n = idle.read(&mut buf).await.unwrap();
    assert!(String::from_utf8_lossy(&buf[..n]).starts_with("HTTP/1.1 200"));

    let started = Instant::now();
    tokio::time::timeout(Duration::from_secs(10), server.shutdown())
        .await
        .expect("serve did not return after shutdown")
        .unwrap();
    assert!(started.elapsed() < Duration::from_secs(6));
    assert!(TcpStream::connect(addr).await.is_err());
    // The idle connection was closed by the server.
    let n = tokio::time::timeout(Duration::from_secs(5), idle.read(&mut buf))
        .await
        .unwrap()
        .unwrap_or(0);
    assert_eq!(n, 0);
}
