//! TLS from rwproxy to the backends, with certificate verification: every backend is checked
//! against its own host (here the cluster's certificate names 127.0.0.1 and localhost, and the
//! backends are addressed by both), and statements on every backend run over TLS: the account
//! used requires TLS on the server (`REQUIRE SSL`), so a plain backend login would be refused.

use mysql_async::prelude::Queryable;
use rwproxy_testkit::{Credentials, ProxyUser, StandardConfig};

use crate::support::{cluster, start_proxy, unique_table};

#[tokio::test]
async fn verified_tls_to_backends_addressed_by_different_hosts() {
    let ca = cluster().dir.join("tls").join("ca.pem");
    assert!(
        ca.exists(),
        "the cluster offers TLS with {} (integration/cluster.sh makes it)",
        ca.display()
    );
    let user = unique_table("tlsu");
    cluster()
        .admin_exec(
            0,
            &format!(
                "CREATE USER '{user}'@'%' IDENTIFIED BY 'tls_pw' REQUIRE SSL; \
                 GRANT ALL ON app.* TO '{user}'@'%'"
            ),
        )
        .await
        .unwrap();
    cluster()
        .wait_replicas_caught_up(std::time::Duration::from_secs(20))
        .await
        .unwrap();
    let run = |backend_tls: bool| {
        let mut config = StandardConfig::new(cluster());
        config.users = vec![ProxyUser::native(&user, "tls_pw")];
        // db2 and db3 by name, db1 by address: one certificate check per host.
        for b in config.backends.iter_mut().skip(1) {
            b.address = b.address.replace("127.0.0.1", "localhost");
        }
        if backend_tls {
            config.extra = format!(
                "backend_tls: {{ enabled: true, ca: \"{}\", verify: true }}\n",
                ca.display()
            );
        }
        start_proxy(&config.to_yaml())
    };
    let creds = Credentials::new(&user, "tls_pw");
    // With backend TLS: a read (a replica, by host name) and a transaction (the primary, by
    // address) both work although the account refuses plain logins.
    let proxy = run(true);
    let mut conn = proxy
        .connect(&creds, Some("app"))
        .await
        .unwrap_or_else(|e| panic!("{e}\n--- proxy log ---\n{}", proxy.log_tail(20)));
    for sql in ["SELECT 1", "BEGIN", "SELECT 2", "COMMIT"] {
        if let Err(e) = conn.query_drop(sql).await {
            panic!("{sql}: {e}\n--- proxy log ---\n{}", proxy.log_tail(20));
        }
    }
    let _ = conn.disconnect().await;
    // Control: without backend TLS the same account cannot run anything.
    let plain = run(false);
    let refused = match plain.connect(&creds, Some("app")).await {
        Ok(mut c) => c.query_drop("SELECT 1").await.is_err(),
        Err(_) => true,
    };
    cluster()
        .admin_exec(0, &format!("DROP USER IF EXISTS '{user}'@'%'"))
        .await
        .unwrap();
    assert!(
        refused,
        "a REQUIRE SSL account ran statements over plain backend connections"
    );
}
