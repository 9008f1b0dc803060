//! Time-to-detect figures for `integration/bench/detect.sh` (ignored by default):
//! `kill -9` and `SIGSTOP` of a replica under read load, three runs each, medians printed.
//!
//!     cargo test -p rwproxy --test failover -- --ignored --nocapture detection_figures

use std::time::Duration;

use rwproxy_testkit::TestSignal;

use crate::replica_death::{run_replica_death, DeathRun};
use crate::support::*;

const RUNS: usize = 3;

fn median(mut values: Vec<Duration>) -> Option<Duration> {
    values.sort();
    values.get(values.len() / 2).copied()
}

fn ms_text(d: Option<Duration>) -> String {
    match d {
        Some(d) => format!("{:.0}", d.as_secs_f64() * 1000.0),
        None => "-".to_string(),
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[ignore = "a benchmark: run by integration/bench/detect.sh"]
async fn detection_figures() {
    let _serial = serial().await;
    println!(
        "detect: monitor interval {MONITOR_INTERVAL}, timeout {MONITOR_TIMEOUT}, failure_threshold 2 (default), 4 read clients"
    );
    for (label, signal) in [("kill -9", TestSignal::Kill), ("SIGSTOP", TestSignal::Stop)] {
        let mut runs: Vec<DeathRun> = Vec::new();
        for i in 0..RUNS {
            let run = run_replica_death("fo-bench", 3488, signal).await;
            println!(
                "detect: {label} run {}: reported down {} ms, reads clean from {} ms \
                 (last read touching it ended {} ms), reads retried by the proxy {}, failed reads {}, slowest read {} ms",
                i + 1,
                ms_text(run.to_reported_down),
                ms_text(run.to_clean_reads),
                ms_text(run.last_touch),
                run.retried_reads,
                run.failures.len(),
                ms_text(Some(run.slowest)),
            );
            runs.push(run);
        }
        let down = median(runs.iter().filter_map(|r| r.to_reported_down).collect());
        let clean = median(runs.iter().filter_map(|r| r.to_clean_reads).collect());
        let slowest = median(runs.iter().map(|r| r.slowest).collect());
        let failed: usize = runs.iter().map(|r| r.failures.len()).sum();
        println!(
            "detect: {label} MEDIAN of {RUNS}: signal -> /backends down {} ms; \
             signal -> first read no longer sent there {} ms; slowest read {} ms; failed reads {failed}",
            ms_text(down),
            ms_text(clean),
            ms_text(slowest),
        );
    }
}
