//! Replication trouble on a live replica: stopped threads (`STOP SLAVE`) and a delayed
//! replica (`MASTER_DELAY`). The replica must get no reads while it is broken or lagging,
//! and get them again once it is healthy.

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::Instant;

use mysql_async::prelude::Queryable;

use crate::support::*;

const VICTIM_NODE: usize = 2;
const VICTIM: &str = "db3";

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_replica_with_stopped_replication_gets_no_reads_until_restarted() {
    let _serial = serial().await;
    let cluster = throwaway("fo-lag", 3476);
    let proxy = start_proxy(&fast_yaml(&cluster, "")).await;
    let victim_id = node_server_id(&cluster, VICTIM_NODE).await;
    let other_id = node_server_id(&cluster, 1).await;

    let load = ReadLoad::start(proxy.port, &cluster.app, 3);
    wait_both_replicas_serve(&load, [other_id, victim_id], &proxy).await;

    let t0 = Instant::now();
    admin_exec(&cluster, VICTIM_NODE, "STOP SLAVE").await;
    let broken = wait_state(&proxy, VICTIM, "replication_broken", secs(1)).await;
    eprintln!(
        "replication_broken reported {} ms after STOP SLAVE",
        (broken - t0).as_millis()
    );
    tokio::time::sleep(ms(1500)).await;

    let restarted = Instant::now();
    admin_exec(&cluster, VICTIM_NODE, "START SLAVE").await;
    // recovery_checks (3) good checks at 200 ms.
    let up = wait_state(&proxy, VICTIM, "up", secs(3)).await;
    let back = load.wait_seen(victim_id, up, secs(2)).await;
    let samples = load.stop().await;

    let fails = failures(&samples, t0);
    assert!(fails.is_empty(), "reads failed:\n{}", fails.join("\n"));
    let during = answered_by(&samples, victim_id, broken, restarted);
    assert!(
        during.is_empty(),
        "{} reads went to the replica while its replication was stopped, first at +{} ms",
        during.len(),
        signed_ms(during[0].started, t0)
    );
    let served_meanwhile = answered_by(&samples, other_id, broken, restarted).len();
    assert!(
        served_meanwhile >= 20,
        "only {served_meanwhile} reads while broken"
    );
    let back = back.unwrap_or_else(|| {
        panic!(
            "no read reached the replica within 2 s of it being up again\n--- proxy log ---\n{}",
            proxy.log_tail(20)
        )
    });
    eprintln!(
        "up {} ms after START SLAVE, first read there {} ms after",
        (up - restarted).as_millis(),
        (back - restarted).as_millis()
    );
}

/// Writes on the primary every 50 ms until stopped, so that a delayed replica falls behind.
struct Writer {
    stop: Arc<AtomicBool>,
    task: tokio::task::JoinHandle<Result<u64, String>>,
}

impl Writer {
    async fn start(cluster: &rwproxy_testkit::ClusterInfo) -> Writer {
        let mut conn = cluster.app_conn(0).await.unwrap();
        conn.query_drop(
            "CREATE TABLE fo_ticks (id INT AUTO_INCREMENT PRIMARY KEY, at DATETIME(6))",
        )
        .await
        .unwrap();
        let stop = Arc::new(AtomicBool::new(false));
        let flag = Arc::clone(&stop);
        let task = tokio::spawn(async move {
            let mut n = 0;
            while !flag.load(Ordering::SeqCst) {
                conn.query_drop("INSERT INTO fo_ticks (at) VALUES (NOW(6))")
                    .await
                    .map_err(|e| e.to_string())?;
                n += 1;
                tokio::time::sleep(ms(50)).await;
            }
            Ok(n)
        });
        Writer { stop, task }
    }

    async fn stop(self) -> u64 {
        self.stop.store(true, Ordering::SeqCst);
        match self.task.await {
            Ok(Ok(n)) => n,
            Ok(Err(e)) => panic!("a write on the primary failed: {e}"),
            Err(e) => panic!("the writer task failed: {e}"),
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_delayed_replica_gets_no_reads_while_it_lags() {
    let _serial = serial().await;
    let cluster = throwaway("fo-delay", 3485);
    let proxy = start_proxy(&fast_yaml(&cluster, "  max_replication_lag: 1s\n")).await;
    let victim_id = node_server_id(&cluster, VICTIM_NODE).await;
    let other_id = node_server_id(&cluster, 1).await;

    let writer = Writer::start(&cluster).await;
    let load = ReadLoad::start(proxy.port, &cluster.app, 3);
    wait_both_replicas_serve(&load, [other_id, victim_id], &proxy).await;

    let t0 = Instant::now();
    admin_exec(
        &cluster,
        VICTIM_NODE,
        "STOP SLAVE; CHANGE MASTER TO MASTER_DELAY = 5; START SLAVE",
    )
    .await;
    // The lag passes 1 s about a second after the first delayed write.
    let lagging = wait_state(&proxy, VICTIM, "lagging", secs(4)).await;
    eprintln!(
        "lagging reported {} ms after MASTER_DELAY=5",
        (lagging - t0).as_millis()
    );
    tokio::time::sleep(ms(1500)).await;
    let lag_doc = backends(&proxy).await.unwrap();
    let lag = backend_of(&lag_doc, VICTIM)
        .and_then(|b| b.get("lag_seconds"))
        .and_then(|v| v.as_f64());
    assert!(
        matches!(lag, Some(l) if l > 1.0),
        "the lag shown for {VICTIM} should be over 1 s: {lag_doc}"
    );

    let fixed = Instant::now();
    admin_exec(
        &cluster,
        VICTIM_NODE,
        "STOP SLAVE; CHANGE MASTER TO MASTER_DELAY = 0; START SLAVE",
    )
    .await;
    let up = wait_state(&proxy, VICTIM, "up", secs(4)).await;
    let back = load.wait_seen(victim_id, up, secs(2)).await;
    let samples = load.stop().await;
    let writes = writer.stop().await;

    let fails = failures(&samples, t0);
    assert!(fails.is_empty(), "reads failed:\n{}", fails.join("\n"));
    let during = answered_by(&samples, victim_id, lagging, fixed);
    assert!(
        during.is_empty(),
        "{} reads went to the replica while it lagged, first at +{} ms",
        during.len(),
        signed_ms(during[0].started, t0)
    );
    assert!(
        answered_by(&samples, other_id, lagging, fixed).len() >= 20,
        "too few reads while lagging"
    );
    assert!(
        back.is_some(),
        "no read reached the replica within 2 s of it being up again\n--- proxy log ---\n{}",
        proxy.log_tail(20)
    );
    eprintln!(
        "{writes} writes; up {} ms after MASTER_DELAY=0",
        (up - fixed).as_millis()
    );
    // It has really caught up: every write is there.
    cluster.wait_replicas_caught_up(secs(5)).await.unwrap();
}
