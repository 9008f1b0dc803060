//! Text-protocol DDL, DML and SELECT through rwproxy give what the primary gives.

use mysql_async::prelude::Queryable;
use mysql_async::Row;

use crate::support::{
    app_direct, app_via, column_shape, start_standard_proxy, unique_table, values,
};

#[tokio::test]
async fn ddl_dml_and_select_match_a_direct_connection() {
    let proxy = start_standard_proxy();
    let mut via = app_via(&proxy).await;
    let mut direct = app_direct().await;
    let t = unique_table("queries");

    via.query_drop(format!(
        "CREATE TABLE {t} (id INT PRIMARY KEY AUTO_INCREMENT, name VARCHAR(50) NOT NULL, \
         score DECIMAL(10,2), born DATE, note TEXT NULL) ENGINE=InnoDB"
    ))
    .await
    .unwrap();
    via.query_drop(format!(
        "INSERT INTO {t} (name, score, born, note) VALUES \
         ('ann', 12.50, '1990-01-31', NULL), ('bob', -3.25, '2001-12-01', 'x'), \
         ('çé€😀', 0, NULL, REPEAT('long ', 100))"
    ))
    .await
    .unwrap();
    assert_eq!(via.affected_rows(), 3);
    assert_eq!(via.last_insert_id(), Some(1));

    via.query_drop(format!("UPDATE {t} SET score = score + 1 WHERE id >= 2"))
        .await
        .unwrap();
    assert_eq!(via.affected_rows(), 2);
    via.query_drop(format!(
        "ALTER TABLE {t} ADD COLUMN flag TINYINT NOT NULL DEFAULT 7"
    ))
    .await
    .unwrap();
    via.query_drop(format!("DELETE FROM {t} WHERE name = 'bob'"))
        .await
        .unwrap();
    assert_eq!(via.affected_rows(), 1);

    for sql in [
        format!("SELECT * FROM {t} ORDER BY id"),
        format!("SELECT name, score * 2 AS double_score, LENGTH(note) FROM {t} ORDER BY id DESC"),
        format!("SELECT COUNT(*), SUM(score), MAX(born) FROM {t}"),
        format!("SHOW CREATE TABLE {t}"),
        format!("SHOW COLUMNS FROM {t}"),
        "SELECT 1, -1, 1.5, 'text', NULL, X'00FF', 18446744073709551615".to_string(),
    ] {
        let through: Vec<Row> = via.query(&sql).await.unwrap();
        let reference: Vec<Row> = direct.query(&sql).await.unwrap();
        assert!(!reference.is_empty(), "{sql}: no rows on the primary");
        assert_eq!(values(&through), values(&reference), "{sql}");
        assert_eq!(column_shape(&through), column_shape(&reference), "{sql}");
    }

    via.query_drop(format!("DROP TABLE {t}")).await.unwrap();
    let gone: Option<i64> = direct
        .query_first(format!(
            "SELECT COUNT(*) FROM information_schema.tables \
             WHERE table_schema = 'app' AND table_name = '{t}'"
        ))
        .await
        .unwrap();
    assert_eq!(gone, Some(0));
}

#[tokio::test]
async fn transactions_commit_and_roll_back() {
    let proxy = start_standard_proxy();
    let mut via = app_via(&proxy).await;
    let mut direct = app_direct().await;
    let t = unique_table("tx");
    via.query_drop(format!("CREATE TABLE {t} (id INT PRIMARY KEY)"))
        .await
        .unwrap();

    via.query_drop("START TRANSACTION").await.unwrap();
    via.query_drop(format!("INSERT INTO {t} VALUES (1), (2)"))
        .await
        .unwrap();
    let inside: Option<i64> = via
        .query_first(format!("SELECT COUNT(*) FROM {t}"))
        .await
        .unwrap();
    assert_eq!(inside, Some(2), "a transaction sees its own rows");
    via.query_drop("ROLLBACK").await.unwrap();
    let after_rollback: Option<i64> = via
        .query_first(format!("SELECT COUNT(*) FROM {t}"))
        .await
        .unwrap();
    assert_eq!(after_rollback, Some(0));

    via.query_drop("BEGIN").await.unwrap();
    via.query_drop(format!("INSERT INTO {t} VALUES (3)"))
        .await
        .unwrap();
    via.query_drop("COMMIT").await.unwrap();
    // Read-your-writes: the session sees its commit at once, wherever the read goes.
    let mine: Vec<i32> = via.query(format!("SELECT id FROM {t}")).await.unwrap();
    assert_eq!(mine, vec![3]);
    let primary: Vec<i32> = direct.query(format!("SELECT id FROM {t}")).await.unwrap();
    assert_eq!(primary, vec![3]);

    via.query_drop(format!("DROP TABLE {t}")).await.unwrap();
}

#[tokio::test]
async fn sql_errors_come_back_as_err_packets_and_the_session_goes_on() {
    let proxy = start_standard_proxy();
    let mut via = app_via(&proxy).await;
    let err = via
        .query_drop("SELECT * FROM app.no_such_table_anywhere")
        .await
        .unwrap_err();
    let e = crate::support::server_error(err);
    assert_eq!((e.code, e.state.as_str()), (1146, "42S02"), "{e:?}");
    let err = via.query_drop("SELEKT 1").await.unwrap_err();
    assert_eq!(crate::support::server_error(err).code, 1064);
    let two: Option<i32> = via.query_first("SELECT 2").await.unwrap();
    assert_eq!(two, Some(2));
}
