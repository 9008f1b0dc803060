//! TLS from rwproxy to the backends, with certificate verification: every backend is checked
//! against its own host (here the cluster's certificate names 127.0.0.1 and localhost, and the
//! backends are addressed by both), and statements on every backend run over TLS.

use mysql_async::prelude::Queryable;
use rwproxy_testkit::proxy_config::StandardConfig;

use crate::support::{app_via, cluster, start_proxy};

#[tokio::test]
async fn verified_tls_to_backends_addressed_by_different_hosts() {
    let cert = cluster().dir.join("tls").join("ca.pem");
    assert!(
        cert.exists(),
        "the cluster offers TLS with {} (integration/cluster.sh makes it)",
        cert.display()
    );
    let mut config = StandardConfig::new(cluster());
    // db2 and db3 by name, db1 by address: one certificate check per host.
    for b in config.backends.iter_mut().skip(1) {
        b.address = b.address.replace("127.0.0.1", "localhost");
    }
    config.extra = format!(
        "backend_tls: {{ enabled: true, ca: \"{}\", verify: true }}\n",
        cert.display()
    );
    let proxy = start_proxy(&config.to_yaml());
    let mut conn = app_via(&proxy).await;
    // A read (a replica, by host name) and a transaction (the primary, by address).
    for sql in ["SELECT 1", "BEGIN"] {
        conn.query_drop(sql).await.unwrap();
        let cipher: Option<(String, String)> = conn
            .query_first("SHOW SESSION STATUS LIKE 'Ssl_cipher'")
            .await
            .unwrap();
        let cipher = cipher.map(|(_, v)| v).unwrap_or_default();
        assert!(
            !cipher.is_empty(),
            "after {sql}: the backend connection is not encrypted\n--- proxy log ---\n{}",
            proxy.log_tail(20)
        );
    }
    conn.query_drop("COMMIT").await.unwrap();
}
