//! What a session changes follows it to whichever server answers: session variables,
//! character set, default schema; what only one server has (temporary tables, the last insert
//! id) keeps the statements that need it on that server.

use std::collections::BTreeSet;
use std::time::Duration;

use mysql_async::prelude::Queryable;

use crate::support::{
    answered_by, app_session, app_via, assert_spread_over_replicas, cluster, create_table,
    drop_table, read_ids, start_shared, unique_table, Ids,
};

#[tokio::test]
async fn set_names_time_zone_and_use_are_seen_by_every_server() {
    let cluster = cluster();
    let ids = Ids::of(cluster).await;
    let t = unique_table("state");
    create_table(cluster, &t).await;
    cluster
        .admin_exec(0, &format!("INSERT INTO app.{t} (sid) VALUES (7)"))
        .await
        .unwrap();
    cluster
        .wait_replicas_caught_up(Duration::from_secs(10))
        .await
        .unwrap();
    let proxy = start_shared("").await;
    // No default schema at login.
    let mut conn = app_session(&proxy, cluster, None).await;
    // Open a connection to both replicas before the session commands: they must be replayed
    // on connections that already exist, not only on new ones.
    let before = read_ids(&mut conn, 2).await;
    assert_spread_over_replicas(&before, &ids, "reads before the session commands");

    conn.query_drop("SET @@time_zone='+03:00'").await.unwrap();
    conn.query_drop("SET NAMES latin1").await.unwrap();
    conn.query_drop("USE app").await.unwrap();

    let mut answered = Vec::new();
    for i in 0..8 {
        let (id, tz, cs, db): (u32, String, String, Option<String>) = conn
            .query_first("SELECT @@server_id, @@time_zone, @@character_set_client, DATABASE()")
            .await
            .unwrap()
            .unwrap();
        assert_eq!(tz, "+03:00", "read {i} on server {id}: time_zone");
        assert_eq!(
            cs, "latin1",
            "read {i} on server {id}: character_set_client"
        );
        assert_eq!(
            db.as_deref(),
            Some("app"),
            "read {i} on server {id}: schema"
        );
        // An unqualified table name resolves in `app` wherever the read runs.
        let (id2, n): (u32, i64) = conn
            .query_first(format!("SELECT @@server_id, COUNT(*) FROM {t}"))
            .await
            .unwrap()
            .unwrap();
        assert_eq!(n, 1, "read {i} on server {id2}: unqualified table");
        answered.push(id);
        answered.push(id2);
    }
    assert_spread_over_replicas(&answered, &ids, "reads after SET/USE");

    // A later change replaces the earlier one everywhere.
    conn.query_drop("SET time_zone = '-05:00'").await.unwrap();
    let mut zones = BTreeSet::new();
    let mut answered = Vec::new();
    for _ in 0..4 {
        let (id, tz): (u32, String) = conn
            .query_first("SELECT @@server_id, @@time_zone")
            .await
            .unwrap()
            .unwrap();
        zones.insert(tz);
        answered.push(id);
    }
    assert_spread_over_replicas(&answered, &ids, "reads after the second SET time_zone");
    assert_eq!(zones, BTreeSet::from(["-05:00".to_string()]));
    conn.disconnect().await.unwrap();
    drop_table(cluster, &t).await;
}

#[tokio::test]
async fn a_temporary_table_is_readable_right_after_its_creation() {
    let cluster = cluster();
    let ids = Ids::of(cluster).await;
    let proxy = start_shared("").await;
    let mut conn = app_via(&proxy).await;
    let tmp = unique_table("tmp");

    conn.query_drop(format!(
        "CREATE TEMPORARY TABLE {tmp} (id INT PRIMARY KEY, sid INT UNSIGNED)"
    ))
    .await
    .unwrap();
    // Read at once: only the primary's connection has the table.
    let n: Option<i64> = conn
        .query_first(format!("SELECT COUNT(*) FROM {tmp}"))
        .await
        .unwrap();
    assert_eq!(n, Some(0));
    conn.query_drop(format!(
        "INSERT INTO {tmp} VALUES (1, @@server_id), (2, @@server_id)"
    ))
    .await
    .unwrap();
    for _ in 0..4 {
        let (id, count, sid): (u32, i64, u32) = conn
            .query_first(format!("SELECT @@server_id, COUNT(*), MAX(sid) FROM {tmp}"))
            .await
            .unwrap()
            .unwrap();
        assert_eq!((id, count, sid), (ids.primary, 2, ids.primary));
    }
    // While the table exists, the whole session stays on the primary.
    assert_eq!(read_ids(&mut conn, 4).await, vec![ids.primary; 4]);

    conn.query_drop(format!("DROP TEMPORARY TABLE {tmp}"))
        .await
        .unwrap();
    let after = read_ids(&mut conn, 6).await;
    assert_spread_over_replicas(&after, &ids, "reads after DROP TEMPORARY TABLE");
    conn.disconnect().await.unwrap();
}

#[tokio::test]
async fn last_insert_id_is_the_auto_increment_id() {
    let cluster = cluster();
    let ids = Ids::of(cluster).await;
    let t = unique_table("lastid");
    create_table(cluster, &t).await;
    // Start the counter somewhere recognisable.
    cluster
        .admin_exec(0, &format!("ALTER TABLE app.{t} AUTO_INCREMENT = 1000"))
        .await
        .unwrap();
    let proxy = start_shared("").await;
    let mut conn = app_via(&proxy).await;
    for round in 0..3 {
        conn.query_drop(format!(
            "INSERT INTO {t} (sid, note) VALUES (@@server_id, 'r{round}')"
        ))
        .await
        .unwrap();
        let from_ok = conn
            .last_insert_id()
            .expect("an insert id in the OK packet");
        let (last, id): (u64, u32) = conn
            .query_first("SELECT LAST_INSERT_ID(), @@server_id")
            .await
            .unwrap()
            .unwrap();
        assert_eq!(id, ids.primary, "LAST_INSERT_ID() must run on the primary");
        assert_eq!(last, from_ok, "round {round}");
        let on_primary: Option<u64> = cluster
            .admin_scalar(
                0,
                &format!("SELECT id FROM app.{t} WHERE note = 'r{round}'"),
            )
            .await
            .unwrap();
        assert_eq!(Some(last), on_primary, "round {round}");
        assert_eq!(last, 1000 + round as u64);
        // A read in between goes to a replica and leaves LAST_INSERT_ID() alone.
        let reader = answered_by(&mut conn, "SELECT @@server_id").await;
        assert!(ids.is_replica(reader));
        let again: Option<u64> = conn.query_first("SELECT LAST_INSERT_ID()").await.unwrap();
        assert_eq!(again, Some(last), "round {round}, after a replica read");
    }
    conn.disconnect().await.unwrap();
    drop_table(cluster, &t).await;
}

#[tokio::test]
async fn connection_id_is_the_same_wherever_it_runs() {
    let cluster = cluster();
    let ids = Ids::of(cluster).await;
    let proxy = start_shared("").await;
    let mut conn = app_via(&proxy).await;
    let expected = conn.id();
    let mut answered = Vec::new();
    for _ in 0..4 {
        let (id, cid): (u32, u32) = conn
            .query_first("SELECT @@server_id, CONNECTION_ID()")
            .await
            .unwrap()
            .unwrap();
        assert_eq!(cid, expected, "CONNECTION_ID() on server {id}");
        answered.push(id);
    }
    assert_spread_over_replicas(&answered, &ids, "CONNECTION_ID() reads");
    let (id, cid): (u32, u32) = conn
        .query_first("/* rwproxy:primary */ SELECT @@server_id, connection_id( )")
        .await
        .unwrap()
        .unwrap();
    assert_eq!((id, cid), (ids.primary, expected));
    conn.disconnect().await.unwrap();
}

/// Creates temporary tables `keep` and `others`, runs `drop_sql` (which must not drop `keep`),
/// and checks that `keep` is still readable through the proxy, four times.
async fn temporary_table_survives(others: &[&str], drop_sql: &str, keep: &str) {
    let cluster = cluster();
    let ids = Ids::of(cluster).await;
    let proxy = start_shared("").await;
    let mut conn = app_via(&proxy).await;
    for table in std::iter::once(&keep).chain(others) {
        conn.query_drop(format!("CREATE TEMPORARY TABLE {table} (id INT)"))
            .await
            .unwrap();
    }
    conn.query_drop(drop_sql).await.unwrap();
    for i in 0..4 {
        let result: Result<Option<(u32, i64)>, _> = conn
            .query_first(format!("SELECT @@server_id, COUNT(*) FROM {keep}"))
            .await;
        match result {
            Ok(row) => assert_eq!(row, Some((ids.primary, 0)), "read {i}"),
            Err(e) => panic!(
                "after `{drop_sql}`, read {i} of the temporary table {keep} failed: {e} \
                 (the session was released from the primary while {keep} still exists)"
            ),
        }
    }
    conn.disconnect().await.unwrap();
}

#[tokio::test]
async fn dropping_a_missing_temporary_table_keeps_the_others_readable() {
    let keep = unique_table("tmpkeep");
    let missing = unique_table("tmpmissing");
    let drop_sql = format!("DROP TEMPORARY TABLE IF EXISTS {missing}");
    temporary_table_survives(&[], &drop_sql, &keep).await;
}

#[tokio::test]
async fn dropping_one_temporary_table_with_a_comma_in_a_comment_keeps_the_others_readable() {
    let keep = unique_table("tmpkeep");
    let other = unique_table("tmpother");
    let drop_sql = format!("DROP TEMPORARY TABLE {other} /* was: a, b */");
    temporary_table_survives(&[&other], &drop_sql, &keep).await;
}

#[tokio::test]
async fn dropping_several_temporary_tables_at_once_unpins() {
    let (a, b) = (unique_table("tmpa"), unique_table("tmpb"));
    let drop_sql = format!("DROP TEMPORARY TABLE {a}, {b}");
    dropping_unpins("TABLE", &[&a, &b], &drop_sql).await;
}

/// The server runs what a MariaDB executable comment holds: a name in it is dropped too.
#[tokio::test]
async fn dropping_temporary_tables_named_in_an_executable_comment_unpins() {
    let (a, b) = (unique_table("tmpa"), unique_table("tmpb"));
    let drop_sql = format!("DROP TEMPORARY TABLE {a} /*M!100100 , {b} */");
    dropping_unpins("TABLE", &[&a, &b], &drop_sql).await;
}

#[tokio::test]
async fn dropping_a_temporary_sequence_unpins() {
    let s = unique_table("tmpseq");
    let drop_sql = format!("DROP TEMPORARY SEQUENCE {s}");
    dropping_unpins("SEQUENCE", &[&s], &drop_sql).await;
}

/// Creates the temporary `object`s (TABLE or SEQUENCE) `names`, which keep the session on the
/// primary, and runs `drop_sql`, which drops them all: reads go to the replicas again.
async fn dropping_unpins(object: &str, names: &[&str], drop_sql: &str) {
    let cluster = cluster();
    let ids = Ids::of(cluster).await;
    let proxy = start_shared("").await;
    let mut conn = app_via(&proxy).await;
    for name in names {
        let definition = if object == "TABLE" { " (id INT)" } else { "" };
        conn.query_drop(format!("CREATE TEMPORARY {object} {name}{definition}"))
            .await
            .unwrap();
    }
    assert_eq!(read_ids(&mut conn, 2).await, vec![ids.primary; 2]);
    conn.query_drop(drop_sql).await.unwrap();
    let after = read_ids(&mut conn, 4).await;
    assert_spread_over_replicas(&after, &ids, &format!("reads after `{drop_sql}`"));
    conn.disconnect().await.unwrap();
}

/// Under `NO_BACKSLASH_ESCAPES` (or `ANSI_QUOTES`) a backslash does not escape a quote: text
/// that is one read in the default mode holds a second statement, a write. It must run on the
/// primary (a replica refuses the write: `app` lacks READ_ONLY ADMIN).
#[tokio::test]
async fn a_write_hidden_by_the_quoting_mode_goes_to_the_primary() {
    let cluster = cluster();
    let t = unique_table("quoting");
    create_table(cluster, &t).await;
    let proxy = start_shared("").await;
    for (mode, sql) in [
        (
            "NO_BACKSLASH_ESCAPES",
            format!(r"SELECT 'a\'; INSERT INTO {t} (sid, note) VALUES (@@server_id, 'nbe') -- '"),
        ),
        (
            "ANSI_QUOTES",
            format!(
                r#"SELECT 1 AS "a\"; INSERT INTO {t} (sid, note) VALUES (@@server_id, 'ansi') -- ""#
            ),
        ),
    ] {
        let mut conn = app_via(&proxy).await;
        conn.query_drop(format!("SET sql_mode = '{mode}'"))
            .await
            .unwrap();
        // Another statement first, so the session's own status flags are known.
        let _ = answered_by(&mut conn, "SELECT @@server_id").await;
        if let Err(e) = conn.query_drop(&sql).await {
            panic!(
                "{mode}: {sql}\nfailed through rwproxy: {e}\n--- proxy log ---\n{}",
                proxy.log_tail(20)
            );
        }
        conn.disconnect().await.unwrap();
    }
    let rows: Vec<(u32, String)> = cluster
        .admin_rows(0, &format!("SELECT sid, note FROM app.{t} ORDER BY id"))
        .await
        .unwrap()
        .into_iter()
        .map(mysql_async::from_row)
        .collect();
    let primary_id = cluster.server_id_of(cluster.primary().port).await.unwrap();
    assert_eq!(
        rows,
        vec![
            (primary_id, "nbe".to_string()),
            (primary_id, "ansi".to_string())
        ]
    );
    drop_table(cluster, &t).await;
}
