//! Backend connections kept across sessions (`pool:`). Each test logs in as its own account
//! (created here, `ALL ON app.*` only), so the server's process list shows exactly the
//! connections of that test's rwproxy, and runs against the primary alone.
//!
//! What a later session sees on a reused connection is compared with what a fresh direct
//! connection sees: nothing of the session before it may show.

use std::time::{Duration, Instant};

use mysql_async::prelude::Queryable;
use mysql_async::{Conn, OptsBuilder};
use rwproxy_testkit::metrics::series;
use rwproxy_testkit::wire::{RawConn, Reply};
use rwproxy_testkit::{Credentials, ProxyProcess, ProxyUser, StandardConfig};

use crate::support::{poll_until, proxy_bin, scrape, shared, unique_table};

/// Creates (again) the account `user` with `ALL ON app.*` on the primary.
pub(crate) async fn account(user: &str) -> Credentials {
    let password = format!("{user}_pass");
    let cluster = shared();
    for sql in [
        format!("DROP USER IF EXISTS '{user}'@'%'"),
        format!("CREATE USER '{user}'@'%' IDENTIFIED BY '{password}'"),
        format!("GRANT ALL ON app.* TO '{user}'@'%'"),
    ] {
        cluster.admin_exec(0, &sql).await.unwrap();
    }
    Credentials::new(user, &password)
}

/// rwproxy in front of the primary only, serving `users`, with `pool` (YAML flow map).
pub(crate) fn start(users: Vec<ProxyUser>, pool: &str) -> ProxyProcess {
    let cluster = shared();
    let mut config = StandardConfig::new(cluster);
    config.backends.truncate(1);
    config.users = users;
    config.extra = format!("pool: {pool}\n");
    match ProxyProcess::start(proxy_bin(), &config.to_yaml()) {
        Ok(proxy) => proxy,
        Err(e) => panic!("starting rwproxy: {e}"),
    }
}

pub(crate) fn user(creds: &Credentials) -> ProxyUser {
    ProxyUser::native(&creds.user, &creds.password)
}

pub(crate) async fn via(proxy: &ProxyProcess, creds: &Credentials, db: Option<&str>) -> Conn {
    match proxy.connect(creds, db).await {
        Ok(conn) => conn,
        Err(e) => panic!("connecting through rwproxy: {e}\n{}", proxy.log_tail(30)),
    }
}

pub(crate) async fn direct(creds: &Credentials, db: Option<&str>) -> Conn {
    let opts = OptsBuilder::default()
        .ip_or_hostname("127.0.0.1")
        .tcp_port(shared().primary().port)
        .user(Some(creds.user.clone()))
        .pass(Some(creds.password.clone()))
        .db_name(db.map(str::to_string))
        .prefer_socket(false);
    Conn::new(opts).await.unwrap()
}

/// `rwproxy_backend_pool_events_total{backend="db1", event}` now.
pub(crate) async fn events(proxy: &ProxyProcess, event: &str) -> f64 {
    let text = scrape(proxy, None).await;
    series(
        &text,
        "rwproxy_backend_pool_events_total",
        &[("backend", "db1"), ("event", event)],
    )
    .unwrap_or(0.0)
}

pub(crate) async fn wait_events(proxy: &ProxyProcess, event: &str, at_least: f64) {
    poll_until(
        Duration::from_secs(5),
        &format!("{at_least} pool events '{event}'"),
        || async {
            let now = events(proxy, event).await;
            if now >= at_least {
                Ok(())
            } else {
                Err(format!("{now}"))
            }
        },
    )
    .await
}

/// Waits until at least `at_least` connections to db1 are idle in the pool.
pub(crate) async fn wait_idle(proxy: &ProxyProcess, at_least: f64) {
    poll_until(
        Duration::from_secs(5),
        &format!("{at_least} idle pooled connections"),
        || async {
            let text = scrape(proxy, None).await;
            let now = series(
                &text,
                "rwproxy_backend_pool_idle_connections",
                &[("backend", "db1")],
            )
            .unwrap_or(0.0);
            if now >= at_least {
                Ok(())
            } else {
                Err(format!("{now}"))
            }
        },
    )
    .await
}

/// The server threads of `user` on the primary.
pub(crate) async fn threads(user: &str) -> i64 {
    shared()
        .admin_scalar::<i64>(
            0,
            &format!("SELECT COUNT(*) FROM information_schema.PROCESSLIST WHERE USER = '{user}'"),
        )
        .await
        .unwrap()
        .unwrap_or(0)
}

/// What a session can see of its own state.
const FINGERPRINT: &str = "SELECT @v, @@session.time_zone, @@session.sql_mode, \
     @@session.autocommit, @@session.tx_isolation, @@session.character_set_client, \
     @@session.collation_connection, @@session.wait_timeout, DATABASE(), \
     IS_FREE_LOCK('rwproxy_pool_lock'), @@session.last_insert_id, @@in_transaction";

async fn fingerprint(conn: &mut Conn) -> Vec<mysql_async::Value> {
    let row: mysql_async::Row = conn.query_first(FINGERPRINT).await.unwrap().unwrap();
    row.unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_reused_connection_shows_nothing_of_the_session_before() {
    let creds = account("pool_state").await;
    let table = unique_table("pool_state");
    let proxy = start(vec![user(&creds)], "{ enabled: true }");
    let mut fresh = direct(&creds, Some("app")).await;
    fresh
        .query_drop(format!("CREATE TABLE {table} (id INT PRIMARY KEY)"))
        .await
        .unwrap();
    let expected = fingerprint(&mut fresh).await;

    let mut first = via(&proxy, &creds, Some("app")).await;
    for sql in [
        "SET @v = 42".to_string(),
        "SET time_zone = '+05:00'".into(),
        "SET sql_mode = 'ANSI_QUOTES'".into(),
        "SET SESSION TRANSACTION ISOLATION LEVEL SERIALIZABLE".into(),
        "SET NAMES latin1".into(),
        "SET wait_timeout = 1234".into(),
        "CREATE TEMPORARY TABLE pool_tmp (x INT)".into(),
        "SELECT GET_LOCK('rwproxy_pool_lock', 0)".into(),
        "SET autocommit = 0".into(),
        format!("INSERT INTO {table} VALUES (1)"),
    ] {
        first.query_drop(&sql).await.unwrap();
    }
    assert_ne!(fingerprint(&mut first).await, expected, "the state was set");
    first.disconnect().await.unwrap();
    wait_events(&proxy, "reset", 1.0).await;
    let free: Option<i64> = fresh
        .query_first("SELECT IS_FREE_LOCK('rwproxy_pool_lock')")
        .await
        .unwrap();
    assert_eq!(free, Some(1), "the named lock outlived its session");

    let mut second = via(&proxy, &creds, Some("app")).await;
    assert_eq!(
        fingerprint(&mut second).await,
        expected,
        "a reused connection vs a fresh direct one"
    );
    assert_eq!(
        events(&proxy, "reused").await,
        1.0,
        "the second session reused"
    );
    let err = second
        .query_drop("SELECT * FROM pool_tmp")
        .await
        .unwrap_err();
    assert!(err.to_string().contains("1146"), "{err}");
    let rows: Option<i64> = second
        .query_first(format!("SELECT COUNT(*) FROM {table}"))
        .await
        .unwrap();
    assert_eq!(rows, Some(0), "the open transaction was rolled back");
    assert_eq!(
        threads("pool_state").await,
        2,
        "one reused connection, one direct"
    );
    second.disconnect().await.unwrap();
    fresh
        .query_drop(format!("DROP TABLE {table}"))
        .await
        .unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_session_without_a_schema_never_gets_one() {
    let creds = account("pool_schema").await;
    let proxy = start(vec![user(&creds)], "{ enabled: true }");
    let mut first = via(&proxy, &creds, Some("app")).await;
    first.query_drop("SELECT 1").await.unwrap();
    first.disconnect().await.unwrap();
    wait_idle(&proxy, 1.0).await;

    let mut second = via(&proxy, &creds, None).await;
    let db: Option<Option<String>> = second.query_first("SELECT DATABASE()").await.unwrap();
    assert_eq!(db, Some(None));
    assert_eq!(events(&proxy, "reused").await, 0.0);
    second.disconnect().await.unwrap();
    wait_idle(&proxy, 2.0).await;

    // Sessions with a schema take either kind, and get theirs.
    for db in ["app", "information_schema"] {
        let mut next = via(&proxy, &creds, Some(db)).await;
        let now: Option<String> = next.query_first("SELECT DATABASE()").await.unwrap();
        assert_eq!(now.as_deref(), Some(db));
        next.disconnect().await.unwrap();
    }
    assert!(events(&proxy, "reused").await >= 1.0);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn connect_per_request_reuses_one_server_connection() {
    const REQUESTS: usize = 60;
    let pooled = account("pool_cpr").await;
    let unpooled = account("pool_cpr_off").await;
    let mut off = user(&unpooled);
    off.pooling = Some(false);
    let proxy = start(vec![user(&pooled), off], "{ enabled: true }");
    for creds in [&pooled, &unpooled] {
        for i in 0..REQUESTS {
            let mut conn = via(&proxy, creds, Some("app")).await;
            let one: Option<i64> = conn.query_first(format!("SELECT {i} + 1")).await.unwrap();
            assert_eq!(one, Some(i as i64 + 1));
            conn.disconnect().await.unwrap();
        }
    }
    // Each pooled request after the first reused the connection the one before gave back
    // (the give-back may still be running when the next request starts: then it opens one).
    let reused = events(&proxy, "reused").await;
    assert!(
        reused >= (REQUESTS / 2) as f64,
        "{reused} of {REQUESTS} requests reused a connection"
    );
    // Every request either reused a connection or opened one, and none was closed: the
    // server has exactly the opened ones.
    assert_eq!(
        threads("pool_cpr").await,
        REQUESTS as i64 - reused as i64,
        "server connections of the pooled account"
    );
    // pooling: false — every connection closed with its session.
    poll_until(
        Duration::from_secs(5),
        "pool_cpr_off's threads gone",
        || async {
            match threads("pool_cpr_off").await {
                0 => Ok(()),
                n => Err(format!("{n} threads")),
            }
        },
    )
    .await;
    let resets = events(&proxy, "reset").await;
    assert!(
        resets <= REQUESTS as f64,
        "pooling: false connections were reset: {resets}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn at_the_cap_a_session_waits_for_a_connection_then_gets_1040() {
    let creds = account("pool_cap").await;
    let proxy = start(
        vec![user(&creds)],
        "{ enabled: true, max_per_backend: 2, wait_timeout: 600ms }",
    );
    let mut a = via(&proxy, &creds, Some("app")).await;
    let mut b = via(&proxy, &creds, Some("app")).await;
    // Open transactions: the two sessions keep their connections between statements.
    a.query_drop("BEGIN").await.unwrap();
    b.query_drop("BEGIN").await.unwrap();
    a.query_drop("SELECT 1").await.unwrap();
    b.query_drop("SELECT 1").await.unwrap();

    // A third session logs in (no backend needed; the raw client sends no statement of its
    // own) but its statement finds no connection.
    let (mut c, login) = RawConn::login(proxy.addr(), &creds.user, &creds.password, Some("app"))
        .await
        .unwrap();
    assert!(matches!(login, Reply::Ok), "{login:?}");
    let started = Instant::now();
    let err = match c.query("SELECT 1").await.unwrap() {
        Reply::Err(e) => e,
        other => panic!("expected ERR 1040, got {other:?}"),
    };
    assert_eq!(
        (err.code, err.sql_state.as_deref()),
        (1040, Some("08004")),
        "{err}"
    );
    assert!(
        err.message.contains("db1") && err.message.contains("max_per_backend"),
        "{}",
        err.message
    );
    assert!(started.elapsed() >= Duration::from_millis(600));
    assert_eq!(events(&proxy, "full").await, 1.0);

    // One of the two ends while the third waits: the third gets its connection.
    let waiting = tokio::spawn(async move { c.query("SELECT 7").await });
    tokio::time::sleep(Duration::from_millis(150)).await;
    a.disconnect().await.unwrap();
    match waiting.await.unwrap().unwrap() {
        Reply::Rows(rows) => assert_eq!(rows, vec![vec![Some(b"7".to_vec())]]),
        other => panic!("after the wait: {other:?}"),
    }
    assert_eq!(threads("pool_cap").await, 2, "never more than the cap");
    b.disconnect().await.unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn with_pooling_off_a_session_never_reuses() {
    let creds = account("pool_off").await;
    let proxy = start(vec![user(&creds)], "{ enabled: false }");
    for _ in 0..3 {
        let mut conn = via(&proxy, &creds, Some("app")).await;
        conn.query_drop("SELECT 1").await.unwrap();
        conn.disconnect().await.unwrap();
    }
    assert_eq!(events(&proxy, "reused").await, 0.0);
    poll_until(
        Duration::from_secs(5),
        "pool_off's threads gone",
        || async {
            match threads("pool_off").await {
                0 => Ok(()),
                n => Err(format!("{n} threads")),
            }
        },
    )
    .await;
}

/// `COM_CHANGE_USER` gives the old account's connections back to the pool, reset: a later
/// session of that account takes one and sees nothing of the session that changed user.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn change_user_gives_the_old_accounts_connections_back() {
    let first = account("pool_cu_a").await;
    let second = account("pool_cu_b").await;
    let proxy = start(vec![user(&first), user(&second)], "{ enabled: true }");
    let mut conn = via(&proxy, &first, Some("app")).await;
    conn.query_drop("SET @v = 5").await.unwrap();
    conn.change_user(
        mysql_async::ChangeUserOpts::default()
            .with_user(Some(second.user.clone()))
            .with_pass(Some(second.password.clone()))
            .with_db_name(Some("app".to_string())),
    )
    .await
    .unwrap();
    let (who, v): (String, Option<i64>) = conn
        .query_first("SELECT CURRENT_USER(), @v")
        .await
        .unwrap()
        .unwrap();
    assert_eq!((who.as_str(), v), ("pool_cu_b@%", None));
    wait_idle(&proxy, 1.0).await;

    let mut later = via(&proxy, &first, Some("app")).await;
    let v: Option<Option<i64>> = later.query_first("SELECT @v").await.unwrap();
    assert_eq!(v, Some(None));
    assert_eq!(events(&proxy, "reused").await, 1.0);
    assert_eq!(threads("pool_cu_a").await, 1, "the reused one only");
}

/// At the cap, a session of another account takes over an idle connection with
/// `COM_CHANGE_USER` instead of closing it and logging in anew: one server connection serves
/// both accounts in turn, and each sees exactly what a fresh direct connection of its own
/// account sees (account, schema or none, session state).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn at_the_cap_another_accounts_idle_connection_is_logged_in_again() {
    let first = account("pool_adopt_a").await;
    let second = account("pool_adopt_b").await;
    let proxy = start(
        vec![user(&first), user(&second)],
        "{ enabled: true, max_per_backend: 1, wait_timeout: 2s }",
    );
    let mut a = via(&proxy, &first, Some("app")).await;
    for sql in [
        "SET @v = 42",
        "SET time_zone = '+05:00'",
        "SET sql_mode = 'ANSI_QUOTES'",
        "SET NAMES latin1",
        "SELECT GET_LOCK('rwproxy_pool_lock', 0)",
    ] {
        a.query_drop(sql).await.unwrap();
    }
    let a_thread: Option<i64> = shared()
        .admin_scalar(
            0,
            "SELECT MAX(ID) FROM information_schema.PROCESSLIST WHERE USER = 'pool_adopt_a'",
        )
        .await
        .unwrap();
    a.disconnect().await.unwrap();
    wait_idle(&proxy, 1.0).await;

    for (db, label) in [(Some("app"), "with a schema"), (None, "without a schema")] {
        let mut fresh = direct(&second, db).await;
        let expected = fingerprint(&mut fresh).await;
        let expected_user: Option<String> =
            fresh.query_first("SELECT CURRENT_USER()").await.unwrap();
        fresh.disconnect().await.unwrap();

        let mut b = via(&proxy, &second, db).await;
        assert_eq!(
            fingerprint(&mut b).await,
            expected,
            "{label}: a connection taken over from another account vs a fresh direct one\n{}",
            proxy.log_tail(20)
        );
        let who: Option<String> = b.query_first("SELECT CURRENT_USER()").await.unwrap();
        assert_eq!(who, expected_user, "{label}");
        b.disconnect().await.unwrap();
        wait_idle(&proxy, 1.0).await;
        // Back to the first account for the next round.
        let mut again = via(&proxy, &first, Some("app")).await;
        let v: Option<Option<i64>> = again.query_first("SELECT @v").await.unwrap();
        assert_eq!(
            v,
            Some(None),
            "{label}: the first account's variable is gone"
        );
        again.disconnect().await.unwrap();
        wait_idle(&proxy, 1.0).await;
    }
    // Every one of those sessions ran on the server thread the first one opened.
    assert_eq!(
        events(&proxy, "changed_user").await,
        4.0,
        "{}",
        proxy.log_tail(30)
    );
    let threads_now: Option<i64> = shared()
        .admin_scalar(
            0,
            "SELECT MAX(ID) FROM information_schema.PROCESSLIST WHERE USER IN ('pool_adopt_a', 'pool_adopt_b')",
        )
        .await
        .unwrap();
    assert_eq!(
        threads_now, a_thread,
        "the same server connection throughout"
    );
    assert_eq!(
        threads("pool_adopt_a").await + threads("pool_adopt_b").await,
        1
    );
}
