//! The per-backend state machine: how check results and data-path failure
//! reports move a backend between Starting, Up, Down, Lagging and
//! ReplicationBroken. Pure: no I/O, the clock is passed in.
//!
//! Roles (primary / replica) depend on all backends together and are decided
//! afterwards by [`crate::topology::resolve_roles`].

use std::time::{Duration, SystemTime};

use crate::galera::{self, GaleraHealth, GaleraStatus, TopologyMode};
use crate::human;
use crate::observation::Observation;
use crate::replica_health::{evaluate_replica, ReplicaHealth};
use crate::status::{BackendState, BackendStatus, LagSource};

/// The knobs the state machine needs.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct CheckContext {
    /// Failed checks in a row before Down (values below 1 act as 1).
    pub failure_threshold: u32,
    /// Healthy checks in a row before a replica that was not Up returns
    /// (values below 1 act as 1).
    pub recovery_checks: u32,
    pub max_replication_lag: Duration,
    /// Some backend is pinned as primary (then read_only decides nothing).
    pub pinned_primary_exists: bool,
    /// The heartbeat writer is fresh, so heartbeat ages are lag.
    pub heartbeat_usable: bool,
    pub topology: crate::galera::TopologyMode,
    /// A Galera node with more write sets waiting to be applied gets no traffic.
    pub galera_max_recv_queue: u64,
}

/// Moves `status` into `state` with `reason`; `since` changes only when the
/// state does.
fn enter(status: &mut BackendStatus, state: BackendState, reason: String, now: SystemTime) {
    if status.state != state {
        status.state = state;
        status.since = now;
    }
    status.reason = reason;
}

/// Whether this backend is judged as a primary (writable, or pinned) rather
/// than as a replica.
pub fn acts_as_primary(status: &BackendStatus, read_only: bool, ctx: &CheckContext) -> bool {
    if ctx.pinned_primary_exists {
        status.pinned_primary
    } else {
        !read_only
    }
}

/// A check succeeded and saw `obs`.
pub fn apply_success(
    status: &mut BackendStatus,
    obs: &Observation,
    ctx: &CheckContext,
    now: SystemTime,
) {
    status.checks = status.checks.saturating_add(1);
    status.last_check_at = Some(now);
    status.last_check_latency = Some(obs.latency);
    status.read_only = obs.read_only;
    status.server_id = Some(obs.server_id);
    status.version = Some(obs.version.clone());
    status.flavor = Some(obs.flavor);
    status.gtid_current_pos = obs.gtid_current_pos.clone();
    status.gtid_slave_pos = obs.gtid_slave_pos.clone();
    status.consecutive_failures = 0;
    status.galera = obs.galera.clone();

    if let Some(g) = &obs.galera {
        apply_galera(status, g, ctx, now);
        return;
    }
    if ctx.topology == TopologyMode::Galera && !ctx.pinned_primary_exists {
        status.lag = None;
        status.lag_source = LagSource::None;
        status.consecutive_successes = 0;
        let reason = "monitor.topology is galera, but wsrep_on is OFF here: not a Galera node";
        enter(status, BackendState::ReplicationBroken, reason.into(), now);
        return;
    }

    if acts_as_primary(status, obs.read_only, ctx) {
        status.lag = None;
        status.lag_source = LagSource::None;
        status.consecutive_successes = status.consecutive_successes.saturating_add(1);
        let reason = if ctx.pinned_primary_exists {
            format!("pinned primary (read_only={})", on_off(obs.read_only))
        } else {
            "writable (read_only=OFF)".to_string()
        };
        enter(status, BackendState::Up, reason, now);
        return;
    }

    let verdict = evaluate_replica(obs, ctx.max_replication_lag, ctx.heartbeat_usable);
    status.lag = verdict.lag;
    status.lag_source = verdict.lag_source;
    match verdict.health {
        ReplicaHealth::Healthy => {
            let lag_text = lag_text(status.lag);
            let up = format!("replicating, {lag_text}");
            healthy_check(status, ctx, up, &format!(", {lag_text}"), now);
        }
        ReplicaHealth::Lagging(reason) => {
            status.consecutive_successes = 0;
            enter(status, BackendState::Lagging, reason, now);
        }
        ReplicaHealth::Broken(reason) => {
            status.consecutive_successes = 0;
            enter(status, BackendState::ReplicationBroken, reason, now);
        }
    }
}

/// A check of a Galera node: usable (Up, after `recovery_checks` good checks when it was out),
/// behind (Lagging) or outside the primary component / refusing queries (ReplicationBroken).
/// Whether it writes is decided for all nodes together ([`crate::topology::resolve_roles`]).
fn apply_galera(status: &mut BackendStatus, g: &GaleraStatus, ctx: &CheckContext, now: SystemTime) {
    status.lag = None;
    status.lag_source = LagSource::None;
    match galera::evaluate(g, ctx.galera_max_recv_queue) {
        GaleraHealth::Usable => {
            let detail = format!(
                "galera: synced, primary component of {}, receive queue {}",
                g.cluster_size, g.recv_queue
            );
            let more = format!("; {detail}");
            healthy_check(status, ctx, detail, &more, now);
        }
        GaleraHealth::Behind(reason) => {
            status.consecutive_successes = 0;
            enter(status, BackendState::Lagging, reason, now);
        }
        GaleraHealth::Unusable(reason) => {
            status.consecutive_successes = 0;
            enter(status, BackendState::ReplicationBroken, reason, now);
        }
    }
}

/// A healthy check of a backend that serves reads: Up at once when it was Up or Starting
/// (`up_reason`), else after `recovery_checks` healthy checks in a row (`detail` follows the
/// count in the reason).
fn healthy_check(
    status: &mut BackendStatus,
    ctx: &CheckContext,
    up_reason: String,
    detail: &str,
    now: SystemTime,
) {
    status.consecutive_successes = status.consecutive_successes.saturating_add(1);
    let needed = ctx.recovery_checks.max(1);
    match status.state {
        BackendState::Up | BackendState::Starting => {
            enter(status, BackendState::Up, up_reason, now)
        }
        _ if status.consecutive_successes >= needed => {
            let reason = format!("recovered after {needed} good checks{detail}");
            enter(status, BackendState::Up, reason, now);
        }
        _ => {
            status.reason = format!(
                "recovering: {}/{needed} good checks{detail}",
                status.consecutive_successes
            );
        }
    }
}

/// A check failed (error or timeout) after `latency`.
pub fn apply_failure(
    status: &mut BackendStatus,
    reason: &str,
    latency: Duration,
    ctx: &CheckContext,
    now: SystemTime,
) {
    count_failed_check(status, latency, now);
    let threshold = ctx.failure_threshold.max(1);
    if status.state == BackendState::Down || status.consecutive_failures >= threshold {
        enter(status, BackendState::Down, reason.to_string(), now);
    } else {
        status.reason = format!(
            "check failed ({}/{threshold} before down): {reason}",
            status.consecutive_failures
        );
    }
}

/// A check failed right after the data path reported the backend: the
/// report is confirmed, Down at once whatever the failure threshold.
pub fn apply_confirmed_failure(
    status: &mut BackendStatus,
    reason: &str,
    report: &str,
    latency: Duration,
    now: SystemTime,
) {
    count_failed_check(status, latency, now);
    enter(
        status,
        BackendState::Down,
        format!("{reason} (confirms a data-path report: {report})"),
        now,
    );
}

/// The counters every failed check moves.
fn count_failed_check(status: &mut BackendStatus, latency: Duration, now: SystemTime) {
    status.checks = status.checks.saturating_add(1);
    status.last_check_at = Some(now);
    status.last_check_latency = Some(latency);
    status.consecutive_failures = status.consecutive_failures.saturating_add(1);
    status.consecutive_successes = 0;
}

/// Static mode (no checks to confirm with): the data path could not use the
/// backend, Down at once (circuit breaker). Returns true if the state changed.
pub fn apply_reported_failure(status: &mut BackendStatus, reason: &str, now: SystemTime) -> bool {
    if status.state == BackendState::Down {
        return false;
    }
    status.consecutive_successes = 0;
    enter(
        status,
        BackendState::Down,
        format!("reported by data path: {reason}"),
        now,
    );
    true
}

fn lag_text(lag: Option<Duration>) -> String {
    match lag {
        Some(lag) if lag < Duration::from_secs(1) => format!("lag {}", human::duration(lag)),
        Some(lag) => format!("lag {:.1}s", lag.as_secs_f64()),
        None => "lag unknown".to_string(),
    }
}

fn on_off(flag: bool) -> &'static str {
    if flag {
        "ON"
    } else {
        "OFF"
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::observation::ReplicationChannel;
    use crate::settings::BackendSpec;
    use crate::status::ServerFlavor;

    fn t(secs: u64) -> SystemTime {
        SystemTime::UNIX_EPOCH + Duration::from_secs(secs)
    }

    fn ctx() -> CheckContext {
        CheckContext {
            failure_threshold: 2,
            recovery_checks: 3,
            max_replication_lag: Duration::from_secs(5),
            pinned_primary_exists: false,
            heartbeat_usable: false,
            topology: crate::galera::TopologyMode::Auto,
            galera_max_recv_queue: 100,
        }
    }

    fn backend(name: &str) -> BackendStatus {
        BackendStatus::starting(&BackendSpec::new(name, "127.0.0.1:1"), t(0))
    }

    fn primary_obs() -> Observation {
        Observation {
            flavor: ServerFlavor::MariaDb,
            version: "10.11.6-MariaDB".into(),
            server_id: 1,
            read_only: false,
            gtid_current_pos: crate::gtid::GtidPosition::parse("0-1-9").ok(),
            gtid_slave_pos: None,
            channels: vec![],
            replication_error: None,
            heartbeat_lag: None,
            latency: Duration::from_millis(2),
            galera: None,
        }
    }

    fn replica_obs(behind: Option<u64>, sql: &str) -> Observation {
        Observation {
            server_id: 2,
            read_only: true,
            channels: vec![ReplicationChannel {
                io_running: "Yes".into(),
                sql_running: sql.into(),
                seconds_behind: behind,
                ..ReplicationChannel::default()
            }],
            ..primary_obs()
        }
    }

    #[test]
    fn first_good_check_brings_primary_and_replica_up() {
        let mut p = backend("p");
        apply_success(&mut p, &primary_obs(), &ctx(), t(1));
        assert_eq!(p.state, BackendState::Up);
        assert_eq!(p.since, t(1));
        assert!(!p.read_only);
        assert_eq!(p.server_id, Some(1));
        assert_eq!(p.gtid_current_pos.as_ref().unwrap().to_string(), "0-1-9");
        let mut r = backend("r");
        apply_success(&mut r, &replica_obs(Some(0), "Yes"), &ctx(), t(1));
        assert_eq!(r.state, BackendState::Up);
        assert_eq!(r.lag, Some(Duration::ZERO));
        assert_eq!(r.reason, "replicating, lag 0ms");
    }

    #[test]
    fn down_only_after_failure_threshold() {
        let mut b = backend("b");
        apply_success(&mut b, &primary_obs(), &ctx(), t(1));
        apply_failure(&mut b, "connection refused", Duration::ZERO, &ctx(), t(2));
        assert_eq!(b.state, BackendState::Up);
        assert_eq!(b.consecutive_failures, 1);
        assert!(b.reason.contains("1/2"));
        apply_failure(&mut b, "connection refused", Duration::ZERO, &ctx(), t(3));
        assert_eq!(b.state, BackendState::Down);
        assert_eq!(b.reason, "connection refused");
        assert_eq!(b.since, t(3));
        // Further failures keep `since` and update the reason.
        apply_failure(
            &mut b,
            "connect timeout after 1s",
            Duration::ZERO,
            &ctx(),
            t(4),
        );
        assert_eq!(b.since, t(3));
        assert_eq!(b.reason, "connect timeout after 1s");
        assert_eq!(b.checks, 4);
    }

    #[test]
    fn a_success_resets_the_failure_count() {
        let mut b = backend("b");
        apply_success(&mut b, &primary_obs(), &ctx(), t(1));
        apply_failure(&mut b, "x", Duration::ZERO, &ctx(), t(2));
        apply_success(&mut b, &primary_obs(), &ctx(), t(3));
        apply_failure(&mut b, "x", Duration::ZERO, &ctx(), t(4));
        assert_eq!(b.state, BackendState::Up);
    }

    #[test]
    fn threshold_of_one_and_zero_go_down_at_first_failure() {
        for threshold in [0, 1] {
            let c = CheckContext {
                failure_threshold: threshold,
                ..ctx()
            };
            let mut b = backend("b");
            apply_success(&mut b, &primary_obs(), &c, t(1));
            apply_failure(&mut b, "boom", Duration::ZERO, &c, t(2));
            assert_eq!(b.state, BackendState::Down, "threshold {threshold}");
        }
    }

    #[test]
    fn starting_backend_that_never_answers_goes_down() {
        let mut b = backend("b");
        apply_failure(&mut b, "connection refused", Duration::ZERO, &ctx(), t(1));
        assert_eq!(b.state, BackendState::Starting);
        apply_failure(&mut b, "connection refused", Duration::ZERO, &ctx(), t(2));
        assert_eq!(b.state, BackendState::Down);
    }

    #[test]
    fn reported_failure_is_immediate_and_primary_returns_after_one_check() {
        let mut p = backend("p");
        apply_success(&mut p, &primary_obs(), &ctx(), t(1));
        assert!(apply_reported_failure(&mut p, "connection reset", t(2)));
        assert_eq!(p.state, BackendState::Down);
        assert_eq!(p.reason, "reported by data path: connection reset");
        assert!(!apply_reported_failure(&mut p, "again", t(3)));
        assert_eq!(p.since, t(2));
        apply_success(&mut p, &primary_obs(), &ctx(), t(4));
        assert_eq!(p.state, BackendState::Up);
    }

    #[test]
    fn down_replica_needs_recovery_checks() {
        let mut r = backend("r");
        apply_success(&mut r, &replica_obs(Some(0), "Yes"), &ctx(), t(1));
        apply_reported_failure(&mut r, "reset", t(2));
        apply_success(&mut r, &replica_obs(Some(0), "Yes"), &ctx(), t(3));
        assert_eq!(r.state, BackendState::Down);
        assert!(r.reason.contains("recovering: 1/3"), "{}", r.reason);
        apply_success(&mut r, &replica_obs(Some(0), "Yes"), &ctx(), t(4));
        assert_eq!(r.state, BackendState::Down);
        apply_success(&mut r, &replica_obs(Some(0), "Yes"), &ctx(), t(5));
        assert_eq!(r.state, BackendState::Up);
        assert_eq!(r.since, t(5));
    }

    #[test]
    fn lagging_replica_does_not_flap() {
        let mut r = backend("r");
        apply_success(&mut r, &replica_obs(Some(1), "Yes"), &ctx(), t(1));
        apply_success(&mut r, &replica_obs(Some(12), "Yes"), &ctx(), t(2));
        assert_eq!(r.state, BackendState::Lagging);
        assert_eq!(r.reason, "lag 12.0s > 5s");
        // Two good checks, then a bad one: the count starts over.
        apply_success(&mut r, &replica_obs(Some(1), "Yes"), &ctx(), t(3));
        apply_success(&mut r, &replica_obs(Some(1), "Yes"), &ctx(), t(4));
        assert_eq!(r.state, BackendState::Lagging);
        apply_success(&mut r, &replica_obs(Some(6), "Yes"), &ctx(), t(5));
        assert_eq!(r.consecutive_successes, 0);
        for i in 6..8 {
            apply_success(&mut r, &replica_obs(Some(0), "Yes"), &ctx(), t(i));
            assert_eq!(r.state, BackendState::Lagging);
        }
        apply_success(&mut r, &replica_obs(Some(0), "Yes"), &ctx(), t(8));
        assert_eq!(r.state, BackendState::Up);
        assert!(r.reason.starts_with("recovered after 3 good checks"));
    }

    #[test]
    fn stopped_sql_thread_is_replication_broken_then_recovers() {
        let mut r = backend("r");
        apply_success(&mut r, &replica_obs(Some(0), "Yes"), &ctx(), t(1));
        apply_success(&mut r, &replica_obs(None, "No"), &ctx(), t(2));
        assert_eq!(r.state, BackendState::ReplicationBroken);
        assert!(r.reason.starts_with("Slave_SQL_Running=No"));
        for i in 3..5 {
            apply_success(&mut r, &replica_obs(Some(0), "Yes"), &ctx(), t(i));
            assert_eq!(r.state, BackendState::ReplicationBroken);
        }
        apply_success(&mut r, &replica_obs(Some(0), "Yes"), &ctx(), t(5));
        assert_eq!(r.state, BackendState::Up);
    }

    #[test]
    fn replica_made_writable_is_judged_as_primary_at_once() {
        let mut r = backend("r");
        apply_success(&mut r, &replica_obs(None, "No"), &ctx(), t(1));
        assert_eq!(r.state, BackendState::ReplicationBroken);
        let promoted = Observation {
            read_only: false,
            ..replica_obs(None, "No")
        };
        apply_success(&mut r, &promoted, &ctx(), t(2));
        assert_eq!(r.state, BackendState::Up);
        assert_eq!(r.lag, None);
        assert_eq!(r.lag_source, LagSource::None);
    }

    #[test]
    fn with_a_pin_read_only_decides_nothing() {
        let c = CheckContext {
            pinned_primary_exists: true,
            ..ctx()
        };
        let mut pinned =
            BackendStatus::starting(&BackendSpec::new("p", "127.0.0.1:1").pinned(), t(0));
        let read_only_primary = Observation {
            read_only: true,
            ..primary_obs()
        };
        apply_success(&mut pinned, &read_only_primary, &c, t(1));
        assert_eq!(pinned.state, BackendState::Up);
        assert!(pinned.reason.contains("pinned"));
        // A writable, non-pinned server is still judged as a replica.
        let mut other = backend("o");
        apply_success(&mut other, &primary_obs(), &c, t(1));
        assert_eq!(other.state, BackendState::ReplicationBroken);
    }
}
