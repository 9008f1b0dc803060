//! `SET GLOBAL wsrep_desync = ON` on a reader: it leaves the read rotation of every rwproxy
//! (two processes, the second started later) and returns after `OFF`; the writer never moves.

use std::time::Duration;

use rwproxy_testkit::Galera;

use crate::support::*;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_desynced_reader_leaves_rotation_and_returns() {
    let _one = Galera::exclusive().await;
    heal().await;
    let yaml = galera_yaml([None; 3], "");
    let first = start_proxy(&yaml, DB[0], &DB[1..]).await;
    let mut conn = app_via(&first).await;

    admin_exec(1, "SET GLOBAL wsrep_desync = ON").await;
    // Started while node1 is desynced: it must come to the same view.
    let second = start_proxy(&yaml, DB[0], &[DB[2]]).await;
    settle(&first, DB[0], &[DB[2]], Duration::from_secs(5)).await;
    let seen = readers_of(&mut conn, 20).await;
    assert_eq!(
        names(&seen),
        ["node2"],
        "reads while node1 is desynced: {seen:?}"
    );
    let mut late = app_via(&second).await;
    let seen = readers_of(&mut late, 20).await;
    assert_eq!(names(&seen), ["node2"], "second proxy: {seen:?}");

    admin_exec(1, "SET GLOBAL wsrep_desync = OFF").await;
    for proxy in [&first, &second] {
        settle(proxy, DB[0], &DB[1..], Duration::from_secs(5)).await;
    }
    let seen = readers_of(&mut conn, 20).await;
    assert_eq!(names(&seen), ["node1", "node2"], "after OFF: {seen:?}");
    assert_eq!(
        writers(&[&first, &second]).await,
        vec![Some(DB[0].to_string()); 2]
    );
}
