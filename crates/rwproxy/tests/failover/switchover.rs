//! A planned switchover driven by rwproxy (`rwproxy switchover`, `POST /switchover`): under a
//! write load of autocommit writes and transactions, no client sees an error; the new primary
//! takes the writes; the old primary and the other replica replicate from it; an idle session
//! with state continues on the new primary. Refusals change nothing (issue #16 item 4).

use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};

use mysql_async::prelude::Queryable;
use rwproxy_testkit::{ProxyProcess, ThrowawayCluster};

use crate::support::*;

const CLUSTER: &str = "fo-switchover";
const BASE_PORT: u16 = 3518;
const TOKEN: &str = "switch-token-4b1d";

fn yaml(cluster: &ThrowawayCluster) -> String {
    switchover_yaml(cluster, TOKEN)
}

async fn post(proxy: &ProxyProcess, path: &str, token: Option<&str>) -> (u16, String) {
    admin_post(proxy, path, token).await
}

struct Load {
    stop: Arc<AtomicBool>,
    ok: Arc<AtomicU64>,
    errors: Arc<Mutex<Vec<String>>>,
    tasks: Vec<tokio::task::JoinHandle<()>>,
}

async fn start_load(proxy: &ProxyProcess, cluster: &ThrowawayCluster) -> Load {
    let stop = Arc::new(AtomicBool::new(false));
    let ok = Arc::new(AtomicU64::new(0));
    let errors = Arc::new(Mutex::new(Vec::new()));
    let mut tasks = Vec::new();
    for client in 0..6u32 {
        let mut conn = app_via(proxy, cluster).await;
        let (stop, ok, errors) = (stop.clone(), ok.clone(), errors.clone());
        tasks.push(tokio::spawn(async move {
            let mut i = 0u32;
            while !stop.load(Ordering::Relaxed) {
                i += 1;
                let r = if client % 2 == 0 {
                    conn.query_drop(format!(
                        "INSERT INTO t_switch (client, n, server) VALUES ({client}, {i}, @@server_id)"
                    ))
                    .await
                } else {
                    async {
                        conn.query_drop("BEGIN").await?;
                        conn.query_drop(format!(
                            "INSERT INTO t_switch (client, n, server) VALUES ({client}, {i}, @@server_id)"
                        ))
                        .await?;
                        conn.query_drop("SELECT COUNT(*) FROM t_switch").await?;
                        conn.query_drop("COMMIT").await
                    }
                    .await
                };
                match r {
                    Ok(()) => {
                        ok.fetch_add(1, Ordering::Relaxed);
                    }
                    Err(e) => errors.lock().unwrap().push(format!("client {client}: {e}")),
                }
            }
        }));
    }
    Load {
        stop,
        ok,
        errors,
        tasks,
    }
}

impl Load {
    async fn finish(self) -> (u64, Vec<String>) {
        self.stop.store(true, Ordering::Relaxed);
        for t in self.tasks {
            let _ = t.await;
        }
        let errors = self.errors.lock().unwrap().clone();
        (self.ok.load(Ordering::Relaxed), errors)
    }
}

/// rwproxy with `config` and the admin token, once it sees db1 as the primary and both
/// replicas up.
async fn start_settled(config: &str) -> ProxyProcess {
    let mut proxy = match ProxyProcess::start(proxy_bin(), config) {
        Ok(p) => p,
        Err(e) => panic!("{e}"),
    };
    proxy.admin_token = Some(TOKEN.to_string());
    let settled = wait_backends(&proxy, "db1 primary", secs(10), |b| {
        primary_name(b).as_deref() == Some("db1")
            && ["db2", "db3"]
                .iter()
                .all(|n| state_of(b, n).as_deref() == Some("up"))
    })
    .await;
    assert!(settled.is_ok(), "{settled:?}\n{}", proxy.log_tail(20));
    proxy
}

async fn master_port(cluster: &ThrowawayCluster, node: usize) -> Option<u16> {
    let rows = cluster.admin_rows(node, "SHOW SLAVE STATUS").await.ok()?;
    rows.first()?.get::<u16, _>("Master_Port")
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_switchover_under_write_load_costs_no_client_error() {
    let _serial = serial().await;
    let cluster = throwaway(CLUSTER, BASE_PORT);
    admin_exec(
        &cluster,
        0,
        "CREATE TABLE app.t_switch (id INT AUTO_INCREMENT PRIMARY KEY, client INT, n INT, server INT)",
    )
    .await;
    let proxy = start_settled(&yaml(&cluster)).await;
    let mut idle = app_via(&proxy, &cluster).await;
    idle.query_drop("SET SESSION time_zone = '+03:00'")
        .await
        .unwrap();

    // Refusals first: they change nothing.
    assert_eq!(post(&proxy, "/switchover?to=db2", None).await.0, 401);
    assert_eq!(post(&proxy, "/switchover?to=db9", Some(TOKEN)).await.0, 404);
    assert_eq!(post(&proxy, "/switchover?to=db1", Some(TOKEN)).await.0, 409);

    let load = start_load(&proxy, &cluster).await;
    tokio::time::sleep(ms(800)).await;
    // The command-line form.
    let bin = proxy_bin();
    let admin = proxy.admin_addr().to_string();
    let output = tokio::task::spawn_blocking(move || {
        std::process::Command::new(bin)
            .args(["switchover", "--admin", &admin, "--to", "db2"])
            .env("RWPROXY_ADMIN_TOKEN", TOKEN)
            .output()
            .unwrap()
    })
    .await
    .unwrap();
    let stdout = String::from_utf8_lossy(&output.stdout).to_string();
    if !output.status.success() {
        let (ok, errors) = load.finish().await;
        panic!(
            "rwproxy switchover failed: {}{stdout}\nload: {ok} ok, errors: {errors:#?}\n--- proxy log ---\n{}",
            String::from_utf8_lossy(&output.stderr),
            proxy.log_tail(30)
        );
    }
    assert!(
        output.status.success(),
        "rwproxy switchover failed: {}{stdout}\n--- proxy log ---\n{}",
        String::from_utf8_lossy(&output.stderr),
        proxy.log_tail(30)
    );
    let report: serde_json::Value = serde_json::from_str(&stdout).unwrap();
    assert_eq!(report["from"], "db1");
    assert_eq!(report["to"], "db2");
    assert_eq!(report["not_repointed"], serde_json::json!([]), "{report}");
    tokio::time::sleep(ms(800)).await;
    let (ok, errors) = load.finish().await;
    println!("switchover report: {report}; {ok} statements/transactions succeeded");
    assert!(ok > 50, "the load ran only {ok} times");
    assert!(
        errors.is_empty(),
        "client errors during the switchover: {errors:#?}\n{}",
        proxy.log_tail(30)
    );

    let doc = backends(&proxy).await.unwrap();
    assert_eq!(primary_name(&doc).as_deref(), Some("db2"), "{doc}");
    // Writes after the switch ran on server 2; both others replicate from it.
    let mut conn = app_via(&proxy, &cluster).await;
    let server: Option<u32> = conn
        .query_first(
            "INSERT INTO t_switch (client, n, server) VALUES (99, 0, @@server_id) RETURNING server",
        )
        .await
        .unwrap();
    assert_eq!(server, Some(2));
    assert_eq!(master_port(&cluster, 0).await, Some(BASE_PORT + 1));
    assert_eq!(master_port(&cluster, 2).await, Some(BASE_PORT + 1));
    // The idle session continues, with its state, on the new primary.
    let row: Option<(String, u32)> = idle
        .query_first("INSERT INTO t_switch (client, n, server) VALUES (98, 0, @@server_id) RETURNING @@time_zone, server")
        .await
        .unwrap();
    assert_eq!(row, Some(("+03:00".to_string(), 2)));

    // And back, with the HTTP form.
    let (status, body) = post(&proxy, "/switchover?to=db1", Some(TOKEN)).await;
    assert_eq!(status, 200, "{body}\n{}", proxy.log_tail(30));
    let settled = wait_backends(&proxy, "db1 primary again", secs(10), |b| {
        primary_name(b).as_deref() == Some("db1")
    })
    .await;
    assert!(settled.is_ok(), "{settled:?}");
    let server: Option<u32> = conn
        .query_first(
            "INSERT INTO t_switch (client, n, server) VALUES (97, 0, @@server_id) RETURNING server",
        )
        .await
        .unwrap();
    assert_eq!(server, Some(1));
}

/// A write placed on the primary just before the hold, but not yet sent (it waits for the one
/// pooled connection, busy with a statement the server shows in no transaction), is invisible
/// to the server's `INNODB_TRX`: the switchover must wait for it rather than turn the old
/// primary read-only under it (the client got 1290 before rwproxy counted such statements).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_write_placed_before_the_hold_but_not_yet_sent_runs_before_the_old_primary_freezes() {
    let _serial = serial().await;
    let cluster = throwaway(CLUSTER, BASE_PORT);
    admin_exec(
        &cluster,
        0,
        "CREATE TABLE IF NOT EXISTS app.t_switch (id INT AUTO_INCREMENT PRIMARY KEY, client INT, n INT, server INT)",
    )
    .await;
    let proxy = start_settled(
        &(yaml(&cluster) + "pool: { enabled: true, max_per_backend: 1, wait_timeout: 5s }\n"),
    )
    .await;

    // The primary's only connection is busy for 1.5 s with a statement outside any
    // transaction; the insert is placed on the primary meanwhile and waits for that connection.
    let mut busy = app_via(&proxy, &cluster).await;
    let mut writer = app_via(&proxy, &cluster).await;
    let sleeper = tokio::spawn(async move { busy.query_drop("DO SLEEP(1.5)").await });
    tokio::time::sleep(ms(300)).await;
    let insert = tokio::spawn(async move {
        writer
            .query_first::<u32, _>(
                "INSERT INTO t_switch (client, n, server) VALUES (77, 1, @@server_id) RETURNING server",
            )
            .await
    });
    tokio::time::sleep(ms(300)).await;
    let (status, body) = post(&proxy, "/switchover?to=db2", Some(TOKEN)).await;
    let slept = sleeper.await.unwrap();
    let inserted = insert.await.unwrap();
    assert!(slept.is_ok(), "{slept:?}");
    assert_eq!(status, 200, "{body}\n{}", proxy.log_tail(30));
    // It ran on the old primary while that still took writes, and the switchover waited for it.
    assert_eq!(
        inserted.as_ref().ok(),
        Some(&Some(1)),
        "{inserted:?}\nswitchover: {body}\n{}",
        proxy.log_tail(30)
    );
    let on_new: Option<u64> = cluster
        .admin_rows(
            1,
            "SELECT COUNT(*) AS n FROM app.t_switch WHERE client = 77",
        )
        .await
        .ok()
        .and_then(|rows| rows.first().and_then(|r| r.get("n")));
    assert_eq!(on_new, Some(1), "the write is on the new primary");

    // Back to db1 for the next test, once it replicates from db2.
    let settled = wait_backends(&proxy, "db1 a replica", secs(10), |b| {
        state_of(b, "db1").as_deref() == Some("up")
    })
    .await;
    assert!(settled.is_ok(), "{settled:?}");
    let (status, body) = post(&proxy, "/switchover?to=db1", Some(TOKEN)).await;
    assert_eq!(status, 200, "{body}\n{}", proxy.log_tail(30));
    admin_exec(&cluster, 0, "DELETE FROM app.t_switch WHERE client = 77").await;
}
