//! Command packets from clients: the command byte and the few fields rwproxy reads or rewrites.

use crate::ProtocolError;

pub const COM_SLEEP: u8 = 0x00;
pub const COM_QUIT: u8 = 0x01;
pub const COM_INIT_DB: u8 = 0x02;
pub const COM_QUERY: u8 = 0x03;
pub const COM_FIELD_LIST: u8 = 0x04;
pub const COM_CREATE_DB: u8 = 0x05;
pub const COM_DROP_DB: u8 = 0x06;
pub const COM_REFRESH: u8 = 0x07;
pub const COM_STATISTICS: u8 = 0x09;
pub const COM_PROCESS_INFO: u8 = 0x0A;
pub const COM_PROCESS_KILL: u8 = 0x0C;
pub const COM_DEBUG: u8 = 0x0D;
pub const COM_PING: u8 = 0x0E;
pub const COM_CHANGE_USER: u8 = 0x11;
pub const COM_BINLOG_DUMP: u8 = 0x12;
pub const COM_STMT_PREPARE: u8 = 0x16;
pub const COM_STMT_EXECUTE: u8 = 0x17;
pub const COM_STMT_SEND_LONG_DATA: u8 = 0x18;
pub const COM_STMT_CLOSE: u8 = 0x19;
pub const COM_STMT_RESET: u8 = 0x1A;
pub const COM_SET_OPTION: u8 = 0x1B;
pub const COM_STMT_FETCH: u8 = 0x1C;
pub const COM_RESET_CONNECTION: u8 = 0x1F;
pub const COM_STMT_BULK_EXECUTE: u8 = 0xFA;

/// `COM_SET_OPTION` values.
pub const MYSQL_OPTION_MULTI_STATEMENTS_ON: u16 = 0;
pub const MYSQL_OPTION_MULTI_STATEMENTS_OFF: u16 = 1;

/// A human-readable command name for logs and metrics.
pub fn name(cmd: u8) -> &'static str {
    match cmd {
        COM_SLEEP => "COM_SLEEP",
        COM_QUIT => "COM_QUIT",
        COM_INIT_DB => "COM_INIT_DB",
        COM_QUERY => "COM_QUERY",
        COM_FIELD_LIST => "COM_FIELD_LIST",
        COM_CREATE_DB => "COM_CREATE_DB",
        COM_DROP_DB => "COM_DROP_DB",
        COM_REFRESH => "COM_REFRESH",
        COM_STATISTICS => "COM_STATISTICS",
        COM_PROCESS_INFO => "COM_PROCESS_INFO",
        COM_PROCESS_KILL => "COM_PROCESS_KILL",
        COM_DEBUG => "COM_DEBUG",
        COM_PING => "COM_PING",
        COM_CHANGE_USER => "COM_CHANGE_USER",
        COM_BINLOG_DUMP => "COM_BINLOG_DUMP",
        COM_STMT_PREPARE => "COM_STMT_PREPARE",
        COM_STMT_EXECUTE => "COM_STMT_EXECUTE",
        COM_STMT_SEND_LONG_DATA => "COM_STMT_SEND_LONG_DATA",
        COM_STMT_CLOSE => "COM_STMT_CLOSE",
        COM_STMT_RESET => "COM_STMT_RESET",
        COM_SET_OPTION => "COM_SET_OPTION",
        COM_STMT_FETCH => "COM_STMT_FETCH",
        COM_RESET_CONNECTION => "COM_RESET_CONNECTION",
        COM_STMT_BULK_EXECUTE => "COM_STMT_BULK_EXECUTE",
        _ => "COM_UNKNOWN",
    }
}

/// The statement id of a `COM_STMT_*` packet (bytes 1..5).
#[inline]
pub fn stmt_id(payload: &[u8]) -> Result<u32, ProtocolError> {
    match payload.get(1..5) {
        Some(b) => Ok(u32::from_le_bytes([b[0], b[1], b[2], b[3]])),
        None => Err(ProtocolError::Truncated("statement id")),
    }
}

/// Rewrites the statement id of a `COM_STMT_*` packet in place.
#[inline]
pub fn set_stmt_id(payload: &mut [u8], id: u32) -> Result<(), ProtocolError> {
    match payload.get_mut(1..5) {
        Some(b) => {
            b.copy_from_slice(&id.to_le_bytes());
            Ok(())
        }
        None => Err(ProtocolError::Truncated("statement id")),
    }
}

/// The `COM_STMT_PREPARE` OK reply: `0x00 | stmt_id u32 | columns u16 | params u16 | 0 | warnings u16`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct PrepareOk {
    pub stmt_id: u32,
    pub columns: u16,
    pub params: u16,
    pub warnings: u16,
}

pub fn parse_prepare_ok(payload: &[u8]) -> Result<PrepareOk, ProtocolError> {
    if payload.len() < 12 || payload[0] != 0 {
        return Err(ProtocolError::Malformed("COM_STMT_PREPARE OK"));
    }
    Ok(PrepareOk {
        stmt_id: u32::from_le_bytes([payload[1], payload[2], payload[3], payload[4]]),
        columns: u16::from_le_bytes([payload[5], payload[6]]),
        params: u16::from_le_bytes([payload[7], payload[8]]),
        warnings: u16::from_le_bytes([payload[10], payload[11]]),
    })
}

/// Where the parts of a `COM_STMT_EXECUTE` lie, given the statement's parameter count:
/// `0x17 | stmt_id u32 | flags u8 | iterations u32 | [null bitmap | new_params_bound u8 | types | values]`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ExecuteLayout {
    pub flags: u8,
    /// Offset of the new-params-bound byte, when the statement has parameters.
    pub bound_flag_at: Option<usize>,
    /// Whether the packet carries the parameter types.
    pub types_bound: bool,
}

/// `CURSOR_TYPE_READ_ONLY` in the execute flags: the client wants a server-side cursor.
pub const CURSOR_TYPE_READ_ONLY: u8 = 0x01;

pub fn execute_layout(payload: &[u8], params: u16) -> Result<ExecuteLayout, ProtocolError> {
    if payload.len() < 10 {
        return Err(ProtocolError::Truncated("COM_STMT_EXECUTE"));
    }
    let flags = payload[5];
    if params == 0 {
        return Ok(ExecuteLayout {
            flags,
            bound_flag_at: None,
            types_bound: false,
        });
    }
    let at = 10 + (params as usize).div_ceil(8);
    let bound = *payload
        .get(at)
        .ok_or(ProtocolError::Truncated("COM_STMT_EXECUTE parameters"))?;
    Ok(ExecuteLayout {
        flags,
        bound_flag_at: Some(at),
        types_bound: bound == 1,
    })
}

/// The parameter-type block (`2 * params` bytes) of an execute packet that carries one.
pub fn execute_types(payload: &[u8], params: u16) -> Result<&[u8], ProtocolError> {
    let layout = execute_layout(payload, params)?;
    match layout.bound_flag_at {
        Some(at) if layout.types_bound => payload
            .get(at + 1..at + 1 + 2 * params as usize)
            .ok_or(ProtocolError::Truncated("COM_STMT_EXECUTE types")),
        _ => Err(ProtocolError::Unexpected("execute without parameter types")),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn stmt_id_read_and_rewrite() {
        let mut p = vec![COM_STMT_EXECUTE, 1, 0, 0, 0, 0, 1, 0, 0, 0];
        assert_eq!(stmt_id(&p).unwrap(), 1);
        set_stmt_id(&mut p, 0xDEADBEEF).unwrap();
        assert_eq!(stmt_id(&p).unwrap(), 0xDEADBEEF);
        assert!(stmt_id(&[COM_STMT_CLOSE, 1]).is_err());
    }

    #[test]
    fn execute_layout_finds_types() {
        // 2 params: bitmap 1 byte, bound flag 1, types 4 bytes, values
        let mut p = vec![
            COM_STMT_EXECUTE,
            7,
            0,
            0,
            0,
            0,
            1,
            0,
            0,
            0,
            0b10,
            1,
            8,
            0,
            253,
            0,
        ];
        p.extend_from_slice(&[5, 0, 0, 0, 0, 0, 0, 0]);
        let l = execute_layout(&p, 2).unwrap();
        assert_eq!(l.bound_flag_at, Some(11));
        assert!(l.types_bound);
        assert_eq!(execute_types(&p, 2).unwrap(), &[8, 0, 253, 0]);
        p[11] = 0;
        assert!(execute_types(&p, 2).is_err());
        assert!(execute_layout(&p[..11], 2).is_err());
    }

    #[test]
    fn prepare_ok() {
        let p = [0, 9, 0, 0, 0, 3, 0, 2, 0, 0, 1, 0];
        assert_eq!(
            parse_prepare_ok(&p).unwrap(),
            PrepareOk {
                stmt_id: 9,
                columns: 3,
                params: 2,
                warnings: 1
            }
        );
        assert!(parse_prepare_ok(&p[..5]).is_err());
    }
}
