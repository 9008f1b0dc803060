//! The `stats` section.

use crate::model::StatsConfig;
use crate::reader::{MapReader, Problems};

const KEYS: &[&str] = &["digests", "max_digests", "export_top"];

pub(crate) fn build_stats(root: &MapReader, problems: &mut Problems) -> StatsConfig {
    let section = MapReader::section(root.get("stats"), &root.path_of("stats"), KEYS, problems);
    let max_digests = section
        .integer("max_digests", 1, 100_000, problems)
        .and_then(|n| usize::try_from(n).ok())
        .unwrap_or(1000);
    let export_top = section
        .integer("export_top", 0, 1000, problems)
        .and_then(|n| usize::try_from(n).ok())
        .unwrap_or(20);
    if export_top > max_digests {
        problems.add(
            &section.path_of("export_top"),
            section.get("export_top"),
            format!("must not exceed max_digests ({max_digests})"),
        );
    }
    StatsConfig {
        digests: section.bool("digests", problems).unwrap_or(true),
        max_digests,
        export_top,
    }
}
