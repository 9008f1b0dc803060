//! Servers that die, hang or refuse the monitor (throwaway clusters on
//! ports 3420-3428 and 3438-3440).

mod common;

use std::time::Duration;

use common::{fast_settings, specs, throwaway, wait_healthy, wait_until, INTERVAL};
use rwproxy_monitor::{BackendState, Monitor, PrimaryState};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn killed_replica_is_down_within_a_second_and_returns() {
    let cluster = throwaway("mon-kill", 3420);
    let handle = Monitor::spawn(fast_settings(&cluster), specs(&cluster));
    wait_healthy(&handle, 3).await;

    cluster.kill9(2).unwrap();
    let (topo, took) = wait_until(&handle, Duration::from_secs(3), "node2 down", |t| {
        t.get("node2")
            .is_some_and(|b| b.state == BackendState::Down)
    })
    .await;
    eprintln!("kill -9 detected after {took:?}");
    // failure_threshold (2) checks at a 200ms interval: well under a second.
    assert!(took < Duration::from_millis(1500), "took {took:?}");
    let node2 = topo.get("node2").unwrap();
    assert!(
        node2.reason.contains("connection refused") || node2.reason.contains("closed"),
        "{}",
        node2.reason
    );
    assert_eq!(topo.readable_replicas().count(), 1);
    assert_eq!(topo.primary, PrimaryState::One("node0".into()));

    // Restarted: back after recovery_checks good checks.
    tokio::task::block_in_place(|| cluster.up()).unwrap();
    wait_until(&handle, Duration::from_secs(10), "node2 back up", |t| {
        t.get("node2").is_some_and(|b| b.state == BackendState::Up)
    })
    .await;
    handle.shutdown();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn stopped_replica_times_out_without_slowing_the_others() {
    let cluster = throwaway("mon-stop", 3423);
    let settings = fast_settings(&cluster);
    let timeout = settings.timeout;
    let handle = Monitor::spawn(settings, specs(&cluster));
    wait_healthy(&handle, 3).await;

    let checks_before = handle.snapshot().get("node0").unwrap().checks;
    cluster.sigstop(2).unwrap();
    let (topo, took) = wait_until(&handle, Duration::from_secs(5), "node2 down", |t| {
        t.get("node2")
            .is_some_and(|b| b.state == BackendState::Down)
    })
    .await;
    eprintln!("SIGSTOP detected after {took:?}");
    let node2 = topo.get("node2").unwrap();
    assert!(
        node2.reason.contains("timeout after 500ms"),
        "{}",
        node2.reason
    );
    assert!(
        took >= timeout,
        "down before any check could time out: {took:?}"
    );

    // Keep it frozen a while: node0/node1 keep their ~200ms cadence.
    let window = Duration::from_secs(2);
    tokio::time::sleep(window).await;
    let topo = handle.snapshot();
    let checks = topo.get("node0").unwrap().checks - checks_before;
    let elapsed = took + window;
    let expected = elapsed.as_secs_f64() / INTERVAL.as_secs_f64();
    eprintln!("node0 ran {checks} checks in {elapsed:?} (about {expected:.0} expected)");
    assert!(
        checks as f64 >= expected * 0.6,
        "node0 ran only {checks} checks in {elapsed:?}"
    );
    assert_eq!(topo.get("node1").unwrap().state, BackendState::Up);
    assert_eq!(topo.primary, PrimaryState::One("node0".into()));
    assert_eq!(topo.get("node2").unwrap().state, BackendState::Down);

    cluster.sigcont(2).unwrap();
    wait_until(&handle, Duration::from_secs(10), "node2 back up", |t| {
        t.get("node2").is_some_and(|b| b.state == BackendState::Up)
    })
    .await;
    handle.shutdown();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn monitor_refused_or_missing_grants_on_some_nodes() {
    let cluster = throwaway("mon-auth", 3438);
    // Each change is local to its node (sql_log_bin = 0): node2 gets another
    // monitor password; node0 and node1 lose the grant for replication status.
    cluster
        .admin_exec(
            2,
            "SET SESSION sql_log_bin = 0; \
             ALTER USER 'monitor'@'127.0.0.1' IDENTIFIED BY 'changed'; \
             ALTER USER 'monitor'@'localhost' IDENTIFIED BY 'changed'",
        )
        .await
        .unwrap();
    for node in [0, 1] {
        cluster
            .admin_exec(
                node,
                "SET SESSION sql_log_bin = 0; \
                 REVOKE SLAVE MONITOR ON *.* FROM 'monitor'@'127.0.0.1'; \
                 REVOKE SLAVE MONITOR ON *.* FROM 'monitor'@'localhost'",
            )
            .await
            .unwrap();
    }
    let handle = Monitor::spawn(fast_settings(&cluster), specs(&cluster));
    let (topo, _) = wait_until(&handle, Duration::from_secs(5), "settled states", |t| {
        t.get("node2")
            .is_some_and(|b| b.state == BackendState::Down)
            && t.get("node1")
                .is_some_and(|b| b.state == BackendState::ReplicationBroken)
    })
    .await;
    let node2 = topo.get("node2").unwrap();
    assert!(node2.reason.contains("Access denied"), "{}", node2.reason);
    // The primary does not need the replication status to be the primary.
    assert_eq!(topo.primary().map(|p| p.name.as_str()), Some("node0"));
    let node1 = topo.get("node1").unwrap();
    assert!(
        node1.reason.starts_with("cannot read replication status")
            && node1.reason.contains("SLAVE MONITOR"),
        "{}",
        node1.reason
    );
    assert_eq!(topo.readable_replicas().count(), 0);
    handle.shutdown();
}
