//! What the monitor is told: credentials, timings, thresholds and the list of
//! backends. The binary maps its YAML config onto these structs.

use std::fmt;
use std::path::PathBuf;
use std::time::Duration;

use crate::heartbeat_table::HeartbeatTable;

/// Monitor tuning. `Default` gives the documented defaults with empty
/// credentials (fill in `user`/`password`).
#[derive(Clone, PartialEq, Eq)]
pub struct MonitorSettings {
    pub user: String,
    pub password: String,
    /// Time between the starts of two checks of one backend (±15 % jitter).
    pub interval: Duration,
    /// Budget for one whole check: connect plus queries.
    pub timeout: Duration,
    /// A replica lagging more than this is not used for reads.
    pub max_replication_lag: Duration,
    /// How long a causal read may wait for a replica to catch up (used by
    /// the router; carried here so it travels with the other monitor knobs).
    pub write_wait_timeout: Duration,
    /// Consecutive good checks before a lagging, broken or down replica is
    /// used again.
    pub recovery_checks: u32,
    /// Consecutive failed checks before a backend is marked down.
    pub failure_threshold: u32,
    /// Optional heartbeat table for sub-second lag measurement.
    pub heartbeat: Option<HeartbeatSettings>,
    /// TLS for every monitor connection (`backend_tls`); `None` for plain TCP.
    pub tls: Option<MonitorTls>,
    /// Replication, Galera, or told apart per node (`wsrep_on`).
    pub topology: crate::galera::TopologyMode,
    /// A Galera node with more write sets waiting to be applied gets no traffic.
    pub galera_max_recv_queue: u64,
}

impl Default for MonitorSettings {
    fn default() -> Self {
        Self {
            user: String::new(),
            password: String::new(),
            interval: Duration::from_millis(500),
            timeout: Duration::from_secs(1),
            max_replication_lag: Duration::from_secs(5),
            write_wait_timeout: Duration::from_secs(2),
            recovery_checks: 3,
            failure_threshold: 2,
            heartbeat: None,
            tls: None,
            topology: crate::galera::TopologyMode::Auto,
            galera_max_recv_queue: 100,
        }
    }
}

// Hand-written so the password never reaches a log line.
impl fmt::Debug for MonitorSettings {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("MonitorSettings")
            .field("user", &self.user)
            .field("password", &"<redacted>")
            .field("interval", &self.interval)
            .field("timeout", &self.timeout)
            .field("max_replication_lag", &self.max_replication_lag)
            .field("write_wait_timeout", &self.write_wait_timeout)
            .field("recovery_checks", &self.recovery_checks)
            .field("failure_threshold", &self.failure_threshold)
            .field("heartbeat", &self.heartbeat)
            .field("tls", &self.tls)
            .field("topology", &self.topology)
            .field("galera_max_recv_queue", &self.galera_max_recv_queue)
            .finish()
    }
}

/// TLS for the monitor's connections, as rwproxy's own backend connections use it
/// (`backend_tls`): the connection fails unless the server offers TLS, and each backend's
/// certificate is checked against that backend's own host.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MonitorTls {
    /// PEM CA bundle the backends' certificates must chain to. No built-in or system roots
    /// are trusted.
    pub ca: Option<PathBuf>,
    /// Verify the certificate (chain and host name); `false` accepts any certificate.
    pub verify: bool,
}

/// Heartbeat writer configuration.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct HeartbeatSettings {
    /// `schema.table` or `table`, e.g. `rwproxy.heartbeat`.
    pub table: String,
    /// How often the primary's heartbeat row is rewritten.
    pub interval: Duration,
}

/// One backend server to watch.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BackendSpec {
    pub name: String,
    /// `host:port`, `[v6addr]:port`.
    pub address: String,
    /// When true this backend is the primary whatever its `read_only` says.
    pub pinned_primary: bool,
    /// Galera writer choice: the usable node with the lowest priority writes.
    pub priority: u32,
}

impl BackendSpec {
    pub fn new(name: impl Into<String>, address: impl Into<String>) -> Self {
        Self {
            name: name.into(),
            address: address.into(),
            pinned_primary: false,
            priority: 0,
        }
    }

    /// Same backend, with this Galera writer priority (lower wins).
    pub fn with_priority(mut self, priority: u32) -> Self {
        self.priority = priority;
        self
    }

    /// Same backend, pinned as the primary.
    pub fn pinned(mut self) -> Self {
        self.pinned_primary = true;
        self
    }
}

/// Problems [`validate`] finds in settings or backends.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum SettingsError {
    #[error("monitor {0} must be greater than zero")]
    ZeroDuration(&'static str),
    #[error("monitor {0} must be at least 1")]
    ZeroCount(&'static str),
    #[error("monitor user is empty")]
    EmptyUser,
    #[error("backend name is empty")]
    EmptyBackendName,
    #[error("backend `{0}` is listed twice")]
    DuplicateBackend(String),
    #[error("backends `{0}` and `{1}` are both pinned as primary")]
    TwoPinnedPrimaries(String, String),
    #[error("backend `{name}`: {problem}")]
    BadAddress { name: String, problem: String },
    #[error(transparent)]
    Heartbeat(#[from] crate::heartbeat_table::HeartbeatTableError),
}

/// Checks settings and backends before [`crate::Monitor::spawn`], which
/// itself never fails (it logs and copes with what [`validate`] would
/// reject: zero counts act as 1, an unusable heartbeat table disables the
/// heartbeat, a bad address makes that backend's checks fail).
pub fn validate(settings: &MonitorSettings, backends: &[BackendSpec]) -> Result<(), SettingsError> {
    if settings.user.is_empty() {
        return Err(SettingsError::EmptyUser);
    }
    for (name, value) in [
        ("interval", settings.interval),
        ("timeout", settings.timeout),
        ("max_replication_lag", settings.max_replication_lag),
    ] {
        if value.is_zero() {
            return Err(SettingsError::ZeroDuration(name));
        }
    }
    if settings.recovery_checks == 0 {
        return Err(SettingsError::ZeroCount("recovery_checks"));
    }
    if settings.failure_threshold == 0 {
        return Err(SettingsError::ZeroCount("failure_threshold"));
    }
    if let Some(hb) = &settings.heartbeat {
        HeartbeatTable::parse(&hb.table)?;
        if hb.interval.is_zero() {
            return Err(SettingsError::ZeroDuration("heartbeat interval"));
        }
    }
    validate_backends(backends)
}

/// The backend-list half of [`validate`] (also what static mode needs).
pub fn validate_backends(backends: &[BackendSpec]) -> Result<(), SettingsError> {
    let mut pinned: Option<&str> = None;
    for (i, spec) in backends.iter().enumerate() {
        if spec.name.is_empty() {
            return Err(SettingsError::EmptyBackendName);
        }
        if backends[..i].iter().any(|other| other.name == spec.name) {
            return Err(SettingsError::DuplicateBackend(spec.name.clone()));
        }
        crate::address::HostPort::parse(&spec.address).map_err(|problem| {
            SettingsError::BadAddress {
                name: spec.name.clone(),
                problem,
            }
        })?;
        if spec.pinned_primary {
            if let Some(first) = pinned {
                return Err(SettingsError::TwoPinnedPrimaries(
                    first.to_string(),
                    spec.name.clone(),
                ));
            }
            pinned = Some(&spec.name);
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn good() -> MonitorSettings {
        MonitorSettings {
            user: "monitor".into(),
            password: "secret-pw".into(),
            ..MonitorSettings::default()
        }
    }

    fn backends() -> Vec<BackendSpec> {
        vec![
            BackendSpec::new("db1", "127.0.0.1:3316").pinned(),
            BackendSpec::new("db2", "[::1]:3317"),
        ]
    }

    #[test]
    fn defaults_match_the_documentation() {
        let s = MonitorSettings::default();
        assert_eq!(s.interval, Duration::from_millis(500));
        assert_eq!(s.timeout, Duration::from_secs(1));
        assert_eq!(s.max_replication_lag, Duration::from_secs(5));
        assert_eq!(s.write_wait_timeout, Duration::from_secs(2));
        assert_eq!(s.recovery_checks, 3);
        assert_eq!(s.failure_threshold, 2);
        assert!(s.heartbeat.is_none());
    }

    #[test]
    fn debug_never_shows_the_password() {
        let text = format!("{:?}", good());
        assert!(!text.contains("secret-pw"));
        assert!(text.contains("monitor"));
    }

    #[test]
    fn validate_accepts_good_settings() {
        validate(&good(), &backends()).unwrap();
    }

    #[test]
    fn validate_rejects_bad_values() {
        let mut s = good();
        s.interval = Duration::ZERO;
        assert_eq!(
            validate(&s, &backends()),
            Err(SettingsError::ZeroDuration("interval"))
        );
        let mut s = good();
        s.failure_threshold = 0;
        assert!(validate(&s, &backends()).is_err());
        let mut s = good();
        s.user.clear();
        assert_eq!(validate(&s, &backends()), Err(SettingsError::EmptyUser));
        let mut s = good();
        s.heartbeat = Some(HeartbeatSettings {
            table: "rw;drop".into(),
            interval: Duration::from_millis(250),
        });
        assert!(matches!(
            validate(&s, &backends()),
            Err(SettingsError::Heartbeat(_))
        ));
    }

    #[test]
    fn validate_rejects_bad_backends() {
        let mut b = backends();
        b.push(BackendSpec::new("db1", "127.0.0.1:1"));
        assert_eq!(
            validate_backends(&b),
            Err(SettingsError::DuplicateBackend("db1".into()))
        );
        let b = vec![
            BackendSpec::new("a", "127.0.0.1:1").pinned(),
            BackendSpec::new("b", "127.0.0.1:2").pinned(),
        ];
        assert!(matches!(
            validate_backends(&b),
            Err(SettingsError::TwoPinnedPrimaries(_, _))
        ));
        let b = vec![BackendSpec::new("a", "127.0.0.1")];
        assert!(matches!(
            validate_backends(&b),
            Err(SettingsError::BadAddress { .. })
        ));
        let b = vec![BackendSpec::new("", "127.0.0.1:1")];
        assert_eq!(validate_backends(&b), Err(SettingsError::EmptyBackendName));
    }
}
