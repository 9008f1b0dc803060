//! Configurations that must be accepted, and the values they produce.

use std::collections::HashMap;
use std::net::SocketAddr;
use std::time::Duration;

use rwproxy_config::{
    parse, AuthPlugin, Consistency, LogFormat, ReplicaAffinity, ReplicaBalance, RouteTarget,
    UserSecret,
};

fn env(pairs: &[(&str, &str)]) -> HashMap<String, String> {
    pairs
        .iter()
        .map(|(k, v)| (k.to_string(), v.to_string()))
        .collect()
}

const MINIMAL: &str = "
users: [{ name: app, password: pw }]
backends: [{ name: db1, address: '127.0.0.1:3316', primary: true }]
";

#[test]
fn minimal_config_gets_every_default() {
    let c = parse(MINIMAL, &env(&[])).unwrap();
    assert_eq!(c.listen, "127.0.0.1:6033".parse::<SocketAddr>().unwrap());
    assert_eq!(c.max_client_connections, 4096);
    assert_eq!(c.max_allowed_packet, 64 * 1024 * 1024);
    assert!(!c.users_from_backend);
    assert_eq!(c.accounts_refresh_interval, Duration::from_secs(30));
    assert_eq!(c.backends[0].weight, 1);
    assert_eq!(c.backends[0].primary, Some(true));
    assert_eq!(c.timeouts.connect, Duration::from_secs(1));
    assert_eq!(c.timeouts.handshake, Duration::from_secs(5));
    assert!(c.tls.is_none());
    assert!(!c.backend_tls.enabled);
    assert!(c.backend_tls.verify);
    assert_eq!(c.monitor.user, None);
    assert_eq!(c.monitor.interval, Duration::from_millis(500));
    assert_eq!(c.monitor.timeout, Duration::from_secs(1));
    assert_eq!(c.monitor.max_replication_lag, Duration::from_secs(5));
    assert_eq!(c.monitor.write_wait_timeout, Duration::from_secs(2));
    assert_eq!(c.monitor.recovery_checks, 3);
    assert_eq!(c.monitor.failure_threshold, 2);
    assert!(c.monitor.heartbeat.is_none());
    assert_eq!(c.routing.replica_balance, ReplicaBalance::RoundRobin);
    assert_eq!(c.routing.replica_affinity, ReplicaAffinity::Session);
    assert!(c.routing.read_fallback_to_primary);
    assert_eq!(c.routing.consistency, Consistency::Session);
    assert_eq!(c.routing.causal_read_timeout, Duration::from_millis(200));
    assert!(c.routing.rules.is_empty());
    assert!(!c.routing.transaction_replay);
    assert_eq!(c.routing.transaction_replay_max_size, 1024 * 1024);
    assert_eq!(
        c.admin.listen,
        "127.0.0.1:9033".parse::<SocketAddr>().unwrap()
    );
    assert!(c.admin.token.is_none());
    assert_eq!(c.log.format, LogFormat::Text);
    assert_eq!(c.log.level, "info");
    assert_eq!(c.users[0].auth_plugin, AuthPlugin::MysqlNativePassword);
    assert_eq!(c.users[0].consistency, None);
    assert_eq!(c.source_hash.len(), 64);
}

#[test]
fn every_key_set_explicitly_is_read() {
    let dir = std::env::temp_dir().join(format!("rwproxy-config-valid-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    for name in ["cert.pem", "key.pem", "ca.pem"] {
        std::fs::write(dir.join(name), "-----BEGIN X-----\n").unwrap();
    }
    let yaml = format!(
        "
listen: '[::1]:7000'
max_client_connections: 100
max_allowed_packet: 16KiB
users:
  - name: app
    password: ${{APP_PW}}
    auth_plugin: caching_sha2_password
    consistency: global
  - name: reporting
    password_hash: '*CF9E423361BFD63F869140B8405101994CA3832E'
users_from_backend: true
accounts_refresh_interval: 1m
backends:
  - {{ name: db1, address: 127.0.0.1:3316, weight: 1 }}
  - {{ name: db2, address: db2.internal:3317, weight: 2, primary: false }}
timeouts: {{ connect: 250ms, handshake: 3s }}
tls: {{ cert: {dir}/cert.pem, key: {dir}/key.pem, require_tls: true }}
backend_tls: {{ enabled: true, ca: {dir}/ca.pem, verify: true }}
monitor:
  user: monitor
  password: ${{MON_PW:-monitor_pass}}
  interval: 1s
  timeout: 2s
  max_replication_lag: 10s
  write_wait_timeout: 0s
  recovery_checks: 5
  failure_threshold: 4
  heartbeat: {{ table: rwproxy.heartbeat, interval: 100ms }}
routing:
  replica_balance: weighted
  replica_affinity: statement
  read_fallback_to_primary: false
  consistency: eventual
  causal_read_timeout: 0s
  transaction_replay: true
  transaction_replay_max_size: 64KiB
  rules:
    - match: '(?i)^select .* from reports'
      user: reporting
      schema: analytics
      route: replica
      consistency: eventual
    - match: '(?i)for update'
      route: db2
    - match: 'get_lock'
      route: primary
admin:
  listen: 0.0.0.0:9100
  token: ${{ADMIN_TOKEN}}
log: {{ format: json, level: 'info,rwproxy_router=debug' }}
",
        dir = dir.display()
    );
    let c = parse(&yaml, &env(&[("APP_PW", "s3cret"), ("ADMIN_TOKEN", "tok")])).unwrap();
    assert_eq!(c.listen, "[::1]:7000".parse::<SocketAddr>().unwrap());
    assert_eq!(c.max_client_connections, 100);
    assert_eq!(c.max_allowed_packet, 16 * 1024);
    assert_eq!(c.users.len(), 2);
    assert_eq!(c.users[0].auth_plugin, AuthPlugin::CachingSha2Password);
    assert_eq!(c.users[0].consistency, Some(Consistency::Global));
    assert_eq!(
        c.users[0].secret.password().map(|s| s.expose()),
        Some("s3cret")
    );
    match &c.users[1].secret {
        UserSecret::PasswordHash(hash) => assert_eq!(hash[0], 0xCF),
        other => panic!("expected a hash, got {other:?}"),
    }
    assert!(c.users_from_backend);
    assert_eq!(c.accounts_refresh_interval, Duration::from_secs(60));
    let db2 = c.backend("db2").unwrap();
    assert_eq!(
        (db2.host.as_str(), db2.port, db2.weight),
        ("db2.internal", 3317, 2)
    );
    assert_eq!(db2.primary, Some(false));
    assert_eq!(c.backend("db1").unwrap().primary, None);
    assert!(c.backend("db3").is_none());
    assert!(c.pinned_primary().is_none());
    assert_eq!(c.timeouts.connect, Duration::from_millis(250));
    let tls = c.tls.as_ref().unwrap();
    assert_eq!(tls.cert, dir.join("cert.pem"));
    assert!(tls.require_tls);
    assert_eq!(c.backend_tls.ca, Some(dir.join("ca.pem")));
    let (user, password) = c.monitor.credentials().unwrap();
    assert_eq!((user, password.expose()), ("monitor", "monitor_pass"));
    assert_eq!(c.monitor.write_wait_timeout, Duration::ZERO);
    assert_eq!(c.monitor.recovery_checks, 5);
    assert_eq!(c.monitor.failure_threshold, 4);
    assert!(c.routing.transaction_replay);
    assert_eq!(c.routing.transaction_replay_max_size, 64 * 1024);
    let hb = c.monitor.heartbeat.as_ref().unwrap();
    assert_eq!(hb.qualified_name(), "`rwproxy`.`heartbeat`");
    assert_eq!(hb.interval, Duration::from_millis(100));
    assert_eq!(c.routing.replica_balance, ReplicaBalance::Weighted);
    assert_eq!(c.routing.replica_affinity, ReplicaAffinity::Statement);
    assert!(!c.routing.read_fallback_to_primary);
    assert_eq!(c.routing.consistency, Consistency::Eventual);
    assert_eq!(c.routing.rules.len(), 3);
    let r0 = &c.routing.rules[0];
    assert_eq!(r0.route, RouteTarget::Replica);
    assert!(r0.matches("SELECT a FROM reports", "reporting", Some("analytics")));
    assert_eq!(c.routing.rules[1].route, RouteTarget::Backend("db2".into()));
    assert_eq!(c.routing.rules[2].route, RouteTarget::Primary);
    assert_eq!(c.admin.token.as_ref().map(|t| t.expose()), Some("tok"));
    assert_eq!(c.log.format, LogFormat::Json);
    assert_eq!(c.log.level, "info,rwproxy_router=debug");
    std::fs::remove_dir_all(&dir).unwrap();
}

#[test]
fn users_come_from_backend_by_default_with_monitor_and_no_users() {
    let yaml = "
backends: [{ name: db1, address: '127.0.0.1:3316' }]
monitor: { user: monitor, password: monitor_pass }
";
    let c = parse(yaml, &env(&[])).unwrap();
    assert!(c.users_from_backend);
    assert!(c.users.is_empty());
}

#[test]
fn listing_users_keeps_users_from_backend_off_by_default() {
    let yaml = "
users: [{ name: app, password: pw }]
backends: [{ name: db1, address: '127.0.0.1:3316' }]
monitor: { user: monitor, password: monitor_pass }
";
    assert!(!parse(yaml, &env(&[])).unwrap().users_from_backend);
}

#[test]
fn numbers_and_booleans_can_come_from_the_environment() {
    let yaml = "
max_client_connections: ${MAXC:-10}
users: [{ name: app, password: pw }]
backends: [{ name: db1, address: '127.0.0.1:3316', weight: '${W}', primary: '${P:-true}' }]
routing: { read_fallback_to_primary: '${FALLBACK}' }
";
    let c = parse(yaml, &env(&[("W", "7"), ("FALLBACK", "false")])).unwrap();
    assert_eq!(c.max_client_connections, 10);
    assert_eq!(c.backends[0].weight, 7);
    assert_eq!(c.backends[0].primary, Some(true));
    assert!(!c.routing.read_fallback_to_primary);
}

#[test]
fn port_zero_listeners_may_share_an_address() {
    let yaml = format!("listen: 127.0.0.1:0\nadmin: {{ listen: 127.0.0.1:0 }}\n{MINIMAL}");
    let c = parse(&yaml, &env(&[])).unwrap();
    assert_eq!(c.listen.port(), 0);
    assert_eq!(c.admin.listen.port(), 0);
}

#[test]
fn empty_values_read_as_absent() {
    let yaml = format!("tls:\nrouting:\n  rules:\nlog:\n{MINIMAL}");
    let c = parse(&yaml, &env(&[])).unwrap();
    assert!(c.tls.is_none());
    assert!(c.routing.rules.is_empty());
    assert_eq!(c.log.level, "info");
}

#[test]
fn source_hash_tracks_the_raw_text() {
    let a = parse(MINIMAL, &env(&[])).unwrap();
    let b = parse(MINIMAL, &env(&[])).unwrap();
    let c = parse(&format!("{MINIMAL}# comment\n"), &env(&[])).unwrap();
    assert_eq!(a.source_hash, b.source_hash);
    assert_ne!(a.source_hash, c.source_hash);
    assert!(a.source_hash.chars().all(|ch| ch.is_ascii_hexdigit()));
}

#[test]
fn yaml_anchors_and_merge_keys_work() {
    let yaml = "
users: [{ name: app, password: pw }]
x-defaults: &defaults { weight: 3 }
backends:
  - { <<: *defaults, name: db1, address: '127.0.0.1:3316', primary: true }
";
    // `x-defaults` is not a known key: anchors must live inside known keys.
    let err = parse(yaml, &env(&[])).unwrap_err();
    assert_eq!(err.problems.len(), 1);
    assert_eq!(err.problems[0].path, "x-defaults");
    let yaml = "
users: [{ name: app, password: pw }]
backends:
  - &db { name: db1, address: '127.0.0.1:3316', weight: 3, primary: true }
  - { <<: *db, name: db2, address: '127.0.0.1:3317', primary: false }
";
    let c = parse(yaml, &env(&[])).unwrap();
    assert_eq!(c.backends[1].weight, 3);
    assert_eq!(c.backends[1].primary, Some(false));
}
