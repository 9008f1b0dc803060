//! Session-state change information carried by OK packets (`CLIENT_SESSION_TRACK`).
//!
//! rwproxy reads two things from it: the GTID a write produced (MariaDB's `last_gtid` system
//! variable, MySQL's `SESSION_TRACK_GTIDS`) and the current schema.

use crate::lenenc;

pub const SYSTEM_VARIABLES: u8 = 0;
pub const SCHEMA: u8 = 1;
pub const STATE_CHANGE: u8 = 2;
pub const GTIDS: u8 = 3;
pub const TRANSACTION_CHARACTERISTICS: u8 = 4;
pub const TRANSACTION_STATE: u8 = 5;

/// The session-state block of an OK packet, iterated lazily. Malformed entries end iteration.
#[derive(Debug, Clone, Copy)]
pub struct SessionChanges<'a> {
    raw: &'a [u8],
}

impl<'a> SessionChanges<'a> {
    pub fn new(raw: &'a [u8]) -> Self {
        Self { raw }
    }

    /// `(type, data)` of every entry.
    pub fn entries(&self) -> impl Iterator<Item = (u8, &'a [u8])> {
        let mut rest = self.raw;
        std::iter::from_fn(move || {
            let (&kind, tail) = rest.split_first()?;
            let (data, used) = lenenc::read_str(tail).ok()?;
            rest = &tail[used..];
            Some((kind, data))
        })
    }

    /// `(name, value)` of every changed system variable.
    pub fn system_variables(&self) -> impl Iterator<Item = (&'a [u8], &'a [u8])> {
        self.entries()
            .filter(|(k, _)| *k == SYSTEM_VARIABLES)
            .filter_map(|(_, data)| {
                let (name, used) = lenenc::read_str(data).ok()?;
                let (value, _) = lenenc::read_str(&data[used..]).ok()?;
                Some((name, value))
            })
    }

    /// The new default schema, if it changed.
    pub fn schema(&self) -> Option<&'a [u8]> {
        self.entries()
            .filter(|(k, _)| *k == SCHEMA)
            .filter_map(|(_, data)| lenenc::read_str(data).ok().map(|(s, _)| s))
            .last()
    }

    /// The GTID this statement produced: MariaDB's `last_gtid` variable, or MySQL's GTID entry
    /// (`encoding byte | lenenc gtid set`). Empty values are skipped.
    pub fn last_gtid(&self) -> Option<&'a [u8]> {
        let mut found = None;
        for (kind, data) in self.entries() {
            match kind {
                SYSTEM_VARIABLES => {
                    if let Ok((name, used)) = lenenc::read_str(data) {
                        if name.eq_ignore_ascii_case(b"last_gtid") {
                            if let Ok((value, _)) = lenenc::read_str(&data[used..]) {
                                if !value.is_empty() {
                                    found = Some(value);
                                }
                            }
                        }
                    }
                }
                GTIDS => {
                    if let Some((_encoding, rest)) = data.split_first() {
                        if let Ok((set, _)) = lenenc::read_str(rest) {
                            if !set.is_empty() {
                                found = Some(set);
                            }
                        }
                    }
                }
                _ => {}
            }
        }
        found
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use bytes::BytesMut;

    fn entry(out: &mut BytesMut, kind: u8, data: &[u8]) {
        out.extend_from_slice(&[kind]);
        lenenc::put_str(out, data);
    }

    #[test]
    fn reads_schema_gtid_and_variables() {
        let mut var = BytesMut::new();
        lenenc::put_str(&mut var, b"last_gtid");
        lenenc::put_str(&mut var, b"0-1-42");
        let mut schema = BytesMut::new();
        lenenc::put_str(&mut schema, b"app");
        let mut raw = BytesMut::new();
        entry(&mut raw, SCHEMA, &schema);
        entry(&mut raw, STATE_CHANGE, b"\x011");
        entry(&mut raw, SYSTEM_VARIABLES, &var);
        let c = SessionChanges::new(&raw);
        assert_eq!(c.schema(), Some(&b"app"[..]));
        assert_eq!(c.last_gtid(), Some(&b"0-1-42"[..]));
        assert_eq!(c.entries().count(), 3);
    }

    #[test]
    fn mysql_gtid_entry() {
        let mut data = BytesMut::new();
        data.extend_from_slice(&[0]);
        lenenc::put_str(&mut data, b"3E11FA47-71CA-11E1-9E33-C80AA9429562:23");
        let mut raw = BytesMut::new();
        entry(&mut raw, GTIDS, &data);
        assert_eq!(
            SessionChanges::new(&raw).last_gtid(),
            Some(&b"3E11FA47-71CA-11E1-9E33-C80AA9429562:23"[..])
        );
    }

    #[test]
    fn garbage_ends_iteration() {
        let c = SessionChanges::new(&[0, 0xFC, 1]);
        assert_eq!(c.entries().count(), 0);
        assert_eq!(c.last_gtid(), None);
    }
}
