//! Where a server's response to a command ends.
//!
//! rwproxy relays responses packet by packet without buffering them, so it must know, from each
//! packet's first bytes, whether more packets follow: result sets (column count, column
//! definitions, optional EOF, rows, terminator), multi-results (`SERVER_MORE_RESULTS_EXISTS`),
//! `LOCAL INFILE` requests, prepared-statement replies, cursors and single-packet replies.

use crate::reply::{self, EOF_HEADER, ERR_HEADER, LOCAL_INFILE_HEADER, OK_HEADER};
use crate::{lenenc, ProtocolError, StatusFlags};

/// What kind of response a command gets.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Expect {
    /// `COM_QUERY` (text rows) and `COM_STMT_EXECUTE` (binary rows): OK, ERR, LOCAL INFILE or
    /// result sets, possibly several.
    ResultSet,
    /// `COM_STMT_PREPARE`.
    Prepare,
    /// `COM_FIELD_LIST`: column definitions up to a terminator.
    FieldList,
    /// `COM_STMT_FETCH`: rows up to a terminator.
    Fetch,
    /// Exactly one packet, whatever it holds (OK, ERR, EOF, or `COM_STATISTICS`' string).
    OnePacket,
    /// No response at all (`COM_STMT_CLOSE`, `COM_STMT_SEND_LONG_DATA`, `COM_QUIT`).
    Nothing,
}

/// What one packet of a response was.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum PacketKind {
    /// An OK packet (header `0x00` outside rows); its payload can be parsed for session state.
    Ok,
    /// An ERR packet.
    Err,
    /// An EOF packet or `0xFE` OK terminating a list of columns or rows.
    Terminator,
    /// `LOCAL INFILE` request: the client must now send the file, ending with an empty packet.
    LocalInfile,
    /// The `COM_STMT_PREPARE` OK packet (carries the statement id).
    PrepareOk,
    /// The column count that starts a result set.
    ColumnCount,
    /// A column (or parameter) definition.
    Column,
    /// A row (text or binary).
    Row,
    /// Anything else (e.g. the `COM_STATISTICS` string).
    Data,
}

/// The outcome of feeding one packet to the tracker.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Step {
    pub kind: PacketKind,
    /// The whole response (all result sets) is complete with this packet.
    pub done: bool,
}

/// A `0xFE` packet of this length ends a list of rows or columns: the old EOF is 5 bytes; with
/// `CLIENT_DEPRECATE_EOF` it is an OK packet, shorter than a full chunk (a row starting with
/// `0xFE` holds a value of 16 MiB or more, so it fills a whole chunk).
#[inline]
fn is_terminator(len: usize, deprecate_eof: bool) -> bool {
    len < 9 || (deprecate_eof && len < crate::frame::MAX_CHUNK)
}

/// MariaDB's progress report: an ERR header with error code 0xFFFF.
#[inline]
fn is_progress_report(payload: &[u8]) -> bool {
    matches!(payload, [ERR_HEADER, 0xFF, 0xFF, ..])
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum State {
    First,
    Columns { left: u64 },
    ColumnsEof,
    Rows,
    PrepareParams { left: u16, columns: u16 },
    PrepareParamsEof { columns: u16 },
    PrepareColumns { left: u16 },
    PrepareColumnsEof,
    FieldList,
    Fetch,
    Finished,
}

/// Follows one response, packet by packet.
#[derive(Debug, Clone)]
pub struct ResponseTracker {
    expect: Expect,
    state: State,
    deprecate_eof: bool,
    status: Option<StatusFlags>,
}

impl ResponseTracker {
    pub fn new(expect: Expect, deprecate_eof: bool) -> Self {
        let state = match expect {
            Expect::ResultSet | Expect::Prepare | Expect::OnePacket => State::First,
            Expect::FieldList => State::FieldList,
            Expect::Fetch => State::Fetch,
            Expect::Nothing => State::Finished,
        };
        Self {
            expect,
            state,
            deprecate_eof,
            status: None,
        }
    }

    /// Whether the response is complete.
    pub fn is_done(&self) -> bool {
        self.state == State::Finished
    }

    /// Status flags of the last OK or terminator seen (transaction state, more results, cursor).
    pub fn last_status(&self) -> Option<StatusFlags> {
        self.status
    }

    fn end(&mut self, kind: PacketKind, status: Option<StatusFlags>) -> Step {
        if let Some(s) = status {
            self.status = Some(s);
            if s.contains(StatusFlags::SERVER_MORE_RESULTS_EXISTS)
                && self.expect == Expect::ResultSet
            {
                self.state = State::First;
                return Step { kind, done: false };
            }
        }
        self.state = State::Finished;
        Step { kind, done: true }
    }

    fn more(&mut self, kind: PacketKind, next: State) -> Step {
        self.state = next;
        Step { kind, done: false }
    }

    fn terminator_status(&self, payload: &[u8]) -> Result<StatusFlags, ProtocolError> {
        reply::status_of_terminator(payload, self.deprecate_eof)
    }

    /// Feeds the next logical packet. `payload` may be just a prefix of it when the packet is
    /// large (over a few KiB: rows or column definitions, never OK/ERR/EOF packets, which are
    /// small); `len` is the packet's full payload length.
    pub fn on_packet(&mut self, payload: &[u8], len: usize) -> Result<Step, ProtocolError> {
        let first = payload.first().copied();
        if self.state != State::Finished && is_progress_report(payload) {
            // MariaDB's progress report (only to clients that asked for them): more follows.
            return Ok(Step {
                kind: PacketKind::Data,
                done: false,
            });
        }
        match self.state {
            State::Finished => Err(ProtocolError::Unexpected(
                "packet after the end of a response",
            )),
            State::First if self.expect == Expect::OnePacket => {
                let status = match first {
                    Some(OK_HEADER) if payload.len() >= 7 => {
                        Some(reply::parse_ok(payload, crate::CapabilityFlags::empty())?.status)
                    }
                    _ => None,
                };
                self.state = State::Finished;
                self.status = status.or(self.status);
                let kind = match first {
                    Some(OK_HEADER) => PacketKind::Ok,
                    Some(ERR_HEADER) => PacketKind::Err,
                    Some(EOF_HEADER) => PacketKind::Terminator,
                    _ => PacketKind::Data,
                };
                Ok(Step { kind, done: true })
            }
            State::First if self.expect == Expect::Prepare => match first {
                Some(OK_HEADER) => {
                    let ok = crate::command::parse_prepare_ok(payload)?;
                    let next = if ok.params > 0 {
                        State::PrepareParams {
                            left: ok.params,
                            columns: ok.columns,
                        }
                    } else if ok.columns > 0 {
                        State::PrepareColumns { left: ok.columns }
                    } else {
                        State::Finished
                    };
                    self.state = next;
                    Ok(Step {
                        kind: PacketKind::PrepareOk,
                        done: next == State::Finished,
                    })
                }
                Some(ERR_HEADER) => Ok(self.end(PacketKind::Err, None)),
                _ => Err(ProtocolError::Unexpected("reply to COM_STMT_PREPARE")),
            },
            State::First => match first {
                Some(OK_HEADER) => {
                    let status = reply::parse_ok(payload, crate::CapabilityFlags::empty())?.status;
                    Ok(self.end(PacketKind::Ok, Some(status)))
                }
                Some(ERR_HEADER) => Ok(self.end(PacketKind::Err, None)),
                Some(LOCAL_INFILE_HEADER) => Ok(self.more(PacketKind::LocalInfile, State::First)),
                Some(_) => {
                    let (columns, used) = lenenc::read_int(payload)?;
                    if columns == 0 {
                        return Err(ProtocolError::Malformed("result set with no columns"));
                    }
                    // MariaDB's metadata caching (MARIADB_CLIENT_CACHE_METADATA) adds one byte:
                    // 0 when the column definitions are left out. Their EOF is still sent to a
                    // client without CLIENT_DEPRECATE_EOF (Connector/C 3.3 negotiates so).
                    if payload.get(used) == Some(&0) && len == used + 1 {
                        let next = if self.deprecate_eof {
                            State::Rows
                        } else {
                            State::ColumnsEof
                        };
                        return Ok(self.more(PacketKind::ColumnCount, next));
                    }
                    Ok(self.more(PacketKind::ColumnCount, State::Columns { left: columns }))
                }
                None => Err(ProtocolError::Truncated("empty reply")),
            },
            State::Columns { left } => {
                if first == Some(ERR_HEADER) {
                    return Ok(self.end(PacketKind::Err, None));
                }
                let next = if left > 1 {
                    State::Columns { left: left - 1 }
                } else if self.deprecate_eof {
                    State::Rows
                } else {
                    State::ColumnsEof
                };
                Ok(self.more(PacketKind::Column, next))
            }
            State::ColumnsEof => {
                if first != Some(EOF_HEADER) {
                    return Err(ProtocolError::Unexpected(
                        "missing EOF after column definitions",
                    ));
                }
                let status = self.terminator_status(payload)?;
                if status.contains(StatusFlags::SERVER_STATUS_CURSOR_EXISTS) {
                    // A cursor was opened: rows come later through COM_STMT_FETCH.
                    return Ok(self.end(PacketKind::Terminator, Some(status)));
                }
                self.status = Some(status);
                Ok(self.more(PacketKind::Terminator, State::Rows))
            }
            State::Rows | State::Fetch | State::FieldList => match first {
                Some(ERR_HEADER) => Ok(self.end(PacketKind::Err, None)),
                Some(EOF_HEADER) if is_terminator(len, self.deprecate_eof) => {
                    let status = self.terminator_status(payload)?;
                    Ok(self.end(PacketKind::Terminator, Some(status)))
                }
                _ => Ok(Step {
                    kind: if self.state == State::FieldList {
                        PacketKind::Column
                    } else {
                        PacketKind::Row
                    },
                    done: false,
                }),
            },
            State::PrepareParams { left, columns } => {
                let next = if left > 1 {
                    State::PrepareParams {
                        left: left - 1,
                        columns,
                    }
                } else if !self.deprecate_eof {
                    State::PrepareParamsEof { columns }
                } else if columns > 0 {
                    State::PrepareColumns { left: columns }
                } else {
                    State::Finished
                };
                self.state = next;
                Ok(Step {
                    kind: PacketKind::Column,
                    done: next == State::Finished,
                })
            }
            State::PrepareParamsEof { columns } => {
                if first != Some(EOF_HEADER) {
                    return Err(ProtocolError::Unexpected(
                        "missing EOF after parameter definitions",
                    ));
                }
                let next = if columns > 0 {
                    State::PrepareColumns { left: columns }
                } else {
                    State::Finished
                };
                self.state = next;
                Ok(Step {
                    kind: PacketKind::Terminator,
                    done: next == State::Finished,
                })
            }
            State::PrepareColumns { left } => {
                let next = if left > 1 {
                    State::PrepareColumns { left: left - 1 }
                } else if !self.deprecate_eof {
                    State::PrepareColumnsEof
                } else {
                    State::Finished
                };
                self.state = next;
                Ok(Step {
                    kind: PacketKind::Column,
                    done: next == State::Finished,
                })
            }
            State::PrepareColumnsEof => {
                if first != Some(EOF_HEADER) {
                    return Err(ProtocolError::Unexpected(
                        "missing EOF after column definitions",
                    ));
                }
                self.state = State::Finished;
                Ok(Step {
                    kind: PacketKind::Terminator,
                    done: true,
                })
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::reply::{encode_eof, encode_err, encode_ok};
    use bytes::BytesMut;

    fn ok(status: StatusFlags) -> Vec<u8> {
        let mut b = BytesMut::new();
        encode_ok(&mut b, 0, 0, status, 0);
        b.to_vec()
    }
    fn eof(status: StatusFlags) -> Vec<u8> {
        let mut b = BytesMut::new();
        encode_eof(&mut b, 0, status);
        b.to_vec()
    }
    fn term_ok(status: StatusFlags) -> Vec<u8> {
        let mut v = ok(status);
        v[0] = 0xFE;
        v
    }
    fn err() -> Vec<u8> {
        let mut b = BytesMut::new();
        encode_err(&mut b, 1064, b"42000", "syntax");
        b.to_vec()
    }

    fn feed(t: &mut ResponseTracker, packets: &[Vec<u8>]) -> Vec<Step> {
        packets
            .iter()
            .map(|p| t.on_packet(p, p.len()).unwrap())
            .collect()
    }

    const NONE: StatusFlags = StatusFlags::empty();
    const MORE: StatusFlags = StatusFlags::SERVER_MORE_RESULTS_EXISTS;

    #[test]
    fn ok_and_err_end_a_query() {
        let mut t = ResponseTracker::new(Expect::ResultSet, false);
        assert!(feed(&mut t, &[ok(NONE)])[0].done);
        let mut t = ResponseTracker::new(Expect::ResultSet, false);
        assert_eq!(
            feed(&mut t, &[err()])[0],
            Step {
                kind: PacketKind::Err,
                done: true
            }
        );
    }

    #[test]
    fn progress_reports_do_not_end_a_response() {
        let progress = vec![0xFF, 0xFF, 0xFF, 1, 1, 0x10, 0x27, 0, 0];
        let mut t = ResponseTracker::new(Expect::ResultSet, true);
        let steps = feed(&mut t, &[progress.clone(), progress, ok(NONE)]);
        assert_eq!(steps[0].kind, PacketKind::Data);
        assert!(!steps[0].done && !steps[1].done && steps[2].done);
    }

    #[test]
    fn cached_metadata_skips_column_definitions() {
        // MARIADB_CLIENT_CACHE_METADATA: count 2, then 0 = "no metadata follows": no column
        // definitions; the EOF after them stays without CLIENT_DEPRECATE_EOF (as MariaDB sends
        // it to Connector/C 3.3).
        for deprecate_eof in [false, true] {
            let mut t = ResponseTracker::new(Expect::ResultSet, deprecate_eof);
            let mut packets = vec![vec![2, 0]];
            if !deprecate_eof {
                packets.push(eof(NONE));
            }
            packets.push(vec![0, 0, 1, 2]);
            packets.push(if deprecate_eof {
                term_ok(NONE)
            } else {
                eof(NONE)
            });
            let steps = feed(&mut t, &packets);
            let row = if deprecate_eof { 1 } else { 2 };
            assert_eq!(steps[row].kind, PacketKind::Row);
            assert!(steps.last().is_some_and(|s| s.done));
            assert!(steps[..steps.len() - 1].iter().all(|s| !s.done));
            // 1 = "metadata follows": the usual shape.
            let mut t = ResponseTracker::new(Expect::ResultSet, deprecate_eof);
            let mut packets = vec![vec![1, 1], b"coldef".to_vec()];
            if !deprecate_eof {
                packets.push(eof(NONE));
            }
            packets.push(vec![0, 0, 7]);
            packets.push(if deprecate_eof {
                term_ok(NONE)
            } else {
                eof(NONE)
            });
            let steps = feed(&mut t, &packets);
            assert_eq!(steps[1].kind, PacketKind::Column);
            assert!(steps.last().is_some_and(|s| s.done));
        }
    }

    #[test]
    fn classic_result_set() {
        let mut t = ResponseTracker::new(Expect::ResultSet, false);
        let steps = feed(
            &mut t,
            &[
                vec![2],
                b"coldef1".to_vec(),
                b"coldef2".to_vec(),
                eof(NONE),
                vec![1, b'a', 1, b'b'],
                vec![0xFB, 0xFB],
                eof(NONE),
            ],
        );
        assert!(steps[..6].iter().all(|s| !s.done));
        assert!(steps[6].done);
        assert!(t.is_done());
    }

    #[test]
    fn deprecate_eof_result_set_and_row_starting_with_fe() {
        let mut t = ResponseTracker::new(Expect::ResultSet, true);
        // a row whose first column is a lenenc string of 8-byte length starts with 0xFE but is long
        let mut big_row = vec![0xFE];
        big_row.extend_from_slice(&[0u8; 20]);
        let steps = feed(
            &mut t,
            &[vec![1], b"coldef".to_vec(), vec![1, b'x'], term_ok(NONE)],
        );
        assert!(steps[3].done);
        let mut t = ResponseTracker::new(Expect::ResultSet, false);
        let steps = feed(
            &mut t,
            &[
                vec![1],
                b"c".to_vec(),
                eof(NONE),
                big_row.clone(),
                eof(NONE),
            ],
        );
        assert!(!steps[3].done);
        assert!(steps[4].done);
    }

    #[test]
    fn multi_results_continue_until_last() {
        let mut t = ResponseTracker::new(Expect::ResultSet, false);
        let steps = feed(
            &mut t,
            &[
                ok(MORE),
                vec![1],
                b"c".to_vec(),
                eof(NONE),
                vec![1, b'1'],
                eof(MORE),
                ok(NONE),
            ],
        );
        assert!(steps[..6].iter().all(|s| !s.done), "{steps:?}");
        assert!(steps[6].done);
    }

    #[test]
    fn error_in_the_middle_of_rows() {
        let mut t = ResponseTracker::new(Expect::ResultSet, true);
        let steps = feed(&mut t, &[vec![1], b"c".to_vec(), vec![1, b'1'], err()]);
        assert_eq!(
            steps[3],
            Step {
                kind: PacketKind::Err,
                done: true
            }
        );
    }

    #[test]
    fn local_infile_then_ok() {
        let mut t = ResponseTracker::new(Expect::ResultSet, false);
        let s = t
            .on_packet(b"\xFB/tmp/file.csv", (b"\xFB/tmp/file.csv").len())
            .unwrap();
        assert_eq!(
            s,
            Step {
                kind: PacketKind::LocalInfile,
                done: false
            }
        );
        assert!(t.on_packet(&ok(NONE), ok(NONE).len()).unwrap().done);
    }

    #[test]
    fn prepare_with_params_and_columns() {
        for deprecate in [false, true] {
            let mut t = ResponseTracker::new(Expect::Prepare, deprecate);
            let mut packets = vec![vec![0, 1, 0, 0, 0, 2, 0, 1, 0, 0, 0, 0], b"param".to_vec()];
            if !deprecate {
                packets.push(eof(NONE));
            }
            packets.push(b"col1".to_vec());
            packets.push(b"col2".to_vec());
            if !deprecate {
                packets.push(eof(NONE));
            }
            let steps = feed(&mut t, &packets);
            assert_eq!(steps[0].kind, PacketKind::PrepareOk);
            assert!(steps[..steps.len() - 1].iter().all(|s| !s.done));
            assert!(steps.last().unwrap().done, "deprecate={deprecate}");
        }
        let mut t = ResponseTracker::new(Expect::Prepare, false);
        assert!(
            t.on_packet(
                &[0, 1, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0],
                [0, 1, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0].len()
            )
            .unwrap()
            .done
        );
    }

    #[test]
    fn cursor_ends_after_metadata() {
        let mut t = ResponseTracker::new(Expect::ResultSet, false);
        let steps = feed(
            &mut t,
            &[
                vec![1],
                b"c".to_vec(),
                eof(StatusFlags::SERVER_STATUS_CURSOR_EXISTS),
            ],
        );
        assert!(steps[2].done);
        let mut t = ResponseTracker::new(Expect::Fetch, false);
        let steps = feed(
            &mut t,
            &[vec![0, 0, 1], eof(StatusFlags::SERVER_STATUS_LAST_ROW_SENT)],
        );
        assert!(steps[1].done);
    }

    #[test]
    fn one_packet_and_nothing() {
        let mut t = ResponseTracker::new(Expect::OnePacket, false);
        assert!(
            t.on_packet(b"Uptime: 10  Threads: 1", (b"Uptime: 10  Threads: 1").len())
                .unwrap()
                .done
        );
        assert!(t.on_packet(b"more", (b"more").len()).is_err());
        assert!(ResponseTracker::new(Expect::Nothing, false).is_done());
    }

    #[test]
    fn garbage_is_an_error_not_a_panic() {
        let mut t = ResponseTracker::new(Expect::ResultSet, false);
        assert!(t.on_packet(&[], 0).is_err());
        let mut t = ResponseTracker::new(Expect::ResultSet, false);
        assert!(t.on_packet(&[0xFC], [0xFC].len()).is_err());
        let mut t = ResponseTracker::new(Expect::Prepare, false);
        assert!(t.on_packet(&[0x00, 1], [0x00, 1].len()).is_err());
    }
}
