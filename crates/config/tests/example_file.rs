//! The example configuration at the repository root must stay valid.

use std::collections::HashMap;
use std::path::PathBuf;

use rwproxy_config::{load_file, Consistency, LoadError};

fn example_path() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../proxy-config.yaml")
}

#[test]
fn example_parses_with_cluster_defaults() {
    let config = load_file(&example_path(), &HashMap::new()).unwrap();
    let addresses: Vec<&str> = config.backends.iter().map(|b| b.address.as_str()).collect();
    assert_eq!(
        addresses,
        ["127.0.0.1:3316", "127.0.0.1:3317", "127.0.0.1:3318"]
    );
    let app = config.user("app").unwrap();
    assert_eq!(app.secret.password().map(|p| p.expose()), Some("app_pass"));
    let (user, password) = config.monitor.credentials().unwrap();
    assert_eq!((user, password.expose()), ("monitor", "monitor_pass"));
    assert!(config.admin.token.is_none());
    assert!(!config.users_from_backend);
    assert!(config.pinned_primary().is_none());
    assert_eq!(config.routing.consistency, Consistency::Session);
}

#[test]
fn example_takes_secrets_from_the_environment() {
    let env = HashMap::from([
        ("APP_DB_PASSWORD".to_string(), "from-env".to_string()),
        ("ADMIN_TOKEN".to_string(), "admintok".to_string()),
    ]);
    let config = load_file(&example_path(), &env).unwrap();
    let app = config.user("app").unwrap();
    assert_eq!(app.secret.password().map(|p| p.expose()), Some("from-env"));
    assert_eq!(
        config.admin.token.as_ref().map(|t| t.expose()),
        Some("admintok")
    );
}

#[test]
fn missing_file_is_an_io_error_naming_the_path() {
    let path = PathBuf::from("/nonexistent/rwproxy.yaml");
    let err = load_file(&path, &HashMap::new()).unwrap_err();
    assert!(matches!(err, LoadError::Io { .. }));
    assert!(
        err.to_string().contains("/nonexistent/rwproxy.yaml"),
        "{err}"
    );
}

#[test]
fn invalid_file_reports_problems() {
    let path = std::env::temp_dir().join(format!("rwproxy-config-bad-{}.yaml", std::process::id()));
    std::fs::write(&path, "listen: nowhere\n").unwrap();
    let err = load_file(&path, &HashMap::new()).unwrap_err();
    std::fs::remove_file(&path).unwrap();
    let LoadError::Invalid(errors) = err else {
        panic!("expected Invalid, got {err:?}");
    };
    assert!(errors.at("listen").is_some(), "{errors}");
}

#[test]
fn non_utf8_file_is_refused() {
    let path = std::env::temp_dir().join(format!("rwproxy-config-bin-{}.yaml", std::process::id()));
    std::fs::write(&path, [0xff, 0xfe, 0x00, 0x41]).unwrap();
    let err = load_file(&path, &HashMap::new()).unwrap_err();
    std::fs::remove_file(&path).unwrap();
    assert!(err.to_string().contains("UTF-8"), "{err}");
}

#[test]
fn yaml_examples_in_the_configuration_doc_are_valid() {
    let doc_path = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../docs/configuration.md");
    let doc = std::fs::read_to_string(doc_path).unwrap();
    let env = HashMap::from([
        ("APP_DB_PASSWORD".to_string(), "pw".to_string()),
        ("MONITOR_PASSWORD".to_string(), "pw".to_string()),
        ("ADMIN_TOKEN".to_string(), "tok".to_string()),
    ]);
    let mut blocks = 0;
    for block in doc.split("```yaml\n").skip(1) {
        let yaml = block.split("```").next().unwrap();
        if let Err(errors) = rwproxy_config::parse(yaml, &env) {
            panic!("doc example is invalid:\n{yaml}\n{errors}");
        }
        blocks += 1;
    }
    assert_eq!(blocks, 2);
}
