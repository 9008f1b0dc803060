//! The greeting through rwproxy is the primary's own, byte for byte but for the connection id
//! and the nonce: clients read the version string, collation, status and capability flags to
//! choose code paths (Connector/Python takes a `10.11.0-MariaDB` version for MySQL 8 and asks
//! for collations MariaDB does not have).

use std::net::SocketAddr;

use tokio::io::AsyncReadExt;
use tokio::net::TcpStream;

use crate::support::{cluster, start_proxy};
use rwproxy_testkit::proxy_config::standard_yaml;

/// The greeting payload, split into what must match and what differs per connection
/// (`CLIENT_SSL` masked out of `fixed`).
#[derive(Debug, PartialEq, Eq)]
struct Shape {
    version: Vec<u8>,
    /// Capability bytes (low and high), collation, status, auth data length, filler and
    /// MariaDB's extended capabilities: everything between the nonce parts.
    fixed: Vec<u8>,
    /// The authentication plugin name and anything after it.
    tail: Vec<u8>,
    len: usize,
}

async fn greeting(port: u16) -> Shape {
    let addr: SocketAddr = ([127, 0, 0, 1], port).into();
    let mut s = TcpStream::connect(addr).await.expect("connect");
    let mut header = [0u8; 4];
    s.read_exact(&mut header).await.expect("greeting header");
    let len = header[0] as usize | (header[1] as usize) << 8 | (header[2] as usize) << 16;
    let mut p = vec![0u8; len];
    s.read_exact(&mut p).await.expect("greeting payload");
    assert_eq!(p[0], 10, "protocol version 10");
    let nul = 1 + p[1..].iter().position(|b| *b == 0).expect("version NUL");
    let version = p[1..nul].to_vec();
    // id (4) and first nonce part (8) follow the version; then 1 filler byte.
    let fixed_at = nul + 1 + 4 + 8;
    let mut fixed = p[fixed_at..fixed_at + 19].to_vec();
    // CLIENT_SSL (0x0800) is rwproxy's own (offered when client TLS is configured), not the
    // server's: compared separately.
    fixed[2] &= !0x08;
    // The second nonce part: 12 bytes and a NUL.
    let tail = p[fixed_at + 19 + 13..].to_vec();
    Shape {
        version,
        fixed,
        tail,
        len,
    }
}

#[tokio::test]
async fn greeting_is_the_primarys() {
    let proxy = start_proxy(&standard_yaml(cluster(), ""));
    let direct = greeting(cluster().primary().port).await;
    let through = greeting(proxy.port).await;
    assert!(
        direct.version.starts_with(b"5.5.5-"),
        "MariaDB announces itself with the 5.5.5- prefix: {:?}",
        String::from_utf8_lossy(&direct.version)
    );
    assert_eq!(
        through,
        direct,
        "greeting through rwproxy differs from the primary's\n--- proxy log ---\n{}",
        proxy.log_tail(20)
    );
}

#[tokio::test]
async fn server_version_in_the_configuration_replaces_only_the_version() {
    let proxy = start_proxy(&standard_yaml(
        cluster(),
        "server_version: \"5.5.5-10.11.99-MariaDB-custom\"\n",
    ));
    let direct = greeting(cluster().primary().port).await;
    let through = greeting(proxy.port).await;
    assert_eq!(through.version, b"5.5.5-10.11.99-MariaDB-custom");
    assert_eq!(through.fixed, direct.fixed);
    assert_eq!(through.tail, direct.tail);
}
