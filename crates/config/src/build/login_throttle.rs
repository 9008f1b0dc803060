//! The `login_throttle` section.

use std::time::Duration;

use crate::model::LoginThrottleConfig;
use crate::reader::{MapReader, Problems};

const KEYS: &[&str] = &["max_failures", "block_for", "max_sources"];

pub(crate) fn build_login_throttle(
    root: &MapReader,
    problems: &mut Problems,
) -> LoginThrottleConfig {
    let section = MapReader::section(
        root.get("login_throttle"),
        &root.path_of("login_throttle"),
        KEYS,
        problems,
    );
    LoginThrottleConfig {
        max_failures: section
            .integer("max_failures", 0, 1_000_000, problems)
            .and_then(|n| u32::try_from(n).ok())
            .unwrap_or(0),
        block_for: section
            .duration("block_for", true, problems)
            .unwrap_or(Duration::from_secs(300)),
        max_sources: section
            .integer("max_sources", 1, 10_000_000, problems)
            .and_then(|n| usize::try_from(n).ok())
            .unwrap_or(10_000),
    }
}
