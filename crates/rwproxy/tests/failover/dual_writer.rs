//! Two writable servers at once (a replica made `read_only=OFF` while the primary is up):
//! rwproxy must refuse writes with ERR 1290 naming both backends, rather than guess, and
//! resume writing as soon as one of them is read-only again.

use std::time::Instant;

use mysql_async::prelude::Queryable;

use crate::support::*;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn two_writable_servers_stop_writes_until_one_is_read_only_again() {
    let _serial = serial().await;
    let cluster = throwaway("fo-dual", 3482);
    let proxy = start_proxy(&fast_yaml(&cluster, "")).await;
    let primary_id = node_server_id(&cluster, 0).await;
    let replica_ids = [
        node_server_id(&cluster, 1).await,
        node_server_id(&cluster, 2).await,
    ];

    let mut session = app_via(&proxy, &cluster).await;
    session
        .query_drop("CREATE TABLE fo_dual (id INT PRIMARY KEY, who INT)")
        .await
        .unwrap();
    session
        .query_drop("INSERT INTO fo_dual VALUES (1, @@server_id)")
        .await
        .unwrap();

    // db2 becomes writable while db1 still is.
    let flipped = Instant::now();
    admin_exec(&cluster, 1, "SET GLOBAL read_only = OFF").await;
    let (seen, doc) = wait_backends(&proxy, "a primary conflict", secs(2), |doc| {
        doc.pointer("/primary/state").and_then(|v| v.as_str()) == Some("conflict")
    })
    .await
    .unwrap_or_else(|e| panic!("{e}\n--- proxy log ---\n{}", proxy.log_tail(20)));
    eprintln!(
        "conflict reported {} ms after read_only=OFF: {}",
        (seen - flipped).as_millis(),
        doc["primary"]
    );
    let names = doc
        .pointer("/primary/names")
        .and_then(|v| v.as_array())
        .map(|a| a.iter().filter_map(|v| v.as_str()).collect::<Vec<_>>())
        .unwrap_or_default();
    assert_eq!(names, vec!["db1", "db2"], "{doc}");

    // A write on the open session and on a new one: refused at once, both names in the text.
    let mut fresh = app_via(&proxy, &cluster).await;
    for (which, conn) in [("open session", &mut session), ("new session", &mut fresh)] {
        let asked = Instant::now();
        let err = conn
            .query_drop("INSERT INTO fo_dual VALUES (2, @@server_id)")
            .await
            .expect_err("a write went through with two writable servers");
        let took = asked.elapsed();
        let mysql_async::Error::Server(err) = err else {
            panic!("{which}: expected an ERR packet, got {err:?}");
        };
        assert_eq!(err.code, 1290, "{which}: {err:?}");
        assert!(
            err.message.contains("db1") && err.message.contains("db2"),
            "{which}: the message must name both writable backends: {}",
            err.message
        );
        assert!(
            took < ms(1000),
            "{which}: a conflict is refused at once, not after write_wait_timeout ({took:?})"
        );
    }
    // Nothing reached either server.
    for node in [0, 1] {
        let rows: Option<i64> = cluster
            .admin_scalar(node, "SELECT COUNT(*) FROM app.fo_dual WHERE id = 2")
            .await
            .unwrap();
        assert_eq!(rows, Some(0), "node{node} got the refused write");
    }
    // Reads still work; they go to the one true replica (db3), not to either writer.
    let reader: Option<u32> = fresh.query_first("SELECT @@server_id").await.unwrap();
    assert_eq!(reader, Some(replica_ids[1]), "read during the conflict");

    // db2 is read-only again: writes resume, on db1.
    let fixed = Instant::now();
    admin_exec(&cluster, 1, "SET GLOBAL read_only = ON").await;
    let mut resumed = None;
    let mut last_err = String::new();
    while fixed.elapsed() < secs(3) {
        match session
            .query_drop("INSERT INTO fo_dual VALUES (3, @@server_id)")
            .await
        {
            Ok(()) => {
                resumed = Some(fixed.elapsed());
                break;
            }
            Err(e) => last_err = e.to_string(),
        }
        tokio::time::sleep(ms(50)).await;
    }
    let resumed = resumed.unwrap_or_else(|| {
        panic!(
            "writes did not resume within 3 s of read_only=ON: {last_err}\n--- proxy log ---\n{}",
            proxy.log_tail(20)
        )
    });
    eprintln!(
        "writes resumed {} ms after read_only=ON",
        resumed.as_millis()
    );
    let who: Option<u32> = cluster
        .admin_scalar(0, "SELECT who FROM app.fo_dual WHERE id = 3")
        .await
        .unwrap();
    assert_eq!(who, Some(primary_id), "the resumed write must land on db1");
}
