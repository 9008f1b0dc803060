//! A backend that is down or mute: the client gets a prompt ERR naming the backend,
//! within the configured timeouts, and the proxy keeps serving.

use std::net::TcpListener;
use std::time::{Duration, Instant};

use rwproxy_testkit::wire::{ErrPacket, RawConn, Reply};
use rwproxy_testkit::{closed_port, ProxyBackend, ProxyProcess, StandardConfig};

use crate::support::{cluster, start_proxy};

fn proxy_with_single_backend(name: &str, address: &str) -> ProxyProcess {
    let mut config = StandardConfig::new(cluster());
    config.backends = vec![ProxyBackend {
        name: name.to_string(),
        address: address.to_string(),
        weight: 1,
        primary: Some(true),
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
async fn a_closed_backend_port_is_a_prompt_err_2003() {
    let port = closed_port().unwrap();
    let address = format!("127.0.0.1:{port}");
    let proxy = proxy_with_single_backend("deadend", &address);
    for attempt in 0..2 {
        let (err, took) = first_error(&proxy).await;
        let err = err.unwrap_or_else(|| panic!("attempt {attempt}: a query ran without a backend"));
        assert_eq!(err.code, 2003, "{err}");
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
    assert!(matches!(err.code, 2003 | 2013), "{err}");
    assert!(
        took < Duration::from_secs(6),
        "took {took:?} with connect 1 s + handshake 2 s"
    );
    // The proxy is still there and answers the next client the same way.
    let (again, _) = first_error(&proxy).await;
    assert!(again.is_some());
    drop(mute);
}
