//! The per-backend checking task: check, record, sleep a jittered interval,
//! repeat. One task per backend, so a hung server never delays the others.

use std::sync::{Arc, Weak};
use std::time::{Duration, Instant};

use rand::Rng;
use tokio::sync::Notify;

use crate::probe::Prober;
use crate::shared::Shared;

/// Shortest pause between two checks (guards against a zero interval).
const MIN_INTERVAL: Duration = Duration::from_millis(10);

/// `interval` scaled by a random factor in [0.85, 1.15], so many proxies
/// watching the same servers do not check in lockstep.
pub(crate) fn jittered(interval: Duration) -> Duration {
    let factor: f64 = rand::thread_rng().gen_range(0.85..=1.15);
    Duration::try_from_secs_f64(interval.as_secs_f64() * factor).unwrap_or(interval)
}

/// Runs until the monitor is dropped or shut down, or the task is aborted.
/// `wake` cuts the sleep short (used after a data-path failure report).
pub(crate) async fn run(
    shared: Weak<Shared>,
    name: String,
    address: String,
    task_id: u64,
    wake: Arc<Notify>,
) {
    let mut prober = Prober::new(&address);
    loop {
        let Some(inputs) = shared.upgrade().and_then(|s| s.check_inputs()) else {
            return;
        };
        let started = Instant::now();
        let outcome = prober
            .check(
                &inputs.credentials,
                inputs.timeout,
                inputs.heartbeat_table.as_ref(),
                inputs.topology,
            )
            .await;
        match shared.upgrade() {
            Some(strong) => strong.record_check(&name, task_id, started, outcome),
            None => return,
        }
        let pause = jittered(inputs.interval)
            .saturating_sub(started.elapsed())
            .max(MIN_INTERVAL);
        tokio::select! {
            _ = tokio::time::sleep(pause) => {}
            _ = wake.notified() => {}
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn jitter_stays_within_fifteen_percent_and_varies() {
        let base = Duration::from_millis(1000);
        let samples: Vec<Duration> = (0..200).map(|_| jittered(base)).collect();
        assert!(samples
            .iter()
            .all(|d| *d >= Duration::from_millis(850) && *d <= Duration::from_millis(1150)));
        let min = samples.iter().min().unwrap();
        let max = samples.iter().max().unwrap();
        assert!(
            *max - *min > Duration::from_millis(100),
            "no spread: {min:?}..{max:?}"
        );
    }

    #[test]
    fn jitter_of_huge_interval_does_not_panic() {
        let _ = jittered(Duration::MAX);
        assert_eq!(jittered(Duration::ZERO), Duration::ZERO);
    }
}
