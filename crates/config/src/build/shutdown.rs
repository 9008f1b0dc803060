//! The `shutdown` section.

use std::time::Duration;

use crate::model::ShutdownConfig;
use crate::reader::{MapReader, Problems};

const KEYS: &[&str] = &["delay", "timeout"];

pub(crate) fn build_shutdown(root: &MapReader, problems: &mut Problems) -> ShutdownConfig {
    let section = MapReader::section(
        root.get("shutdown"),
        &root.path_of("shutdown"),
        KEYS,
        problems,
    );
    ShutdownConfig {
        delay: section
            .duration("delay", false, problems)
            .unwrap_or(Duration::ZERO),
        timeout: section
            .duration("timeout", false, problems)
            .unwrap_or(Duration::from_secs(30)),
    }
}
