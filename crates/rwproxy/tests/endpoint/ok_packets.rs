//! OK packets reach a client that tracks session state (`CLIENT_SESSION_TRACK`) byte for byte
//! as the server sends them: the login OK reports the schema, a `SET` reports the variable,
//! and the `last_gtid` rwproxy tracks for itself (read-your-writes) is not shown.

use std::net::SocketAddr;

use rwproxy_testkit::wire::{
    handshake_response, scramble_native, Greeting, RawConn, CLIENT_MULTI_RESULTS,
    CLIENT_MULTI_STATEMENTS, CLIENT_PLUGIN_AUTH, CLIENT_PROTOCOL_41, CLIENT_SECURE_CONNECTION,
    CLIENT_TRANSACTIONS, COM_PING, COM_QUERY,
};

use crate::support::{cluster, start_standard_proxy, unique_table};

const CLIENT_SESSION_TRACK: u32 = 0x0080_0000;
const CLIENT_DEPRECATE_EOF: u32 = 0x0100_0000;

/// Logs in with session tracking (and multi-statements) and runs `statements` (`PING` sends
/// COM_PING); returns the last packet of every reply, the login's first.
async fn ok_payloads(port: u16, statements: &[String]) -> Vec<Vec<u8>> {
    let app = &cluster().app;
    let addr: SocketAddr = ([127, 0, 0, 1], port).into();
    let mut conn = RawConn::connect(addr).await.unwrap();
    let Greeting::Handshake(greeting) = conn.read_greeting().await.unwrap() else {
        panic!("no greeting from port {port}");
    };
    let caps = CLIENT_PROTOCOL_41
        | CLIENT_SECURE_CONNECTION
        | CLIENT_PLUGIN_AUTH
        | CLIENT_TRANSACTIONS
        | CLIENT_MULTI_RESULTS
        | CLIENT_SESSION_TRACK
        | CLIENT_DEPRECATE_EOF
        | CLIENT_MULTI_STATEMENTS;
    let auth = scramble_native(&app.password, &greeting.scramble);
    let login = handshake_response(caps, &app.user, &auth, Some("app"), "mysql_native_password");
    conn.write_packet(1, &login).await.unwrap();
    let mut out = Vec::new();
    let (_, ok) = conn.read_packet().await.unwrap().expect("login answer");
    out.push(ok);
    for sql in statements {
        let payload = if sql == "PING" {
            vec![COM_PING]
        } else {
            [&[COM_QUERY][..], sql.as_bytes()].concat()
        };
        conn.write_packet(0, &payload).await.unwrap();
        // OK packets until one without SERVER_MORE_RESULTS_EXISTS, or an ERR.
        loop {
            let (_, reply) = conn.read_packet().await.unwrap().expect("an answer");
            match reply.first() {
                Some(0xFF) => {
                    out.push(reply);
                    break;
                }
                Some(0) => {
                    let more = ok_status(&reply) & 0x0008 != 0;
                    out.push(reply);
                    if !more {
                        break;
                    }
                }
                _ => panic!("{sql}: not an OK or ERR: {reply:?}"),
            }
        }
    }
    out
}

/// The status flags of an OK packet with one-byte affected rows and insert id.
fn ok_status(ok: &[u8]) -> u16 {
    assert!(ok[1] < 0xFB && ok[2] < 0xFB, "short lengths only here");
    u16::from_le_bytes([ok[3], ok[4]])
}

#[tokio::test]
async fn ok_packets_are_the_servers() {
    let proxy = start_standard_proxy();
    let run = |t: String| {
        vec![
            format!("CREATE TABLE {t} (id INT PRIMARY KEY, v INT)"),
            format!("INSERT INTO {t} VALUES (1, 1), (2, 2)"),
            format!("UPDATE {t} SET v = v + 1"),
            "SET time_zone = '+01:00'".to_string(),
            // Tracked by rwproxy for itself (how text is read, when the client idles out):
            // hidden from a client that did not ask for them.
            "SET sql_mode = 'ANSI_QUOTES'".to_string(),
            "SET sql_mode = DEFAULT".to_string(),
            "SET wait_timeout = 3600".to_string(),
            "SET autocommit = 1".to_string(),
            "USE app".to_string(),
            // A multi-statement that fails in its second statement, inside a transaction, then
            // COM_PING: the ping's OK says "in transaction", not "more results".
            "SET autocommit = 0".to_string(),
            format!("INSERT INTO {t} VALUES (9, 9); INSERT INTO {t} VALUES (9, 9)"),
            "PING".to_string(),
            "ROLLBACK".to_string(),
            "SET autocommit = 1".to_string(),
            format!("DROP TABLE {t}"),
        ]
    };
    let direct = ok_payloads(cluster().primary().port, &run(unique_table("okd"))).await;
    let through = ok_payloads(proxy.port, &run(unique_table("okp"))).await;
    assert_eq!(direct.len(), through.len());
    for (i, (d, t)) in direct.iter().zip(&through).enumerate() {
        assert_eq!(
            t,
            d,
            "OK packet {i} differs (0 is the login)\n--- proxy log ---\n{}",
            proxy.log_tail(10)
        );
    }
}
