//! The throwaway cluster `ops-lag` (ports 3500-3502), whose replicas apply every event
//! `MASTER_DELAY = 2` seconds late (1-2 s in practice: event times have one-second resolution).
//!
//! Tests take it one at a time ([`lag_cluster`]). It is created on first use, with table
//! `app.ryw` on every node, and kept for the next test only while another test is already
//! waiting for it; the last user (or a test that panics) stops and wipes it. So a whole run
//! usually brings it up once, and nothing is left running afterwards.

use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

use rwproxy_testkit::{Cluster, ThrowawayCluster};
use tokio::sync::{Mutex, MutexGuard};

pub const NAME: &str = "ops-lag";
pub const BASE_PORT: u16 = 3500;

static CLUSTER: Mutex<Option<ThrowawayCluster>> = Mutex::const_new(None);
/// Tests holding or waiting for the cluster.
static USERS: AtomicUsize = AtomicUsize::new(0);

/// Exclusive use of the `ops-lag` cluster until dropped.
pub struct LagCluster {
    slot: MutexGuard<'static, Option<ThrowawayCluster>>,
}

/// Wait for the cluster, creating it if no earlier test left it for us.
pub async fn lag_cluster() -> LagCluster {
    USERS.fetch_add(1, Ordering::SeqCst);
    // From here on, Drop accounts for this user even if the setup below panics.
    let mut handle = LagCluster {
        slot: CLUSTER.lock().await,
    };
    if handle.slot.is_none() {
        *handle.slot = Some(create().await);
    }
    handle
}

async fn create() -> ThrowawayCluster {
    let cluster = Cluster::throwaway(NAME, BASE_PORT)
        .unwrap_or_else(|e| panic!("bringing up the throwaway cluster {NAME}: {e}"));
    cluster
        .admin_exec(
            0,
            "CREATE TABLE app.ryw (id BIGINT PRIMARY KEY, tag VARCHAR(64) NOT NULL)",
        )
        .await
        .unwrap();
    // The table reaches the replicas before the delay starts.
    cluster
        .wait_replicas_caught_up(Duration::from_secs(10))
        .await
        .unwrap();
    for replica in 1..cluster.nodes.len() {
        cluster
            .admin_exec(
                replica,
                "STOP SLAVE; CHANGE MASTER TO MASTER_DELAY = 2; START SLAVE",
            )
            .await
            .unwrap();
    }
    cluster
}

impl std::ops::Deref for LagCluster {
    type Target = ThrowawayCluster;
    fn deref(&self) -> &ThrowawayCluster {
        self.slot
            .as_ref()
            .expect("the ops-lag cluster exists while held")
    }
}

impl Drop for LagCluster {
    fn drop(&mut self) {
        let others = USERS.fetch_sub(1, Ordering::SeqCst) - 1;
        if others == 0 || std::thread::panicking() {
            // Dropping the ThrowawayCluster stops and wipes it (while we still hold the lock).
            self.slot.take();
        }
    }
}
