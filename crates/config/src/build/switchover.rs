//! The `switchover` section.

use std::time::Duration;

use crate::model::SwitchoverConfig;
use crate::reader::{MapReader, Problems};
use crate::secret::Secret;

const KEYS: &[&str] = &[
    "user",
    "password",
    "replication_user",
    "replication_password",
    "max_lag",
    "drain_timeout",
    "catch_up_timeout",
];

pub(crate) fn build_switchover(root: &MapReader, problems: &mut Problems) -> SwitchoverConfig {
    let s = MapReader::section(
        root.get("switchover"),
        &root.path_of("switchover"),
        KEYS,
        problems,
    );
    for (user, password) in [
        ("user", "password"),
        ("replication_user", "replication_password"),
    ] {
        if s.has(user) && !s.has(password) {
            s.missing(
                password,
                problems,
                &format!("is required when switchover.{user} is set"),
            );
        }
    }
    SwitchoverConfig {
        user: s.string("user", problems),
        password: s.string("password", problems).map(Secret::new),
        replication_user: s.string("replication_user", problems),
        replication_password: s.string("replication_password", problems).map(Secret::new),
        max_lag: s
            .duration("max_lag", false, problems)
            .unwrap_or(Duration::from_secs(1)),
        drain_timeout: s
            .duration("drain_timeout", false, problems)
            .unwrap_or(Duration::from_secs(1)),
        catch_up_timeout: s
            .duration("catch_up_timeout", true, problems)
            .unwrap_or(Duration::from_secs(1)),
    }
}
