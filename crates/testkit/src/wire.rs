//! A deliberately small, raw MySQL-protocol client for tests that must control every
//! byte on the wire: bad handshakes, wrong sequence ids, oversized packets, and exact
//! decoding of ERR packets.

use std::net::SocketAddr;
use std::time::{Duration, Instant};

use sha1::{Digest, Sha1};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

use crate::error::{Result, TestkitError};

pub const CLIENT_LONG_PASSWORD: u32 = 0x0000_0001;
pub const CLIENT_LONG_FLAG: u32 = 0x0000_0004;
pub const CLIENT_CONNECT_WITH_DB: u32 = 0x0000_0008;
pub const CLIENT_PROTOCOL_41: u32 = 0x0000_0200;
pub const CLIENT_TRANSACTIONS: u32 = 0x0000_2000;
pub const CLIENT_SECURE_CONNECTION: u32 = 0x0000_8000;
pub const CLIENT_MULTI_STATEMENTS: u32 = 0x0001_0000;
pub const CLIENT_MULTI_RESULTS: u32 = 0x0002_0000;
pub const CLIENT_PLUGIN_AUTH: u32 = 0x0008_0000;

/// Capabilities this client asks for (plus CONNECT_WITH_DB when a schema is given).
pub const DEFAULT_CLIENT_CAPABILITIES: u32 = CLIENT_LONG_PASSWORD
    | CLIENT_LONG_FLAG
    | CLIENT_PROTOCOL_41
    | CLIENT_TRANSACTIONS
    | CLIENT_SECURE_CONNECTION
    | CLIENT_MULTI_STATEMENTS
    | CLIENT_MULTI_RESULTS
    | CLIENT_PLUGIN_AUTH;

pub const COM_QUIT: u8 = 0x01;
pub const COM_QUERY: u8 = 0x03;
pub const COM_PING: u8 = 0x0e;

/// Largest payload of one physical packet.
pub const MAX_PACKET_PAYLOAD: usize = 0xFF_FFFF;

/// A decoded ERR packet: `0xFF`, u16 code, optional `#` + 5-byte SQLSTATE, message.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ErrPacket {
    pub code: u16,
    pub sql_state: Option<String>,
    pub message: String,
}

impl ErrPacket {
    /// Decode a packet payload; `None` unless it is a well-formed ERR packet.
    pub fn parse(payload: &[u8]) -> Option<ErrPacket> {
        if payload.len() < 3 || payload[0] != 0xFF {
            return None;
        }
        let code = u16::from_le_bytes([payload[1], payload[2]]);
        let rest = &payload[3..];
        let (sql_state, message) = if rest.len() >= 6 && rest[0] == b'#' {
            (
                Some(String::from_utf8_lossy(&rest[1..6]).into_owned()),
                &rest[6..],
            )
        } else {
            (None, rest)
        };
        Some(ErrPacket {
            code,
            sql_state,
            message: String::from_utf8_lossy(message).into_owned(),
        })
    }
}

impl std::fmt::Display for ErrPacket {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match &self.sql_state {
            Some(state) => write!(f, "ERROR {} ({state}): {}", self.code, self.message),
            None => write!(f, "ERROR {}: {}", self.code, self.message),
        }
    }
}

/// The server's first packet (protocol version 10).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct InitialHandshake {
    pub protocol_version: u8,
    pub server_version: String,
    pub connection_id: u32,
    pub capabilities: u32,
    /// The 20-byte nonce for password scrambling.
    pub scramble: Vec<u8>,
    pub auth_plugin: String,
}

/// Take bytes up to (not including) a NUL; the rest after the NUL.
fn split_nul(data: &[u8]) -> Option<(&[u8], &[u8])> {
    let end = data.iter().position(|&b| b == 0)?;
    Some((&data[..end], &data[end + 1..]))
}

impl InitialHandshake {
    pub fn parse(payload: &[u8]) -> Result<InitialHandshake> {
        let bad = |what: &str| TestkitError::Protocol(format!("initial handshake: {what}"));
        let (&protocol_version, rest) = payload.split_first().ok_or_else(|| bad("empty"))?;
        if protocol_version != 10 {
            return Err(bad(&format!("protocol version {protocol_version}")));
        }
        let (version, rest) = split_nul(rest).ok_or_else(|| bad("no server version"))?;
        if rest.len() < 4 + 8 + 1 + 2 + 1 + 2 + 2 + 1 + 10 {
            return Err(bad("too short"));
        }
        let connection_id = u32::from_le_bytes([rest[0], rest[1], rest[2], rest[3]]);
        let mut scramble = rest[4..12].to_vec();
        let cap_low = u16::from_le_bytes([rest[13], rest[14]]) as u32;
        let cap_high = u16::from_le_bytes([rest[18], rest[19]]) as u32;
        let capabilities = cap_low | (cap_high << 16);
        let auth_data_len = rest[20] as usize;
        let rest = &rest[31..];
        let mut auth_plugin = String::new();
        if capabilities & CLIENT_SECURE_CONNECTION != 0 {
            let part2_len = auth_data_len.saturating_sub(8).max(13);
            if rest.len() < part2_len {
                return Err(bad("scramble part 2 truncated"));
            }
            let part2 = &rest[..part2_len];
            // The second part ends with a NUL that is not part of the nonce.
            let part2 = part2.strip_suffix(&[0]).unwrap_or(part2);
            scramble.extend_from_slice(part2);
            let rest = &rest[part2_len..];
            if capabilities & CLIENT_PLUGIN_AUTH != 0 {
                let name = split_nul(rest).map(|(name, _)| name).unwrap_or(rest);
                auth_plugin = String::from_utf8_lossy(name).into_owned();
            }
        }
        Ok(InitialHandshake {
            protocol_version,
            server_version: String::from_utf8_lossy(version).into_owned(),
            connection_id,
            capabilities,
            scramble,
            auth_plugin,
        })
    }
}

/// `mysql_native_password`: SHA1(pw) XOR SHA1(nonce + SHA1(SHA1(pw))); empty for no password.
pub fn scramble_native(password: &str, nonce: &[u8]) -> Vec<u8> {
    if password.is_empty() {
        return Vec::new();
    }
    let stage1 = Sha1::digest(password.as_bytes());
    let stage2 = Sha1::digest(stage1);
    let mut hasher = Sha1::new();
    hasher.update(&nonce[..nonce.len().min(20)]);
    hasher.update(stage2);
    let mix = hasher.finalize();
    stage1.iter().zip(mix.iter()).map(|(a, b)| a ^ b).collect()
}

/// A HandshakeResponse41 payload.
pub fn handshake_response(
    capabilities: u32,
    user: &str,
    auth_response: &[u8],
    db: Option<&str>,
    auth_plugin: &str,
) -> Vec<u8> {
    let mut caps = capabilities;
    if db.is_some() {
        caps |= CLIENT_CONNECT_WITH_DB;
    }
    let mut out = Vec::with_capacity(64 + user.len() + auth_response.len());
    out.extend_from_slice(&caps.to_le_bytes());
    out.extend_from_slice(&(16u32 * 1024 * 1024).to_le_bytes());
    out.push(45); // utf8mb4_general_ci
    out.extend_from_slice(&[0u8; 23]);
    out.extend_from_slice(user.as_bytes());
    out.push(0);
    // One length byte: the scramble is at most 32 bytes here.
    out.push(auth_response.len().min(255) as u8);
    out.extend_from_slice(&auth_response[..auth_response.len().min(255)]);
    if let Some(db) = db {
        out.extend_from_slice(db.as_bytes());
        out.push(0);
    }
    if caps & CLIENT_PLUGIN_AUTH != 0 {
        out.extend_from_slice(auth_plugin.as_bytes());
        out.push(0);
    }
    out
}

/// What the server answered to a login or a command.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Reply {
    /// OK packet.
    Ok,
    /// ERR packet.
    Err(ErrPacket),
    /// A text result set: rows of nullable column values.
    Rows(Vec<Vec<Option<Vec<u8>>>>),
    /// The server closed the connection instead of answering.
    Closed,
}

impl Reply {
    /// The ERR packet, if this is one.
    pub fn err(&self) -> Option<&ErrPacket> {
        match self {
            Reply::Err(e) => Some(e),
            _ => None,
        }
    }
}

/// The server's first packet: a handshake, or an ERR sent instead of one.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Greeting {
    Handshake(InitialHandshake),
    Err(ErrPacket),
}

/// How a connection ended in [`RawConn::wait_closed`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Closing {
    /// The first ERR packet received before the close, if any.
    pub err: Option<ErrPacket>,
    /// How long after the call the close was seen.
    pub after: Duration,
}

/// One raw TCP connection speaking the MySQL protocol.
#[derive(Debug)]
pub struct RawConn {
    stream: TcpStream,
    /// Timeout of each read.
    pub read_timeout: Duration,
}

impl RawConn {
    pub async fn connect(addr: SocketAddr) -> Result<RawConn> {
        let stream = tokio::time::timeout(Duration::from_secs(5), TcpStream::connect(addr))
            .await
            .map_err(|_| TestkitError::Timeout {
                what: format!("TCP connect to {addr}"),
                seconds: 5.0,
            })??;
        stream.set_nodelay(true)?;
        Ok(RawConn {
            stream,
            read_timeout: Duration::from_secs(10),
        })
    }

    /// The local address of the connection (the client's port, as a server sees it).
    pub fn local_addr(&self) -> Result<SocketAddr> {
        Ok(self.stream.local_addr()?)
    }

    /// Read one physical packet: `(sequence id, payload)`; `None` if the peer closed
    /// (or reset) the connection before a header arrived.
    pub async fn read_packet(&mut self) -> Result<Option<(u8, Vec<u8>)>> {
        let timeout = self.read_timeout;
        let stream = &mut self.stream;
        let read = async move {
            let mut header = [0u8; 4];
            if let Err(e) = stream.read_exact(&mut header).await {
                return match e.kind() {
                    std::io::ErrorKind::UnexpectedEof
                    | std::io::ErrorKind::ConnectionReset
                    | std::io::ErrorKind::ConnectionAborted => Ok(None),
                    _ => Err(TestkitError::Io(e)),
                };
            }
            let len = u32::from_le_bytes([header[0], header[1], header[2], 0]) as usize;
            let mut payload = vec![0u8; len];
            stream.read_exact(&mut payload).await.map_err(|e| {
                TestkitError::Protocol(format!("packet of {len} bytes cut short: {e}"))
            })?;
            Ok(Some((header[3], payload)))
        };
        tokio::time::timeout(timeout, read)
            .await
            .map_err(|_| TestkitError::Timeout {
                what: "a packet from the server".to_string(),
                seconds: timeout.as_secs_f64(),
            })?
    }

    /// Read a packet that must be there.
    async fn expect_packet(&mut self) -> Result<Option<(u8, Vec<u8>)>> {
        self.read_packet().await
    }

    /// Write one physical packet (payload must fit in one).
    pub async fn write_packet(&mut self, seq: u8, payload: &[u8]) -> Result<()> {
        if payload.len() > MAX_PACKET_PAYLOAD {
            return Err(TestkitError::Protocol(format!(
                "payload of {} bytes needs splitting; use write_logical",
                payload.len()
            )));
        }
        let len = (payload.len() as u32).to_le_bytes();
        let mut frame = Vec::with_capacity(payload.len() + 4);
        frame.extend_from_slice(&[len[0], len[1], len[2], seq]);
        frame.extend_from_slice(payload);
        self.stream.write_all(&frame).await?;
        Ok(())
    }

    /// Write a logical packet, split into 16 MiB - 1 chunks as the protocol requires.
    /// Returns the next sequence id.
    pub async fn write_logical(&mut self, first_seq: u8, payload: &[u8]) -> Result<u8> {
        let mut seq = first_seq;
        let mut chunks = payload.chunks(MAX_PACKET_PAYLOAD).peekable();
        if payload.is_empty() {
            self.write_packet(seq, &[]).await?;
            return Ok(seq.wrapping_add(1));
        }
        while let Some(chunk) = chunks.next() {
            self.write_packet(seq, chunk).await?;
            seq = seq.wrapping_add(1);
            if chunks.peek().is_none() && chunk.len() == MAX_PACKET_PAYLOAD {
                self.write_packet(seq, &[]).await?;
                seq = seq.wrapping_add(1);
            }
        }
        Ok(seq)
    }

    /// Write bytes as they are, no framing.
    pub async fn write_raw(&mut self, bytes: &[u8]) -> Result<()> {
        self.stream.write_all(bytes).await?;
        Ok(())
    }

    /// Half-close: no more bytes from us.
    pub async fn shutdown_write(&mut self) -> Result<()> {
        self.stream.shutdown().await?;
        Ok(())
    }

    /// Read the server's first packet.
    pub async fn read_greeting(&mut self) -> Result<Greeting> {
        let (_, payload) = self.expect_packet().await?.ok_or_else(|| {
            TestkitError::Protocol("connection closed before the greeting".into())
        })?;
        if let Some(err) = ErrPacket::parse(&payload) {
            return Ok(Greeting::Err(err));
        }
        Ok(Greeting::Handshake(InitialHandshake::parse(&payload)?))
    }

    /// Send a native-password handshake response with sequence id `seq` (1 is correct).
    pub async fn send_login(
        &mut self,
        greeting: &InitialHandshake,
        user: &str,
        password: &str,
        db: Option<&str>,
        seq: u8,
    ) -> Result<()> {
        let auth = scramble_native(password, &greeting.scramble);
        let payload = handshake_response(
            DEFAULT_CLIENT_CAPABILITIES,
            user,
            &auth,
            db,
            "mysql_native_password",
        );
        self.write_packet(seq, &payload).await
    }

    /// Read the answer to a handshake response, following an auth switch to
    /// `mysql_native_password` if the server asks for one.
    pub async fn read_auth_result(&mut self, password: &str) -> Result<Reply> {
        loop {
            let Some((seq, payload)) = self.expect_packet().await? else {
                return Ok(Reply::Closed);
            };
            match payload.first() {
                Some(0x00) => return Ok(Reply::Ok),
                Some(0xFF) => {
                    return ErrPacket::parse(&payload).map(Reply::Err).ok_or_else(|| {
                        TestkitError::Protocol(format!("malformed ERR packet {payload:?}"))
                    })
                }
                Some(0xFE) => {
                    let body = &payload[1..];
                    let (plugin, data) = split_nul(body).unwrap_or((body, &[]));
                    if plugin != b"mysql_native_password" {
                        return Err(TestkitError::Protocol(format!(
                            "auth switch to unsupported plugin {}",
                            String::from_utf8_lossy(plugin)
                        )));
                    }
                    let nonce = data.strip_suffix(&[0]).unwrap_or(data);
                    let auth = scramble_native(password, nonce);
                    self.write_packet(seq.wrapping_add(1), &auth).await?;
                }
                _ => {
                    return Err(TestkitError::Protocol(format!(
                        "unexpected packet during auth: {:?}",
                        &payload[..payload.len().min(32)]
                    )))
                }
            }
        }
    }

    /// Like [`RawConn::login`], as a MariaDB client asking for the extended capabilities
    /// `mariadb_ext` (e.g. `MARIADB_CLIENT_STMT_BULK_OPERATIONS`): `CLIENT_LONG_PASSWORD` is
    /// cleared and the capabilities go in the last 4 filler bytes, as MariaDB clients do.
    pub async fn login_mariadb(
        addr: SocketAddr,
        user: &str,
        password: &str,
        db: Option<&str>,
        mariadb_ext: u32,
    ) -> Result<(RawConn, Reply)> {
        let mut conn = RawConn::connect(addr).await?;
        let greeting = match conn.read_greeting().await? {
            Greeting::Handshake(h) => h,
            Greeting::Err(e) => return Ok((conn, Reply::Err(e))),
        };
        let auth = scramble_native(password, &greeting.scramble);
        let mut payload = handshake_response(
            DEFAULT_CLIENT_CAPABILITIES & !CLIENT_LONG_PASSWORD,
            user,
            &auth,
            db,
            "mysql_native_password",
        );
        // caps 4 | max packet 4 | collation 1 | filler 19 | MariaDB capabilities 4
        payload[28..32].copy_from_slice(&mariadb_ext.to_le_bytes());
        conn.write_packet(1, &payload).await?;
        let reply = conn.read_auth_result(password).await?;
        Ok((conn, reply))
    }

    /// Connect and log in with a native password. `Err` only for I/O and protocol
    /// failures; a refused login is `Ok((_, Reply::Err(..)))`.
    pub async fn login(
        addr: SocketAddr,
        user: &str,
        password: &str,
        db: Option<&str>,
    ) -> Result<(RawConn, Reply)> {
        let mut conn = RawConn::connect(addr).await?;
        let greeting = match conn.read_greeting().await? {
            Greeting::Handshake(h) => h,
            Greeting::Err(e) => return Ok((conn, Reply::Err(e))),
        };
        conn.send_login(&greeting, user, password, db, 1).await?;
        let reply = conn.read_auth_result(password).await?;
        Ok((conn, reply))
    }

    /// Send a command packet (sequence id 0) and read a text-protocol reply.
    pub async fn command(&mut self, command: u8, arg: &[u8]) -> Result<Reply> {
        let mut payload = Vec::with_capacity(arg.len() + 1);
        payload.push(command);
        payload.extend_from_slice(arg);
        self.write_logical(0, &payload).await?;
        self.read_reply().await
    }

    /// COM_QUERY.
    pub async fn query(&mut self, sql: &str) -> Result<Reply> {
        self.command(COM_QUERY, sql.as_bytes()).await
    }

    /// Read an OK, an ERR, or a whole text result set.
    pub async fn read_reply(&mut self) -> Result<Reply> {
        let Some((_, first)) = self.expect_packet().await? else {
            return Ok(Reply::Closed);
        };
        match first.first() {
            Some(0x00) => return Ok(Reply::Ok),
            Some(0xFF) => {
                return ErrPacket::parse(&first)
                    .map(Reply::Err)
                    .ok_or_else(|| TestkitError::Protocol("malformed ERR packet".into()))
            }
            _ => {}
        }
        let (columns, _) = read_lenenc_int(&first)
            .ok_or_else(|| TestkitError::Protocol("bad column count".into()))?;
        for _ in 0..columns {
            self.packet_or_closed().await?;
        }
        let eof = self.packet_or_closed().await?;
        if eof.first() != Some(&0xFE) {
            return Err(TestkitError::Protocol(
                "no EOF after column definitions".into(),
            ));
        }
        let mut rows = Vec::new();
        loop {
            let packet = self.packet_or_closed().await?;
            match packet.first() {
                Some(0xFE) if packet.len() < 9 => return Ok(Reply::Rows(rows)),
                Some(0xFF) => {
                    return ErrPacket::parse(&packet)
                        .map(Reply::Err)
                        .ok_or_else(|| TestkitError::Protocol("malformed ERR packet".into()))
                }
                _ => rows.push(parse_text_row(&packet, columns as usize)?),
            }
        }
    }

    async fn packet_or_closed(&mut self) -> Result<Vec<u8>> {
        match self.expect_packet().await? {
            Some((_, payload)) => Ok(payload),
            None => Err(TestkitError::Protocol(
                "connection closed in the middle of a result set".into(),
            )),
        }
    }

    /// Read until the server closes the connection (or resets it), at most `timeout`.
    /// Returns the first ERR packet seen on the way, and when the close came.
    pub async fn wait_closed(&mut self, timeout: Duration) -> Result<Closing> {
        let started = Instant::now();
        let saved = self.read_timeout;
        let mut err = None;
        let outcome = loop {
            let left = timeout.saturating_sub(started.elapsed());
            if left.is_zero() {
                break Err(TestkitError::Timeout {
                    what: "the server to close the connection".into(),
                    seconds: timeout.as_secs_f64(),
                });
            }
            self.read_timeout = left;
            match self.read_packet().await {
                Ok(None) => {
                    break Ok(Closing {
                        err: err.take(),
                        after: started.elapsed(),
                    })
                }
                Ok(Some((_, payload))) => {
                    if err.is_none() {
                        err = ErrPacket::parse(&payload);
                    }
                }
                // A packet cut short by the close counts as a close.
                Err(TestkitError::Protocol(_)) => {
                    break Ok(Closing {
                        err: err.take(),
                        after: started.elapsed(),
                    })
                }
                Err(e) => break Err(e),
            }
        };
        self.read_timeout = saved;
        outcome
    }
}

/// A length-encoded integer and the bytes after it.
pub fn read_lenenc_int(data: &[u8]) -> Option<(u64, &[u8])> {
    let (&first, rest) = data.split_first()?;
    let take = |n: usize| -> Option<(u64, &[u8])> {
        if rest.len() < n {
            return None;
        }
        let mut bytes = [0u8; 8];
        bytes[..n].copy_from_slice(&rest[..n]);
        Some((u64::from_le_bytes(bytes), &rest[n..]))
    };
    match first {
        0..=0xFA => Some((first as u64, rest)),
        0xFC => take(2),
        0xFD => take(3),
        0xFE => take(8),
        _ => None,
    }
}

fn parse_text_row(packet: &[u8], columns: usize) -> Result<Vec<Option<Vec<u8>>>> {
    let mut row = Vec::with_capacity(columns);
    let mut rest = packet;
    for _ in 0..columns {
        if rest.first() == Some(&0xFB) {
            row.push(None);
            rest = &rest[1..];
            continue;
        }
        let (len, after) = read_lenenc_int(rest)
            .ok_or_else(|| TestkitError::Protocol("bad length in a row".into()))?;
        let len = usize::try_from(len)
            .ok()
            .filter(|&l| l <= after.len())
            .ok_or_else(|| TestkitError::Protocol("row value longer than the packet".into()))?;
        row.push(Some(after[..len].to_vec()));
        rest = &after[len..];
    }
    Ok(row)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn err_packet_with_sqlstate() {
        let mut payload = vec![0xFF, 0x15, 0x04, b'#'];
        payload.extend_from_slice(b"28000Access denied for user 'app'@'127.0.0.1'");
        let err = ErrPacket::parse(&payload).unwrap();
        assert_eq!(err.code, 1045);
        assert_eq!(err.sql_state.as_deref(), Some("28000"));
        assert_eq!(err.message, "Access denied for user 'app'@'127.0.0.1'");
        assert_eq!(
            err.to_string(),
            "ERROR 1045 (28000): Access denied for user 'app'@'127.0.0.1'"
        );
    }

    #[test]
    fn err_packet_without_sqlstate() {
        let err = ErrPacket::parse(b"\xff\x10\x04Too many connections").unwrap();
        assert_eq!(err.code, 1040);
        assert_eq!(err.sql_state, None);
        assert_eq!(err.message, "Too many connections");
    }

    #[test]
    fn not_an_err_packet() {
        assert_eq!(ErrPacket::parse(b"\x00\x00\x00"), None);
        assert_eq!(ErrPacket::parse(b"\xff\x01"), None);
    }

    fn hex(bytes: &[u8]) -> String {
        bytes.iter().map(|b| format!("{b:02x}")).collect()
    }

    #[test]
    fn native_scramble_known_vector() {
        // Computed independently (Python hashlib) for password "secret", nonce 0x01..=0x14.
        let nonce: Vec<u8> = (1u8..=20).collect();
        assert_eq!(
            hex(&scramble_native("secret", &nonce)),
            "b32bb3a583e1340c0a1108d58b1be49781ad8c2f"
        );
        assert_eq!(scramble_native("", &nonce), Vec::<u8>::new());
    }

    fn sample_handshake() -> Vec<u8> {
        let mut p = vec![10];
        p.extend_from_slice(b"5.5.5-10.11.19-MariaDB\0");
        p.extend_from_slice(&42u32.to_le_bytes());
        p.extend_from_slice(b"abcdefgh");
        p.push(0);
        let caps = DEFAULT_CLIENT_CAPABILITIES;
        p.extend_from_slice(&(caps as u16).to_le_bytes());
        p.push(45);
        p.extend_from_slice(&2u16.to_le_bytes());
        p.extend_from_slice(&((caps >> 16) as u16).to_le_bytes());
        p.push(21);
        p.extend_from_slice(&[0u8; 10]);
        p.extend_from_slice(b"ijklmnopqrst\0");
        p.extend_from_slice(b"mysql_native_password\0");
        p
    }

    #[test]
    fn parses_initial_handshake() {
        let h = InitialHandshake::parse(&sample_handshake()).unwrap();
        assert_eq!(h.protocol_version, 10);
        assert_eq!(h.server_version, "5.5.5-10.11.19-MariaDB");
        assert_eq!(h.connection_id, 42);
        assert_eq!(h.scramble, b"abcdefghijklmnopqrst".to_vec());
        assert_eq!(h.auth_plugin, "mysql_native_password");
        assert_eq!(h.capabilities, DEFAULT_CLIENT_CAPABILITIES);
    }

    #[test]
    fn rejects_bad_handshakes() {
        assert!(InitialHandshake::parse(&[]).is_err());
        assert!(InitialHandshake::parse(&[9, 0]).is_err());
        let full = sample_handshake();
        assert!(InitialHandshake::parse(&full[..30]).is_err());
    }

    #[test]
    fn handshake_response_layout() {
        let p = handshake_response(
            DEFAULT_CLIENT_CAPABILITIES,
            "app",
            &[7; 20],
            Some("app"),
            "mysql_native_password",
        );
        let caps = u32::from_le_bytes([p[0], p[1], p[2], p[3]]);
        assert_ne!(caps & CLIENT_CONNECT_WITH_DB, 0);
        assert_eq!(&p[32..36], b"app\0");
        assert_eq!(p[36], 20);
        assert_eq!(&p[37..57], &[7u8; 20]);
        assert_eq!(&p[57..61], b"app\0");
        assert_eq!(&p[61..], b"mysql_native_password\0");
    }

    #[test]
    fn lenenc_ints() {
        assert_eq!(read_lenenc_int(&[5, 9]), Some((5, &[9u8][..])));
        assert_eq!(
            read_lenenc_int(&[0xFC, 0x34, 0x12]),
            Some((0x1234, &[][..]))
        );
        assert_eq!(read_lenenc_int(&[0xFD, 1, 2, 3]), Some((0x030201, &[][..])));
        assert_eq!(read_lenenc_int(&[0xFC, 1]), None);
        assert_eq!(read_lenenc_int(&[0xFB]), None);
    }

    #[test]
    fn text_rows() {
        let row = parse_text_row(&[1, b'7', 0xFB, 2, b'h', b'i'], 3).unwrap();
        assert_eq!(row, vec![Some(b"7".to_vec()), None, Some(b"hi".to_vec())]);
        assert!(parse_text_row(&[5, b'a'], 1).is_err());
    }
}
