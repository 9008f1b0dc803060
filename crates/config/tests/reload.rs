//! `diff_requires_restart` lists exactly the changed keys that a reload
//! cannot apply.

use std::collections::HashMap;

use rwproxy_config::{diff_requires_restart, parse, Config};

fn config(extra: &str) -> Config {
    let yaml = format!(
        "users: [{{ name: app, password: pw }}]\nbackends: [{{ name: db1, address: '127.0.0.1:3316', primary: true }}]\n{extra}"
    );
    parse(&yaml, &HashMap::new()).unwrap()
}

#[test]
fn identical_configs_need_no_restart() {
    assert!(diff_requires_restart(&config(""), &config("")).is_empty());
}

#[test]
fn hot_reloadable_changes_need_no_restart() {
    let old = config("");
    let new = config(
        "routing: { consistency: eventual, replica_balance: weighted }\nmonitor: { interval: 1s }\nlog: { level: debug }\nmax_allowed_packet: 16MiB\n",
    );
    assert!(diff_requires_restart(&old, &new).is_empty());
}

#[test]
fn admin_token_changes_need_a_restart() {
    // The admin server takes its token when it starts.
    let old = config("");
    let new = config("admin: { token: t }\n");
    assert_eq!(diff_requires_restart(&old, &new), ["admin.token"]);
}

#[test]
fn listener_and_limit_changes_need_a_restart() {
    let old = config("");
    let new = config(
        "listen: 127.0.0.1:7000\nadmin: { listen: 127.0.0.1:7001 }\nmax_client_connections: 10\nlog: { format: json }\nbackend_tls: { enabled: true, verify: false }\n",
    );
    assert_eq!(
        diff_requires_restart(&old, &new),
        [
            "listen",
            "admin.listen",
            "max_client_connections",
            "log.format",
            "backend_tls"
        ]
    );
}

#[test]
fn tls_file_changes_need_a_restart() {
    let dir = std::env::temp_dir().join(format!("rwproxy-config-reload-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    for name in ["a.pem", "b.pem", "k.pem"] {
        std::fs::write(dir.join(name), "x").unwrap();
    }
    let d = dir.display();
    let old = config(&format!("tls: {{ cert: {d}/a.pem, key: {d}/k.pem }}\n"));
    let new = config(&format!("tls: {{ cert: {d}/b.pem, key: {d}/k.pem }}\n"));
    let none = config("");
    let require = config(&format!(
        "tls: {{ cert: {d}/a.pem, key: {d}/k.pem, require_tls: true }}\n"
    ));
    assert_eq!(diff_requires_restart(&old, &new), ["tls.cert"]);
    assert_eq!(diff_requires_restart(&none, &old), ["tls.cert", "tls.key"]);
    assert!(diff_requires_restart(&old, &require).is_empty());
    std::fs::remove_dir_all(&dir).unwrap();
}
