//! New sessions while a replica is frozen (`SIGSTOP`: the kernel still accepts TCP, the server
//! never greets): their first read must not wait the handshake timeout (5 s) on it. A login to
//! it is bounded by the detection time, the wait ends when the monitor declares it down, and
//! the read goes to the other replica; no read fails.

use std::time::{Duration, Instant};

use mysql_async::prelude::Queryable;
use rwproxy_testkit::TestSignal;

use crate::support::*;

const VICTIM_NODE: usize = 2;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn new_sessions_do_not_wait_on_a_frozen_replica() {
    let _serial = serial().await;
    let cluster = throwaway("fo-newsess", 3500);
    let proxy = start_proxy(&fast_yaml(&cluster, "")).await;
    let victim_id = node_server_id(&cluster, VICTIM_NODE).await;
    let _guard = ContOnDrop {
        cluster: &cluster,
        node: VICTIM_NODE,
    };
    signal_node(&cluster, VICTIM_NODE, TestSignal::Stop);
    let started = Instant::now();
    // Sessions start one replica apart: half of them first pick the frozen one.
    let mut clients = Vec::new();
    for _ in 0..6 {
        let opts = proxy.opts(&cluster.app, Some("app"));
        clients.push(tokio::spawn(async move {
            let t0 = Instant::now();
            let answer: Result<Option<u32>, String> = async {
                let mut conn = mysql_async::Conn::new(opts)
                    .await
                    .map_err(|e| e.to_string())?;
                let id = conn
                    .query_first("SELECT @@server_id")
                    .await
                    .map_err(|e| e.to_string())?;
                let _ = conn.disconnect().await;
                Ok(id)
            }
            .await;
            (answer, t0.elapsed())
        }));
    }
    let mut slowest = Duration::ZERO;
    for c in clients {
        let (answer, took) = c.await.unwrap();
        let id = answer.unwrap_or_else(|e| {
            panic!(
                "a new session's read failed: {e}\n--- proxy log ---\n{}",
                proxy.log_tail(30)
            )
        });
        assert_ne!(
            id,
            Some(victim_id),
            "a read was answered by the frozen replica"
        );
        slowest = slowest.max(took);
    }
    eprintln!(
        "slowest new-session read: {slowest:?} (all done {:?} after SIGSTOP)",
        started.elapsed()
    );
    // Detection: two checks of at most 500 ms, 200 ms apart, plus the first interval (as in
    // replica_death), with room for a loaded machine; far below the 5 s handshake timeout.
    assert!(
        slowest < Duration::from_millis(3000),
        "a new session waited {slowest:?} on the frozen replica\n--- proxy log ---\n{}",
        proxy.log_tail(30)
    );
}
