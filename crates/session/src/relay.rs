//! Streams a backend's response to the client, packet by packet.
//!
//! Complete packets are passed on straight from the backend's read buffer (no copy into an
//! intermediate buffer, no re-encoding); only the first bytes of each packet are examined by
//! the [`ResponseTracker`] to find where the response ends. A packet larger than the buffer is
//! passed on as its bytes arrive, so memory stays bounded whatever the result size. The few
//! packets that must change (a prepared statement's id, session-state information a client did
//! not ask for) are rewritten into a reused scratch buffer.

use std::collections::HashMap;

use bytes::BytesMut;
use rwproxy_protocol::command::{self, PrepareOk};
use rwproxy_protocol::frame::{self, HEADER_LEN, MAX_CHUNK};
use rwproxy_protocol::response::{Expect, PacketKind, ResponseTracker};
use rwproxy_protocol::{reply, CapabilityFlags, StatusFlags};
use rwproxy_sql::connection_id::Substituted;
use rwproxy_transport::{PacketStream, TransportError};

use crate::coldef;
use crate::processlist::{self, ProcessList};
use crate::replay::{Checksum, ResultChecksum};
use crate::session_status::{self, ClientHop, StatusColumn};

/// System variables rwproxy has its backend connections track beyond the server's default list
/// (`last_gtid` for read-your-writes, `sql_mode` for how statement text is read, `wait_timeout`
/// for when an idle client is closed); clients that did not ask for them do not see them.
pub const OWN_TRACKED: &[&[u8]] = &[b"last_gtid", b"sql_mode", b"wait_timeout"];

/// Packets up to this size are examined whole (OK, ERR, EOF and LOCAL INFILE requests are far
/// smaller); larger ones by their first bytes.
pub(crate) const WHOLE_PACKET_LIMIT: usize = 64 * 1024;
/// How much of a large packet must be buffered before it is classified.
pub(crate) const PREFIX_LEN: usize = 16;

#[derive(Debug, Clone, Copy)]
pub struct RelayOptions<'a> {
    pub expect: Expect,
    pub deprecate_eof: bool,
    /// The backend connection negotiated `CLIENT_SESSION_TRACK`.
    pub backend_session_track: bool,
    /// The client did not: session-state information is removed from OK packets.
    pub strip_session_state: bool,
    /// The client tracks session state but did not ask for the variables rwproxy tracks for
    /// itself ([`OWN_TRACKED`]): their entries are removed from OK packets.
    pub hide_own_tracking: bool,
    /// Replace the statement id in a `COM_STMT_PREPARE` OK with this one.
    pub rewrite_stmt_id: Option<u32>,
    /// The statement reads the process list: ids of threads owned by rwproxy sessions (thread
    /// id → session id) are rewritten (see [`crate::processlist`]).
    pub process_list: Option<(ProcessList, &'a HashMap<u32, u32>)>,
    /// The statement had `CONNECTION_ID()` replaced: column names are mapped back.
    pub column_names: Option<&'a Substituted>,
    /// The statement reads session status: the variables that describe the client's own
    /// connection show it (see [`crate::session_status`]).
    pub client_hop: Option<&'a ClientHop>,
    /// Compute a checksum of the response (transaction replay records it).
    pub checksum: bool,
}

/// What the relay learned from the response.
#[derive(Debug, Default)]
pub struct RelayOutcome {
    /// Status flags of the last OK or terminator (transaction state).
    pub status: Option<StatusFlags>,
    /// The GTID the statement produced.
    pub last_gtid: Option<String>,
    /// The session's new `sql_mode`, when the statement changed it.
    pub sql_mode: Option<String>,
    /// The session's new `wait_timeout` (seconds), when the statement changed it.
    pub wait_timeout: Option<String>,
    /// The new default schema, when the statement changed it.
    pub schema: Option<String>,
    pub prepare_ok: Option<PrepareOk>,
    /// The code of the error that ended the response, if any.
    pub error_code: Option<u16>,
    /// Whether any OK packet (a statement that completed) was seen.
    pub saw_ok: bool,
    /// Warnings reported by the last OK packet.
    pub warnings: u16,
    /// Rows relayed (of every result set of the response).
    pub rows: u64,
    /// Rows of the last result set (what `FOUND_ROWS()` says after a plain `SELECT`).
    pub last_result_rows: u64,
    /// A result set was sent (after it `ROW_COUNT()` is -1).
    pub result_set: bool,
    /// Affected rows of the last OK packet.
    pub affected_rows: u64,
    /// The last non-zero insert id of an OK packet (what `LAST_INSERT_ID()` says afterwards).
    pub insert_id: u64,
    /// The checksum of the response, when [`RelayOptions::checksum`] asked for it.
    pub checksum: Option<Checksum>,
    /// The server asked for a `LOCAL INFILE` file (sent by the client, not recorded).
    pub local_infile: bool,
}

/// Which side failed during a relay.
#[derive(Debug)]
pub enum RelayError {
    /// The backend went away or sent something unparseable. `sent_to_client` tells whether any
    /// byte of the response already reached the client (if not, a retry elsewhere is safe).
    Backend {
        source: TransportError,
        sent_to_client: bool,
        last_seq: u8,
    },
    /// The client went away; the backend connection is mid-response and must be discarded.
    Client(TransportError),
}

/// How far a relay got; readable after the relay was abandoned (a backend the monitor declared
/// down while the relay waited on it).
#[derive(Debug, Default, Clone, Copy)]
pub struct Progress {
    /// Some byte of the response reached the client.
    pub sent: bool,
    /// Sequence id of the last packet passed on.
    pub last_seq: u8,
}

/// Relays one whole response from `backend` to `client`.
pub async fn relay_response(
    backend: &mut PacketStream,
    client: &mut PacketStream,
    opts: RelayOptions<'_>,
    scratch: &mut BytesMut,
    progress: &mut Progress,
) -> Result<RelayOutcome, RelayError> {
    let mut tracker = ResponseTracker::new(opts.expect, opts.deprecate_eof);
    let mut out = RelayOutcome::default();
    if tracker.is_done() {
        return Ok(out);
    }
    // Only while transaction replay records: nothing to do per packet otherwise.
    let mut checksum = opts.checksum.then(ResultChecksum::default);
    // Bytes of a physical packet still to pass through unexamined.
    let mut passthrough = 0usize;
    // The current logical packet continues in the next physical packet.
    let mut continuation = false;
    // Process-list statements: the current result set's column index, and its id columns.
    let mut column = 0usize;
    let mut id_columns: Vec<usize> = Vec::new();
    // Where the search for the next column's name in the sent statement goes on.
    let mut name_cursor = 0usize;
    // Session-status statements: the name and value columns of the current result set.
    let mut status_columns: (Option<usize>, Option<usize>) = (None, None);
    let backend_caps = if opts.backend_session_track {
        CapabilityFlags::CLIENT_SESSION_TRACK
    } else {
        CapabilityFlags::empty()
    };
    loop {
        let mut infile = false;
        let mut done = false;
        {
            let buf = backend.buffered();
            let mut pos = 0usize;
            let mut forward_from = 0usize;
            if passthrough > 0 {
                let n = passthrough.min(buf.len());
                if let Some(c) = checksum.as_mut() {
                    c.more(&buf[..n]);
                }
                pos += n;
                passthrough -= n;
            }
            while passthrough == 0 && !done && !infile {
                let Some((len, seq)) = frame::peek_header(&buf[pos..]) else {
                    break;
                };
                let avail = buf.len() - pos - HEADER_LEN;
                let whole = avail >= len;
                if continuation {
                    continuation = len == MAX_CHUNK;
                    if let Some(c) = checksum.as_mut() {
                        let start = pos + HEADER_LEN;
                        c.continuation(len, &buf[start..start + len.min(avail)]);
                    }
                } else {
                    if !whole && (len <= WHOLE_PACKET_LIMIT || avail < PREFIX_LEN) {
                        break;
                    }
                    let start = pos + HEADER_LEN;
                    let payload = &buf[start..start + len.min(avail)];
                    let step =
                        tracker
                            .on_packet(payload, len)
                            .map_err(|e| RelayError::Backend {
                                source: TransportError::Protocol(e),
                                sent_to_client: progress.sent || pos > forward_from,
                                last_seq: progress.last_seq,
                            })?;
                    continuation = len == MAX_CHUNK;
                    if let Some(c) = checksum.as_mut() {
                        c.packet(step.kind, len, payload);
                    }
                    let mut rewritten = false;
                    if step.kind == PacketKind::Row {
                        out.rows += 1;
                        out.last_result_rows += 1;
                    }
                    match step.kind {
                        PacketKind::Ok | PacketKind::Terminator if whole && len >= 5 => {
                            if step.kind == PacketKind::Ok {
                                out.saw_ok = true;
                            }
                            let is_ok_format = payload[0] == 0 || opts.deprecate_eof;
                            if !is_ok_format && len >= 5 {
                                // An EOF packet: its warnings.
                                out.warnings = u16::from_le_bytes([payload[1], payload[2]]);
                            }
                            if is_ok_format && len >= 7 {
                                if let Ok(ok) = reply::parse_ok(payload, backend_caps) {
                                    out.warnings = ok.warnings;
                                    if step.kind == PacketKind::Ok {
                                        out.affected_rows = ok.affected_rows;
                                        if ok.last_insert_id != 0 {
                                            out.insert_id = ok.last_insert_id;
                                        }
                                    }
                                    if opts.backend_session_track && !ok.session_state.is_empty() {
                                        let changes = ok.session_changes();
                                        if let Some(g) = changes.last_gtid() {
                                            out.last_gtid =
                                                Some(String::from_utf8_lossy(g).into_owned());
                                        }
                                        for (name, value) in changes.system_variables() {
                                            let value = || {
                                                Some(String::from_utf8_lossy(value).into_owned())
                                            };
                                            match name {
                                                b"sql_mode" => out.sql_mode = value(),
                                                b"wait_timeout" => out.wait_timeout = value(),
                                                _ => {}
                                            }
                                        }
                                        if let Some(s) = changes.schema() {
                                            out.schema =
                                                Some(String::from_utf8_lossy(s).into_owned());
                                        }
                                    }
                                }
                                if !opts.backend_session_track {
                                    // Nothing to strip.
                                } else if opts.strip_session_state {
                                    scratch.clear();
                                    if let Ok(true) = reply::strip_session_state(payload, scratch) {
                                        rewritten = true;
                                    }
                                } else if opts.hide_own_tracking {
                                    if let Ok(true) =
                                        reply::strip_system_variables(payload, OWN_TRACKED, scratch)
                                    {
                                        rewritten = true;
                                    }
                                }
                            }
                        }
                        PacketKind::Err => {
                            out.error_code = reply::parse_err(payload).ok().map(|e| e.code);
                        }
                        PacketKind::PrepareOk => {
                            out.prepare_ok = command::parse_prepare_ok(payload).ok();
                            if let Some(id) = opts.rewrite_stmt_id {
                                scratch.clear();
                                scratch.extend_from_slice(payload);
                                let _ = command::set_stmt_id(scratch, id);
                                rewritten = true;
                            }
                        }
                        PacketKind::LocalInfile => {
                            infile = true;
                            out.local_infile = true;
                        }
                        PacketKind::ColumnCount => {
                            out.result_set = true;
                            out.last_result_rows = 0;
                            column = 0;
                            id_columns.clear();
                            name_cursor = 0;
                            status_columns = (None, None);
                        }
                        PacketKind::Column => {
                            if let Some((form, _)) = opts.process_list {
                                if whole && processlist::is_process_id_column(payload, form) {
                                    id_columns.push(column);
                                }
                            }
                            if opts.client_hop.is_some() && whole {
                                match session_status::status_column(payload) {
                                    Some(StatusColumn::Name) => status_columns.0 = Some(column),
                                    Some(StatusColumn::Value) => status_columns.1 = Some(column),
                                    None => {}
                                }
                            }
                            column += 1;
                            if let Some(names) = opts.column_names.filter(|_| whole) {
                                if let Some(n) = coldef::names(payload) {
                                    if let Some(original) =
                                        names.original_name(n.name, &mut name_cursor)
                                    {
                                        coldef::with_name(payload, &n, &original, scratch);
                                        rewritten = true;
                                    }
                                }
                            }
                        }
                        PacketKind::Row if whole && len < MAX_CHUNK && !id_columns.is_empty() => {
                            if let Some((_, owners)) = opts.process_list {
                                rewritten =
                                    processlist::rewrite_row(payload, &id_columns, owners, scratch);
                            }
                        }
                        PacketKind::Row if whole && len < MAX_CHUNK => {
                            if let (Some(hop), (Some(name), Some(value))) =
                                (opts.client_hop, status_columns)
                            {
                                rewritten =
                                    session_status::rewrite_row(payload, name, value, hop, scratch);
                            }
                        }
                        _ => {}
                    }
                    if rewritten {
                        // Pass on what came before, then the rewritten packet in its place.
                        client
                            .write_raw(&buf[forward_from..pos])
                            .await
                            .map_err(RelayError::Client)?;
                        let mut s = seq;
                        let payload_copy = std::mem::take(scratch);
                        client.queue_packet(&mut s, &payload_copy);
                        *scratch = payload_copy;
                        forward_from = pos + HEADER_LEN + len;
                        progress.sent = true;
                    }
                    if step.done {
                        done = true;
                    }
                }
                progress.last_seq = seq;
                if whole {
                    pos += HEADER_LEN + len;
                } else {
                    passthrough = len - avail;
                    pos = buf.len();
                }
            }
            if pos > forward_from {
                client
                    .write_raw(&buf[forward_from..pos])
                    .await
                    .map_err(RelayError::Client)?;
                progress.sent = true;
            }
            backend.consume(pos);
        }
        if done {
            client.flush().await.map_err(RelayError::Client)?;
            out.status = tracker.last_status();
            out.checksum = checksum.take().map(ResultChecksum::finish);
            if !backend.buffered().is_empty() {
                return Err(RelayError::Backend {
                    source: TransportError::Protocol(rwproxy_protocol::ProtocolError::Unexpected(
                        "data after the end of a response",
                    )),
                    sent_to_client: true,
                    last_seq: progress.last_seq,
                });
            }
            return Ok(out);
        }
        if infile {
            client.flush().await.map_err(RelayError::Client)?;
            pump_local_infile(client, backend).await?;
            continue;
        }
        match backend.fill().await {
            Ok(0) => {
                return Err(RelayError::Backend {
                    source: TransportError::Closed,
                    sent_to_client: progress.sent,
                    last_seq: progress.last_seq,
                })
            }
            Ok(_) => {}
            Err(source) => {
                return Err(RelayError::Backend {
                    source,
                    sent_to_client: progress.sent,
                    last_seq: progress.last_seq,
                })
            }
        }
    }
}

/// Passes the file a client sends for `LOAD DATA LOCAL INFILE` to the backend, up to and
/// including the empty packet that ends it.
async fn pump_local_infile(
    client: &mut PacketStream,
    backend: &mut PacketStream,
) -> Result<(), RelayError> {
    let backend_err = |source| RelayError::Backend {
        source,
        sent_to_client: true,
        last_seq: 0,
    };
    let mut passthrough = 0usize;
    loop {
        let mut finished = false;
        {
            let buf = client.buffered();
            let mut pos = passthrough.min(buf.len());
            passthrough -= pos;
            while passthrough == 0 {
                let Some((len, _)) = frame::peek_header(&buf[pos..]) else {
                    break;
                };
                let avail = buf.len() - pos - HEADER_LEN;
                if len == 0 {
                    pos += HEADER_LEN;
                    finished = true;
                    break;
                }
                if avail >= len {
                    pos += HEADER_LEN + len;
                } else {
                    passthrough = len - avail;
                    pos = buf.len();
                }
            }
            backend.write_raw(&buf[..pos]).await.map_err(backend_err)?;
            client.consume(pos);
        }
        if finished {
            backend.flush().await.map_err(backend_err)?;
            return Ok(());
        }
        match client.fill().await {
            Ok(0) => return Err(RelayError::Client(TransportError::Closed)),
            Ok(_) => {}
            Err(e) => return Err(RelayError::Client(e)),
        }
    }
}

#[cfg(test)]
#[path = "relay_tests.rs"]
mod tests;
