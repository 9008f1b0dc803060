//! The Grafana dashboard in `deploy/grafana/` stays true to the metrics: every query parses
//! (`promtool check rules`, with Grafana's variables filled in) and names only metric families
//! this crate exports.

use std::collections::BTreeSet;
use std::path::PathBuf;
use std::process::Command;

mod common;

use rwproxy_admin::{BackendRole, LagSource, Metrics};

fn dashboard() -> serde_json::Value {
    let path = PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("../../deploy/grafana/rwproxy-dashboard.json");
    let text = std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
    serde_json::from_str(&text).unwrap_or_else(|e| panic!("{}: {e}", path.display()))
}

/// Every `expr` of every panel target, with Grafana's variables replaced by PromQL.
fn queries(dashboard: &serde_json::Value) -> Vec<String> {
    let mut out = Vec::new();
    for panel in dashboard["panels"].as_array().into_iter().flatten() {
        for target in panel["targets"].as_array().into_iter().flatten() {
            if let Some(expr) = target["expr"].as_str() {
                out.push(
                    expr.replace("$__rate_interval", "1m")
                        .replace("$instance", ".*"),
                );
            }
        }
    }
    out
}

/// Metric names a query mentions (`rwproxy_…`), histogram series mapped to their family.
fn names(query: &str) -> BTreeSet<String> {
    let mut names = BTreeSet::new();
    let bytes = query.as_bytes();
    let mut i = 0;
    while let Some(pos) = query[i..].find("rwproxy_") {
        let start = i + pos;
        let mut end = start;
        while end < bytes.len() && (bytes[end].is_ascii_alphanumeric() || bytes[end] == b'_') {
            end += 1;
        }
        let mut name = &query[start..end];
        for suffix in ["_bucket", "_sum", "_count"] {
            if let Some(family) = name.strip_suffix(suffix) {
                name = family;
            }
        }
        names.insert(name.to_string());
        i = end;
    }
    names
}

#[test]
fn every_dashboard_query_names_an_exported_family() {
    let metrics = Metrics::new();
    metrics.config_loaded("3f2a9c");
    let mut replica = common::backend("db2", BackendRole::Replica);
    replica.lag_seconds = Some(0.25);
    replica.lag_source = LagSource::Heartbeat;
    metrics.set_backends(&[common::backend("db1", BackendRole::Primary), replica]);
    metrics.set_digests(&[rwproxy_admin::DigestView {
        digest: "0123456789abcdef".into(),
        text: "select ?".into(),
        user: "app".into(),
        schema: "app".into(),
        role: rwproxy_admin::DestRole::Replica,
        calls: 1,
        errors: 0,
        rows: 1,
        seconds: 0.001,
    }]);
    let exported: BTreeSet<String> = metrics
        .encode()
        .unwrap()
        .lines()
        .filter_map(|l| l.strip_prefix("# TYPE "))
        .filter_map(|l| l.split(' ').next())
        .map(str::to_string)
        .collect();
    let queries = queries(&dashboard());
    assert!(queries.len() >= 10, "too few queries: {queries:?}");
    let mut used = BTreeSet::new();
    for q in &queries {
        for name in names(q) {
            let known =
                exported.contains(&name) || exported.contains(name.trim_end_matches("_total"));
            assert!(
                known,
                "the dashboard uses {name}, which is not exported: {q}\nexported: {exported:?}"
            );
            used.insert(name);
        }
    }
    assert!(
        used.len() >= 12,
        "the dashboard covers few families: {used:?}"
    );
}

#[test]
fn every_dashboard_query_parses() {
    let queries = queries(&dashboard());
    let mut rules = String::from("groups:\n  - name: dashboard\n    rules:\n");
    for (i, q) in queries.iter().enumerate() {
        let quoted = serde_json::to_string(q).unwrap();
        rules.push_str(&format!(
            "      - record: dashboard:query{i}\n        expr: {quoted}\n"
        ));
    }
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("dashboard-rules.yml");
    std::fs::write(&path, &rules).unwrap();
    let output = match Command::new("promtool")
        .args(["check", "rules"])
        .arg(&path)
        .output()
    {
        Ok(o) => o,
        Err(e) => panic!("cannot run promtool ({e}): install the Debian package `prometheus`"),
    };
    assert!(
        output.status.success(),
        "promtool check rules:\n{}{}\n{rules}",
        String::from_utf8_lossy(&output.stdout),
        String::from_utf8_lossy(&output.stderr)
    );
}
