//! Counts kept per backend name (connections open, connections pinned): lock-free to read and
//! to change; a name seen for the first time copies the small map once.

use std::collections::HashMap;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;

use arc_swap::ArcSwap;

pub(crate) struct PerBackendCounts(ArcSwap<HashMap<String, Arc<AtomicUsize>>>);

impl Default for PerBackendCounts {
    fn default() -> Self {
        PerBackendCounts(ArcSwap::new(Arc::new(HashMap::new())))
    }
}

impl PerBackendCounts {
    fn counter(&self, backend: &str) -> Arc<AtomicUsize> {
        if let Some(c) = self.0.load().get(backend) {
            return c.clone();
        }
        self.0.rcu(|map| {
            let mut map = HashMap::clone(map);
            map.entry(backend.to_string()).or_default();
            map
        });
        self.0.load().get(backend).cloned().unwrap_or_default()
    }

    pub fn add(&self, backend: &str) {
        self.counter(backend).fetch_add(1, Ordering::Relaxed);
    }

    pub fn sub(&self, backend: &str) {
        // Never below zero (a miscount must not wrap into a huge gauge).
        let _ = self
            .counter(backend)
            .fetch_update(Ordering::Relaxed, Ordering::Relaxed, |n| n.checked_sub(1));
    }

    pub fn get(&self, backend: &str) -> usize {
        self.0
            .load()
            .get(backend)
            .map(|c| c.load(Ordering::Relaxed))
            .unwrap_or(0)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn counts_by_name_and_never_below_zero() {
        let counts = PerBackendCounts::default();
        counts.add("db1");
        counts.add("db1");
        counts.add("db2");
        counts.sub("db1");
        assert_eq!(
            (counts.get("db1"), counts.get("db2"), counts.get("db3")),
            (1, 1, 0)
        );
        counts.sub("db3");
        assert_eq!(counts.get("db3"), 0);
    }
}
