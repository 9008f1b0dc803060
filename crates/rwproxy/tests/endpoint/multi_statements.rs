//! Several statements in one COM_QUERY, several result sets back.

use mysql_async::prelude::Queryable;
use mysql_async::Row;

use crate::support::{app_via, start_standard_proxy, unique_table};

#[tokio::test]
async fn multi_statement_query_returns_every_result_set() {
    let proxy = start_standard_proxy();
    let mut via = app_via(&proxy).await;
    let t = unique_table("multi");

    let sql = format!(
        "CREATE TABLE {t} (id INT PRIMARY KEY, v VARCHAR(10)); \
         INSERT INTO {t} VALUES (1, 'a'), (2, 'b'); \
         SELECT id, v FROM {t} ORDER BY id; \
         UPDATE {t} SET v = 'z' WHERE id = 2; \
         SELECT COUNT(*) AS n, GROUP_CONCAT(v ORDER BY id) AS vs FROM {t}"
    );
    let mut result = via.query_iter(sql).await.unwrap();
    let mut sets: Vec<Vec<Row>> = Vec::new();
    let mut affected = Vec::new();
    while !result.is_empty() {
        let rows: Vec<Row> = result.collect().await.unwrap();
        affected.push(result.affected_rows());
        sets.push(rows);
    }
    drop(result);
    assert_eq!(sets.len(), 5, "five statements, five results");
    assert_eq!(affected[1], 2, "INSERT affected rows");
    assert_eq!(affected[3], 1, "UPDATE affected rows");
    let first: Vec<(i32, String)> = sets[2]
        .iter()
        .map(|r| mysql_async::from_row(r.clone()))
        .collect();
    assert_eq!(first, vec![(1, "a".to_string()), (2, "b".to_string())]);
    let summary: (i64, String) = mysql_async::from_row(sets[4][0].clone());
    assert_eq!(summary, (2, "a,z".to_string()));

    // The session is in a clean state afterwards.
    let n: Option<i64> = via
        .query_first(format!("SELECT COUNT(*) FROM {t}"))
        .await
        .unwrap();
    assert_eq!(n, Some(2));
    via.query_drop(format!("DROP TABLE {t}")).await.unwrap();
}

#[tokio::test]
async fn an_error_in_the_middle_stops_the_batch() {
    let proxy = start_standard_proxy();
    let mut via = app_via(&proxy).await;
    let mut result = via
        .query_iter("SELECT 1; SELECT * FROM app.no_such_table_multi; SELECT 3")
        .await
        .unwrap();
    let first: Vec<i32> = result.collect().await.unwrap();
    assert_eq!(first, vec![1]);
    let err = result.collect::<Row>().await.unwrap_err();
    assert_eq!(crate::support::server_error(err).code, 1146);
    drop(result);
    let after: Option<i32> = via.query_first("SELECT 4").await.unwrap();
    assert_eq!(after, Some(4));
}
