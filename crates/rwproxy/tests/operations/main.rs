//! Operations and consistency tests of the rwproxy binary: read-your-writes against replicas
//! that lag on purpose, configuration reloads (file edits, broken files, SIGHUP, a hundred
//! reloads under load), the admin endpoint's metrics, `/backends` and token.
//!
//! Most tests use the shared cluster (`integration/cluster.sh`, `main`, ports 3316-3318).
//! Tests that need lagging replicas or kill one take turns on the throwaway cluster `ops-lag`
//! (ports 3500-3502), see `lag_cluster.rs`. `promtool` (Debian package `prometheus`) must be
//! installed.

mod support;

mod admin;
mod consistency;
mod drain;
mod lag_cluster;
mod pool;
mod queries;
mod reload;
mod sharing;
