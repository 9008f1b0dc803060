//! A node that donates a full state transfer (SST) to a joining node is in the Donor/Desynced
//! state — with `wsrep_desync` still OFF — and gets no traffic from rwproxy until it is Synced
//! again: checked sample by sample against the node's own `wsrep_local_state_comment`.

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use rwproxy_testkit::backends_doc::{backends, primary_name, readable_names};
use rwproxy_testkit::Galera;

use crate::support::*;

/// A node this long in the Donor state must be out of the proxy's view (monitor interval
/// 200 ms, plus a check's latency, plus slack for a loaded machine).
const GRACE: Duration = Duration::from_millis(800);

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_donor_gets_no_traffic() {
    let _one = Galera::exclusive().await;
    heal().await;
    let proxy = start_proxy(&galera_yaml([None; 3], ""), DB[0], &DB[1..]).await;

    // node2 loses its state: it needs a full transfer from node0 or node1 when it starts.
    Galera::stop_node(2).unwrap();
    let grastate = cluster()
        .dir
        .join("node2")
        .join("data")
        .join("grastate.dat");
    std::fs::remove_file(&grastate).unwrap();
    let done = Arc::new(AtomicBool::new(false));
    let joining = {
        let done = done.clone();
        tokio::task::spawn_blocking(move || {
            let r = Galera::start_node(2);
            done.store(true, Ordering::Relaxed);
            r
        })
    };

    // Sample: the donor candidates' own state, the proxy's view, their state again.
    let mut donor_since: [Option<Instant>; 2] = [None, None];
    let mut donor_samples = 0;
    let mut checked = 0;
    while !done.load(Ordering::Relaxed) {
        let before = [local_state(0).await, local_state(1).await];
        let doc = backends(&proxy).await.unwrap();
        let after = [local_state(0).await, local_state(1).await];
        let now = Instant::now();
        for node in 0..2 {
            let donor = |s: &Option<String>| s.as_deref().is_some_and(|s| s.starts_with("Donor"));
            if !(donor(&before[node]) && donor(&after[node])) {
                donor_since[node] = None;
                continue;
            }
            donor_samples += 1;
            let since = *donor_since[node].get_or_insert(now);
            if now.duration_since(since) < GRACE {
                continue;
            }
            checked += 1;
            let name = DB[node].to_string();
            assert_ne!(
                primary_name(&doc).as_ref(),
                Some(&name),
                "node{node} is a donor and still the writer: {doc}"
            );
            assert!(
                !readable_names(&doc).contains(&name),
                "node{node} is a donor and still serves reads: {doc}"
            );
        }
        tokio::time::sleep(Duration::from_millis(30)).await;
    }
    joining.await.unwrap().unwrap();
    eprintln!("donor seen in {donor_samples} samples, {checked} past the grace period");
    assert!(donor_samples > 0, "no node was ever seen donating");
    // Synced again: back to the usual view.
    settle(&proxy, DB[0], &DB[1..], Duration::from_secs(10)).await;
}
