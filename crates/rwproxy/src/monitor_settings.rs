//! Maps the YAML configuration onto the monitor's own settings.

use rwproxy_config::{Config, MonitorTopology};
use rwproxy_monitor::{BackendSpec, HeartbeatSettings, MonitorSettings, MonitorTls, TopologyMode};

pub fn backend_specs(config: &Config) -> Vec<BackendSpec> {
    config
        .backends
        .iter()
        .map(|b| BackendSpec {
            name: b.name.clone(),
            address: b.address.clone(),
            pinned_primary: b.primary == Some(true),
            priority: b.priority,
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
        topology: match config.monitor.topology {
            MonitorTopology::Auto => TopologyMode::Auto,
            MonitorTopology::Replication => TopologyMode::Replication,
            MonitorTopology::Galera => TopologyMode::Galera,
        },
        galera_max_recv_queue: config.monitor.galera_max_recv_queue,
    })
}

/// The switchover request the configuration describes, to `target`; or why it cannot run.
pub fn switchover_request(
    config: &Config,
    target: Option<String>,
) -> Result<rwproxy_monitor::switchover::SwitchoverRequest, String> {
    let sw = &config.switchover;
    let (user, password) = match (&sw.user, &sw.password) {
        (Some(u), Some(p)) => (u.clone(), p.expose().to_string()),
        _ => match (&config.monitor.user, &config.monitor.password) {
            (Some(u), Some(p)) => (u.clone(), p.expose().to_string()),
            _ => return Err("a switchover needs switchover.user or monitor credentials".into()),
        },
    };
    let (Some(replication_user), Some(replication_password)) =
        (&sw.replication_user, &sw.replication_password)
    else {
        return Err(
            "a switchover needs switchover.replication_user and replication_password (the account replicas replicate with)"
                .into(),
        );
    };
    Ok(rwproxy_monitor::switchover::SwitchoverRequest {
        target,
        user,
        password,
        replication_user: replication_user.clone(),
        replication_password: replication_password.expose().to_string(),
        tls: config.backend_tls.enabled.then(|| MonitorTls {
            ca: config.backend_tls.ca.clone(),
            verify: config.backend_tls.verify,
        }),
        max_lag: sw.max_lag,
        drain_timeout: sw.drain_timeout,
        catch_up_timeout: sw.catch_up_timeout,
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
