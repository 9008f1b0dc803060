//! Other languages' drivers through rwproxy: MariaDB Connector/J (`integration/java/run.sh`)
//! and Node's mysql2 (`integration/node/run.sh`). The scripts fail loudly (and so do these
//! tests) when java, javac, the Connector/J jar, node or npm is missing.

use std::path::PathBuf;
use std::process::{Command, Stdio};

use rwproxy_testkit::{repo_root, ProxyProcess};

use crate::support::{cluster, start_accounts_proxy};

/// Runs `bash integration/<script>` against `proxy`; panics with its output unless it exits 0
/// and prints its closing "N passed, 0 failed" line.
fn run_script(script: &str, proxy: &ProxyProcess) -> String {
    let path: PathBuf = repo_root().join("integration").join(script);
    let cluster = cluster();
    let output = Command::new("bash")
        .arg(&path)
        .env("RWPROXY_PORT", proxy.port.to_string())
        .env("PRIMARY_PORT", cluster.primary().port.to_string())
        .env("APP_USER", &cluster.app.user)
        .env("APP_PASSWORD", &cluster.app.password)
        .stdin(Stdio::null())
        .output()
        .unwrap_or_else(|e| panic!("running {}: {e}", path.display()));
    let stdout = String::from_utf8_lossy(&output.stdout).into_owned();
    let stderr = String::from_utf8_lossy(&output.stderr).into_owned();
    let closing = stdout
        .lines()
        .rev()
        .find(|l| !l.trim().is_empty())
        .unwrap_or("");
    assert!(
        output.status.success() && closing.ends_with(" passed, 0 failed"),
        "{} failed ({})\n--- stdout ---\n{stdout}\n--- stderr ---\n{stderr}\n--- proxy log ---\n{}",
        path.display(),
        output.status,
        proxy.log_tail(30)
    );
    stdout
}

#[tokio::test]
async fn mariadb_connector_j_works_through_the_proxy() {
    let proxy = start_accounts_proxy().await;
    let out = run_script("java/run.sh", &proxy);
    assert!(
        out.contains("ok: all 1000 batch rows are on the primary"),
        "{out}"
    );
}

#[tokio::test]
async fn node_mysql2_with_compression_works_through_the_proxy() {
    let proxy = start_accounts_proxy().await;
    let out = run_script("node/run.sh", &proxy);
    assert!(
        out.contains("ok: compressed multi-row result equals the uncompressed one"),
        "{out}"
    );
}
