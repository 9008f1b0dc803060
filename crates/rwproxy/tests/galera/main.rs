//! Galera tests (issue #17): rwproxy in front of the local three-node MariaDB Galera cluster of
//! `integration/galera.sh` (127.0.0.1:3336-3338, backends `db1`-`db3` = `node0`-`node2`). Every
//! test checks what the servers themselves say — `@@wsrep_node_name` of the node that answered,
//! `wsrep_local_commits` of the node where a write originated, `wsrep_cluster_status` read
//! directly — against what went through rwproxy, while nodes are desynced, isolated from the
//! group or killed. Where two rwproxy processes run, the second starts later and both must name
//! the same writer at every step.
//!
//! The tests share the one cluster and change it, so they run one at a time (each holds
//! [`Galera::exclusive`](rwproxy_testkit::Galera::exclusive)) and heal it when they finish.

mod support;

mod desync;
mod donor;
mod partition;
mod placement;
mod read_your_writes;
mod writer_loss;
