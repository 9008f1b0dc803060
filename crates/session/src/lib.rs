//! Client sessions: everything between a client's TCP connection and the backends.
//!
//! `workers` accepts clients and spreads them over the data-path threads → `listener` admits
//! them → `client_auth` runs the connection phase → `session` reads commands and dispatches
//! them → `query` / `stmt` route them (the `rwproxy-router` decides and places; `placement`
//! carries a placement out: it waits for a primary, and `causal` asks a replica to confirm a
//! GTID position) and run them through `backend_set`'s connections → `relay` streams each response back, and `down_watch` ends the
//! wait of statements whose server the monitor declares down. `replay` and `replay_io` carry an open transaction
//! over to a new primary (opt-in). `session_state` and `prepared`
//! hold what a session must keep consistent across its backend connections; `sharing` decides
//! when a session lends its connections to the pool between statements (`pooling` keeps them,
//! `conn_statements` the statements prepared on each); `kill` and
//! `change_user` are the commands that reach beyond one connection.

pub mod accounts;
mod backend_set;
mod causal;
mod change_user;
pub mod client_auth;
mod coldef;
mod conn_statements;
pub mod context;
mod dispatch;
pub mod down_watch;
pub mod drain;
pub mod error;
pub mod events;
pub mod greeting;
mod kill;
mod lending;
pub mod listener;
pub mod login_throttle;
mod names;
pub mod observer;
mod per_backend;
mod pinned;
mod placement;
mod pooling;
mod prepared;
pub mod processlist;
mod query;
pub mod registry;
pub mod relay;
pub mod replay;
mod replay_io;
mod session;
mod session_state;
pub mod session_status;
pub mod sharing;
pub mod shown;
mod stale_transaction;
mod stats;
mod stmt;
mod words;
pub mod workers;

pub use context::{LoginUser, ProxyContext};
pub use observer::{
    BackendFailureKind, CausalOutcome, DestRole, NoopObserver, Rejection, ReplayOutcome,
    SessionObserver,
};
/// Why a statement went where it went (the router's reasons, counted in metrics).
pub use rwproxy_router::Reason;
pub use workers::{serve_worker, Workers};
