//! A replica dies (`kill -9`) or freezes (`SIGSTOP`) under a steady read load: it must leave
//! the read rotation quickly, `/backends` must report it down, and no client read may fail.

use std::collections::BTreeMap;
use std::time::{Duration, Instant, SystemTime};

use rwproxy_testkit::wire::{RawConn, Reply};
use rwproxy_testkit::TestSignal;

use crate::support::*;

/// The replica that is broken: node 2, configured as `db3`.
const VICTIM_NODE: usize = 2;
const VICTIM: &str = "db3";
const LOAD_CLIENTS: usize = 4;

/// What one replica-death run measured. Times are from the signal.
#[derive(Debug)]
pub struct DeathRun {
    /// Until `/backends` showed the victim `down` (None: never, within the wait).
    pub to_reported_down: Option<Duration>,
    /// Until the first read after which no read touched the victim: answered by it, failed,
    /// hung, or retried away from it by the proxy (from the proxy's log).
    pub to_clean_reads: Option<Duration>,
    /// The last moment a read touched the victim, from the signal (None: none did).
    pub last_touch: Option<Duration>,
    /// Reads the proxy retried elsewhere after the victim failed them.
    pub retried_reads: usize,
    /// Failed reads, described.
    pub failures: Vec<String>,
    /// The longest a read sent after the signal took (hung reads count as QUERY_LIMIT).
    pub slowest: Duration,
    /// Reads started from 100 ms after the victim was reported down until the end of the
    /// failure (SIGCONT or the end of the load): how many each server answered (None: failed).
    pub after_down: BTreeMap<Option<u32>, usize>,
    pub victim_id: u32,
    pub other_replica_id: u32,
    /// SIGSTOP runs: whether the victim came back after SIGCONT, and when (from SIGCONT).
    pub back_after_cont: Option<Duration>,
    pub log_tail: String,
}

/// Bring up a cluster, put a read load through a fast-monitor proxy, send `signal` to a
/// replica and record what happened.
pub async fn run_replica_death(name: &str, base_port: u16, signal: TestSignal) -> DeathRun {
    let cluster = throwaway(name, base_port);
    let proxy = start_proxy(&fast_yaml(&cluster, "")).await;
    let victim_id = node_server_id(&cluster, VICTIM_NODE).await;
    let other_replica_id = node_server_id(&cluster, 1).await;

    let load = ReadLoad::start(proxy.port, &cluster.app, LOAD_CLIENTS);
    wait_both_replicas_serve(&load, [other_replica_id, victim_id], &proxy).await;
    // A short steady state before the failure.
    tokio::time::sleep(ms(300)).await;

    let guard = (signal == TestSignal::Stop).then_some(ContOnDrop {
        cluster: &cluster,
        node: VICTIM_NODE,
    });
    let anchor = (Instant::now(), SystemTime::now());
    let t0 = anchor.0;
    signal_node(&cluster, VICTIM_NODE, signal);

    let down = wait_backends(&proxy, "db3 down", secs(5), |doc| {
        state_of(doc, VICTIM).as_deref() == Some("down")
    })
    .await;
    let down_at = down.as_ref().ok().map(|(at, _)| *at);
    // Keep the load on for a while after detection (or after giving up).
    let hold_until = down_at.unwrap_or_else(Instant::now) + secs(1);
    tokio::time::sleep(hold_until.saturating_duration_since(Instant::now())).await;

    let failure_ends = Instant::now();
    let mut back_after_cont = None;
    if let Some(guard) = guard {
        let cont_at = Instant::now();
        drop(guard);
        let back = wait_backends(&proxy, "db3 up again", secs(5), |doc| {
            state_of(doc, VICTIM).as_deref() == Some("up")
        })
        .await;
        if let Ok((up_at, _)) = back {
            if load.wait_seen(victim_id, up_at, secs(3)).await.is_some() {
                back_after_cont = Some(up_at - cont_at);
            }
        }
    }
    let samples = load.stop().await;

    // Reads the proxy retried away from the victim, placed on the test's clock.
    let retries: Vec<Instant> = log_events(&proxy)
        .into_iter()
        .filter(|e| {
            e.message().contains("retrying on another server")
                && e.field("backend").as_deref() == Some(VICTIM)
        })
        .map(|e| instant_of(e.at, anchor))
        .collect();
    // Only while the failure lasts: after SIGCONT the replica rightly gets reads again.
    let during = |s: &&Sample| s.started < failure_ends;
    let touched = samples
        .iter()
        .filter(during)
        .filter(|s| s.finished >= t0)
        .filter(|s| s.server() == Some(victim_id) || s.server().is_none())
        .map(|s| s.finished)
        .chain(retries.iter().copied().filter(|at| *at < failure_ends))
        .max();
    let first_read_from = |from: Instant| {
        samples
            .iter()
            .filter(during)
            .find(|s| s.started > from)
            .map(|s| s.started - t0)
    };
    let to_clean_reads = first_read_from(touched.unwrap_or(t0).max(t0));
    let mut after_down = BTreeMap::new();
    if let Some(at) = down_at {
        for s in samples
            .iter()
            .filter(|s| s.started >= at + ms(100) && s.started < failure_ends)
        {
            *after_down.entry(s.server()).or_insert(0) += 1;
        }
    }
    DeathRun {
        to_reported_down: down_at.map(|at| at - t0),
        to_clean_reads,
        last_touch: touched.map(|t| t.saturating_duration_since(t0)),
        retried_reads: retries.len(),
        failures: failures(&samples, t0),
        slowest: samples
            .iter()
            .filter(|s| s.finished >= t0)
            .map(|s| s.finished - s.started.max(t0))
            .max()
            .unwrap_or_default(),
        after_down,
        victim_id,
        other_replica_id,
        back_after_cont,
        log_tail: proxy.log_tail(12),
    }
}

fn check_common(run: &DeathRun, detect_bound: Duration, slowest_bound: Duration) {
    let down = run
        .to_reported_down
        .unwrap_or_else(|| panic!("{VICTIM} never reported down: {run:#?}"));
    assert!(
        down <= detect_bound,
        "{VICTIM} reported down after {down:?}, bound {detect_bound:?}: {run:#?}"
    );
    assert!(
        run.failures.is_empty(),
        "{} reads failed:\n{}\n--- proxy log ---\n{}",
        run.failures.len(),
        run.failures.join("\n"),
        run.log_tail
    );
    assert!(
        run.slowest <= slowest_bound,
        "a read took {:?} after the failure (bound {slowest_bound:?}): it waited on the broken replica: {run:#?}",
        run.slowest
    );
    let total: usize = run.after_down.values().sum();
    assert!(
        total >= 20,
        "too few reads after detection to judge: {run:#?}"
    );
    assert_eq!(
        run.after_down.keys().collect::<Vec<_>>(),
        vec![&Some(run.other_replica_id)],
        "reads after detection must all go to the other replica (server_id {}, not {}): {:?}",
        run.other_replica_id,
        run.victim_id,
        run.after_down
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_killed_replica_leaves_rotation_within_a_second_and_no_read_fails() {
    let _serial = serial().await;
    let run = run_replica_death("fo-kill", 3470, TestSignal::Kill).await;
    eprintln!("kill -9: {run:#?}");
    check_common(&run, secs(1), secs(1));
    let clean = run.to_clean_reads.expect("reads after the kill");
    assert!(
        clean <= secs(1),
        "reads still touched the dead replica {clean:?} after the kill"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_frozen_replica_leaves_rotation_by_timeout_and_no_read_fails() {
    let _serial = serial().await;
    let run = run_replica_death("fo-stop", 3473, TestSignal::Stop).await;
    eprintln!("SIGSTOP: {run:#?}");
    // Two checks of at most 500 ms each, 200 ms apart (±15 %), plus the first interval.
    // A read sent to it before that may wait for the detection, not longer.
    check_common(&run, ms(1600), ms(2100));
    let back = run
        .back_after_cont
        .unwrap_or_else(|| panic!("the replica did not come back after SIGCONT: {run:#?}"));
    assert!(back <= secs(3), "back only {back:?} after SIGCONT");
}

/// `rwproxy_backend_failures_total{backend, kind}` for each kind, now.
async fn failure_kinds(proxy: &rwproxy_testkit::ProxyProcess, backend: &str) -> [f64; 3] {
    let mut counts = [0.0; 3];
    for (count, kind) in counts.iter_mut().zip(["connect", "query", "timeout"]) {
        *count = proxy
            .series(
                "rwproxy_backend_failures_total",
                &[("backend", backend), ("kind", kind)],
            )
            .await
            .unwrap_or_else(|e| panic!("{e}"));
    }
    counts
}

/// A statement sent to a frozen server (SIGSTOP: the kernel still accepts TCP connections for
/// it, nothing answers) fails when the backend login times out, with ERR 2003, and counts one
/// `timeout` failure for that backend — not `connect` nor `query`.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_frozen_backend_counts_a_timeout_failure() {
    let _serial = serial().await;
    let cluster = throwaway("fo-frozen", 3536);
    // A rule sends the probe to the victim whatever the monitor thinks of it.
    let yaml = format!(
        "{}routing:\n  rules:\n    - {{ match: 'frozen_probe', route: {VICTIM} }}\n",
        fast_yaml(&cluster, "")
    );
    let proxy = start_proxy(&yaml).await;
    let before = failure_kinds(&proxy, VICTIM).await;

    let _resume = ContOnDrop {
        cluster: &cluster,
        node: VICTIM_NODE,
    };
    signal_node(&cluster, VICTIM_NODE, TestSignal::Stop);
    // A raw login runs no statement of its own: the probe opens the session's first
    // connection to the victim (on one opened before, it would wait for the monitor instead).
    let app = &cluster.app;
    let (mut conn, login) = RawConn::login(proxy.addr(), &app.user, &app.password, Some("app"))
        .await
        .unwrap();
    assert_eq!(login, Reply::Ok);
    let sent = Instant::now();
    let reply = conn.query("SELECT 'frozen_probe'").await.unwrap();
    let took = sent.elapsed();
    match reply.err() {
        Some(e) => assert_eq!(e.code, 1429, "{e}"),
        None => panic!("the probe on a frozen server got {reply:?}"),
    }
    // A backend login waits no longer than the monitor takes to declare a server down
    // (about 1 s here).
    assert!(took < secs(3), "the probe failed only after {took:?}");
    let after = failure_kinds(&proxy, VICTIM).await;
    assert_eq!(
        [
            after[0] - before[0],
            after[1] - before[1],
            after[2] - before[2]
        ],
        [0.0, 0.0, 1.0],
        "[connect, query, timeout] failures of {VICTIM}\n--- proxy log ---\n{}",
        proxy.log_tail(20)
    );
}
