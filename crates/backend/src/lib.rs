//! Connections from rwproxy to a backend server, as a client: TCP connect with a timeout,
//! optional TLS, authentication (`mysql_native_password`, `caching_sha2_password`), and the small
//! commands the proxy runs itself (session replay, GTID tracking, `KILL`).
//!
//! Responses to the client's own commands are not read here: the session relays them packet by
//! packet straight from [`BackendConn::stream`].

mod connect;
mod error;
mod exchange;

pub use connect::{
    read_greeting, tls_server_name, BackendConn, BackendSecret, BackendTls, ConnectParams,
    SHAPING_CAPABILITIES,
};
pub use error::{BackendError, Failure};
pub use exchange::Outcome;
