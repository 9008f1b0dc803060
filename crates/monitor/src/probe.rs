//! One health check of one backend over its kept-open connection: server
//! variables, replication status and (optionally) the heartbeat row, all
//! under one timeout.

use std::time::{Duration, Instant};

use mysql_async::prelude::Queryable;
use mysql_async::{Conn, Row, Value};

use crate::galera::{self, GaleraStatus, TopologyMode};
use crate::heartbeat_table::HeartbeatTable;
use crate::human;
use crate::kept_connection::{ConnError, Credentials, KeptConnection};
use crate::observation::{
    heartbeat_lag_from_micros, parse_bool_var, parse_gtid_var, Observation, ReplicationChannel,
};
use crate::status::ServerFlavor;

const MARIADB_VARIABLES: &str = "SELECT @@server_id, @@read_only, @@global.gtid_current_pos, \
     @@global.gtid_slave_pos, @@version";
const MYSQL_VARIABLES: &str = "SELECT @@server_id, @@read_only, @@super_read_only, \
     @@innodb_read_only, @@global.gtid_executed, @@version";
const MARIADB_REPLICATION: &str = "SHOW ALL SLAVES STATUS";
const MYSQL_REPLICATION: &str = "SHOW REPLICA STATUS";
/// MySQL before 8.0.22 only knows the old spelling.
const MYSQL_REPLICATION_OLD: &str = "SHOW SLAVE STATUS";
/// `ER_PARSE_ERROR`: the server does not know the statement.
const ER_PARSE_ERROR: u16 = 1064;
/// `ER_UNKNOWN_SYSTEM_VARIABLE`.
const ER_UNKNOWN_SYSTEM_VARIABLE: u16 = 1193;

/// A failed check, with the time it took.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct CheckFailure {
    pub reason: String,
    pub latency: Duration,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Phase {
    Connecting,
    Querying,
}

/// Checks one backend, keeping its connection between checks.
pub(crate) struct Prober {
    conn: KeptConnection,
    phase: Phase,
    /// Flavor of the current connection's server, once known.
    flavor: Option<(u64, ServerFlavor, String)>,
    mysql_replication_sql: &'static str,
    /// Whether the current connection's server is a Galera node, once known.
    galera_node: Option<(u64, bool)>,
}

impl Prober {
    pub fn new(address: &str) -> Self {
        Self {
            conn: KeptConnection::new(address),
            phase: Phase::Connecting,
            flavor: None,
            mysql_replication_sql: MYSQL_REPLICATION,
            galera_node: None,
        }
    }

    /// Runs one check within `timeout`. A failed or timed-out check drops the
    /// connection (a connect still in flight is kept and resumed next time).
    pub async fn check(
        &mut self,
        credentials: &Credentials,
        timeout: Duration,
        heartbeat: Option<&HeartbeatTable>,
        mode: TopologyMode,
    ) -> Result<Observation, CheckFailure> {
        let started = Instant::now();
        self.phase = Phase::Connecting;
        let reused = self.conn.is_open();
        let mut outcome =
            tokio::time::timeout(timeout, self.run(credentials, heartbeat, mode)).await;
        // A kept connection older than a server restart fails on first use; that says nothing
        // about the server now, so one new connection is tried within the same timeout.
        if let Ok(Err(err)) = &outcome {
            let left = timeout.saturating_sub(started.elapsed());
            if reused && err.is_disconnect() && !left.is_zero() {
                tracing::debug!(error = %err.describe(), "kept monitor connection broke; checking again on a new one");
                self.conn.discard();
                self.phase = Phase::Connecting;
                outcome = tokio::time::timeout(left, self.run(credentials, heartbeat, mode)).await;
            }
        }
        let latency = started.elapsed();
        match outcome {
            Ok(Ok(mut obs)) => {
                obs.latency = latency;
                Ok(obs)
            }
            Ok(Err(err)) => {
                self.conn.discard();
                Err(CheckFailure {
                    reason: err.describe(),
                    latency,
                })
            }
            Err(_elapsed) => {
                let reason = match self.phase {
                    Phase::Connecting => {
                        format!("connect timeout after {}", human::duration(timeout))
                    }
                    Phase::Querying => {
                        self.conn.drop_connection();
                        format!("query timeout after {}", human::duration(timeout))
                    }
                };
                Err(CheckFailure { reason, latency })
            }
        }
    }

    async fn run(
        &mut self,
        credentials: &Credentials,
        heartbeat: Option<&HeartbeatTable>,
        mode: TopologyMode,
    ) -> Result<Observation, ConnError> {
        let (conn, generation) = self.conn.get(credentials).await?;
        self.phase = Phase::Querying;
        let (flavor, version) = match &self.flavor {
            Some((g, flavor, version)) if *g == generation => (*flavor, version.clone()),
            _ => {
                let version: String = conn
                    .query_first::<Option<String>, _>("SELECT @@version")
                    .await?
                    .flatten()
                    .unwrap_or_default();
                let flavor = ServerFlavor::from_version(&version);
                self.flavor = Some((generation, flavor, version.clone()));
                (flavor, version)
            }
        };
        let galera_node = match (flavor, mode) {
            (ServerFlavor::MySql, _) | (_, TopologyMode::Replication) => false,
            _ => match self.galera_node {
                Some((g, on)) if g == generation => on,
                _ => {
                    let on = is_galera_node(conn).await?;
                    self.galera_node = Some((generation, on));
                    on
                }
            },
        };
        let galera = match galera_node {
            true => Some(read_galera(conn).await?),
            false => None,
        };
        let mut obs = match (flavor, galera) {
            (ServerFlavor::MariaDb, None) => read_mariadb_variables(conn).await?,
            (ServerFlavor::MariaDb, Some(g)) => match read_mariadb_variables(conn).await {
                Ok(mut obs) => {
                    obs.galera = Some(g);
                    obs
                }
                // Refused as a node outside the primary component refuses queries.
                Err(ConnError::Sql(mysql_async::Error::Server(e))) => {
                    tracing::debug!(code = e.code, message = %e.message, "galera node refuses queries");
                    return Ok(galera_only(g, &version));
                }
                Err(e) => return Err(e),
            },
            (ServerFlavor::MySql, _) => read_mysql_variables(conn).await?,
        };
        if obs.galera.is_some() {
            // A Galera node does not replicate with replication channels.
            // (nor is a heartbeat age its lag: write sets apply synchronously; the receive queue
            // says how far behind it is).
            if obs.version.is_empty() {
                obs.version = version;
            }
            return Ok(obs);
        }
        if obs.version.is_empty() {
            obs.version = version;
        }
        let channels = match flavor {
            ServerFlavor::MariaDb => read_channels(conn, MARIADB_REPLICATION).await,
            ServerFlavor::MySql => match read_channels(conn, self.mysql_replication_sql).await {
                Err(mysql_async::Error::Server(e)) if e.code == ER_PARSE_ERROR => {
                    self.mysql_replication_sql = MYSQL_REPLICATION_OLD;
                    read_channels(conn, MYSQL_REPLICATION_OLD).await
                }
                other => other,
            },
        };
        match channels {
            Ok(channels) => obs.channels = channels,
            // Typically a missing SLAVE MONITOR / REPLICATION CLIENT grant:
            // fatal for judging a replica, irrelevant for a primary.
            Err(mysql_async::Error::Server(e)) => {
                obs.replication_error = Some(format!("{} (error {})", e.message, e.code));
            }
            Err(e) => return Err(e.into()),
        }
        if let Some(table) = heartbeat {
            obs.heartbeat_lag = read_heartbeat_lag(conn, table).await?;
        }
        Ok(obs)
    }
}

/// Text of one column; NULL is None.
fn text(row: &Row, index: usize) -> Option<String> {
    match row.as_ref(index)? {
        Value::NULL => None,
        Value::Bytes(bytes) => Some(String::from_utf8_lossy(bytes).into_owned()),
        Value::Int(i) => Some(i.to_string()),
        Value::UInt(u) => Some(u.to_string()),
        other => Some(other.as_sql(true)),
    }
}

fn server_id(row: &Row) -> u32 {
    text(row, 0)
        .and_then(|v| v.trim().parse::<u32>().ok())
        .unwrap_or(0)
}

async fn first_row(conn: &mut Conn, sql: &str) -> Result<Row, ConnError> {
    let row: Option<Row> = conn.query_first(sql).await?;
    row.ok_or_else(|| ConnError::Unexpected(format!("`{sql}` returned no row")))
}

async fn read_mariadb_variables(conn: &mut Conn) -> Result<Observation, ConnError> {
    let row = first_row(conn, MARIADB_VARIABLES).await?;
    Ok(Observation {
        flavor: ServerFlavor::MariaDb,
        server_id: server_id(&row),
        // Unknown read_only is treated as read-only: never send writes on a guess.
        read_only: parse_bool_var(text(&row, 1).as_deref()).unwrap_or(true),
        gtid_current_pos: parse_gtid_var(text(&row, 2).as_deref()),
        gtid_slave_pos: parse_gtid_var(text(&row, 3).as_deref()),
        version: text(&row, 4).unwrap_or_default(),
        channels: Vec::new(),
        replication_error: None,
        heartbeat_lag: None,
        latency: Duration::ZERO,
        galera: None,
    })
}

async fn read_mysql_variables(conn: &mut Conn) -> Result<Observation, ConnError> {
    let row = first_row(conn, MYSQL_VARIABLES).await?;
    let flag = |i| parse_bool_var(text(&row, i).as_deref()).unwrap_or(true);
    Ok(Observation {
        flavor: ServerFlavor::MySql,
        server_id: server_id(&row),
        read_only: flag(1) || flag(2) || flag(3),
        gtid_current_pos: parse_gtid_var(text(&row, 4).as_deref()),
        gtid_slave_pos: None,
        version: text(&row, 5).unwrap_or_default(),
        channels: Vec::new(),
        replication_error: None,
        heartbeat_lag: None,
        latency: Duration::ZERO,
        galera: None,
    })
}

/// Whether the server is a Galera node (`wsrep_on=ON`); a server built without wsrep does not
/// know the variable (1193) and is not one.
async fn is_galera_node(conn: &mut Conn) -> Result<bool, ConnError> {
    match conn
        .query_first::<Option<String>, _>("SELECT @@global.wsrep_on")
        .await
    {
        Ok(value) => Ok(parse_bool_var(value.flatten().as_deref()).unwrap_or(false)),
        Err(mysql_async::Error::Server(e)) if e.code == ER_UNKNOWN_SYSTEM_VARIABLE => Ok(false),
        Err(e) => Err(e.into()),
    }
}

/// The node's `wsrep_*` state (status and variables). Both statements work on a node outside
/// the primary component, where ordinary queries are refused.
async fn read_galera(conn: &mut Conn) -> Result<GaleraStatus, ConnError> {
    let rows: Vec<Row> = conn.query(galera::STATUS_SQL).await?;
    let status: Vec<(String, String)> = rows
        .iter()
        .filter_map(|r| Some((text(r, 0)?, text(r, 1).unwrap_or_default())))
        .collect();
    let vars = first_row(conn, galera::VARIABLES_SQL).await?;
    Ok(GaleraStatus::from_rows(
        &status,
        text(&vars, 0).as_deref(),
        text(&vars, 1).as_deref(),
        text(&vars, 2).as_deref(),
    ))
}

/// What a check can say of a Galera node that refuses ordinary queries (outside the primary
/// component, or `wsrep_reject_queries`): its wsrep state, read-only, nothing else known.
fn galera_only(g: GaleraStatus, version: &str) -> Observation {
    Observation {
        flavor: ServerFlavor::MariaDb,
        version: version.to_string(),
        server_id: 0,
        read_only: true,
        gtid_current_pos: None,
        gtid_slave_pos: None,
        channels: Vec::new(),
        replication_error: None,
        heartbeat_lag: None,
        latency: Duration::ZERO,
        galera: Some(g),
    }
}

async fn read_channels(
    conn: &mut Conn,
    sql: &str,
) -> Result<Vec<ReplicationChannel>, mysql_async::Error> {
    let rows: Vec<Row> = conn.query(sql).await?;
    Ok(rows
        .iter()
        .map(|row| {
            let columns: Vec<(String, Option<String>)> = row
                .columns_ref()
                .iter()
                .enumerate()
                .map(|(i, col)| (col.name_str().into_owned(), text(row, i)))
                .collect();
            ReplicationChannel::from_columns(&columns)
        })
        .collect())
}

/// The heartbeat row's age; None when the table or row is missing or not
/// readable (a server error), so the caller falls back to
/// `Seconds_Behind_Master`. Connection errors still fail the check.
async fn read_heartbeat_lag(
    conn: &mut Conn,
    table: &HeartbeatTable,
) -> Result<Option<std::time::Duration>, ConnError> {
    match conn.query_first::<Row, _>(table.read_lag_sql()).await {
        Ok(row) => Ok(row.and_then(|r| heartbeat_lag_from_micros(text(&r, 0).as_deref()))),
        Err(mysql_async::Error::Server(e)) => {
            tracing::debug!(table = %table, error = %e.message, "heartbeat row not readable");
            Ok(None)
        }
        Err(e) => Err(e.into()),
    }
}
