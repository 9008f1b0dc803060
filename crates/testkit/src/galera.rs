//! The local three-node MariaDB Galera cluster of `integration/galera.sh` (ports 3336-3338
//! unless `RWPROXY_GALERA_BASE_PORT` says otherwise), shared by the tests of a process.
//!
//! Tests that break it (stop, kill, desync or isolate a node) must hold [`Galera::exclusive`]
//! for their whole run and put it back as they found it; [`Galera::heal`] does that.

use std::sync::OnceLock;

use crate::cluster::{run_script, ClusterInfo};
use crate::error::Result;
use crate::paths::galera_script;

/// Name of the shared Galera cluster (its files live under `<scratch>/cluster-galera`).
pub const GALERA_NAME: &str = "galera";
/// node0's SQL port.
pub const GALERA_BASE_PORT: u16 = 3336;

static SHARED: OnceLock<std::result::Result<ClusterInfo, String>> = OnceLock::new();
static EXCLUSIVE: tokio::sync::Mutex<()> = tokio::sync::Mutex::const_new(());

pub struct Galera;

impl Galera {
    /// The shared Galera cluster, brought up (`galera.sh up`) once per process. Panics,
    /// failing the calling test, when it cannot be brought up.
    pub fn shared() -> &'static ClusterInfo {
        let info = SHARED.get_or_init(|| {
            let port = base_port();
            Self::script(&["up", "--base-port", &port.to_string()]).map_err(|e| e.to_string())?;
            let env = Self::script(&["env"]).map_err(|e| e.to_string())?;
            ClusterInfo::from_env_output(&env).map_err(|e| e.to_string())
        });
        match info {
            Ok(info) => info,
            Err(message) => panic!("the shared Galera cluster is not available: {message}"),
        }
    }

    /// Held by a test for as long as it changes the shared cluster: the tests of one binary
    /// run one at a time through it.
    pub async fn exclusive() -> tokio::sync::MutexGuard<'static, ()> {
        EXCLUSIVE.lock().await
    }

    /// `galera.sh ARGS... --name galera`; its stdout.
    pub fn script(args: &[&str]) -> Result<String> {
        let mut all: Vec<&str> = args.to_vec();
        all.extend_from_slice(&["--name", GALERA_NAME]);
        run_script(&galera_script(), &all)
    }

    /// `galera.sh stop-node NODE`: a clean shutdown; the node leaves the cluster.
    pub fn stop_node(node: usize) -> Result<()> {
        Self::script(&["stop-node", &node.to_string()]).map(drop)
    }

    /// `galera.sh kill-node NODE`: kill -9.
    pub fn kill_node(node: usize) -> Result<()> {
        Self::script(&["kill-node", &node.to_string()]).map(drop)
    }

    /// `galera.sh start-node NODE`: start it and wait until it is Synced.
    pub fn start_node(node: usize) -> Result<()> {
        Self::script(&["start-node", &node.to_string()]).map(drop)
    }

    /// `galera.sh status`.
    pub fn status() -> Result<String> {
        Self::script(&["status"])
    }

    /// Put the cluster back as the tests expect it: every node running, Synced, in one
    /// Primary component of three, none desynced or isolated.
    pub async fn heal(info: &ClusterInfo) -> Result<()> {
        for node in 0..info.nodes.len() {
            // A node that does not run answers with an error; `up` below starts it.
            if let Ok(mut conn) = info.admin_conn(node).await {
                use mysql_async::prelude::Queryable;
                let _ = conn.query_drop("SET GLOBAL wsrep_desync = OFF").await;
                let _ = conn
                    .query_drop("SET GLOBAL wsrep_provider_options = 'gmcast.isolate=0'")
                    .await;
                let _ = conn.disconnect().await;
            }
        }
        Self::script(&["up"]).map(drop)
    }
}

fn base_port() -> u16 {
    std::env::var("RWPROXY_GALERA_BASE_PORT")
        .ok()
        .and_then(|p| p.parse().ok())
        .unwrap_or(GALERA_BASE_PORT)
}
