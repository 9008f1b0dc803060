//! Helpers shared by the accounts / drop-in tests: a proxy that reads its accounts from the
//! primary, throwaway database accounts with unique names, and the admin endpoint.

use std::path::PathBuf;
use std::sync::atomic::{AtomicU32, Ordering};
use std::time::Duration;

use mysql_async::prelude::Queryable;
use mysql_async::{Conn, Opts, ServerError};
use rwproxy_testkit::{Cluster, ClusterInfo, Credentials, ProxyProcess, StandardConfig};

/// How long a proxy may take to see its primary and every replica as usable.
const ROUTABLE_TIMEOUT: Duration = Duration::from_secs(15);

/// The rwproxy binary under test.
pub fn proxy_bin() -> PathBuf {
    rwproxy_testkit::paths::proxy_bin_or(env!("CARGO_BIN_EXE_rwproxy"))
}

/// The shared cluster (primary 3316, replicas 3317 and 3318 by default).
pub fn cluster() -> &'static ClusterInfo {
    Cluster::shared()
}

/// The standard configuration with only the `app` user in YAML, accounts read from the
/// primary, refreshed every second.
pub fn accounts_config(cluster: &ClusterInfo) -> StandardConfig {
    let mut config = StandardConfig::new(cluster);
    config.extra = "users_from_backend: true\naccounts_refresh_interval: 1s\n".to_string();
    config
}

/// Start the proxy with [`accounts_config`] and wait until it routes to the primary and to
/// every replica.
pub async fn start_accounts_proxy() -> ProxyProcess {
    let cluster = cluster();
    let proxy = match ProxyProcess::start(proxy_bin(), &accounts_config(cluster).to_yaml()) {
        Ok(p) => p,
        Err(e) => panic!("{e}"),
    };
    wait_routable(&proxy, cluster.nodes.len(), cluster.replicas().len()).await;
    proxy
}

/// Polls `/backends` until one primary is known and `readable` backends (out of `total`) are
/// readable replicas.
pub async fn wait_routable(proxy: &ProxyProcess, total: usize, readable: usize) {
    if let Err(last) = proxy.wait_topology(total, readable, ROUTABLE_TIMEOUT).await {
        panic!(
            "the proxy did not become routable within {ROUTABLE_TIMEOUT:?}; last /backends: \
             {last}\n--- proxy log ---\n{}",
            proxy.log_tail(40)
        );
    }
}

/// A name no other test (or test process) uses, short enough for a MariaDB user name.
pub fn unique_name(tag: &str) -> String {
    static COUNTER: AtomicU32 = AtomicU32::new(0);
    let n = COUNTER.fetch_add(1, Ordering::Relaxed);
    let name = format!("rw{tag}{}x{n}", std::process::id());
    assert!(name.len() <= 80, "user name too long: {name}");
    name
}

/// A table name in schema `app` that no other test uses.
pub fn unique_table(tag: &str) -> String {
    format!("t_{}", unique_name(tag))
}

/// A database account on the shared cluster, created with `CREATE USER … IDENTIFIED BY` on the
/// primary (replicated to the replicas), with ALL on `app`.*. Dropped (best effort) on drop.
pub struct TempAccount {
    pub creds: Credentials,
}

impl TempAccount {
    /// Creates the account and waits until every replica has it too.
    pub async fn create(tag: &str, password: &str) -> TempAccount {
        let cluster = cluster();
        let name = unique_name(tag);
        cluster
            .admin_exec(
                0,
                &format!(
                    "CREATE USER '{name}'@'%' IDENTIFIED BY '{password}'; \
                     GRANT ALL ON app.* TO '{name}'@'%'"
                ),
            )
            .await
            .unwrap_or_else(|e| panic!("creating account {name}: {e}"));
        caught_up().await;
        TempAccount {
            creds: Credentials::new(&name, password),
        }
    }

    pub fn name(&self) -> &str {
        &self.creds.user
    }

    /// The same account with another password (for logins, not a change on the server).
    pub fn with_password(&self, password: &str) -> Credentials {
        Credentials::new(&self.creds.user, password)
    }
}

impl Drop for TempAccount {
    fn drop(&mut self) {
        drop_user_blocking(&format!("DROP USER IF EXISTS '{}'@'%'", self.creds.user));
    }
}

/// Run a statement as admin on the primary from a destructor (no runtime there to borrow).
pub fn drop_user_blocking(sql: &str) {
    let sql = sql.to_string();
    let result = std::thread::spawn(move || {
        let rt = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .map_err(|e| e.to_string())?;
        rt.block_on(async { cluster().admin_exec(0, &sql).await })
            .map_err(|e| e.to_string())
    })
    .join();
    if let Ok(Err(e)) = result {
        eprintln!("warning: cleaning up an account: {e}");
    }
}

/// Wait until the replicas have applied everything the primary has.
pub async fn caught_up() {
    cluster()
        .wait_replicas_caught_up(Duration::from_secs(10))
        .await
        .unwrap_or_else(|e| panic!("replicas did not catch up: {e}"));
}

/// `mysql_async` options for `creds` through the proxy, schema `app`.
pub fn opts_via(proxy: &ProxyProcess, creds: &Credentials) -> mysql_async::OptsBuilder {
    proxy.opts(creds, Some("app"))
}

/// Log in through the proxy: the session, or the client error.
pub async fn try_login(
    proxy: &ProxyProcess,
    creds: &Credentials,
) -> Result<Conn, mysql_async::Error> {
    let opts: Opts = opts_via(proxy, creds).into();
    Conn::new(opts).await
}

/// Log in through the proxy; panics with the proxy log on failure.
pub async fn login(proxy: &ProxyProcess, creds: &Credentials) -> Conn {
    match try_login(proxy, creds).await {
        Ok(conn) => conn,
        Err(e) => panic!(
            "logging in as {} through rwproxy: {e}\n--- proxy log ---\n{}",
            creds.user,
            proxy.log_tail(40)
        ),
    }
}

/// The server error of a failed login; panics on a success or another kind of failure.
pub fn refused(result: Result<Conn, mysql_async::Error>, proxy: &ProxyProcess) -> ServerError {
    match result {
        Ok(_) => panic!(
            "the login was accepted\n--- proxy log ---\n{}",
            proxy.log_tail(20)
        ),
        Err(mysql_async::Error::Server(e)) => e,
        Err(other) => panic!(
            "expected an ERR packet, got {other:?}\n--- proxy log ---\n{}",
            proxy.log_tail(20)
        ),
    }
}

/// `(@@server_id, CURRENT_USER())` of the server answering `sql`'s first row.
pub async fn who_answers(conn: &mut Conn, sql: &str) -> (u32, String) {
    match conn.query_first::<(u32, String), _>(sql).await {
        Ok(Some(row)) => row,
        Ok(None) => panic!("{sql}: no row"),
        Err(e) => panic!("{sql}: {e}"),
    }
}

/// `@@server_id` of every node, primary first.
pub async fn server_ids() -> Vec<u32> {
    let cluster = cluster();
    let mut ids = Vec::new();
    for node in &cluster.nodes {
        ids.push(
            cluster
                .server_id_of(node.port)
                .await
                .unwrap_or_else(|e| panic!("@@server_id of port {}: {e}", node.port)),
        );
    }
    ids
}
