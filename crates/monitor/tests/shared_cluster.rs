//! Read-only checks against the shared cluster: roles, server ids, GTIDs,
//! and failures that do not touch the servers (bad address, bad password).

mod common;

use std::time::Duration;

use common::{fast_settings, specs, wait_healthy, wait_until};
use rwproxy_monitor::{
    BackendSpec, BackendState, GtidPosition, LagSource, Monitor, MonitorTls, PrimaryState, Role,
    ServerFlavor,
};
use rwproxy_testkit::{closed_port, Cluster};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn detects_roles_server_ids_and_gtids() {
    let cluster = Cluster::shared();
    let handle = Monitor::spawn(fast_settings(cluster), specs(cluster));
    let topo = wait_healthy(&handle, cluster.nodes.len()).await;

    assert_eq!(topo.primary, PrimaryState::One("node0".into()));
    let primary = topo.primary().unwrap();
    assert_eq!(primary.role, Role::Primary);
    assert!(!primary.read_only);
    assert_eq!(primary.flavor, Some(ServerFlavor::MariaDb));
    assert_eq!(primary.lag_source, LagSource::None);
    let expected_id = cluster.server_id_of(cluster.nodes[0].port).await.unwrap();
    assert_eq!(primary.server_id, Some(expected_id));
    assert!(matches!(
        primary.gtid_current_pos,
        Some(GtidPosition::MariaDb(ref p)) if !p.is_empty()
    ));

    for node in 1..cluster.nodes.len() {
        let replica = topo.get(&format!("node{node}")).unwrap();
        assert_eq!(replica.role, Role::Replica);
        assert_eq!(replica.state, BackendState::Up);
        assert!(replica.read_only);
        assert_eq!(replica.lag_source, LagSource::SecondsBehindMaster);
        assert!(replica.lag.is_some());
        assert!(replica.gtid_slave_pos.is_some());
        let expected_id = cluster
            .server_id_of(cluster.nodes[node].port)
            .await
            .unwrap();
        assert_eq!(replica.server_id, Some(expected_id));
        assert!(replica.last_check_latency.unwrap() < Duration::from_millis(500));
    }

    let json = topo.to_json();
    assert_eq!(json["primary"]["name"], "node0");
    assert_eq!(json["backends"][1]["role"], "replica");
    assert_eq!(json["backends"][0]["flavor"], "mariadb");
    handle.shutdown();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn wrong_address_is_down_with_connection_refused_others_unaffected() {
    let cluster = Cluster::shared();
    let mut backends = specs(cluster);
    let port = closed_port().unwrap();
    backends.push(BackendSpec::new("ghost", format!("127.0.0.1:{port}")));
    let handle = Monitor::spawn(fast_settings(cluster), backends);
    let (topo, _) = wait_until(&handle, Duration::from_secs(5), "ghost down", |t| {
        t.get("ghost")
            .is_some_and(|b| b.state == BackendState::Down)
    })
    .await;
    let ghost = topo.get("ghost").unwrap();
    assert_eq!(ghost.reason, "connection refused");
    assert_eq!(ghost.role, Role::Unknown);
    assert!(ghost.consecutive_failures >= 2);
    let topo = wait_healthy(&handle, cluster.nodes.len()).await;
    assert_eq!(topo.primary, PrimaryState::One("node0".into()));

    // Hot reload: the same name at a working address is watched afresh.
    let mut backends = specs(cluster);
    backends.push(BackendSpec::new(
        "ghost",
        format!("127.0.0.1:{}", cluster.nodes[1].port),
    ));
    handle.reconfigure(fast_settings(cluster), backends);
    wait_until(&handle, Duration::from_secs(5), "ghost up", |t| {
        t.get("ghost").is_some_and(|b| b.is_readable_replica())
    })
    .await;
    // And removed again.
    handle.reconfigure(fast_settings(cluster), specs(cluster));
    assert!(handle.snapshot().get("ghost").is_none());
    handle.shutdown();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn pinned_primary_wins_over_read_only() {
    let cluster = Cluster::shared();
    let mut backends = specs(cluster);
    backends[1].pinned_primary = true;
    let handle = Monitor::spawn(fast_settings(cluster), backends);
    let topo = handle
        .wait_for_primary(Duration::from_secs(5))
        .await
        .unwrap();
    let primary = topo.primary().unwrap();
    assert_eq!(primary.name, "node1");
    assert!(primary.read_only);
    // The writable node0 is judged as a replica, and it replicates from nobody.
    let (topo, _) = wait_until(&handle, Duration::from_secs(5), "node0 judged", |t| {
        t.get("node0").is_some_and(|b| b.checks > 0)
    })
    .await;
    let node0 = topo.get("node0").unwrap();
    assert_eq!(node0.role, Role::Replica);
    assert_eq!(node0.state, BackendState::ReplicationBroken);
    handle.shutdown();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn wrong_monitor_password_is_down_with_access_denied() {
    let cluster = Cluster::shared();
    let mut settings = fast_settings(cluster);
    settings.password = "definitely-not-the-password".into();
    let handle = Monitor::spawn(settings, specs(cluster));
    let (topo, _) = wait_until(&handle, Duration::from_secs(5), "all down", |t| {
        t.backends.iter().all(|b| b.state == BackendState::Down)
    })
    .await;
    for b in &topo.backends {
        assert!(
            b.reason.contains("Access denied for user 'monitor'"),
            "{}",
            b.reason
        );
        assert!(!b.reason.contains("definitely-not-the-password"));
    }
    assert!(handle
        .wait_for_primary(Duration::from_millis(100))
        .await
        .is_err());

    // Hot reload with the right password: everything comes back.
    handle.reconfigure(fast_settings(cluster), specs(cluster));
    let topo = handle
        .wait_for_primary(Duration::from_secs(5))
        .await
        .unwrap();
    assert_eq!(topo.primary().unwrap().name, "node0");
    handle.shutdown();
}

/// `backend_tls` for the monitor: with the cluster's CA every backend is checked over verified
/// TLS; with a CA that did not sign the servers' certificate (the server certificate itself,
/// which is no CA) every check fails on the certificate, so the monitor does use TLS and does
/// verify.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn tls_checks_verify_the_backends_certificates() {
    let cluster = Cluster::shared();
    let tls_dir = cluster.dir.join("tls");
    let ca = tls_dir.join("ca.pem");
    assert!(ca.exists(), "{} is made by cluster.sh", ca.display());

    let mut settings = fast_settings(cluster);
    settings.tls = Some(MonitorTls {
        ca: Some(tls_dir.join("server-cert.pem")),
        verify: true,
    });
    let handle = Monitor::spawn(settings, specs(cluster));
    let (topo, _) = wait_until(&handle, Duration::from_secs(5), "all down", |t| {
        t.backends.iter().all(|b| b.state == BackendState::Down)
    })
    .await;
    for b in &topo.backends {
        assert!(b.reason.contains("certificate"), "{}: {}", b.name, b.reason);
    }

    // Hot reload with the right CA: every backend comes back, over TLS.
    let mut settings = fast_settings(cluster);
    settings.tls = Some(MonitorTls {
        ca: Some(ca),
        verify: true,
    });
    handle.reconfigure(settings, specs(cluster));
    let topo = wait_healthy(&handle, cluster.nodes.len()).await;
    assert_eq!(topo.primary, PrimaryState::One("node0".into()));
    handle.shutdown();
}
