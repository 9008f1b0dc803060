//! What the monitor knows about one backend at one moment.

use std::fmt;
use std::time::{Duration, SystemTime};

use crate::gtid::GtidPosition;
use crate::settings::BackendSpec;

/// Health state of a backend.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum BackendState {
    /// Not checked successfully yet.
    Starting,
    /// Usable (as primary for writes, or as replica for reads).
    Up,
    /// Failing checks, or reported broken by the data path.
    Down,
    /// A replica too far behind, or with unknown lag.
    Lagging,
    /// A replica whose replication threads are stopped or not configured.
    ReplicationBroken,
}

impl BackendState {
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Starting => "starting",
            Self::Up => "up",
            Self::Down => "down",
            Self::Lagging => "lagging",
            Self::ReplicationBroken => "replication_broken",
        }
    }
}

impl fmt::Display for BackendState {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// Replication role of a backend.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Role {
    Primary,
    Replica,
    /// Not known: not checked yet, down, or one of several writable servers.
    Unknown,
}

impl Role {
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Primary => "primary",
            Self::Replica => "replica",
            Self::Unknown => "unknown",
        }
    }
}

impl fmt::Display for Role {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// Where a replica's lag figure came from.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum LagSource {
    /// Age of the replicated heartbeat row (sub-second precision).
    Heartbeat,
    /// `Seconds_Behind_Master` from the replication status (whole seconds).
    SecondsBehindMaster,
    /// No lag figure (primary, or lag unknown).
    None,
}

impl LagSource {
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Heartbeat => "heartbeat",
            Self::SecondsBehindMaster => "seconds_behind_master",
            Self::None => "none",
        }
    }
}

/// Server family, detected from `@@version`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum ServerFlavor {
    MariaDb,
    MySql,
}

impl ServerFlavor {
    /// MariaDB puts its name in the version string; anything else is MySQL.
    pub fn from_version(version: &str) -> Self {
        if version.to_ascii_lowercase().contains("mariadb") {
            Self::MariaDb
        } else {
            Self::MySql
        }
    }

    pub fn as_str(self) -> &'static str {
        match self {
            Self::MariaDb => "mariadb",
            Self::MySql => "mysql",
        }
    }
}

/// Everything known about one backend.
#[derive(Debug, Clone, PartialEq)]
pub struct BackendStatus {
    pub name: String,
    pub address: String,
    pub pinned_primary: bool,
    pub state: BackendState,
    pub role: Role,
    /// Last seen `read_only` (MySQL: also `super_read_only`/`innodb_read_only`).
    /// True until a check shows otherwise.
    pub read_only: bool,
    pub lag: Option<Duration>,
    pub lag_source: LagSource,
    /// MariaDB `@@gtid_current_pos`, MySQL `@@gtid_executed`.
    pub gtid_current_pos: Option<GtidPosition>,
    /// MariaDB `@@gtid_slave_pos` (None on MySQL).
    pub gtid_slave_pos: Option<GtidPosition>,
    pub server_id: Option<u32>,
    pub version: Option<String>,
    pub flavor: Option<ServerFlavor>,
    /// Wall time of the last check, successful or not.
    pub last_check_latency: Option<Duration>,
    pub last_check_at: Option<SystemTime>,
    /// Checks run since the monitor started watching this backend.
    pub checks: u64,
    /// Why the backend is in its state.
    pub reason: String,
    /// When it entered its state.
    pub since: SystemTime,
    pub consecutive_failures: u32,
    /// Consecutive successful checks that were also healthy (for a replica:
    /// replication running and lag under the threshold).
    pub consecutive_successes: u32,
    /// Configured Galera writer priority (lower wins).
    pub priority: u32,
    /// What the last check saw of this Galera node; `None` for other servers.
    pub galera: Option<crate::galera::GaleraStatus>,
    /// Galera: the rule that made this node the writer (`None` unless it is the writer).
    pub writer_rule: Option<crate::galera::WriterRule>,
}

impl BackendStatus {
    /// A backend nobody has checked yet.
    pub fn starting(spec: &BackendSpec, now: SystemTime) -> Self {
        Self {
            name: spec.name.clone(),
            address: spec.address.clone(),
            pinned_primary: spec.pinned_primary,
            state: BackendState::Starting,
            role: if spec.pinned_primary {
                Role::Primary
            } else {
                Role::Unknown
            },
            read_only: true,
            lag: None,
            lag_source: LagSource::None,
            gtid_current_pos: None,
            gtid_slave_pos: None,
            server_id: None,
            version: None,
            flavor: None,
            last_check_latency: None,
            last_check_at: None,
            checks: 0,
            reason: "not checked yet".to_string(),
            since: now,
            consecutive_failures: 0,
            consecutive_successes: 0,
            priority: spec.priority,
            galera: None,
            writer_rule: None,
        }
    }

    /// True when it may take reads as a replica.
    pub fn is_readable_replica(&self) -> bool {
        self.role == Role::Replica && self.state == BackendState::Up
    }

    /// True when it is up (whatever its role).
    pub fn is_up(&self) -> bool {
        self.state == BackendState::Up
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn flavor_from_version_string() {
        assert_eq!(
            ServerFlavor::from_version("10.11.6-MariaDB-0+deb12u1-log"),
            ServerFlavor::MariaDb
        );
        assert_eq!(ServerFlavor::from_version("8.0.36"), ServerFlavor::MySql);
        assert_eq!(ServerFlavor::from_version(""), ServerFlavor::MySql);
    }

    #[test]
    fn starting_status_is_not_usable() {
        let spec = BackendSpec::new("db2", "127.0.0.1:3317");
        let s = BackendStatus::starting(&spec, SystemTime::UNIX_EPOCH);
        assert_eq!(s.state, BackendState::Starting);
        assert_eq!(s.role, Role::Unknown);
        assert!(s.read_only);
        assert!(!s.is_readable_replica());
        assert!(!s.is_up());
        let pinned = BackendStatus::starting(&spec.clone().pinned(), SystemTime::UNIX_EPOCH);
        assert_eq!(pinned.role, Role::Primary);
    }

    #[test]
    fn names_are_snake_case() {
        assert_eq!(
            BackendState::ReplicationBroken.to_string(),
            "replication_broken"
        );
        assert_eq!(Role::Primary.to_string(), "primary");
        assert_eq!(
            LagSource::SecondsBehindMaster.as_str(),
            "seconds_behind_master"
        );
        assert_eq!(ServerFlavor::MariaDb.as_str(), "mariadb");
    }
}
