//! A lock-free histogram for the hot path.
//!
//! `prometheus_client::metrics::histogram::Histogram` takes a mutex on every observation. The
//! query-duration histogram is hit once per statement from every client task, so this one
//! keeps one atomic per bucket instead, in one shard per thread ([`crate::shard`]): an
//! observation is a binary search plus two atomic adds on memory no other thread writes,
//! never a lock and never an allocation. A scrape adds the shards up.
//!
//! The total count is derived from the bucket counts at encode time, so `_count` always equals
//! the `+Inf` bucket even while observations race with a scrape. `_sum` may lag by the
//! observations in flight, which Prometheus tolerates.

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;

use prometheus_client::encoding::{EncodeMetric, MetricEncoder, NoLabelSet};
use prometheus_client::metrics::{MetricType, TypedMetric};

/// Upper bounds (seconds) of the query-duration buckets: 100 µs to 10 s.
pub const QUERY_DURATION_BUCKETS: [f64; 16] = [
    0.0001, 0.00025, 0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5,
    5.0, 10.0,
];

/// A histogram with fixed bucket bounds and atomic counters. Clones share the same data.
#[derive(Debug, Clone)]
pub struct AtomicHistogram {
    inner: Arc<Inner>,
}

#[derive(Debug)]
struct Inner {
    /// Finite, strictly increasing upper bounds.
    bounds: Box<[f64]>,
    shards: Box<[Shard]>,
}

/// One thread's counts (aligned so that two shards never share a cache line).
#[derive(Debug)]
#[repr(align(128))]
struct Shard {
    /// One counter per bound plus the overflow (`+Inf`) bucket; not cumulative.
    counts: Box<[AtomicU64]>,
    /// Sum of the observations, as `f64` bits.
    sum_bits: AtomicU64,
}

impl AtomicHistogram {
    /// Creates a histogram; non-finite bounds are dropped and the rest sorted and de-duplicated.
    pub fn new(bounds: &[f64]) -> Self {
        let mut sorted: Vec<f64> = bounds.iter().copied().filter(|b| b.is_finite()).collect();
        sorted.sort_by(f64::total_cmp);
        sorted.dedup();
        let buckets = sorted.len() + 1;
        let shards = (0..crate::shard::count())
            .map(|_| Shard {
                counts: (0..buckets).map(|_| AtomicU64::new(0)).collect(),
                sum_bits: AtomicU64::new(0f64.to_bits()),
            })
            .collect();
        AtomicHistogram {
            inner: Arc::new(Inner {
                bounds: sorted.into_boxed_slice(),
                shards,
            }),
        }
    }

    /// The histogram used for query durations.
    pub fn for_query_duration() -> Self {
        Self::new(&QUERY_DURATION_BUCKETS)
    }

    /// Records one observation. Negative, NaN and infinite values are ignored.
    pub fn observe(&self, value: f64) {
        if !value.is_finite() || value < 0.0 {
            return;
        }
        let inner = &*self.inner;
        // First bucket whose upper bound is >= value (Prometheus buckets are inclusive).
        let index = inner.bounds.partition_point(|bound| *bound < value);
        let Some(shard) = inner.shards.get(crate::shard::index(inner.shards.len())) else {
            return;
        };
        if let Some(count) = shard.counts.get(index) {
            count.fetch_add(1, Ordering::Relaxed);
        }
        let mut current = shard.sum_bits.load(Ordering::Relaxed);
        loop {
            let next = (f64::from_bits(current) + value).to_bits();
            match shard.sum_bits.compare_exchange_weak(
                current,
                next,
                Ordering::Relaxed,
                Ordering::Relaxed,
            ) {
                Ok(_) => break,
                Err(actual) => current = actual,
            }
        }
    }

    /// Number of observations so far.
    #[cfg(test)]
    pub fn count(&self) -> u64 {
        self.inner
            .shards
            .iter()
            .flat_map(|s| s.counts.iter())
            .map(|c| c.load(Ordering::Relaxed))
            .sum()
    }

    /// Sum of the observations so far.
    pub fn sum(&self) -> f64 {
        self.inner
            .shards
            .iter()
            .map(|s| f64::from_bits(s.sum_bits.load(Ordering::Relaxed)))
            .sum()
    }

    /// `(upper bound, count in this bucket)` pairs, ending with the `+Inf` bucket.
    fn snapshot(&self) -> Vec<(f64, u64)> {
        let inner = &*self.inner;
        inner
            .bounds
            .iter()
            .copied()
            .chain(std::iter::once(f64::INFINITY))
            .enumerate()
            .map(|(i, bound)| {
                let count = inner
                    .shards
                    .iter()
                    .filter_map(|s| s.counts.get(i))
                    .map(|c| c.load(Ordering::Relaxed))
                    .sum();
                (bound, count)
            })
            .collect()
    }
}

impl TypedMetric for AtomicHistogram {
    const TYPE: MetricType = MetricType::Histogram;
}

impl EncodeMetric for AtomicHistogram {
    fn encode(&self, mut encoder: MetricEncoder) -> Result<(), std::fmt::Error> {
        let buckets = self.snapshot();
        let count = buckets.iter().map(|(_, c)| c).sum();
        encoder.encode_histogram::<NoLabelSet>(self.sum(), count, &buckets, None)
    }

    fn metric_type(&self) -> MetricType {
        MetricType::Histogram
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn observations_land_in_inclusive_buckets() {
        let h = AtomicHistogram::new(&[1.0, 2.0, f64::INFINITY, 1.0]);
        h.observe(0.5);
        h.observe(1.0);
        h.observe(1.5);
        h.observe(7.0);
        h.observe(-1.0);
        h.observe(f64::NAN);
        let snap = h.snapshot();
        assert_eq!(snap, vec![(1.0, 2), (2.0, 1), (f64::INFINITY, 1)]);
        assert_eq!(h.count(), 4);
        assert!((h.sum() - 10.0).abs() < 1e-9);
    }

    #[test]
    fn concurrent_observations_are_all_counted() {
        let h = AtomicHistogram::for_query_duration();
        let threads: Vec<_> = (0..4)
            .map(|_| {
                let h = h.clone();
                std::thread::spawn(move || {
                    for _ in 0..10_000 {
                        h.observe(0.002);
                    }
                })
            })
            .collect();
        for t in threads {
            t.join().unwrap();
        }
        assert_eq!(h.count(), 40_000);
        assert!((h.sum() - 80.0).abs() < 1e-6);
    }
}
