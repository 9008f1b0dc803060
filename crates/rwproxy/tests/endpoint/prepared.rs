//! Binary protocol: prepared statements with every common parameter and column type.
//! (Cursor fetch, COM_STMT_FETCH, is not tested: mysql_async cannot open cursors.)

use mysql_async::prelude::Queryable;
use mysql_async::{Params, Row, Value};

use crate::support::{
    app_direct, app_via, column_shape, start_standard_proxy, unique_table, values,
};

fn sample_rows() -> Vec<Vec<Value>> {
    vec![
        vec![
            Value::Int(1),
            Value::NULL,
            Value::Bytes(vec![0, 1, 2, 255, 0, 10, 13]),
            Value::Date(2024, 2, 29, 0, 0, 0, 0),
            Value::Date(1999, 12, 31, 23, 59, 58, 123_456),
            Value::Time(false, 0, 12, 34, 56, 789_000),
            Value::Bytes(b"12345.678901".to_vec()),
            Value::Float(1.5),
            Value::Double(-2.25e-10),
            Value::Bytes("héllo wörld ✓ 😀".as_bytes().to_vec()),
            Value::UInt(18_446_744_073_709_551_615),
            Value::Int(-128),
        ],
        vec![
            Value::Int(2),
            Value::Int(-7),
            Value::NULL,
            Value::NULL,
            Value::NULL,
            Value::Time(true, 1, 2, 3, 4, 0),
            Value::Bytes(b"-0.000001".to_vec()),
            Value::Float(-0.0),
            Value::Double(f64::MAX),
            Value::Bytes(Vec::new()),
            Value::UInt(0),
            Value::NULL,
        ],
    ]
}

#[tokio::test]
async fn prepared_statements_round_trip_all_types() {
    let proxy = start_standard_proxy();
    let mut via = app_via(&proxy).await;
    let mut direct = app_direct().await;
    let t = unique_table("prep");
    via.query_drop(format!(
        "CREATE TABLE {t} (id INT PRIMARY KEY, n INT NULL, b BLOB NULL, d DATE NULL, \
         dt DATETIME(6) NULL, tm TIME(6) NULL, dec_v DECIMAL(20,6) NULL, f FLOAT NULL, \
         dbl DOUBLE NULL, s VARCHAR(100) CHARACTER SET utf8mb4 NULL, \
         u BIGINT UNSIGNED NULL, ti TINYINT NULL)"
    ))
    .await
    .unwrap();

    let insert = via
        .prep(format!("INSERT INTO {t} VALUES (?,?,?,?,?,?,?,?,?,?,?,?)"))
        .await
        .unwrap();
    assert_eq!(insert.num_params(), 12);
    for row in sample_rows() {
        via.exec_drop(&insert, Params::Positional(row))
            .await
            .unwrap();
        assert_eq!(via.affected_rows(), 1);
    }
    via.close(insert).await.unwrap();

    // Read back with the binary protocol, through the proxy and directly: identical.
    let select = format!("SELECT * FROM {t} WHERE id >= ? ORDER BY id");
    let through: Vec<Row> = via.exec(&select, (1,)).await.unwrap();
    let reference: Vec<Row> = direct.exec(&select, (1,)).await.unwrap();
    assert_eq!(through.len(), 2);
    assert_eq!(values(&through), values(&reference));
    assert_eq!(column_shape(&through), column_shape(&reference));

    // And the values are the ones we sent (the server normalises DATE and DECIMAL).
    let first = through[0].clone().unwrap();
    let sent = &sample_rows()[0];
    assert_eq!(first[0], sent[0]);
    assert_eq!(first[1], Value::NULL);
    assert_eq!(first[2], sent[2], "blob");
    assert_eq!(first[4], sent[4], "datetime(6)");
    assert_eq!(first[5], sent[5], "time(6)");
    assert_eq!(first[6], sent[6], "decimal");
    assert_eq!(first[7], sent[7], "float");
    assert_eq!(first[8], sent[8], "double");
    assert_eq!(first[9], sent[9], "utf8mb4 string");
    assert_eq!(first[10], sent[10], "bigint unsigned max");
    assert_eq!(first[11], sent[11], "tinyint min");
    let second = through[1].clone().unwrap();
    assert_eq!(second[5], Value::Time(true, 1, 2, 3, 4, 0), "negative time");
    assert_eq!(
        second[9],
        Value::Bytes(Vec::new()),
        "empty string is not NULL"
    );

    via.query_drop(format!("DROP TABLE {t}")).await.unwrap();
}

#[tokio::test]
async fn a_statement_is_reused_with_different_parameters() {
    let proxy = start_standard_proxy();
    let mut via = app_via(&proxy).await;
    let stmt = via
        .prep("SELECT ? + 1, ? IS NULL, CONCAT('<', ?, '>')")
        .await
        .unwrap();
    for i in 0..50i64 {
        let param = if i % 3 == 0 {
            Value::NULL
        } else {
            Value::Int(i)
        };
        let row: Option<(Option<i64>, i64, Option<String>)> = via
            .exec_first(&stmt, (i, param.clone(), format!("v{i}")))
            .await
            .unwrap();
        let expected_null = i64::from(param == Value::NULL);
        assert_eq!(
            row,
            Some((Some(i + 1), expected_null, Some(format!("<v{i}>"))))
        );
    }
    via.close(stmt).await.unwrap();
    // Prepare, execute and close again after a close.
    let stmt = via.prep("SELECT 42").await.unwrap();
    let answer: Option<i32> = via.exec_first(&stmt, ()).await.unwrap();
    assert_eq!(answer, Some(42));
    via.close(stmt).await.unwrap();
    let still: Option<i32> = via.query_first("SELECT 43").await.unwrap();
    assert_eq!(still, Some(43));
}

#[tokio::test]
async fn exec_batch_inserts_every_row() {
    let proxy = start_standard_proxy();
    let mut via = app_via(&proxy).await;
    let t = unique_table("batch");
    via.query_drop(format!(
        "CREATE TABLE {t} (id INT PRIMARY KEY, label VARCHAR(20))"
    ))
    .await
    .unwrap();
    via.exec_batch(
        format!("INSERT INTO {t} VALUES (?, ?)"),
        (0..200).map(|i| (i, format!("row-{i}"))),
    )
    .await
    .unwrap();
    let (count, sum): (i64, i64) = via
        .query_first(format!("SELECT COUNT(*), SUM(id) FROM {t}"))
        .await
        .unwrap()
        .unwrap();
    assert_eq!((count, sum), (200, (0..200).sum()));
    via.query_drop(format!("DROP TABLE {t}")).await.unwrap();
}

#[tokio::test]
async fn prepare_errors_are_reported() {
    let proxy = start_standard_proxy();
    let mut via = app_via(&proxy).await;
    let err = via.prep("SELECT FROM WHERE ?").await.unwrap_err();
    assert_eq!(crate::support::server_error(err).code, 1064);
    let err = via
        .prep("SELECT * FROM app.no_such_table_prep WHERE id = ?")
        .await
        .unwrap_err();
    assert_eq!(crate::support::server_error(err).code, 1146);
    let ok: Option<i32> = via.exec_first("SELECT ?", (5,)).await.unwrap();
    assert_eq!(ok, Some(5));
}
