//! Feeds the rendered metrics, with every family populated, to `promtool check metrics`.
//!
//! promtool comes from the Debian package `prometheus` (`apt-get install -y prometheus`). The
//! test fails (it does not skip) when promtool is missing.

mod common;

use std::io::Write;
use std::process::{Command, Stdio};
use std::time::Duration;

use common::backend;
use rwproxy_admin::{
    BackendRole, BackendState, CausalOutcome, DestRole, FailureKind, LagSource, Metrics, Reason,
    RejectReason, ReplayOutcome,
};

/// Every metric family the proxy exports, as it appears in `# TYPE` lines.
const FAMILIES: [&str; 36] = [
    "rwproxy_routing_decisions_total",
    "rwproxy_query_duration_seconds",
    "rwproxy_client_connections",
    "rwproxy_client_connections_total",
    "rwproxy_client_rejections_total",
    "rwproxy_errors_total",
    "rwproxy_causal_reads_total",
    "rwproxy_config_reloads_total",
    "rwproxy_config_info",
    "rwproxy_config_last_reload_timestamp_seconds",
    "rwproxy_write_conflicts_total",
    "rwproxy_galera_writer_changes_total",
    "rwproxy_session_replay_log_overflows_total",
    "rwproxy_transaction_replays_total",
    "rwproxy_pool_pinned_sessions",
    "rwproxy_pool_borrow_wait_seconds",
    "rwproxy_login_sources_blocked_total",
    "rwproxy_large_packet_budget_exhausted_total",
    "rwproxy_writable_backends",
    "rwproxy_backend_up",
    "rwproxy_backend_role",
    "rwproxy_backend_state",
    "rwproxy_backend_replication_lag_seconds",
    "rwproxy_backend_connections",
    "rwproxy_backend_pool_idle_connections",
    "rwproxy_backend_pool_pinned_connections",
    "rwproxy_backend_pool_events_total",
    "rwproxy_backend_check_duration_seconds",
    "rwproxy_backend_galera_recv_queue",
    "rwproxy_backend_galera_flow_control_paused",
    "rwproxy_backend_state_changes_total",
    "rwproxy_backend_failures_total",
    "rwproxy_query_digest_calls_total",
    "rwproxy_query_digest_errors_total",
    "rwproxy_query_digest_rows_total",
    "rwproxy_query_digest_seconds_total",
];

fn populated_metrics() -> String {
    let m = Metrics::new();
    m.routing_decision(DestRole::Replica, Reason::Read);
    m.routing_decision(DestRole::Primary, Reason::Write);
    m.query_duration(DestRole::Replica, 0.0042);
    m.query_duration(DestRole::Primary, 1.5);
    m.pool_hold_changed(None, Some(rwproxy_admin::HoldReason::Transaction));
    m.pool_wait(std::time::Duration::from_micros(40));
    m.client_connected();
    m.client_rejected(RejectReason::AuthFailed);
    m.error_sent(1045);
    m.error_sent(4242);
    m.causal_read(CausalOutcome::PrimaryFallback);
    m.config_loaded("3f2a9c");
    m.config_reload_failed();
    m.write_conflict();
    m.replay_log_overflow();
    m.transaction_replay(ReplayOutcome::Attempted);
    m.transaction_replay(ReplayOutcome::Mismatch);
    m.set_writable_backends(1);
    let mut replica = backend("db2", BackendRole::Replica);
    replica.lag_seconds = Some(0.35);
    replica.lag_source = LagSource::Heartbeat;
    replica.connections = 3;
    let mut slow = backend("db3", BackendRole::Replica);
    slow.state = BackendState::Lagging;
    slow.lag_seconds = Some(12.0);
    slow.lag_source = LagSource::SecondsBehindMaster;
    slow.check_latency = Some(Duration::from_millis(250));
    let mut node = backend("g1", BackendRole::Replica);
    node.galera_recv_queue = Some(7);
    node.galera_flow_control_paused = Some(0.25);
    m.set_backends(&[backend("db1", BackendRole::Primary), replica, slow, node]);
    m.set_digests(&[rwproxy_admin::DigestView {
        digest: "00ff00ff00ff00ff".into(),
        text: "select * from t where \"id\" = ?".into(),
        user: "app".into(),
        schema: "app".into(),
        role: DestRole::Replica,
        calls: 12,
        errors: 1,
        rows: 30,
        seconds: 0.25,
    }]);
    m.backend_failure("db3", FailureKind::Timeout);
    m.backend_state_changed("db3");
    m.encode().unwrap()
}

#[test]
fn every_family_is_present() {
    let text = populated_metrics();
    let typed: Vec<&str> = text
        .lines()
        .filter_map(|l| l.strip_prefix("# TYPE "))
        .filter_map(|l| l.split(' ').next())
        .collect();
    for family in FAMILIES {
        assert!(
            typed.contains(&family),
            "missing # TYPE for {family}:\n{text}"
        );
    }
    assert_eq!(
        typed.len(),
        FAMILIES.len(),
        "unexpected families: {typed:?}"
    );
    for family in FAMILIES {
        assert!(
            text.lines()
                .any(|l| !l.starts_with('#') && l.starts_with(family)),
            "no sample for {family}"
        );
    }
}

#[test]
fn promtool_check_metrics_is_clean() {
    let text = populated_metrics();
    let child = Command::new("promtool")
        .args(["check", "metrics"])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn();
    let mut child = match child {
        Ok(child) => child,
        Err(e) => panic!(
            "cannot run promtool ({e}): install the Debian package `prometheus` \
             (apt-get install -y prometheus), which provides promtool"
        ),
    };
    child
        .stdin
        .take()
        .unwrap()
        .write_all(text.as_bytes())
        .unwrap();
    let output = child.wait_with_output().unwrap();
    let stdout = String::from_utf8_lossy(&output.stdout);
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(
        output.status.success() && stdout.trim().is_empty() && stderr.trim().is_empty(),
        "promtool check metrics failed ({}):\nstdout: {stdout}\nstderr: {stderr}\ninput:\n{text}",
        output.status
    );
}

#[test]
fn promtool_rejects_bad_input() {
    // Guards against a promtool invocation that would accept anything.
    let mut child = match Command::new("promtool")
        .args(["check", "metrics"])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
    {
        Ok(child) => child,
        Err(e) => panic!(
            "cannot run promtool ({e}): install the Debian package `prometheus` \
             (apt-get install -y prometheus), which provides promtool"
        ),
    };
    child
        .stdin
        .take()
        .unwrap()
        .write_all(b"# TYPE rwproxy_bad counter\nrwproxy_bad 1\n")
        .unwrap();
    let output = child.wait_with_output().unwrap();
    assert!(
        !output.status.success(),
        "promtool accepted a counter without _total"
    );
}
