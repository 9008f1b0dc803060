//! Helpers shared by the monitor's integration tests (real MariaDB via the
//! test kit's clusters).

#![allow(dead_code)]

use std::sync::Arc;
use std::time::{Duration, Instant};

use rwproxy_monitor::{BackendSpec, MonitorHandle, MonitorSettings, MonitorTls, Topology};
use rwproxy_testkit::{Cluster, ClusterInfo, ThrowawayCluster};

/// Check interval used by the tests: short, so scenarios finish quickly.
pub const INTERVAL: Duration = Duration::from_millis(200);

/// Fast settings with the cluster's monitor account.
pub fn fast_settings(cluster: &ClusterInfo) -> MonitorSettings {
    MonitorSettings {
        user: cluster.monitor.user.clone(),
        password: cluster.monitor.password.clone(),
        interval: INTERVAL,
        timeout: Duration::from_millis(500),
        max_replication_lag: Duration::from_secs(5),
        write_wait_timeout: Duration::from_secs(2),
        recovery_checks: 3,
        failure_threshold: 2,
        heartbeat: None,
        // A TLS-only cluster (RWPROXY_TEST_TLS_ONLY=1) is monitored over verified TLS.
        tls: cluster.tls_only.then(|| MonitorTls {
            ca: Some(cluster.tls_ca()),
            verify: true,
        }),
        ..MonitorSettings::default()
    }
}

/// `node0`, `node1`, ... at the cluster's ports.
pub fn specs(cluster: &ClusterInfo) -> Vec<BackendSpec> {
    cluster
        .nodes
        .iter()
        .map(|n| BackendSpec::new(format!("node{}", n.index), format!("127.0.0.1:{}", n.port)))
        .collect()
}

/// Polls the snapshot until `pred` holds; panics with the topology as JSON
/// (and `what`) after `timeout`. Returns the snapshot and the time it took.
pub async fn wait_until(
    handle: &MonitorHandle,
    timeout: Duration,
    what: &str,
    pred: impl Fn(&Topology) -> bool,
) -> (Arc<Topology>, Duration) {
    let started = Instant::now();
    loop {
        let topology = handle.snapshot();
        if pred(&topology) {
            return (topology, started.elapsed());
        }
        if started.elapsed() > timeout {
            panic!(
                "timed out after {timeout:?} waiting for {what}; topology:\n{:#}",
                topology.to_json()
            );
        }
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
}

/// Waits for node0 primary and every other node a readable replica.
pub async fn wait_healthy(handle: &MonitorHandle, nodes: usize) -> Arc<Topology> {
    wait_until(handle, Duration::from_secs(10), "a healthy cluster", |t| {
        t.primary().map(|p| p.name.as_str()) == Some("node0")
            && t.readable_replicas().count() == nodes - 1
    })
    .await
    .0
}

/// A throwaway cluster; one retry, because a cluster's first start
/// (`mariadb-install-db`) has been seen to fail spuriously when several
/// run at once.
pub fn throwaway(name: &str, base_port: u16) -> ThrowawayCluster {
    match Cluster::throwaway(name, base_port) {
        Ok(cluster) => cluster,
        Err(first) => {
            eprintln!("cluster {name} failed to start, retrying once: {first}");
            match Cluster::throwaway(name, base_port) {
                Ok(cluster) => cluster,
                Err(second) => panic!("cluster {name} failed to start twice: {second}"),
            }
        }
    }
}
