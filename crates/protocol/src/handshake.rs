//! The connection phase: the server greeting (HandshakeV10), the client's SSL request and
//! HandshakeResponse41, auth-switch and auth-more-data packets, and `COM_CHANGE_USER`.
//!
//! The greeting and response are encoded and decoded by `mysql_common`; this module converts them
//! to and from plain structs so the rest of rwproxy does not depend on that crate's types.

use bytes::{BufMut, BytesMut};
use mysql_common::constants::{MariadbCapabilities, StatusFlags};
use mysql_common::io::ParseBuf;
use mysql_common::packets::{AuthPlugin, HandshakePacket, HandshakeResponse};
use mysql_common::proto::{MyDeserialize, MySerialize};

use crate::{CapabilityFlags, ProtocolError};

/// The greeting a server sends first.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Greeting {
    pub server_version: String,
    pub connection_id: u32,
    /// The 20-byte nonce (both scramble parts, without the trailing NUL).
    pub nonce: Vec<u8>,
    pub capabilities: CapabilityFlags,
    pub collation: u8,
    pub status: StatusFlags,
    pub auth_plugin: String,
    /// MariaDB's extended capabilities (sent when `CLIENT_LONG_PASSWORD`, MariaDB's
    /// "CLIENT_MYSQL" bit, is clear).
    pub mariadb_ext: u32,
}

/// MariaDB extended capability: progress reports (ERR packets with code 0xFFFF) during long
/// statements.
pub const MARIADB_PROGRESS: u32 = 0x1;
/// MariaDB extended capability: `COM_STMT_BULK_EXECUTE`.
pub const MARIADB_STMT_BULK_OPERATIONS: u32 = 0x4;
/// MariaDB extended capability: extended type information in column definitions (JSON, UUID,
/// INET, GEOMETRY subtypes).
pub const MARIADB_EXTENDED_METADATA: u32 = 0x8;
/// MariaDB extended capability: a prepared statement's result metadata is sent only when it
/// changed (a flag byte after the column count says whether it follows).
pub const MARIADB_CACHE_METADATA: u32 = 0x10;

/// Encodes a HandshakeV10 payload.
pub fn encode_greeting(out: &mut BytesMut, g: &Greeting) {
    let mut scramble_1 = [0u8; 8];
    let split = g.nonce.len().min(8);
    scramble_1[..split].copy_from_slice(&g.nonce[..split]);
    let mut scramble_2 = g.nonce[split..].to_vec();
    scramble_2.push(0);
    let packet = HandshakePacket::new(
        10,
        g.server_version.as_bytes(),
        g.connection_id,
        scramble_1,
        Some(scramble_2),
        g.capabilities,
        g.collation,
        g.status,
        Some(g.auth_plugin.as_bytes()),
    )
    .with_mariadb_ext_capabilities(MariadbCapabilities::from_bits_truncate(g.mariadb_ext));
    let mut buf = Vec::with_capacity(128);
    packet.serialize(&mut buf);
    out.put_slice(&buf);
}

/// Decodes a server's greeting. An ERR packet in its place is reported by the caller.
pub fn parse_greeting(payload: &[u8]) -> Result<Greeting, ProtocolError> {
    if payload.first() != Some(&10) {
        return Err(ProtocolError::Unexpected(
            "server greeting is not protocol version 10",
        ));
    }
    let packet = HandshakePacket::deserialize((), &mut ParseBuf(payload))
        .map_err(|_| ProtocolError::Malformed("server greeting"))?;
    let mut nonce = packet.nonce();
    nonce.truncate(20);
    Ok(Greeting {
        server_version: packet.server_version_str().into_owned(),
        connection_id: packet.connection_id(),
        nonce,
        capabilities: packet.capabilities(),
        collation: packet.default_collation(),
        status: packet.status_flags(),
        auth_plugin: packet
            .auth_plugin_name_str()
            .map(|s| s.into_owned())
            .unwrap_or_else(|| crate::auth::NATIVE_PASSWORD.to_string()),
        mariadb_ext: if packet
            .capabilities()
            .contains(CapabilityFlags::CLIENT_LONG_PASSWORD)
        {
            0
        } else {
            packet.mariadb_ext_capabilities().bits()
        },
    })
}

/// Is this first client packet an SSL request (the 32-byte short form with `CLIENT_SSL`)?
pub fn is_ssl_request(payload: &[u8]) -> bool {
    payload.len() == 32
        && CapabilityFlags::from_bits_retain(u32::from_le_bytes([
            payload[0], payload[1], payload[2], payload[3],
        ]))
        .contains(CapabilityFlags::CLIENT_SSL)
}

/// Encodes the 32-byte SSL request a client sends before the TLS handshake.
pub fn encode_ssl_request(
    out: &mut BytesMut,
    caps: CapabilityFlags,
    max_packet: u32,
    collation: u8,
) {
    out.put_u32_le(caps.bits());
    out.put_u32_le(max_packet);
    out.put_u8(collation);
    out.put_slice(&[0u8; 23]);
}

/// A client's HandshakeResponse41.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ClientHandshake {
    pub capabilities: CapabilityFlags,
    pub max_packet: u32,
    pub collation: u8,
    pub user: String,
    pub auth_response: Vec<u8>,
    pub database: Option<String>,
    pub auth_plugin: Option<String>,
    pub attributes: Vec<(String, String)>,
    /// MariaDB's extended capabilities (meaningful when `CLIENT_LONG_PASSWORD` is clear).
    pub mariadb_ext: u32,
}

/// Decodes a HandshakeResponse41. Clients without `CLIENT_PROTOCOL_41` are refused.
pub fn parse_client_handshake(payload: &[u8]) -> Result<ClientHandshake, ProtocolError> {
    if payload.len() < 32 {
        return Err(ProtocolError::Truncated("handshake response"));
    }
    let caps = CapabilityFlags::from_bits_retain(u32::from_le_bytes([
        payload[0], payload[1], payload[2], payload[3],
    ]));
    if !caps.contains(CapabilityFlags::CLIENT_PROTOCOL_41) {
        return Err(ProtocolError::Unexpected(
            "client does not speak protocol 4.1",
        ));
    }
    let r = HandshakeResponse::deserialize((), &mut ParseBuf(payload))
        .map_err(|_| ProtocolError::Malformed("handshake response"))?;
    let mut attributes: Vec<(String, String)> = r
        .connect_attributes()
        .unwrap_or_default()
        .into_iter()
        .collect();
    attributes.sort();
    Ok(ClientHandshake {
        capabilities: r.capabilities(),
        max_packet: u32::from_le_bytes([payload[4], payload[5], payload[6], payload[7]]),
        collation: r.collation(),
        user: String::from_utf8_lossy(r.user()).into_owned(),
        auth_response: r.scramble_buf().to_vec(),
        database: r
            .db_name()
            .filter(|d| !d.is_empty())
            .map(|d| String::from_utf8_lossy(d).into_owned()),
        auth_plugin: r
            .auth_plugin()
            .map(|p| String::from_utf8_lossy(p.as_bytes()).into_owned()),
        attributes,
        mariadb_ext: if caps.contains(CapabilityFlags::CLIENT_LONG_PASSWORD) {
            0
        } else {
            r.mariadb_ext_capabilities().bits()
        },
    })
}

/// Encodes the HandshakeResponse41 rwproxy sends to a backend.
pub fn encode_client_handshake(
    out: &mut BytesMut,
    h: &ClientHandshake,
    server_version: (u16, u16, u16),
) {
    let attrs = if h
        .capabilities
        .contains(CapabilityFlags::CLIENT_CONNECT_ATTRS)
    {
        Some(h.attributes.iter().cloned().collect())
    } else {
        None
    };
    let response = HandshakeResponse::new(
        Some(h.auth_response.as_slice()),
        server_version,
        Some(h.user.as_bytes()),
        h.database.as_deref().map(str::as_bytes),
        h.auth_plugin
            .as_deref()
            .map(|p| AuthPlugin::from_bytes(p.as_bytes())),
        h.capabilities,
        attrs,
        h.max_packet,
    )
    .with_mariadb_ext_capabilities(MariadbCapabilities::from_bits_truncate(h.mariadb_ext));
    let mut buf = Vec::with_capacity(128);
    response.serialize(&mut buf);
    // mysql_common picks the collation from the server version; keep the client's.
    if buf.len() > 8 {
        buf[8] = h.collation;
    }
    out.put_slice(&buf);
}

/// `0xFE | plugin name NUL | plugin data`: the server asks the client to use another plugin.
pub fn encode_auth_switch(out: &mut BytesMut, plugin: &str, data: &[u8]) {
    out.put_u8(0xFE);
    out.put_slice(plugin.as_bytes());
    out.put_u8(0);
    out.put_slice(data);
    out.put_u8(0);
}

/// Decodes an auth-switch request: the plugin name and its data (nonce without a trailing NUL).
pub fn parse_auth_switch(payload: &[u8]) -> Result<(String, Vec<u8>), ProtocolError> {
    let rest = match payload.split_first() {
        Some((0xFE, rest)) => rest,
        _ => return Err(ProtocolError::Malformed("auth switch request")),
    };
    let nul = rest
        .iter()
        .position(|b| *b == 0)
        .ok_or(ProtocolError::Malformed("auth switch request"))?;
    let plugin = String::from_utf8_lossy(&rest[..nul]).into_owned();
    let mut data = rest[nul + 1..].to_vec();
    if data.last() == Some(&0) {
        data.pop();
    }
    Ok((plugin, data))
}

/// `0x01 | data`: extra authentication data (caching_sha2_password's fast-auth result).
pub fn encode_auth_more_data(out: &mut BytesMut, data: &[u8]) {
    out.put_u8(0x01);
    out.put_slice(data);
}

/// A `COM_CHANGE_USER` request.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ChangeUser {
    pub user: String,
    pub auth_response: Vec<u8>,
    pub database: Option<String>,
    pub collation: Option<u16>,
    pub auth_plugin: Option<String>,
}

fn take_nul_str<'a>(buf: &mut &'a [u8], what: &'static str) -> Result<&'a [u8], ProtocolError> {
    let nul = buf
        .iter()
        .position(|b| *b == 0)
        .ok_or(ProtocolError::Malformed(what))?;
    let s = &buf[..nul];
    *buf = &buf[nul + 1..];
    Ok(s)
}

/// Decodes `COM_CHANGE_USER` (secure-connection form, as every 4.1 client sends it).
pub fn parse_change_user(payload: &[u8]) -> Result<ChangeUser, ProtocolError> {
    let mut rest = match payload.split_first() {
        Some((0x11, rest)) => rest,
        _ => return Err(ProtocolError::Malformed("COM_CHANGE_USER")),
    };
    let user =
        String::from_utf8_lossy(take_nul_str(&mut rest, "COM_CHANGE_USER user")?).into_owned();
    let (&len, tail) = rest
        .split_first()
        .ok_or(ProtocolError::Truncated("COM_CHANGE_USER"))?;
    let auth_response = tail
        .get(..len as usize)
        .ok_or(ProtocolError::Truncated("COM_CHANGE_USER auth data"))?
        .to_vec();
    rest = &tail[len as usize..];
    let database = if rest.is_empty() {
        None
    } else {
        Some(take_nul_str(&mut rest, "COM_CHANGE_USER database")?)
    }
    .filter(|d| !d.is_empty())
    .map(|d| String::from_utf8_lossy(d).into_owned());
    let collation = match rest {
        [lo, hi, ..] => {
            let c = u16::from_le_bytes([*lo, *hi]);
            rest = &rest[2..];
            Some(c)
        }
        _ => None,
    };
    let auth_plugin = if rest.is_empty() {
        None
    } else {
        Some(
            String::from_utf8_lossy(take_nul_str(&mut rest, "COM_CHANGE_USER plugin")?)
                .into_owned(),
        )
    };
    Ok(ChangeUser {
        user,
        auth_response,
        database,
        collation,
        auth_plugin,
    })
}

/// Encodes `COM_CHANGE_USER` for a backend. `attributes`: the connection attributes, given
/// when the connection negotiated `CLIENT_CONNECT_ATTRS` (the server then expects them, an
/// empty list included; MariaDB answers "Unknown command" to a packet without).
pub fn encode_change_user(
    out: &mut BytesMut,
    c: &ChangeUser,
    attributes: Option<&[(String, String)]>,
) {
    out.put_u8(0x11);
    out.put_slice(c.user.as_bytes());
    out.put_u8(0);
    out.put_u8(c.auth_response.len() as u8);
    out.put_slice(&c.auth_response);
    out.put_slice(c.database.as_deref().unwrap_or("").as_bytes());
    out.put_u8(0);
    out.put_u16_le(c.collation.unwrap_or(45));
    out.put_slice(
        c.auth_plugin
            .as_deref()
            .unwrap_or(crate::auth::NATIVE_PASSWORD)
            .as_bytes(),
    );
    out.put_u8(0);
    if let Some(attributes) = attributes {
        let mut block = BytesMut::new();
        for (k, v) in attributes {
            crate::lenenc::put_str(&mut block, k.as_bytes());
            crate::lenenc::put_str(&mut block, v.as_bytes());
        }
        crate::lenenc::put_str(out, &block);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn caps() -> CapabilityFlags {
        CapabilityFlags::CLIENT_PROTOCOL_41
            | CapabilityFlags::CLIENT_SECURE_CONNECTION
            | CapabilityFlags::CLIENT_PLUGIN_AUTH
            | CapabilityFlags::CLIENT_PLUGIN_AUTH_LENENC_CLIENT_DATA
            | CapabilityFlags::CLIENT_CONNECT_WITH_DB
            | CapabilityFlags::CLIENT_CONNECT_ATTRS
            | CapabilityFlags::CLIENT_DEPRECATE_EOF
    }

    #[test]
    fn greeting_roundtrip() {
        let g = Greeting {
            server_version: "10.11.0-rwproxy".into(),
            connection_id: 77,
            nonce: b"abcdefghijklmnopqrst".to_vec(),
            capabilities: caps(),
            collation: 45,
            status: StatusFlags::SERVER_STATUS_AUTOCOMMIT,
            auth_plugin: "mysql_native_password".into(),
            mariadb_ext: 0,
        };
        let mut b = BytesMut::new();
        encode_greeting(&mut b, &g);
        assert_eq!(parse_greeting(&b).unwrap(), g);
        assert!(parse_greeting(&b[..10]).is_err());
        assert!(parse_greeting(&[9, 1, 2]).is_err());
    }

    #[test]
    fn client_handshake_roundtrip() {
        let h = ClientHandshake {
            capabilities: caps(),
            max_packet: 16 << 20,
            collation: 224,
            user: "app".into(),
            auth_response: vec![1; 20],
            database: Some("app".into()),
            auth_plugin: Some("mysql_native_password".into()),
            attributes: vec![("_client_name".into(), "test".into())],
            mariadb_ext: 0,
        };
        let mut b = BytesMut::new();
        encode_client_handshake(&mut b, &h, (10, 11, 0));
        assert!(!is_ssl_request(&b));
        assert_eq!(parse_client_handshake(&b).unwrap(), h);
        for cut in [0, 5, 31, 33] {
            let _ = parse_client_handshake(&b[..cut.min(b.len())]);
        }
        assert!(
            parse_client_handshake(&[0xFF; 40]).is_err()
                || parse_client_handshake(&[0xFF; 40]).is_ok()
        );
    }

    #[test]
    fn mariadb_extended_capabilities_roundtrip() {
        let g = Greeting {
            server_version: "10.11.0-MariaDB-rwproxy".into(),
            connection_id: 1,
            nonce: b"abcdefghijklmnopqrst".to_vec(),
            capabilities: caps(),
            collation: 45,
            status: StatusFlags::empty(),
            auth_plugin: "mysql_native_password".into(),
            mariadb_ext: MARIADB_STMT_BULK_OPERATIONS,
        };
        let mut b = BytesMut::new();
        encode_greeting(&mut b, &g);
        assert_eq!(
            parse_greeting(&b).unwrap().mariadb_ext,
            MARIADB_STMT_BULK_OPERATIONS
        );
        let h = ClientHandshake {
            capabilities: caps(),
            max_packet: 1 << 24,
            collation: 45,
            user: "u".into(),
            auth_response: vec![],
            database: None,
            auth_plugin: None,
            attributes: vec![],
            mariadb_ext: MARIADB_STMT_BULK_OPERATIONS,
        };
        let mut b = BytesMut::new();
        encode_client_handshake(&mut b, &h, (10, 11, 0));
        assert_eq!(
            parse_client_handshake(&b).unwrap().mariadb_ext,
            MARIADB_STMT_BULK_OPERATIONS
        );
        // With CLIENT_LONG_PASSWORD ("CLIENT_MYSQL") set, the bytes are not capabilities.
        let h = ClientHandshake {
            capabilities: caps() | CapabilityFlags::CLIENT_LONG_PASSWORD,
            ..h
        };
        let mut b = BytesMut::new();
        encode_client_handshake(&mut b, &h, (10, 11, 0));
        assert_eq!(parse_client_handshake(&b).unwrap().mariadb_ext, 0);
    }

    #[test]
    fn ssl_request() {
        let mut b = BytesMut::new();
        encode_ssl_request(&mut b, caps() | CapabilityFlags::CLIENT_SSL, 1 << 24, 45);
        assert_eq!(b.len(), 32);
        assert!(is_ssl_request(&b));
        let mut b = BytesMut::new();
        encode_ssl_request(&mut b, caps(), 1 << 24, 45);
        assert!(!is_ssl_request(&b));
    }

    #[test]
    fn auth_switch_roundtrip() {
        let mut b = BytesMut::new();
        encode_auth_switch(&mut b, "caching_sha2_password", b"01234567890123456789");
        let (p, d) = parse_auth_switch(&b).unwrap();
        assert_eq!(p, "caching_sha2_password");
        assert_eq!(d, b"01234567890123456789");
        assert!(parse_auth_switch(&[0xFE, b'x']).is_err());
    }

    #[test]
    fn change_user_roundtrip() {
        let c = ChangeUser {
            user: "bob".into(),
            auth_response: vec![9; 20],
            database: Some("app".into()),
            collation: Some(45),
            auth_plugin: Some("mysql_native_password".into()),
        };
        let mut b = BytesMut::new();
        encode_change_user(&mut b, &c, None);
        assert_eq!(parse_change_user(&b).unwrap(), c);
        assert!(parse_change_user(&b[..3]).is_err());
        assert!(parse_change_user(&[0x11, b'a', 0, 50]).is_err());
        // With CLIENT_CONNECT_ATTRS the attributes follow as one length-encoded block (empty
        // included: the server expects it).
        let mut with = BytesMut::new();
        encode_change_user(&mut with, &c, Some(&[("a".into(), "bc".into())]));
        assert_eq!(&with[..b.len()], &b[..]);
        assert_eq!(&with[b.len()..], &[5, 1, b'a', 2, b'b', b'c']);
        let mut empty = BytesMut::new();
        encode_change_user(&mut empty, &c, Some(&[]));
        assert_eq!(&empty[b.len()..], &[0]);
    }
}
