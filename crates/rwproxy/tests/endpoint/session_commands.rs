//! COM_CHANGE_USER and COM_RESET_CONNECTION through the proxy.

use mysql_async::prelude::Queryable;
use mysql_async::ChangeUserOpts;
use rwproxy_testkit::{ProxyUser, StandardConfig};

use crate::support::{app_via, cluster, server_error, start_proxy, start_standard_proxy};

/// The standard config plus the cluster's `admin` account as a second proxy user.
fn two_user_proxy() -> rwproxy_testkit::ProxyProcess {
    let cluster = cluster();
    let mut config = StandardConfig::new(cluster);
    config.users.push(ProxyUser::native(
        &cluster.admin.user,
        &cluster.admin.password,
    ));
    start_proxy(&config.to_yaml())
}

#[tokio::test]
async fn change_user_switches_account_and_resets_the_session() {
    let proxy = two_user_proxy();
    let cluster = cluster();
    let mut conn = app_via(&proxy).await;
    conn.query_drop("SET @marker = 42").await.unwrap();
    let who: Option<String> = conn.query_first("SELECT CURRENT_USER()").await.unwrap();
    assert!(who.as_deref().unwrap_or("").starts_with("app@"), "{who:?}");

    conn.change_user(
        ChangeUserOpts::default()
            .with_user(Some(cluster.admin.user.clone()))
            .with_pass(Some(cluster.admin.password.clone()))
            .with_db_name(Some("mysql".to_string())),
    )
    .await
    .unwrap();
    let (who, db, marker): (String, Option<String>, Option<i64>) = conn
        .query_first("SELECT CURRENT_USER(), DATABASE(), @marker")
        .await
        .unwrap()
        .unwrap();
    assert!(who.starts_with("admin@"), "{who}");
    assert_eq!(db.as_deref(), Some("mysql"));
    assert_eq!(
        marker, None,
        "user variables are gone after COM_CHANGE_USER"
    );
    // admin may read what app may not.
    let users: Option<i64> = conn
        .query_first("SELECT COUNT(*) FROM mysql.global_priv")
        .await
        .unwrap();
    assert!(users.unwrap_or(0) >= 4);

    conn.change_user(
        ChangeUserOpts::default()
            .with_user(Some(cluster.app.user.clone()))
            .with_pass(Some(cluster.app.password.clone()))
            .with_db_name(Some("app".to_string())),
    )
    .await
    .unwrap();
    let (who, db): (String, Option<String>) = conn
        .query_first("SELECT CURRENT_USER(), DATABASE()")
        .await
        .unwrap()
        .unwrap();
    assert!(who.starts_with("app@"), "{who}");
    assert_eq!(db.as_deref(), Some("app"));
    let err = conn
        .query_drop("SELECT COUNT(*) FROM mysql.global_priv")
        .await
        .unwrap_err();
    assert_eq!(
        server_error(err).code,
        1142,
        "app must not read mysql.global_priv"
    );
}

#[tokio::test]
async fn change_user_with_a_wrong_password_is_refused() {
    let proxy = two_user_proxy();
    let cluster = cluster();
    let mut conn = app_via(&proxy).await;
    let err = conn
        .change_user(
            ChangeUserOpts::default()
                .with_user(Some(cluster.admin.user.clone()))
                .with_pass(Some("not-the-password".to_string())),
        )
        .await
        .unwrap_err();
    let e = server_error(err);
    assert_eq!((e.code, e.state.as_str()), (1045, "28000"), "{e:?}");
    assert!(
        e.message.starts_with("Access denied for user 'admin'@'"),
        "{}",
        e.message
    );
    crate::support::assert_proxy_serves(&proxy).await;
}

#[tokio::test]
async fn reset_connection_clears_session_state() {
    let proxy = start_standard_proxy();
    let mut conn = app_via(&proxy).await;
    conn.query_drop("SET @marker = 'set before reset'")
        .await
        .unwrap();
    conn.query_drop("CREATE TEMPORARY TABLE app.reset_tmp (a INT)")
        .await
        .unwrap();
    conn.query_drop("SET SESSION sql_mode = 'ANSI_QUOTES'")
        .await
        .unwrap();
    let supported = conn.reset().await.unwrap();
    assert!(supported, "COM_RESET_CONNECTION must be supported");

    let marker: Option<Option<String>> = conn.query_first("SELECT @marker").await.unwrap();
    assert_eq!(marker, Some(None), "user variable survived the reset");
    let err = conn
        .query_drop("SELECT * FROM app.reset_tmp")
        .await
        .unwrap_err();
    assert_eq!(
        server_error(err).code,
        1146,
        "temporary table survived the reset"
    );
    let mode: Option<String> = conn.query_first("SELECT @@SESSION.sql_mode").await.unwrap();
    assert_ne!(
        mode.as_deref(),
        Some("ANSI_QUOTES"),
        "sql_mode survived the reset"
    );
    // Still the same user and schema, and usable.
    let (who, db): (String, Option<String>) = conn
        .query_first("SELECT CURRENT_USER(), DATABASE()")
        .await
        .unwrap()
        .unwrap();
    assert!(who.starts_with("app@"), "{who}");
    assert_eq!(db.as_deref(), Some("app"));
}

/// The server drops what a login set by itself (CLIENT_IGNORE_SPACE puts IGNORE_SPACE in
/// sql_mode) on COM_RESET_CONNECTION; through rwproxy a backend connection opened after the
/// reset starts from that reset state too (here: the first read after the reset, on a replica
/// the session had not used).
#[tokio::test]
async fn a_reset_session_keeps_the_servers_sql_mode_on_new_backend_connections() {
    use rwproxy_testkit::wire::{
        handshake_response, scramble_native, Greeting, RawConn, Reply, DEFAULT_CLIENT_CAPABILITIES,
    };
    const CLIENT_IGNORE_SPACE: u32 = 0x100;
    const COM_RESET_CONNECTION: u8 = 0x1f;
    async fn run(addr: std::net::SocketAddr) -> Vec<Reply> {
        let app = &cluster().app;
        let mut conn = RawConn::connect(addr).await.unwrap();
        let Greeting::Handshake(g) = conn.read_greeting().await.unwrap() else {
            panic!("no greeting")
        };
        let auth = scramble_native(&app.password, &g.scramble);
        let login = handshake_response(
            DEFAULT_CLIENT_CAPABILITIES | CLIENT_IGNORE_SPACE,
            &app.user,
            &auth,
            Some("app"),
            "mysql_native_password",
        );
        conn.write_packet(1, &login).await.unwrap();
        assert_eq!(
            conn.read_auth_result(&app.password).await.unwrap(),
            Reply::Ok
        );
        let sql = "SELECT @@session.sql_mode LIKE '%IGNORE_SPACE%'";
        let mut out = vec![conn.query("BEGIN").await.unwrap()];
        out.push(conn.query(sql).await.unwrap());
        out.push(conn.query("COMMIT").await.unwrap());
        out.push(conn.command(COM_RESET_CONNECTION, &[]).await.unwrap());
        out.push(conn.query(sql).await.unwrap());
        out
    }
    let proxy = start_standard_proxy();
    let direct = run(([127, 0, 0, 1], cluster().primary().port).into()).await;
    let through = run(proxy.addr()).await;
    assert_eq!(through, direct);
}

/// COM_PING is a command on the server like any other: after an INSERT, a ping, then
/// `ROW_COUNT()` is 0 directly (Connector/Python pings before every statement); through rwproxy
/// too, although the ping is answered without waiting for the server.
#[tokio::test]
async fn a_ping_between_statements_is_seen_by_the_session() {
    use rwproxy_testkit::wire::{RawConn, Reply};
    const COM_PING: u8 = 0x0e;
    async fn run(addr: std::net::SocketAddr, table: &str) -> Vec<Reply> {
        let app = &cluster().app;
        let (mut conn, login) = RawConn::login(addr, &app.user, &app.password, Some("app"))
            .await
            .unwrap();
        assert_eq!(login, Reply::Ok);
        let mut out = Vec::new();
        for step in [
            format!("CREATE TABLE {table} (id INT)"),
            "BEGIN".to_string(),
            format!("INSERT INTO {table} VALUES (1), (2)"),
            "PING".to_string(),
            "SELECT ROW_COUNT()".to_string(),
            format!("INSERT INTO {table} VALUES (3)"),
            "PING".to_string(),
            "PING".to_string(),
            "SELECT ROW_COUNT(), COUNT(*) FROM ".to_string() + table,
            "COMMIT".to_string(),
            format!("DROP TABLE {table}"),
        ] {
            out.push(if step == "PING" {
                conn.command(COM_PING, &[]).await.unwrap()
            } else {
                conn.query(&step).await.unwrap()
            });
        }
        out
    }
    let proxy = start_standard_proxy();
    let direct = run(
        ([127, 0, 0, 1], cluster().primary().port).into(),
        &crate::support::unique_table("pingd"),
    )
    .await;
    let through = run(proxy.addr(), &crate::support::unique_table("pingp")).await;
    assert_eq!(
        through,
        direct,
        "\n--- proxy log ---\n{}",
        proxy.log_tail(10)
    );
}

/// A session idle past its `wait_timeout` is closed by the server without a word; through
/// rwproxy the client's connection is closed after the same time (its backend connections would
/// be closed by the servers anyway), so a client that reconnects on "server has gone away" gets
/// a new session, as directly.
#[tokio::test]
async fn a_session_idle_past_its_wait_timeout_is_closed() {
    use rwproxy_testkit::wire::{RawConn, Reply};
    async fn run(addr: std::net::SocketAddr) -> (Reply, Option<u16>, std::time::Duration) {
        let app = &cluster().app;
        let (mut conn, login) = RawConn::login(addr, &app.user, &app.password, Some("app"))
            .await
            .unwrap();
        assert_eq!(login, Reply::Ok);
        let set = conn.query("SET SESSION wait_timeout = 2").await.unwrap();
        let closing = conn
            .wait_closed(std::time::Duration::from_secs(10))
            .await
            .unwrap();
        (set, closing.err.map(|e| e.code), closing.after)
    }
    let proxy = start_standard_proxy();
    let (d_set, d_err, d_after) = run(([127, 0, 0, 1], cluster().primary().port).into()).await;
    let (p_set, p_err, p_after) = run(proxy.addr()).await;
    assert_eq!((&p_set, p_err), (&d_set, d_err));
    // The server's clock starts when it waits for the next command, a moment before the client
    // has read the reply and starts its own: allow that moment.
    let at_least = std::time::Duration::from_millis(1950);
    assert!(
        d_after >= at_least && p_after >= at_least,
        "closed too early: direct {d_after:?}, through rwproxy {p_after:?}"
    );
    assert!(
        p_after < std::time::Duration::from_secs(4),
        "through rwproxy the idle session was closed only after {p_after:?}\n--- proxy log ---\n{}",
        proxy.log_tail(10)
    );
}
