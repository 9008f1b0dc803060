//! Replication threads and lag (throwaway clusters on ports 3426-3431).

mod common;

use std::time::Duration;

use common::{fast_settings, specs, throwaway, wait_healthy, wait_until};
use rwproxy_monitor::{BackendState, GtidPosition, HeartbeatSettings, LagSource, Monitor};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn stop_slave_breaks_replication_and_start_slave_recovers() {
    let cluster = throwaway("mon-repl", 3426);
    let handle = Monitor::spawn(fast_settings(&cluster), specs(&cluster));
    wait_healthy(&handle, 3).await;

    // A write on the primary shows up in every replica's tracked GTID.
    cluster
        .admin_exec(
            0,
            "CREATE TABLE app.mon_t (id INT PRIMARY KEY); INSERT INTO app.mon_t VALUES (1)",
        )
        .await
        .unwrap();
    let written: String = cluster
        .admin_scalar(0, "SELECT @@gtid_binlog_pos")
        .await
        .unwrap()
        .unwrap();
    let written = GtidPosition::parse(&written).unwrap();
    wait_until(
        &handle,
        Duration::from_secs(5),
        "replicas reach the write",
        |t| {
            t.backends.iter().all(|b| {
                b.gtid_current_pos
                    .as_ref()
                    .is_some_and(|pos| pos.contains(&written))
            })
        },
    )
    .await;

    cluster.admin_exec(1, "STOP SLAVE").await.unwrap();
    let (topo, _) = wait_until(&handle, Duration::from_secs(3), "node1 broken", |t| {
        t.get("node1")
            .is_some_and(|b| b.state == BackendState::ReplicationBroken)
    })
    .await;
    let node1 = topo.get("node1").unwrap();
    assert!(
        node1.reason.starts_with("Slave_IO_Running=No"),
        "{}",
        node1.reason
    );
    assert!(!topo.readable_replicas().any(|r| r.name == "node1"));

    // Writes made while stopped are not in node1's position...
    cluster
        .admin_exec(0, "INSERT INTO app.mon_t VALUES (2)")
        .await
        .unwrap();
    let later: String = cluster
        .admin_scalar(0, "SELECT @@gtid_binlog_pos")
        .await
        .unwrap()
        .unwrap();
    let later = GtidPosition::parse(&later).unwrap();
    wait_until(
        &handle,
        Duration::from_secs(3),
        "node2 reaches the second write",
        |t| {
            t.get("node2")
                .and_then(|b| b.gtid_current_pos.as_ref())
                .is_some_and(|p| p.contains(&later))
        },
    )
    .await;
    let node1_pos = handle
        .snapshot()
        .get("node1")
        .unwrap()
        .gtid_current_pos
        .clone();
    assert!(!node1_pos.unwrap().contains(&later));

    // ...until replication restarts; then node1 returns after recovery_checks.
    cluster.admin_exec(1, "START SLAVE").await.unwrap();
    let (topo, _) = wait_until(&handle, Duration::from_secs(5), "node1 back up", |t| {
        t.get("node1").is_some_and(|b| b.state == BackendState::Up)
    })
    .await;
    let node1 = topo.get("node1").unwrap();
    assert!(
        node1.reason.starts_with("recovered after 3 good checks"),
        "{}",
        node1.reason
    );
    assert!(node1.gtid_current_pos.as_ref().unwrap().contains(&later));
    handle.shutdown();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn heartbeat_measures_sub_second_lag_and_catches_a_delayed_replica() {
    let cluster = throwaway("mon-hb", 3429);
    let mut settings = fast_settings(&cluster);
    settings.max_replication_lag = Duration::from_secs(1);
    settings.heartbeat = Some(HeartbeatSettings {
        table: "rwproxy.heartbeat".into(),
        interval: Duration::from_millis(100),
    });
    let handle = Monitor::spawn(settings, specs(&cluster));
    wait_healthy(&handle, 3).await;
    let (topo, _) = wait_until(&handle, Duration::from_secs(5), "heartbeat lag", |t| {
        t.readable_replicas()
            .filter(|r| r.lag_source == LagSource::Heartbeat)
            .count()
            == 2
    })
    .await;
    for replica in topo.readable_replicas() {
        assert!(replica.lag.unwrap() < Duration::from_secs(1), "{replica:?}");
    }
    let age: Option<i64> = cluster
        .admin_scalar(
            0,
            "SELECT TIMESTAMPDIFF(MICROSECOND, ts, NOW(6)) FROM rwproxy.heartbeat WHERE id = 1",
        )
        .await
        .unwrap();
    assert!(age.unwrap() < 1_000_000, "heartbeat row is {age:?}us old");

    // Delay node2's apply by 3s: the heartbeat shows it lagging.
    cluster
        .admin_exec(
            2,
            "STOP SLAVE; CHANGE MASTER TO MASTER_DELAY = 3; START SLAVE",
        )
        .await
        .unwrap();
    let (topo, _) = wait_until(&handle, Duration::from_secs(8), "node2 lagging", |t| {
        t.get("node2")
            .is_some_and(|b| b.state == BackendState::Lagging)
    })
    .await;
    let node2 = topo.get("node2").unwrap();
    assert_eq!(node2.lag_source, LagSource::Heartbeat);
    assert!(node2.reason.contains("> 1s"), "{}", node2.reason);
    assert!(!topo.readable_replicas().any(|r| r.name == "node2"));
    assert_eq!(topo.get("node1").unwrap().state, BackendState::Up);

    cluster
        .admin_exec(
            2,
            "STOP SLAVE; CHANGE MASTER TO MASTER_DELAY = 0; START SLAVE",
        )
        .await
        .unwrap();
    wait_until(&handle, Duration::from_secs(10), "node2 back up", |t| {
        t.get("node2").is_some_and(|b| b.state == BackendState::Up)
    })
    .await;
    handle.shutdown();
}
