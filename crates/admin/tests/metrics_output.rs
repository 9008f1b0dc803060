//! The rendered metrics move when the recording methods are called, and per-backend series
//! follow `set_backends`.

mod common;

use std::time::Duration;

use common::{backend, sample, series_lines};
use rwproxy_admin::{
    BackendRole, BackendState, CausalOutcome, DestRole, FailureKind, LagSource, Metrics, Reason,
    RejectReason,
};

fn render(metrics: &Metrics) -> String {
    metrics.encode().unwrap()
}

#[test]
fn routing_decisions_start_at_zero_and_count() {
    let m = Metrics::new();
    let before = render(&m);
    // All 2 x 13 combinations exist up front.
    assert_eq!(
        series_lines(&before, "rwproxy_routing_decisions_total").len(),
        26
    );
    let series = r#"rwproxy_routing_decisions_total{role="replica",reason="read"}"#;
    assert_eq!(sample(&before, series), Some(0.0));

    m.routing_decision(DestRole::Replica, Reason::Read);
    m.routing_decision(DestRole::Replica, Reason::Read);
    m.routing_decision(DestRole::Primary, Reason::CausalFallback);
    let after = render(&m);
    assert_eq!(sample(&after, series), Some(2.0));
    assert_eq!(
        sample(
            &after,
            r#"rwproxy_routing_decisions_total{role="primary",reason="causal_fallback"}"#
        ),
        Some(1.0)
    );
    assert_eq!(
        sample(
            &after,
            r#"rwproxy_routing_decisions_total{role="primary",reason="read"}"#
        ),
        Some(0.0)
    );
}

#[test]
fn query_duration_histogram_buckets() {
    let m = Metrics::new();
    m.query_duration(DestRole::Replica, 0.003);
    m.observe_query(DestRole::Replica, Duration::from_secs(20));
    m.query_duration(DestRole::Replica, f64::NAN);
    let text = render(&m);
    let bucket = |le: &str| {
        sample(
            &text,
            &format!(r#"rwproxy_query_duration_seconds_bucket{{role="replica",le="{le}"}}"#),
        )
    };
    assert_eq!(bucket("0.0001"), Some(0.0));
    assert_eq!(bucket("0.0025"), Some(0.0));
    assert_eq!(bucket("0.005"), Some(1.0));
    assert_eq!(bucket("10"), Some(1.0));
    assert_eq!(bucket("+Inf"), Some(2.0));
    assert_eq!(
        sample(
            &text,
            r#"rwproxy_query_duration_seconds_count{role="replica"}"#
        ),
        Some(2.0)
    );
    let sum = sample(
        &text,
        r#"rwproxy_query_duration_seconds_sum{role="replica"}"#,
    )
    .unwrap();
    assert!((sum - 20.003).abs() < 1e-9, "{sum}");
    assert_eq!(
        sample(
            &text,
            r#"rwproxy_query_duration_seconds_count{role="primary"}"#
        ),
        Some(0.0)
    );
}

#[test]
fn client_connection_gauge_and_counter() {
    let m = Metrics::new();
    m.client_connected();
    m.client_connected();
    m.client_disconnected();
    {
        let _guard = m.client_connection();
        let text = render(&m);
        assert_eq!(sample(&text, "rwproxy_client_connections"), Some(2.0));
    }
    m.client_rejected(RejectReason::MaxConnections);
    let text = render(&m);
    assert_eq!(sample(&text, "rwproxy_client_connections"), Some(1.0));
    assert_eq!(sample(&text, "rwproxy_client_connections_total"), Some(3.0));
    assert_eq!(
        sample(
            &text,
            r#"rwproxy_client_rejections_total{reason="max_connections"}"#
        ),
        Some(1.0)
    );
    assert_eq!(
        sample(
            &text,
            r#"rwproxy_client_rejections_total{reason="auth_failed"}"#
        ),
        Some(0.0)
    );
}

#[test]
fn error_codes_are_bounded() {
    let m = Metrics::new();
    m.error_sent(1045);
    m.error_sent(1045);
    m.error_sent(9999);
    m.error_sent(1);
    let text = render(&m);
    assert_eq!(
        sample(&text, r#"rwproxy_errors_total{code="1045"}"#),
        Some(2.0)
    );
    assert_eq!(
        sample(&text, r#"rwproxy_errors_total{code="other"}"#),
        Some(2.0)
    );
    assert_eq!(sample(&text, r#"rwproxy_errors_total{code="9999"}"#), None);
    assert_eq!(
        series_lines(&text, "rwproxy_errors_total").len(),
        rwproxy_admin::KNOWN_ERROR_CODES.len() + 1
    );
}

#[test]
fn causal_config_and_conflicts() {
    let m = Metrics::new();
    m.causal_read(CausalOutcome::ReplicaAfterWait);
    m.config_loaded("aaaa");
    m.config_reload_failed();
    m.config_reload_succeeded("bbbb");
    m.write_conflict();
    m.set_writable_backends(2);
    let text = render(&m);
    assert_eq!(
        sample(
            &text,
            r#"rwproxy_causal_reads_total{outcome="replica_after_wait"}"#
        ),
        Some(1.0)
    );
    assert_eq!(
        sample(&text, r#"rwproxy_config_reloads_total{result="success"}"#),
        Some(1.0)
    );
    assert_eq!(
        sample(&text, r#"rwproxy_config_reloads_total{result="failure"}"#),
        Some(1.0)
    );
    assert_eq!(
        series_lines(&text, "rwproxy_config_info"),
        vec![r#"rwproxy_config_info{hash="bbbb"} 1"#]
    );
    let ts = sample(&text, "rwproxy_config_last_reload_timestamp_seconds").unwrap();
    assert!(ts > 1.6e9, "{ts}");
    assert_eq!(sample(&text, "rwproxy_write_conflicts_total"), Some(1.0));
    assert_eq!(sample(&text, "rwproxy_writable_backends"), Some(2.0));
}

#[test]
fn backend_gauges_follow_snapshots() {
    let m = Metrics::new();
    let mut replica = backend("db2", BackendRole::Replica);
    replica.state = BackendState::Lagging;
    replica.lag_seconds = Some(7.5);
    replica.lag_source = LagSource::Heartbeat;
    replica.connections = 4;
    let mut primary = backend("db1", BackendRole::Primary);
    primary.check_latency = None;
    m.set_backends(&[primary.clone(), replica.clone()]);
    m.backend_failure("db2", FailureKind::Timeout);
    m.backend_state_changed("db2");

    let text = render(&m);
    assert_eq!(
        sample(&text, r#"rwproxy_backend_up{backend="db2"}"#),
        Some(1.0)
    );
    assert_eq!(
        sample(
            &text,
            r#"rwproxy_backend_role{backend="db2",role="replica"}"#
        ),
        Some(1.0)
    );
    assert_eq!(
        sample(
            &text,
            r#"rwproxy_backend_role{backend="db2",role="primary"}"#
        ),
        Some(0.0)
    );
    assert_eq!(
        sample(
            &text,
            r#"rwproxy_backend_state{backend="db2",state="lagging"}"#
        ),
        Some(1.0)
    );
    assert_eq!(
        sample(&text, r#"rwproxy_backend_state{backend="db2",state="up"}"#),
        Some(0.0)
    );
    assert_eq!(
        sample(
            &text,
            r#"rwproxy_backend_replication_lag_seconds{backend="db2",source="heartbeat"}"#
        ),
        Some(7.5)
    );
    // Unknown lag (the primary here) is absent, not NaN.
    assert!(!text.contains(r#"rwproxy_backend_replication_lag_seconds{backend="db1""#));
    assert_eq!(
        sample(&text, r#"rwproxy_backend_connections{backend="db2"}"#),
        Some(4.0)
    );
    assert_eq!(
        sample(
            &text,
            r#"rwproxy_backend_check_duration_seconds{backend="db2"}"#
        ),
        Some(0.003)
    );
    assert!(!text.contains(r#"rwproxy_backend_check_duration_seconds{backend="db1"}"#));
    assert_eq!(
        sample(
            &text,
            r#"rwproxy_backend_failures_total{backend="db2",kind="timeout"}"#
        ),
        Some(1.0)
    );
    assert_eq!(
        sample(
            &text,
            r#"rwproxy_backend_failures_total{backend="db1",kind="connect"}"#
        ),
        Some(0.0)
    );
    assert_eq!(
        sample(
            &text,
            r#"rwproxy_backend_state_changes_total{backend="db2"}"#
        ),
        Some(1.0)
    );

    // The lag source switches: the old series goes away.
    replica.lag_source = LagSource::SecondsBehindMaster;
    replica.lag_seconds = Some(3.0);
    m.set_backends(&[primary.clone(), replica.clone()]);
    let text = render(&m);
    assert!(!text.contains(r#"source="heartbeat""#));
    assert_eq!(
        sample(
            &text,
            r#"rwproxy_backend_replication_lag_seconds{backend="db2",source="seconds_behind_master"}"#
        ),
        Some(3.0)
    );
    // Counters survive a refresh.
    assert_eq!(
        sample(
            &text,
            r#"rwproxy_backend_failures_total{backend="db2",kind="timeout"}"#
        ),
        Some(1.0)
    );

    // Lag becomes unknown: no series at all.
    replica.lag_seconds = None;
    m.set_backends(&[primary.clone(), replica]);
    let text = render(&m);
    assert!(series_lines(&text, "rwproxy_backend_replication_lag_seconds").is_empty());
    assert!(!text.contains("# TYPE rwproxy_backend_replication_lag_seconds"));
}

#[test]
fn removed_backends_disappear() {
    let m = Metrics::new();
    let mut replica = backend("db2", BackendRole::Replica);
    replica.lag_seconds = Some(0.2);
    replica.lag_source = LagSource::Heartbeat;
    m.set_backends(&[backend("db1", BackendRole::Primary), replica]);
    m.backend_failure("db2", FailureKind::Connect);
    assert!(render(&m).contains(r#"backend="db2""#));

    m.set_backends(&[backend("db1", BackendRole::Primary)]);
    let text = render(&m);
    assert!(!text.contains(r#"backend="db2""#), "{text}");
    assert_eq!(
        sample(&text, r#"rwproxy_backend_up{backend="db1"}"#),
        Some(1.0)
    );

    // A failure reported for a backend that is not configured (any more) only lives until
    // the next snapshot.
    m.backend_failure("ghost", FailureKind::Query);
    assert!(render(&m).contains(r#"backend="ghost""#));
    m.set_backends(&[backend("db1", BackendRole::Primary)]);
    assert!(!render(&m).contains(r#"backend="ghost""#));

    m.set_backends(&[]);
    let text = render(&m);
    assert!(!text.contains("backend=\""), "{text}");
}

#[test]
fn backend_names_are_escaped() {
    let m = Metrics::new();
    m.set_backends(&[backend("we\"ird\\name\n", BackendRole::Unknown)]);
    let text = render(&m);
    assert_eq!(
        sample(&text, r#"rwproxy_backend_up{backend="we\"ird\\name\n"}"#),
        Some(1.0)
    );
}

#[test]
fn clones_share_data() {
    let m = Metrics::new();
    let clone = m.clone();
    std::thread::scope(|s| {
        for _ in 0..4 {
            let c = clone.clone();
            s.spawn(move || {
                for _ in 0..1000 {
                    c.routing_decision(DestRole::Primary, Reason::Write);
                }
            });
        }
    });
    assert_eq!(
        sample(
            &render(&m),
            r#"rwproxy_routing_decisions_total{role="primary",reason="write"}"#
        ),
        Some(4000.0)
    );
}
