//! Maps the YAML configuration onto the monitor's own settings.

use rwproxy_config::Config;
use rwproxy_monitor::{BackendSpec, HeartbeatSettings, MonitorSettings, MonitorTls};

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
        // The monitor connects as rwproxy's own backend connections do: with `backend_tls`
        // (same CA, same `verify`, each backend checked against its own host). Restart-only,
        // like `backend_tls` itself: a reload keeps the running value (see `reload.rs`).
        tls: config.backend_tls.enabled.then(|| MonitorTls {
            ca: config.backend_tls.ca.clone(),
            verify: config.backend_tls.verify,
        }),
    })
}

#[cfg(test)]
mod tests {
    use std::collections::HashMap;

    use super::*;

    fn parse(extra: &str) -> Config {
        let yaml = format!(
            "backends:\n  - {{ name: db1, address: \"db1.internal:3306\" }}\n\
             monitor: {{ user: monitor, password: pw }}\n{extra}"
        );
        match rwproxy_config::parse(&yaml, &HashMap::new()) {
            Ok(config) => config,
            Err(e) => panic!("{e}\n{yaml}"),
        }
    }

    #[test]
    fn backend_tls_also_covers_the_monitor() {
        let dir = tempfile::tempdir().unwrap();
        let ca = dir.path().join("ca.pem");
        std::fs::write(&ca, "not read here").unwrap();
        let config = parse(&format!(
            "backend_tls: {{ enabled: true, ca: \"{}\", verify: true }}\n",
            ca.display()
        ));
        let tls = settings(&config).and_then(|s| s.tls);
        assert_eq!(
            tls,
            Some(MonitorTls {
                ca: Some(ca),
                verify: true
            })
        );
        let config = parse("backend_tls: { enabled: true, verify: false }\n");
        let tls = settings(&config).and_then(|s| s.tls);
        assert_eq!(
            tls,
            Some(MonitorTls {
                ca: None,
                verify: false
            })
        );
        assert_eq!(settings(&parse("")).map(|s| s.tls), Some(None));
    }
}
