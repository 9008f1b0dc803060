//! Drop-in tests for accounts read from the backend (`users_from_backend`), COM_CHANGE_USER to
//! such accounts, the compressed protocol, and other languages' drivers (MariaDB Connector/J,
//! Node mysql2) through rwproxy, in front of the shared local MariaDB cluster
//! (`integration/cluster.sh`, brought up on first use).
//!
//! Accounts are created and dropped on the shared cluster with unique names. Set
//! `RWPROXY_TEST_BIN` to test another build of the binary.

mod support;

mod backend_accounts;
mod bulk;
mod compression;
mod drivers;
mod just_created;
