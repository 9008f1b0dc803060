//! Every kind of configuration problem is reported at its YAML path, and
//! several problems are reported together.

use std::collections::HashMap;

use rwproxy_config::{parse, ConfigErrors};

/// A valid base: one user, one pinned primary, no monitor.
const BASE_USERS: &str = "users: [{ name: app, password: pw }]\n";
const BASE_BACKENDS: &str = "backends: [{ name: db1, address: '127.0.0.1:3316', primary: true }]\n";

fn errors(yaml: &str) -> ConfigErrors {
    errors_with_env(yaml, &[])
}

fn errors_with_env(yaml: &str, pairs: &[(&str, &str)]) -> ConfigErrors {
    let env: HashMap<String, String> = pairs
        .iter()
        .map(|(k, v)| (k.to_string(), v.to_string()))
        .collect();
    match parse(yaml, &env) {
        Ok(config) => panic!("expected problems, got a config: {config:?}"),
        Err(errors) => errors,
    }
}

/// Parses `extra` added to a valid base and expects exactly one problem,
/// at `path`, whose message contains `needle`.
fn single(extra: &str, path: &str, needle: &str) -> rwproxy_config::Problem {
    let yaml = format!("{BASE_USERS}{BASE_BACKENDS}{extra}");
    let errs = errors(&yaml);
    assert_eq!(errs.problems.len(), 1, "expected one problem, got:\n{errs}");
    let problem = errs.problems[0].clone();
    assert_eq!(problem.path, path, "{errs}");
    assert!(
        problem.message.contains(needle),
        "'{}' lacks '{needle}'",
        problem.message
    );
    problem
}

#[test]
fn base_is_valid() {
    let yaml = format!("{BASE_USERS}{BASE_BACKENDS}");
    assert!(parse(&yaml, &HashMap::new()).is_ok());
}

#[test]
fn yaml_syntax_error_is_one_problem_with_line_and_column() {
    let errs = errors("listen: 127.0.0.1:6033\nbackends:\n  - name: db1\n   address: x\n");
    assert_eq!(errs.problems.len(), 1, "{errs}");
    let p = &errs.problems[0];
    assert_eq!(p.path, "<yaml>");
    assert_eq!(p.line, Some(4));
    assert!(p.column.is_some());
    assert!(p.message.starts_with("invalid YAML"), "{}", p.message);
}

#[test]
fn duplicate_yaml_key_is_a_syntax_problem() {
    let errs = errors(&format!(
        "{BASE_USERS}{BASE_BACKENDS}listen: 127.0.0.1:1\nlisten: 127.0.0.1:2\n"
    ));
    assert_eq!(errs.problems.len(), 1);
    assert_eq!(errs.problems[0].line, Some(4));
    assert_eq!(
        errs.problems[0].message,
        "invalid YAML: duplicate mapping key: listen"
    );
}

#[test]
fn root_must_be_a_mapping() {
    let errs = errors("- a\n- b\n");
    assert_eq!(errs.problems.len(), 1);
    assert_eq!(errs.problems[0].path, "<root>");
    assert!(errs.problems[0].message.contains("expected a mapping"));
}

#[test]
fn unknown_keys_suggest_the_closest_known_key() {
    let p = single("listn: 127.0.0.1:1\n", "listn", "did you mean 'listen'");
    assert_eq!(p.line, Some(3));
    single(
        "routing:\n  rules:\n    - { mach: x, route: primary }\n",
        "routing.rules[0].mach",
        "did you mean 'match'",
    );
    single(
        "monitor: { intervall: 1s }\n",
        "monitor.intervall",
        "did you mean 'interval'",
    );
    single("frobnicate: 1\n", "frobnicate", "unknown key 'frobnicate'");
    // A misspelled required key is not also reported as missing.
    let errs = errors(&format!(
        "{BASE_USERS}backends: [{{ name: db1, adress: '127.0.0.1:3317', primary: true }}]\n"
    ));
    assert_eq!(errs.problems.len(), 1, "{errs}");
    assert_eq!(errs.problems[0].path, "backends[0].adress");
    assert!(errs.problems[0].message.contains("did you mean 'address'"));
}

#[test]
fn wrong_types_are_named() {
    single(
        "listen: 6033\n",
        "listen",
        "expected a string, found integer 6033",
    );
    single(
        "routing: [a]\n",
        "routing",
        "expected a mapping, found a list",
    );
    single(
        "routing: { rules: {} }\n",
        "routing.rules",
        "expected a list",
    );
    single(
        "routing: { read_fallback_to_primary: yes }\n",
        "routing.read_fallback_to_primary",
        "expected true or false",
    );
    single(
        "max_client_connections: many\n",
        "max_client_connections",
        "expected a whole number",
    );
    single(
        "log: { level: [info] }\n",
        "log.level",
        "expected a string, found a list",
    );
}

#[test]
fn bad_listen_addresses() {
    single(
        "listen: localhost:6033\n",
        "listen",
        "host names are not accepted",
    );
    single("listen: 127.0.0.1\n", "listen", "invalid listen address");
    single(
        "admin: { listen: '127.0.0.1:99999' }\n",
        "admin.listen",
        "invalid listen address",
    );
}

#[test]
fn bad_backend_addresses() {
    let errs = errors(&format!(
        "{BASE_USERS}backends:\n  - {{ name: db1, address: '127.0.0.1', primary: true }}\n  - {{ name: db2, address: 'db:0' }}\n  - {{ name: db3 }}\n"
    ));
    let paths: Vec<&str> = errs.problems.iter().map(|p| p.path.as_str()).collect();
    assert_eq!(
        paths,
        [
            "backends[0].address",
            "backends[1].address",
            "backends[2].address"
        ],
        "{errs}"
    );
    assert!(errs.problems[0].message.contains("missing port"));
    assert!(errs.problems[1].message.contains("port must be"));
    assert!(errs.problems[2].message.contains("is required"));
}

#[test]
fn duplicate_backend_names_and_addresses() {
    let errs = errors(&format!(
        "{BASE_USERS}backends:\n  - {{ name: db1, address: '127.0.0.1:3316', primary: true }}\n  - {{ name: db1, address: '127.0.0.1:3317' }}\n  - {{ name: db3, address: '127.0.0.1:3316' }}\n"
    ));
    assert_eq!(errs.problems.len(), 2, "{errs}");
    assert_eq!(errs.problems[0].path, "backends[1].name");
    assert!(errs.problems[0]
        .message
        .contains("duplicate backend name 'db1' (also backends[0].name)"));
    assert_eq!(errs.problems[1].path, "backends[2].address");
    assert!(errs.problems[1]
        .message
        .contains("duplicate backend address"));
}

#[test]
fn backend_names_are_checked() {
    let errs = errors(&format!(
        "{BASE_USERS}backends:\n  - {{ name: primary, address: '127.0.0.1:3316', primary: true }}\n  - {{ name: 'db 2', address: '127.0.0.1:3317' }}\n"
    ));
    assert_eq!(errs.problems.len(), 2, "{errs}");
    assert!(errs.problems[0].message.contains("reserved"));
    assert!(errs.problems[1].message.contains("invalid backend name"));
}

#[test]
fn weight_range() {
    let errs = errors(&format!(
        "{BASE_USERS}backends:\n  - {{ name: db1, address: '127.0.0.1:3316', primary: true, weight: 0 }}\n"
    ));
    assert_eq!(errs.problems.len(), 1, "{errs}");
    assert_eq!(errs.problems[0].path, "backends[0].weight");
    assert!(errs.problems[0].message.contains("between 1 and 1000"));
}

#[test]
fn backends_are_required() {
    let errs = errors(BASE_USERS);
    assert_eq!(errs.problems.len(), 1, "{errs}");
    assert_eq!(errs.problems[0].path, "backends");
    assert!(errs.problems[0].message.contains("at least one backend"));
    let errs = errors(&format!("{BASE_USERS}backends: []\n"));
    assert_eq!(errs.problems.len(), 1, "{errs}");
    assert!(errs.problems[0].message.contains("at least one backend"));
}

#[test]
fn primary_must_be_pinned_without_monitor_credentials() {
    let errs = errors(&format!(
        "{BASE_USERS}backends: [{{ name: db1, address: '127.0.0.1:3316' }}]\n"
    ));
    assert_eq!(errs.problems.len(), 1, "{errs}");
    assert_eq!(errs.problems[0].path, "backends");
    assert!(errs.problems[0].message.contains("primary: true"));
}

#[test]
fn at_most_one_pinned_primary() {
    let errs = errors(&format!(
        "{BASE_USERS}backends:\n  - {{ name: db1, address: '127.0.0.1:3316', primary: true }}\n  - {{ name: db2, address: '127.0.0.1:3317', primary: true }}\n"
    ));
    assert_eq!(errs.problems.len(), 1, "{errs}");
    assert_eq!(errs.problems[0].path, "backends[1].primary");
    assert!(errs.problems[0]
        .message
        .contains("backends[0].primary already has"));
}

#[test]
fn bad_durations() {
    single(
        "timeouts: { connect: 500 }\n",
        "timeouts.connect",
        "needs a unit",
    );
    single(
        "timeouts: { handshake: 5d }\n",
        "timeouts.handshake",
        "unknown unit 'd'",
    );
    single(
        "monitor: { interval: 0ms }\n",
        "monitor.interval",
        "greater than zero",
    );
    single(
        "accounts_refresh_interval: 48h\n",
        "accounts_refresh_interval",
        "maximum of 24h",
    );
    single(
        "routing: { causal_read_timeout: fast }\n",
        "routing.causal_read_timeout",
        "invalid duration",
    );
}

#[test]
fn bad_sizes() {
    single(
        "max_allowed_packet: 2GiB\n",
        "max_allowed_packet",
        "between 1KiB and 1GiB",
    );
    single(
        "max_allowed_packet: 64XB\n",
        "max_allowed_packet",
        "unknown unit",
    );
    single(
        "max_allowed_packet: 10\n",
        "max_allowed_packet",
        "between 1KiB and 1GiB",
    );
    single(
        "routing: { transaction_replay_max_size: 100 }\n",
        "routing.transaction_replay_max_size",
        "between 1KiB and 1GiB",
    );
    single(
        "routing: { transaction_replay: maybe }\n",
        "routing.transaction_replay",
        "expected true or false",
    );
}

#[test]
fn bad_regex_is_reported_on_the_rule() {
    let p = single(
        "routing:\n  rules:\n    - { match: '(unclosed', route: primary }\n",
        "routing.rules[0].match",
        "invalid regular expression",
    );
    assert!(!p.message.contains('\n'));
    single(
        "routing:\n  rules:\n    - { route: primary }\n",
        "routing.rules[0].match",
        "is required",
    );
}

#[test]
fn rule_routes_must_name_a_target() {
    single(
        "routing:\n  rules:\n    - { match: x, route: db2 }\n",
        "routing.rules[0].route",
        "unknown route 'db2'",
    );
    single(
        "routing:\n  rules:\n    - { match: x, route: replcia }\n",
        "routing.rules[0].route",
        "did you mean 'replica'",
    );
    single(
        "routing:\n  rules:\n    - { match: x }\n",
        "routing.rules[0].route",
        "is required",
    );
}

#[test]
fn rule_user_must_exist_when_accounts_are_static() {
    single(
        "routing:\n  rules:\n    - { match: x, route: primary, user: ap }\n",
        "routing.rules[0].user",
        "did you mean 'app'",
    );
}

#[test]
fn enum_values_list_the_choices() {
    single(
        "routing: { replica_balance: random }\n",
        "routing.replica_balance",
        "expected one of round_robin, weighted, least_connections",
    );
    single(
        "routing: { replica_affinity: connection }\n",
        "routing.replica_affinity",
        "expected one of session, statement",
    );
    single(
        "routing: { consistency: strong }\n",
        "routing.consistency",
        "eventual, session, global",
    );
    single(
        "log: { format: yaml }\n",
        "log.format",
        "expected one of text, json",
    );
    single(
        "routing:\n  rules:\n    - { match: x, route: primary, consistency: sesion }\n",
        "routing.rules[0].consistency",
        "did you mean 'session'",
    );
}

#[test]
fn user_password_problems() {
    let errs = errors(&format!(
        "users:
  - {{ name: a }}
  - {{ name: b, password: x, password_hash: '*CF9E423361BFD63F869140B8405101994CA3832E' }}
  - {{ name: c, password_hash: '*CF9E423361BFD63F869140B8405101994CA3832E', auth_plugin: caching_sha2_password }}
  - {{ name: d, password_hash: 'CF9E' }}
  - {{ name: e, password: '' }}
  - {{ name: f, password: x, auth_plugin: sha256_password }}
  - {{ password: x }}
  - {{ name: a, password: x }}
{BASE_BACKENDS}"
    ));
    let got: Vec<(&str, &str)> = errs
        .problems
        .iter()
        .map(|p| (p.path.as_str(), p.message.as_str()))
        .collect();
    let expected_paths = [
        "users[0].password",
        "users[1].password_hash",
        "users[2].password_hash",
        "users[3].password_hash",
        "users[4].password",
        "users[5].auth_plugin",
        "users[6].name",
        "users[7].name",
    ];
    assert_eq!(
        got.iter().map(|g| g.0).collect::<Vec<_>>(),
        expected_paths,
        "{errs}"
    );
    assert!(got[0].1.contains("is required"));
    assert!(got[1].1.contains("not both"));
    assert!(got[2]
        .1
        .contains("caching_sha2_password users need a clear-text password"));
    assert!(got[3].1.contains("40 hex digits"));
    assert!(got[4].1.contains("must not be empty"));
    assert!(got[5]
        .1
        .contains("mysql_native_password, caching_sha2_password"));
    assert!(got[6].1.contains("is required"));
    assert!(got[7]
        .1
        .contains("duplicate user name 'a' (also users[0].name)"));
}

#[test]
fn users_or_backend_accounts_are_required() {
    let errs = errors(BASE_BACKENDS);
    assert_eq!(errs.problems.len(), 1, "{errs}");
    assert_eq!(errs.problems[0].path, "users");
    assert!(errs.problems[0].message.contains("users_from_backend"));
}

#[test]
fn users_from_backend_needs_monitor_credentials() {
    single(
        "users_from_backend: true\n",
        "users_from_backend",
        "needs monitor.user",
    );
}

#[test]
fn monitor_credentials_come_in_pairs() {
    single(
        "monitor: { user: monitor }\n",
        "monitor.password",
        "is required when monitor.user",
    );
    single(
        "monitor: { password: x }\n",
        "monitor.user",
        "is required when monitor.password",
    );
}

#[test]
fn monitor_counts_are_bounded() {
    single(
        "monitor: { recovery_checks: 0 }\n",
        "monitor.recovery_checks",
        "between 1 and 1000",
    );
    single(
        "monitor: { failure_threshold: -1 }\n",
        "monitor.failure_threshold",
        "between 1 and 1000",
    );
}

#[test]
fn heartbeat_problems() {
    let monitor = "monitor:\n  user: m\n  password: p\n";
    single(
        &format!("{monitor}  heartbeat: {{ interval: 1s }}\n"),
        "monitor.heartbeat.table",
        "is required",
    );
    single(
        &format!("{monitor}  heartbeat: {{ table: heartbeat }}\n"),
        "monitor.heartbeat.table",
        "schema.table",
    );
    single(
        "monitor: { heartbeat: { table: a.b } }\n",
        "monitor.heartbeat",
        "needs monitor.user",
    );
}

#[test]
fn tls_problems() {
    let missing = "/nonexistent/rwproxy/cert.pem";
    let errs = errors(&format!(
        "{BASE_USERS}{BASE_BACKENDS}tls: {{ cert: {missing}, key: {missing} }}\n"
    ));
    let paths: Vec<&str> = errs.problems.iter().map(|p| p.path.as_str()).collect();
    assert_eq!(paths, ["tls.cert", "tls.key"], "{errs}");
    assert!(errs
        .problems
        .iter()
        .all(|p| p.message.contains("file not found")));
    let errs = errors(&format!(
        "{BASE_USERS}{BASE_BACKENDS}tls: {{ cert: {missing} }}\n"
    ));
    assert_eq!(errs.problems.len(), 2, "{errs}");
    assert_eq!(errs.problems[1].path, "tls.key");
    assert!(errs.problems[1].message.contains("required when tls.cert"));
    single(
        "tls: { require_tls: true }\n",
        "tls.require_tls",
        "needs tls.cert and tls.key",
    );
    single(
        "backend_tls: { enabled: true }\n",
        "backend_tls.ca",
        "required when backend_tls.verify",
    );
    single(
        &format!("backend_tls: {{ enabled: true, ca: {missing} }}\n"),
        "backend_tls.ca",
        "file not found",
    );
    // Disabled backend TLS does not look at the file.
    let ok =
        format!("{BASE_USERS}{BASE_BACKENDS}backend_tls: {{ enabled: false, ca: {missing} }}\n");
    assert!(parse(&ok, &HashMap::new()).is_ok());
}

#[test]
fn admin_problems() {
    single(
        "listen: 127.0.0.1:7000\nadmin: { listen: 127.0.0.1:7000 }\n",
        "admin.listen",
        "must differ from listen",
    );
    single(
        "admin: { listen: 0.0.0.0:9033 }\n",
        "admin.token",
        "not a loopback address",
    );
    single(
        "admin: { listen: 0.0.0.0:9033, token: '${T:-}' }\n",
        "admin.token",
        "not a loopback address",
    );
}

#[test]
fn log_level_names_are_checked() {
    single(
        "log: { level: verbose }\n",
        "log.level",
        "unknown log level 'verbose'",
    );
    single(
        "log: { level: 'info,rwproxy=loud' }\n",
        "log.level",
        "unknown log level 'loud'",
    );
}

#[test]
fn missing_environment_variable_is_reported_once_at_its_path() {
    let errs = errors(&format!(
        "users: [{{ name: app, password: '${{APP_PW}}' }}]\n{BASE_BACKENDS}"
    ));
    assert_eq!(errs.problems.len(), 1, "{errs}");
    assert_eq!(errs.problems[0].path, "users[0].password");
    assert!(errs.problems[0].message.contains("APP_PW is not set"));
    assert_eq!(errs.problems[0].line, Some(1));
}

#[test]
fn environment_values_are_validated_like_literals() {
    let errs = errors_with_env(
        &format!("{BASE_USERS}{BASE_BACKENDS}listen: ${{LISTEN}}\n"),
        &[("LISTEN", "nowhere")],
    );
    assert_eq!(errs.problems.len(), 1);
    assert_eq!(errs.problems[0].path, "listen");
}

#[test]
fn many_problems_are_reported_together_in_display_order() {
    let yaml = "\
listen: localhost
max_allowed_packet: huge
users:
  - { name: app }
backends:
  - { name: db1, address: '127.0.0.1:3316', primary: true }
  - { name: db1, address: nowhere }
routing:
  replica_balance: random
  rules:
    - { match: '[', route: db9 }
log: { level: inof, colour: true }
";
    let errs = errors(yaml);
    let paths: Vec<&str> = errs.problems.iter().map(|p| p.path.as_str()).collect();
    for expected in [
        "listen",
        "max_allowed_packet",
        "users[0].password",
        "backends[1].name",
        "backends[1].address",
        "routing.replica_balance",
        "routing.rules[0].match",
        "routing.rules[0].route",
        "log.colour",
        "log.level",
    ] {
        assert!(paths.contains(&expected), "missing {expected} in:\n{errs}");
    }
    assert_eq!(paths.len(), 10, "{errs}");
    let text = errs.to_string();
    assert_eq!(text.lines().count(), 10);
    for line in text.lines() {
        let (path, rest) = line.split_once(": ").unwrap();
        assert!(paths.contains(&path), "{line}");
        assert!(
            rest.contains("(line "),
            "every problem here has a position: {line}"
        );
    }
    assert!(
        text.contains("log.level: unknown log level 'inof'"),
        "{text}"
    );
    assert!(text.contains("(line 12, column"), "{text}");
}

#[test]
fn non_string_keys_are_reported() {
    single("routing: { 1: x }\n", "routing", "keys must be strings");
}

#[test]
fn large_packet_budget_must_hold_one_largest_packet() {
    single(
        "max_allowed_packet: 64MiB\nlarge_packet_budget: 16MiB\n",
        "large_packet_budget",
        "at least max_allowed_packet (64MiB)",
    );
    // Without the key, the default grows with max_allowed_packet.
    let yaml = format!("{BASE_USERS}{BASE_BACKENDS}max_allowed_packet: 1GiB\n");
    let config = parse(&yaml, &HashMap::new()).unwrap();
    assert_eq!(config.large_packet_budget, 1 << 30);
    let yaml = format!("{BASE_USERS}{BASE_BACKENDS}");
    let config = parse(&yaml, &HashMap::new()).unwrap();
    assert_eq!(config.large_packet_budget, 1 << 30);
    assert_eq!(
        config.login_throttle.max_failures, 0,
        "throttling is opt-in"
    );
}

#[test]
fn login_throttle_keys_are_checked() {
    single(
        "login_throttle: { max_failures: -1 }\n",
        "login_throttle.max_failures",
        "",
    );
    single(
        "login_throttle: { max_failure: 5 }\n",
        "login_throttle.max_failure",
        "max_failures",
    );
    single(
        "login_throttle: { max_failures: 5, block_for: 0s }\n",
        "login_throttle.block_for",
        "",
    );
    let yaml = format!(
        "{BASE_USERS}{BASE_BACKENDS}login_throttle: {{ max_failures: 5, block_for: 1m, max_sources: 100 }}\n"
    );
    let config = parse(&yaml, &HashMap::new()).unwrap();
    assert_eq!(config.login_throttle.max_failures, 5);
    assert_eq!(config.login_throttle.block_for.as_secs(), 60);
    assert_eq!(config.login_throttle.max_sources, 100);
}
