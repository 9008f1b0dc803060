//! Transaction replay (issue #16 item 3), the I/O: when the server of a recorded transaction
//! is lost, wait for a primary as writes do, open the transaction there with the session's
//! state (the same connection set-up as any move), run the recorded statements again without
//! relaying them, compare each result's checksum, and either hand back to the statement that
//! was interrupted or roll back and tell the client. The policy is in [`crate::replay`].

use std::sync::Arc;

use rwproxy_backend::{BackendError, Failure};
use rwproxy_monitor::PrimaryState;
use rwproxy_protocol::frame::{self, HEADER_LEN, MAX_CHUNK};
use rwproxy_protocol::response::{Expect, PacketKind, ResponseTracker};
use rwproxy_protocol::{CapabilityFlags, StatusFlags};
use rwproxy_transport::{PacketStream, TransportError};

use crate::error::ClientError;
use crate::events::Signals;
use crate::observer::ReplayOutcome;
use crate::placement::Placed;
use crate::prepared::{OnBackend, PreparedSet};
use crate::relay::{RelayOutcome, PREFIX_LEN, WHOLE_PACKET_LIMIT};
use crate::replay::{self, Checksum, Failed, ResultChecksum, TransactionLog, Verdict};
use crate::session::Session;

/// A transaction is replayed at most this many times for one statement (its new primary may
/// be lost too).
pub(crate) const MAX_REPLAYS_PER_STATEMENT: u32 = 3;

/// Transaction replay around one statement of a recorded transaction.
pub(crate) struct StatementReplay {
    /// The loss of the transaction's connection is handed to [`Session::replay_transaction`].
    pub replayable: bool,
    /// The statement may commit the transaction ([`replay::may_commit`]).
    in_flight_commits: bool,
    /// How often the transaction was replayed for this statement.
    replays: u32,
}

impl StatementReplay {
    pub(crate) fn new(replayable: bool, in_flight_commits: bool) -> Self {
        Self {
            replayable,
            in_flight_commits,
            replays: 0,
        }
    }
}

/// How a replay stopped early.
enum Stop {
    /// Statement `at` gave another result.
    Mismatch { at: usize },
    /// The new primary could not be opened.
    Open(BackendError),
    /// The new primary failed while replaying.
    Failed(String),
}

impl Session {
    /// Whether the statement about to run is part of a transaction being recorded, and the
    /// monitor now names another primary than the transaction's server (a switch made
    /// elsewhere while the old server still answers): the transaction is then abandoned there
    /// (closing the connection rolls it back) and carried over. Returns what was lost. A
    /// transaction that is no longer replayable stays where it is, as without replay.
    pub(crate) fn primary_moved_under_transaction(&mut self) -> Option<String> {
        if !self.replay.recording() {
            return None;
        }
        let log = self.replay.log()?;
        let old = log.backend();
        if self.state.transaction_backend.as_deref() != Some(old) {
            return None;
        }
        let new = match &self.ctx.monitor().current().primary {
            PrimaryState::One(p) if p.as_str() != old => p.clone(),
            _ => return None,
        };
        let lost = format!("'{old}' is no longer the primary ('{new}' is)");
        let old = old.to_string();
        tracing::info!(from = %old, to = %new, "the primary changed under a recorded transaction; replaying it on the new primary");
        self.drop_connection(&old);
        self.publish_threads();
        self.state.transaction_gone();
        Some(lost)
    }

    /// Whether `err` lost the connection holding the recorded transaction (the statement was
    /// `sent` on it, or not); if so, that connection is dropped (and the monitor told when the
    /// server looks unhealthy), and the caller replays the transaction.
    pub(crate) fn recorded_transaction_lost(&mut self, err: &BackendError, sent: bool) -> bool {
        let connection_lost = err.is_unreachable() || matches!(err, BackendError::Stale { .. });
        let on_it = self
            .replay
            .log()
            .is_some_and(|log| log.backend() == err.backend());
        if !connection_lost || !on_it {
            return false;
        }
        tracing::info!(backend = %err.backend(), error = %err, sent, "the connection holding a recorded transaction was lost");
        if err.failure() == Failure::Unhealthy {
            self.note_backend_failure(err);
        } else {
            self.drop_connection(err.backend());
        }
        true
    }

    /// Whether the command `payload`, lost in flight, left nothing behind on the server
    /// ([`replay::void_when_lost`]): it may then wait for the new primary as a statement that
    /// was never sent does.
    pub(crate) fn void_when_lost(&self, payload: &[u8]) -> bool {
        match payload.split_first() {
            Some((&rwproxy_protocol::command::COM_QUERY, sql)) => {
                let class = self.classify(sql);
                replay::void_when_lost(
                    self.state.in_transaction(),
                    class.kind,
                    class.flags.contains(rwproxy_sql::Flags::MULTI_STATEMENT),
                )
            }
            _ => false,
        }
    }

    /// [`Session::replay_transaction`] for the statement `replay` follows, at most
    /// [`MAX_REPLAYS_PER_STATEMENT`] times.
    pub(crate) async fn replay_transaction_for(
        &mut self,
        replay: &mut StatementReplay,
        lost: &str,
        sent: bool,
    ) -> Result<bool, ClientError> {
        replay.replays += 1;
        let allowed = replay.replays <= MAX_REPLAYS_PER_STATEMENT;
        self.replay_transaction(lost, replay.in_flight_commits, sent, allowed)
            .await
    }

    /// Tells the recorder about an execute of prepared statement `id` (the client's
    /// `client_payload`) that ran on `chosen`: recorded with its parameters (and their types)
    /// and its result's checksum when it belongs to a recorded transaction.
    #[allow(clippy::too_many_arguments)]
    pub(crate) fn record_execute(
        &mut self,
        client_payload: &[u8],
        id: u32,
        class: &rwproxy_sql::Classification<'_>,
        chosen: &Placed,
        outcome: &RelayOutcome,
        was_in_transaction: bool,
        unsupported: Option<&'static str>,
    ) {
        let (enabled, max) = {
            let routing = &self.ctx.config_guard().routing;
            (
                routing.transaction_replay,
                routing.transaction_replay_max_size,
            )
        };
        let (prepare, params, types) = match self.prepared.get(id) {
            Some(stmt) => (
                stmt.prepare_payload.clone(),
                stmt.params,
                stmt.types.clone(),
            ),
            None => (bytes::Bytes::new(), 0, None),
        };
        let mut unsupported = unsupported;
        if prepare.is_empty() {
            unsupported = unsupported.or(Some("a prepared statement closed while it ran"));
        }
        let recorded = match (outcome.checksum, unsupported) {
            (Some(_), None) => {
                match replay::execute_to_record(client_payload, params, types.as_deref()) {
                    Ok(p) => Some(p),
                    Err(_) => {
                        unsupported = Some("a malformed COM_STMT_EXECUTE");
                        None
                    }
                }
            }
            _ => None,
        };
        let finished = self.finished_statement(
            (enabled, max),
            recorded.as_deref().unwrap_or(client_payload),
            class,
            chosen,
            outcome,
            was_in_transaction,
        );
        let executed = replay::Executed {
            client_id: id,
            prepare: &prepare,
            unsupported,
        };
        let recorded = self.replay.finished_execute(&finished, executed);
        overflow_noted(recorded, max);
    }

    /// What the recorder is told of a statement (`payload`, as the server got it) that ran on
    /// `chosen` with `outcome`; `replay`: `routing.transaction_replay` and its max size.
    pub(crate) fn finished_statement<'a>(
        &self,
        (enabled, max): (bool, u64),
        payload: &'a [u8],
        class: &rwproxy_sql::Classification<'_>,
        chosen: &'a Placed,
        outcome: &RelayOutcome,
        was_in_transaction: bool,
    ) -> replay::Finished<'a> {
        replay::Finished {
            enabled,
            max_size: usize::try_from(max).unwrap_or(usize::MAX),
            payload,
            kind: class.kind,
            session_scope: class.flags.contains(rwproxy_sql::Flags::SESSION_SCOPE),
            checksum: outcome.checksum,
            ok: outcome.error_code.is_none(),
            local_infile: outcome.local_infile,
            was_in_transaction,
            in_transaction: self.state.in_transaction(),
            backend: &chosen.backend,
            on_primary: chosen.role == rwproxy_router::DestRole::Primary,
        }
    }

    /// The recorded transaction's server was lost (`lost` says how) while the statement of
    /// kind `in_flight_commits` was running (`sent`) or about to run. Replays the transaction
    /// on the primary; `Ok(true)`: the statement can run again there; `Ok(false)`: the client
    /// got an error, the session is outside any transaction.
    pub(crate) async fn replay_transaction(
        &mut self,
        lost: &str,
        in_flight_commits: bool,
        sent: bool,
        allowed: bool,
    ) -> Result<bool, ClientError> {
        let Some(mut log) = self.replay.take_log() else {
            // Not recorded after all: the transaction is lost, as without replay.
            let (code, state) = rwproxy_protocol::reply::codes::SERVER_LOST;
            self.send_error(
                1,
                (code, state),
                format!("{lost}; the open transaction is lost"),
            )
            .await?;
            return Ok(false);
        };
        self.ctx
            .observer
            .transaction_replay(ReplayOutcome::Attempted);
        let verdict = if !allowed {
            Verdict::GiveUp(Failed::Error)
        } else if self.state.pinned_on.is_some() {
            Verdict::GiveUp(Failed::Unsupported(
                "session state that cannot move (temporary tables, locks, user variables)",
            ))
        } else {
            replay::decide(&log, in_flight_commits, sent)
        };
        let result = match verdict {
            Verdict::GiveUp(failed) => Err(failed),
            Verdict::Replay => self.replay_log(&log).await,
        };
        match result {
            Ok(backend) => {
                tracing::info!(from = %log.backend(), to = %backend, statements = log.len(), "transaction replayed on the new primary");
                self.ctx
                    .observer
                    .transaction_replay(ReplayOutcome::Succeeded);
                log.moved_to(backend);
                self.replay.restore(log);
                Ok(true)
            }
            Err(failed) => {
                tracing::info!(backend = %log.backend(), reason = ?failed, "transaction not replayed");
                self.ctx.observer.transaction_replay(failed.into());
                self.state.transaction_gone();
                let (code, state, message) = replay::client_error(failed, lost);
                self.send_error(1, (code, &state), message).await?;
                Ok(false)
            }
        }
    }

    /// Waits for a primary other than `failed` (or `failed` back up), opens the transaction
    /// there and replays `log`, checking each checksum. On success the session's
    /// transaction is open on the returned backend; on failure whatever was replayed is rolled
    /// back.
    async fn replay_log(&mut self, log: &TransactionLog) -> Result<Arc<str>, Failed> {
        if !self.wait_for_another_primary(log.backend()).await {
            return Err(Failed::NoPrimary);
        }
        let primary = match &self.ctx.monitor().current().primary {
            PrimaryState::One(p) => self.names.get(p),
            _ => return Err(Failed::NoPrimary),
        };
        if let Err(err) = self.drop_if_stale(&primary).await {
            tracing::warn!(backend = %primary, error = %err, "cannot use the new primary for a transaction replay");
            return Err(Failed::Error);
        }
        let handle = self.handle.clone();
        let image = self.state.image();
        let replayed = {
            let (backends, ctx, who, state, prepared) = (
                &mut self.backends,
                &self.ctx,
                &self.who,
                &self.state,
                &mut self.prepared,
            );
            let borrower = crate::backend_set::Borrower {
                id: self.lend_token,
                state,
                image: &image,
            };
            let run = async {
                let slot = backends
                    .ready(ctx, &primary, who, &borrower)
                    .await
                    .map_err(Stop::Open)?;
                handle.set_connecting(None);
                handle.set_in_flight(Some(slot.thread.clone()));
                replay_entries(&mut slot.conn, log, prepared, &primary).await
            };
            tokio::pin!(run);
            // Registered as waiting on the new primary: if the monitor declares it down (a
            // frozen server), the replay ends instead of hanging with it.
            handle.set_connecting(Some(primary.clone()));
            loop {
                tokio::select! {
                    biased;
                    r = &mut run => break r,
                    _ = handle.events.wait(Signals::BACKEND_DOWN) => {
                        if crate::down_watch::is_down(&self.ctx, &primary) {
                            break Err(Stop::Failed("declared down by the monitor".into()));
                        }
                    }
                }
            }
        };
        handle.set_connecting(None);
        handle.set_in_flight(None);
        match replayed {
            Ok(status) => {
                self.state.after_statement(&primary, status);
                self.publish_threads();
                Ok(primary)
            }
            Err(Stop::Mismatch { at }) => {
                tracing::info!(backend = %primary, statement = at + 1, "a replayed statement gave a different result; rolling the transaction back");
                self.roll_back_on(&primary).await;
                Err(Failed::Mismatch { at })
            }
            Err(Stop::Open(err)) => {
                tracing::warn!(backend = %primary, error = %err, "cannot open the new primary for a transaction replay");
                self.replay_connection_failed(&err);
                Err(Failed::Error)
            }
            Err(Stop::Failed(why)) => {
                tracing::warn!(backend = %primary, error = %why, "transaction replay failed");
                // Closing the connection rolls back whatever was replayed.
                self.drop_connection(&primary);
                self.publish_threads();
                Err(Failed::Error)
            }
        }
    }

    /// Rolls back the replayed transaction on `backend` (closing the connection if that fails,
    /// which rolls it back too).
    async fn roll_back_on(&mut self, backend: &str) {
        let rolled_back = match self.backends.get_mut(backend) {
            Some(slot) => slot.conn.query("ROLLBACK").await.is_ok_and(|o| o.is_ok()),
            None => true,
        };
        if !rolled_back {
            self.drop_connection(backend);
            self.publish_threads();
        }
    }

    fn replay_connection_failed(&mut self, err: &BackendError) {
        if err.failure() == Failure::Unhealthy {
            self.note_backend_failure(err);
        } else {
            self.drop_connection(err.backend());
        }
    }
}

/// Replays `log` on `conn` (to `backend`): the status flags after the last statement, with a
/// transaction open. The prepared statements it executed are prepared there first, unless the
/// session has them on that connection already; those the client still has are remembered
/// (`prepared`) for its next executes, the others (closed by the client since) are closed.
async fn replay_entries(
    conn: &mut rwproxy_backend::BackendConn,
    log: &TransactionLog,
    prepared: &mut PreparedSet,
    backend: &str,
) -> Result<Option<StatusFlags>, Stop> {
    let mut orphans = Vec::new();
    let result = replay_statements(conn, log, prepared, backend, &mut orphans).await;
    if !matches!(result, Err(Stop::Failed(_))) {
        for id in orphans {
            let mut close = [rwproxy_protocol::command::COM_STMT_CLOSE, 0, 0, 0, 0];
            close[1..].copy_from_slice(&id.to_le_bytes());
            if let Err(e) = conn.stream().write_packet(&mut 0, &close).await {
                return Err(Stop::Failed(e.to_string()));
            }
        }
    }
    result
}

async fn replay_statements(
    conn: &mut rwproxy_backend::BackendConn,
    log: &TransactionLog,
    prepared: &mut PreparedSet,
    backend: &str,
    orphans: &mut Vec<u32>,
) -> Result<Option<StatusFlags>, Stop> {
    let deprecate_eof = conn
        .capabilities()
        .contains(CapabilityFlags::CLIENT_DEPRECATE_EOF);
    let mut status = None;
    // The new server's id of each prepared statement of the log, once known.
    let mut ids: Vec<Option<u32>> = vec![None; log.statement_count()];
    let mut packet = Vec::new();
    for (at, entry) in log.entries().enumerate() {
        let payload = match entry.statement {
            None => entry.payload,
            Some(statement) => {
                let known = ids.get(statement.index).copied().flatten();
                let id = match known {
                    Some(id) => id,
                    None => {
                        let id = server_statement(conn, prepared, backend, statement, orphans)
                            .await
                            .map_err(|e| Stop::Failed(e.to_string()))?;
                        if let Some(slot) = ids.get_mut(statement.index) {
                            *slot = Some(id);
                        }
                        id
                    }
                };
                packet.clear();
                packet.extend_from_slice(entry.payload);
                rwproxy_protocol::command::set_stmt_id(&mut packet, id)
                    .map_err(|e| Stop::Failed(e.to_string()))?;
                &packet[..]
            }
        };
        match run_checksummed(conn.stream(), payload, deprecate_eof).await {
            Ok((checksum, s)) if checksum == entry.checksum => status = s.or(status),
            Ok(_) => return Err(Stop::Mismatch { at }),
            Err(e) => return Err(Stop::Failed(e.to_string())),
        }
    }
    if !status.is_some_and(|s| s.contains(StatusFlags::SERVER_STATUS_IN_TRANS)) {
        // Every result matched but the server has no transaction open: not the same
        // transaction.
        return Err(Stop::Mismatch {
            at: log.len().saturating_sub(1),
        });
    }
    Ok(status)
}

/// The id on `conn` (to `backend`) of a prepared statement of the log: the session's, when it
/// still has the same statement prepared there; otherwise it is prepared now, and remembered
/// for the session when the client still has it (else it is an orphan, closed after the
/// replay).
async fn server_statement(
    conn: &mut rwproxy_backend::BackendConn,
    prepared: &mut PreparedSet,
    backend: &str,
    statement: replay::LoggedStatement<'_>,
    orphans: &mut Vec<u32>,
) -> Result<u32, BackendError> {
    let same = |p: &crate::prepared::Prepared| p.prepare_payload[..] == *statement.prepare;
    if let Some(on) = prepared
        .get(statement.client_id)
        .filter(|p| same(p))
        .and_then(|p| p.on(backend))
    {
        return Ok(on.id);
    }
    let ok = crate::stmt::prepare_statement(conn, statement.prepare).await?;
    match prepared.get_mut(statement.client_id).filter(|p| same(p)) {
        Some(p) => p.on.push(OnBackend {
            backend: backend.to_string(),
            id: ok.stmt_id,
            types_seen: 0,
        }),
        None => orphans.push(ok.stmt_id),
    }
    Ok(ok.stmt_id)
}

/// Sends one recorded command on `stream` and reads its whole response without relaying it,
/// checksummed exactly as the relay checksums what it forwards: the checksum and the final
/// status flags.
async fn run_checksummed(
    stream: &mut PacketStream,
    payload: &[u8],
    deprecate_eof: bool,
) -> Result<(Checksum, Option<StatusFlags>), TransportError> {
    let mut seq = 0u8;
    stream.write_packet(&mut seq, payload).await?;
    let mut tracker = ResponseTracker::new(Expect::ResultSet, deprecate_eof);
    let mut checksum = ResultChecksum::default();
    let mut passthrough = 0usize;
    let mut continuation = false;
    loop {
        let mut done = false;
        let consumed = {
            let buf = stream.buffered();
            let mut pos = 0usize;
            if passthrough > 0 {
                let n = passthrough.min(buf.len());
                checksum.more(&buf[..n]);
                pos = n;
                passthrough -= n;
            }
            while passthrough == 0 && !done {
                let Some((len, _)) = frame::peek_header(&buf[pos..]) else {
                    break;
                };
                let avail = buf.len() - pos - HEADER_LEN;
                let whole = avail >= len;
                let start = pos + HEADER_LEN;
                if continuation {
                    continuation = len == MAX_CHUNK;
                    checksum.continuation(len, &buf[start..start + len.min(avail)]);
                } else {
                    if !whole && (len <= WHOLE_PACKET_LIMIT || avail < PREFIX_LEN) {
                        break;
                    }
                    let piece = &buf[start..start + len.min(avail)];
                    let step = tracker.on_packet(piece, len)?;
                    if step.kind == PacketKind::LocalInfile {
                        // Never recorded; a server asking for a file now is not the same.
                        return Err(TransportError::Protocol(
                            rwproxy_protocol::ProtocolError::Unexpected(
                                "LOCAL INFILE request while replaying a transaction",
                            ),
                        ));
                    }
                    continuation = len == MAX_CHUNK;
                    checksum.packet(step.kind, len, piece);
                    done = step.done;
                }
                if whole {
                    pos += HEADER_LEN + len;
                } else {
                    passthrough = len - avail;
                    pos = buf.len();
                }
            }
            pos
        };
        stream.consume(consumed);
        if done {
            return Ok((checksum.finish(), tracker.last_status()));
        }
        if stream.fill().await? == 0 {
            return Err(TransportError::Closed);
        }
    }
}

/// Logs a transaction that outgrew `routing.transaction_replay_max_size` (`max`).
pub(crate) fn overflow_noted(recorded: replay::Recorded, max: u64) {
    if recorded == replay::Recorded::Overflowed {
        tracing::debug!(
            max,
            "transaction larger than routing.transaction_replay_max_size; it is no longer replayable"
        );
    }
}
