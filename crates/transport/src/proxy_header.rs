//! The PROXY protocol header (v1 text and v2 binary, as HAProxy and most L4 load balancers
//! send it) at the start of a client connection from a trusted balancer: it says who the client
//! really is. Parsed with the `ppp` crate; this module only reads enough bytes and applies
//! rwproxy's rules: a `LOCAL` (v2) or `UNKNOWN` (v1) header, sent by a balancer's own health
//! checks, keeps the connection's own address; anything but a complete, valid header is an error.

use std::net::SocketAddr;

use ppp::{v1, v2, HeaderResult, PartialResult};
use thiserror::Error;

use crate::{PacketStream, TransportError};

/// A v1 header is at most 107 bytes; a v2 header 16 bytes plus up to 65,535 of addresses and
/// TLVs, but no balancer sends more than a few hundred. Longer is refused.
pub const MAX_HEADER: usize = 4096;

#[derive(Debug, Error)]
pub enum ProxyHeaderError {
    #[error("connection closed before a complete PROXY protocol header")]
    Closed,
    #[error("not a PROXY protocol header: {0}")]
    Invalid(String),
    #[error("PROXY protocol header longer than {MAX_HEADER} bytes")]
    TooLong,
    #[error("reading the PROXY protocol header: {0}")]
    Transport(#[from] TransportError),
}

/// What the header said.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ProxiedClient {
    /// The client's own address and port, as the balancer saw them.
    Address(SocketAddr),
    /// A connection of the balancer itself (health check): no client address.
    Local,
}

/// Parses a complete header at the start of `buf`: what it says and its length. `Ok(None)`:
/// more bytes are needed.
pub fn parse(buf: &[u8]) -> Result<Option<(ProxiedClient, usize)>, ProxyHeaderError> {
    let result = HeaderResult::parse(buf);
    if result.is_incomplete() {
        if buf.len() >= MAX_HEADER {
            return Err(ProxyHeaderError::TooLong);
        }
        return Ok(None);
    }
    match result {
        HeaderResult::V1(Ok(header)) => {
            let client = match header.addresses {
                v1::Addresses::Tcp4(a) => {
                    ProxiedClient::Address(SocketAddr::from((a.source_address, a.source_port)))
                }
                v1::Addresses::Tcp6(a) => {
                    ProxiedClient::Address(SocketAddr::from((a.source_address, a.source_port)))
                }
                v1::Addresses::Unknown => ProxiedClient::Local,
            };
            Ok(Some((client, header.header.len())))
        }
        HeaderResult::V2(Ok(header)) => {
            let client = match (header.command, header.addresses) {
                (v2::Command::Local, _) => ProxiedClient::Local,
                (v2::Command::Proxy, v2::Addresses::IPv4(a)) => {
                    ProxiedClient::Address(SocketAddr::from((a.source_address, a.source_port)))
                }
                (v2::Command::Proxy, v2::Addresses::IPv6(a)) => {
                    ProxiedClient::Address(SocketAddr::from((a.source_address, a.source_port)))
                }
                // A UNIX socket or an unspecified family: no address to use.
                (v2::Command::Proxy, _) => ProxiedClient::Local,
            };
            Ok(Some((client, header.len())))
        }
        HeaderResult::V1(Err(e)) => Err(ProxyHeaderError::Invalid(e.to_string())),
        HeaderResult::V2(Err(e)) => Err(ProxyHeaderError::Invalid(e.to_string())),
    }
}

/// Reads the header at the start of `stream` and consumes it; bytes after it stay buffered.
pub async fn read(stream: &mut PacketStream) -> Result<ProxiedClient, ProxyHeaderError> {
    loop {
        if let Some((client, len)) = parse(stream.buffered())? {
            stream.consume(len);
            return Ok(client);
        }
        if stream.fill().await? == 0 {
            return Err(ProxyHeaderError::Closed);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn v1_tcp4_and_tcp6_give_the_client_and_their_length() {
        let h = b"PROXY TCP4 10.9.8.7 127.0.0.1 5555 6033\r\n";
        let mut buf = h.to_vec();
        buf.extend_from_slice(b"\x00\x01rest");
        let (client, len) = parse(&buf).unwrap().unwrap();
        assert_eq!(
            client,
            ProxiedClient::Address("10.9.8.7:5555".parse().unwrap())
        );
        assert_eq!(len, h.len());
        let h = b"PROXY TCP6 fd00::7 ::1 40000 6033\r\n";
        let (client, len) = parse(h).unwrap().unwrap();
        assert_eq!(
            client,
            ProxiedClient::Address("[fd00::7]:40000".parse().unwrap())
        );
        assert_eq!(len, h.len());
        let (client, _) = parse(b"PROXY UNKNOWN\r\n").unwrap().unwrap();
        assert_eq!(client, ProxiedClient::Local);
    }

    #[test]
    fn v2_proxy_and_local() {
        let mut h = vec![
            0x0D, 0x0A, 0x0D, 0x0A, 0x00, 0x0D, 0x0A, 0x51, 0x55, 0x49, 0x54,
            0x0A, // signature
            0x21, 0x11, 0x00, 0x0C, // v2 PROXY, TCP over IPv4, 12 bytes
            10, 9, 8, 8, 127, 0, 0, 1, 0x15, 0xB3, 0x17, 0x91,
        ];
        let header_len = h.len();
        h.extend_from_slice(b"after");
        let (client, len) = parse(&h).unwrap().unwrap();
        assert_eq!(
            client,
            ProxiedClient::Address("10.9.8.8:5555".parse().unwrap())
        );
        assert_eq!(len, header_len);
        let local = [
            0x0D, 0x0A, 0x0D, 0x0A, 0x00, 0x0D, 0x0A, 0x51, 0x55, 0x49, 0x54, 0x0A, 0x20, 0x00,
            0x00, 0x00,
        ];
        assert_eq!(parse(&local).unwrap().unwrap(), (ProxiedClient::Local, 16));
    }

    #[test]
    fn partial_headers_wait_and_garbage_is_refused() {
        assert!(parse(b"").unwrap().is_none());
        assert!(parse(b"PROXY TCP4 10.9").unwrap().is_none());
        assert!(parse(&[0x0D, 0x0A, 0x0D]).unwrap().is_none());
        assert!(parse(b"GET / HTTP/1.1\r\n\r\n").is_err());
        assert!(parse(b"PROXY TCP4 not-an-address 127.0.0.1 1 2\r\n").is_err());
        assert!(matches!(
            parse(&vec![b'P'; MAX_HEADER]),
            Err(ProxyHeaderError::TooLong | ProxyHeaderError::Invalid(_))
        ));
    }
}
