//! An account created on the server a moment ago can log in and be changed to at once, even
//! when another unknown login used the account refresh a moment before: rwproxy waits for a
//! fresh account list (bounded) before it answers 1045, as a direct connection would succeed.

use mysql_async::prelude::Queryable;
use mysql_async::ChangeUserOpts;
use rwproxy_testkit::Credentials;

use crate::support::{
    cluster, drop_user_blocking, login, refused, start_accounts_proxy, try_login, unique_name,
};

/// Creates `name` on the primary (no wait for the replicas: rwproxy reads accounts there).
async fn create_now(name: &str, password: &str) {
    cluster()
        .admin_exec(
            0,
            &format!(
                "CREATE USER '{name}'@'%' IDENTIFIED BY '{password}'; \
                 GRANT SELECT ON app.* TO '{name}'@'%'"
            ),
        )
        .await
        .unwrap_or_else(|e| panic!("creating {name}: {e}"));
}

#[tokio::test]
async fn login_right_after_another_unknown_login() {
    let proxy = start_accounts_proxy().await;
    let ghost = Credentials::new(&unique_name("ghost"), "x");
    let err = refused(try_login(&proxy, &ghost).await, &proxy);
    assert_eq!(err.code, 1045);
    // Within the same second: the refresh slot is taken, and the new account must still work.
    let name = unique_name("fresh");
    create_now(&name, "fresh_pw").await;
    let mut conn = login(&proxy, &Credentials::new(&name, "fresh_pw")).await;
    let who: Option<String> = conn.query_first("SELECT CURRENT_USER()").await.unwrap();
    assert_eq!(who, Some(format!("{name}@%")));
    conn.disconnect().await.unwrap();
    drop_user_blocking(&format!("DROP USER IF EXISTS '{name}'@'%'"));
}

#[tokio::test]
async fn change_user_to_an_account_created_a_moment_ago() {
    let proxy = start_accounts_proxy().await;
    let mut conn = login(&proxy, &cluster().app).await;
    let ghost = Credentials::new(&unique_name("ghost"), "x");
    let err = refused(try_login(&proxy, &ghost).await, &proxy);
    assert_eq!(err.code, 1045);
    let name = unique_name("chg");
    create_now(&name, "chg_pw").await;
    let to_new = ChangeUserOpts::default()
        .with_user(Some(name.clone()))
        .with_pass(Some("chg_pw".to_string()))
        .with_db_name(Some("app".to_string()));
    if let Err(e) = conn.change_user(to_new).await {
        panic!(
            "COM_CHANGE_USER to a new account failed: {e}\n--- proxy log ---\n{}",
            proxy.log_tail(20)
        );
    }
    let who: Option<String> = conn.query_first("SELECT CURRENT_USER()").await.unwrap();
    assert_eq!(who, Some(format!("{name}@%")));
    // A wrong password for an existing account is still refused.
    let wrong = ChangeUserOpts::default()
        .with_user(Some(cluster().app.user.clone()))
        .with_pass(Some("not-the-password".to_string()));
    let err = conn
        .change_user(wrong)
        .await
        .expect_err("wrong password accepted");
    assert!(
        matches!(&err, mysql_async::Error::Server(e) if e.code == 1045),
        "{err:?}"
    );
    drop_user_blocking(&format!("DROP USER IF EXISTS '{name}'@'%'"));
}

/// An account the replicas do not have (here: created without binary logging, as if they had
/// not applied it yet) still reads through rwproxy: the replica refuses the login, the primary
/// answers, as a direct connection to the primary would.
#[tokio::test]
async fn reads_of_an_account_the_replicas_lack_go_to_the_primary() {
    let proxy = start_accounts_proxy().await;
    let name = unique_name("unrepl");
    cluster()
        .admin_exec(
            0,
            &format!(
                "SET SESSION sql_log_bin = 0; \
                 CREATE USER '{name}'@'%' IDENTIFIED BY 'pw'; \
                 GRANT SELECT ON app.* TO '{name}'@'%'"
            ),
        )
        .await
        .unwrap();
    let mut conn = login(&proxy, &Credentials::new(&name, "pw")).await;
    let answer: Result<Option<String>, _> = conn.query_first("SELECT CURRENT_USER()").await;
    let cleanup = format!("SET SESSION sql_log_bin = 0; DROP USER IF EXISTS '{name}'@'%'");
    let answer = answer.map_err(|e| format!("{e}\n--- proxy log ---\n{}", proxy.log_tail(20)));
    let _ = conn.disconnect().await;
    cluster().admin_exec(0, &cleanup).await.unwrap();
    assert_eq!(answer.unwrap(), Some(format!("{name}@%")));
}
