//! What a client session has changed on "its" server, and must look the same on every backend
//! connection it uses: session variables, character set, default schema, options. Plus what
//! ties the session to one server (transactions, temporary tables, locks).

use std::collections::HashMap;

use bytes::Bytes;
use rwproxy_protocol::StatusFlags;

/// Beyond this many distinct session commands a session stops spreading reads (replaying them
/// all on a new connection would cost more than it saves) and stays on the primary.
pub const MAX_REPLAY_LOG: usize = 256;
/// The same limit on the commands' total size in bytes (a few large `SET`s).
pub const MAX_REPLAY_BYTES: usize = 64 * 1024;

/// One session command, in the order the client ran it.
#[derive(Debug, Clone)]
pub struct LoggedCommand {
    pub seq: u64,
    /// The command packet payload exactly as the client sent it.
    pub payload: Bytes,
    /// Run again later by the client: the later entry replays it.
    superseded: bool,
}

/// What [`SessionState::log_command`] did.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Logged {
    /// Logged with this sequence number.
    At(u64),
    /// Not logged: the log is at its limit (`first`: this command reached it). The session is
    /// pinned to the primary.
    Overflow { first: bool },
}

/// Why a session is held on the primary.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Pins {
    pub temporary_tables: u32,
    pub lock_tables: bool,
    pub named_locks: bool,
    pub sql_prepared: u32,
    pub replay_overflow: bool,
}

impl Pins {
    /// What of it lives on one server's connection only (named for an error message), or
    /// `None` when nothing does.
    pub fn server_side(&self, user_vars: bool) -> Option<String> {
        let mut what = Vec::new();
        if self.temporary_tables > 0 {
            what.push("temporary tables");
        }
        if self.lock_tables {
            what.push("LOCK TABLES");
        }
        if self.named_locks {
            what.push("named locks (GET_LOCK)");
        }
        if self.sql_prepared > 0 {
            what.push("SQL prepared statements");
        }
        if user_vars {
            what.push("user variables");
        }
        if self.replay_overflow {
            what.push("session settings rwproxy could not log");
        }
        (!what.is_empty()).then(|| what.join(", "))
    }

    pub fn any(&self) -> bool {
        self.temporary_tables > 0
            || self.lock_tables
            || self.named_locks
            || self.sql_prepared > 0
            || self.replay_overflow
    }
}

#[derive(Debug)]
pub struct SessionState {
    /// In sequence order; superseded entries are skipped and compacted away from time to time.
    log: Vec<LoggedCommand>,
    /// Payload → its live entry in `log`, so a repeated command costs no scan.
    log_index: HashMap<Bytes, usize>,
    log_live: usize,
    log_bytes: usize,
    log_full: bool,
    next_seq: u64,
    pub schema: Option<String>,
    /// Status flags from the last statement (transaction state, autocommit).
    pub status: StatusFlags,
    /// The backend holding the open transaction.
    pub transaction_backend: Option<String>,
    pub next_transaction_read_only: bool,
    pub pins: Pins,
    pub user_vars_on_primary: bool,
    /// The backend whose connection holds this session's server-side state (temporary tables,
    /// locks, user variables…: see [`Pins::server_side`]), while there is any.
    pub pinned_on: Option<String>,
    /// That connection was lost (the server restarted or closed it): the state is gone.
    pub pinned_lost: bool,
    /// The backend that ran the previous statement.
    pub last_backend: Option<String>,
    /// The newest position this session wrote (read-your-writes).
    pub last_write: Option<std::sync::Arc<rwproxy_monitor::GtidPosition>>,
    /// A write's position could not be learned: reads needing it go to the primary.
    pub write_position_unknown: bool,
    /// The client set `session_track_system_variables` itself: it sees every tracked variable
    /// the server reports (rwproxy's own `last_gtid` is otherwise hidden from it).
    pub client_tracks_variables: bool,
    /// The client reset its session (`COM_RESET_CONNECTION`, `COM_CHANGE_USER`): backend
    /// connections opened from now on are reset right after login, as the server's session
    /// would be.
    pub reset_new_connections: bool,
    /// `sql_mode` contains `ANSI_QUOTES` (learnt from the server after a `SET` of `sql_mode`).
    pub ansi_quotes: bool,
    /// The live session commands, oldest first, shared with the connections that carry them
    /// (rebuilt when the log changes).
    image: Option<StateImage>,
    /// What keeps the session on its backend connections beyond the current statement (see
    /// [`crate::sharing`]).
    pub holds: crate::sharing::Holds,
    /// What the previous statement left for `ROW_COUNT()`, `FOUND_ROWS()` and
    /// `LAST_INSERT_ID()`, answered from here when a later statement runs on a connection
    /// another session used in between.
    pub diagnostics: crate::sharing::Diagnostics,
}

/// A session's live session commands in order: two connections that applied the same image
/// (from a fresh login or `COM_RESET_CONNECTION`, with the same account and options) are in
/// the same state.
pub type StateImage = std::sync::Arc<[Bytes]>;

/// Server status flags that describe the session between statements, as the server reports
/// them in an OK to a command that ran nothing (per-statement flags such as
/// `SERVER_MORE_RESULTS_EXISTS` or `SERVER_QUERY_NO_INDEX_USED` are not among them).
pub const BETWEEN_STATEMENTS: StatusFlags = StatusFlags::from_bits_retain(
    StatusFlags::SERVER_STATUS_IN_TRANS.bits()
        | StatusFlags::SERVER_STATUS_AUTOCOMMIT.bits()
        | StatusFlags::SERVER_STATUS_NO_BACKSLASH_ESCAPES.bits()
        | StatusFlags::SERVER_STATUS_IN_TRANS_READONLY.bits()
        | 0x8000, // MariaDB's SERVER_STATUS_ANSI_QUOTES
);

impl SessionState {
    pub fn new(schema: Option<String>) -> Self {
        Self {
            log: Vec::new(),
            log_index: HashMap::new(),
            log_live: 0,
            log_bytes: 0,
            log_full: false,
            next_seq: 1,
            schema,
            status: StatusFlags::SERVER_STATUS_AUTOCOMMIT,
            transaction_backend: None,
            next_transaction_read_only: false,
            pins: Pins::default(),
            user_vars_on_primary: false,
            pinned_on: None,
            pinned_lost: false,
            last_backend: None,
            last_write: None,
            write_position_unknown: false,
            client_tracks_variables: false,
            reset_new_connections: false,
            ansi_quotes: false,
            image: None,
            holds: Default::default(),
            diagnostics: Default::default(),
        }
    }

    /// What a statement prepared from `payload` now is known by in a connection's cache: its
    /// text, and the schema and session state it is prepared under.
    pub fn statement_key(&mut self, payload: &Bytes) -> crate::conn_statements::StatementKey {
        crate::conn_statements::StatementKey {
            payload: payload.clone(),
            schema: self.schema.clone(),
            state: self.image(),
        }
    }

    /// The session commands a connection must have applied to be in this session's state.
    pub fn image(&mut self) -> StateImage {
        if let Some(image) = &self.image {
            return image.clone();
        }
        let image: StateImage = self.pending_since(0).map(|c| c.payload.clone()).collect();
        self.image = Some(image.clone());
        image
    }

    pub fn in_transaction(&self) -> bool {
        self.status.contains(StatusFlags::SERVER_STATUS_IN_TRANS)
    }

    pub fn autocommit_off(&self) -> bool {
        !self.status.contains(StatusFlags::SERVER_STATUS_AUTOCOMMIT)
    }

    /// Records a session command that succeeded. An identical earlier command is superseded
    /// (setting the same thing twice is the same as once, later). Past [`MAX_REPLAY_LOG`]
    /// commands or [`MAX_REPLAY_BYTES`] the log stops growing and the session is pinned to
    /// the primary. Constant time, amortized.
    pub fn log_command(&mut self, payload: Bytes) -> Logged {
        if self.log_full {
            return Logged::Overflow { first: false };
        }
        let previous = self.log_index.get(&payload).copied();
        let live = self.log_live + usize::from(previous.is_none());
        let bytes = self.log_bytes + if previous.is_none() { payload.len() } else { 0 };
        if live > MAX_REPLAY_LOG || bytes > MAX_REPLAY_BYTES {
            self.log_full = true;
            self.pins.replay_overflow = true;
            return Logged::Overflow { first: true };
        }
        if let Some(at) = previous {
            if let Some(old) = self.log.get_mut(at) {
                old.superseded = true;
            }
        }
        let seq = self.next_seq;
        self.next_seq += 1;
        self.image = None;
        self.log_index.insert(payload.clone(), self.log.len());
        self.log.push(LoggedCommand {
            seq,
            payload,
            superseded: false,
        });
        self.log_live = live;
        self.log_bytes = bytes;
        if self.log.len() > 2 * self.log_live + 16 {
            self.compact();
        }
        Logged::At(seq)
    }

    /// Drops superseded entries and rebuilds the index.
    fn compact(&mut self) {
        self.log.retain(|c| !c.superseded);
        self.log_index.clear();
        for (i, c) in self.log.iter().enumerate() {
            self.log_index.insert(c.payload.clone(), i);
        }
    }

    /// The sequence number of the newest logged command (0 when none).
    pub fn log_head(&self) -> u64 {
        self.next_seq - 1
    }

    /// Commands a connection that has applied everything up to `applied` still needs, oldest
    /// first.
    pub fn pending_since(&self, applied: u64) -> impl Iterator<Item = &LoggedCommand> {
        let from = self.log.partition_point(|c| c.seq <= applied);
        self.log[from..].iter().filter(|c| !c.superseded)
    }

    /// Forgets everything (COM_RESET_CONNECTION, COM_CHANGE_USER).
    /// The open transaction is over without a statement saying so (its connection lost, or
    /// ended by rwproxy itself).
    pub fn transaction_gone(&mut self) {
        self.transaction_backend = None;
        self.status.remove(StatusFlags::SERVER_STATUS_IN_TRANS);
    }

    pub fn reset(&mut self, schema: Option<String>) {
        *self = SessionState::new(schema);
    }

    /// Applies the status flags of a finished statement run on `backend`.
    pub fn after_statement(&mut self, backend: &str, status: Option<StatusFlags>) {
        if let Some(status) = status {
            // Only what lasts between statements (a reply rwproxy makes itself, e.g. to
            // COM_PING, must not say "more results" after a multi-statement that failed).
            self.status = status & BETWEEN_STATEMENTS;
            if status.contains(StatusFlags::SERVER_STATUS_IN_TRANS) {
                if self.transaction_backend.as_deref() != Some(backend) {
                    self.transaction_backend = Some(backend.to_string());
                }
            } else {
                self.transaction_backend = None;
            }
        }
        if self.last_backend.as_deref() != Some(backend) {
            self.last_backend = Some(backend.to_string());
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn seq(logged: Logged) -> u64 {
        match logged {
            Logged::At(seq) => seq,
            other => panic!("not logged: {other:?}"),
        }
    }

    #[test]
    fn log_dedups_and_replays_in_order() {
        let mut s = SessionState::new(None);
        let a = seq(s.log_command(Bytes::from_static(b"\x03SET NAMES utf8mb4")));
        let _b = seq(s.log_command(Bytes::from_static(b"\x03SET time_zone='+00:00'")));
        assert_eq!(s.pending_since(0).count(), 2);
        assert_eq!(s.pending_since(a).count(), 1);
        let c = seq(s.log_command(Bytes::from_static(b"\x03SET NAMES utf8mb4")));
        assert_eq!(s.pending_since(0).count(), 2);
        let order: Vec<_> = s.pending_since(0).map(|c| c.payload.clone()).collect();
        assert_eq!(order[1], Bytes::from_static(b"\x03SET NAMES utf8mb4"));
        assert_eq!(s.log_head(), c);
    }

    #[test]
    fn repeated_commands_neither_grow_the_log_nor_overflow_it() {
        let mut s = SessionState::new(None);
        for i in 0..100_000u32 {
            let cmd = format!("\x03SET @v{} = 1", i % 10);
            assert!(matches!(s.log_command(Bytes::from(cmd)), Logged::At(_)));
        }
        assert!(!s.pins.any());
        assert_eq!(s.pending_since(0).count(), 10);
        assert!(s.log.len() <= 2 * 10 + 16, "not compacted: {}", s.log.len());
        // Replay order is the order of the last runs.
        let last: Vec<_> = s.pending_since(0).map(|c| c.payload.clone()).collect();
        assert_eq!(last[9], Bytes::from("\x03SET @v9 = 1"));
        // A connection that has everything up to a point gets only what came after.
        let head = s.log_head();
        s.log_command(Bytes::from_static(b"\x03SET @v3 = 1"));
        let pending: Vec<_> = s.pending_since(head).map(|c| c.payload.clone()).collect();
        assert_eq!(pending, vec![Bytes::from_static(b"\x03SET @v3 = 1")]);
    }

    #[test]
    fn byte_limit_overflows_and_pins() {
        let mut s = SessionState::new(None);
        let big = Bytes::from(vec![b'x'; MAX_REPLAY_BYTES / 2]);
        assert!(matches!(s.log_command(big.clone()), Logged::At(_)));
        // The same command again is no bigger.
        assert!(matches!(s.log_command(big), Logged::At(_)));
        let other = Bytes::from(vec![b'y'; MAX_REPLAY_BYTES / 2 + 1]);
        assert_eq!(s.log_command(other), Logged::Overflow { first: true });
        assert!(s.pins.replay_overflow);
        assert_eq!(
            s.log_command(Bytes::from_static(b"\x03SET @a=1")),
            Logged::Overflow { first: false }
        );
        assert_eq!(s.pending_since(0).count(), 1);
    }

    #[test]
    fn transaction_tracking_from_status() {
        let mut s = SessionState::new(None);
        s.after_statement(
            "db1",
            Some(StatusFlags::SERVER_STATUS_IN_TRANS | StatusFlags::SERVER_STATUS_AUTOCOMMIT),
        );
        assert!(s.in_transaction());
        assert_eq!(s.transaction_backend.as_deref(), Some("db1"));
        s.after_statement("db1", Some(StatusFlags::SERVER_STATUS_AUTOCOMMIT));
        assert!(!s.in_transaction());
        assert_eq!(s.transaction_backend, None);
        s.after_statement("db1", Some(StatusFlags::empty()));
        assert!(s.autocommit_off());
    }

    #[test]
    fn overflow_pins() {
        let mut s = SessionState::new(None);
        for i in 0..MAX_REPLAY_LOG {
            assert!(matches!(
                s.log_command(Bytes::from(format!("\x03SET @v{i}=1"))),
                Logged::At(_)
            ));
        }
        assert!(!s.pins.any());
        assert_eq!(
            s.log_command(Bytes::from_static(b"\x03SET @last=1")),
            Logged::Overflow { first: true }
        );
        assert!(s.pins.any());
        assert_eq!(s.pending_since(0).count(), MAX_REPLAY_LOG);
        s.reset(None);
        assert!(!s.pins.any());
        assert!(matches!(
            s.log_command(Bytes::from_static(b"\x03SET @a=1")),
            Logged::At(1)
        ));
    }
}
