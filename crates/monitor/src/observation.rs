//! The facts one successful check gathers, and the pure parsing of the
//! server's answers (variables and replication status rows) into them.

use std::time::Duration;

use crate::gtid::GtidPosition;
use crate::status::ServerFlavor;

/// What one successful check saw on a backend.
#[derive(Debug, Clone, PartialEq)]
pub struct Observation {
    pub flavor: ServerFlavor,
    pub version: String,
    pub server_id: u32,
    pub read_only: bool,
    pub gtid_current_pos: Option<GtidPosition>,
    pub gtid_slave_pos: Option<GtidPosition>,
    /// One entry per replication channel; empty when the server is not
    /// configured as a replica.
    pub channels: Vec<ReplicationChannel>,
    /// Why the replication status could not be read (e.g. a missing grant);
    /// `channels` is then empty and means nothing.
    pub replication_error: Option<String>,
    /// Age of the replicated heartbeat row, when the table was readable.
    pub heartbeat_lag: Option<Duration>,
    /// Wall time of the check.
    pub latency: Duration,
    /// The node's `wsrep_*` state, when it is a Galera node (and the topology mode looks).
    pub galera: Option<crate::galera::GaleraStatus>,
}

/// One row of `SHOW ALL SLAVES STATUS` / `SHOW REPLICA STATUS`.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ReplicationChannel {
    /// `Connection_name` (MariaDB) or `Channel_Name` (MySQL); empty for the
    /// default channel.
    pub name: String,
    /// `Yes`, `No` or `Connecting`.
    pub io_running: String,
    /// `Yes` or `No`.
    pub sql_running: String,
    /// NULL (unknown) while a thread is stopped or reconnecting.
    pub seconds_behind: Option<u64>,
    pub last_io_error: String,
    pub last_sql_error: String,
}

impl ReplicationChannel {
    /// Builds a channel from a status row given as (column, value) pairs.
    /// Column names are matched case-insensitively and both the old
    /// (`Slave_*`, `*_Master`) and new (`Replica_*`, `*_Source`) spellings
    /// are understood. Missing columns read as empty / NULL.
    pub fn from_columns(columns: &[(String, Option<String>)]) -> Self {
        let get = |names: &[&str]| -> Option<String> {
            columns
                .iter()
                .find(|(col, _)| names.iter().any(|n| col.eq_ignore_ascii_case(n)))
                .and_then(|(_, value)| value.clone())
        };
        let text = |names: &[&str]| get(names).unwrap_or_default();
        Self {
            name: text(&["Connection_name", "Channel_Name"]),
            io_running: text(&["Slave_IO_Running", "Replica_IO_Running"]),
            sql_running: text(&["Slave_SQL_Running", "Replica_SQL_Running"]),
            seconds_behind: get(&["Seconds_Behind_Master", "Seconds_Behind_Source"])
                .and_then(|v| v.trim().parse::<u64>().ok()),
            last_io_error: text(&["Last_IO_Error"]),
            last_sql_error: text(&["Last_SQL_Error"]),
        }
    }

    pub fn io_running(&self) -> bool {
        self.io_running.eq_ignore_ascii_case("yes")
    }

    pub fn sql_running(&self) -> bool {
        self.sql_running.eq_ignore_ascii_case("yes")
    }

    /// How the channel is named in reasons: `` (default) or ` 'name'`.
    pub fn label(&self) -> String {
        if self.name.is_empty() {
            String::new()
        } else {
            format!(" (channel '{}')", self.name)
        }
    }
}

/// Reads a boolean server variable as the text protocol returns it.
pub fn parse_bool_var(value: Option<&str>) -> Option<bool> {
    match value?.trim().to_ascii_uppercase().as_str() {
        "1" | "ON" | "TRUE" | "YES" => Some(true),
        "0" | "OFF" | "FALSE" | "NO" => Some(false),
        _ => None,
    }
}

/// Heartbeat age from `TIMESTAMPDIFF(MICROSECOND, ...)`; a negative value
/// (clock skew between servers) counts as no lag.
pub fn heartbeat_lag_from_micros(value: Option<&str>) -> Option<Duration> {
    let micros = value?.trim().parse::<i64>().ok()?;
    Some(Duration::from_micros(micros.max(0).unsigned_abs()))
}

/// Parses a GTID variable; an unparsable value is treated as unknown.
pub fn parse_gtid_var(value: Option<&str>) -> Option<GtidPosition> {
    GtidPosition::parse(value?).ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn row(pairs: &[(&str, Option<&str>)]) -> Vec<(String, Option<String>)> {
        pairs
            .iter()
            .map(|(k, v)| (k.to_string(), v.map(str::to_string)))
            .collect()
    }

    #[test]
    fn mariadb_status_row() {
        let ch = ReplicationChannel::from_columns(&row(&[
            ("Connection_name", Some("")),
            ("Slave_IO_Running", Some("Yes")),
            ("Slave_SQL_Running", Some("No")),
            ("Last_IO_Error", Some("")),
            ("Last_SQL_Error", Some("Duplicate entry '1'")),
            ("Seconds_Behind_Master", None),
        ]));
        assert!(ch.io_running());
        assert!(!ch.sql_running());
        assert_eq!(ch.seconds_behind, None);
        assert_eq!(ch.last_sql_error, "Duplicate entry '1'");
        assert_eq!(ch.label(), "");
    }

    #[test]
    fn mysql8_status_row_uses_new_names() {
        let ch = ReplicationChannel::from_columns(&row(&[
            ("Channel_Name", Some("east")),
            ("Replica_IO_Running", Some("Connecting")),
            ("Replica_SQL_Running", Some("Yes")),
            ("Seconds_Behind_Source", Some("12")),
            ("Last_IO_Error", Some("error connecting to master")),
        ]));
        assert!(!ch.io_running());
        assert!(ch.sql_running());
        assert_eq!(ch.seconds_behind, Some(12));
        assert_eq!(ch.label(), " (channel 'east')");
    }

    #[test]
    fn missing_or_junk_columns_do_not_panic() {
        let ch = ReplicationChannel::from_columns(&row(&[("Seconds_Behind_Master", Some("x"))]));
        assert_eq!(ch, ReplicationChannel::default());
    }

    #[test]
    fn bool_vars() {
        assert_eq!(parse_bool_var(Some("1")), Some(true));
        assert_eq!(parse_bool_var(Some("OFF")), Some(false));
        assert_eq!(parse_bool_var(Some("on")), Some(true));
        assert_eq!(parse_bool_var(Some("2")), None);
        assert_eq!(parse_bool_var(None), None);
    }

    #[test]
    fn heartbeat_micros() {
        assert_eq!(
            heartbeat_lag_from_micros(Some("1500000")),
            Some(Duration::from_millis(1500))
        );
        assert_eq!(heartbeat_lag_from_micros(Some("-20")), Some(Duration::ZERO));
        assert_eq!(heartbeat_lag_from_micros(Some("abc")), None);
        assert_eq!(heartbeat_lag_from_micros(None), None);
    }

    #[test]
    fn gtid_vars() {
        assert_eq!(
            parse_gtid_var(Some("0-1-5")).map(|g| g.to_string()),
            Some("0-1-5".to_string())
        );
        assert_eq!(parse_gtid_var(Some("garbage!")), None);
        assert_eq!(parse_gtid_var(None), None);
    }
}
