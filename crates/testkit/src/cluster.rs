//! The local MariaDB cluster of `integration/cluster.sh`: starting it, describing it,
//! and breaking it on purpose.

use std::collections::HashMap;
use std::path::PathBuf;
use std::process::{Command, Stdio};
use std::sync::OnceLock;
use std::time::Duration;

use mysql_async::prelude::{FromValue, Queryable};
use mysql_async::{Conn, Row};

use crate::client::{connect, Credentials};
use crate::error::{Result, TestkitError};
use crate::paths::cluster_script;
use crate::signals::{read_pid_file, send_signal, TestSignal};

/// Default name and primary port of the shared cluster (as in `cluster.sh`).
pub const SHARED_NAME: &str = "main";
pub const SHARED_BASE_PORT: u16 = 3316;

/// One mariadbd of a cluster; node 0 is the primary when the cluster comes up.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NodeInfo {
    pub index: usize,
    pub port: u16,
    pub socket: PathBuf,
    pub pid_file: PathBuf,
}

/// Ports, files and accounts of a running cluster.
#[derive(Debug, Clone)]
pub struct ClusterInfo {
    pub name: String,
    pub dir: PathBuf,
    pub nodes: Vec<NodeInfo>,
    /// `app`: ALL on schema `app` only.
    pub app: Credentials,
    /// `monitor`: replication/binlog monitoring, PROCESS, SELECT on mysql.global_priv, ALL on `rwproxy`.
    pub monitor: Credentials,
    /// `admin`: ALL PRIVILEGES WITH GRANT OPTION.
    pub admin: Credentials,
    /// `repl`: REPLICATION SLAVE.
    pub repl: Credentials,
    /// Made with `cluster.sh up --tls-only`: TCP logins need TLS (verified with
    /// `dir/tls/ca.pem`); the helpers of [`crate::client`] use it for this cluster's ports,
    /// and [`crate::StandardConfig`] gives rwproxy `backend_tls` for it.
    pub tls_only: bool,
}

impl ClusterInfo {
    /// The CA that signed the cluster's server certificates.
    pub fn tls_ca(&self) -> PathBuf {
        self.dir.join("tls").join("ca.pem")
    }
}

/// Entry points to get a cluster.
pub struct Cluster;

static SHARED: OnceLock<std::result::Result<ClusterInfo, String>> = OnceLock::new();

impl Cluster {
    /// The shared cluster (`main`, ports 3316-3318 unless `RWPROXY_TEST_CLUSTER` /
    /// `RWPROXY_TEST_BASE_PORT` say otherwise), brought up once per process.
    ///
    /// `cluster.sh` holds a file lock while it works, so test processes running at the same
    /// time wait for each other instead of racing. Panics, failing the calling test, when the
    /// cluster cannot be brought up; use [`Cluster::try_shared`] to handle that yourself.
    pub fn shared() -> &'static ClusterInfo {
        match Cluster::try_shared() {
            Ok(info) => info,
            Err(message) => panic!("the shared test cluster is not available: {message}"),
        }
    }

    /// Like [`Cluster::shared`], but returns the failure (the same one to every caller).
    pub fn try_shared() -> std::result::Result<&'static ClusterInfo, String> {
        SHARED
            .get_or_init(|| {
                let name = std::env::var("RWPROXY_TEST_CLUSTER")
                    .ok()
                    .filter(|n| !n.is_empty())
                    .unwrap_or_else(|| SHARED_NAME.to_string());
                let port = match std::env::var("RWPROXY_TEST_BASE_PORT") {
                    Ok(p) if !p.is_empty() => p
                        .parse::<u16>()
                        .map_err(|_| format!("RWPROXY_TEST_BASE_PORT={p:?} is not a port"))?,
                    _ => SHARED_BASE_PORT,
                };
                // RWPROXY_TEST_TLS_ONLY=1: the shared cluster takes only TLS connections.
                let tls_only = std::env::var("RWPROXY_TEST_TLS_ONLY").as_deref() == Ok("1");
                let extra: &[&str] = if tls_only { &["--tls-only"] } else { &[] };
                bring_up(&name, port, extra).map_err(|e| e.to_string())
            })
            .as_ref()
            .map_err(Clone::clone)
    }

    /// A private cluster that a test may break (kill -9, SIGSTOP, stop replication, promote).
    /// Any leftover cluster of the same name is wiped first; dropping the value stops it and
    /// deletes its data. Give every test its own name and a base port no other test uses.
    pub fn throwaway(name: &str, base_port: u16) -> Result<ThrowawayCluster> {
        run_cluster_script(&["down", "--wipe", "--name", name])?;
        let info = bring_up(name, base_port, &[])?;
        Ok(ThrowawayCluster { info })
    }

    /// Like [`Cluster::throwaway`], made with `cluster.sh up --tls-only`:
    /// `require_secure_transport=ON` on every node and replication over verified TLS.
    pub fn throwaway_tls_only(name: &str, base_port: u16) -> Result<ThrowawayCluster> {
        run_cluster_script(&["down", "--wipe", "--name", name])?;
        let info = bring_up(name, base_port, &["--tls-only"])?;
        Ok(ThrowawayCluster { info })
    }
}

/// A cluster owned by one test; `down --wipe` on drop.
#[derive(Debug)]
pub struct ThrowawayCluster {
    info: ClusterInfo,
}

impl ThrowawayCluster {
    /// Run `cluster.sh up` again: restarts dead nodes and re-attaches stopped replicas.
    pub fn up(&self) -> Result<()> {
        run_cluster_script(&["up", "--name", &self.info.name]).map(drop)
    }

    /// `cluster.sh promote NODE`: an external failover or switchover to `node`.
    pub fn promote(&self, node: usize) -> Result<()> {
        run_cluster_script(&["promote", &node.to_string(), "--name", &self.info.name]).map(drop)
    }

    /// `cluster.sh status` output.
    pub fn status(&self) -> Result<String> {
        run_cluster_script(&["status", "--name", &self.info.name])
    }
}

impl std::ops::Deref for ThrowawayCluster {
    type Target = ClusterInfo;
    fn deref(&self) -> &ClusterInfo {
        &self.info
    }
}

impl Drop for ThrowawayCluster {
    fn drop(&mut self) {
        if let Err(e) = run_cluster_script(&["down", "--wipe", "--name", &self.info.name]) {
            eprintln!("warning: tearing down cluster {}: {e}", self.info.name);
        }
    }
}

fn bring_up(name: &str, base_port: u16, extra: &[&str]) -> Result<ClusterInfo> {
    let port = base_port.to_string();
    let mut args = vec!["up", "--name", name, "--base-port", &port];
    args.extend_from_slice(extra);
    run_cluster_script(&args)?;
    let env = run_cluster_script(&["env", "--name", name])?;
    let info = ClusterInfo::from_env_output(&env)?;
    if info.tls_only {
        let ca = info.tls_ca();
        for node in &info.nodes {
            crate::client::register_tls_only_server(node.port, &ca);
        }
    }
    Ok(info)
}

/// Run `integration/cluster.sh ARGS...` with no stdin; its stdout on success.
pub fn run_cluster_script(args: &[&str]) -> Result<String> {
    run_script(&cluster_script(), args)
}

/// Run the bash script `script ARGS...` with no stdin; its stdout on success.
pub(crate) fn run_script(script: &std::path::Path, args: &[&str]) -> Result<String> {
    let command = format!("{} {}", script.display(), args.join(" "));
    let output = Command::new("bash")
        .arg(script)
        .args(args)
        .stdin(Stdio::null())
        .output()
        .map_err(|source| TestkitError::Spawn {
            command: command.clone(),
            source,
        })?;
    let stdout = String::from_utf8_lossy(&output.stdout).into_owned();
    if !output.status.success() {
        return Err(TestkitError::CommandFailed {
            command,
            status: output.status.to_string(),
            stdout,
            stderr: String::from_utf8_lossy(&output.stderr).into_owned(),
        });
    }
    Ok(stdout)
}

/// Undo bash's `printf %q` for the plain values `cluster.sh env` prints.
fn unquote_shell(value: &str) -> String {
    let mut out = String::with_capacity(value.len());
    let mut chars = value.chars();
    while let Some(c) = chars.next() {
        if c == '\\' {
            if let Some(next) = chars.next() {
                out.push(next);
            }
        } else {
            out.push(c);
        }
    }
    out
}

impl ClusterInfo {
    /// Parse the `export KEY=VALUE` lines of `cluster.sh env`.
    pub fn from_env_output(text: &str) -> Result<ClusterInfo> {
        let vars: HashMap<String, String> = text
            .lines()
            .filter_map(|line| line.strip_prefix("export "))
            .filter_map(|kv| kv.split_once('='))
            .map(|(k, v)| (k.to_string(), unquote_shell(v)))
            .collect();
        let get = |key: &str| -> Result<String> {
            vars.get(key)
                .cloned()
                .ok_or_else(|| TestkitError::MissingClusterVar(key.to_string()))
        };
        let number = |key: &str| -> Result<u64> {
            let value = get(key)?;
            value
                .parse::<u64>()
                .map_err(|_| TestkitError::InvalidClusterVar {
                    key: key.to_string(),
                    value,
                })
        };
        let count = number("RWPROXY_CLUSTER_NODES")?;
        let mut nodes = Vec::new();
        for index in 0..count as usize {
            let port_key = format!("RWPROXY_NODE{index}_PORT");
            let port =
                u16::try_from(number(&port_key)?).map_err(|_| TestkitError::InvalidClusterVar {
                    key: port_key.clone(),
                    value: vars.get(&port_key).cloned().unwrap_or_default(),
                })?;
            nodes.push(NodeInfo {
                index,
                port,
                socket: PathBuf::from(get(&format!("RWPROXY_NODE{index}_SOCKET"))?),
                pid_file: PathBuf::from(get(&format!("RWPROXY_NODE{index}_PIDFILE"))?),
            });
        }
        if nodes.is_empty() {
            return Err(TestkitError::InvalidClusterVar {
                key: "RWPROXY_CLUSTER_NODES".to_string(),
                value: count.to_string(),
            });
        }
        Ok(ClusterInfo {
            name: get("RWPROXY_CLUSTER_NAME")?,
            dir: PathBuf::from(get("RWPROXY_CLUSTER_DIR")?),
            nodes,
            app: Credentials::new(&get("APP_DB_USER")?, &get("APP_DB_PASSWORD")?),
            monitor: Credentials::new(&get("MONITOR_USER")?, &get("MONITOR_PASSWORD")?),
            admin: Credentials::new(&get("ADMIN_DB_USER")?, &get("ADMIN_DB_PASSWORD")?),
            repl: Credentials::new(&get("REPL_USER")?, &get("REPL_PASSWORD")?),
            tls_only: vars.get("RWPROXY_CLUSTER_TLS_ONLY").map(String::as_str) == Some("1"),
        })
    }

    /// Node `index` (0 = primary at creation).
    pub fn node(&self, index: usize) -> Result<&NodeInfo> {
        self.nodes.get(index).ok_or(TestkitError::NoSuchNode(index))
    }

    /// Node 0.
    pub fn primary(&self) -> &NodeInfo {
        &self.nodes[0]
    }

    /// Nodes 1.. (replicas at creation).
    pub fn replicas(&self) -> &[NodeInfo] {
        &self.nodes[1..]
    }

    /// `127.0.0.1:PORT` of every node, primary first.
    pub fn addresses(&self) -> Vec<String> {
        self.nodes
            .iter()
            .map(|n| format!("127.0.0.1:{}", n.port))
            .collect()
    }

    /// A direct connection to a node as `admin`.
    pub async fn admin_conn(&self, node: usize) -> Result<Conn> {
        connect(self.node(node)?.port, &self.admin, None).await
    }

    /// A direct connection to a node as `app`, schema `app`.
    pub async fn app_conn(&self, node: usize) -> Result<Conn> {
        connect(self.node(node)?.port, &self.app, Some("app")).await
    }

    /// Run statements (text protocol, multi-statements allowed) on a node as `admin`.
    pub async fn admin_exec(&self, node: usize, sql: &str) -> Result<()> {
        let mut conn = self.admin_conn(node).await?;
        conn.query_drop(sql).await?;
        conn.disconnect().await?;
        Ok(())
    }

    /// All rows of a query run on a node as `admin`.
    pub async fn admin_rows(&self, node: usize, sql: &str) -> Result<Vec<Row>> {
        let mut conn = self.admin_conn(node).await?;
        let rows = conn.query(sql).await?;
        conn.disconnect().await?;
        Ok(rows)
    }

    /// The first column of the first row of a query run on a node as `admin`.
    pub async fn admin_scalar<T: FromValue + Send + 'static>(
        &self,
        node: usize,
        sql: &str,
    ) -> Result<Option<T>> {
        let mut conn = self.admin_conn(node).await?;
        let value = conn.query_first(sql).await?;
        conn.disconnect().await?;
        Ok(value)
    }

    /// `@@server_id` of whatever server listens on `port` (a node, or the proxy).
    pub async fn server_id_of(&self, port: u16) -> Result<u32> {
        let mut conn = connect(port, &self.admin, None).await?;
        let id: Option<u32> = conn.query_first("SELECT @@server_id").await?;
        conn.disconnect().await?;
        id.ok_or_else(|| TestkitError::Protocol("SELECT @@server_id returned no row".into()))
    }

    /// The pid in a node's pid file.
    pub fn pid_of(&self, node: usize) -> Result<i32> {
        read_pid_file(&self.node(node)?.pid_file)
    }

    /// SIGKILL a node.
    pub fn kill9(&self, node: usize) -> Result<()> {
        send_signal(self.pid_of(node)?, TestSignal::Kill)
    }

    /// Freeze a node (it keeps accepting TCP connections but never answers).
    pub fn sigstop(&self, node: usize) -> Result<()> {
        send_signal(self.pid_of(node)?, TestSignal::Stop)
    }

    /// Resume a frozen node.
    pub fn sigcont(&self, node: usize) -> Result<()> {
        send_signal(self.pid_of(node)?, TestSignal::Cont)
    }

    /// Wait until every replica has applied the primary's `@@gtid_binlog_pos` as of now.
    pub async fn wait_replicas_caught_up(&self, timeout: Duration) -> Result<()> {
        let target: String = self
            .admin_scalar(0, "SELECT @@gtid_binlog_pos")
            .await?
            .unwrap_or_default();
        let seconds = timeout.as_secs_f64();
        for replica in 1..self.nodes.len() {
            let mut conn = self.admin_conn(replica).await?;
            let reached: Option<i64> = conn
                .exec_first("SELECT MASTER_GTID_WAIT(?, ?)", (target.as_str(), seconds))
                .await?;
            conn.disconnect().await?;
            if reached != Some(0) {
                return Err(TestkitError::Timeout {
                    what: format!("node{replica} to reach GTID {target}"),
                    seconds,
                });
            }
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const SAMPLE: &str = "export RWPROXY_CLUSTER_NAME=main\n\
        export RWPROXY_CLUSTER_DIR=/tmp/with\\ space/cluster-main\n\
        export RWPROXY_CLUSTER_NODES=2\n\
        export RWPROXY_NODE0_PORT=3316\n\
        export RWPROXY_NODE0_SOCKET=/s0\n\
        export RWPROXY_NODE0_PIDFILE=/p0\n\
        export RWPROXY_NODE1_PORT=3317\n\
        export RWPROXY_NODE1_SOCKET=/s1\n\
        export RWPROXY_NODE1_PIDFILE=/p1\n\
        export APP_DB_USER=app\nexport APP_DB_PASSWORD=app_pass\n\
        export MONITOR_USER=monitor\nexport MONITOR_PASSWORD=monitor_pass\n\
        export ADMIN_DB_USER=admin\nexport ADMIN_DB_PASSWORD=admin_pass\n\
        export REPL_USER=repl\nexport REPL_PASSWORD=repl_pass\n";

    #[test]
    fn parses_env_output() {
        let info = ClusterInfo::from_env_output(SAMPLE).unwrap();
        assert_eq!(info.name, "main");
        assert_eq!(info.dir, PathBuf::from("/tmp/with space/cluster-main"));
        assert_eq!(info.nodes.len(), 2);
        assert_eq!(info.primary().port, 3316);
        assert_eq!(info.replicas()[0].port, 3317);
        assert_eq!(info.replicas()[0].pid_file, PathBuf::from("/p1"));
        assert_eq!(info.app, Credentials::new("app", "app_pass"));
        assert_eq!(info.addresses(), vec!["127.0.0.1:3316", "127.0.0.1:3317"]);
    }

    #[test]
    fn missing_variable_is_reported() {
        let text = SAMPLE.replace("export REPL_PASSWORD=repl_pass\n", "");
        match ClusterInfo::from_env_output(&text) {
            Err(TestkitError::MissingClusterVar(key)) => assert_eq!(key, "REPL_PASSWORD"),
            other => panic!("expected MissingClusterVar, got {other:?}"),
        }
    }

    #[test]
    fn bad_port_is_reported() {
        let text = SAMPLE.replace("NODE1_PORT=3317", "NODE1_PORT=70000");
        assert!(matches!(
            ClusterInfo::from_env_output(&text),
            Err(TestkitError::InvalidClusterVar { .. })
        ));
    }
}
