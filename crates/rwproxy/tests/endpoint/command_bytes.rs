//! Every command byte a client may send after login: the server's own answer or a clear
//! error, and never a backend declared down because of what one client sent (issue #13).

use std::net::SocketAddr;
use std::time::Duration;

use rwproxy_testkit::wire::{RawConn, Reply};
use rwproxy_testkit::{Credentials, ProxyProcess, ProxyUser, StandardConfig};

use crate::support::{cluster, start_proxy};

/// The first packet of a reply, reduced to what a client can rely on.
#[derive(Debug, Clone, PartialEq, Eq)]
enum Answer {
    Ok,
    Err(u16, String),
    /// An EOF packet (`0xFE`, short).
    Eof,
    /// Anything else (a result set's column count, the `COM_STATISTICS` string, …).
    Data,
    /// Nothing within the wait (`COM_STMT_CLOSE`, `COM_STMT_SEND_LONG_DATA`).
    Silence,
    /// The connection was closed without a packet.
    Closed,
}

impl Answer {
    fn is_err(&self) -> bool {
        matches!(self, Answer::Err(..))
    }
}

/// Log in as `creds` on a fresh connection, send `command` with `arg`, and classify the first
/// packet of the answer.
async fn answer(addr: SocketAddr, creds: &Credentials, command: u8, arg: &[u8]) -> Answer {
    let (mut conn, reply) = RawConn::login(addr, &creds.user, &creds.password, Some("app"))
        .await
        .unwrap_or_else(|e| panic!("login to {addr} for command {command:#04x}: {e}"));
    assert!(
        matches!(reply, Reply::Ok),
        "login to {addr} for command {command:#04x}: {reply:?}"
    );
    let mut payload = vec![command];
    payload.extend_from_slice(arg);
    conn.write_packet(0, &payload).await.unwrap();
    conn.read_timeout = Duration::from_millis(1500);
    match conn.read_packet().await {
        Ok(None) => Answer::Closed,
        Ok(Some((_, p))) => match p.first() {
            Some(0x00) => Answer::Ok,
            Some(0xFF) => {
                let err = rwproxy_testkit::wire::ErrPacket::parse(&p).expect("an ERR packet");
                Answer::Err(err.code, err.message)
            }
            Some(0xFE) if p.len() < 9 => Answer::Eof,
            _ => Answer::Data,
        },
        Err(rwproxy_testkit::TestkitError::Timeout { .. }) => Answer::Silence,
        Err(e) => panic!("reading the answer to {command:#04x} from {addr}: {e}"),
    }
}

/// `rwproxy_backend_state_changes_total` of one backend. (The commands all go to the primary;
/// the replicas of the shared cluster may change state for reasons of their own.)
async fn state_changes(proxy: &ProxyProcess, backend: &str) -> f64 {
    let (status, body) = proxy.admin_get("/metrics").await.unwrap();
    assert_eq!(status, 200);
    let prefix = format!("rwproxy_backend_state_changes_total{{backend=\"{backend}\"}} ");
    body.lines()
        .find_map(|l| l.strip_prefix(&prefix)?.trim().parse::<f64>().ok())
        .unwrap_or(0.0)
}

/// The name of the backend `/backends` shows as primary, if any.
async fn primary_name(proxy: &ProxyProcess) -> Option<String> {
    let (_, body) = proxy.admin_get("/backends").await.unwrap();
    let json: serde_json::Value = serde_json::from_str(&body).unwrap();
    json["backends"]
        .as_array()?
        .iter()
        .find(|b| b["role"] == "primary" && b["state"] == "up")
        .and_then(|b| b["name"].as_str().map(str::to_string))
}

/// Commands whose answer is the server's own: the proxy relays it as it is.
const RELAYED: &[u8] = &[
    0x02, // COM_INIT_DB
    0x03, // COM_QUERY
    0x04, // COM_FIELD_LIST
    0x07, // COM_REFRESH
    0x09, // COM_STATISTICS
    0x0a, // COM_PROCESS_INFO
    0x0d, // COM_DEBUG
    0x0e, // COM_PING
    0x1b, // COM_SET_OPTION
    0x1f, // COM_RESET_CONNECTION
];

#[tokio::test]
async fn every_command_byte_is_answered_and_no_backend_changes_state() {
    // `admin` may run COM_DEBUG (SUPER); `app` may not.
    let mut config = StandardConfig::new(cluster());
    let admin = &cluster().admin;
    config
        .users
        .push(ProxyUser::native(&admin.user, &admin.password));
    let proxy = start_proxy(&config.to_yaml());
    proxy
        .wait_topology(3, 2, Duration::from_secs(20))
        .await
        .unwrap();
    let primary = primary_name(&proxy).await.expect("a primary");
    let before = state_changes(&proxy, &primary).await;
    let direct = SocketAddr::from(([127, 0, 0, 1], cluster().primary().port));
    let app = &cluster().app;
    let mut problems = Vec::new();
    for command in 0u8..=255 {
        // COM_QUIT closes; COM_SHUTDOWN is never sent to a server by this test.
        if command == 0x01 || command == 0x08 {
            continue;
        }
        let via = answer(proxy.addr(), app, command, b"").await;
        let own = answer(direct, app, command, b"").await;
        let fine = match (&own, &via) {
            // The proxy's own error for commands it does not forward is fine where the server
            // refuses too; a lost connection is not.
            (_, Answer::Err(code, _)) if *code == 1927 || *code == 1835 => false,
            (o, v) if o.is_err() => v.is_err(),
            (o, v) if RELAYED.contains(&command) => o == v,
            (o, v) => o == v || v.is_err(),
        };
        if !fine {
            problems.push(format!("{command:#04x}: server {own:?}, rwproxy {via:?}"));
        }
    }
    // COM_DEBUG as an account allowed to run it: the server answers with an EOF packet.
    let own = answer(direct, admin, 0x0d, b"").await;
    let via = answer(proxy.addr(), admin, 0x0d, b"").await;
    if own != via {
        problems.push(format!(
            "COM_DEBUG as admin: server {own:?}, rwproxy {via:?}"
        ));
    }
    assert!(
        problems.is_empty(),
        "{}\n--- proxy log ---\n{}",
        problems.join("\n"),
        proxy.log_tail(40)
    );
    // A write by another client still works, and nothing changed state.
    crate::support::assert_proxy_serves(&proxy).await;
    assert_eq!(
        primary_name(&proxy).await.as_deref(),
        Some(primary.as_str())
    );
    let after = state_changes(&proxy, &primary).await;
    assert_eq!(
        before,
        after,
        "backend state changes moved from {before} to {after}\n--- proxy log ---\n{}",
        proxy.log_tail(40)
    );
}
