//! The `monitor` section: health checks, replication lag, heartbeat.

use std::time::Duration;

use crate::model::{HeartbeatConfig, MonitorConfig, MonitorTopology};
use crate::reader::{MapReader, Problems};
use crate::secret::Secret;

const MONITOR_KEYS: &[&str] = &[
    "user",
    "password",
    "interval",
    "timeout",
    "max_replication_lag",
    "write_wait_timeout",
    "recovery_checks",
    "failure_threshold",
    "heartbeat",
    "topology",
    "galera_max_recv_queue",
];
const TOPOLOGIES: &[(&str, MonitorTopology)] = &[
    ("auto", MonitorTopology::Auto),
    ("replication", MonitorTopology::Replication),
    ("galera", MonitorTopology::Galera),
];
const HEARTBEAT_KEYS: &[&str] = &["table", "interval"];

pub(crate) fn build_monitor(root: &MapReader, problems: &mut Problems) -> MonitorConfig {
    let monitor = MapReader::section(
        root.get("monitor"),
        &root.path_of("monitor"),
        MONITOR_KEYS,
        problems,
    );
    let user = monitor.string("user", problems);
    let password = monitor.string("password", problems);
    if user.as_deref() == Some("") {
        problems.add(
            &monitor.path_of("user"),
            monitor.get("user"),
            "must not be empty",
        );
    }
    match (monitor.has("user"), monitor.has("password")) {
        (true, false) => {
            monitor.missing("password", problems, "is required when monitor.user is set")
        }
        (false, true) => {
            monitor.missing("user", problems, "is required when monitor.password is set")
        }
        _ => {}
    }
    if password.as_deref() == Some("") {
        problems.add(
            &monitor.path_of("password"),
            monitor.get("password"),
            "must not be empty",
        );
    }
    let heartbeat = build_heartbeat(&monitor, problems);
    MonitorConfig {
        user: user.filter(|u| !u.is_empty()),
        password: password.filter(|p| !p.is_empty()).map(Secret::new),
        interval: monitor
            .duration("interval", true, problems)
            .unwrap_or(Duration::from_millis(500)),
        timeout: monitor
            .duration("timeout", true, problems)
            .unwrap_or(Duration::from_secs(1)),
        max_replication_lag: monitor
            .duration("max_replication_lag", false, problems)
            .unwrap_or(Duration::from_secs(5)),
        write_wait_timeout: monitor
            .duration("write_wait_timeout", false, problems)
            .unwrap_or(Duration::from_secs(2)),
        recovery_checks: count(&monitor, "recovery_checks", 3, problems),
        failure_threshold: count(&monitor, "failure_threshold", 2, problems),
        heartbeat,
        topology: monitor
            .choice("topology", TOPOLOGIES, problems)
            .unwrap_or(MonitorTopology::Auto),
        galera_max_recv_queue: monitor
            .integer("galera_max_recv_queue", 0, 1_000_000_000, problems)
            .unwrap_or(100),
    }
}

fn count(section: &MapReader, key: &str, default: u32, problems: &mut Problems) -> u32 {
    section
        .integer(key, 1, 1000, problems)
        .and_then(|v| u32::try_from(v).ok())
        .unwrap_or(default)
}

fn build_heartbeat(monitor: &MapReader, problems: &mut Problems) -> Option<HeartbeatConfig> {
    let section = MapReader::new(
        monitor.get("heartbeat"),
        &monitor.path_of("heartbeat"),
        HEARTBEAT_KEYS,
        problems,
    )?;
    if !section.is_present() {
        return None;
    }
    let interval = section
        .duration("interval", true, problems)
        .unwrap_or(Duration::from_millis(250));
    let table = section.required_string("table", problems)?;
    match split_table_name(&table) {
        Some((schema, table)) => Some(HeartbeatConfig {
            schema: schema.to_owned(),
            table: table.to_owned(),
            interval,
        }),
        None => {
            problems.add(
                &section.path_of("table"),
                section.get("table"),
                format!(
                    "invalid table '{table}': expected schema.table using letters, digits, '_' or '$' (like rwproxy.heartbeat)"
                ),
            );
            None
        }
    }
}

/// `schema.table` with plain identifiers on both sides.
fn split_table_name(text: &str) -> Option<(&str, &str)> {
    let (schema, table) = text.trim().split_once('.')?;
    let plain = |s: &str| {
        !s.is_empty()
            && s.len() <= 64
            && s.chars()
                .all(|c| c.is_ascii_alphanumeric() || c == '_' || c == '$')
    };
    (plain(schema) && plain(table)).then_some((schema, table))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn table_names_need_schema_and_plain_identifiers() {
        assert_eq!(
            split_table_name("rwproxy.heartbeat"),
            Some(("rwproxy", "heartbeat"))
        );
        assert_eq!(split_table_name("heartbeat"), None);
        assert_eq!(split_table_name("a.b.c"), None);
        assert_eq!(split_table_name("a.`b`"), None);
        assert_eq!(split_table_name(".b"), None);
    }
}
