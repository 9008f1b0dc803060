//! Is a replica fit for reads? Looks at one observation: replication threads,
//! and lag from the heartbeat table or `Seconds_Behind_Master`.

use std::time::Duration;

use crate::human;
use crate::observation::Observation;
use crate::status::LagSource;

/// Verdict on one observation of a replica.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ReplicaHealth {
    /// Threads running, lag known and under the limit.
    Healthy,
    /// Lag over the limit or unknown.
    Lagging(String),
    /// Threads stopped, failing, or replication not configured.
    Broken(String),
}

/// Health plus the lag figure that was used.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ReplicaVerdict {
    pub health: ReplicaHealth,
    pub lag: Option<Duration>,
    pub lag_source: LagSource,
}

/// Judges a replica. `heartbeat_usable` says whether the heartbeat writer
/// has written recently enough for the row's age to mean replication lag;
/// when it has not (or the row cannot be read) `Seconds_Behind_Master` is
/// used instead.
pub fn evaluate_replica(
    obs: &Observation,
    max_replication_lag: Duration,
    heartbeat_usable: bool,
) -> ReplicaVerdict {
    let (lag, lag_source) = measure_lag(obs, heartbeat_usable);
    let health = judge(obs, lag, max_replication_lag);
    ReplicaVerdict {
        health,
        lag,
        lag_source,
    }
}

fn measure_lag(obs: &Observation, heartbeat_usable: bool) -> (Option<Duration>, LagSource) {
    if heartbeat_usable {
        if let Some(lag) = obs.heartbeat_lag {
            return (Some(lag), LagSource::Heartbeat);
        }
    }
    if obs.channels.is_empty() {
        return (None, LagSource::None);
    }
    // Several channels (multi-source): the slowest one counts; any unknown
    // makes the whole lag unknown.
    let mut worst = Some(0u64);
    for channel in &obs.channels {
        worst = match (worst, channel.seconds_behind) {
            (Some(w), Some(s)) => Some(w.max(s)),
            _ => None,
        };
    }
    match worst {
        Some(secs) => (
            Some(Duration::from_secs(secs)),
            LagSource::SecondsBehindMaster,
        ),
        None => (None, LagSource::None),
    }
}

fn judge(obs: &Observation, lag: Option<Duration>, max_lag: Duration) -> ReplicaHealth {
    if let Some(error) = &obs.replication_error {
        return ReplicaHealth::Broken(format!("cannot read replication status: {error}"));
    }
    if obs.channels.is_empty() {
        return ReplicaHealth::Broken("read_only=ON but replication is not configured".into());
    }
    for channel in &obs.channels {
        if !channel.io_running() {
            return ReplicaHealth::Broken(with_error(
                format!(
                    "Slave_IO_Running={}{}",
                    shown(&channel.io_running),
                    channel.label()
                ),
                &channel.last_io_error,
            ));
        }
        if !channel.sql_running() {
            return ReplicaHealth::Broken(with_error(
                format!(
                    "Slave_SQL_Running={}{}",
                    shown(&channel.sql_running),
                    channel.label()
                ),
                &channel.last_sql_error,
            ));
        }
    }
    match lag {
        None => ReplicaHealth::Lagging("lag unknown (Seconds_Behind_Master is NULL)".into()),
        Some(lag) if lag > max_lag => ReplicaHealth::Lagging(format!(
            "lag {:.1}s > {}",
            lag.as_secs_f64(),
            human::duration(max_lag)
        )),
        Some(_) => ReplicaHealth::Healthy,
    }
}

fn shown(value: &str) -> &str {
    if value.is_empty() {
        "?"
    } else {
        value
    }
}

fn with_error(head: String, error: &str) -> String {
    if error.is_empty() {
        head
    } else {
        format!("{head}: {error}")
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::observation::ReplicationChannel;
    use crate::status::ServerFlavor;

    const MAX: Duration = Duration::from_secs(5);

    fn channel(io: &str, sql: &str, behind: Option<u64>) -> ReplicationChannel {
        ReplicationChannel {
            io_running: io.into(),
            sql_running: sql.into(),
            seconds_behind: behind,
            ..ReplicationChannel::default()
        }
    }

    fn obs(channels: Vec<ReplicationChannel>, heartbeat: Option<Duration>) -> Observation {
        Observation {
            flavor: ServerFlavor::MariaDb,
            version: "10.11.6-MariaDB".into(),
            server_id: 2,
            read_only: true,
            gtid_current_pos: None,
            gtid_slave_pos: None,
            channels,
            replication_error: None,
            heartbeat_lag: heartbeat,
            latency: Duration::from_millis(1),
            galera: None,
        }
    }

    #[test]
    fn healthy_replica_uses_seconds_behind_master() {
        let v = evaluate_replica(&obs(vec![channel("Yes", "Yes", Some(1))], None), MAX, false);
        assert_eq!(v.health, ReplicaHealth::Healthy);
        assert_eq!(v.lag, Some(Duration::from_secs(1)));
        assert_eq!(v.lag_source, LagSource::SecondsBehindMaster);
    }

    #[test]
    fn heartbeat_wins_only_when_usable() {
        let o = obs(
            vec![channel("Yes", "Yes", Some(0))],
            Some(Duration::from_millis(7300)),
        );
        let v = evaluate_replica(&o, MAX, true);
        assert_eq!(v.lag_source, LagSource::Heartbeat);
        assert_eq!(v.health, ReplicaHealth::Lagging("lag 7.3s > 5s".into()));
        let v = evaluate_replica(&o, MAX, false);
        assert_eq!(v.lag_source, LagSource::SecondsBehindMaster);
        assert_eq!(v.health, ReplicaHealth::Healthy);
        // Usable heartbeat but unreadable row: falls back.
        let o = obs(vec![channel("Yes", "Yes", Some(2))], None);
        assert_eq!(
            evaluate_replica(&o, MAX, true).lag_source,
            LagSource::SecondsBehindMaster
        );
    }

    #[test]
    fn lag_at_the_limit_is_fine_above_is_not() {
        let at = obs(vec![channel("Yes", "Yes", Some(5))], None);
        assert_eq!(
            evaluate_replica(&at, MAX, false).health,
            ReplicaHealth::Healthy
        );
        let above = obs(vec![channel("Yes", "Yes", Some(6))], None);
        assert_eq!(
            evaluate_replica(&above, MAX, false).health,
            ReplicaHealth::Lagging("lag 6.0s > 5s".into())
        );
    }

    #[test]
    fn unknown_lag_is_lagging() {
        let o = obs(vec![channel("Yes", "Yes", None)], None);
        let v = evaluate_replica(&o, MAX, false);
        assert!(matches!(v.health, ReplicaHealth::Lagging(ref r) if r.contains("unknown")));
        assert_eq!(v.lag, None);
        assert_eq!(v.lag_source, LagSource::None);
    }

    #[test]
    fn stopped_threads_are_broken_with_the_error() {
        let mut ch = channel("Yes", "No", None);
        ch.last_sql_error = "Duplicate entry '7' for key 'PRIMARY'".into();
        let v = evaluate_replica(&obs(vec![ch], None), MAX, false);
        assert_eq!(
            v.health,
            ReplicaHealth::Broken(
                "Slave_SQL_Running=No: Duplicate entry '7' for key 'PRIMARY'".into()
            )
        );
        let v = evaluate_replica(
            &obs(vec![channel("Connecting", "Yes", None)], None),
            MAX,
            false,
        );
        assert_eq!(
            v.health,
            ReplicaHealth::Broken("Slave_IO_Running=Connecting".into())
        );
    }

    #[test]
    fn not_configured_is_broken() {
        let v = evaluate_replica(&obs(vec![], None), MAX, false);
        assert!(matches!(v.health, ReplicaHealth::Broken(ref r) if r.contains("not configured")));
    }

    #[test]
    fn unreadable_replication_status_is_broken_with_the_error() {
        let mut o = obs(vec![], None);
        o.replication_error = Some("Access denied; you need the SLAVE MONITOR privilege".into());
        let v = evaluate_replica(&o, MAX, false);
        assert_eq!(
            v.health,
            ReplicaHealth::Broken(
                "cannot read replication status: Access denied; you need the SLAVE MONITOR privilege"
                    .into()
            )
        );
    }

    #[test]
    fn multi_source_takes_worst_channel() {
        let mut second = channel("Yes", "Yes", Some(9));
        second.name = "east".into();
        let o = obs(vec![channel("Yes", "Yes", Some(1)), second], None);
        let v = evaluate_replica(&o, MAX, false);
        assert_eq!(v.lag, Some(Duration::from_secs(9)));
        let mut stopped = channel("No", "Yes", None);
        stopped.name = "west".into();
        let o = obs(vec![channel("Yes", "Yes", Some(1)), stopped], None);
        assert_eq!(
            evaluate_replica(&o, MAX, false).health,
            ReplicaHealth::Broken("Slave_IO_Running=No (channel 'west')".into())
        );
        let o = obs(
            vec![channel("Yes", "Yes", Some(1)), channel("Yes", "Yes", None)],
            None,
        );
        assert_eq!(evaluate_replica(&o, MAX, false).lag, None);
    }
}
