//! Read/write splitting, end to end: every routing decision is checked by asking the server
//! that answered for its `@@server_id`. The shared cluster (`integration/cluster.sh`, primary
//! 3316, replicas 3317 and 3318) is used by every test except `replica_stop` and one of
//! `affinity`, which break throwaway clusters of their own ("route-stop", ports 3460-3462;
//! "route-affinity", 3463-3465). Most tests balance every read on its own
//! (`replica_affinity: statement`, see `support::per_statement`) so that one session shows
//! where each kind of statement goes; `affinity` covers the default.
//!
//! Set `RWPROXY_TEST_BIN` to run them against another build of the binary, and
//! `RWPROXY_KEEP_TEST_FILES=1` to keep each proxy's config and log under `.scratch/`.

mod support;

mod affinity;
mod balance;
mod hints_rules;
mod pins;
mod prepared;
mod reads_writes;
mod replica_stop;
mod session_state;
mod transactions;
