//! YAML configurations for rwproxy pointed at a test cluster.
//!
//! The listen addresses are left as the placeholders `{listen}` and `{admin}`;
//! [`crate::ProxyProcess`] fills them with free ports.

use std::fmt::Write as _;

use crate::cluster::ClusterInfo;

/// Placeholder for the client listen address in a config template.
pub const LISTEN_PLACEHOLDER: &str = "{listen}";
/// Placeholder for the admin listen address in a config template.
pub const ADMIN_PLACEHOLDER: &str = "{admin}";

/// A proxy user entry (`users:` list).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ProxyUser {
    pub name: String,
    pub password: String,
    /// `mysql_native_password` or `caching_sha2_password`.
    pub auth_plugin: String,
    /// Per-user consistency override.
    pub consistency: Option<String>,
    /// `pooling` (`None`: not written, the default).
    pub pooling: Option<bool>,
}

impl ProxyUser {
    pub fn native(name: &str, password: &str) -> Self {
        ProxyUser {
            name: name.to_string(),
            password: password.to_string(),
            auth_plugin: "mysql_native_password".to_string(),
            consistency: None,
            pooling: None,
        }
    }

    pub fn caching_sha2(name: &str, password: &str) -> Self {
        ProxyUser {
            auth_plugin: "caching_sha2_password".to_string(),
            ..ProxyUser::native(name, password)
        }
    }
}

/// A backend entry (`backends:` list).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ProxyBackend {
    pub name: String,
    pub address: String,
    pub weight: u32,
    /// `Some(true)` pins the primary.
    pub primary: Option<bool>,
    /// `priority` (Galera writer choice; lower wins).
    pub priority: Option<u32>,
}

/// Client-side TLS files.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ProxyTls {
    pub cert: String,
    pub key: String,
    pub require_tls: bool,
}

/// The standard test configuration: users `app`, the cluster's three nodes as
/// `db1`..`db3`, the cluster's monitor account, and fast monitor intervals.
/// Change fields before calling [`StandardConfig::to_yaml`].
#[derive(Debug, Clone)]
pub struct StandardConfig {
    pub users: Vec<ProxyUser>,
    pub backends: Vec<ProxyBackend>,
    pub max_client_connections: u32,
    pub max_allowed_packet: String,
    pub connect_timeout: String,
    pub handshake_timeout: String,
    pub monitor_user: String,
    pub monitor_password: String,
    pub monitor_interval: String,
    pub tls: Option<ProxyTls>,
    /// `backend_tls` verified against this CA; set for a TLS-only cluster.
    pub backend_tls_ca: Option<std::path::PathBuf>,
    pub log_level: String,
    /// Extra top-level YAML appended verbatim (must not repeat a key written above,
    /// e.g. `routing:` is free to add).
    pub extra: String,
    /// More `monitor:` keys, one `key: value` per line (indented by the renderer).
    pub monitor_extra: String,
}

impl StandardConfig {
    pub fn new(cluster: &ClusterInfo) -> Self {
        let backends = cluster
            .nodes
            .iter()
            .map(|node| ProxyBackend {
                name: format!("db{}", node.index + 1),
                address: format!("127.0.0.1:{}", node.port),
                weight: 1,
                primary: None,
                priority: None,
            })
            .collect();
        StandardConfig {
            users: vec![ProxyUser::native(&cluster.app.user, &cluster.app.password)],
            backends,
            max_client_connections: 512,
            max_allowed_packet: "64MiB".to_string(),
            connect_timeout: "1s".to_string(),
            handshake_timeout: "5s".to_string(),
            monitor_user: cluster.monitor.user.clone(),
            monitor_password: cluster.monitor.password.clone(),
            monitor_interval: "200ms".to_string(),
            tls: None,
            backend_tls_ca: cluster.tls_only.then(|| cluster.tls_ca()),
            log_level: std::env::var("RWPROXY_TEST_LOG_LEVEL").unwrap_or_else(|_| "info".into()),
            extra: String::new(),
            monitor_extra: String::new(),
        }
    }

    /// Render the YAML template (with `{listen}` / `{admin}` placeholders).
    pub fn to_yaml(&self) -> String {
        let mut y = String::new();
        // `write!` into a String cannot fail; the results are ignored on purpose.
        let _ = writeln!(y, "listen: {LISTEN_PLACEHOLDER}");
        let _ = writeln!(y, "max_client_connections: {}", self.max_client_connections);
        let _ = writeln!(y, "max_allowed_packet: {}", self.max_allowed_packet);
        let _ = writeln!(y, "users:");
        for user in &self.users {
            let _ = writeln!(y, "  - name: {}", yaml_str(&user.name));
            let _ = writeln!(y, "    password: {}", yaml_str(&user.password));
            let _ = writeln!(y, "    auth_plugin: {}", user.auth_plugin);
            if let Some(consistency) = &user.consistency {
                let _ = writeln!(y, "    consistency: {consistency}");
            }
            if let Some(pooling) = user.pooling {
                let _ = writeln!(y, "    pooling: {pooling}");
            }
        }
        let _ = writeln!(y, "backends:");
        for backend in &self.backends {
            let _ = write!(
                y,
                "  - {{ name: {}, address: {}, weight: {}",
                yaml_str(&backend.name),
                yaml_str(&backend.address),
                backend.weight
            );
            if let Some(primary) = backend.primary {
                let _ = write!(y, ", primary: {primary}");
            }
            if let Some(priority) = backend.priority {
                let _ = write!(y, ", priority: {priority}");
            }
            let _ = writeln!(y, " }}");
        }
        let _ = writeln!(
            y,
            "timeouts: {{ connect: {}, handshake: {} }}",
            self.connect_timeout, self.handshake_timeout
        );
        if let Some(tls) = &self.tls {
            let _ = writeln!(
                y,
                "tls: {{ cert: {}, key: {}, require_tls: {} }}",
                yaml_str(&tls.cert),
                yaml_str(&tls.key),
                tls.require_tls
            );
        }
        if let Some(ca) = &self.backend_tls_ca {
            let _ = writeln!(
                y,
                "backend_tls: {{ enabled: true, ca: {}, verify: true }}",
                yaml_str(&ca.display().to_string())
            );
        }
        let _ = writeln!(y, "monitor:");
        let _ = writeln!(y, "  user: {}", yaml_str(&self.monitor_user));
        let _ = writeln!(y, "  password: {}", yaml_str(&self.monitor_password));
        let _ = writeln!(y, "  interval: {}", self.monitor_interval);
        let _ = writeln!(y, "  timeout: 1s");
        for line in self.monitor_extra.lines() {
            let _ = writeln!(y, "  {line}");
        }
        let _ = writeln!(y, "admin:");
        let _ = writeln!(y, "  listen: {ADMIN_PLACEHOLDER}");
        let _ = writeln!(y, "log: {{ format: text, level: {} }}", self.log_level);
        if !self.extra.is_empty() {
            y.push_str(&self.extra);
            if !self.extra.ends_with('\n') {
                y.push('\n');
            }
        }
        y
    }
}

/// The standard configuration for `cluster` plus `extra` top-level YAML.
pub fn standard_yaml(cluster: &ClusterInfo, extra: &str) -> String {
    let mut config = StandardConfig::new(cluster);
    config.extra = extra.to_string();
    config.to_yaml()
}

/// A YAML double-quoted scalar.
pub fn yaml_str(value: &str) -> String {
    let mut out = String::with_capacity(value.len() + 2);
    out.push('"');
    for c in value.chars() {
        match c {
            '"' => out.push_str("\\\""),
            '\\' => out.push_str("\\\\"),
            '\n' => out.push_str("\\n"),
            '\t' => out.push_str("\\t"),
            c if c.is_control() => {
                let _ = write!(out, "\\u{:04x}", c as u32);
            }
            c => out.push(c),
        }
    }
    out.push('"');
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::cluster::ClusterInfo;

    fn cluster() -> ClusterInfo {
        let env = "export RWPROXY_CLUSTER_NAME=t\nexport RWPROXY_CLUSTER_DIR=/d\n\
            export RWPROXY_CLUSTER_NODES=3\n\
            export RWPROXY_NODE0_PORT=4000\nexport RWPROXY_NODE0_SOCKET=/s\nexport RWPROXY_NODE0_PIDFILE=/p\n\
            export RWPROXY_NODE1_PORT=4001\nexport RWPROXY_NODE1_SOCKET=/s\nexport RWPROXY_NODE1_PIDFILE=/p\n\
            export RWPROXY_NODE2_PORT=4002\nexport RWPROXY_NODE2_SOCKET=/s\nexport RWPROXY_NODE2_PIDFILE=/p\n\
            export APP_DB_USER=app\nexport APP_DB_PASSWORD=app_pass\n\
            export MONITOR_USER=monitor\nexport MONITOR_PASSWORD=monitor_pass\n\
            export ADMIN_DB_USER=admin\nexport ADMIN_DB_PASSWORD=admin_pass\n\
            export REPL_USER=repl\nexport REPL_PASSWORD=repl_pass\n";
        ClusterInfo::from_env_output(env).unwrap()
    }

    #[test]
    fn standard_yaml_lists_the_cluster() {
        let yaml = standard_yaml(&cluster(), "routing:\n  consistency: eventual\n");
        assert!(yaml.starts_with("listen: {listen}\n"));
        assert!(yaml.contains("  listen: {admin}\n"));
        assert!(yaml.contains("address: \"127.0.0.1:4000\""));
        assert!(yaml.contains("name: \"db3\", address: \"127.0.0.1:4002\""));
        assert!(yaml.contains("  - name: \"app\"\n    password: \"app_pass\"\n"));
        assert!(yaml.contains("  user: \"monitor\"\n  password: \"monitor_pass\"\n"));
        assert!(yaml.ends_with("routing:\n  consistency: eventual\n"));
        assert!(!yaml.contains("tls:"));
    }

    #[test]
    fn optional_fields_render() {
        let mut config = StandardConfig::new(&cluster());
        config.users.push(ProxyUser::caching_sha2("sha", "p\"w"));
        config.backends[0].primary = Some(true);
        config.tls = Some(ProxyTls {
            cert: "/c.pem".into(),
            key: "/k.pem".into(),
            require_tls: false,
        });
        let yaml = config.to_yaml();
        assert!(yaml.contains("password: \"p\\\"w\"\n    auth_plugin: caching_sha2_password"));
        assert!(yaml.contains("weight: 1, primary: true }"));
        assert!(yaml.contains("tls: { cert: \"/c.pem\", key: \"/k.pem\", require_tls: false }"));
    }

    #[test]
    fn yaml_str_escapes() {
        assert_eq!(yaml_str("a\"b\\c\nd"), "\"a\\\"b\\\\c\\nd\"");
        assert_eq!(yaml_str("\u{1}"), "\"\\u0001\"");
    }
}
