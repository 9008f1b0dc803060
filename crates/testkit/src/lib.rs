//! Test support for rwproxy.
//!
//! * [`Cluster`]: the local MariaDB GTID cluster of `integration/cluster.sh`, shared by all
//!   tests of a process ([`Cluster::shared`]) or owned by one test ([`Cluster::throwaway`]).
//! * [`ProxyProcess`]: the rwproxy binary on free ports with a generated config
//!   ([`standard_yaml`], [`StandardConfig`]).
//! * [`Galera`]: the local MariaDB Galera cluster of `integration/galera.sh`.
//! * [`wire`]: a raw protocol client for malformed-input tests.
//! * [`metrics`]: reading the `/metrics` exposition.

pub mod backends_doc;
pub mod client;
pub mod cluster;
pub mod error;
pub mod galera;
pub mod metrics;
pub mod paths;
pub mod ports;
pub mod proxy;
pub mod proxy_config;
pub mod signals;
pub mod wire;

pub use client::{client_opts, connect, Credentials};
pub use cluster::{Cluster, ClusterInfo, NodeInfo, ThrowawayCluster};
pub use error::{Result, TestkitError};
pub use galera::Galera;
pub use paths::{repo_root, scratch_dir};
pub use ports::{closed_port, free_port};
pub use proxy::ProxyProcess;
pub use proxy_config::{standard_yaml, ProxyBackend, ProxyTls, ProxyUser, StandardConfig};
pub use signals::{send_signal, TestSignal};
