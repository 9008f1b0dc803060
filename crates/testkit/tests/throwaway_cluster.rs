//! A private cluster can be broken on purpose and repaired, and is wiped when dropped.
//! Uses cluster name `testkit-throwaway` on ports 3420-3422.

use std::time::{Duration, Instant};

use rwproxy_testkit::signals::process_exists;
use rwproxy_testkit::Cluster;

#[tokio::test]
async fn break_repair_and_wipe_a_throwaway_cluster() {
    let cluster = Cluster::throwaway("testkit-throwaway", 3420).unwrap();
    let dir = cluster.dir.clone();
    assert_eq!(cluster.primary().port, 3420);
    assert!(dir.is_dir());

    // SIGSTOP: the node stops answering; SIGCONT: it answers again.
    cluster.sigstop(1).unwrap();
    let frozen = tokio::time::timeout(Duration::from_secs(2), cluster.server_id_of(3421)).await;
    assert!(frozen.is_err(), "a stopped node answered: {frozen:?}");
    cluster.sigcont(1).unwrap();
    assert_eq!(cluster.server_id_of(3421).await.unwrap(), 2);

    // kill -9 a replica; `up` brings it back and it catches up with new writes.
    let pid = cluster.pid_of(2).unwrap();
    cluster.kill9(2).unwrap();
    let deadline = Instant::now() + Duration::from_secs(5);
    while process_exists(pid) && Instant::now() < deadline {
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    assert!(cluster.status().unwrap().contains("down"));
    cluster
        .admin_exec(0, "CREATE TABLE app.after_kill (id INT PRIMARY KEY); INSERT INTO app.after_kill VALUES (1)")
        .await
        .unwrap();
    cluster.up().unwrap();
    assert_ne!(cluster.pid_of(2).unwrap(), pid);
    cluster
        .wait_replicas_caught_up(Duration::from_secs(10))
        .await
        .unwrap();
    let replicated: Option<i32> = cluster
        .admin_scalar(2, "SELECT id FROM app.after_kill")
        .await
        .unwrap();
    assert_eq!(replicated, Some(1));

    drop(cluster);
    assert!(!dir.exists(), "down --wipe left {}", dir.display());
}
