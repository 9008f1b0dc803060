//! Checks that span sections: where accounts come from, how the primary
//! is found, what needs monitor credentials.

use crate::build::backends::BackendsSection;
use crate::build::users::UsersSection;
use crate::model::MonitorConfig;
use crate::reader::{MapReader, Problems};

/// Resolves `users_from_backend` (default: on when monitor credentials are
/// set and no users are listed) and checks that clients can log in at all.
pub(crate) fn resolve_users_from_backend(
    root: &MapReader,
    users: &UsersSection,
    monitor: &MonitorConfig,
    problems: &mut Problems,
) -> bool {
    let has_monitor_credentials = monitor.credentials().is_some();
    let explicit = root.bool("users_from_backend", problems);
    let unreadable = root.has("users_from_backend") && explicit.is_none();
    let enabled = explicit.unwrap_or(has_monitor_credentials && users.entry_count == 0);
    if enabled && !has_monitor_credentials && !monitor_credentials_written(root) {
        problems.add(
            &root.path_of("users_from_backend"),
            root.get("users_from_backend"),
            "needs monitor.user and monitor.password (accounts are read with the monitor credentials)",
        );
    }
    if !enabled && !unreadable && users.entry_count == 0 {
        problems.add(
            &root.path_of("users"),
            root.get("users").or(root.node()),
            "no users: list users here, or set users_from_backend: true (with monitor credentials)",
        );
    }
    enabled
}

/// Without monitor credentials roles cannot be learned, so exactly one
/// backend must be pinned with `primary: true`; never more than one.
pub(crate) fn check_primary_pins(
    root: &MapReader,
    backends: &BackendsSection,
    monitor: &MonitorConfig,
    problems: &mut Problems,
) {
    let pinned = &backends.pinned_primary_paths;
    for extra in pinned.iter().skip(1) {
        problems.add(
            extra,
            None,
            format!(
                "only one backend may have primary: true ({} already has)",
                pinned[0]
            ),
        );
    }
    let credentials_problem_reported = monitor_credentials_written(root);
    if pinned.is_empty()
        && backends.entry_count > 0
        && monitor.credentials().is_none()
        && !credentials_problem_reported
    {
        problems.add(
            &root.path_of("backends"),
            root.get("backends"),
            "without monitor.user/monitor.password one backend must have primary: true (roles cannot be learned)",
        );
    }
}

/// The heartbeat writes and reads a table, which needs credentials.
pub(crate) fn check_heartbeat(root: &MapReader, monitor: &MonitorConfig, problems: &mut Problems) {
    if monitor.heartbeat.is_some()
        && monitor.credentials().is_none()
        && !monitor_credentials_written(root)
    {
        problems.add(
            "monitor.heartbeat",
            None,
            "needs monitor.user and monitor.password",
        );
    }
}

/// Whether monitor credentials were written at all (if they were but are
/// invalid, that is already reported; do not pile on).
fn monitor_credentials_written(root: &MapReader) -> bool {
    let Some(monitor) = root.get("monitor") else {
        return false;
    };
    let crate::yaml_tree::Value::Map(entries) = &monitor.value else {
        return false;
    };
    entries.iter().any(|(key, value)| {
        matches!(&key.value, crate::yaml_tree::Value::Str(k) if k == "user" || k == "password")
            && !matches!(value.value, crate::yaml_tree::Value::Null)
    })
}
