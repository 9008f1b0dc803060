//! Configuration reloads under a running proxy (shared cluster): an edited file reroutes the
//! next statement of a session that is already open, a broken file changes nothing but the
//! failure counter, SIGHUP reloads, and a hundred reloads in a row break no query.

use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use mysql_async::prelude::Queryable;
use rwproxy_testkit::{ClusterInfo, ProxyProcess};

use crate::support::{
    admin_json, app_via, config_for, must_metric, proxy_bin, reloads, scrape, server_id, shared,
    start_routable, unique_table, wait_reloads, wait_routable,
};

/// A rule that sends exactly `SELECT @@server_id` to `route`.
fn server_id_rule(route: &str) -> String {
    format!(
        "routing:\n  rules:\n    - match: '(?i)^\\s*select\\s+@@server_id\\s*$'\n      route: {route}\n"
    )
}

fn yaml(cluster: &ClusterInfo, extra: &str) -> String {
    config_for(cluster, extra).to_yaml()
}

/// Primary and replica server ids of the shared cluster.
async fn ids(cluster: &ClusterInfo) -> (u32, Vec<u32>) {
    let mut all = Vec::new();
    for node in &cluster.nodes {
        all.push(cluster.server_id_of(node.port).await.unwrap());
    }
    (all[0], all[1..].to_vec())
}

/// Run `SELECT @@server_id` on `session` until `want` answers (bounded by `timeout`).
async fn wait_for_server_id(
    session: &mut mysql_async::Conn,
    proxy: &ProxyProcess,
    want: u32,
    timeout: Duration,
    what: &str,
) {
    let deadline = Instant::now() + timeout;
    loop {
        let id = server_id(session, proxy).await;
        if id == want {
            return;
        }
        assert!(
            Instant::now() < deadline,
            "timed out waiting for {what}: still answered by {id}\n--- proxy log ---\n{}",
            proxy.log_tail(20)
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

/// Clients running a mix of statements until told to stop; they count what failed.
struct Load {
    stop: Arc<AtomicBool>,
    ok: Arc<AtomicU64>,
    failed: Arc<AtomicU64>,
    errors: Arc<Mutex<Vec<String>>>,
    tasks: Vec<tokio::task::JoinHandle<()>>,
    cluster: &'static ClusterInfo,
    tables: Vec<String>,
}

impl Load {
    async fn start(proxy: &ProxyProcess, cluster: &'static ClusterInfo, clients: usize) -> Load {
        let stop = Arc::new(AtomicBool::new(false));
        let ok = Arc::new(AtomicU64::new(0));
        let failed = Arc::new(AtomicU64::new(0));
        let errors = Arc::new(Mutex::new(Vec::new()));
        let mut tasks = Vec::new();
        let port = proxy.port;
        let mut tables = Vec::new();
        for _ in 0..clients {
            let table = unique_table("load");
            let mut setup = app_via(proxy, cluster).await;
            setup
                .query_drop(format!(
                    "CREATE TABLE {table} (id INT AUTO_INCREMENT PRIMARY KEY, n INT NOT NULL)"
                ))
                .await
                .unwrap();
            setup.disconnect().await.unwrap();
            tables.push(table);
        }
        // The clients' sessions are new (they never wrote), so their reads may go to a replica
        // at once: the tables must be there first.
        cluster
            .wait_replicas_caught_up(Duration::from_secs(10))
            .await
            .unwrap();
        for (client, table) in tables.iter().cloned().enumerate() {
            let (stop, ok, failed, errors) =
                (stop.clone(), ok.clone(), failed.clone(), errors.clone());
            tasks.push(tokio::spawn(async move {
                let mut round: u64 = 0;
                while !stop.load(Ordering::Relaxed) {
                    // A new session every 25 statements exercises logins during reloads too.
                    let opts = rwproxy_testkit::client_opts(port, &cluster.app, Some("app"));
                    let mut conn = match mysql_async::Conn::new(opts).await {
                        Ok(c) => c,
                        Err(e) => {
                            failed.fetch_add(1, Ordering::Relaxed);
                            errors
                                .lock()
                                .unwrap()
                                .push(format!("client {client} login: {e}"));
                            continue;
                        }
                    };
                    for _ in 0..25 {
                        round += 1;
                        let result = match round % 5 {
                            0 => conn
                                .query_drop(format!("INSERT INTO {table} (n) VALUES ({round})"))
                                .await
                                .map(drop),
                            1 => conn
                                .query_first::<u32, _>("SELECT @@server_id")
                                .await
                                .map(drop),
                            2 => conn
                                .exec_first::<i64, _, _>(
                                    format!("SELECT COUNT(*) FROM {table} WHERE n <= ?"),
                                    (round,),
                                )
                                .await
                                .map(drop),
                            3 => conn
                                .query_first::<Option<i64>, _>(format!(
                                    "SELECT MAX(n) FROM {table}"
                                ))
                                .await
                                .map(drop),
                            _ => conn.query_first::<i64, _>("SELECT 1").await.map(drop),
                        };
                        match result {
                            Ok(()) => {
                                ok.fetch_add(1, Ordering::Relaxed);
                            }
                            Err(e) => {
                                failed.fetch_add(1, Ordering::Relaxed);
                                errors.lock().unwrap().push(format!("client {client}: {e}"));
                            }
                        }
                    }
                    let _ = conn.disconnect().await;
                }
            }));
        }
        Load {
            cluster,
            tables,
            stop,
            ok,
            failed,
            errors,
            tasks,
        }
    }

    /// Stops the clients; (statements that succeeded, statements that failed, first errors).
    async fn finish(self) -> (u64, u64, Vec<String>) {
        self.stop.store(true, Ordering::Relaxed);
        for task in self.tasks {
            task.await.unwrap();
        }
        for table in &self.tables {
            self.cluster
                .admin_exec(0, &format!("DROP TABLE IF EXISTS app.{table}"))
                .await
                .unwrap();
        }
        let errors = self
            .errors
            .lock()
            .unwrap()
            .iter()
            .take(5)
            .cloned()
            .collect();
        (
            self.ok.load(Ordering::Relaxed),
            self.failed.load(Ordering::Relaxed),
            errors,
        )
    }
}

#[tokio::test]
async fn an_edited_file_reroutes_the_next_statement_of_an_open_session() {
    let cluster = shared();
    let (primary, replicas) = ids(cluster).await;
    let proxy = start_routable(cluster, &yaml(cluster, "")).await;
    let mut session = app_via(&proxy, cluster).await;
    for _ in 0..4 {
        let id = server_id(&mut session, &proxy).await;
        assert!(
            replicas.contains(&id),
            "before the edit SELECT @@server_id must be read from a replica, got {id}"
        );
    }
    let load = Load::start(&proxy, cluster, 4).await;

    proxy
        .rewrite_config(&yaml(cluster, &server_id_rule("primary")))
        .unwrap();
    let started = Instant::now();
    wait_for_server_id(
        &mut session,
        &proxy,
        primary,
        Duration::from_secs(10),
        "the open session's SELECT @@server_id to reach the primary",
    )
    .await;
    println!(
        "the open session was rerouted {:.2}s after the edit",
        started.elapsed().as_secs_f64()
    );
    // It stays rerouted: every later statement of that session goes to the primary.
    for _ in 0..6 {
        assert_eq!(server_id(&mut session, &proxy).await, primary);
    }
    let text = wait_reloads(&proxy, 1.0, 0.0).await;
    assert_eq!(reloads(&text), (1.0, 0.0));
    let config = admin_json(&proxy, "/config").await;
    let rules = config["routing"]["rules"]
        .as_array()
        .cloned()
        .unwrap_or_default();
    assert_eq!(rules.len(), 1, "/config after the edit: {config}");

    let (ok, failed, errors) = load.finish().await;
    println!("clients during the edit: {ok} statements succeeded, {failed} failed");
    assert!(ok > 0, "the background clients ran nothing");
    assert_eq!(failed, 0, "statements failed during the reload: {errors:?}");
    session.disconnect().await.unwrap();
}

#[tokio::test]
async fn a_broken_file_leaves_the_running_configuration_in_place() {
    let cluster = shared();
    let (primary, _) = ids(cluster).await;
    let proxy = start_routable(cluster, &yaml(cluster, &server_id_rule("primary"))).await;
    let mut session = app_via(&proxy, cluster).await;
    assert_eq!(server_id(&mut session, &proxy).await, primary);
    let config_before = admin_json(&proxy, "/config").await;
    let text = scrape(&proxy, None).await;
    assert_eq!(reloads(&text), (0.0, 0.0));
    let hash_before = config_hash(&text);

    // Each broken file would, if applied, send SELECT @@server_id to a replica.
    let replica_rule = yaml(cluster, &server_id_rule("replica"));
    let broken = [
        (
            "bad YAML",
            format!("{replica_rule}backends_extra: [unclosed, {{\n"),
        ),
        (
            "bad regex",
            yaml(
                cluster,
                "routing:\n  rules:\n    - { match: '(?i)^select @@server_id(', route: replica }\n",
            ),
        ),
        (
            "unknown key",
            yaml(cluster, "routing:\n  consistancy: eventual\n"),
        ),
    ];
    for (n, (what, file)) in broken.iter().enumerate() {
        proxy.rewrite_config(file).unwrap();
        let text = wait_reloads(&proxy, 0.0, (n + 1) as f64).await;
        assert_eq!(
            reloads(&text),
            (0.0, (n + 1) as f64),
            "{what}: the reload counters"
        );
        assert_eq!(
            config_hash(&text),
            hash_before,
            "{what}: rwproxy_config_info"
        );
        assert_eq!(
            admin_json(&proxy, "/config").await,
            config_before,
            "{what}: /config changed"
        );
        for _ in 0..4 {
            assert_eq!(
                server_id(&mut session, &proxy).await,
                primary,
                "{what}: the open session's routing changed"
            );
        }
        let mut fresh = app_via(&proxy, cluster).await;
        assert_eq!(
            server_id(&mut fresh, &proxy).await,
            primary,
            "{what}: a new session's routing changed"
        );
        fresh.disconnect().await.unwrap();
        assert!(
            proxy.log_text().contains("configuration reload rejected")
                || proxy.log_text().contains("configuration reload failed"),
            "{what}: the rejection is not logged:\n{}",
            proxy.log_tail(20)
        );
    }
    session.disconnect().await.unwrap();
}

/// The `hash` label of `rwproxy_config_info`.
fn config_hash(text: &str) -> String {
    let line = text
        .lines()
        .find(|l| l.starts_with("rwproxy_config_info{"))
        .unwrap_or_else(|| panic!("no rwproxy_config_info in:\n{text}"));
    line.split('"').nth(1).unwrap_or_default().to_string()
}

#[tokio::test]
async fn sighup_reloads_a_change_the_file_watcher_cannot_see() {
    let cluster = shared();
    let (primary, replicas) = ids(cluster).await;
    let proxy = start_routable(cluster, &yaml(cluster, &server_id_rule("replica"))).await;
    let mut session = app_via(&proxy, cluster).await;
    assert!(replicas.contains(&server_id(&mut session, &proxy).await));

    // Same length, same modification time: only SIGHUP can notice the new rule.
    let old_text = std::fs::read_to_string(&proxy.config_path).unwrap();
    let new_text = old_text.replace("route: replica", "route: primary");
    assert_eq!(old_text.len(), new_text.len());
    let mtime = std::fs::metadata(&proxy.config_path)
        .unwrap()
        .modified()
        .unwrap();
    let tmp = proxy.config_path.with_extension("sighup-tmp");
    std::fs::write(&tmp, &new_text).unwrap();
    std::fs::File::options()
        .write(true)
        .open(&tmp)
        .unwrap()
        .set_modified(mtime)
        .unwrap();
    std::fs::rename(&tmp, &proxy.config_path).unwrap();

    proxy.sighup().unwrap();
    wait_for_server_id(
        &mut session,
        &proxy,
        primary,
        Duration::from_secs(5),
        "SELECT @@server_id to reach the primary after SIGHUP",
    )
    .await;
    let text = wait_reloads(&proxy, 1.0, 0.0).await;
    assert_eq!(reloads(&text), (1.0, 0.0));
    let log = proxy.log_text();
    let line = log
        .lines()
        .find(|l| l.contains("configuration reloaded"))
        .unwrap_or_else(|| panic!("no reload logged:\n{}", proxy.log_tail(20)));
    assert!(
        line.contains("SIGHUP"),
        "the reload was not the SIGHUP's: {line}"
    );
    session.disconnect().await.unwrap();
}

#[tokio::test]
async fn a_hundred_reloads_under_load_fail_no_query() {
    const RELOADS: usize = 100;
    let cluster = shared();
    let files = [
        yaml(cluster, &server_id_rule("primary")),
        yaml(
            cluster,
            &format!(
                "{}  replica_balance: least_connections\n",
                server_id_rule("replica")
            ),
        ),
    ];
    let proxy = start_routable(cluster, &files[0]).await;
    let before = scrape(&proxy, None).await;
    let (success_before, failure_before) = reloads(&before);
    let load = Load::start(&proxy, cluster, 4).await;

    let started = Instant::now();
    for n in 1..=RELOADS {
        proxy.rewrite_config(&files[n % 2]).unwrap();
        proxy.sighup().unwrap();
        wait_reloads(&proxy, success_before + n as f64, 0.0).await;
    }
    let took = started.elapsed();
    // Let the clients run a little on the last configuration too.
    let settle = scrape(&proxy, None).await;
    let (ok, failed, errors) = load.finish().await;
    let (success, failure) = reloads(&settle);
    println!(
        "{RELOADS} reloads in {:.1}s: reloads success={} failure={}; clients: {ok} statements \
         succeeded, {failed} failed",
        took.as_secs_f64(),
        success - success_before,
        failure - failure_before
    );
    assert_eq!(success - success_before, RELOADS as f64);
    assert_eq!(failure, failure_before);
    assert!(ok > 0, "the clients ran nothing");
    assert_eq!(
        failed, 0,
        "statements failed during the reloads: {errors:?}"
    );
    assert!(
        must_metric(
            &settle,
            "rwproxy_routing_decisions_total",
            &[("reason", "rule")]
        ) > 0.0,
        "the rule of the two files never matched"
    );
}

/// Kubernetes mounts a ConfigMap as `rwproxy.yaml -> ..data/rwproxy.yaml` and updates it by
/// renaming a new `..data` link over the old one; a `subPath` mount or a `cat >` rewrites the
/// file in place. Both reload, and no update is read half-written.
#[tokio::test]
async fn configmap_symlink_swaps_and_in_place_overwrites_both_reload() {
    let cluster = shared();
    let (primary, replicas) = ids(cluster).await;
    let proxy = match ProxyProcess::start_configmap(proxy_bin(), &yaml(cluster, "")) {
        Ok(proxy) => proxy,
        Err(e) => panic!("starting rwproxy: {e}"),
    };
    wait_routable(&proxy, cluster.replicas().len(), None).await;
    let mut session = app_via(&proxy, cluster).await;
    assert!(replicas.contains(&server_id(&mut session, &proxy).await));

    // The kubelet's atomic swap of `..data`.
    proxy
        .swap_configmap(&yaml(cluster, &server_id_rule("primary")))
        .unwrap();
    wait_for_server_id(
        &mut session,
        &proxy,
        primary,
        Duration::from_secs(10),
        "the ConfigMap swap to send SELECT @@server_id to the primary",
    )
    .await;
    wait_reloads(&proxy, 1.0, 0.0).await;

    // A second swap, back: the watcher follows the link again, not the old file.
    proxy.swap_configmap(&yaml(cluster, "")).unwrap();
    let deadline = Instant::now() + Duration::from_secs(10);
    while !replicas.contains(&server_id(&mut session, &proxy).await) {
        assert!(Instant::now() < deadline, "the second swap was not applied");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    wait_reloads(&proxy, 2.0, 0.0).await;

    // Overwritten in place (same inode).
    proxy
        .overwrite_config_in_place(&yaml(cluster, &server_id_rule("primary")))
        .unwrap();
    wait_for_server_id(
        &mut session,
        &proxy,
        primary,
        Duration::from_secs(10),
        "the in-place overwrite to send SELECT @@server_id to the primary",
    )
    .await;
    let text = wait_reloads(&proxy, 3.0, 0.0).await;
    assert_eq!(reloads(&text), (3.0, 0.0), "no update was read as broken");
    session.disconnect().await.unwrap();
}
