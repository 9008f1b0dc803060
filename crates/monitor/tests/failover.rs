//! Failovers done outside the proxy (throwaway clusters on ports 3432-3437).

mod common;

use std::time::Duration;

use common::{fast_settings, specs, throwaway, wait_healthy, wait_until, INTERVAL};
use rwproxy_monitor::{BackendState, Monitor, PrimaryState, Role, StateChange};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn two_writable_is_a_conflict_then_promotion_is_followed() {
    let cluster = throwaway("mon-promote", 3432);
    let handle = Monitor::spawn(fast_settings(&cluster), specs(&cluster));
    wait_healthy(&handle, 3).await;

    cluster
        .admin_exec(1, "STOP SLAVE; SET GLOBAL read_only = OFF")
        .await
        .unwrap();
    let (topo, _) = wait_until(&handle, Duration::from_secs(3), "conflict", |t| {
        matches!(t.primary, PrimaryState::Conflict(_))
    })
    .await;
    assert_eq!(
        topo.primary,
        PrimaryState::Conflict(vec!["node0".into(), "node1".into()])
    );
    assert!(topo.primary().is_none());
    assert!(handle
        .wait_for_primary(Duration::from_millis(200))
        .await
        .is_err());
    // node2 still replicates from node0 and still serves reads.
    assert_eq!(
        topo.readable_replicas()
            .map(|r| r.name.as_str())
            .collect::<Vec<_>>(),
        vec!["node2"]
    );

    // The old primary goes read-only: node1 is the primary within two intervals.
    cluster
        .admin_exec(0, "SET GLOBAL read_only = ON")
        .await
        .unwrap();
    let (topo, took) = wait_until(&handle, Duration::from_secs(3), "node1 primary", |t| {
        t.primary().map(|p| p.name.as_str()) == Some("node1")
    })
    .await;
    eprintln!("promotion followed after {took:?}");
    assert!(
        took <= INTERVAL * 2 + Duration::from_millis(600),
        "took {took:?}"
    );
    let node0 = topo.get("node0").unwrap();
    assert_eq!(node0.role, Role::Replica);
    assert_eq!(node0.state, BackendState::ReplicationBroken);
    assert!(node0.reason.contains("not configured"), "{}", node0.reason);
    let topo = handle
        .wait_for_primary(Duration::from_millis(100))
        .await
        .unwrap();
    assert_eq!(topo.primary().unwrap().name, "node1");
    handle.shutdown();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn dead_primary_and_promoted_replica() {
    let cluster = throwaway("mon-dead", 3435);
    let handle = Monitor::spawn(fast_settings(&cluster), specs(&cluster));
    let mut events = handle.subscribe_events();
    wait_healthy(&handle, 3).await;

    cluster.kill9(0).unwrap();
    cluster
        .admin_exec(1, "STOP SLAVE; SET GLOBAL read_only = OFF")
        .await
        .unwrap();
    let (topo, took) = wait_until(&handle, Duration::from_secs(3), "node1 primary", |t| {
        t.primary().map(|p| p.name.as_str()) == Some("node1")
    })
    .await;
    eprintln!("new primary after {took:?}");
    assert_eq!(topo.get("node0").unwrap().state, BackendState::Down);
    // node2 lost its source: its IO thread reconnects in vain.
    wait_until(&handle, Duration::from_secs(5), "node2 broken", |t| {
        t.get("node2")
            .is_some_and(|b| b.state == BackendState::ReplicationBroken)
    })
    .await;

    let mut saw_new_primary = false;
    while let Ok(change) = events.try_recv() {
        if let StateChange::Primary { new, .. } = change {
            saw_new_primary |= new == PrimaryState::One("node1".into());
        }
    }
    assert!(saw_new_primary, "no event for the new primary");
    handle.shutdown();
}
