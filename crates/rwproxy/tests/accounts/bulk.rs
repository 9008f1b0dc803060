//! MariaDB's COM_STMT_BULK_EXECUTE sent by hand through rwproxy (MariaDB Connector/J only uses
//! it when the greeting offers MARIADB_CLIENT_STMT_BULK_OPERATIONS).

use rwproxy_testkit::wire::{RawConn, Reply};

use crate::support::{cluster, start_accounts_proxy, unique_table};

const COM_STMT_PREPARE: u8 = 0x16;
const COM_STMT_BULK_EXECUTE: u8 = 0xFA;
const STMT_BULK_FLAG_SEND_TYPES: u16 = 128;
const MYSQL_TYPE_LONG: u8 = 3;
const MYSQL_TYPE_VAR_STRING: u8 = 253;

/// Prepares `sql`; returns the statement id (reads the parameter definitions and their EOF).
async fn prepare(conn: &mut RawConn, sql: &str) -> Result<u32, String> {
    let mut payload = vec![COM_STMT_PREPARE];
    payload.extend_from_slice(sql.as_bytes());
    conn.write_logical(0, &payload)
        .await
        .map_err(|e| e.to_string())?;
    let (_, first) = conn
        .read_packet()
        .await
        .map_err(|e| e.to_string())?
        .ok_or("connection closed after COM_STMT_PREPARE")?;
    if first.first() != Some(&0) {
        return Err(format!("COM_STMT_PREPARE failed: {first:?}"));
    }
    let id = u32::from_le_bytes(first[1..5].try_into().unwrap());
    let columns = u16::from_le_bytes([first[5], first[6]]);
    let params = u16::from_le_bytes([first[7], first[8]]);
    // Definitions, each block closed by an EOF (no CLIENT_DEPRECATE_EOF here).
    let mut remaining = 0;
    for n in [params, columns] {
        if n > 0 {
            remaining += usize::from(n) + 1;
        }
    }
    for _ in 0..remaining {
        conn.read_packet()
            .await
            .map_err(|e| e.to_string())?
            .ok_or("connection closed in the prepare response")?;
    }
    Ok(id)
}

fn bulk_payload(stmt: u32, rows: &[(i32, String)]) -> Vec<u8> {
    let mut p = vec![COM_STMT_BULK_EXECUTE];
    p.extend_from_slice(&stmt.to_le_bytes());
    p.extend_from_slice(&STMT_BULK_FLAG_SEND_TYPES.to_le_bytes());
    p.extend_from_slice(&[MYSQL_TYPE_LONG, 0, MYSQL_TYPE_VAR_STRING, 0]);
    for (id, name) in rows {
        p.push(0); // indicator: a value follows
        p.extend_from_slice(&id.to_le_bytes());
        p.push(0);
        assert!(name.len() < 251);
        p.push(name.len() as u8);
        p.extend_from_slice(name.as_bytes());
    }
    p
}

#[tokio::test]
async fn a_hand_made_bulk_insert_reaches_the_primary() {
    let proxy = start_accounts_proxy().await;
    let t = unique_table("bulk");
    cluster()
        .admin_exec(
            0,
            &format!("CREATE TABLE app.{t} (id INT PRIMARY KEY, name VARCHAR(64))"),
        )
        .await
        .unwrap();
    let app = &cluster().app;
    // A MariaDB client asking for bulk operations (MARIADB_CLIENT_STMT_BULK_OPERATIONS).
    let (mut conn, reply) =
        RawConn::login_mariadb(proxy.addr(), &app.user, &app.password, Some("app"), 0x4)
            .await
            .unwrap();
    assert_eq!(reply, Reply::Ok);
    let stmt = prepare(&mut conn, &format!("INSERT INTO {t} VALUES (?, ?)"))
        .await
        .unwrap();
    let rows: Vec<(i32, String)> = (1..=500).map(|i| (i, format!("bulk-{i}"))).collect();
    conn.write_logical(0, &bulk_payload(stmt, &rows))
        .await
        .unwrap();
    let reply = conn.read_reply().await.unwrap();
    let on_primary: Option<i64> = cluster()
        .admin_scalar(
            0,
            &format!("SELECT COUNT(*) FROM app.{t} WHERE name = CONCAT('bulk-', id)"),
        )
        .await
        .unwrap();
    // The session goes on either way.
    let after = conn.query("SELECT 1 + 1").await.unwrap();
    cluster()
        .admin_exec(0, &format!("DROP TABLE app.{t}"))
        .await
        .unwrap();
    assert_eq!(
        after,
        Reply::Rows(vec![vec![Some(b"2".to_vec())]]),
        "the session after COM_STMT_BULK_EXECUTE\n--- proxy log ---\n{}",
        proxy.log_tail(20)
    );
    assert_eq!(
        (reply, on_primary),
        (Reply::Ok, Some(500)),
        "COM_STMT_BULK_EXECUTE through rwproxy\n--- proxy log ---\n{}",
        proxy.log_tail(20)
    );
}
