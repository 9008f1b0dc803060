//! Read-your-writes on Galera: under `consistency: session`, a read right after the session's
//! own write sees it, 1,000 times in a row, while reads without a preceding write still go to
//! the other nodes.

use mysql_async::prelude::Queryable;
use rwproxy_testkit::metrics::series;
use rwproxy_testkit::{Galera, ProxyProcess, ProxyUser, StandardConfig};

use crate::support::*;

const PAIRS: u64 = 1000;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_read_after_the_sessions_own_write_is_never_stale() {
    let _one = Galera::exclusive().await;
    heal().await;
    let mut config = StandardConfig::new(cluster());
    config.monitor_extra = "topology: galera\n".into();
    let mut user = ProxyUser::native(&cluster().app.user, &cluster().app.password);
    user.consistency = Some("session".into());
    config.users = vec![user];
    let proxy = ProxyProcess::start(proxy_bin(), &config.to_yaml()).unwrap();
    settle(&proxy, DB[0], &DB[1..], std::time::Duration::from_secs(15)).await;

    let table = unique_table("ryw");
    let mut conn = app_via(&proxy).await;
    conn.query_drop(format!(
        "CREATE TABLE {table} (id BIGINT PRIMARY KEY, v BIGINT)"
    ))
    .await
    .unwrap();
    let mut stale = 0;
    for id in 0..PAIRS {
        conn.query_drop(format!("INSERT INTO {table} VALUES ({id}, {id} * 7)"))
            .await
            .unwrap();
        let got: Option<i64> = conn
            .query_first(format!("SELECT v FROM {table} WHERE id = {id}"))
            .await
            .unwrap();
        if got != Some(id as i64 * 7) {
            stale += 1;
        }
    }
    assert_eq!(
        stale, 0,
        "{stale} of {PAIRS} reads missed the session's own write"
    );

    // A new session that has not written reads from the other nodes.
    let mut reader = app_via(&proxy).await;
    let node = answered_by(&mut reader).await;
    assert_ne!(
        node, "node0",
        "a read without a preceding write went to the writer"
    );

    let text = proxy.admin_get("/metrics").await.unwrap().1;
    let causal = |outcome: &str| {
        series(&text, "rwproxy_causal_reads_total", &[("outcome", outcome)]).unwrap_or(0.0)
    };
    eprintln!(
        "causal outcomes: primary_fallback {} replica_fresh {} replica_after_wait {}",
        causal("primary_fallback"),
        causal("replica_fresh"),
        causal("replica_after_wait")
    );
    conn.query_drop(format!("DROP TABLE {table}"))
        .await
        .unwrap();
}
