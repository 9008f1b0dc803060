//! Read-your-writes against replicas that lag on purpose.
//!
//! The tests take turns on the throwaway cluster `ops-lag` (see `lag_cluster`), whose replicas
//! run 1-2 s behind, while the proxy's `max_replication_lag` is 30 s, so the lagging replicas
//! stay in rotation.
//! Eight sessions each insert a unique row and read it straight back, 50 times. Under
//! `consistency: session` no read may miss its own write; under `eventual` (configured, per
//! user, or per statement) the same workload must show misses, which proves that the
//! workload can tell the two apart.

use std::collections::BTreeMap;
use std::sync::atomic::{AtomicI64, Ordering};
use std::time::{Duration, Instant};

use mysql_async::prelude::Queryable;
use rwproxy_testkit::{ClusterInfo, ProxyProcess};

use crate::lag_cluster::lag_cluster;
use crate::support::{
    app_via, config_for, metric, must_metric, scrape, shared, start_routable, unique_table,
};

const SESSIONS: i64 = 8;
const ROUNDS: i64 = 50;

/// A fresh range of row ids (the cluster may be shared with earlier tests).
fn id_base() -> i64 {
    static NEXT: AtomicI64 = AtomicI64::new(1);
    NEXT.fetch_add(1, Ordering::Relaxed) * 1_000_000
}

/// The proxy for the lagging cluster: lag tolerated up to 30 s, short causal waits.
async fn lag_proxy(cluster: &ClusterInfo, consistency: &str, user: Option<&str>) -> ProxyProcess {
    lag_proxy_waiting(cluster, consistency, user, "50ms").await
}

/// [`lag_proxy`] with causal waits of up to `causal_read_timeout`.
async fn lag_proxy_waiting(
    cluster: &ClusterInfo,
    consistency: &str,
    user: Option<&str>,
    causal_read_timeout: &str,
) -> ProxyProcess {
    let mut config = config_for(
        cluster,
        &format!(
            "routing:\n  consistency: {consistency}\n  causal_read_timeout: {causal_read_timeout}\n"
        ),
    );
    config.users[0].consistency = user.map(str::to_string);
    let yaml = config.to_yaml().replace(
        "  timeout: 1s\n",
        "  timeout: 1s\n  max_replication_lag: 30s\n",
    );
    assert!(yaml.contains("max_replication_lag: 30s"), "{yaml}");
    start_routable(cluster, &yaml).await
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Style {
    /// Text protocol INSERT, then SELECT.
    Text,
    /// Prepared INSERT, then prepared SELECT (`exec_first`).
    Prepared,
    /// BEGIN; INSERT; SELECT (inside); COMMIT; then SELECT after the commit.
    AfterCommit,
    /// Text INSERT, then SELECT with `/* rwproxy:consistency=eventual */`.
    EventualHint,
    /// COM_RESET_CONNECTION, then text INSERT and SELECT.
    AfterReset,
    /// COM_CHANGE_USER (same user), then text INSERT and SELECT.
    AfterChangeUser,
}

#[derive(Debug, Default, Clone, Copy)]
struct Tally {
    reads: u64,
    misses: u64,
}

/// Eight sessions, each `ROUNDS` times: write a unique row, read it back at once.
async fn write_then_read(
    proxy: &ProxyProcess,
    cluster: &ClusterInfo,
    style: Style,
    id_base: i64,
) -> Tally {
    let started = Instant::now();
    let mut tasks = Vec::new();
    for session in 0..SESSIONS {
        let mut conn = app_via(proxy, cluster).await;
        tasks.push(tokio::spawn(async move {
            let mut tally = Tally::default();
            for round in 0..ROUNDS {
                let id = id_base + session * 1000 + round;
                let tag = format!("{style:?}-{session}-{round}");
                let got = one_round(&mut conn, style, id, &tag)
                    .await
                    .map_err(|e| format!("session {session} round {round} ({style:?}): {e}"))?;
                tally.reads += 1;
                match got {
                    None => tally.misses += 1,
                    Some(seen) if seen == tag => {}
                    Some(seen) => {
                        return Err(format!("row {id}: read {seen:?}, wrote {tag:?}"));
                    }
                }
            }
            conn.disconnect().await.map_err(|e| e.to_string())?;
            Ok::<Tally, String>(tally)
        }));
    }
    let mut total = Tally::default();
    for task in tasks {
        match task.await.unwrap() {
            Ok(t) => {
                total.reads += t.reads;
                total.misses += t.misses;
            }
            Err(e) => panic!("{e}\n--- proxy log ---\n{}", proxy.log_tail(40)),
        }
    }
    println!(
        "{style:?}: {} reads, {} missed their own write, {:.1}s",
        total.reads,
        total.misses,
        started.elapsed().as_secs_f64()
    );
    total
}

async fn one_round(
    conn: &mut mysql_async::Conn,
    style: Style,
    id: i64,
    tag: &str,
) -> Result<Option<String>, mysql_async::Error> {
    let insert = format!("INSERT INTO ryw (id, tag) VALUES ({id}, '{tag}')");
    let select = format!("SELECT tag FROM ryw WHERE id = {id}");
    match style {
        Style::Text => {
            conn.query_drop(insert).await?;
            conn.query_first(select).await
        }
        Style::Prepared => {
            conn.exec_drop("INSERT INTO ryw (id, tag) VALUES (?, ?)", (id, tag))
                .await?;
            conn.exec_first("SELECT tag FROM ryw WHERE id = ?", (id,))
                .await
        }
        Style::AfterCommit => {
            conn.query_drop("BEGIN").await?;
            conn.query_drop(insert).await?;
            let inside: Option<String> = conn.query_first(&select).await?;
            if inside.as_deref() != Some(tag) {
                // Inside its own transaction a session must always see its write.
                return Ok(Some(format!("inside the transaction: {inside:?}")));
            }
            conn.query_drop("COMMIT").await?;
            conn.query_first(select).await
        }
        Style::AfterReset => {
            // COM_RESET_CONNECTION (false would mean the driver fell back to COM_CHANGE_USER).
            assert!(
                conn.reset().await?,
                "the driver did not send COM_RESET_CONNECTION"
            );
            conn.query_drop(insert).await?;
            conn.query_first(select).await
        }
        Style::AfterChangeUser => {
            conn.change_user(mysql_async::ChangeUserOpts::default())
                .await?;
            conn.query_drop(insert).await?;
            conn.query_first(select).await
        }
        Style::EventualHint => {
            conn.query_drop(insert).await?;
            conn.query_first(format!(
                "SELECT /* rwproxy:consistency=eventual */ tag FROM ryw WHERE id = {id}"
            ))
            .await
        }
    }
}

/// Causal-read outcomes so far: (replica_fresh, replica_after_wait, primary_fallback).
async fn causal_outcomes(proxy: &ProxyProcess) -> (f64, f64, f64) {
    let text = scrape(proxy, None).await;
    let get =
        |outcome: &str| must_metric(&text, "rwproxy_causal_reads_total", &[("outcome", outcome)]);
    (
        get("replica_fresh"),
        get("replica_after_wait"),
        get("primary_fallback"),
    )
}

/// Runs `style` under `session` (no misses; every read went through the causal check) and
/// under `eventual` (misses).
async fn session_versus_eventual(style: Style) {
    let cluster = lag_cluster().await;

    let proxy = lag_proxy(&cluster, "session", None).await;
    let session = write_then_read(&proxy, &cluster, style, id_base()).await;
    assert_eq!(session.reads, (SESSIONS * ROUNDS) as u64);
    assert_eq!(
        session.misses, 0,
        "{style:?} under consistency=session: {} of {} reads missed the session's own write",
        session.misses, session.reads
    );
    let (fresh, waited, fallback) = causal_outcomes(&proxy).await;
    println!("{style:?} session: causal reads fresh={fresh} after_wait={waited} primary_fallback={fallback}");
    // At least one check per read; preparing a statement is covered by its own test below.
    assert!(
        fresh + waited + fallback >= session.reads as f64,
        "every read after a write must go through the causal check: {} checks for {} reads",
        fresh + waited + fallback,
        session.reads
    );
    drop(proxy);

    let proxy = lag_proxy(&cluster, "eventual", None).await;
    let eventual = write_then_read(&proxy, &cluster, style, id_base()).await;
    assert!(
        eventual.misses > 0,
        "{style:?} under consistency=eventual: no read missed its write, so the replicas did not \
         lag and this test proves nothing ({} reads)",
        eventual.reads
    );
    let (fresh, waited, fallback) = causal_outcomes(&proxy).await;
    assert_eq!(
        fresh + waited + fallback,
        0.0,
        "eventual reads are not causal"
    );
}

#[tokio::test]
async fn text_reads_see_own_writes_only_under_session_consistency() {
    session_versus_eventual(Style::Text).await;
}

#[tokio::test]
async fn prepared_reads_see_own_writes_only_under_session_consistency() {
    session_versus_eventual(Style::Prepared).await;
}

#[tokio::test]
async fn reads_after_commit_see_the_transaction_only_under_session_consistency() {
    session_versus_eventual(Style::AfterCommit).await;
}

#[tokio::test]
async fn reads_after_com_reset_connection_see_own_writes_only_under_session_consistency() {
    session_versus_eventual(Style::AfterReset).await;
}

#[tokio::test]
async fn reads_after_com_change_user_see_own_writes_only_under_session_consistency() {
    session_versus_eventual(Style::AfterChangeUser).await;
}

#[tokio::test]
async fn eventual_hint_and_eventual_user_override_session_consistency() {
    let cluster = lag_cluster().await;

    // routing.consistency is session, but the statement asks for eventual.
    let proxy = lag_proxy(&cluster, "session", None).await;
    let hinted = write_then_read(&proxy, &cluster, Style::EventualHint, id_base()).await;
    assert!(
        hinted.misses > 0,
        "/* rwproxy:consistency=eventual */ reads never missed: the hint was not applied \
         ({} reads)",
        hinted.reads
    );
    // The same session style without the hint sees its writes (control).
    let plain = write_then_read(&proxy, &cluster, Style::Text, id_base()).await;
    assert_eq!(
        plain.misses, 0,
        "unhinted reads missed under session consistency"
    );
    drop(proxy);

    // routing.consistency is session, but the user `app` is configured eventual.
    let proxy = lag_proxy(&cluster, "session", Some("eventual")).await;
    let per_user = write_then_read(&proxy, &cluster, Style::Text, id_base()).await;
    assert!(
        per_user.misses > 0,
        "user with consistency: eventual never missed: the per-user override was not applied \
         ({} reads)",
        per_user.reads
    );
    let text = scrape(&proxy, None).await;
    assert_eq!(
        metric(&text, "rwproxy_causal_reads_total", &[]).unwrap_or(0.0),
        0.0,
        "an eventual user's reads are not causal"
    );
}

#[tokio::test]
async fn preparing_right_after_ddl_sees_the_new_table() {
    // A prepare reads the schema: after the session's own CREATE TABLE it must run where the
    // table exists, so it goes through the same causal check as a read (and is counted).
    let cluster = shared();
    let proxy = start_routable(cluster, &config_for(cluster, "").to_yaml()).await;
    let table = unique_table("prep");
    let mut conn = app_via(&proxy, cluster).await;
    conn.query_drop(format!(
        "CREATE TABLE {table} (id INT PRIMARY KEY, tag VARCHAR(20))"
    ))
    .await
    .unwrap();
    conn.query_drop(format!("INSERT INTO {table} VALUES (1, 'one')"))
        .await
        .unwrap();
    let causal = |text: &str| metric(text, "rwproxy_causal_reads_total", &[]).unwrap_or(0.0);
    let before = scrape(&proxy, None).await;
    let stmt = conn
        .prep(format!("SELECT tag FROM {table} WHERE id = ?"))
        .await
        .expect("the prepare must see the table this session just created");
    let after_prepare = scrape(&proxy, None).await;
    let tag: Option<String> = conn.exec_first(&stmt, (1,)).await.unwrap();
    assert_eq!(tag.as_deref(), Some("one"));
    let after_execute = scrape(&proxy, None).await;
    conn.close(stmt).await.unwrap();
    conn.disconnect().await.unwrap();
    cluster
        .admin_exec(0, &format!("DROP TABLE app.{table}"))
        .await
        .unwrap();
    assert_eq!(
        causal(&after_prepare) - causal(&before),
        1.0,
        "the prepare is placed by the causal check"
    );
    assert_eq!(
        causal(&after_execute) - causal(&after_prepare),
        1.0,
        "the execute is one causal read"
    );
}

/// A series under a short name: the name, the metric, its labels.
type Series = (
    &'static str,
    &'static str,
    Vec<(&'static str, &'static str)>,
);

/// The series a causal read moves, by a short name: its outcomes, and the routing reason it
/// comes with.
fn causal_series() -> Vec<Series> {
    let outcome = |o| (o, "rwproxy_causal_reads_total", vec![("outcome", o)]);
    let routed = |key, role, reason| {
        (
            key,
            "rwproxy_routing_decisions_total",
            vec![("role", role), ("reason", reason)],
        )
    };
    vec![
        outcome("replica_fresh"),
        outcome("replica_after_wait"),
        outcome("primary_fallback"),
        outcome("timeout"),
        routed("replica/read", "replica", "read"),
        routed("replica/causal_wait", "replica", "causal_wait"),
        routed("primary/causal_fallback", "primary", "causal_fallback"),
    ]
}

/// The values of [`causal_series`] now.
async fn causal_snapshot(proxy: &ProxyProcess) -> BTreeMap<&'static str, f64> {
    let text = scrape(proxy, None).await;
    causal_series()
        .into_iter()
        .map(|(key, name, labels)| {
            let value = rwproxy_testkit::metrics::series(&text, name, &labels)
                .unwrap_or_else(|| panic!("no series {name}{labels:?} in the scrape:\n{text}"));
            (key, value)
        })
        .collect()
}

/// The series that moved from `before` to `after`, and by how much.
fn moved(
    before: &BTreeMap<&'static str, f64>,
    after: &BTreeMap<&'static str, f64>,
) -> BTreeMap<&'static str, f64> {
    after
        .iter()
        .map(|(key, value)| (*key, value - before[key]))
        .filter(|(_, delta)| *delta != 0.0)
        .collect()
}

/// Reads row `id` back through the proxy: its tag and the server that answered; what the
/// causal series moved meanwhile.
async fn read_back(
    proxy: &ProxyProcess,
    conn: &mut mysql_async::Conn,
    id: i64,
) -> (String, u32, BTreeMap<&'static str, f64>) {
    let before = causal_snapshot(proxy).await;
    let row: Option<(String, u32)> = conn
        .query_first(format!("SELECT tag, @@server_id FROM ryw WHERE id = {id}"))
        .await
        .unwrap();
    let after = causal_snapshot(proxy).await;
    let (tag, server) = row.unwrap_or_else(|| {
        panic!(
            "row {id} not seen by the session that wrote it\n--- proxy log ---\n{}",
            proxy.log_tail(20)
        )
    });
    (tag, server, moved(&before, &after))
}

/// Each way a causal read ends is counted under its own label (docs/metrics.md), with the
/// routing reason it comes with. Right after a session's write no replica of `ops-lag` (1-2 s
/// behind) has been seen at its position, so the read asks one to wait for it: with a 10 s
/// `causal_read_timeout` the replica confirms and answers (`replica_after_wait`,
/// `causal_wait`); with 50 ms it cannot, and the primary answers (`timeout` and
/// `primary_fallback`, `causal_fallback`). Once the monitor has seen the replicas at the
/// position, the next read goes to one of them at once (`replica_fresh`, `read`).
#[tokio::test]
async fn each_causal_read_outcome_is_counted_under_its_labels() {
    let cluster = lag_cluster().await;
    let primary = cluster.server_id_of(cluster.primary().port).await.unwrap();
    let id = id_base();

    let proxy = lag_proxy_waiting(&cluster, "session", None, "10s").await;
    let mut conn = app_via(&proxy, &cluster).await;
    conn.query_drop(format!("INSERT INTO ryw (id, tag) VALUES ({id}, 'waited')"))
        .await
        .unwrap();
    let (tag, server, moves) = read_back(&proxy, &mut conn, id).await;
    assert_eq!(tag, "waited");
    assert_ne!(server, primary, "the replica that waited must answer");
    assert_eq!(
        moves,
        BTreeMap::from([("replica/causal_wait", 1.0), ("replica_after_wait", 1.0)])
    );

    if let Err(e) = proxy
        .wait_monitor_caught_up(&cluster, Duration::from_secs(15))
        .await
    {
        panic!("{e}");
    }
    let (tag, server, moves) = read_back(&proxy, &mut conn, id).await;
    assert_eq!(tag, "waited");
    assert_ne!(server, primary, "a replica already up to date must answer");
    assert_eq!(
        moves,
        BTreeMap::from([("replica/read", 1.0), ("replica_fresh", 1.0)])
    );
    conn.disconnect().await.unwrap();
    drop(proxy);

    let proxy = lag_proxy(&cluster, "session", None).await;
    let mut conn = app_via(&proxy, &cluster).await;
    conn.query_drop(format!(
        "INSERT INTO ryw (id, tag) VALUES ({}, 'fell back')",
        id + 1
    ))
    .await
    .unwrap();
    let (tag, server, moves) = read_back(&proxy, &mut conn, id + 1).await;
    assert_eq!(tag, "fell back");
    assert_eq!(
        server, primary,
        "the primary must answer after the wait timed out"
    );
    assert_eq!(
        moves,
        BTreeMap::from([
            ("primary/causal_fallback", 1.0),
            ("primary_fallback", 1.0),
            ("timeout", 1.0),
        ])
    );
    conn.disconnect().await.unwrap();
}
