//! A node cut off from the group (`gmcast.isolate=1`: it forms a non-Primary component of one)
//! gets no traffic from any rwproxy — a reader leaves the rotation, an isolated writer is
//! replaced by the next node in the choice, the same one in both proxies — and comes back
//! when it has rejoined and is Synced.

use std::time::Duration;

use mysql_async::prelude::Queryable;
use rwproxy_testkit::Galera;

use crate::support::*;

const ISOLATE: &str = "SET GLOBAL wsrep_provider_options = 'gmcast.isolate=1'";
const REJOIN: &str = "SET GLOBAL wsrep_provider_options = 'gmcast.isolate=0'";
/// Isolation and rejoining wait on the group's timeouts (`evs.suspect_timeout`, 5 s by
/// default).
const GROUP_CHANGE: Duration = Duration::from_secs(30);

async fn isolate(node: usize) {
    admin_exec(node, ISOLATE).await;
    wait_for(
        GROUP_CHANGE,
        &format!("node{node} in a non-Primary component"),
        || async { (cluster_status(node).await.as_deref() == Some("non-Primary")).then_some(()) },
    )
    .await;
}

async fn rejoin(node: usize) {
    admin_exec(node, REJOIN).await;
    wait_for(
        GROUP_CHANGE,
        &format!("node{node} Synced again"),
        || async {
            let primary = cluster_status(node).await.as_deref() == Some("Primary");
            (primary && local_state(node).await.as_deref() == Some("Synced")).then_some(())
        },
    )
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_isolated_node_gets_no_traffic() {
    let _one = Galera::exclusive().await;
    heal().await;
    let yaml = galera_yaml([None; 3], "");
    let first = start_proxy(&yaml, DB[0], &DB[1..]).await;
    let table = unique_table("partition");
    let mut conn = app_via(&first).await;
    conn.query_drop(format!(
        "CREATE TABLE {table} (id INT AUTO_INCREMENT PRIMARY KEY, node VARCHAR(16))"
    ))
    .await
    .unwrap();

    // A reader outside the Primary component.
    isolate(2).await;
    let second = start_proxy(&yaml, DB[0], &[DB[1]]).await;
    settle(&first, DB[0], &[DB[1]], Duration::from_secs(5)).await;
    for proxy in [&first, &second] {
        let mut c = app_via(proxy).await;
        let seen = readers_of(&mut c, 20).await;
        assert_eq!(
            names(&seen),
            ["node1"],
            "reads with node2 isolated: {seen:?}"
        );
    }
    rejoin(2).await;
    for proxy in [&first, &second] {
        settle(proxy, DB[0], &DB[1..], Duration::from_secs(5)).await;
    }

    // The writer outside the Primary component: node1 (next by name) takes over in both.
    isolate(0).await;
    for proxy in [&first, &second] {
        settle(proxy, DB[1], &[DB[2]], Duration::from_secs(5)).await;
    }
    let before = local_commits().await;
    let mut writer_conn = app_via(&second).await;
    for _ in 0..10 {
        writer_conn
            .query_drop(format!(
                "INSERT INTO {table} (node) VALUES (@@wsrep_node_name)"
            ))
            .await
            .unwrap();
    }
    let after = local_commits().await;
    assert_eq!(before[0], after[0], "the isolated node0 originated writes");
    assert_eq!(before[2], after[2], "the reader node2 originated writes");
    let mut reader = app_via(&second).await;
    let seen = readers_of(&mut reader, 20).await;
    assert_eq!(
        names(&seen),
        ["node2"],
        "reads with node0 isolated: {seen:?}"
    );

    // Back in the group and Synced: node0 wins the choice again, in both.
    rejoin(0).await;
    for proxy in [&first, &second] {
        settle(proxy, DB[0], &DB[1..], Duration::from_secs(10)).await;
    }
    let mut direct = cluster().app_conn(1).await.unwrap();
    let origins: Vec<String> = direct
        .query(format!("SELECT DISTINCT node FROM {table}"))
        .await
        .unwrap();
    assert_eq!(origins, vec!["node1".to_string()]);
    direct
        .query_drop(format!("DROP TABLE {table}"))
        .await
        .unwrap();
}
