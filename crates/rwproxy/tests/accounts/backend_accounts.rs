//! `users_from_backend: true`: accounts created, changed and dropped on the primary log in (or
//! stop logging in) through rwproxy with no change to its configuration.

use std::time::{Duration, Instant};

use mysql_async::prelude::Queryable;
use mysql_async::ChangeUserOpts;
use rwproxy_testkit::{ProxyProcess, StandardConfig};

use crate::support::{
    caught_up, cluster, drop_user_blocking, login, proxy_bin, refused, server_ids,
    start_accounts_proxy, try_login, unique_name, unique_table, wait_routable, who_answers,
    TempAccount,
};

/// How long a password change or a dropped account may take to reach the proxy.
const PROPAGATION: Duration = Duration::from_secs(3);

#[tokio::test]
async fn an_account_created_on_the_primary_logs_in_at_the_first_attempt() {
    let proxy = start_accounts_proxy().await;
    let account = TempAccount::create("new", "Fresh_pw1").await;

    // The very first attempt: the proxy has not seen this user yet.
    let mut conn = login(&proxy, &account.creds).await;
    let (_, current) = who_answers(&mut conn, "SELECT @@server_id, CURRENT_USER()").await;
    assert_eq!(current, format!("{}@%", account.name()));
    let two: Option<i64> = conn.query_first("SELECT 1 + 1").await.unwrap();
    assert_eq!(two, Some(2));
    conn.disconnect().await.unwrap();
}

#[tokio::test]
async fn an_unknown_user_refreshes_the_accounts_at_once() {
    // A refresh interval far longer than the test: only the on-demand refresh can find the
    // account.
    let cluster = cluster();
    let mut config = StandardConfig::new(cluster);
    config.extra = "users_from_backend: true\naccounts_refresh_interval: 1h\n".to_string();
    let proxy =
        ProxyProcess::start(proxy_bin(), &config.to_yaml()).unwrap_or_else(|e| panic!("{e}"));
    wait_routable(&proxy, cluster.nodes.len(), cluster.replicas().len()).await;
    let account = TempAccount::create("ondemand", "Ondemand_pw1").await;
    let started = Instant::now();
    let mut conn = loop {
        match try_login(&proxy, &account.creds).await {
            Ok(conn) => break conn,
            // Only possible when a refresh ran less than a second ago (rate limit).
            Err(e) if started.elapsed() < Duration::from_millis(2500) => {
                eprintln!("login refused, retrying: {e}");
                tokio::time::sleep(Duration::from_millis(300)).await;
            }
            Err(e) => panic!(
                "the new account never logged in: {e}\n--- proxy log ---\n{}",
                proxy.log_tail(30)
            ),
        }
    };
    let (_, current) = who_answers(&mut conn, "SELECT @@server_id, CURRENT_USER()").await;
    assert_eq!(current, format!("{}@%", account.name()));
    conn.disconnect().await.unwrap();
}

#[tokio::test]
async fn a_dropped_account_is_refused_after_a_refresh() {
    let proxy = start_accounts_proxy().await;
    let account = TempAccount::create("dropped", "Dropped_pw1").await;
    let mut conn = login(&proxy, &account.creds).await;
    conn.query_drop("SELECT 1").await.unwrap();
    conn.disconnect().await.unwrap();

    cluster()
        .admin_exec(0, &format!("DROP USER '{}'@'%'", account.name()))
        .await
        .unwrap();
    caught_up().await;

    // The periodic refresh (1s) must make the proxy forget the account.
    let deadline = Instant::now() + PROPAGATION;
    let err = loop {
        match try_login(&proxy, &account.creds).await {
            Err(mysql_async::Error::Server(e)) => break e,
            Err(other) => panic!("expected ERR 1045, got {other:?}"),
            Ok(conn) => {
                drop(conn);
                assert!(
                    Instant::now() < deadline,
                    "the dropped account still logs in after {PROPAGATION:?}\n--- proxy log ---\n{}",
                    proxy.log_tail(30)
                );
                tokio::time::sleep(Duration::from_millis(200)).await;
            }
        }
    };
    // Before the refresh the backend itself may be the one refusing (1045 or 1698, as the
    // server words it); either way it is an access-denied error with SQLSTATE 28000.
    assert!(matches!(err.code, 1045 | 1698), "{err:?}");
    assert_eq!(err.state.as_str(), "28000", "{err:?}");
    assert!(
        err.message
            .starts_with(&format!("Access denied for user '{}'@'", account.name())),
        "{}",
        err.message
    );
    // After a refresh rwproxy itself refuses it, before any backend is asked.
    tokio::time::sleep(Duration::from_millis(1500)).await;
    let again = refused(try_login(&proxy, &account.creds).await, &proxy);
    assert_eq!(again.code, 1045, "{again:?}");
}

#[tokio::test]
async fn a_changed_password_works_and_the_old_one_is_refused() {
    let proxy = start_accounts_proxy().await;
    let account = TempAccount::create("alter", "Old_pw_111").await;
    let mut conn = login(&proxy, &account.creds).await;
    conn.query_drop("SELECT 1").await.unwrap();
    conn.disconnect().await.unwrap();

    cluster()
        .admin_exec(
            0,
            &format!(
                "ALTER USER '{}'@'%' IDENTIFIED BY 'New_pw_222'",
                account.name()
            ),
        )
        .await
        .unwrap();
    caught_up().await;

    let new = account.with_password("New_pw_222");
    let deadline = Instant::now() + PROPAGATION;
    let mut conn = loop {
        match try_login(&proxy, &new).await {
            Ok(conn) => break conn,
            Err(e) => {
                assert!(
                    Instant::now() < deadline,
                    "the new password is still refused after {PROPAGATION:?}: {e}\n--- proxy log ---\n{}",
                    proxy.log_tail(30)
                );
                tokio::time::sleep(Duration::from_millis(200)).await;
            }
        }
    };
    // Reads and writes work with the new password on the backends too.
    let (_, current) = who_answers(&mut conn, "SELECT @@server_id, CURRENT_USER()").await;
    assert_eq!(current, format!("{}@%", account.name()));
    conn.query_drop("BEGIN").await.unwrap();
    let (_, current) =
        who_answers(&mut conn, "SELECT @@server_id, CURRENT_USER() FOR UPDATE").await;
    assert_eq!(current, format!("{}@%", account.name()));
    conn.query_drop("COMMIT").await.unwrap();
    conn.disconnect().await.unwrap();

    let err = refused(try_login(&proxy, &account.creds).await, &proxy);
    assert_eq!((err.code, err.state.as_str()), (1045, "28000"), "{err:?}");
}

#[tokio::test]
async fn change_user_to_a_backend_account_is_seen_by_every_server_used() {
    let ids = server_ids().await;
    let (primary, replicas) = (ids[0], &ids[1..]);
    let proxy = start_accounts_proxy().await;
    let account = TempAccount::create("chg", "Change_pw_1").await;
    let t = unique_table("chg");
    cluster()
        .admin_exec(
            0,
            &format!("CREATE TABLE app.{t} (id INT PRIMARY KEY, who VARCHAR(200))"),
        )
        .await
        .unwrap();
    caught_up().await;

    let mut conn = login(&proxy, &cluster().app).await;
    let (_, before) = who_answers(&mut conn, "SELECT @@server_id, CURRENT_USER()").await;
    assert!(
        before.starts_with(&format!("{}@", cluster().app.user)),
        "{before}"
    );

    conn.change_user(
        ChangeUserOpts::default()
            .with_user(Some(account.name().to_string()))
            .with_pass(Some(account.creds.password.clone()))
            .with_db_name(Some("app".to_string())),
    )
    .await
    .unwrap_or_else(|e| {
        panic!(
            "COM_CHANGE_USER to {}: {e}\n--- proxy log ---\n{}",
            account.name(),
            proxy.log_tail(30)
        )
    });
    let expected = format!("{}@%", account.name());

    // Reads: every replica that answers must see the new user.
    let mut seen = Vec::new();
    for _ in 0..4 {
        let (id, current) = who_answers(&mut conn, "SELECT @@server_id, CURRENT_USER()").await;
        assert_eq!(current, expected, "read answered by server {id}");
        seen.push(id);
    }
    assert!(
        seen.iter().any(|id| replicas.contains(id)),
        "no read went to a replica: {seen:?} (replicas {replicas:?})"
    );

    // A write and a locking read in a transaction: the primary sees the new user.
    conn.query_drop("START TRANSACTION").await.unwrap();
    conn.query_drop(format!("INSERT INTO {t} VALUES (1, CURRENT_USER())"))
        .await
        .unwrap();
    let (id, current) = who_answers(
        &mut conn,
        &format!("SELECT @@server_id, CURRENT_USER() FROM {t} WHERE id = 1 FOR UPDATE"),
    )
    .await;
    assert_eq!((id, current.as_str()), (primary, expected.as_str()));
    conn.query_drop("COMMIT").await.unwrap();
    let stored: Option<String> = cluster()
        .admin_scalar(0, &format!("SELECT who FROM app.{t} WHERE id = 1"))
        .await
        .unwrap();
    assert_eq!(stored.as_deref(), Some(expected.as_str()));

    conn.disconnect().await.unwrap();
    cluster()
        .admin_exec(0, &format!("DROP TABLE app.{t}"))
        .await
        .unwrap();
}

/// `Aborted_connects` of every node.
async fn aborted_connects() -> Vec<u64> {
    let cluster = cluster();
    let mut out = Vec::new();
    for node in 0..cluster.nodes.len() {
        let rows = cluster
            .admin_rows(node, "SHOW GLOBAL STATUS LIKE 'Aborted_connects'")
            .await
            .unwrap();
        let value: String = rows
            .first()
            .and_then(|r| r.get::<String, _>(1))
            .expect("an Aborted_connects row");
        out.push(value.parse().expect("a number"));
    }
    out
}

#[tokio::test]
async fn a_wrong_password_never_reaches_a_backend() {
    let proxy = start_accounts_proxy().await;
    let account = TempAccount::create("wrongpw", "Right_pw_1").await;
    // The proxy knows the account (and its backend connections work).
    let mut conn = login(&proxy, &account.creds).await;
    conn.query_drop("SELECT 1").await.unwrap();
    conn.disconnect().await.unwrap();

    // Other test processes may share the cluster and abort connections of their own; a proxy
    // that forwarded the wrong passwords would raise the counters in every round.
    let mut rounds = Vec::new();
    for _ in 0..3 {
        let before = aborted_connects().await;
        for i in 0..5 {
            let err = refused(
                try_login(&proxy, &account.with_password(&format!("wrong_{i}"))).await,
                &proxy,
            );
            assert_eq!((err.code, err.state.as_str()), (1045, "28000"), "{err:?}");
        }
        let after = aborted_connects().await;
        if before == after {
            // The right password still works afterwards.
            let mut conn = login(&proxy, &account.creds).await;
            conn.query_drop("SELECT 1").await.unwrap();
            conn.disconnect().await.unwrap();
            return;
        }
        rounds.push((before, after));
    }
    panic!(
        "Aborted_connects rose on a backend in every round of 5 wrong-password logins \
         (before, after per node): {rounds:?}\n--- proxy log ---\n{}",
        proxy.log_tail(30)
    );
}

/// Makes sure the ed25519 plugin is loaded on the primary; false if it cannot be.
async fn ed25519_available() -> bool {
    let cluster = cluster();
    let loaded = |n: Option<i64>| n.unwrap_or(0) > 0;
    let query = "SELECT COUNT(*) FROM information_schema.plugins \
                 WHERE plugin_name = 'ed25519' AND plugin_status = 'ACTIVE'";
    if loaded(cluster.admin_scalar(0, query).await.unwrap()) {
        return true;
    }
    // Only on the primary, and kept out of the binlog: the replicas never see this account.
    if let Err(e) = cluster
        .admin_exec(
            0,
            "SET SESSION sql_log_bin = 0; INSTALL SONAME 'auth_ed25519'",
        )
        .await
    {
        eprintln!("INSTALL SONAME 'auth_ed25519' failed: {e}");
    }
    loaded(cluster.admin_scalar(0, query).await.unwrap())
}

#[tokio::test]
async fn an_account_with_another_plugin_gets_an_error_naming_it() {
    let proxy = start_accounts_proxy().await;
    let cluster = cluster();
    let mut cases = vec![("unix_socket", "IDENTIFIED VIA unix_socket")];
    if ed25519_available().await {
        cases.push((
            "ed25519",
            "IDENTIFIED VIA ed25519 USING PASSWORD('Ed_pw_1')",
        ));
    } else {
        eprintln!("SKIPPED the ed25519 case: the plugin cannot be loaded on the primary");
    }
    // Create every account first: an unknown user refreshes the accounts at most once a second.
    let mut names = Vec::new();
    for (plugin, clause) in &cases {
        let name = unique_name("plg");
        // Only on the primary (where rwproxy reads accounts), not replicated.
        cluster
            .admin_exec(
                0,
                &format!(
                    "SET SESSION sql_log_bin = 0; CREATE USER '{name}'@'%' {clause}; \
                     GRANT SELECT ON app.* TO '{name}'@'%'"
                ),
            )
            .await
            .unwrap_or_else(|e| panic!("creating a {plugin} account: {e}"));
        names.push(name);
    }
    let mut results = Vec::new();
    for name in &names {
        results.push(try_login(&proxy, &rwproxy_testkit::Credentials::new(name, "Ed_pw_1")).await);
    }
    for name in &names {
        drop_user_blocking(&format!(
            "SET SESSION sql_log_bin = 0; DROP USER IF EXISTS '{name}'@'%'"
        ));
    }
    for (((plugin, _), name), result) in cases.iter().zip(&names).zip(results) {
        let err = refused(result, &proxy);
        eprintln!("{plugin}: {} ({}) {}", err.code, err.state, err.message);
        assert!(
            err.message.contains(&format!("'{plugin}'")) && err.message.contains(name.as_str()),
            "the error for a {plugin} account does not name the plugin and user: {err:?}"
        );
        assert_eq!((err.code, err.state.as_str()), (1251, "08004"), "{err:?}");
    }
}
