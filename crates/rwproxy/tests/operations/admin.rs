//! The admin endpoint of a running proxy: metrics that move with the traffic and pass
//! `promtool check metrics`, `/backends` following a killed replica, and the admin token.

use std::io::Write as _;
use std::process::{Command, Stdio};
use std::time::Duration;

use mysql_async::prelude::Queryable;
use rwproxy_testkit::ProxyProcess;

use crate::lag_cluster::lag_cluster;
use crate::support::{
    admin_json, app_via, config_for, http_get, metric, must_metric, poll_until, proxy_bin, scrape,
    server_id, shared, start_routable, unique_table,
};

/// `promtool check metrics` on `text`; fails the test if promtool is missing or complains.
pub(crate) fn promtool_check(text: &str) {
    let mut child = match Command::new("promtool")
        .args(["check", "metrics"])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
    {
        Ok(child) => child,
        Err(e) => panic!(
            "promtool is required for this test and could not be run ({e}); install the \
             Debian package `prometheus` (apt-get install -y prometheus)"
        ),
    };
    child
        .stdin
        .take()
        .unwrap()
        .write_all(text.as_bytes())
        .unwrap();
    let out = child.wait_with_output().unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        out.status.success() && stdout.trim().is_empty() && stderr.trim().is_empty(),
        "promtool check metrics on the scraped /metrics failed ({}):\n{stdout}{stderr}",
        out.status
    );
}

#[tokio::test]
async fn metrics_track_backends_and_routing_and_pass_promtool() {
    let cluster = shared();
    let proxy = start_routable(cluster, &config_for(cluster, "").to_yaml()).await;

    // Lag is measured for the replicas once the monitor has checked them; never for the primary.
    let text = poll_until(Duration::from_secs(10), "replica lag gauges", || async {
        let text = scrape(&proxy, None).await;
        let lag = |b: &str| {
            metric(
                &text,
                "rwproxy_backend_replication_lag_seconds",
                &[("backend", b)],
            )
        };
        if lag("db2").is_some() && lag("db3").is_some() {
            Ok(text)
        } else {
            Err(text.clone())
        }
    })
    .await;
    assert!(
        metric(
            &text,
            "rwproxy_backend_replication_lag_seconds",
            &[("backend", "db1")]
        )
        .is_none(),
        "the primary has no replication lag series"
    );
    for (backend, role) in [("db1", "primary"), ("db2", "replica"), ("db3", "replica")] {
        let one_hot = |name: &str, label: &str, value: &str| {
            must_metric(&text, name, &[("backend", backend), (label, value)])
        };
        assert_eq!(
            one_hot("rwproxy_backend_state", "state", "up"),
            1.0,
            "{backend}"
        );
        assert_eq!(
            one_hot("rwproxy_backend_state", "state", "down"),
            0.0,
            "{backend}"
        );
        assert_eq!(
            one_hot("rwproxy_backend_role", "role", role),
            1.0,
            "{backend}"
        );
        assert_eq!(
            must_metric(&text, "rwproxy_backend_up", &[("backend", backend)]),
            1.0
        );
    }
    assert_eq!(must_metric(&text, "rwproxy_writable_backends", &[]), 1.0);

    // Routing counters move with the statements.
    // The table is made on the primary directly, so that the session's reads below come
    // before any write of its own (reads after a write are causal, with other reasons).
    let table = unique_table("metrics");
    cluster
        .admin_exec(0, &format!("CREATE TABLE app.{table} (id INT PRIMARY KEY)"))
        .await
        .unwrap();
    let mut conn = app_via(&proxy, cluster).await;
    let counter = |text: &str, role: &str, reason: &str| {
        must_metric(
            text,
            "rwproxy_routing_decisions_total",
            &[("role", role), ("reason", reason)],
        )
    };
    let before = scrape(&proxy, None).await;
    for _ in 0..20 {
        server_id(&mut conn, &proxy).await;
    }
    let after_reads = scrape(&proxy, None).await;
    for id in 0..10 {
        conn.query_drop(format!("INSERT INTO {table} VALUES ({id})"))
            .await
            .unwrap();
    }
    let after_writes = scrape(&proxy, None).await;
    let moved = |a: &str, b: &str, role: &str, reason: &str| {
        counter(b, role, reason) - counter(a, role, reason)
    };
    assert_eq!(moved(&before, &after_reads, "replica", "read"), 20.0);
    assert_eq!(moved(&before, &after_reads, "primary", "write"), 0.0);
    assert_eq!(moved(&after_reads, &after_writes, "primary", "write"), 10.0);
    assert_eq!(moved(&after_reads, &after_writes, "replica", "read"), 0.0);
    let queries = |text: &str, role: &str| {
        must_metric(
            text,
            "rwproxy_query_duration_seconds_count",
            &[("role", role)],
        )
    };
    // A statement's duration is recorded once its last byte is sent, so the client can be a
    // moment ahead of the histogram: give it that moment.
    let mut latest = after_writes.clone();
    for _ in 0..40 {
        if queries(&latest, "primary") - queries(&after_reads, "primary") >= 10.0 {
            break;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
        latest = scrape(&proxy, None).await;
    }
    assert!(queries(&latest, "primary") - queries(&after_reads, "primary") >= 10.0);
    conn.query_drop(format!("DROP TABLE {table}"))
        .await
        .unwrap();
    conn.disconnect().await.unwrap();

    promtool_check(&after_writes);
}

#[tokio::test]
async fn backends_endpoint_follows_a_killed_replica() {
    let cluster = lag_cluster().await;
    let proxy = start_routable(&cluster, &config_for(&cluster, "").to_yaml()).await;
    let survivor = cluster.server_id_of(cluster.nodes[1].port).await.unwrap();
    let victim = cluster.server_id_of(cluster.nodes[2].port).await.unwrap();

    cluster.kill9(2).unwrap();
    let state_of = |json: &serde_json::Value, name: &str| {
        json["backends"]
            .as_array()
            .and_then(|list| list.iter().find(|b| b["name"] == name))
            .cloned()
            .unwrap_or_else(|| panic!("no backend {name} in /backends: {json}"))
    };
    let db3 = poll_until(
        Duration::from_secs(10),
        "db3 to be down in /backends",
        || async {
            let json = admin_json(&proxy, "/backends").await;
            let db3 = state_of(&json, "db3");
            if db3["state"] == "down" {
                Ok(db3)
            } else {
                Err(db3.to_string())
            }
        },
    )
    .await;
    assert_eq!(db3["readable"], false, "{db3}");
    let json = admin_json(&proxy, "/backends").await;
    assert_eq!(state_of(&json, "db2")["state"], "up", "{json}");
    assert_eq!(json["primary"]["name"], "db1", "{json}");
    let text = scrape(&proxy, None).await;
    assert_eq!(
        must_metric(&text, "rwproxy_backend_up", &[("backend", "db3")]),
        0.0
    );
    assert_eq!(
        must_metric(
            &text,
            "rwproxy_backend_state",
            &[("backend", "db3"), ("state", "down")]
        ),
        1.0
    );

    // Reads keep working, from the surviving replica only.
    let mut conn = app_via(&proxy, &cluster).await;
    for _ in 0..6 {
        let id = server_id(&mut conn, &proxy).await;
        assert_eq!(id, survivor, "read answered by {id}; {victim} is dead");
    }
    conn.disconnect().await.unwrap();

    // Restarted, it is back in /backends after its recovery checks.
    cluster.up().unwrap();
    poll_until(Duration::from_secs(20), "db3 to be up again", || async {
        let json = admin_json(&proxy, "/backends").await;
        let db3 = state_of(&json, "db3");
        if db3["state"] == "up" && db3["readable"] == true {
            Ok(())
        } else {
            Err(db3.to_string())
        }
    })
    .await;
    drop(proxy);
}

#[tokio::test]
async fn admin_token_guards_every_route_but_the_probes() {
    const TOKEN: &str = "ops-test-token-7f3a";
    let cluster = shared();
    let yaml = config_for(cluster, "").to_yaml().replace(
        "  listen: {admin}\n",
        &format!("  listen: {{admin}}\n  token: \"{TOKEN}\"\n"),
    );
    assert!(yaml.contains(TOKEN));
    let proxy = match ProxyProcess::start(proxy_bin(), &yaml) {
        Ok(p) => p,
        Err(e) => panic!("{e}"),
    };
    let get = |path: &'static str, token: Option<&'static str>| {
        let proxy = &proxy;
        async move {
            http_get(proxy, path, token)
                .await
                .unwrap_or_else(|e| panic!("GET {path}: {e}"))
        }
    };
    assert_eq!(get("/metrics", None).await.0, 401);
    assert_eq!(get("/metrics", Some("wrong-token")).await.0, 401);
    assert_eq!(get("/backends", None).await.0, 401);
    assert_eq!(get("/config", None).await.0, 401);
    assert_eq!(get("/sessions", None).await.0, 401);
    let (status, _) = get("/ready", None).await;
    assert!(status == 200 || status == 503, "/ready answered {status}");
    let (status, body) = get("/health", None).await;
    assert_eq!((status, body.trim()), (200, "ok"));
    let (status, body) = get("/metrics", Some(TOKEN)).await;
    assert_eq!(status, 200);
    assert!(body.contains("rwproxy_config_info"), "{body}");
    assert!(
        !proxy.log_text().contains(TOKEN),
        "the admin token appears in the log"
    );
}
