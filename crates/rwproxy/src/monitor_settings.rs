//! Maps the YAML configuration onto the monitor's own settings.

use rwproxy_config::Config;
use rwproxy_monitor::{BackendSpec, HeartbeatSettings, MonitorSettings};

pub fn backend_specs(config: &Config) -> Vec<BackendSpec> {
    config
        .backends
        .iter()
        .map(|b| BackendSpec {
            name: b.name.clone(),
            address: b.address.clone(),
            pinned_primary: b.primary == Some(true),
        })
        .collect()
}

/// `None` when the configuration has no monitoring credentials (static roles from the YAML).
pub fn settings(config: &Config) -> Option<MonitorSettings> {
    let (user, password) = config.monitor.credentials()?;
    Some(MonitorSettings {
        user: user.to_string(),
        password: password.expose().to_string(),
        interval: config.monitor.interval,
        timeout: config.monitor.timeout,
        max_replication_lag: config.monitor.max_replication_lag,
        write_wait_timeout: config.monitor.write_wait_timeout,
        recovery_checks: config.monitor.recovery_checks,
        failure_threshold: config.monitor.failure_threshold,
        heartbeat: config
            .monitor
            .heartbeat
            .as_ref()
            .map(|h| HeartbeatSettings {
                table: h.qualified_name(),
                interval: h.interval,
            }),
    })
}
