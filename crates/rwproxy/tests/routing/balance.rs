//! `replica_balance: weighted`: reads are shared by the replicas' weights.

use rwproxy_testkit::StandardConfig;

use crate::support::{app_via, cluster, per_statement, read_ids, start_routable, tally, Ids};

#[tokio::test]
async fn weighted_balance_favours_the_heavier_replica() {
    let cluster = cluster();
    let ids = Ids::of(cluster).await;
    let mut config = StandardConfig::new(cluster);
    config.backends[1].weight = 1;
    config.backends[2].weight = 3;
    config.extra = per_statement("routing:\n  replica_balance: weighted\n");
    let proxy = start_routable(cluster, &config).await;

    let mut all = Vec::new();
    for _ in 0..3 {
        let mut conn = app_via(&proxy).await;
        let seen = read_ids(&mut conn, 40).await;
        conn.disconnect().await.unwrap();
        all.extend(seen);
    }
    let counts = tally(&all);
    let light = counts.get(&ids.replicas[0]).copied().unwrap_or(0);
    let heavy = counts.get(&ids.replicas[1]).copied().unwrap_or(0);
    assert_eq!(
        light + heavy,
        all.len(),
        "reads answered by something else than the replicas: {counts:?} (primary {})",
        ids.primary
    );
    assert!(light > 0, "the weight-1 replica got no reads: {counts:?}");
    // 1:3 of 120 reads is 30:90; allow some slack, but the heavier one must clearly lead.
    assert!(
        heavy >= 2 * light,
        "weights 1 and 3 gave {light} and {heavy} reads"
    );
    assert!(
        (20..=40).contains(&light),
        "weight 1 of 4 got {light} of 120 reads"
    );
}
