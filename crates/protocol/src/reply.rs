//! OK, ERR and EOF packets: the generic replies of a server.

use bytes::{BufMut, BytesMut};

use crate::lenenc;
use crate::session_track::SessionChanges;
use crate::{CapabilityFlags, ProtocolError, StatusFlags};

pub const OK_HEADER: u8 = 0x00;
pub const EOF_HEADER: u8 = 0xFE;
pub const ERR_HEADER: u8 = 0xFF;
pub const LOCAL_INFILE_HEADER: u8 = 0xFB;

/// Is this payload an ERR packet?
#[inline]
pub fn is_err(payload: &[u8]) -> bool {
    payload.first() == Some(&ERR_HEADER)
}

/// Is this payload an OK packet (with the `0x00` header)?
#[inline]
pub fn is_ok(payload: &[u8]) -> bool {
    payload.first() == Some(&OK_HEADER) && payload.len() >= 7
}

/// Is this payload a result-set terminator: the old EOF packet (`0xFE`, under 9 bytes) or, with
/// `CLIENT_DEPRECATE_EOF`, the OK packet with a `0xFE` header?
#[inline]
pub fn is_eof_or_terminal_ok(payload: &[u8], deprecate_eof: bool) -> bool {
    payload.first() == Some(&EOF_HEADER)
        && (payload.len() < 9 || (deprecate_eof && payload.len() < crate::frame::MAX_CHUNK))
}

/// Status flags of a terminator, read without a full parse: with `CLIENT_DEPRECATE_EOF` it is an
/// OK packet (header `0xFE`), otherwise the 5-byte EOF packet.
pub fn status_of_terminator(
    payload: &[u8],
    deprecate_eof: bool,
) -> Result<StatusFlags, ProtocolError> {
    if deprecate_eof {
        return Ok(parse_ok(payload, CapabilityFlags::empty())?.status);
    }
    match payload {
        [_, _, _, lo, hi, ..] => Ok(StatusFlags::from_bits_retain(u16::from_le_bytes([
            *lo, *hi,
        ]))),
        _ => Err(ProtocolError::Truncated("EOF packet")),
    }
}

/// A decoded OK packet. Session-state changes are kept as raw bytes to be read on demand.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Ok<'a> {
    pub affected_rows: u64,
    pub last_insert_id: u64,
    pub status: StatusFlags,
    pub warnings: u16,
    pub info: &'a [u8],
    pub session_state: &'a [u8],
}

impl<'a> Ok<'a> {
    pub fn session_changes(&self) -> SessionChanges<'a> {
        SessionChanges::new(self.session_state)
    }
}

/// Parses an OK packet (header `0x00` or `0xFE`). With `CLIENT_SESSION_TRACK` negotiated, the
/// info string and session-state changes are length-encoded; otherwise the rest is info.
pub fn parse_ok(payload: &[u8], caps: CapabilityFlags) -> Result<Ok<'_>, ProtocolError> {
    let rest = payload
        .get(1..)
        .ok_or(ProtocolError::Truncated("OK packet"))?;
    let (affected_rows, n) = lenenc::read_int(rest)?;
    let rest = &rest[n..];
    let (last_insert_id, n) = lenenc::read_int(rest)?;
    let rest = &rest[n..];
    if rest.len() < 4 {
        return Err(ProtocolError::Truncated("OK packet"));
    }
    let status = StatusFlags::from_bits_retain(u16::from_le_bytes([rest[0], rest[1]]));
    let warnings = u16::from_le_bytes([rest[2], rest[3]]);
    let rest = &rest[4..];
    let (info, session_state) = if caps.contains(CapabilityFlags::CLIENT_SESSION_TRACK) {
        if rest.is_empty() {
            (&rest[..0], &rest[..0])
        } else {
            let (info, n) = lenenc::read_str(rest)?;
            let rest = &rest[n..];
            if status.contains(StatusFlags::SERVER_SESSION_STATE_CHANGED) && !rest.is_empty() {
                let (state, _) = lenenc::read_str(rest)?;
                (info, state)
            } else {
                (info, &rest[..0])
            }
        }
    } else {
        // Servers store the info string length-encoded here too (the protocol documents it as
        // the rest of the packet; read either).
        match lenenc::read_str(rest) {
            Result::Ok((info, used)) if used == rest.len() => (info, &rest[..0]),
            _ => (rest, &rest[..0]),
        }
    };
    Ok(Ok {
        affected_rows,
        last_insert_id,
        status,
        warnings,
        info,
        session_state,
    })
}

/// Appends an OK packet payload (header `0x00`), without session-state information.
pub fn encode_ok(
    out: &mut BytesMut,
    affected_rows: u64,
    last_insert_id: u64,
    status: StatusFlags,
    warnings: u16,
) {
    out.put_u8(OK_HEADER);
    lenenc::put_int(out, affected_rows);
    lenenc::put_int(out, last_insert_id);
    out.put_u16_le(status.bits() & !StatusFlags::SERVER_SESSION_STATE_CHANGED.bits());
    out.put_u16_le(warnings);
    // Like the server: with nothing to report (no info, no state change) the packet ends here,
    // with or without CLIENT_SESSION_TRACK.
}

/// Appends an OK packet reporting a new default schema (session-state tracking), as the server
/// answers a login with a database to a client that tracks session state.
pub fn encode_ok_with_schema(out: &mut BytesMut, status: StatusFlags, schema: &[u8]) {
    out.put_u8(OK_HEADER);
    lenenc::put_int(out, 0);
    lenenc::put_int(out, 0);
    out.put_u16_le((status | StatusFlags::SERVER_SESSION_STATE_CHANGED).bits());
    out.put_u16_le(0);
    lenenc::put_str(out, b"");
    let mut entry = BytesMut::new();
    lenenc::put_str(&mut entry, schema);
    let mut state = BytesMut::new();
    state.put_u8(crate::session_track::SCHEMA);
    lenenc::put_str(&mut state, &entry);
    lenenc::put_str(out, &state);
}

/// Appends an old-style EOF packet payload.
pub fn encode_eof(out: &mut BytesMut, warnings: u16, status: StatusFlags) {
    out.put_u8(EOF_HEADER);
    out.put_u16_le(warnings);
    out.put_u16_le(status.bits());
}

/// A decoded ERR packet.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Err<'a> {
    pub code: u16,
    pub sql_state: [u8; 5],
    pub message: &'a [u8],
}

/// Parses an ERR packet (protocol 4.1 form; the SQLSTATE marker is optional).
pub fn parse_err(payload: &[u8]) -> Result<Err<'_>, ProtocolError> {
    if payload.len() < 3 || payload[0] != ERR_HEADER {
        return Err(ProtocolError::Malformed("ERR packet"));
    }
    let code = u16::from_le_bytes([payload[1], payload[2]]);
    let rest = &payload[3..];
    if rest.first() == Some(&b'#') && rest.len() >= 6 {
        let mut state = [0u8; 5];
        state.copy_from_slice(&rest[1..6]);
        Ok(Err {
            code,
            sql_state: state,
            message: &rest[6..],
        })
    } else {
        Ok(Err {
            code,
            sql_state: *b"HY000",
            message: rest,
        })
    }
}

/// Appends an ERR packet payload.
pub fn encode_err(out: &mut BytesMut, code: u16, sql_state: &[u8; 5], message: &str) {
    out.put_u8(ERR_HEADER);
    out.put_u16_le(code);
    out.put_u8(b'#');
    out.put_slice(sql_state);
    out.put_slice(message.as_bytes());
}

/// Server error codes rwproxy itself sends, with their SQLSTATE.
pub mod codes {
    /// `ER_CON_COUNT_ERROR`: Too many connections.
    pub const TOO_MANY_CONNECTIONS: (u16, &[u8; 5]) = (1040, b"08004");
    /// `ER_OUT_OF_RESOURCES`: the server (here rwproxy) lacks memory for the request.
    pub const OUT_OF_RESOURCES: (u16, &[u8; 5]) = (1041, b"HY000");
    /// `ER_SERVER_SHUTDOWN`: the server is shutting down.
    pub const SERVER_SHUTDOWN: (u16, &[u8; 5]) = (1053, b"08S01");
    /// `ER_HOST_IS_BLOCKED`: the client's address is refused after repeated failures.
    pub const HOST_IS_BLOCKED: (u16, &[u8; 5]) = (1129, b"HY000");
    /// `ER_HANDSHAKE_ERROR`: Bad handshake.
    pub const BAD_HANDSHAKE: (u16, &[u8; 5]) = (1043, b"08S01");
    /// `ER_ACCESS_DENIED_ERROR`.
    pub const ACCESS_DENIED: (u16, &[u8; 5]) = (1045, b"28000");
    /// `ER_UNKNOWN_COM_ERROR`.
    pub const UNKNOWN_COMMAND: (u16, &[u8; 5]) = (1047, b"08S01");
    /// `ER_NET_PACKET_TOO_LARGE`.
    pub const PACKET_TOO_LARGE: (u16, &[u8; 5]) = (1153, b"08S01");
    /// `ER_NET_PACKETS_OUT_OF_ORDER`.
    pub const PACKETS_OUT_OF_ORDER: (u16, &[u8; 5]) = (1156, b"08S01");
    /// `ER_NET_READ_ERROR` (used for a malformed packet).
    pub const NET_READ_ERROR: (u16, &[u8; 5]) = (1158, b"08S01");
    /// `ER_NO_SUCH_THREAD`: Unknown thread id.
    pub const NO_SUCH_THREAD: (u16, &[u8; 5]) = (1094, b"HY000");
    /// `ER_UNKNOWN_STMT_HANDLER`.
    pub const UNKNOWN_STMT_HANDLER: (u16, &[u8; 5]) = (1243, b"HY000");
    /// `ER_OPTION_PREVENTS_STATEMENT` (a write refused because no single primary is known).
    pub const OPTION_PREVENTS_STATEMENT: (u16, &[u8; 5]) = (1290, b"HY000");
    /// `ER_SECURE_TRANSPORT_REQUIRED`.
    pub const SECURE_TRANSPORT_REQUIRED: (u16, &[u8; 5]) = (3159, b"HY000");
    // A server never sends a code of the client range (2000-2999, `CR_*`): libmariadb-based
    // clients (the `mariadb` CLI, sysbench, mysqlclient, DBD::MariaDB, Ruby mysql2) report
    // such an error packet as 2027 "Received malformed packet". What rwproxy itself answers
    // uses server codes.
    /// `ER_CONNECT_TO_FOREIGN_DATA_SOURCE`: a statement could not reach a backend (it did not
    /// run).
    pub const CANNOT_CONNECT: (u16, &[u8; 5]) = (1429, b"HY000");
    /// `ER_CONNECTION_KILLED` with SQLSTATE 08S01 (communication link failure): the backend
    /// went away during a command (its outcome is unknown).
    pub const SERVER_LOST: (u16, &[u8; 5]) = (1927, b"08S01");
    /// `ER_MALFORMED_PACKET`: a packet rwproxy cannot follow.
    pub const MALFORMED_PACKET: (u16, &[u8; 5]) = (1835, b"HY000");
    /// `ER_LOCK_WAIT_TIMEOUT`-free timeout for causal reads and writes waiting for a primary.
    pub const QUERY_TIMEOUT: (u16, &[u8; 5]) = (1969, b"70100");
    /// `ER_NOT_SUPPORTED_YET`.
    pub const NOT_SUPPORTED: (u16, &[u8; 5]) = (1235, b"42000");
    /// `ER_NOT_SUPPORTED_AUTH_MODE`.
    pub const AUTH_MODE: (u16, &[u8; 5]) = (1251, b"08004");
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ok_roundtrip_with_and_without_session_track() {
        for caps in [
            CapabilityFlags::empty(),
            CapabilityFlags::CLIENT_SESSION_TRACK,
        ] {
            let mut b = BytesMut::new();
            encode_ok(&mut b, 300, 70000, StatusFlags::SERVER_STATUS_IN_TRANS, 2);
            let ok = parse_ok(&b, caps).unwrap();
            assert_eq!(ok.affected_rows, 300);
            assert_eq!(ok.last_insert_id, 70000);
            assert!(ok.status.contains(StatusFlags::SERVER_STATUS_IN_TRANS));
            assert_eq!(ok.warnings, 2);
            assert!(ok.session_state.is_empty());
        }
    }

    #[test]
    fn ok_with_session_state() {
        // 00 | affected 1 | id 0 | status SESSION_STATE_CHANGED|AUTOCOMMIT | warnings 0 | info "" |
        // state: [type 0, len, [name "last_gtid", value "0-1-5"]]
        let mut b = BytesMut::new();
        b.put_u8(0);
        b.put_u8(1);
        b.put_u8(0);
        b.put_u16_le(0x4000 | 0x0002);
        b.put_u16_le(0);
        lenenc::put_str(&mut b, b"");
        let mut entry = BytesMut::new();
        lenenc::put_str(&mut entry, b"last_gtid");
        lenenc::put_str(&mut entry, b"0-1-5");
        let mut state = BytesMut::new();
        state.put_u8(0);
        lenenc::put_str(&mut state, &entry);
        lenenc::put_str(&mut b, &state);
        let ok = parse_ok(&b, CapabilityFlags::CLIENT_SESSION_TRACK).unwrap();
        let vars: Vec<_> = ok.session_changes().system_variables().collect();
        assert_eq!(vars, vec![(&b"last_gtid"[..], &b"0-1-5"[..])]);
    }

    #[test]
    fn err_roundtrip_and_garbage() {
        let mut b = BytesMut::new();
        encode_err(&mut b, 1045, b"28000", "Access denied");
        let e = parse_err(&b).unwrap();
        assert_eq!(
            (e.code, &e.sql_state, e.message),
            (1045, b"28000", &b"Access denied"[..])
        );
        assert!(parse_err(&[0xFF]).is_err());
        assert!(parse_ok(&[0x00, 0xFC], CapabilityFlags::empty()).is_err());
        assert!(parse_ok(&[], CapabilityFlags::empty()).is_err());
    }

    #[test]
    fn eof_detection() {
        let mut b = BytesMut::new();
        encode_eof(&mut b, 0, StatusFlags::SERVER_MORE_RESULTS_EXISTS);
        assert!(is_eof_or_terminal_ok(&b, false));
        assert!(status_of_terminator(&b, false)
            .unwrap()
            .contains(StatusFlags::SERVER_MORE_RESULTS_EXISTS));
        // a 9-byte row starting with 0xFE is a row in classic mode
        assert!(!is_eof_or_terminal_ok(&[0xFE; 9], false));
        assert!(is_eof_or_terminal_ok(&[0xFE, 0, 0, 2, 0, 0, 0, 0, 0], true));
    }
}

/// Re-encodes an OK packet (header `0x00` or `0xFE`) without its session-state information,
/// for a client that did not negotiate `CLIENT_SESSION_TRACK` behind a backend that did.
/// Returns `false` (and writes nothing) when the packet carries no session state.
pub fn strip_session_state(payload: &[u8], out: &mut BytesMut) -> Result<bool, ProtocolError> {
    let ok = parse_ok(payload, CapabilityFlags::CLIENT_SESSION_TRACK)?;
    if !ok
        .status
        .contains(StatusFlags::SERVER_SESSION_STATE_CHANGED)
    {
        return Ok(false);
    }
    out.put_u8(payload[0]);
    lenenc::put_int(out, ok.affected_rows);
    lenenc::put_int(out, ok.last_insert_id);
    out.put_u16_le(ok.status.bits() & !StatusFlags::SERVER_SESSION_STATE_CHANGED.bits());
    out.put_u16_le(ok.warnings);
    if !ok.info.is_empty() {
        // Length-encoded, as servers send it (clients parse it so).
        lenenc::put_str(out, ok.info);
    }
    Ok(true)
}

/// Rewrites an OK packet (or an OK-format terminator) without the session-state entries that
/// report changes of the system variable `name` (rwproxy tracks `last_gtid` for itself; a
/// client that did not ask for it must not see it). The state flag and block go when nothing
/// else is left. Returns `false` (and writes nothing) when there is nothing to remove.
pub fn strip_system_variable(
    payload: &[u8],
    name: &[u8],
    out: &mut BytesMut,
) -> Result<bool, ProtocolError> {
    strip_system_variables(payload, &[name], out)
}

/// [`strip_system_variable`] for several variables at once.
pub fn strip_system_variables(
    payload: &[u8],
    names: &[&[u8]],
    out: &mut BytesMut,
) -> Result<bool, ProtocolError> {
    let ok = parse_ok(payload, CapabilityFlags::CLIENT_SESSION_TRACK)?;
    if ok.session_state.is_empty() {
        return Ok(false);
    }
    let changes = crate::session_track::SessionChanges::new(ok.session_state);
    let is_hidden = |kind: u8, data: &[u8]| {
        kind == crate::session_track::SYSTEM_VARIABLES
            && lenenc::read_str(data).is_ok_and(|(n, _)| names.contains(&n))
    };
    if !changes.entries().any(|(k, d)| is_hidden(k, d)) {
        return Ok(false);
    }
    let mut kept = BytesMut::new();
    for (kind, data) in changes.entries().filter(|(k, d)| !is_hidden(*k, d)) {
        kept.put_u8(kind);
        lenenc::put_str(&mut kept, data);
    }
    let mut status = ok.status;
    if kept.is_empty() {
        status.remove(StatusFlags::SERVER_SESSION_STATE_CHANGED);
    }
    out.clear();
    out.put_u8(payload[0]);
    lenenc::put_int(out, ok.affected_rows);
    lenenc::put_int(out, ok.last_insert_id);
    out.put_u16_le(status.bits());
    out.put_u16_le(ok.warnings);
    if !kept.is_empty() || !ok.info.is_empty() {
        lenenc::put_str(out, ok.info);
    }
    if !kept.is_empty() {
        lenenc::put_str(out, &kept);
    }
    Ok(true)
}

#[cfg(test)]
mod strip_variable_tests {
    use super::*;

    fn ok_with_state(info: &[u8], entries: &[(u8, Vec<u8>)]) -> BytesMut {
        let mut state = BytesMut::new();
        for (k, d) in entries {
            state.put_u8(*k);
            lenenc::put_str(&mut state, d);
        }
        let mut b = BytesMut::new();
        b.put_u8(0);
        lenenc::put_int(&mut b, 1);
        lenenc::put_int(&mut b, 0);
        b.put_u16_le(0x4000 | 0x0002);
        b.put_u16_le(0);
        lenenc::put_str(&mut b, info);
        lenenc::put_str(&mut b, &state);
        b
    }

    fn var(name: &[u8], value: &[u8]) -> Vec<u8> {
        let mut v = BytesMut::new();
        lenenc::put_str(&mut v, name);
        lenenc::put_str(&mut v, value);
        v.to_vec()
    }

    #[test]
    fn removes_only_the_named_variable() {
        let mut out = BytesMut::new();
        // Only last_gtid: the packet becomes a plain OK, as without the tracking.
        let b = ok_with_state(b"", &[(0, var(b"last_gtid", b"0-1-5"))]);
        assert!(strip_system_variable(&b, b"last_gtid", &mut out).unwrap());
        // What MariaDB sends for an INSERT when nothing tracked changed.
        assert_eq!(&out[..], &[0, 1, 0, 2, 0, 0, 0]);
        // With a schema change and a tracked variable: those stay.
        let b = ok_with_state(
            b"",
            &[
                (1, b"\x03app".to_vec()),
                (0, var(b"last_gtid", b"0-1-6")),
                (0, var(b"autocommit", b"OFF")),
            ],
        );
        assert!(strip_system_variable(&b, b"last_gtid", &mut out).unwrap());
        let ok = parse_ok(&out, CapabilityFlags::CLIENT_SESSION_TRACK).unwrap();
        let vars: Vec<_> = ok.session_changes().system_variables().collect();
        assert_eq!(vars, vec![(&b"autocommit"[..], &b"OFF"[..])]);
        assert!(ok
            .status
            .contains(StatusFlags::SERVER_SESSION_STATE_CHANGED));
        // Nothing to remove: untouched.
        let b = ok_with_state(b"", &[(0, var(b"autocommit", b"ON"))]);
        assert!(!strip_system_variable(&b, b"last_gtid", &mut out).unwrap());
        assert!(strip_system_variable(&[0, 1], b"last_gtid", &mut out).is_err());
    }
}

#[cfg(test)]
mod strip_tests {
    use super::*;

    #[test]
    fn strips_state_and_keeps_the_rest() {
        let mut b = BytesMut::new();
        b.put_u8(0);
        lenenc::put_int(&mut b, 3);
        lenenc::put_int(&mut b, 9);
        b.put_u16_le(0x4000 | 0x0002);
        b.put_u16_le(1);
        lenenc::put_str(&mut b, b"Rows matched: 3");
        lenenc::put_str(&mut b, b"\x01\x04\x03app");
        let mut out = BytesMut::new();
        assert!(strip_session_state(&b, &mut out).unwrap());
        let ok = parse_ok(&out, CapabilityFlags::empty()).unwrap();
        assert_eq!(
            (ok.affected_rows, ok.last_insert_id, ok.warnings),
            (3, 9, 1)
        );
        assert_eq!(ok.status, StatusFlags::SERVER_STATUS_AUTOCOMMIT);
        assert_eq!(ok.info, b"Rows matched: 3");
        let mut plain = BytesMut::new();
        encode_ok(&mut plain, 1, 0, StatusFlags::empty(), 0);
        let mut out = BytesMut::new();
        assert!(!strip_session_state(&plain, &mut out).unwrap());
        assert!(out.is_empty());
    }
}
