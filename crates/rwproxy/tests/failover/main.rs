//! Failure tests: rwproxy in front of a private ("throwaway") MariaDB cluster that each test
//! breaks on purpose — a replica killed or frozen, replication stopped or delayed, the primary
//! killed and a replica promoted by hand, two writable servers at once — while clients keep
//! using the proxy. Every test asserts what clients saw and what `/backends` reported.
//!
//! The tests run one at a time (each holds [`support::serial`]) so that the timing bounds
//! are not at the mercy of the other tests' load. Each cluster uses its own ports in
//! 3470–3502, 3515–3523, 3530–3532, 3536–3538, 3600–3611 and 3660–3665 (transaction replay),
//! 3620–3628 and 3666–3668 (sysbench runs); the TLS-only cluster of `tls_only`: 3506–3508; 3526–3528 belong to the
//! shared TLS-only cluster. The detection benchmark is
//! `#[ignore]`d; `integration/bench/detect.sh` runs it.

mod support;

mod continuity;
mod detect;
mod dual_writer;
mod new_sessions;
mod promotion;
mod replay;
mod replica_death;
mod replication;
mod restart;
mod switchover;
mod sysbench;
mod tls_only;
