//! The MySQL / MariaDB client-server wire protocol as rwproxy needs it: pure encode and decode, no I/O.
//!
//! * [`frame`]: the 4-byte packet header, sequence ids and payloads of 16 MiB and more.
//! * [`handshake`]: the server greeting, the client's handshake response and the SSL request.
//! * [`auth`]: password scrambles for `mysql_native_password` and `caching_sha2_password`.
//! * [`reply`]: OK, ERR and EOF packets, with session-state tracking (GTIDs, schema).
//! * [`command`]: command bytes and the few command fields the proxy reads or rewrites.
//! * [`response`]: a state machine that tells where a server's response to a command ends.
//!
//! `mysql_common` provides the handshake packet types and constants; this crate keeps it behind
//! its own API so the rest of rwproxy never names it.

pub mod auth;
pub mod command;
pub mod error;
pub mod frame;
pub mod handshake;
pub mod lenenc;
pub mod reply;
pub mod response;
pub mod session_track;

pub use error::ProtocolError;
pub use mysql_common::constants::{CapabilityFlags, StatusFlags};
