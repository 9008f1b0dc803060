//! KILL QUERY with the id a client sees through the proxy interrupts its running query.

use std::time::{Duration, Instant};

use mysql_async::prelude::Queryable;

use crate::support::{app_via, start_standard_proxy};

#[tokio::test]
async fn kill_query_from_another_session_interrupts_sleep() {
    interrupts_sleep(|id| format!("KILL QUERY {id}")).await;
}

/// Comments between the words, an executable one among them, do not hide a KILL from rwproxy:
/// the id is still the session's, not the server thread that happens to have that number.
#[tokio::test]
async fn kill_query_with_comments_between_its_words_interrupts_sleep() {
    interrupts_sleep(|id| format!("/* app */ KILL /*!QUERY*/ /* why */ {id} -- done")).await;
}

/// A session runs `SELECT SLEEP(10)`; another sends `kill(id)` with the first one's id.
async fn interrupts_sleep(kill: impl Fn(u64) -> String) {
    // The victim's statement keeps its backend connection busy for seconds: the killer's own
    // statements need other connections, which one shared connection per backend
    // (RWPROXY_TEST_POOL in CI) cannot give; sharing stays on, without a cap.
    let proxy = crate::support::start_proxy(&rwproxy_testkit::standard_yaml(
        crate::support::cluster(),
        "pool: { enabled: true }\n",
    ));
    let mut victim = app_via(&proxy).await;
    let id: u64 = victim
        .query_first("SELECT CONNECTION_ID()")
        .await
        .unwrap()
        .expect("a connection id");

    let sleeper = tokio::spawn(async move {
        let started = Instant::now();
        let result = victim.query_first::<i64, _>("SELECT SLEEP(10)").await;
        (result, started.elapsed(), victim)
    });
    // Let the SLEEP reach the backend.
    tokio::time::sleep(Duration::from_millis(800)).await;

    let mut killer = app_via(&proxy).await;
    let statement = kill(id);
    killer.query_drop(&statement).await.unwrap();

    let (result, elapsed, mut victim) = tokio::time::timeout(Duration::from_secs(15), sleeper)
        .await
        .expect("the sleeping query finished")
        .unwrap();
    assert!(
        elapsed < Duration::from_secs(5),
        "SLEEP(10) ran for {elapsed:?}: {statement} did not reach it"
    );
    match result {
        // MariaDB reports the interruption as ER_QUERY_INTERRUPTED ...
        Err(mysql_async::Error::Server(e)) => assert_eq!(e.code, 1317, "{e:?}"),
        // ... or, as MySQL does, SLEEP() returns 1 when interrupted.
        Ok(value) => assert_eq!(value, Some(1)),
        Err(other) => panic!("unexpected error: {other:?}"),
    }
    // KILL QUERY ends the query, not the session.
    let after: Option<i32> = victim.query_first("SELECT 7").await.unwrap();
    assert_eq!(after, Some(7));
    let same_id: Option<u64> = victim.query_first("SELECT CONNECTION_ID()").await.unwrap();
    assert_eq!(
        same_id,
        Some(id),
        "CONNECTION_ID() must be stable in a session"
    );
}

#[tokio::test]
async fn kill_query_of_an_unknown_id_is_an_error() {
    let proxy = start_standard_proxy();
    let mut conn = app_via(&proxy).await;
    let err = conn.query_drop("KILL QUERY 4000000000").await.unwrap_err();
    // ER_NO_SUCH_THREAD
    assert_eq!(crate::support::server_error(err).code, 1094);
    let ok: Option<i32> = conn.query_first("SELECT 1").await.unwrap();
    assert_eq!(ok, Some(1));
}

/// KILL CONNECTION of an idle session: the server closes it without an error packet (the
/// victim's client then sees the connection gone and may reconnect); through rwproxy too, and
/// the victim's connection is already closed when the killer gets its OK.
#[tokio::test]
async fn killing_an_idle_session_closes_it_without_an_error_packet() {
    use rwproxy_testkit::wire::{RawConn, Reply};
    async fn run(addr: std::net::SocketAddr) -> (Reply, bool) {
        let app = &crate::support::cluster().app;
        let (mut victim, login) = RawConn::login(addr, &app.user, &app.password, Some("app"))
            .await
            .unwrap();
        assert_eq!(login, Reply::Ok);
        let id = match victim.query("SELECT CONNECTION_ID()").await.unwrap() {
            Reply::Rows(rows) => String::from_utf8(rows[0][0].clone().unwrap()).unwrap(),
            other => panic!("{other:?}"),
        };
        let (mut killer, _) = RawConn::login(addr, &app.user, &app.password, Some("app"))
            .await
            .unwrap();
        let killed = killer.query(&format!("KILL {id}")).await.unwrap();
        let closing = victim.wait_closed(Duration::from_secs(5)).await.unwrap();
        (killed, closing.err.is_some())
    }
    let proxy = start_standard_proxy();
    let direct = run(([127, 0, 0, 1], crate::support::cluster().primary().port).into()).await;
    let through = run(proxy.addr()).await;
    assert_eq!(direct, (Reply::Ok, false), "the server's behaviour changed");
    assert_eq!(through, direct);
}
