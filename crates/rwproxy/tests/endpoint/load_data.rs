//! LOAD DATA LOCAL INFILE: the client sends a file from its side through the proxy.

use mysql_async::prelude::Queryable;
use mysql_async::{Conn, Opts, WhiteListFsHandler};

use crate::support::{app_direct, cluster, start_standard_proxy, unique_table};

#[tokio::test]
async fn load_data_local_infile_sends_the_client_file() {
    let proxy = start_standard_proxy();
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("rows.csv");
    let mut csv = String::new();
    for i in 0..5000 {
        csv.push_str(&format!(
            "{i},name-{i},{}\n",
            if i % 10 == 0 { "\\N" } else { "x" }
        ));
    }
    std::fs::write(&path, &csv).unwrap();
    let path_str = path.to_str().unwrap().to_string();

    let opts: Opts = proxy
        .opts(&cluster().app, Some("app"))
        .local_infile_handler(Some(WhiteListFsHandler::new([path.clone()])))
        .into();
    let mut via = Conn::new(opts).await.unwrap();
    let t = unique_table("infile");
    via.query_drop(format!(
        "CREATE TABLE {t} (id INT PRIMARY KEY, name VARCHAR(30), tag CHAR(1) NULL)"
    ))
    .await
    .unwrap();
    via.query_drop(format!(
        "LOAD DATA LOCAL INFILE '{path_str}' INTO TABLE {t} \
         FIELDS TERMINATED BY ',' LINES TERMINATED BY '\\n'"
    ))
    .await
    .unwrap();
    assert_eq!(via.affected_rows(), 5000);

    let mut direct = app_direct().await;
    let (count, nulls, max_name): (i64, i64, String) = direct
        .query_first(format!(
            "SELECT COUNT(*), SUM(tag IS NULL), MAX(name) FROM {t}"
        ))
        .await
        .unwrap()
        .unwrap();
    assert_eq!((count, nulls, max_name.as_str()), (5000, 500, "name-999"));

    // The session is usable afterwards.
    let n: Option<i64> = via
        .query_first(format!("SELECT COUNT(*) FROM {t} WHERE id < 10"))
        .await
        .unwrap();
    assert_eq!(n, Some(10));
    via.query_drop(format!("DROP TABLE {t}")).await.unwrap();
}

#[tokio::test]
async fn load_data_local_infile_of_a_refused_file_fails_cleanly() {
    let proxy = start_standard_proxy();
    // The client's handler refuses every file: the client answers the server's request
    // with an empty packet, the server reports an error, the session continues.
    let opts: Opts = proxy
        .opts(&cluster().app, Some("app"))
        .local_infile_handler(Some(WhiteListFsHandler::new(
            Vec::<std::path::PathBuf>::new(),
        )))
        .into();
    let mut via = Conn::new(opts).await.unwrap();
    let t = unique_table("infile_refused");
    via.query_drop(format!("CREATE TABLE {t} (id INT)"))
        .await
        .unwrap();
    let result = via
        .query_drop(format!(
            "LOAD DATA LOCAL INFILE '/etc/hostname' INTO TABLE {t}"
        ))
        .await;
    assert!(result.is_err(), "a refused local file must not load");
    // Depending on the client, the session may be gone after a refused file; a new one works.
    drop(via);
    let mut fresh = crate::support::app_via(&proxy).await;
    let one: Option<i64> = fresh.query_first("SELECT 1").await.unwrap();
    assert_eq!(one, Some(1));
    // Nothing was loaded. Asked of the primary: a new session's reads go to a replica, which
    // need not have the other session's CREATE TABLE yet.
    let mut primary = crate::support::app_direct().await;
    let n: Option<i64> = primary
        .query_first(format!("SELECT COUNT(*) FROM {t}"))
        .await
        .unwrap();
    assert_eq!(n, Some(0));
    fresh.query_drop(format!("DROP TABLE {t}")).await.unwrap();
}
