//! Small request/response exchanges rwproxy runs itself on a backend connection: replaying
//! session commands, enabling GTID tracking, waiting for a GTID, and the like. The whole
//! response is read and results (if any) are collected as text.

use bytes::Bytes;
use rwproxy_protocol::command::COM_QUERY;
use rwproxy_protocol::response::{Expect, PacketKind, ResponseTracker};
use rwproxy_protocol::{lenenc, reply, StatusFlags};

use crate::{BackendConn, BackendError};

/// The result of a command rwproxy ran itself.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct Outcome {
    /// The first error, if the command failed: `(code, sqlstate, message)`.
    pub error: Option<(u16, [u8; 5], String)>,
    /// Status flags of the final OK or terminator.
    pub status: Option<StatusFlags>,
    /// Text rows of the first result set (NULL as `None`).
    pub rows: Vec<Vec<Option<String>>>,
    /// The GTID the command produced, from session-state tracking.
    pub last_gtid: Option<String>,
}

impl Outcome {
    pub fn is_ok(&self) -> bool {
        self.error.is_none()
    }
}

impl BackendConn {
    /// Sends one command packet (sequence id 0) and reads its whole response.
    pub async fn exchange(
        &mut self,
        payload: &[u8],
        expect: Expect,
    ) -> Result<Outcome, BackendError> {
        self.settle().await?;
        let mut seq = 0u8;
        self.stream()
            .write_packet(&mut seq, payload)
            .await
            .map_err(|e| self.lost(e))?;
        self.read_response(expect).await
    }

    /// Sends a one-packet command (`COM_PING`) without waiting for its answer: the server's
    /// session sees it in order, the answer is read and dropped by [`BackendConn::settle`]
    /// before the connection is used again.
    pub async fn send_deferred(&mut self, payload: &[u8]) -> Result<(), BackendError> {
        let mut seq = 0u8;
        self.stream()
            .write_packet(&mut seq, payload)
            .await
            .map_err(|e| self.lost(e))?;
        self.deferred += 1;
        Ok(())
    }

    /// Whether answers to deferred commands are still to be read.
    pub fn has_deferred(&self) -> bool {
        self.deferred > 0
    }

    /// Reads and drops the answers to deferred commands (one packet each).
    pub async fn settle(&mut self) -> Result<(), BackendError> {
        while self.deferred > 0 {
            self.read_response(Expect::OnePacket).await?;
            self.deferred -= 1;
        }
        Ok(())
    }

    /// Runs a text query and reads its whole response.
    pub async fn query(&mut self, sql: &str) -> Result<Outcome, BackendError> {
        let mut payload = Vec::with_capacity(sql.len() + 1);
        payload.push(COM_QUERY);
        payload.extend_from_slice(sql.as_bytes());
        self.exchange(&payload, Expect::ResultSet).await
    }

    /// Reads a whole response to a command already sent.
    pub async fn read_response(&mut self, expect: Expect) -> Result<Outcome, BackendError> {
        let deprecate_eof = self.deprecate_eof();
        let caps = self.capabilities();
        let mut tracker = ResponseTracker::new(expect, deprecate_eof);
        let mut out = Outcome::default();
        let mut result_index = 0usize;
        while !tracker.is_done() {
            let (_, pkt): (u8, Bytes) = self
                .stream()
                .read_packet()
                .await
                .map_err(|e| self.lost(e))?;
            let step = tracker
                .on_packet(&pkt, pkt.len())
                .map_err(|e| BackendError::Protocol {
                    backend: self.name().to_string(),
                    what: e.to_string(),
                })?;
            match step.kind {
                PacketKind::Ok | PacketKind::Terminator => {
                    if let Ok(ok) = reply::parse_ok(&pkt, caps) {
                        if let Some(g) = ok.session_changes().last_gtid() {
                            out.last_gtid = Some(String::from_utf8_lossy(g).into_owned());
                        }
                    }
                }
                PacketKind::Err if out.error.is_none() => {
                    if let Ok(e) = reply::parse_err(&pkt) {
                        out.error = Some((
                            e.code,
                            e.sql_state,
                            String::from_utf8_lossy(e.message).into_owned(),
                        ));
                    }
                }
                PacketKind::LocalInfile => {
                    return Err(BackendError::Protocol {
                        backend: self.name().to_string(),
                        what: "unexpected LOCAL INFILE request to a command rwproxy ran itself"
                            .into(),
                    });
                }
                PacketKind::ColumnCount => result_index += 1,
                PacketKind::Row if result_index == 1 => out.rows.push(parse_text_row(&pkt)),
                _ => {}
            }
            if step.done {
                out.status = tracker.last_status();
            }
        }
        Ok(out)
    }
}

/// Splits a text-protocol row into its columns.
fn parse_text_row(mut row: &[u8]) -> Vec<Option<String>> {
    let mut cols = Vec::new();
    while !row.is_empty() {
        if row[0] == 0xFB {
            cols.push(None);
            row = &row[1..];
            continue;
        }
        match lenenc::read_str(row) {
            Ok((s, used)) => {
                cols.push(Some(String::from_utf8_lossy(s).into_owned()));
                row = &row[used..];
            }
            Err(_) => break,
        }
    }
    cols
}
