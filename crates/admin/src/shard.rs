//! Per-thread shards for statistics written at every statement: each thread that records gets
//! an index once, so the data-path threads (one per core) write to different memory and never
//! take turns on one lock or cache line.

use std::sync::atomic::{AtomicUsize, Ordering};

static NEXT: AtomicUsize = AtomicUsize::new(0);

thread_local! {
    static INDEX: usize = NEXT.fetch_add(1, Ordering::Relaxed);
}

/// This thread's shard among `shards` (at least one).
pub fn index(shards: usize) -> usize {
    INDEX.try_with(|i| *i).unwrap_or(0) % shards.max(1)
}

/// How many shards to make: one per core.
pub fn count() -> usize {
    std::thread::available_parallelism()
        .map_or(1, |n| n.get())
        .clamp(1, 64)
}
