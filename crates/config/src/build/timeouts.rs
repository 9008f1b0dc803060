//! The `timeouts` section.

use std::time::Duration;

use crate::model::TimeoutsConfig;
use crate::reader::{MapReader, Problems};

const TIMEOUT_KEYS: &[&str] = &["connect", "handshake"];

pub(crate) fn build_timeouts(root: &MapReader, problems: &mut Problems) -> TimeoutsConfig {
    let timeouts = MapReader::section(
        root.get("timeouts"),
        &root.path_of("timeouts"),
        TIMEOUT_KEYS,
        problems,
    );
    TimeoutsConfig {
        connect: timeouts
            .duration("connect", true, problems)
            .unwrap_or(Duration::from_secs(1)),
        handshake: timeouts
            .duration("handshake", true, problems)
            .unwrap_or(Duration::from_secs(5)),
    }
}
