//! One connection id: the id in the greeting is what `CONNECTION_ID()` returns and what the
//! client's own row in `SHOW PROCESSLIST` and `information_schema.PROCESSLIST` shows, on a
//! replica (reads) and on the primary (in a transaction); the same queries against the primary
//! directly agree with themselves the same way (differential: the relation holds in both).

use mysql_async::prelude::Queryable;
use mysql_async::{Conn, Row};

use crate::support::{app_direct, app_via, start_standard_proxy};

/// (greeting id, CONNECTION_ID(), ids of the client's own rows in both process-list forms)
async fn ids(conn: &mut Conn) -> (u64, u64, Vec<u64>, Vec<u64>) {
    let greeting = u64::from(conn.id());
    let own: u64 = conn
        .query_first("SELECT CONNECTION_ID()")
        .await
        .unwrap()
        .unwrap();
    let show: Vec<Row> = conn.query("SHOW FULL PROCESSLIST").await.unwrap();
    let show_ids: Vec<u64> = show
        .into_iter()
        .filter(|r| {
            r.get::<Option<String>, _>("Info")
                .flatten()
                .is_some_and(|i| i.contains("SHOW FULL PROCESSLIST"))
        })
        .map(|r| r.get::<u64, _>("Id").unwrap())
        .collect();
    let table_ids: Vec<u64> = conn
        .query("SELECT ID FROM information_schema.PROCESSLIST WHERE ID = CONNECTION_ID()")
        .await
        .unwrap();
    (greeting, own, show_ids, table_ids)
}

#[tokio::test]
async fn one_id_in_greeting_connection_id_and_process_list() {
    let mut direct = app_direct().await;
    let (g, own, show, table) = ids(&mut direct).await;
    assert_eq!((own, show.clone(), table.clone()), (g, vec![g], vec![g]));

    let proxy = start_standard_proxy();
    let mut conn = app_via(&proxy).await;
    // On a replica (plain reads), then on the primary (inside a transaction).
    let (g, own, show, table) = ids(&mut conn).await;
    assert_eq!(
        (own, show, table),
        (g, vec![g], vec![g]),
        "read through rwproxy\n--- proxy log ---\n{}",
        proxy.log_tail(20)
    );
    conn.query_drop("BEGIN").await.unwrap();
    let (g2, own, show, table) = ids(&mut conn).await;
    conn.query_drop("COMMIT").await.unwrap();
    assert_eq!(g2, g);
    assert_eq!(
        (own, show, table),
        (g, vec![g], vec![g]),
        "in a transaction"
    );
    // A prepared CONNECTION_ID() agrees too.
    let prepared: Option<u64> = conn.exec_first("SELECT CONNECTION_ID()", ()).await.unwrap();
    assert_eq!(prepared, Some(g));
    // The word PROCESSLIST only in a comment does not make it a process-list statement; calls
    // the server runs (a comment inside, an executable comment) are the client's too.
    for sql in [
        "SELECT CONNECTION_ID() /* processlist */",
        "SELECT CONNECTION_ID(/* mine */)",
        "SELECT 0 /*M!100100 + CONNECTION_ID() */",
    ] {
        let got: Option<u64> = conn.query_first(sql).await.unwrap();
        assert_eq!(got, Some(g), "{sql}");
    }
    // The columns are named as from the server (after the expression's text).
    let sql = "SELECT CONNECTION_ID(), connection_id ( ) + 1 AS n, 1 + CONNECTION_ID()";
    assert_eq!(names(&mut conn, sql).await, names(&mut direct, sql).await);
}

/// Column names of `sql`, text and prepared.
async fn names(conn: &mut Conn, sql: &str) -> (Vec<String>, Vec<String>) {
    let text: Vec<Row> = conn.query(sql).await.unwrap();
    let prepared: Vec<Row> = conn.exec(sql, ()).await.unwrap();
    let of = |rows: &[Row]| -> Vec<String> {
        rows[0]
            .columns_ref()
            .iter()
            .map(|c| c.name_str().into_owned())
            .collect()
    };
    (of(&text), of(&prepared))
}
