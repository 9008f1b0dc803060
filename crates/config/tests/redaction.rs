//! Secrets never appear in `redacted_json` or in `Debug` output.

use std::collections::HashMap;

use rwproxy_config::parse;

const SECRETS: [&str; 4] = [
    "app-password-123",
    "monitor-password-456",
    "admin-token-789",
    // The hex of a password hash (either letter case) is a secret too.
    "CF9E423361BFD63F869140B8405101994CA3832E",
];

fn config_with_every_secret() -> rwproxy_config::Config {
    let yaml = "
users:
  - { name: app, password: '${APP_PW}' }
  - { name: hashed, password_hash: '*CF9E423361BFD63F869140B8405101994CA3832E' }
backends: [{ name: db1, address: '127.0.0.1:3316' }]
monitor: { user: monitor, password: monitor-password-456 }
admin: { token: '${ADMIN_TOKEN}' }
";
    let env = HashMap::from([
        ("APP_PW".to_string(), "app-password-123".to_string()),
        ("ADMIN_TOKEN".to_string(), "admin-token-789".to_string()),
    ]);
    parse(yaml, &env).unwrap()
}

fn assert_no_secret(text: &str) {
    let lower = text.to_ascii_lowercase();
    for secret in SECRETS {
        assert!(
            !lower.contains(&secret.to_ascii_lowercase()),
            "secret {secret} leaked in:\n{text}"
        );
    }
}

#[test]
fn redacted_json_hides_every_secret_and_keeps_the_rest() {
    let config = config_with_every_secret();
    let json = config.redacted_json();
    assert_no_secret(&json.to_string());
    assert_eq!(json["users"][0]["password"], "***");
    assert_eq!(json["users"][0]["name"], "app");
    assert_eq!(json["users"][1]["password_hash"], "***");
    assert_eq!(json["monitor"]["password"], "***");
    assert_eq!(json["monitor"]["user"], "monitor");
    assert_eq!(json["admin"]["token"], "***");
    // Non-secret values are shown in their configuration spelling.
    assert_eq!(json["listen"], "127.0.0.1:6033");
    assert_eq!(json["max_allowed_packet"], "64MiB");
    assert_eq!(json["monitor"]["interval"], "500ms");
    assert_eq!(json["routing"]["consistency"], "session");
    assert_eq!(json["routing"]["replica_balance"], "round_robin");
    assert_eq!(json["users"][0]["auth_plugin"], "mysql_native_password");
    assert_eq!(json["backends"][0]["address"], "127.0.0.1:3316");
    assert_eq!(json["source_hash"], config.source_hash.as_str());
}

#[test]
fn debug_output_hides_every_secret() {
    let config = config_with_every_secret();
    let debug = format!("{config:?}");
    assert_no_secret(&debug);
    assert!(debug.contains("***"));
    assert_no_secret(&format!("{config:#?}"));
}

#[test]
fn the_secrets_are_still_readable_through_expose() {
    let config = config_with_every_secret();
    let app = config.user("app").unwrap();
    assert_eq!(app.secret.password().unwrap().expose(), SECRETS[0]);
    assert_eq!(config.monitor.credentials().unwrap().1.expose(), SECRETS[1]);
    assert_eq!(config.admin.token.as_ref().unwrap().expose(), SECRETS[2]);
}

#[test]
fn rules_show_their_pattern_and_route() {
    let yaml = "
users: [{ name: app, password: pw }]
backends: [{ name: db1, address: '127.0.0.1:3316', primary: true }]
routing:
  rules:
    - { match: '(?i)^select', route: db1, consistency: eventual }
";
    let json = parse(yaml, &HashMap::new()).unwrap().redacted_json();
    let rule = &json["routing"]["rules"][0];
    assert_eq!(rule["match"], "(?i)^select");
    assert_eq!(rule["route"], "db1");
    assert_eq!(rule["consistency"], "eventual");
    assert!(rule["user"].is_null());
}
