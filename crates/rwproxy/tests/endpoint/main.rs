//! End-to-end tests of rwproxy's drop-in MySQL endpoint: real clients and raw sockets
//! against the binary, in front of the shared local MariaDB cluster
//! (`integration/cluster.sh`, brought up on first use).
//!
//! Set `RWPROXY_TEST_BIN` to run them against another build of the binary, and
//! `RWPROXY_KEEP_TEST_FILES=1` to keep each proxy's config and log under `.scratch/`.

mod support;

mod auth_errors;
mod backend_down;
mod backend_tls;
mod bad_handshake;
mod client_tls;
mod command_bytes;
mod connection_ids;
mod connection_limits;
mod greeting;
mod kill_query;
mod large_packets;
mod load_data;
mod login_throttle;
mod mariadb_cli;
mod multi_statements;
mod ok_packets;
mod packet_budget;
mod packet_limits;
mod prepared;
mod proxy_protocol;
mod queries;
mod session_commands;
