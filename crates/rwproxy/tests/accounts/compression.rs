//! The compressed protocol (CLIENT_COMPRESS) between a client and rwproxy.

use mysql_async::prelude::Queryable;
use mysql_async::{Compression, Conn, Opts, Row, Value};
use rwproxy_testkit::ProxyProcess;

use crate::support::{caught_up, cluster, opts_via, start_accounts_proxy, unique_table};

const BLOB_LEN: usize = 20 * 1024 * 1024;

async fn session(proxy: &ProxyProcess, compressed: bool) -> Conn {
    let mut opts = opts_via(proxy, &cluster().app)
        .max_allowed_packet(Some(64 * 1024 * 1024))
        .stmt_cache_size(0);
    if compressed {
        opts = opts.compression(Compression::fast());
    }
    let opts: Opts = opts.into();
    match Conn::new(opts).await {
        Ok(conn) => conn,
        Err(e) => panic!(
            "connecting (compressed: {compressed}) through rwproxy: {e}\n--- proxy log ---\n{}",
            proxy.log_tail(30)
        ),
    }
}

/// Deterministic pseudo-random bytes (xorshift): incompressible, so frames stay large.
fn noise(len: usize, seed: u64) -> Vec<u8> {
    let mut state = seed | 1;
    let mut out = Vec::with_capacity(len + 8);
    while out.len() < len {
        state ^= state << 13;
        state ^= state >> 7;
        state ^= state << 17;
        out.extend_from_slice(&state.to_le_bytes());
    }
    out.truncate(len);
    out
}

fn plain(rows: Vec<Row>) -> Vec<Vec<Value>> {
    rows.into_iter().map(Row::unwrap).collect()
}

#[tokio::test]
async fn compressed_sessions_run_queries() {
    let proxy = start_accounts_proxy().await;
    let mut conn = session(&proxy, true).await;
    let row: Option<(i64, String)> = conn
        .query_first("SELECT 6 * 7, REPEAT('ab', 100)")
        .await
        .unwrap();
    assert_eq!(row, Some((42, "ab".repeat(100))));
    // Reads on a replica, a write on the primary, both inside compressed frames.
    let t = unique_table("cz");
    conn.query_drop(format!("CREATE TABLE {t} (id INT PRIMARY KEY, v TEXT)"))
        .await
        .unwrap();
    conn.exec_drop(
        format!("INSERT INTO {t} VALUES (?, ?)"),
        (1, "x".repeat(5000)),
    )
    .await
    .unwrap();
    let v: Option<String> = conn
        .exec_first(format!("SELECT v FROM {t} WHERE id = ?"), (1,))
        .await
        .unwrap();
    assert_eq!(v, Some("x".repeat(5000)));
    // Many small round trips keep the frame sequence ids in step.
    for i in 0..50i64 {
        let n: Option<i64> = conn.query_first(format!("SELECT {i} + 1")).await.unwrap();
        assert_eq!(n, Some(i + 1));
    }
    conn.query_drop(format!("DROP TABLE {t}")).await.unwrap();
    conn.disconnect().await.unwrap();
}

/// Compressible but not trivial bytes: the hex digits of [`noise`].
///
/// The client compresses every frame, and mysql_common 0.37 writes a broken frame when zlib
/// output is larger than the input (incompressible data; MariaDB itself rejects it too), so
/// data the client sends compressed must compress.
fn hex_noise(len: usize, seed: u64) -> Vec<u8> {
    const HEX: &[u8; 16] = b"0123456789abcdef";
    noise(len.div_ceil(2), seed)
        .iter()
        .flat_map(|b| [HEX[usize::from(b >> 4)], HEX[usize::from(b & 15)]])
        .take(len)
        .collect()
}

#[tokio::test]
async fn a_20_mib_blob_round_trips_compressed_with_prepared_statements() {
    let proxy = start_accounts_proxy().await;
    let mut conn = session(&proxy, true).await;
    let t = unique_table("czblob");
    conn.query_drop(format!("CREATE TABLE {t} (id INT PRIMARY KEY, b LONGBLOB)"))
        .await
        .unwrap();
    let blob = hex_noise(BLOB_LEN, 0xc0ffee);
    conn.exec_drop(format!("INSERT INTO {t} VALUES (?, ?)"), (1, blob.clone()))
        .await
        .unwrap_or_else(|e| panic!("inserting 20 MiB: {e}\n{}", proxy.log_tail(20)));
    // Read back in a transaction so the primary answers (no replication wait needed).
    conn.query_drop("START TRANSACTION").await.unwrap();
    let back: Option<Vec<u8>> = conn
        .exec_first(format!("SELECT b FROM {t} WHERE id = ?"), (1,))
        .await
        .unwrap_or_else(|e| panic!("reading 20 MiB: {e}\n{}", proxy.log_tail(20)));
    conn.query_drop("COMMIT").await.unwrap();
    let back = back.expect("the row");
    assert_eq!(back.len(), blob.len());
    assert!(back == blob, "the blob read back compressed differs");

    // What reached the primary is the same.
    let stored: Option<String> = cluster()
        .admin_scalar(0, &format!("SELECT SHA1(b) FROM app.{t} WHERE id = 1"))
        .await
        .unwrap();
    let expected: Option<String> = conn
        .query_first(format!("SELECT SHA1(b) FROM {t} WHERE id = 1 FOR UPDATE"))
        .await
        .unwrap();
    assert!(stored.is_some());
    assert_eq!(stored, expected, "the blob on the primary differs");
    conn.query_drop(format!("DROP TABLE {t}")).await.unwrap();
    conn.disconnect().await.unwrap();
}

#[tokio::test]
async fn an_incompressible_17_mib_blob_reads_back_compressed() {
    let proxy = start_accounts_proxy().await;
    let t = unique_table("czrand");
    // Past one 16 MiB packet; smaller than the 20 MiB case to keep the debug build quick.
    let blob = noise(17 * 1024 * 1024, 0x5eed);
    // Written uncompressed, read compressed: rwproxy frames data that does not compress.
    let mut writer = session(&proxy, false).await;
    writer
        .query_drop(format!("CREATE TABLE {t} (id INT PRIMARY KEY, b LONGBLOB)"))
        .await
        .unwrap();
    writer
        .exec_drop(format!("INSERT INTO {t} VALUES (?, ?)"), (1, blob.clone()))
        .await
        .unwrap();
    let mut conn = session(&proxy, true).await;
    conn.query_drop("START TRANSACTION").await.unwrap();
    let binary: Option<Vec<u8>> = conn
        .exec_first(format!("SELECT b FROM {t} WHERE id = ?"), (1,))
        .await
        .unwrap_or_else(|e| panic!("reading 17 MiB: {e}\n{}", proxy.log_tail(20)));
    conn.query_drop("COMMIT").await.unwrap();
    assert!(
        binary.as_deref() == Some(&blob[..]),
        "binary-protocol read differs"
    );
    let one: Option<i64> = conn.query_first("SELECT 1").await.unwrap();
    assert_eq!(one, Some(1), "the session still works");
    conn.disconnect().await.unwrap();
    writer.query_drop(format!("DROP TABLE {t}")).await.unwrap();
    writer.disconnect().await.unwrap();
}

#[tokio::test]
async fn compressed_multi_row_results_equal_uncompressed_ones() {
    let proxy = start_accounts_proxy().await;
    let t = unique_table("czrows");
    let mut setup = session(&proxy, false).await;
    setup
        .query_drop(format!(
            "CREATE TABLE {t} (id INT PRIMARY KEY, s VARCHAR(300), d DOUBLE, n INT NULL)"
        ))
        .await
        .unwrap();
    // 2,000 rows in a few multi-row inserts (rows both tiny and a few hundred bytes).
    for chunk in 0..4 {
        let values: Vec<String> = (0..500)
            .map(|k| {
                let id = chunk * 500 + k;
                let n = if id % 7 == 0 {
                    "NULL".to_string()
                } else {
                    id.to_string()
                };
                format!(
                    "({id}, REPEAT('{}', {}), {id} / 3, {n})",
                    (b'a' + (id % 26) as u8) as char,
                    id % 300
                )
            })
            .collect();
        setup
            .query_drop(format!("INSERT INTO {t} VALUES {}", values.join(",")))
            .await
            .unwrap();
    }
    setup.disconnect().await.unwrap();
    caught_up().await;

    let select = format!("SELECT id, s, d, n FROM {t} ORDER BY id");
    let mut uncompressed = session(&proxy, false).await;
    let mut compressed = session(&proxy, true).await;
    let text_plain = plain(uncompressed.query(&select).await.unwrap());
    let text_z = plain(compressed.query(&select).await.unwrap());
    assert_eq!(text_plain.len(), 2000);
    assert!(
        text_plain == text_z,
        "text-protocol rows differ when compressed"
    );
    let bin_plain = plain(uncompressed.exec(&select, ()).await.unwrap());
    let bin_z = plain(compressed.exec(&select, ()).await.unwrap());
    assert_eq!(bin_plain.len(), 2000);
    assert!(
        bin_plain == bin_z,
        "binary-protocol rows differ when compressed"
    );
    compressed.disconnect().await.unwrap();
    uncompressed
        .query_drop(format!("DROP TABLE {t}"))
        .await
        .unwrap();
    uncompressed.disconnect().await.unwrap();
}
