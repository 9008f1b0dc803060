//! `replica_affinity: session`, the default: a session keeps reading from one replica, new
//! sessions spread over the replicas, a session whose replica stops being usable moves to
//! another, and sessions spread again when it is back.

use std::time::{Duration, Instant};

use rwproxy_testkit::{Cluster, ProxyProcess, StandardConfig};

use crate::support::{
    app_via, assert_spread_over_replicas, backend_state, cluster, read_ids, start_routable, Ids,
};

const SESSIONS: usize = 4;
const READS: usize = 6;

/// Each session reads `READS` times; all of a session's reads must come from one replica.
/// Returns each session's replica.
async fn homes(sessions: &mut [mysql_async::Conn], ids: &Ids, what: &str) -> Vec<u32> {
    let mut homes = Vec::new();
    for (i, conn) in sessions.iter_mut().enumerate() {
        let seen = read_ids(conn, READS).await;
        assert!(
            ids.is_replica(seen[0]) && seen.iter().all(|id| *id == seen[0]),
            "{what}: session {i} read from more than one server, or not from a replica \
             (replicas {:?}): {seen:?}",
            ids.replicas
        );
        homes.push(seen[0]);
    }
    homes
}

async fn wait_state(proxy: &ProxyProcess, backend: &str, state: &str) {
    let deadline = Instant::now() + Duration::from_secs(15);
    loop {
        let now = backend_state(proxy, backend).await;
        if now.as_deref() == Some(state) {
            return;
        }
        assert!(
            Instant::now() < deadline,
            "{backend} did not become {state} (last: {now:?})\n{}",
            proxy.log_tail(20)
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

#[tokio::test]
async fn a_session_reads_from_one_replica_and_sessions_spread() {
    let cluster = cluster();
    let ids = Ids::of(cluster).await;
    let proxy = start_routable(cluster, &StandardConfig::new(cluster)).await;
    let mut sessions = Vec::new();
    for _ in 0..SESSIONS {
        sessions.push(app_via(&proxy).await);
    }
    let homes = homes(&mut sessions, &ids, "steady state").await;
    assert_spread_over_replicas(&homes, &ids, "the replicas of 4 new sessions");
    for conn in sessions {
        conn.disconnect().await.unwrap();
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sessions_move_off_a_broken_replica_and_spread_again_when_it_returns() {
    let cluster = tokio::task::spawn_blocking(|| Cluster::throwaway("route-affinity", 3463))
        .await
        .unwrap()
        .expect("throwaway cluster route-affinity on ports 3463-3465");
    let ids = Ids::of(&cluster).await;
    let proxy = start_routable(&cluster, &StandardConfig::new(&cluster)).await;
    let mut sessions = Vec::new();
    for _ in 0..SESSIONS {
        sessions.push(app_via(&proxy).await);
    }
    let before = homes(&mut sessions, &ids, "before").await;
    assert_spread_over_replicas(&before, &ids, "sessions before the replica broke");

    // db3 (node 2) stops replicating: it may no longer take reads.
    let other = ids.replicas[0];
    cluster.admin_exec(2, "STOP SLAVE").await.unwrap();
    wait_state(&proxy, "db3", "replication_broken").await;
    let during = homes(&mut sessions, &ids, "db3 broken").await;
    assert!(
        during.iter().all(|id| *id == other),
        "with db3 broken every session must read from the other replica ({other}): {during:?}"
    );

    cluster.admin_exec(2, "START SLAVE").await.unwrap();
    wait_state(&proxy, "db3", "up").await;
    let after = homes(&mut sessions, &ids, "db3 back").await;
    assert_spread_over_replicas(&after, &ids, "sessions after db3 came back");
    for conn in sessions {
        conn.disconnect().await.unwrap();
    }
}
