//! The `pool` section.

use std::time::Duration;

use crate::model::PoolConfig;
use crate::reader::{MapReader, Problems};

const KEYS: &[&str] = &[
    "enabled",
    "max_per_backend",
    "wait_timeout",
    "idle_timeout",
    "max_age",
];

/// More connections than any server accepts (`max_connections` is at most 100,000).
const MAX_PER_BACKEND: u64 = 100_000;

pub(crate) fn build_pool(root: &MapReader, problems: &mut Problems) -> PoolConfig {
    let s = MapReader::section(root.get("pool"), &root.path_of("pool"), KEYS, problems);
    PoolConfig {
        enabled: s.bool("enabled", problems).unwrap_or(true),
        max_per_backend: s
            .integer("max_per_backend", 1, MAX_PER_BACKEND, problems)
            .and_then(|n| u32::try_from(n).ok()),
        wait_timeout: s
            .duration("wait_timeout", false, problems)
            .unwrap_or(Duration::from_secs(2)),
        idle_timeout: s
            .duration("idle_timeout", true, problems)
            .unwrap_or(Duration::from_secs(60)),
        max_age: s
            .duration("max_age", true, problems)
            .unwrap_or(Duration::from_secs(3600)),
    }
}
