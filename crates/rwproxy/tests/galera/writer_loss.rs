//! kill -9 of the writer under a write loop: every rwproxy (two processes, the second started
//! later) names a new writer within 2 s, writes go on there, and the old writer gets no write
//! when it comes back until it is Synced — then it takes the writes again, since it wins the
//! choice, in both proxies.

use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use mysql_async::prelude::Queryable;
use rwproxy_testkit::Galera;

use crate::support::*;

/// One write of the loop: when it was issued, and whether it succeeded.
struct Attempt {
    seq: u64,
    issued: Instant,
    ok: bool,
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn killing_the_writer_moves_the_writes_and_it_returns_only_when_synced() {
    let _one = Galera::exclusive().await;
    heal().await;
    let yaml = galera_yaml([None; 3], "");
    let first = start_proxy(&yaml, DB[0], &DB[1..]).await;
    tokio::time::sleep(Duration::from_millis(700)).await;
    let second = start_proxy(&yaml, DB[0], &DB[1..]).await;
    let table = unique_table("writer_loss");
    let mut setup = app_via(&first).await;
    setup
        .query_drop(format!(
            "CREATE TABLE {table} (seq BIGINT PRIMARY KEY, node VARCHAR(16))"
        ))
        .await
        .unwrap();

    // The write loop: each INSERT records the node it ran on; a failed one reconnects.
    let stop = Arc::new(AtomicBool::new(false));
    let next = Arc::new(AtomicU64::new(0));
    let log = Arc::new(Mutex::new(Vec::<Attempt>::new()));
    let writer_task = {
        let (stop, next, log) = (stop.clone(), next.clone(), log.clone());
        let (address, app) = (first.addr(), cluster().app.clone());
        let table = table.clone();
        tokio::spawn(async move {
            let mut conn = None;
            while !stop.load(Ordering::Relaxed) {
                let issued = Instant::now();
                let seq = next.fetch_add(1, Ordering::Relaxed);
                if conn.is_none() {
                    conn = rwproxy_testkit::connect(address.port(), &app, Some("app"))
                        .await
                        .ok();
                }
                let ok = match conn.as_mut() {
                    Some(c) => c
                        .query_drop(format!(
                            "INSERT INTO {table} VALUES ({seq}, @@wsrep_node_name)"
                        ))
                        .await
                        .is_ok(),
                    None => false,
                };
                if !ok {
                    conn = None;
                    tokio::time::sleep(Duration::from_millis(20)).await;
                }
                log.lock().unwrap().push(Attempt { seq, issued, ok });
            }
        })
    };
    tokio::time::sleep(Duration::from_millis(500)).await;

    // The kill happens somewhere between these two instants: the writer's choice is timed
    // from the first, what ran after the kill is judged from the second.
    let killing = Instant::now();
    Galera::kill_node(0).unwrap();
    let killed = Instant::now();
    let mut chosen = Vec::new();
    for proxy in [&first, &second] {
        let at = settle(proxy, DB[1], &[DB[2]], Duration::from_secs(10)).await;
        chosen.push(at.duration_since(killing));
    }
    eprintln!("new writer named after {chosen:?}");
    for after in &chosen {
        assert!(
            *after <= Duration::from_secs(2),
            "new writer after {after:?}"
        );
    }
    // Writes resume on node1.
    let resumed = wait_for(Duration::from_secs(20), "a write after the kill", || {
        let log = log.clone();
        async move {
            log.lock()
                .unwrap()
                .iter()
                .find(|a| a.ok && a.issued > killed)
                .map(|a| a.issued.duration_since(killed))
        }
    })
    .await;
    eprintln!("writes resumed {resumed:?} after the kill");

    // node0 comes back; watch it directly to know when it is Synced.
    let synced_at = Arc::new(Mutex::new(None::<Instant>));
    let watcher = {
        let synced_at = synced_at.clone();
        tokio::spawn(async move {
            loop {
                if local_state(0).await.as_deref() == Some("Synced") {
                    *synced_at.lock().unwrap() = Some(Instant::now());
                    return;
                }
                tokio::time::sleep(Duration::from_millis(25)).await;
            }
        })
    };
    let restarted = Instant::now();
    tokio::task::spawn_blocking(|| Galera::start_node(0))
        .await
        .unwrap()
        .unwrap();
    watcher.await.unwrap();
    let synced = synced_at.lock().unwrap().unwrap();
    eprintln!("node0 Synced {:?} after its restart", synced - restarted);
    for proxy in [&first, &second] {
        settle(proxy, DB[0], &DB[1..], Duration::from_secs(10)).await;
    }
    tokio::time::sleep(Duration::from_millis(500)).await;
    stop.store(true, Ordering::Relaxed);
    writer_task.await.unwrap();

    // Every write that ran on node0 after the kill was issued after node0 was Synced (less
    // the watcher's polling step).
    let mut direct = cluster().app_conn(1).await.unwrap();
    let rows: Vec<(u64, String)> = direct
        .query(format!("SELECT seq, node FROM {table} ORDER BY seq"))
        .await
        .unwrap();
    let log = std::mem::take(&mut *log.lock().unwrap());
    let issued = |seq: u64| log.iter().find(|a| a.seq == seq).map(|a| a.issued);
    let mut on_node0_after = 0;
    for (seq, node) in &rows {
        let Some(at) = issued(*seq) else { continue };
        if at > killed && node == "node0" {
            on_node0_after += 1;
            assert!(
                at + Duration::from_millis(100) >= synced,
                "write {seq} ran on node0 {:?} before it was Synced",
                synced - at
            );
        }
    }
    assert!(on_node0_after > 0, "node0 took no write after it came back");
    let failed = log.iter().filter(|a| !a.ok).count();
    eprintln!(
        "{} writes, {failed} failed (in flight at the kill or while no writer could commit)",
        log.len()
    );
    direct
        .query_drop(format!("DROP TABLE {table}"))
        .await
        .unwrap();
}
