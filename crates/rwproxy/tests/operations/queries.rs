//! Per-query statistics (`/queries`, `rwproxy_query_digest_*`): statements of the same shape
//! with different literals are one digest with the right counts; distinct shapes beyond
//! `stats.max_digests` fold into `other` without losing a call; the Prometheus export holds only
//! the top `stats.export_top` and passes promtool; `?reset=1` clears.

use mysql_async::prelude::Queryable;
use rwproxy_testkit::ProxyProcess;

use crate::admin::promtool_check;
use crate::support::{admin_json, app_via, config_for, proxy_bin, scrape, shared, wait_routable};

async fn start(stats: &str) -> ProxyProcess {
    let cluster = shared();
    let yaml = config_for(cluster, &format!("stats: {stats}\n")).to_yaml();
    let proxy = match ProxyProcess::start(proxy_bin(), &yaml) {
        Ok(p) => p,
        Err(e) => panic!("starting rwproxy: {e}"),
    };
    wait_routable(&proxy, cluster.replicas().len(), None).await;
    proxy
}

/// Runs `count` statements `make(i)` over `clients` sessions.
async fn run(proxy: &ProxyProcess, clients: usize, count: usize, make: fn(usize) -> String) {
    let cluster = shared();
    let mut tasks = Vec::new();
    for c in 0..clients {
        let mut conn = app_via(proxy, cluster).await;
        tasks.push(tokio::spawn(async move {
            let mut i = c;
            while i < count {
                conn.query_drop(make(i)).await.unwrap();
                i += clients;
            }
            conn.disconnect().await.unwrap();
        }));
    }
    for t in tasks {
        t.await.unwrap();
    }
}

fn pseudo_random(i: usize) -> u64 {
    (i as u64)
        .wrapping_mul(6364136223846793005)
        .wrapping_add(1442695040888963407)
        >> 33
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn fifty_shapes_with_random_literals_are_fifty_digests() {
    let proxy = start("{ max_digests: 1000, export_top: 5 }").await;
    run(&proxy, 4, 10_000, |i| {
        let shape = i % 50;
        // Literals vary, as do case, spacing and comments.
        match i % 3 {
            0 => format!("SELECT {} AS c{shape}", pseudo_random(i)),
            1 => format!("select   '{}'  as c{shape} -- note", pseudo_random(i)),
            _ => format!("/* app */ SELECT {}.5 AS c{shape}", pseudo_random(i)),
        }
    })
    .await;
    let doc = admin_json(&proxy, "/queries?sort=calls&limit=1000").await;
    let digests = doc["digests"].as_array().cloned().unwrap_or_default();
    let ours: Vec<_> = digests
        .iter()
        .filter(|d| {
            d["text"]
                .as_str()
                .is_some_and(|t| t.starts_with("select ? as c"))
        })
        .collect();
    assert_eq!(ours.len(), 50, "{doc:#}");
    for d in &ours {
        assert_eq!(d["calls"], 200, "{d}");
        assert_eq!(d["errors"], 0);
        assert_eq!(d["rows"], 200);
        assert_eq!(d["user"], "app");
        assert_eq!(d["schema"], "app");
        assert_eq!(d["role"], "replica");
        assert!(d["digest"].as_str().is_some_and(|h| h.len() == 16));
    }
    // Sorted by calls, then the id: stable.
    let calls: Vec<u64> = digests.iter().filter_map(|d| d["calls"].as_u64()).collect();
    assert!(calls.windows(2).all(|w| w[0] >= w[1]));

    // Prometheus: only the top 5, and the exposition is valid.
    let text = scrape(&proxy, None).await;
    let series = text
        .lines()
        .filter(|l| l.starts_with("rwproxy_query_digest_calls_total{"))
        .count();
    assert_eq!(series, 5, "{text}");
    assert!(text.contains("text=\"select ? as c"), "{text}");
    promtool_check(&text);

    // Errors are counted per digest.
    let mut conn = app_via(&proxy, shared()).await;
    assert!(conn
        .query_drop("SELECT * FROM no_such_table_q")
        .await
        .is_err());
    drop(conn);
    let doc = admin_json(&proxy, "/queries?sort=errors&limit=1").await;
    assert_eq!(doc["digests"][0]["text"], "select * from no_such_table_q");
    assert_eq!(doc["digests"][0]["errors"], 1);

    // Reset.
    let _ = admin_json(&proxy, "/queries?reset=1").await;
    let doc = admin_json(&proxy, "/queries").await;
    assert_eq!(doc["tracked"], 0, "{doc}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn five_thousand_shapes_stay_within_max_digests() {
    let proxy = start("{ max_digests: 100, export_top: 10 }").await;
    run(&proxy, 4, 5_000, |i| format!("SELECT 1 AS shape{i}")).await;
    // A statement is counted once its reply is relayed: the client may read the last reply a
    // moment before its statement is counted.
    let counted = |doc: &serde_json::Value| {
        let shapes: u64 = doc["digests"]
            .as_array()
            .into_iter()
            .flatten()
            .filter(|d| d["text"].as_str().is_some_and(|t| t.contains("as shape")))
            .map(|d| d["calls"].as_u64().unwrap_or(0))
            .sum();
        shapes + doc["other"]["calls"].as_u64().unwrap_or(0)
    };
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(5);
    let mut doc = admin_json(&proxy, "/queries?limit=1000").await;
    while counted(&doc) < 5_000 && std::time::Instant::now() < deadline {
        tokio::time::sleep(std::time::Duration::from_millis(50)).await;
        doc = admin_json(&proxy, "/queries?limit=1000").await;
    }
    // Each data-path thread fills its own shard (max_digests / threads entries).
    let tracked_entries = doc["tracked"].as_u64().unwrap_or(0);
    assert!(
        (50..=100).contains(&tracked_entries),
        "tracked {tracked_entries}: {doc}"
    );
    let tracked: u64 = doc["digests"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|d| d["text"].as_str().is_some_and(|t| t.contains("as shape")))
        .map(|d| d["calls"].as_u64().unwrap())
        .sum();
    let other = doc["other"]["calls"].as_u64().unwrap();
    // Every statement is counted once (a few of rwproxy's own are not in this table).
    assert!(
        tracked + other >= 5_000,
        "tracked {tracked} + other {other}"
    );
    assert!(
        tracked + other <= 5_100,
        "tracked {tracked} + other {other}"
    );
    let text = scrape(&proxy, None).await;
    let series = text
        .lines()
        .filter(|l| l.starts_with("rwproxy_query_digest_calls_total{"))
        .count();
    assert_eq!(series, 10);
    promtool_check(&text);
}

#[tokio::test]
async fn digests_can_be_turned_off() {
    let proxy = start("{ digests: false }").await;
    run(&proxy, 1, 20, |i| format!("SELECT {i}")).await;
    let doc = admin_json(&proxy, "/queries").await;
    assert_eq!(doc["tracked"], 0, "{doc}");
    let (status, _) = proxy.admin_get("/queries?sort=bogus").await.unwrap();
    assert_eq!(status, 400);
}

/// A prepared statement is fingerprinted once (at its first execute) and counted at every
/// execute, under the digest its text has when sent as a plain statement.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn prepared_statements_count_under_the_digest_of_their_text() {
    let proxy = start("{ max_digests: 1000, export_top: 5 }").await;
    let cluster = shared();
    let mut conn = app_via(&proxy, cluster).await;
    let stmt = conn
        .prep("SELECT ? + 1 AS prepared_digest_probe")
        .await
        .unwrap();
    for i in 0..25i64 {
        let got: Option<i64> = conn.exec_first(&stmt, (i,)).await.unwrap();
        assert_eq!(got, Some(i + 1));
    }
    conn.query_drop("SELECT 7 + 1 AS prepared_digest_probe")
        .await
        .unwrap();
    conn.disconnect().await.unwrap();
    let doc = admin_json(&proxy, "/queries?sort=calls&limit=1000").await;
    let ours: Vec<_> = doc["digests"]
        .as_array()
        .cloned()
        .unwrap_or_default()
        .into_iter()
        .filter(|d| d["text"] == "select ? + ? as prepared_digest_probe")
        .collect();
    assert_eq!(ours.len(), 1, "{doc:#}");
    assert_eq!(ours[0]["calls"], 26, "{doc:#}");
    assert_eq!(ours[0]["rows"], 26);
    assert_eq!(ours[0]["errors"], 0);
}
