//! A planned switchover driven by rwproxy (`POST /switchover`, `rwproxy switchover`): the
//! primary role moves to a replica with no client error.
//!
//! 1. Check: one primary; the target (given, or the freshest readable replica) is up, readable
//!    and within `max_lag`.
//! 2. Hold: the published topology has no primary, so new writes (and new transactions) wait
//!    at their statement boundary for up to `monitor.write_wait_timeout`, as in any no-primary
//!    window; statements of transactions already open keep going to their server.
//! 3. Drain: wait until this rwproxy's statements and transactions placed on the primary
//!    before the hold have finished ([`crate::PrimaryPass`]: one placed but not yet sent is
//!    invisible to the server), then until the primary has no open transaction
//!    (`information_schema.INNODB_TRX`, read every 120 ms: InnoDB refreshes that view only
//!    when it was not read for 100 ms), both within `drain_timeout`.
//! 4. `SET GLOBAL read_only = ON` on the old primary, read its `gtid_binlog_pos`, and wait
//!    until the target has applied it (`MASTER_GTID_WAIT`, up to `catch_up_timeout`).
//! 5. Promote: `STOP SLAVE; RESET SLAVE ALL; SET GLOBAL read_only = OFF` on the target; publish
//!    it as the primary and release the held writes.
//! 6. Repoint every other running backend, the old primary included, at the target with GTIDs.
//!
//! Those are the MariaDB statements; on MySQL 8.0.23 and later (told apart by `@@version` at
//! step 1) the same steps use `super_read_only`, `gtid_executed`,
//! `WAIT_FOR_EXECUTED_GTID_SET`, `STOP REPLICA`/`RESET REPLICA ALL` and `CHANGE REPLICATION
//! SOURCE TO … SOURCE_AUTO_POSITION=1` ([`statements`]).
//!
//! Until step 5 a failure changes nothing (the old primary gets `read_only = OFF` back, the
//! hold is released) and the request is refused with the reason. Step 6 failures are reported
//! but do not undo the switch (the primary has moved; the monitor shows replicas not
//! replicating).

use std::sync::Arc;
use std::time::{Duration, Instant};

use mysql_async::prelude::Queryable;
use mysql_async::{Conn, OptsBuilder};
use serde::Serialize;

use crate::address::HostPort;
use crate::settings::MonitorTls;
use crate::shared::Shared;
use crate::status::BackendStatus;

pub mod statements;

use statements::{Dialect, Source};

/// What to switch to, and the limits.
#[derive(Debug, Clone)]
pub struct SwitchoverRequest {
    /// The backend to promote; `None`: the readable replica with the least lag.
    pub target: Option<String>,
    /// An account with the grants the steps need (see docs/operations.md).
    pub user: String,
    pub password: String,
    /// The account replicas use to replicate from the new primary.
    pub replication_user: String,
    pub replication_password: String,
    pub tls: Option<MonitorTls>,
    /// A target lagging more than this is refused.
    pub max_lag: Duration,
    /// How long open transactions on the old primary may take to finish.
    pub drain_timeout: Duration,
    /// How long the target may take to apply the old primary's last writes.
    pub catch_up_timeout: Duration,
}

/// What a switchover did.
#[derive(Debug, Clone, Serialize)]
pub struct SwitchoverReport {
    pub from: String,
    pub to: String,
    /// How long new writes were held.
    pub held_ms: u64,
    /// Each step with its duration.
    pub steps: Vec<Step>,
    /// Backends that could not be repointed at the new primary, with why.
    pub not_repointed: Vec<(String, String)>,
}

#[derive(Debug, Clone, Serialize)]
pub struct Step {
    pub step: &'static str,
    pub ms: u64,
}

/// Why a switchover was refused; nothing was changed.
#[derive(Debug, thiserror::Error)]
pub enum SwitchoverError {
    #[error("another switchover is in progress")]
    InProgress,
    #[error("there is no single primary to switch from ({0})")]
    NoPrimary(String),
    #[error("no backend named '{0}'")]
    UnknownTarget(String),
    #[error("backend '{0}' is the primary already")]
    AlreadyPrimary(String),
    #[error("backend '{name}' cannot take over: {why}")]
    TargetNotUsable { name: String, why: String },
    #[error(
        "{count} transaction(s) still open on the primary after {waited:?} ({which}); nothing was changed"
    )]
    TransactionsOpen {
        count: u64,
        waited: Duration,
        /// The oldest few: connection id, user, command, statement.
        which: String,
    },
    #[error(
        "{count} statement(s) or transaction(s) of this rwproxy still on the primary after {waited:?}; nothing was changed"
    )]
    SessionsOnPrimary { count: usize, waited: Duration },
    #[error("backend '{backend}': {why}; nothing was changed")]
    Unsupported { backend: String, why: String },
    #[error("{step} on '{backend}' failed: {error}; nothing was changed")]
    Step {
        step: &'static str,
        backend: String,
        error: String,
    },
}

impl SwitchoverError {
    /// The HTTP status that fits: 409 for a conflict with the cluster's state, 404 for an
    /// unknown target, 500 when a step failed.
    pub fn http_status(&self) -> u16 {
        match self {
            Self::UnknownTarget(_) => 404,
            Self::Step { .. } => 500,
            _ => 409,
        }
    }
}

fn opts(address: &str, req: &SwitchoverRequest) -> Result<OptsBuilder, String> {
    let target = HostPort::parse(address)?;
    Ok(OptsBuilder::default()
        .ip_or_hostname(target.host)
        .tcp_port(target.port)
        .user(Some(req.user.clone()))
        .pass(Some(req.password.clone()))
        .prefer_socket(false)
        .stmt_cache_size(0)
        .ssl_opts(req.tls.as_ref().map(crate::kept_connection::ssl_opts)))
}

async fn connect(b: &BackendStatus, req: &SwitchoverRequest) -> Result<Conn, SwitchoverError> {
    let step_err = |error: String| SwitchoverError::Step {
        step: "connect",
        backend: b.name.clone(),
        error,
    };
    let opts = opts(&b.address, req).map_err(step_err)?;
    tokio::time::timeout(Duration::from_secs(5), Conn::new(opts))
        .await
        .map_err(|_| step_err("timed out".into()))?
        .map_err(|e| step_err(crate::kept_connection::describe_sql_error(&e)))
}

fn sql_err(step: &'static str, backend: &str) -> impl Fn(mysql_async::Error) -> SwitchoverError {
    let backend = backend.to_string();
    move |e| SwitchoverError::Step {
        step,
        backend: backend.clone(),
        error: crate::kept_connection::describe_sql_error(&e),
    }
}

/// The statements' family of the server behind `conn` (from its `@@version`).
async fn dialect_of(conn: &mut Conn, backend: &str) -> Result<Dialect, SwitchoverError> {
    let version: Option<String> = conn
        .query_first("SELECT @@version")
        .await
        .map_err(sql_err("reading @@version", backend))?;
    Dialect::from_version(version.as_deref().unwrap_or("")).map_err(|why| {
        SwitchoverError::Unsupported {
            backend: backend.to_string(),
            why,
        }
    })
}

/// Runs a switchover (see the module documentation).
pub(crate) async fn run(
    shared: &Arc<Shared>,
    req: SwitchoverRequest,
) -> Result<SwitchoverReport, SwitchoverError> {
    // One at a time.
    {
        let mut registry = shared.lock();
        if registry.switching {
            return Err(SwitchoverError::InProgress);
        }
        registry.switching = true;
    }
    let result = run_locked(shared, &req).await;
    let mut registry = shared.lock();
    registry.switching = false;
    if registry.hold {
        registry.hold = false;
        shared.publish(&mut registry);
    }
    result
}

async fn run_locked(
    shared: &Arc<Shared>,
    req: &SwitchoverRequest,
) -> Result<SwitchoverReport, SwitchoverError> {
    let started = Instant::now();
    let mut steps = Vec::new();
    let mut mark = |step: &'static str, since: &mut Instant| {
        steps.push(Step {
            step,
            ms: since.elapsed().as_millis() as u64,
        });
        *since = Instant::now();
    };
    let mut since = Instant::now();

    // 1. Check.
    let topology = shared.snapshot.load_full();
    let Some(primary) = topology.primary().cloned() else {
        return Err(SwitchoverError::NoPrimary(format!(
            "{:?}",
            topology.primary
        )));
    };
    let target = match &req.target {
        Some(name) => topology
            .get(name)
            .cloned()
            .ok_or_else(|| SwitchoverError::UnknownTarget(name.clone()))?,
        None => topology
            .readable_replicas()
            .min_by_key(|b| b.lag.unwrap_or(Duration::MAX))
            .cloned()
            .ok_or_else(|| SwitchoverError::TargetNotUsable {
                name: "(any replica)".into(),
                why: "no readable replica".into(),
            })?,
    };
    if target.name == primary.name {
        return Err(SwitchoverError::AlreadyPrimary(target.name));
    }
    if !target.is_readable_replica() {
        return Err(SwitchoverError::TargetNotUsable {
            name: target.name.clone(),
            why: format!("it is {} ({})", target.state.as_str(), target.reason),
        });
    }
    match target.lag {
        Some(lag) if lag <= req.max_lag => {}
        lag => {
            return Err(SwitchoverError::TargetNotUsable {
                name: target.name.clone(),
                why: format!("its lag {lag:?} is not within {:?}", req.max_lag),
            })
        }
    }
    let mut old = connect(&primary, req).await?;
    let mut new = connect(&target, req).await?;
    let dialect = dialect_of(&mut old, &primary.name).await?;
    let target_dialect = dialect_of(&mut new, &target.name).await?;
    if target_dialect != dialect {
        return Err(SwitchoverError::TargetNotUsable {
            name: target.name.clone(),
            why: format!(
                "it runs {} and the primary {}",
                target_dialect.as_str(),
                dialect.as_str()
            ),
        });
    }
    mark("check", &mut since);

    // 2. Hold new writes.
    let held = Instant::now();
    {
        let mut registry = shared.lock();
        registry.hold = true;
        shared.publish(&mut registry);
    }

    // 3. Drain: first this rwproxy's own statements and transactions placed on the old
    // primary before the hold (one placed but not yet sent is invisible to the server), then
    // every open transaction the server knows of (other clients and proxies included).
    let deadline = Instant::now() + req.drain_timeout;
    let out = shared.gate.drained(req.drain_timeout).await;
    if out > 0 {
        return Err(SwitchoverError::SessionsOnPrimary {
            count: out,
            waited: req.drain_timeout,
        });
    }
    loop {
        let open: Option<u64> = old
            .query_first(
                "SELECT COUNT(*) FROM information_schema.INNODB_TRX \
                 WHERE trx_mysql_thread_id <> CONNECTION_ID()",
            )
            .await
            .map_err(sql_err("counting open transactions", &primary.name))?;
        let open = open.unwrap_or(0);
        if open == 0 {
            break;
        }
        if Instant::now() >= deadline {
            let rows: Vec<(u64, String, String, String)> = old
                .query(
                    "SELECT t.trx_mysql_thread_id, IFNULL(p.user, ''), \
                     CONCAT(IFNULL(p.command, ''), ' ', t.trx_state, ' rows=', t.trx_rows_modified, ' since=', t.trx_started, ' ro=', t.trx_is_read_only), \
                     LEFT(IFNULL(p.info, IFNULL(t.trx_query, '')), 80) \
                     FROM information_schema.INNODB_TRX t \
                     LEFT JOIN information_schema.PROCESSLIST p ON p.id = t.trx_mysql_thread_id \
                     WHERE t.trx_mysql_thread_id <> CONNECTION_ID() \
                     ORDER BY t.trx_started LIMIT 3",
                )
                .await
                .unwrap_or_default();
            let which = rows
                .iter()
                .map(|(id, user, command, info)| {
                    format!("connection {id} of {user}: {command} {info}")
                })
                .collect::<Vec<_>>()
                .join("; ");
            return Err(SwitchoverError::TransactionsOpen {
                count: open,
                waited: req.drain_timeout,
                which,
            });
        }
        // InnoDB refreshes what INNODB_TRX shows only when it was not read for 100 ms: asked
        // more often, it keeps answering from its old cache.
        tokio::time::sleep(Duration::from_millis(120)).await;
    }
    mark("drain", &mut since);

    // 4. Freeze the old primary; the target catches up.
    old.query_drop(dialect.freeze())
        .await
        .map_err(sql_err(dialect.freeze(), &primary.name))?;
    let undo = |e: SwitchoverError| async {
        // Nothing moved: the old primary takes writes again.
        if let Ok(mut c) = connect(&primary, req).await {
            let _ = c.query_drop(dialect.unfreeze()).await;
        }
        e
    };
    let position: Option<String> = match old.query_first(dialect.position()).await {
        Ok(p) => p,
        Err(e) => return Err(undo(sql_err("reading the GTID position", &primary.name)(e)).await),
    };
    let position = position.unwrap_or_default();
    let waited: Result<Option<i64>, _> = new
        .query_first(dialect.wait_for(&position, req.catch_up_timeout))
        .await;
    match waited {
        Ok(Some(0)) => {}
        Ok(_) => {
            return Err(undo(SwitchoverError::TargetNotUsable {
                name: target.name.clone(),
                why: format!(
                    "it did not apply {position} within {:?}; nothing was changed",
                    req.catch_up_timeout
                ),
            })
            .await)
        }
        Err(e) => {
            return Err(undo(sql_err("waiting for the GTID position", &target.name)(e)).await)
        }
    }
    mark("catch_up", &mut since);

    // 5. Promote and release.
    if let Err(e) = new.query_drop(dialect.promote()).await {
        return Err(undo(sql_err("promoting", &target.name)(e)).await);
    }
    {
        let mut registry = shared.lock();
        for b in registry.statuses.iter_mut() {
            if b.name == target.name {
                b.read_only = false;
            } else if b.name == primary.name {
                b.read_only = true;
            }
        }
        registry.hold = false;
        registry.switched_at = Some(Instant::now());
        shared.publish(&mut registry);
    }
    let held_ms = held.elapsed().as_millis() as u64;
    mark("promote", &mut since);
    tracing::info!(from = %primary.name, to = %target.name, held_ms, "switchover: new primary");

    // 6. Repoint the others.
    let new_address = match HostPort::parse(&target.address) {
        Ok(a) => a,
        Err(e) => {
            return Ok(SwitchoverReport {
                from: primary.name.clone(),
                to: target.name.clone(),
                held_ms,
                steps,
                not_repointed: vec![("(all)".into(), e)],
            })
        }
    };
    let source = Source {
        host: &new_address.host,
        port: new_address.port,
        user: &req.replication_user,
        password: &req.replication_password,
    };
    let mut not_repointed = Vec::new();
    for b in topology.backends.iter() {
        if b.name == target.name || !(b.is_up() || b.name == primary.name) {
            continue;
        }
        let outcome = match connect(b, req).await {
            Ok(mut c) => match dialect_of(&mut c, &b.name).await {
                Ok(d) => c
                    .query_drop(d.repoint(&source, b.name == primary.name))
                    .await
                    .map_err(|e| crate::kept_connection::describe_sql_error(&e)),
                Err(e) => Err(e.to_string()),
            },
            Err(e) => Err(e.to_string()),
        };
        if let Err(why) = outcome {
            tracing::warn!(backend = %b.name, error = %why, "switchover: could not repoint a backend at the new primary");
            not_repointed.push((b.name.clone(), why));
        }
    }
    mark("repoint", &mut since);
    let _ = old.disconnect().await;
    let _ = new.disconnect().await;
    tracing::info!(from = %primary.name, to = %target.name, held_ms, total_ms = started.elapsed().as_millis() as u64, "switchover done");
    Ok(SwitchoverReport {
        from: primary.name.clone(),
        to: target.name.clone(),
        held_ms,
        steps,
        not_repointed,
    })
}
