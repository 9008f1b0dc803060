//! Routing hints in comments and routing rules from the configuration, and which of them wins.

use mysql_async::prelude::Queryable;

use crate::support::{
    answered_by, app_via, assert_spread_over_replicas, cluster, routing_decisions, start_shared,
    Ids,
};

const RULES: &str = "routing:\n  rules:\n    \
    - { match: '(?i)reports', route: primary }\n    \
    - { match: 'archive_probe', route: db3 }\n    \
    - { match: 'to_replica_rule', route: replica }\n";

#[tokio::test]
async fn hints_choose_the_primary_or_a_replica() {
    let ids = Ids::of(cluster()).await;
    let proxy = start_shared("").await;
    let before = routing_decisions(&proxy, "primary", "hint").await;
    let mut conn = app_via(&proxy).await;
    for sql in [
        "/* rwproxy:primary */ SELECT @@server_id",
        "SELECT /* rwproxy:primary */ @@server_id",
        "SELECT @@server_id /*   RWPROXY:PRIMARY */",
    ] {
        for _ in 0..2 {
            assert_eq!(answered_by(&mut conn, sql).await, ids.primary, "{sql}");
        }
    }
    assert!(
        routing_decisions(&proxy, "primary", "hint").await >= before + 6.0,
        "the hinted statements were not counted as routed by hint"
    );
    // A replica hint on a read: the replicas, as usual.
    let mut seen = Vec::new();
    for _ in 0..4 {
        seen.push(answered_by(&mut conn, "/* rwproxy:replica */ SELECT @@server_id").await);
    }
    assert_spread_over_replicas(&seen, &ids, "reads with a replica hint");
    // A comment that merely mentions the hint is not one.
    let sql = "/* please do not use rwproxy:primary here */ SELECT @@server_id";
    let mut seen = Vec::new();
    for _ in 0..4 {
        seen.push(answered_by(&mut conn, sql).await);
    }
    assert_spread_over_replicas(&seen, &ids, sql);
    // Inside a transaction the hint changes nothing: still the transaction's server.
    conn.query_drop("START TRANSACTION READ ONLY")
        .await
        .unwrap();
    let holder = answered_by(&mut conn, "SELECT @@server_id").await;
    assert!(ids.is_replica(holder));
    assert_eq!(
        answered_by(&mut conn, "/* rwproxy:primary */ SELECT @@server_id").await,
        holder,
        "a primary hint moved a statement out of its transaction"
    );
    conn.query_drop("COMMIT").await.unwrap();
    conn.disconnect().await.unwrap();
}

#[tokio::test]
async fn rules_route_matching_statements_and_beat_hints() {
    let cluster = cluster();
    let ids = Ids::of(cluster).await;
    let db3 = ids.replicas[1];
    let proxy = start_shared(RULES).await;
    let mut conn = app_via(&proxy).await;

    for sql in [
        "SELECT @@server_id AS reports",
        "SELECT @@server_id AS monthly_REPORTS",
        "SELECT @@server_id FROM DUAL WHERE 'Reports' <> ''",
    ] {
        for _ in 0..2 {
            assert_eq!(answered_by(&mut conn, sql).await, ids.primary, "{sql}");
        }
    }
    // A rule naming a backend sends every match to that one replica.
    for _ in 0..4 {
        assert_eq!(
            answered_by(&mut conn, "SELECT @@server_id AS archive_probe").await,
            db3
        );
    }
    // The rule is checked before the hint.
    let mut seen = Vec::new();
    for _ in 0..4 {
        seen.push(
            answered_by(
                &mut conn,
                "/* rwproxy:primary */ SELECT @@server_id AS to_replica_rule",
            )
            .await,
        );
    }
    assert_spread_over_replicas(&seen, &ids, "a replica rule against a primary hint");
    // Statements no rule matches: the usual split.
    let mut seen = Vec::new();
    for _ in 0..4 {
        seen.push(answered_by(&mut conn, "SELECT @@server_id").await);
    }
    assert_spread_over_replicas(&seen, &ids, "reads no rule matches");
    // A transaction is checked before the rules.
    conn.query_drop("BEGIN").await.unwrap();
    assert_eq!(
        answered_by(&mut conn, "SELECT @@server_id AS archive_probe").await,
        ids.primary,
        "a rule moved a statement out of its transaction"
    );
    conn.query_drop("COMMIT").await.unwrap();

    assert!(routing_decisions(&proxy, "primary", "rule").await >= 6.0);
    assert!(routing_decisions(&proxy, "replica", "rule").await >= 8.0);
    conn.disconnect().await.unwrap();
}

/// A question about the previous statement (`SHOW WARNINGS`) goes where that statement ran and
/// is counted as `previous_statement`.
#[tokio::test]
async fn questions_about_the_previous_statement_follow_it_and_are_counted() {
    let ids = Ids::of(cluster()).await;
    let proxy = start_shared("").await;
    let count = |role: &'static str| routing_decisions(&proxy, role, "previous_statement");
    let before = count("primary").await + count("replica").await;
    let mut conn = app_via(&proxy).await;
    for _ in 0..3 {
        // A read on a replica, then SHOW WARNINGS about it: the same replica answers.
        let read_on = answered_by(&mut conn, "SELECT @@server_id").await;
        assert!(ids.is_replica(read_on));
        conn.query_drop("SHOW WARNINGS").await.unwrap();
    }
    let after = count("primary").await + count("replica").await;
    assert!(
        after >= before + 3.0,
        "SHOW WARNINGS counted {} times as previous_statement",
        after - before
    );
}
