//! The typed, validated configuration that the rest of rwproxy reads.
//!
//! Every value here has passed validation: addresses parse, regexes
//! compile, names are unique, durations are within bounds. `Serialize`
//! produces the redacted view (secrets print as `***`).

use std::net::SocketAddr;
use std::path::PathBuf;
use std::time::Duration;

use serde::{Serialize, Serializer};
use sha1::{Digest, Sha1};

use crate::secret::{Secret, REDACTED};
use crate::units::{format_duration, format_size};

/// The whole configuration.
#[derive(Debug, Clone, Serialize)]
pub struct Config {
    /// Where client connections are accepted.
    pub listen: SocketAddr,
    /// Client connections accepted at once; more wait or are refused.
    pub max_client_connections: usize,
    /// Largest packet (query or row) in bytes, at most 1 GiB.
    #[serde(serialize_with = "as_size")]
    pub max_allowed_packet: u64,
    /// Memory all client connections together may hold for the packets they are receiving,
    /// beyond a small allowance per connection (see `rwproxy_transport::budget`).
    #[serde(serialize_with = "as_size")]
    pub large_packet_budget: u64,
    /// Refusing a source address after repeated failed logins.
    pub login_throttle: LoginThrottleConfig,
    /// PROXY protocol headers accepted from load balancers.
    pub proxy_protocol: ProxyProtocolConfig,
    /// The version string clients see in the greeting instead of the primary's own.
    pub server_version: Option<String>,
    /// Users declared in the file.
    pub users: Vec<UserConfig>,
    /// Whether accounts are also read from the backend's `mysql.user`
    /// (through the monitor credentials).
    pub users_from_backend: bool,
    /// How often accounts are re-read from the backend.
    #[serde(serialize_with = "as_duration")]
    pub accounts_refresh_interval: Duration,
    pub backends: Vec<BackendConfig>,
    pub timeouts: TimeoutsConfig,
    /// Client-facing TLS; `None` when `tls.cert`/`tls.key` are not set.
    pub tls: Option<TlsConfig>,
    pub backend_tls: BackendTlsConfig,
    pub monitor: MonitorConfig,
    pub routing: RoutingConfig,
    pub admin: AdminConfig,
    pub log: LogConfig,
    pub shutdown: ShutdownConfig,
    pub stats: StatsConfig,
    pub switchover: SwitchoverConfig,
    pub pool: PoolConfig,
    /// Hex SHA-256 of the raw YAML text (before `${VAR}` substitution), to
    /// tell whether a reload changed anything.
    pub source_hash: String,
}

impl Config {
    /// The running configuration as JSON, with every secret (passwords,
    /// password hashes, tokens) replaced by `"***"`.
    pub fn redacted_json(&self) -> serde_json::Value {
        // Serializing these plain structs into a JSON value cannot fail:
        // all map keys are strings and no custom serializer returns errors.
        serde_json::to_value(self).unwrap_or(serde_json::Value::Null)
    }

    /// The backend called `name`.
    pub fn backend(&self, name: &str) -> Option<&BackendConfig> {
        self.backends.iter().find(|b| b.name == name)
    }

    /// The user called `name` declared in the file.
    pub fn user(&self, name: &str) -> Option<&UserConfig> {
        self.users.iter().find(|u| u.name == name)
    }

    /// The backend pinned with `primary: true`, if any.
    pub fn pinned_primary(&self) -> Option<&BackendConfig> {
        self.backends.iter().find(|b| b.primary == Some(true))
    }
}

/// A client account the proxy authenticates itself.
#[derive(Debug, Clone, Serialize)]
pub struct UserConfig {
    pub name: String,
    #[serde(flatten)]
    pub secret: UserSecret,
    pub auth_plugin: AuthPlugin,
    /// Overrides `routing.consistency` for this user's sessions.
    pub consistency: Option<Consistency>,
    /// `false`: this user's backend connections are never kept for reuse by later sessions.
    pub pooling: bool,
}

/// How a user's password is known.
#[derive(Clone, PartialEq, Eq)]
pub enum UserSecret {
    /// The clear-text password.
    Password(Secret),
    /// `SHA1(SHA1(password))`, as stored in `mysql.user` (`*<40 hex>`).
    PasswordHash([u8; 20]),
}

impl UserSecret {
    /// `SHA1(SHA1(password))`, the value `mysql_native_password`
    /// verification needs, whichever form was configured.
    pub fn native_password_hash(&self) -> [u8; 20] {
        match self {
            UserSecret::Password(password) => {
                let stage1 = Sha1::digest(password.expose().as_bytes());
                Sha1::digest(stage1).into()
            }
            UserSecret::PasswordHash(hash) => *hash,
        }
    }

    /// The clear-text password, when configured in that form.
    pub fn password(&self) -> Option<&Secret> {
        match self {
            UserSecret::Password(password) => Some(password),
            UserSecret::PasswordHash(_) => None,
        }
    }
}

impl std::fmt::Debug for UserSecret {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            UserSecret::Password(_) => f.write_str("Password(***)"),
            UserSecret::PasswordHash(_) => f.write_str("PasswordHash(***)"),
        }
    }
}

impl Serialize for UserSecret {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        use serde::ser::SerializeMap;
        let key = match self {
            UserSecret::Password(_) => "password",
            UserSecret::PasswordHash(_) => "password_hash",
        };
        let mut map = serializer.serialize_map(Some(1))?;
        map.serialize_entry(key, REDACTED)?;
        map.end()
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum AuthPlugin {
    MysqlNativePassword,
    CachingSha2Password,
}

impl AuthPlugin {
    /// The plugin name as MySQL spells it.
    pub fn as_str(self) -> &'static str {
        match self {
            AuthPlugin::MysqlNativePassword => "mysql_native_password",
            AuthPlugin::CachingSha2Password => "caching_sha2_password",
        }
    }
}

/// What a read must see of the session's (or everyone's) earlier writes.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Consistency {
    /// Reads may lag behind writes.
    Eventual,
    /// Reads see this session's own earlier writes.
    Session,
    /// Reads see every write committed before the read started.
    Global,
}

impl Consistency {
    pub fn as_str(self) -> &'static str {
        match self {
            Consistency::Eventual => "eventual",
            Consistency::Session => "session",
            Consistency::Global => "global",
        }
    }
}

/// One database server.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct BackendConfig {
    /// Unique name, used by routing rules, metrics and the admin API.
    pub name: String,
    /// `host:port` as given (IPv6 hosts in brackets), usable with
    /// `TcpStream::connect`.
    pub address: String,
    /// The host part of `address` (no brackets).
    pub host: String,
    pub port: u16,
    /// Share of replica reads under `weighted` balancing (1 to 1000).
    pub weight: u32,
    /// `Some(true)`: always the primary. `Some(false)`: never used as the
    /// primary (reads only). `None`: role learned by the monitor.
    pub primary: Option<bool>,
    /// Galera writer choice: among usable nodes the lowest priority writes (0 to 1000).
    pub priority: u32,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct TimeoutsConfig {
    /// TCP connect to a backend.
    #[serde(serialize_with = "as_duration")]
    pub connect: Duration,
    /// A whole handshake (client-side or backend-side).
    #[serde(serialize_with = "as_duration")]
    pub handshake: Duration,
}

/// Client-facing TLS.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct TlsConfig {
    /// PEM certificate chain.
    pub cert: PathBuf,
    /// PEM private key.
    pub key: PathBuf,
    /// Refuse clients that do not switch to TLS.
    pub require_tls: bool,
}

/// TLS from the proxy to the backends.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct BackendTlsConfig {
    pub enabled: bool,
    /// PEM CA bundle that backend certificates must chain to; required when
    /// `enabled` and `verify`.
    pub ca: Option<PathBuf>,
    /// Verify backend certificates (chain and host name).
    pub verify: bool,
}

/// Health and replication monitoring.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct MonitorConfig {
    /// Monitoring account; when `None`, roles come only from `primary: true`.
    pub user: Option<String>,
    pub password: Option<Secret>,
    #[serde(serialize_with = "as_duration")]
    pub interval: Duration,
    #[serde(serialize_with = "as_duration")]
    pub timeout: Duration,
    /// Replicas lagging more than this stop receiving reads.
    #[serde(serialize_with = "as_duration")]
    pub max_replication_lag: Duration,
    /// How long a read waits for a replica to catch up with a write before
    /// falling back.
    #[serde(serialize_with = "as_duration")]
    pub write_wait_timeout: Duration,
    /// Consecutive good checks before a lagging/down replica returns.
    pub recovery_checks: u32,
    /// Consecutive failed checks before a backend is marked down.
    pub failure_threshold: u32,
    /// Heartbeat-table lag measurement; `None` when off.
    pub heartbeat: Option<HeartbeatConfig>,
    /// Replication, Galera, or told apart per server (`wsrep_on`).
    pub topology: MonitorTopology,
    /// A Galera node with more received write sets not yet applied gets no traffic.
    pub galera_max_recv_queue: u64,
}

/// `monitor.topology`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum MonitorTopology {
    /// A server with `wsrep_on=ON` is a Galera node, any other is judged by its replication.
    Auto,
    /// Primary and replicas; `wsrep_*` is never read.
    Replication,
    /// Every backend is a Galera node; one that is not gets no traffic.
    Galera,
}

impl MonitorConfig {
    /// User and password, when both are configured.
    pub fn credentials(&self) -> Option<(&str, &Secret)> {
        match (&self.user, &self.password) {
            (Some(user), Some(password)) => Some((user.as_str(), password)),
            _ => None,
        }
    }
}

/// Heartbeat table the monitor writes on the primary and reads on replicas.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct HeartbeatConfig {
    pub schema: String,
    pub table: String,
    #[serde(serialize_with = "as_duration")]
    pub interval: Duration,
}

impl HeartbeatConfig {
    /// `` `schema`.`table` `` ready to put in SQL (names are validated to
    /// contain only `[A-Za-z0-9_$]`).
    pub fn qualified_name(&self) -> String {
        format!("`{}`.`{}`", self.schema, self.table)
    }
}

#[derive(Debug, Clone, Serialize)]
pub struct RoutingConfig {
    pub replica_balance: ReplicaBalance,
    /// Whether a session keeps reading from the replica it chose, or chooses per statement.
    pub replica_affinity: ReplicaAffinity,
    /// Send reads to the primary when no replica is usable.
    pub read_fallback_to_primary: bool,
    pub consistency: Consistency,
    /// How long a read may wait for a replica to reach the needed position.
    #[serde(serialize_with = "as_duration")]
    pub causal_read_timeout: Duration,
    /// Checked in order; the first match wins.
    pub rules: Vec<Rule>,
    /// Record open transactions and replay them on a new primary when theirs is lost.
    pub transaction_replay: bool,
    /// Past this many bytes of recorded statements a transaction is no longer replayable.
    pub transaction_replay_max_size: u64,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum ReplicaBalance {
    RoundRobin,
    Weighted,
    LeastConnections,
}

impl ReplicaBalance {
    pub fn as_str(self) -> &'static str {
        match self {
            ReplicaBalance::RoundRobin => "round_robin",
            ReplicaBalance::Weighted => "weighted",
            ReplicaBalance::LeastConnections => "least_connections",
        }
    }
}

/// How long a replica choice holds.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum ReplicaAffinity {
    /// A session reads from the replica it chose first for as long as that replica stays
    /// usable (monotonic reads, one replica connection per session).
    Session,
    /// Every read is balanced on its own.
    Statement,
}

impl ReplicaAffinity {
    pub fn as_str(self) -> &'static str {
        match self {
            ReplicaAffinity::Session => "session",
            ReplicaAffinity::Statement => "statement",
        }
    }
}

/// A routing rule: statements matching `pattern` (and `user` / `schema`
/// when given) go to `route`.
#[derive(Debug, Clone, Serialize)]
pub struct Rule {
    #[serde(rename = "match", serialize_with = "as_pattern")]
    pub pattern: regex::Regex,
    pub user: Option<String>,
    pub schema: Option<String>,
    pub route: RouteTarget,
    pub consistency: Option<Consistency>,
}

impl Rule {
    /// Whether the rule applies to `sql` sent by `user` with default
    /// schema `schema`.
    pub fn matches(&self, sql: &str, user: &str, schema: Option<&str>) -> bool {
        if self.user.as_deref().is_some_and(|u| u != user) {
            return false;
        }
        if let Some(wanted) = self.schema.as_deref() {
            if schema != Some(wanted) {
                return false;
            }
        }
        self.pattern.is_match(sql)
    }
}

#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub enum RouteTarget {
    Primary,
    Replica,
    /// A backend by name (validated to exist).
    Backend(String),
}

impl RouteTarget {
    pub fn as_str(&self) -> &str {
        match self {
            RouteTarget::Primary => "primary",
            RouteTarget::Replica => "replica",
            RouteTarget::Backend(name) => name,
        }
    }
}

impl Serialize for RouteTarget {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.serialize_str(self.as_str())
    }
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct AdminConfig {
    pub listen: SocketAddr,
    /// Bearer token required by the admin API; `None` means no token.
    pub token: Option<Secret>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum LogFormat {
    Text,
    Json,
}

/// The PROXY protocol (v1 and v2) on the client listener.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct ProxyProtocolConfig {
    /// Networks whose connections start with a PROXY header (and must); empty: off.
    #[serde(serialize_with = "as_networks")]
    pub trusted: Vec<ipnet::IpNet>,
}

impl ProxyProtocolConfig {
    /// Whether a connection from `ip` comes from a trusted load balancer.
    pub fn trusts(&self, ip: std::net::IpAddr) -> bool {
        let ip = match ip {
            std::net::IpAddr::V6(v6) => v6.to_ipv4_mapped().map_or(ip, std::net::IpAddr::V4),
            v4 => v4,
        };
        self.trusted.iter().any(|net| net.contains(&ip))
    }
}

fn as_networks<S: Serializer>(nets: &[ipnet::IpNet], serializer: S) -> Result<S::Ok, S::Error> {
    serializer.collect_seq(nets.iter().map(|n| n.to_string()))
}

/// Planned switchovers (`POST /switchover`, `rwproxy switchover`).
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct SwitchoverConfig {
    /// The account that runs the steps; `None`: the monitor's.
    pub user: Option<String>,
    pub password: Option<Secret>,
    /// The account replicas replicate with from the new primary; required for a switchover.
    pub replication_user: Option<String>,
    pub replication_password: Option<Secret>,
    /// A target lagging more than this is refused.
    #[serde(serialize_with = "as_duration")]
    pub max_lag: Duration,
    /// How long open transactions on the old primary may take to finish.
    #[serde(serialize_with = "as_duration")]
    pub drain_timeout: Duration,
    /// How long the target may take to apply the old primary's last writes.
    #[serde(serialize_with = "as_duration")]
    pub catch_up_timeout: Duration,
}

/// Backend connection pooling (`pool:`).
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct PoolConfig {
    /// Whether a finished session's backend connections are kept (reset) for later sessions.
    pub enabled: bool,
    /// Backend connections per backend, held and idle together; `None`: no cap.
    pub max_per_backend: Option<u32>,
    /// How long a session waits for a connection when its backend is at the cap.
    #[serde(serialize_with = "as_duration")]
    pub wait_timeout: Duration,
    /// An idle pooled connection is closed after this long unused.
    #[serde(serialize_with = "as_duration")]
    pub idle_timeout: Duration,
    /// A connection is not reused once this old.
    #[serde(serialize_with = "as_duration")]
    pub max_age: Duration,
}

/// Per-query statistics (`/queries`, `rwproxy_query_digest_*`).
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct StatsConfig {
    /// Whether statements are fingerprinted and counted.
    pub digests: bool,
    /// Entries kept (digest × user × schema × destination); the least used fold into `other`.
    pub max_digests: usize,
    /// Digests exported to Prometheus (the top ones by total time).
    pub export_top: usize,
}

/// Graceful shutdown on SIGTERM or SIGINT.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct ShutdownConfig {
    /// How long rwproxy keeps accepting and serving after the signal, with `/ready` answering
    /// 503, while it is taken out of rotation.
    #[serde(serialize_with = "as_duration")]
    pub delay: Duration,
    /// How long sessions then get to finish their statements and transactions.
    #[serde(serialize_with = "as_duration")]
    pub timeout: Duration,
}

/// Refusing a client address that keeps failing to log in (like the server's
/// `max_connect_errors`, but counting wrong passwords too).
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct LoginThrottleConfig {
    /// Failed logins in a row from one address before it is refused; 0 turns throttling off.
    pub max_failures: u32,
    /// How long a refused address stays refused (and how long failures are remembered).
    #[serde(serialize_with = "as_duration")]
    pub block_for: Duration,
    /// Addresses remembered at once; the oldest are forgotten first.
    pub max_sources: usize,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct LogConfig {
    pub format: LogFormat,
    /// An `EnvFilter` directive string such as `info` or
    /// `info,rwproxy_router=debug`.
    pub level: String,
}

fn as_duration<S: Serializer>(duration: &Duration, serializer: S) -> Result<S::Ok, S::Error> {
    serializer.serialize_str(&format_duration(*duration))
}

fn as_size<S: Serializer>(bytes: &u64, serializer: S) -> Result<S::Ok, S::Error> {
    serializer.serialize_str(&format_size(*bytes))
}

fn as_pattern<S: Serializer>(pattern: &regex::Regex, serializer: S) -> Result<S::Ok, S::Error> {
    serializer.serialize_str(pattern.as_str())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn native_hash_of_password_matches_mysql() {
        // Expected value computed independently (Python hashlib: upper hex of
        // sha1(sha1(b"app_pass"))), confirmed by SELECT PASSWORD('app_pass') on the
        // local MariaDB 10.11: the form stored in mysql.user.
        let secret = UserSecret::Password(Secret::new("app_pass"));
        let hex: String = secret
            .native_password_hash()
            .iter()
            .map(|b| format!("{b:02X}"))
            .collect();
        assert_eq!(hex, "CF9E423361BFD63F869140B8405101994CA3832E");
    }

    #[test]
    fn user_secret_debug_hides_both_forms() {
        assert_eq!(
            format!("{:?}", UserSecret::Password(Secret::new("pw"))),
            "Password(***)"
        );
        assert_eq!(
            format!("{:?}", UserSecret::PasswordHash([0xAB; 20])),
            "PasswordHash(***)"
        );
    }

    #[test]
    fn rule_matches_user_and_schema_filters() {
        let rule = Rule {
            pattern: regex::Regex::new("(?i)^select").unwrap(),
            user: Some("reporting".into()),
            schema: Some("analytics".into()),
            route: RouteTarget::Replica,
            consistency: None,
        };
        assert!(rule.matches("SELECT 1", "reporting", Some("analytics")));
        assert!(!rule.matches("SELECT 1", "app", Some("analytics")));
        assert!(!rule.matches("SELECT 1", "reporting", None));
        assert!(!rule.matches("UPDATE t SET a=1", "reporting", Some("analytics")));
    }
}
