//! Payloads larger than one 16 MiB protocol packet, both directions.

use mysql_async::prelude::Queryable;

use crate::support::{
    app_direct, app_via, pseudo_random_bytes, start_standard_proxy, unique_table,
};

const BLOB_LEN: usize = 20 * 1024 * 1024;

#[tokio::test]
async fn a_20_mib_blob_round_trips_through_prepared_statements() {
    let proxy = start_standard_proxy();
    let mut via = app_via(&proxy).await;
    let t = unique_table("blob");
    via.query_drop(format!("CREATE TABLE {t} (id INT PRIMARY KEY, b LONGBLOB)"))
        .await
        .unwrap();
    let blob = pseudo_random_bytes(BLOB_LEN, 0x5eed);
    via.exec_drop(format!("INSERT INTO {t} VALUES (?, ?)"), (1, blob.clone()))
        .await
        .unwrap();

    // Binary protocol read back through the proxy.
    let back: Option<Vec<u8>> = via
        .exec_first(format!("SELECT b FROM {t} WHERE id = ?"), (1,))
        .await
        .unwrap();
    let back = back.expect("the row");
    assert_eq!(back.len(), blob.len());
    assert!(back == blob, "blob read through the proxy differs");

    // Text protocol read back through the proxy.
    let text: Option<Vec<u8>> = via
        .query_first(format!("SELECT b FROM {t} WHERE id = 1"))
        .await
        .unwrap();
    assert!(
        text.as_deref() == Some(&blob[..]),
        "text-protocol read differs"
    );

    // What reached the primary is the same.
    let mut direct = app_direct().await;
    let stored: Option<Vec<u8>> = direct
        .query_first(format!("SELECT b FROM {t} WHERE id = 1"))
        .await
        .unwrap();
    assert!(
        stored.as_deref() == Some(&blob[..]),
        "blob on the primary differs"
    );

    via.query_drop(format!("DROP TABLE {t}")).await.unwrap();
}

#[tokio::test]
async fn a_40_mib_text_query_spans_several_packets() {
    let proxy = start_standard_proxy();
    let mut via = app_via(&proxy).await;
    let t = unique_table("bigquery");
    via.query_drop(format!("CREATE TABLE {t} (id INT PRIMARY KEY, b LONGBLOB)"))
        .await
        .unwrap();
    let blob = pseudo_random_bytes(BLOB_LEN, 0xfeed);
    let mut sql = format!("INSERT INTO {t} VALUES (2, X'");
    sql.reserve(blob.len() * 2 + 8);
    for byte in &blob {
        sql.push_str(&format!("{byte:02X}"));
    }
    sql.push_str("')");
    assert!(
        sql.len() > 2 * 16 * 1024 * 1024,
        "the query needs three packets"
    );
    via.query_drop(&sql).await.unwrap();
    assert_eq!(via.affected_rows(), 1);

    let len: Option<i64> = via
        .query_first(format!("SELECT LENGTH(b) FROM {t} WHERE id = 2"))
        .await
        .unwrap();
    assert_eq!(len, Some(BLOB_LEN as i64));
    let back: Option<Vec<u8>> = via
        .query_first(format!("SELECT b FROM {t} WHERE id = 2"))
        .await
        .unwrap();
    assert!(
        back.as_deref() == Some(&blob[..]),
        "blob inserted by a 40 MiB query differs"
    );
    via.query_drop(format!("DROP TABLE {t}")).await.unwrap();
}
