//! What a client session has changed on "its" server, and must look the same on every backend
//! connection it uses: session variables, character set, default schema, options. Plus what
//! ties the session to one server (transactions, temporary tables, locks).

use bytes::Bytes;
use rwproxy_protocol::StatusFlags;

/// Beyond this many distinct session commands a session stops spreading reads (replaying them
/// all on a new connection would cost more than it saves) and stays on the primary.
pub const MAX_REPLAY_LOG: usize = 256;

/// One session command, in the order the client ran it.
#[derive(Debug, Clone)]
pub struct LoggedCommand {
    pub seq: u64,
    /// The command packet payload exactly as the client sent it.
    pub payload: Bytes,
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
    log: Vec<LoggedCommand>,
    next_seq: u64,
    pub schema: Option<String>,
    /// Status flags from the last statement (transaction state, autocommit).
    pub status: StatusFlags,
    /// The backend holding the open transaction.
    pub transaction_backend: Option<String>,
    pub next_transaction_read_only: bool,
    pub pins: Pins,
    pub user_vars_on_primary: bool,
    /// The backend that ran the previous statement.
    pub last_backend: Option<String>,
    /// The newest position this session wrote (read-your-writes).
    pub last_write: Option<std::sync::Arc<rwproxy_monitor::GtidPosition>>,
    /// A write's position could not be learned: reads needing it go to the primary.
    pub write_position_unknown: bool,
    /// `sql_mode` contains `ANSI_QUOTES` (learnt from the server after a `SET` of `sql_mode`).
    pub ansi_quotes: bool,
}

impl SessionState {
    pub fn new(schema: Option<String>) -> Self {
        Self {
            log: Vec::new(),
            next_seq: 1,
            schema,
            status: StatusFlags::SERVER_STATUS_AUTOCOMMIT,
            transaction_backend: None,
            next_transaction_read_only: false,
            pins: Pins::default(),
            user_vars_on_primary: false,
            last_backend: None,
            last_write: None,
            write_position_unknown: false,
            ansi_quotes: false,
        }
    }

    pub fn in_transaction(&self) -> bool {
        self.status.contains(StatusFlags::SERVER_STATUS_IN_TRANS)
    }

    pub fn autocommit_off(&self) -> bool {
        !self.status.contains(StatusFlags::SERVER_STATUS_AUTOCOMMIT)
    }

    /// Records a session command that succeeded; returns its sequence number. An identical
    /// earlier command is dropped (setting the same thing twice is the same as once, later).
    pub fn log_command(&mut self, payload: Bytes) -> u64 {
        self.log.retain(|c| c.payload != payload);
        let seq = self.next_seq;
        self.next_seq += 1;
        self.log.push(LoggedCommand { seq, payload });
        if self.log.len() > MAX_REPLAY_LOG {
            self.pins.replay_overflow = true;
        }
        seq
    }

    /// The sequence number of the newest logged command (0 when none).
    pub fn log_head(&self) -> u64 {
        self.next_seq - 1
    }

    /// Commands a connection that has applied everything up to `applied` still needs.
    pub fn pending_since(&self, applied: u64) -> impl Iterator<Item = &LoggedCommand> {
        self.log.iter().filter(move |c| c.seq > applied)
    }

    /// Forgets everything (COM_RESET_CONNECTION, COM_CHANGE_USER).
    pub fn reset(&mut self, schema: Option<String>) {
        *self = SessionState::new(schema);
    }

    /// Applies the status flags of a finished statement run on `backend`.
    pub fn after_statement(&mut self, backend: &str, status: Option<StatusFlags>) {
        if let Some(status) = status {
            self.status = status;
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

    #[test]
    fn log_dedups_and_replays_in_order() {
        let mut s = SessionState::new(None);
        let a = s.log_command(Bytes::from_static(b"\x03SET NAMES utf8mb4"));
        let _b = s.log_command(Bytes::from_static(b"\x03SET time_zone='+00:00'"));
        assert_eq!(s.pending_since(0).count(), 2);
        assert_eq!(s.pending_since(a).count(), 1);
        let c = s.log_command(Bytes::from_static(b"\x03SET NAMES utf8mb4"));
        assert_eq!(s.pending_since(0).count(), 2);
        let order: Vec<_> = s.pending_since(0).map(|c| c.payload.clone()).collect();
        assert_eq!(order[1], Bytes::from_static(b"\x03SET NAMES utf8mb4"));
        assert_eq!(s.log_head(), c);
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
        for i in 0..=MAX_REPLAY_LOG {
            s.log_command(Bytes::from(format!("\x03SET @v{i}=1")));
        }
        assert!(s.pins.any());
    }
}
