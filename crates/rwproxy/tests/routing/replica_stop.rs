//! A replica killed while sessions read: the reads carry on elsewhere, without a single error.

use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use mysql_async::prelude::Queryable;
use rwproxy_testkit::signals::process_exists;
use rwproxy_testkit::{Cluster, StandardConfig};

use crate::support::{app_session, backend_state, read_ids, start_routable, Ids};

const READERS: usize = 3;

/// One read of a reader: whether the replica was already dead when it started, and what came
/// back.
type Outcome = (bool, Result<u32, String>);

async fn wait_for(what: &str, timeout: Duration, mut done: impl FnMut() -> bool) {
    let deadline = Instant::now() + timeout;
    while !done() {
        assert!(Instant::now() < deadline, "timed out waiting for {what}");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn killing_a_replica_during_reads_causes_no_errors() {
    let cluster = tokio::task::spawn_blocking(|| Cluster::throwaway("route-stop", 3460))
        .await
        .unwrap()
        .expect("throwaway cluster route-stop on ports 3460-3462");
    let ids = Ids::of(&cluster).await;
    let proxy = start_routable(&cluster, &StandardConfig::new(&cluster)).await;
    let info: rwproxy_testkit::ClusterInfo = (*cluster).clone();

    let stop = Arc::new(AtomicBool::new(false));
    let killed = Arc::new(AtomicBool::new(false));
    let reads = Arc::new(AtomicUsize::new(0));
    let mut readers = Vec::new();
    for _ in 0..READERS {
        let mut conn = app_session(&proxy, &info, Some("app")).await;
        let (stop, killed, reads) = (stop.clone(), killed.clone(), reads.clone());
        readers.push(tokio::spawn(async move {
            let mut outcomes: Vec<Outcome> = Vec::new();
            while !stop.load(Ordering::SeqCst) {
                let after_kill = killed.load(Ordering::SeqCst);
                let result = conn
                    .query_first::<u32, _>("SELECT @@server_id")
                    .await
                    .map_err(|e| e.to_string())
                    .and_then(|id| id.ok_or_else(|| "no row".to_string()));
                outcomes.push((after_kill, result));
                reads.fetch_add(1, Ordering::SeqCst);
            }
            let _ = conn.disconnect().await;
            outcomes
        }));
    }

    wait_for("60 reads before the kill", Duration::from_secs(10), || {
        reads.load(Ordering::SeqCst) >= 60
    })
    .await;
    let victim_pid = cluster.pid_of(2).unwrap();
    cluster.kill9(2).unwrap();
    wait_for(
        "the killed replica to be gone",
        Duration::from_secs(5),
        || !process_exists(victim_pid),
    )
    .await;
    killed.store(true, Ordering::SeqCst);
    let at_kill = reads.load(Ordering::SeqCst);

    // Keep reading until the monitor has noticed, and a while after.
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        let down = backend_state(&proxy, "db3").await.as_deref() == Some("down");
        if down && reads.load(Ordering::SeqCst) >= at_kill + 150 {
            break;
        }
        assert!(
            Instant::now() < deadline,
            "the monitor did not mark db3 down within 10 s\n--- proxy log ---\n{}",
            proxy.log_tail(30)
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    let at_down = reads.load(Ordering::SeqCst);
    wait_for(
        "50 reads after db3 went down",
        Duration::from_secs(10),
        || reads.load(Ordering::SeqCst) >= at_down + 50,
    )
    .await;
    stop.store(true, Ordering::SeqCst);

    let mut outcomes = Vec::new();
    for r in readers {
        outcomes.extend(r.await.unwrap());
    }
    let errors: Vec<&String> = outcomes
        .iter()
        .filter_map(|(_, r)| r.as_ref().err())
        .collect();
    assert!(
        errors.is_empty(),
        "{} of {} reads failed after a replica was killed, first: {:?}\n--- proxy log ---\n{}",
        errors.len(),
        outcomes.len(),
        errors.first(),
        proxy.log_tail(30)
    );
    let survivors = [ids.primary, ids.replicas[0]];
    let after: Vec<u32> = outcomes
        .iter()
        .filter(|(after_kill, _)| *after_kill)
        .filter_map(|(_, r)| r.as_ref().ok().copied())
        .collect();
    assert!(
        after.len() >= 150,
        "only {} reads after the kill",
        after.len()
    );
    assert!(
        after.iter().all(|id| survivors.contains(id)),
        "a read after the kill was answered by the dead replica {}",
        ids.replicas[1]
    );
    assert!(
        after.contains(&ids.replicas[0]),
        "no read went to the surviving replica after the kill"
    );
    let before: Vec<u32> = outcomes
        .iter()
        .filter(|(after_kill, _)| !*after_kill)
        .filter_map(|(_, r)| r.as_ref().ok().copied())
        .collect();
    assert!(
        before.contains(&ids.replicas[1]),
        "the victim answered no read before it was killed: the test proved nothing"
    );

    // A new session reads from the surviving replica only.
    let mut conn = app_session(&proxy, &info, Some("app")).await;
    assert_eq!(read_ids(&mut conn, 6).await, vec![ids.replicas[0]; 6]);
    conn.disconnect().await.unwrap();
    drop(proxy);
    tokio::task::spawn_blocking(move || drop(cluster))
        .await
        .unwrap();
}
