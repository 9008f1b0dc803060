//! Picking free TCP ports on 127.0.0.1.

use std::net::{Ipv4Addr, TcpListener};

use crate::error::Result;

/// A port that was free on 127.0.0.1 a moment ago (the OS picked it; we released it).
pub fn free_port() -> Result<u16> {
    let listener = TcpListener::bind((Ipv4Addr::LOCALHOST, 0))?;
    Ok(listener.local_addr()?.port())
}

/// A port on 127.0.0.1 where nothing listens: connecting to it is refused at once.
pub fn closed_port() -> Result<u16> {
    free_port()
}
