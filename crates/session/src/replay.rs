//! Transaction replay (issue #16 item 3), the pure part: the log of an open transaction, its
//! size bound, the checksum of what the client saw of each result, and the decision table of
//! what to do when the transaction's server is lost. The I/O (waiting for a primary, running the
//! log again there) is in `replay_io`.
//!
//! A recorded transaction is replayed only when every recorded result is reproduced exactly on
//! the new primary: the checksums cover what the application saw (column count and definitions,
//! row bytes, affected rows and insert id of OK packets, error codes), so a replay that would
//! have shown the application anything different is abandoned and the client told to retry.
//!
//! Text statements are recorded as they were sent; executes of prepared statements with their
//! parameters (and parameter types) and the text that prepares the statement, once per
//! statement, so that the replay can prepare it on the new primary and execute it there with
//! that server's statement id.

use rwproxy_protocol::frame::MAX_CHUNK;
use rwproxy_protocol::response::PacketKind;
use rwproxy_protocol::{lenenc, reply};
use rwproxy_sql::StatementKind;
use sha2::{Digest, Sha256};

/// The checksum of one statement's result (SHA-256, truncated).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Checksum(pub [u8; 16]);

/// A streaming checksum of one response, fed packet by packet as the relay forwards it (no
/// allocation, no copy). The same bytes in any split give the same checksum: a logical packet
/// is hashed as its kind, then each physical chunk as its length and bytes.
#[derive(Clone, Default)]
pub struct ResultChecksum {
    hasher: Sha256,
    /// The bytes of the current packet are part of the checksum.
    current: bool,
}

impl std::fmt::Debug for ResultChecksum {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ResultChecksum").finish_non_exhaustive()
    }
}

impl ResultChecksum {
    /// The first chunk of a logical packet of `kind`: `chunk_len` is its physical length,
    /// `bytes` what is available of it now (all of it for OK and ERR packets).
    pub fn packet(&mut self, kind: PacketKind, chunk_len: usize, bytes: &[u8]) {
        self.current = false;
        match kind {
            PacketKind::ColumnCount | PacketKind::Column | PacketKind::Row => {
                self.hasher.update([tag(kind)]);
                self.hasher.update((chunk_len as u32).to_le_bytes());
                self.hasher.update(bytes);
                self.current = true;
            }
            PacketKind::Ok => {
                // What a statement did: rows affected and the insert id, not the status or
                // warnings (which describe the server's session, not the data).
                self.hasher.update([tag(kind)]);
                match ok_counts(bytes) {
                    Some((affected, insert_id)) => {
                        self.hasher.update(affected.to_le_bytes());
                        self.hasher.update(insert_id.to_le_bytes());
                    }
                    None => self.hasher.update(bytes),
                }
            }
            PacketKind::Err => {
                self.hasher.update([tag(kind)]);
                let code = reply::parse_err(bytes).map(|e| e.code).unwrap_or(0);
                self.hasher.update(code.to_le_bytes());
            }
            PacketKind::LocalInfile => self.hasher.update([tag(kind)]),
            // Terminators, progress reports and the like: nothing the application reads.
            PacketKind::Terminator | PacketKind::PrepareOk | PacketKind::Data => {}
        }
    }

    /// More bytes of the current physical chunk.
    pub fn more(&mut self, bytes: &[u8]) {
        if self.current {
            self.hasher.update(bytes);
        }
    }

    /// The next physical chunk of a logical packet of 16 MiB or more.
    pub fn continuation(&mut self, chunk_len: usize, bytes: &[u8]) {
        if self.current {
            self.hasher.update((chunk_len as u32).to_le_bytes());
            self.hasher.update(bytes);
        }
    }

    /// A whole logical packet at once (as `PacketStream::read_packet` joins it): the same
    /// checksum as the chunks fed one by one.
    pub fn whole_packet(&mut self, kind: PacketKind, payload: &[u8]) {
        let mut chunks = payload.chunks(MAX_CHUNK);
        let first = chunks.next().unwrap_or_default();
        self.packet(kind, first.len(), first);
        let mut last = first.len();
        for chunk in chunks {
            self.continuation(chunk.len(), chunk);
            last = chunk.len();
        }
        if last == MAX_CHUNK {
            self.continuation(0, &[]);
        }
    }

    pub fn finish(self) -> Checksum {
        let digest = self.hasher.finalize();
        let mut out = [0u8; 16];
        out.copy_from_slice(&digest[..16]);
        Checksum(out)
    }
}

fn tag(kind: PacketKind) -> u8 {
    match kind {
        PacketKind::Ok => 1,
        PacketKind::Err => 2,
        PacketKind::Terminator => 3,
        PacketKind::LocalInfile => 4,
        PacketKind::PrepareOk => 5,
        PacketKind::ColumnCount => 6,
        PacketKind::Column => 7,
        PacketKind::Row => 8,
        PacketKind::Data => 9,
    }
}

/// Affected rows and insert id of an OK packet.
fn ok_counts(payload: &[u8]) -> Option<(u64, u64)> {
    let rest = payload.get(1..)?;
    let (affected, used) = lenenc::read_int(rest).ok()?;
    let (insert_id, _) = lenenc::read_int(rest.get(used..)?).ok()?;
    Some((affected, insert_id))
}

/// One recorded statement: the command packet as the server got it, and its result's checksum.
#[derive(Debug, Clone, Copy)]
pub struct Entry<'a> {
    pub payload: &'a [u8],
    pub checksum: Checksum,
    /// For a `COM_STMT_EXECUTE`, the prepared statement it executes: the statement id in
    /// `payload` is replaced by the new server's id for it when replayed.
    pub statement: Option<LoggedStatement<'a>>,
}

/// A prepared statement executed in a recorded transaction.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct LoggedStatement<'a> {
    /// Its place among the transaction's prepared statements (`0..statement_count()`).
    pub index: usize,
    /// The id the client knows it by.
    pub client_id: u32,
    /// The `COM_STMT_PREPARE` payload that prepares it again.
    pub prepare: &'a [u8],
}

/// A `COM_STMT_EXECUTE` that finished, for [`Recorder::finished_execute`].
#[derive(Debug, Clone, Copy)]
pub struct Executed<'a> {
    /// The id the client knows the statement by.
    pub client_id: u32,
    /// The statement's `COM_STMT_PREPARE` payload.
    pub prepare: &'a [u8],
    /// Why this execute cannot be replayed, if it cannot ([`unrecordable_execute`]).
    pub unsupported: Option<&'static str>,
}

/// An execute a recorded transaction cannot carry over: one that opened a server-side cursor
/// (its rows are fetched later by `COM_STMT_FETCH`, which is not recorded) or one that used
/// parameters sent by `COM_STMT_SEND_LONG_DATA` (not recorded: they would be missing on the
/// new primary).
pub fn unrecordable_execute(cursor: bool, long_data: bool) -> Option<&'static str> {
    if long_data {
        Some("COM_STMT_SEND_LONG_DATA")
    } else if cursor {
        Some("a prepared statement with a cursor (COM_STMT_FETCH)")
    } else {
        None
    }
}

/// The execute packet to record for a replay: the client's, with the parameter types put in
/// when the client left them out (it sent them with an earlier execute, which a statement
/// prepared again on the new primary has not seen). `types` are the statement's last types.
pub fn execute_to_record(
    client_payload: &[u8],
    params: u16,
    types: Option<&[u8]>,
) -> Result<Vec<u8>, rwproxy_protocol::ProtocolError> {
    let mut out = bytes::BytesMut::new();
    crate::prepared::execute_for_backend(client_payload, 0, params, types, &mut out)?;
    Ok(out.to_vec())
}

/// Bytes counted per entry beyond its statement text (bounds a log of many tiny statements).
const ENTRY_OVERHEAD: usize = 32;

/// Why a recorded transaction cannot be replayed any more.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum NotReplayable {
    /// The statements outgrew `transaction_replay_max_size`.
    TooLarge,
    /// Something rwproxy does not record ran in it (a session command, long data, a cursor).
    Unsupported(&'static str),
}

/// What [`TransactionLog::record`] did.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Recorded {
    Kept,
    /// This statement took the log past its bound: the transaction is not replayable from now.
    Overflowed,
    /// The log was already not replayable.
    Ignored,
}

/// The open transaction's statements, in order, bounded in bytes. The statements are copied
/// into one buffer (holding on to the client's packets would keep their whole read buffers
/// alive); the prepared statements it executed are kept once each, in another.
#[derive(Debug)]
pub struct TransactionLog {
    /// The backend the transaction runs on (the primary when it started).
    backend: std::sync::Arc<str>,
    /// Every statement's text, one after the other.
    text: Vec<u8>,
    /// Where each statement ends in `text`, its checksum, and the prepared statement it
    /// executes (an index into `statements`).
    entries: Vec<(usize, Checksum, Option<usize>)>,
    /// The `COM_STMT_PREPARE` payloads of the executed statements, one after the other.
    prepares: Vec<u8>,
    /// Each executed statement: the client's id for it, and where its payload ends in
    /// `prepares`.
    statements: Vec<(u32, usize)>,
    bytes: usize,
    max: usize,
    broken: Option<NotReplayable>,
}

impl TransactionLog {
    /// A log for a transaction opened on `backend`, recording at most `max` bytes.
    pub fn new(backend: std::sync::Arc<str>, max: usize) -> Self {
        Self {
            backend,
            text: Vec::new(),
            entries: Vec::new(),
            prepares: Vec::new(),
            statements: Vec::new(),
            bytes: 0,
            max,
            broken: None,
        }
    }

    pub fn backend(&self) -> &str {
        &self.backend
    }

    /// The transaction moved to `backend` (replayed there).
    pub fn moved_to(&mut self, backend: std::sync::Arc<str>) {
        self.backend = backend;
    }

    /// The recorded statements, in order.
    pub fn entries(&self) -> impl ExactSizeIterator<Item = Entry<'_>> + '_ {
        let mut start = 0;
        self.entries.iter().map(move |&(end, checksum, statement)| {
            let payload = self.text.get(start..end).unwrap_or_default();
            start = end;
            Entry {
                payload,
                checksum,
                statement: statement.and_then(|i| self.statement(i)),
            }
        })
    }

    /// How many distinct prepared statements the transaction executed.
    pub fn statement_count(&self) -> usize {
        self.statements.len()
    }

    fn statement(&self, index: usize) -> Option<LoggedStatement<'_>> {
        let &(client_id, end) = self.statements.get(index)?;
        let start = match index.checked_sub(1) {
            Some(before) => self.statements.get(before)?.1,
            None => 0,
        };
        Some(LoggedStatement {
            index,
            client_id,
            prepare: self.prepares.get(start..end)?,
        })
    }

    pub fn len(&self) -> usize {
        self.entries.len()
    }

    pub fn is_empty(&self) -> bool {
        self.entries.is_empty()
    }

    /// Why the transaction is not replayable, if it is not.
    pub fn not_replayable(&self) -> Option<NotReplayable> {
        self.broken
    }

    /// Records a statement that ran in the transaction.
    pub fn record(&mut self, payload: &[u8], checksum: Checksum) -> Recorded {
        self.record_entry(payload, checksum, None)
    }

    /// Records an execute of the prepared statement the client knows as `client_id`, prepared
    /// by `prepare` (kept once per statement, counted in the bound once). A statement id
    /// given to another statement since (closed and prepared again) is another statement.
    pub fn record_execute(
        &mut self,
        client_id: u32,
        prepare: &[u8],
        payload: &[u8],
        checksum: Checksum,
    ) -> Recorded {
        let known = (0..self.statements.len()).find(|&i| {
            self.statement(i)
                .is_some_and(|s| s.client_id == client_id && s.prepare == prepare)
        });
        self.record_entry(payload, checksum, Some((client_id, prepare, known)))
    }

    fn record_entry(
        &mut self,
        payload: &[u8],
        checksum: Checksum,
        statement: Option<(u32, &[u8], Option<usize>)>,
    ) -> Recorded {
        if self.broken.is_some() {
            return Recorded::Ignored;
        }
        let mut bytes = self.bytes + payload.len() + ENTRY_OVERHEAD;
        if let Some((_, prepare, None)) = statement {
            bytes += prepare.len() + ENTRY_OVERHEAD;
        }
        if bytes > self.max {
            self.give_up(NotReplayable::TooLarge);
            return Recorded::Overflowed;
        }
        self.bytes = bytes;
        let index = statement.map(|(client_id, prepare, known)| {
            known.unwrap_or_else(|| {
                self.prepares.extend_from_slice(prepare);
                self.statements.push((client_id, self.prepares.len()));
                self.statements.len() - 1
            })
        });
        self.text.extend_from_slice(payload);
        self.entries.push((self.text.len(), checksum, index));
        Recorded::Kept
    }

    /// The transaction ran something that is not recorded: it cannot be replayed.
    pub fn unsupported(&mut self, what: &'static str) {
        if self.broken.is_none() {
            self.give_up(NotReplayable::Unsupported(what));
        }
    }

    fn give_up(&mut self, why: NotReplayable) {
        self.broken = Some(why);
        self.text = Vec::new();
        self.entries = Vec::new();
        self.prepares = Vec::new();
        self.statements = Vec::new();
        self.bytes = 0;
    }
}

/// Statements whose outcome, when lost in flight, may have committed the transaction: a
/// `COMMIT`, and every statement that commits implicitly (DDL, `BEGIN` inside a transaction,
/// `SET autocommit = 1`, `LOCK TABLES`, XA, and what rwproxy does not know).
pub fn may_commit(kind: StatementKind) -> bool {
    matches!(
        kind,
        StatementKind::Commit
            | StatementKind::Ddl
            | StatementKind::Begin { .. }
            | StatementKind::SetAutocommit(true)
            | StatementKind::LockTables
            | StatementKind::UnlockTables
            | StatementKind::Xa
            | StatementKind::Other
            | StatementKind::Unknown
    )
}

/// A statement whose loss in flight leaves nothing behind on any server: a `BEGIN` (alone,
/// outside a transaction) only opened a transaction on the connection that is gone, so it may
/// run again on the new primary as if it had never been sent. Inside a transaction a `BEGIN`
/// commits the open one, so it is not so there.
pub fn void_when_lost(in_transaction: bool, kind: StatementKind, multi: bool) -> bool {
    !in_transaction && !multi && matches!(kind, StatementKind::Begin { .. })
}

/// Statements a recorded transaction cannot carry over, named for the error message: session
/// commands (on a new connection the session-state log applies them before the transaction's
/// earlier statements, which would then mean something else), SQL prepared statements, and XA
/// (a prepared XA transaction outlives its connection).
pub fn unrecordable(kind: StatementKind) -> Option<&'static str> {
    match kind {
        StatementKind::SetSession
        | StatementKind::SetNames
        | StatementKind::SetTransaction
        | StatementKind::Use => Some("a session command (SET, USE)"),
        StatementKind::PrepareText | StatementKind::ExecuteText | StatementKind::DeallocateText => {
            Some("an SQL prepared statement")
        }
        StatementKind::Xa => Some("XA"),
        _ => None,
    }
}

/// Statements that end the open transaction, and open a new one when the server still says a
/// transaction is open after them (`BEGIN` inside a transaction, `COMMIT AND CHAIN`).
fn starts_anew(kind: StatementKind) -> bool {
    matches!(
        kind,
        StatementKind::Begin { .. } | StatementKind::Commit | StatementKind::Rollback
    ) || may_commit(kind)
}

/// Whether a statement's result must be checksummed: only with replay on, for a statement
/// that may open a transaction on the primary or runs in one being recorded.
pub fn wants_checksum(
    enabled: bool,
    recording: bool,
    in_transaction: bool,
    autocommit_off: bool,
    kind: StatementKind,
) -> bool {
    if !enabled {
        return false;
    }
    if in_transaction {
        return recording || starts_anew(kind);
    }
    autocommit_off
        || matches!(
            kind,
            StatementKind::Begin { .. } | StatementKind::SetTransaction
        )
}

/// What a finished statement tells the recorder.
#[derive(Debug, Clone)]
pub struct Finished<'a> {
    /// `routing.transaction_replay` and `routing.transaction_replay_max_size` now.
    pub enabled: bool,
    pub max_size: usize,
    /// The command packet as the server got it.
    pub payload: &'a [u8],
    pub kind: StatementKind,
    /// `SET SESSION TRANSACTION` (every later transaction) rather than the next one only.
    pub session_scope: bool,
    pub checksum: Option<Checksum>,
    pub ok: bool,
    pub local_infile: bool,
    /// The server said a transaction was open before the statement, and after it.
    pub was_in_transaction: bool,
    pub in_transaction: bool,
    /// Where it ran, and whether that is the primary.
    pub backend: &'a std::sync::Arc<str>,
    pub on_primary: bool,
}

/// Follows a session's transactions and records the open one (see [`TransactionLog`]).
#[derive(Debug, Default)]
pub struct Recorder {
    log: Option<TransactionLog>,
    /// `SET TRANSACTION …` for the next transaction only, run outside a transaction: the
    /// transaction it shapes is replayed with it.
    characteristics: Option<(Vec<u8>, Checksum)>,
}

impl Recorder {
    /// The log of the open transaction, when it is being recorded.
    pub fn log(&self) -> Option<&TransactionLog> {
        self.log.as_ref()
    }

    pub fn take_log(&mut self) -> Option<TransactionLog> {
        self.log.take()
    }

    pub fn restore(&mut self, log: TransactionLog) {
        self.log = Some(log);
    }

    /// A recorded transaction is open and still replayable.
    pub fn recording(&self) -> bool {
        self.log
            .as_ref()
            .is_some_and(|l| l.not_replayable().is_none())
    }

    /// The transaction ran a command that is not recorded.
    pub fn unsupported(&mut self, what: &'static str) {
        if let Some(log) = self.log.as_mut() {
            log.unsupported(what);
        }
    }

    /// Learns from a finished text statement; what happened to the log.
    pub fn finished(&mut self, f: &Finished<'_>) -> Recorded {
        self.finish(f, None)
    }

    /// Learns from a finished `COM_STMT_EXECUTE` (`f.payload` is the execute packet as
    /// [`execute_to_record`] made it); what happened to the log.
    pub fn finished_execute(&mut self, f: &Finished<'_>, executed: Executed<'_>) -> Recorded {
        self.finish(f, Some(executed))
    }

    fn finish(&mut self, f: &Finished<'_>, executed: Option<Executed<'_>>) -> Recorded {
        if !f.in_transaction {
            self.log = None;
            // Only the very next transaction takes these characteristics (a prepared `SET
            // TRANSACTION` is replayed in its text form: it has no parameters).
            self.characteristics = match (f.checksum, f.kind) {
                (Some(checksum), StatementKind::SetTransaction)
                    if f.enabled && f.ok && !f.session_scope && !f.was_in_transaction =>
                {
                    match executed {
                        None => Some((f.payload.to_vec(), checksum)),
                        Some(e) => e.prepare.split_first().map(|(_, sql)| {
                            let mut text = Vec::with_capacity(sql.len() + 1);
                            text.push(rwproxy_protocol::command::COM_QUERY);
                            text.extend_from_slice(sql);
                            (text, checksum)
                        }),
                    }
                }
                _ => None,
            };
            return Recorded::Ignored;
        }
        let anew = !f.was_in_transaction || starts_anew(f.kind);
        if anew {
            let characteristics = self
                .characteristics
                .take()
                .filter(|_| !f.was_in_transaction);
            self.log = None;
            if !f.enabled || !f.on_primary {
                return Recorded::Ignored;
            }
            let mut log = TransactionLog::new(f.backend.clone(), f.max_size);
            if let Some(c) = characteristics {
                log.record(&c.0, c.1);
            }
            let recorded = Self::record_into(&mut log, f, executed);
            self.log = Some(log);
            return recorded;
        }
        match self.log.as_mut() {
            Some(log) => Self::record_into(log, f, executed),
            None => Recorded::Ignored,
        }
    }

    fn record_into(
        log: &mut TransactionLog,
        f: &Finished<'_>,
        executed: Option<Executed<'_>>,
    ) -> Recorded {
        if log.not_replayable().is_some() {
            return Recorded::Ignored;
        }
        let why = if f.local_infile {
            Some("LOAD DATA LOCAL INFILE")
        } else {
            unrecordable(f.kind).or(executed.and_then(|e| e.unsupported))
        };
        match (why, f.checksum, executed) {
            (Some(what), _, _) => log.unsupported(what),
            (None, Some(checksum), None) => return log.record(f.payload, checksum),
            (None, Some(checksum), Some(e)) => {
                return log.record_execute(e.client_id, e.prepare, f.payload, checksum)
            }
            (None, None, _) => log.unsupported("a statement whose result was not checksummed"),
        }
        Recorded::Ignored
    }
}

/// Why a replay failed (or was not tried): each is a label of
/// `rwproxy_transaction_replays_total`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Failed {
    /// Statement `at` (0-based) of the log gave a different result on the new primary.
    Mismatch { at: usize },
    /// The statement lost in flight may have committed: its outcome is unknown.
    CommitInFlight,
    /// The log outgrew `transaction_replay_max_size`.
    TooLarge,
    /// The transaction ran something rwproxy does not record.
    Unsupported(&'static str),
    /// No primary appeared within `write_wait_timeout`.
    NoPrimary,
    /// Replaying failed on the new primary (it went away too, or refused a statement).
    Error,
}

/// What to do when the transaction's server was lost.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Verdict {
    Replay,
    GiveUp(Failed),
}

/// The decision table: `in_flight_commits` says whether the statement that was running (or
/// about to run) when the server was lost may commit ([`may_commit`], or several statements in
/// one text), `sent` whether it was written to the server.
pub fn decide(log: &TransactionLog, in_flight_commits: bool, sent: bool) -> Verdict {
    if sent && in_flight_commits {
        return Verdict::GiveUp(Failed::CommitInFlight);
    }
    match log.not_replayable() {
        Some(NotReplayable::TooLarge) => Verdict::GiveUp(Failed::TooLarge),
        Some(NotReplayable::Unsupported(what)) => Verdict::GiveUp(Failed::Unsupported(what)),
        None => Verdict::Replay,
    }
}

/// `ER_LOCK_DEADLOCK`: "try restarting transaction"; clients and frameworks retry on it.
pub const ROLLED_BACK: (u16, &[u8; 5]) = (1213, b"40001");

/// The error the client gets when its transaction could not be carried over: `(code, sqlstate,
/// message)`. Every case but a possible commit says the transaction was rolled back (nothing of
/// it is committed anywhere), which is the deadlock class applications retry. A statement that
/// may have committed gets "lost connection" (2013): its outcome is unknown, and retrying it
/// could apply it twice.
pub fn client_error(failed: Failed, lost: &str) -> (u16, [u8; 5], String) {
    let why = match failed {
        Failed::Mismatch { at } => format!(
            "statement {} of the transaction gave a different result on the new primary",
            at + 1
        ),
        Failed::TooLarge => {
            "the transaction was larger than routing.transaction_replay_max_size".to_string()
        }
        Failed::Unsupported(what) => format!("the transaction used {what}, which is not recorded"),
        Failed::NoPrimary => {
            "no primary became available within monitor.write_wait_timeout".to_string()
        }
        Failed::Error => "running it again on the new primary failed".to_string(),
        Failed::CommitInFlight => {
            let (code, state) = rwproxy_protocol::reply::codes::SERVER_LOST;
            return (
                code,
                *state,
                format!(
                    "Lost connection to the server during a statement that commits the transaction ({lost}); its outcome is unknown and rwproxy did not replay it"
                ),
            );
        }
    };
    (
        ROLLED_BACK.0,
        *ROLLED_BACK.1,
        format!(
            "Deadlock found when trying to get lock; try restarting transaction (rwproxy: the transaction's server was lost ({lost}) and its replay failed: {why}; the transaction was rolled back)"
        ),
    )
}

#[cfg(test)]
mod tests {
    use super::*;
    use bytes::Bytes;

    fn sum(packets: &[(PacketKind, &[u8])]) -> Checksum {
        let mut c = ResultChecksum::default();
        for (kind, p) in packets {
            c.whole_packet(*kind, p);
        }
        c.finish()
    }

    fn ok(affected: u8, insert_id: u8, status: u8, warnings: u8) -> Vec<u8> {
        vec![0, affected, insert_id, status, 0, warnings, 0]
    }

    #[test]
    fn checksum_covers_rows_and_ok_counts_but_not_status_or_warnings() {
        let rows = [
            (PacketKind::ColumnCount, &b"\x01"[..]),
            (PacketKind::Column, b"\x03def\x00\x01t\x01t\x01v\x01v"),
            (PacketKind::Terminator, b"\xfe\x00\x00\x02\x00"),
            (PacketKind::Row, b"\x0210"),
            (PacketKind::Terminator, b"\xfe\x00\x00\x02\x00"),
        ];
        let other_row = [
            rows[0],
            rows[1],
            rows[2],
            (PacketKind::Row, &b"\x0211"[..]),
            rows[4],
        ];
        assert_eq!(sum(&rows), sum(&rows));
        assert_ne!(sum(&rows), sum(&other_row));
        // EOF or not after the columns, other status flags: the same for the application.
        let without_eof = [rows[0], rows[1], rows[3], rows[4]];
        assert_eq!(sum(&rows), sum(&without_eof));
        let a = ok(1, 7, 2, 0);
        let b = ok(1, 7, 3, 1);
        let c = ok(2, 7, 2, 0);
        let d = ok(1, 8, 2, 0);
        assert_eq!(sum(&[(PacketKind::Ok, &a)]), sum(&[(PacketKind::Ok, &b)]));
        assert_ne!(sum(&[(PacketKind::Ok, &a)]), sum(&[(PacketKind::Ok, &c)]));
        assert_ne!(sum(&[(PacketKind::Ok, &a)]), sum(&[(PacketKind::Ok, &d)]));
        // An error is not an OK, and error codes differ.
        let dup = b"\xff\x26\x04#23000Duplicate entry";
        let other = b"\xff\x15\x04#42000Syntax";
        assert_ne!(sum(&[(PacketKind::Err, dup)]), sum(&[(PacketKind::Ok, &a)]));
        assert_ne!(
            sum(&[(PacketKind::Err, dup)]),
            sum(&[(PacketKind::Err, other)])
        );
        // Where one row ends and the next begins is part of the checksum.
        let split1 = [(PacketKind::Row, &b"ab"[..]), (PacketKind::Row, b"c")];
        let split2 = [(PacketKind::Row, &b"a"[..]), (PacketKind::Row, b"bc")];
        assert_ne!(sum(&split1), sum(&split2));
    }

    #[test]
    fn checksum_is_the_same_whatever_the_buffer_splits() {
        // A row of 16 MiB + 10 bytes arrives as two physical chunks, in pieces.
        let row: Vec<u8> = (0..MAX_CHUNK + 10).map(|i| (i % 251) as u8).collect();
        let whole = sum(&[(PacketKind::Row, &row)]);
        let mut c = ResultChecksum::default();
        c.packet(PacketKind::Row, MAX_CHUNK, &row[..100]);
        c.more(&row[100..70_000]);
        c.more(&row[70_000..MAX_CHUNK]);
        c.continuation(10, &row[MAX_CHUNK..MAX_CHUNK + 4]);
        c.more(&row[MAX_CHUNK + 4..]);
        assert_eq!(c.finish(), whole);
        // Exactly 16 MiB is followed by an empty chunk.
        let exact = vec![7u8; MAX_CHUNK];
        let mut c = ResultChecksum::default();
        c.packet(PacketKind::Row, MAX_CHUNK, &exact);
        c.continuation(0, &[]);
        assert_eq!(c.finish(), sum(&[(PacketKind::Row, &exact)]));
    }

    fn log(max: usize) -> TransactionLog {
        TransactionLog::new("db1".into(), max)
    }

    fn checksum(n: u8) -> Checksum {
        Checksum([n; 16])
    }

    #[test]
    fn log_keeps_statements_in_order_within_its_bound() {
        let mut l = log(3 * (10 + ENTRY_OVERHEAD));
        for i in 0..3u8 {
            let stmt = Bytes::from(vec![b'a' + i; 10]);
            assert_eq!(l.record(&stmt, checksum(i)), Recorded::Kept);
        }
        assert_eq!(l.len(), 3);
        let entries: Vec<_> = l.entries().collect();
        assert_eq!(entries[1].checksum, checksum(1));
        assert_eq!(entries[1].payload, &[b'b'; 10][..]);
        assert_eq!(l.not_replayable(), None);
        // One byte more is past the bound: the log is dropped, the transaction not replayable.
        assert_eq!(l.record(b"x", checksum(9)), Recorded::Overflowed);
        assert!(l.is_empty());
        assert_eq!(l.not_replayable(), Some(NotReplayable::TooLarge));
        assert_eq!(l.record(b"y", checksum(9)), Recorded::Ignored);
    }

    #[test]
    fn log_keeps_each_executed_statement_once() {
        let prepare_a = b"\x16SELECT v FROM t WHERE id = ?";
        let prepare_b = b"\x16UPDATE t SET v = v + 1 WHERE id = ?";
        let exec = |n: u8| [0x17, 0, 0, 0, 0, 0, 1, 0, 0, 0, 0, 1, 3, 0, n, 0, 0, 0];
        let entry = exec(0).len() + ENTRY_OVERHEAD;
        let statements = prepare_a.len() + prepare_b.len() + 2 * ENTRY_OVERHEAD;
        let text = b"\x03BEGIN".len() + ENTRY_OVERHEAD;
        let mut l = log(text + 4 * entry + statements);
        assert_eq!(l.record(b"\x03BEGIN", checksum(0)), Recorded::Kept);
        assert_eq!(
            l.record_execute(7, prepare_a, &exec(1), checksum(1)),
            Recorded::Kept
        );
        assert_eq!(
            l.record_execute(9, prepare_b, &exec(2), checksum(2)),
            Recorded::Kept
        );
        // The same statement again: its prepare is not kept (nor counted) twice.
        assert_eq!(
            l.record_execute(7, prepare_a, &exec(3), checksum(3)),
            Recorded::Kept
        );
        assert_eq!(
            l.record_execute(9, prepare_b, &exec(4), checksum(4)),
            Recorded::Kept
        );
        assert_eq!(l.statement_count(), 2);
        let entries: Vec<_> = l.entries().collect();
        assert_eq!(entries.len(), 5);
        assert_eq!(entries[0].payload, b"\x03BEGIN");
        assert_eq!(entries[0].statement, None);
        let first = entries[1].statement.unwrap();
        assert_eq!((first.index, first.client_id), (0, 7));
        assert_eq!(first.prepare, prepare_a);
        assert_eq!(entries[1].payload, &exec(1)[..]);
        assert_eq!(entries[1].checksum, checksum(1));
        assert_eq!(
            entries[2].statement.map(|s| (s.index, s.client_id)),
            Some((1, 9))
        );
        assert_eq!(entries[2].statement.unwrap().prepare, prepare_b);
        assert_eq!(entries[3].statement, Some(first));
        assert_eq!(entries[4].payload, &exec(4)[..]);
        // Exactly at the bound; one more execute is past it.
        assert_eq!(
            l.record_execute(7, prepare_a, &exec(5), checksum(5)),
            Recorded::Overflowed
        );
        assert_eq!(l.not_replayable(), Some(NotReplayable::TooLarge));
        assert_eq!(l.statement_count(), 0);
        assert!(l.is_empty());
    }

    #[test]
    fn a_statement_id_given_to_another_statement_is_another_statement() {
        let mut l = log(1 << 20);
        l.record_execute(
            7,
            b"\x16SELECT 1",
            b"\x17\x07\0\0\0\0\x01\0\0\0",
            checksum(1),
        );
        // Closed and prepared again under the same id, with other text.
        l.record_execute(
            7,
            b"\x16SELECT 2",
            b"\x17\x07\0\0\0\0\x01\0\0\0",
            checksum(2),
        );
        assert_eq!(l.statement_count(), 2);
        let prepares: Vec<_> = l
            .entries()
            .filter_map(|e| e.statement.map(|s| s.prepare))
            .collect();
        assert_eq!(prepares, vec![&b"\x16SELECT 1"[..], b"\x16SELECT 2"]);
    }

    #[test]
    fn executes_are_recorded_with_their_parameter_types() {
        // 1 parameter; the client left the types out (sent with an earlier execute): they are
        // put in, so the statement prepared again on another server gets them.
        let without = [0x17, 5, 0, 0, 0, 0, 1, 0, 0, 0, 0, 0, 7, 0, 0, 0];
        assert_eq!(
            execute_to_record(&without, 1, Some(&[3, 0])).unwrap(),
            vec![0x17, 0, 0, 0, 0, 0, 1, 0, 0, 0, 0, 1, 3, 0, 7, 0, 0, 0]
        );
        // Sent with this execute: kept as they are.
        let with = [
            0x17, 5, 0, 0, 0, 0, 1, 0, 0, 0, 0, 1, 8, 0, 7, 0, 0, 0, 0, 0, 0, 0,
        ];
        let recorded = execute_to_record(&with, 1, Some(&[3, 0])).unwrap();
        assert_eq!(&recorded[5..], &with[5..]);
        // No parameters.
        let none = [0x17, 5, 0, 0, 0, 0, 1, 0, 0, 0];
        assert_eq!(&execute_to_record(&none, 0, None).unwrap()[5..], &none[5..]);
        assert!(execute_to_record(&[0x17, 5, 0], 0, None).is_err());
    }

    #[test]
    fn executes_that_cannot_be_replayed() {
        assert_eq!(unrecordable_execute(false, false), None);
        assert!(unrecordable_execute(true, false).is_some_and(|w| w.contains("cursor")));
        assert_eq!(
            unrecordable_execute(false, true),
            Some("COM_STMT_SEND_LONG_DATA")
        );
        assert_eq!(
            unrecordable_execute(true, true),
            Some("COM_STMT_SEND_LONG_DATA")
        );
    }

    #[test]
    fn decision_table() {
        let fresh = log(1 << 20);
        // Nothing of the transaction committed, or the statement never reached the server.
        assert_eq!(
            decide(&fresh, may_commit(StatementKind::Write), true),
            Verdict::Replay
        );
        assert_eq!(
            decide(&fresh, may_commit(StatementKind::Read), true),
            Verdict::Replay
        );
        assert_eq!(
            decide(&fresh, may_commit(StatementKind::Commit), false),
            Verdict::Replay
        );
        // A COMMIT (or an implicit one) in flight: outcome unknown, never replayed.
        for kind in [
            StatementKind::Commit,
            StatementKind::Ddl,
            StatementKind::Begin { read_only: false },
            StatementKind::SetAutocommit(true),
        ] {
            assert_eq!(
                decide(&fresh, may_commit(kind), true),
                Verdict::GiveUp(Failed::CommitInFlight),
                "{kind:?}"
            );
        }
        assert_eq!(
            decide(&fresh, may_commit(StatementKind::Rollback), true),
            Verdict::Replay
        );
        let mut big = log(64);
        big.record(&[0u8; 64], checksum(0));
        assert_eq!(decide(&big, false, true), Verdict::GiveUp(Failed::TooLarge));
        // A COMMIT in flight wins over the size: its outcome is what the client must know.
        assert_eq!(
            decide(&big, true, true),
            Verdict::GiveUp(Failed::CommitInFlight)
        );
        let mut odd = log(1 << 20);
        odd.unsupported("COM_STMT_SEND_LONG_DATA");
        assert_eq!(
            decide(&odd, false, false),
            Verdict::GiveUp(Failed::Unsupported("COM_STMT_SEND_LONG_DATA"))
        );
    }

    #[test]
    fn only_a_begin_outside_a_transaction_is_void_when_lost() {
        use StatementKind as K;
        let begin = K::Begin { read_only: false };
        assert!(void_when_lost(false, begin, false));
        assert!(void_when_lost(false, K::Begin { read_only: true }, false));
        // Inside a transaction it commits; in a multi-statement text more follows it.
        assert!(!void_when_lost(true, begin, false));
        assert!(!void_when_lost(false, begin, true));
        for kind in [K::Read, K::Write, K::Commit, K::Rollback, K::Ddl] {
            assert!(!void_when_lost(false, kind, false), "{kind:?}");
        }
    }

    #[test]
    fn client_errors_say_rolled_back_unless_a_commit_may_have_happened() {
        for failed in [
            Failed::Mismatch { at: 1 },
            Failed::TooLarge,
            Failed::NoPrimary,
            Failed::Error,
            Failed::Unsupported("x"),
        ] {
            let (code, state, message) = client_error(failed, "db1 is gone");
            assert_eq!((code, &state), (1213, b"40001"), "{failed:?}");
            assert!(message.contains("rwproxy"), "{message}");
            assert!(message.contains("rolled back"), "{message}");
            assert!(message.contains("db1 is gone"), "{message}");
        }
        assert!(client_error(Failed::Mismatch { at: 1 }, "x")
            .2
            .contains("statement 2"));
        assert!(client_error(Failed::TooLarge, "x")
            .2
            .contains("transaction_replay_max_size"));
        let (code, _, message) = client_error(Failed::CommitInFlight, "db1 is gone");
        assert_eq!(code, 1927);
        assert!(message.contains("outcome is unknown"), "{message}");
    }

    struct Run {
        payload: Bytes,
        kind: StatementKind,
        was: bool,
        now: bool,
    }

    fn run(
        r: &mut Recorder,
        sql: &'static str,
        kind: StatementKind,
        was: bool,
        now: bool,
    ) -> Recorded {
        run_on(
            r,
            Run {
                payload: Bytes::from_static(sql.as_bytes()),
                kind,
                was,
                now,
            },
            true,
            true,
        )
    }

    fn run_on(r: &mut Recorder, run: Run, enabled: bool, on_primary: bool) -> Recorded {
        let backend: std::sync::Arc<str> = "db1".into();
        let checksum = ResultChecksum::default();
        r.finished(&Finished {
            enabled,
            max_size: 1 << 20,
            payload: &run.payload,
            kind: run.kind,
            session_scope: false,
            checksum: Some(checksum.finish()),
            ok: true,
            local_infile: false,
            was_in_transaction: run.was,
            in_transaction: run.now,
            backend: &backend,
            on_primary,
        })
    }

    fn execute(
        r: &mut Recorder,
        kind: StatementKind,
        (was, now): (bool, bool),
        executed: Executed<'_>,
    ) -> Recorded {
        let backend: std::sync::Arc<str> = "db1".into();
        r.finished_execute(
            &Finished {
                enabled: true,
                max_size: 1 << 20,
                payload: b"\x17\0\0\0\0\0\x01\0\0\0",
                kind,
                session_scope: false,
                checksum: Some(checksum(1)),
                ok: true,
                local_infile: false,
                was_in_transaction: was,
                in_transaction: now,
                backend: &backend,
                on_primary: true,
            },
            executed,
        )
    }

    fn executed(prepare: &[u8]) -> Executed<'_> {
        Executed {
            client_id: 1,
            prepare,
            unsupported: None,
        }
    }

    #[test]
    fn recorder_records_executes() {
        use StatementKind as K;
        let mut r = Recorder::default();
        // A prepared BEGIN opens the transaction; reads and writes executed in it are kept.
        let begin = K::Begin { read_only: false };
        execute(&mut r, begin, (false, true), executed(b"\x16BEGIN"));
        execute(&mut r, K::Read, (true, true), executed(b"\x16SELECT ?"));
        run(&mut r, "UPDATE", K::Write, true, true);
        assert!(r.recording());
        let prepares: Vec<_> = r
            .log()
            .map(|l| {
                l.entries()
                    .map(|e| e.statement.map(|s| s.prepare))
                    .collect()
            })
            .unwrap_or_default();
        assert_eq!(
            prepares,
            vec![Some(&b"\x16BEGIN"[..]), Some(b"\x16SELECT ?"), None]
        );
        // An execute that cannot be replayed makes the transaction not replayable.
        let cursor = Executed {
            unsupported: unrecordable_execute(true, false),
            ..executed(b"\x16SELECT ?")
        };
        assert_eq!(
            execute(&mut r, K::Read, (true, true), cursor),
            Recorded::Ignored
        );
        assert!(!r.recording());
        execute(&mut r, K::Commit, (true, false), executed(b"\x16COMMIT"));
        assert!(r.log().is_none());
        // A prepared SET TRANSACTION for the next transaction is replayed as text.
        execute(
            &mut r,
            K::SetTransaction,
            (false, false),
            executed(b"\x16SET TRANSACTION ISOLATION LEVEL SERIALIZABLE"),
        );
        run(&mut r, "BEGIN", begin, false, true);
        assert_eq!(
            recorded(&r),
            vec![
                &b"\x03SET TRANSACTION ISOLATION LEVEL SERIALIZABLE"[..],
                b"BEGIN"
            ]
        );
        // An execute that opens a transaction it cannot replay (autocommit = 0).
        run(&mut r, "COMMIT", K::Commit, true, false);
        let long_data = Executed {
            unsupported: unrecordable_execute(false, true),
            ..executed(b"\x16INSERT INTO t VALUES (?)")
        };
        execute(&mut r, K::Write, (false, true), long_data);
        assert_eq!(
            r.log().and_then(|l| l.not_replayable()),
            Some(NotReplayable::Unsupported("COM_STMT_SEND_LONG_DATA"))
        );
    }

    fn recorded(r: &Recorder) -> Vec<&[u8]> {
        r.log()
            .map(|l| l.entries().map(|e| e.payload).collect())
            .unwrap_or_default()
    }

    #[test]
    fn recorder_follows_transactions() {
        use StatementKind as K;
        let mut r = Recorder::default();
        run(&mut r, "SELECT 1", K::Read, false, false);
        assert!(r.log().is_none());
        run(&mut r, "BEGIN", K::Begin { read_only: false }, false, true);
        run(&mut r, "INSERT", K::Write, true, true);
        run(&mut r, "SELECT", K::Read, true, true);
        assert_eq!(recorded(&r), vec![&b"BEGIN"[..], b"INSERT", b"SELECT"]);
        assert!(r.recording());
        // BEGIN inside a transaction commits it and opens another one.
        run(
            &mut r,
            "START TRANSACTION",
            K::Begin { read_only: false },
            true,
            true,
        );
        assert_eq!(recorded(&r), vec![&b"START TRANSACTION"[..]]);
        run(&mut r, "COMMIT", K::Commit, true, false);
        assert!(r.log().is_none());
        // autocommit = 0: the first statement opens the transaction.
        run(&mut r, "UPDATE", K::Write, false, true);
        assert_eq!(recorded(&r), vec![&b"UPDATE"[..]]);
        run(&mut r, "ROLLBACK", K::Rollback, true, false);
        // SET TRANSACTION for the next transaction is replayed with it.
        run(
            &mut r,
            "SET TRANSACTION ISOLATION LEVEL SERIALIZABLE",
            K::SetTransaction,
            false,
            false,
        );
        run(&mut r, "BEGIN", K::Begin { read_only: false }, false, true);
        assert_eq!(
            recorded(&r),
            vec![
                &b"SET TRANSACTION ISOLATION LEVEL SERIALIZABLE"[..],
                b"BEGIN"
            ]
        );
        run(&mut r, "COMMIT", K::Commit, true, false);
        // ... and only the next one.
        run(
            &mut r,
            "SET TRANSACTION READ WRITE",
            K::SetTransaction,
            false,
            false,
        );
        run(&mut r, "SELECT 1", K::Read, false, false);
        run(&mut r, "BEGIN", K::Begin { read_only: false }, false, true);
        assert_eq!(recorded(&r), vec![&b"BEGIN"[..]]);
        // A session command inside: not replayable from then on.
        run(&mut r, "SET @a = 1", K::SetSession, true, true);
        assert!(!r.recording());
        assert_eq!(
            r.log().and_then(|l| l.not_replayable()),
            Some(NotReplayable::Unsupported("a session command (SET, USE)"))
        );
        run(&mut r, "INSERT", K::Write, true, true);
        assert!(!r.recording());
        run(&mut r, "COMMIT", K::Commit, true, false);
        assert!(r.log().is_none());
    }

    #[test]
    fn recorder_records_only_what_it_may() {
        use StatementKind as K;
        let begin = || Run {
            payload: Bytes::from_static(b"BEGIN"),
            kind: K::Begin { read_only: false },
            was: false,
            now: true,
        };
        let mut r = Recorder::default();
        // Replay off, or a transaction on a replica: nothing recorded.
        run_on(&mut r, begin(), false, true);
        assert!(r.log().is_none());
        run_on(&mut r, begin(), true, false);
        assert!(r.log().is_none());
        // Switched on in the middle of a transaction: its beginning is unknown.
        run(&mut r, "INSERT", K::Write, true, true);
        assert!(r.log().is_none());
        // A command that is not recorded (a cursor's fetch).
        run(&mut r, "BEGIN", K::Begin { read_only: false }, false, true);
        r.unsupported("COM_STMT_FETCH");
        assert!(!r.recording());
        assert!(r.log().is_some());
    }

    #[test]
    fn checksums_are_computed_only_when_replay_may_need_them() {
        use StatementKind as K;
        let begin = K::Begin { read_only: false };
        assert!(!wants_checksum(false, true, true, true, K::Read));
        // Outside a transaction: a statement that may open one.
        assert!(!wants_checksum(true, false, false, false, K::Read));
        assert!(wants_checksum(true, false, false, false, begin));
        assert!(wants_checksum(true, false, false, true, K::Read));
        assert!(wants_checksum(true, false, false, false, K::SetTransaction));
        // Inside: while recording, or a statement that starts a new transaction.
        assert!(wants_checksum(true, true, true, false, K::Read));
        assert!(!wants_checksum(true, false, true, false, K::Read));
        assert!(wants_checksum(true, false, true, false, begin));
    }
}
