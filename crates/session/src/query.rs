//! Text-protocol statements: classify, decide, resolve the decision to one backend, run it
//! there with the response relayed to the client, and learn from the outcome.

use crate::events::Signals;
use std::time::Instant;

use bytes::Bytes;
use rwproxy_backend::{BackendError, Failure};
use rwproxy_config::Consistency;
use rwproxy_protocol::response::Expect;
use rwproxy_protocol::CapabilityFlags;
use rwproxy_router::{after_failure, decide, AfterFailure, FailedAttempt, Reason, SessionView};
use rwproxy_sql::{classify_session, Classification, ClassifyOptions, Flags, StatementKind};

use crate::error::ClientError;
use crate::placement::{Placed, Routed};
use crate::relay::{relay_response, Progress, RelayError, RelayOptions, RelayOutcome};
use crate::session::{Flow, Session};

/// How running a statement on a backend failed.
pub(crate) enum RunError {
    /// The statement was never written to a server (connecting, logging in or writing to the
    /// connection failed): running it elsewhere cannot run it twice.
    NotSent(BackendError),
    /// The statement was written but nothing reached the client: its outcome on the server is
    /// unknown; a read may be retried, anything else is answered with an error.
    Backend(BackendError),
    /// The backend failed mid-response: the client got an error packet already (or is gone).
    MidResponse,
    /// The client went away.
    Client(ClientError),
}

/// What the relay changes in a reply.
#[derive(Debug, Clone, Default)]
pub(crate) struct ReplyRewrite {
    /// rwproxy's own id for a prepared statement (in the `COM_STMT_PREPARE` OK).
    pub stmt_id: Option<u32>,
    /// The statement reads the process list (ids of rwproxy's backend threads are rewritten).
    pub process_list: Option<crate::processlist::ProcessList>,
    /// The statement's `CONNECTION_ID()` calls were replaced: column names are mapped back.
    pub names: Option<std::sync::Arc<rwproxy_sql::connection_id::Substituted>>,
    /// The statement reads session status (the client connection's TLS and compression show).
    pub session_status: bool,
    /// Checksum the reply (transaction replay records it).
    pub checksum: bool,
    /// The statement asks about the previous one (`ROW_COUNT()`, `FOUND_ROWS()`, …): on
    /// another connection than the one that ran it, the values rwproxy kept are put in.
    pub diagnostics: bool,
    /// The statement may read `LAST_INSERT_ID()`: on a connection where it differs, the
    /// session's value is set first.
    pub insert_id: bool,
}

/// How running a routed statement ended.
pub(crate) enum Ran {
    /// It ran; the answer was relayed.
    Done(Placed, RelayOutcome),
    /// The client got an error instead.
    Answered,
    /// The connection holding the recorded transaction was lost (`sent`: while the statement
    /// ran on it); the client was told nothing yet.
    TransactionLost { err: BackendError, sent: bool },
}

impl Session {
    pub(crate) fn view(&self) -> SessionView<'_> {
        let user_consistency = self
            .ctx
            .config_guard()
            .user(&self.who.user)
            .and_then(|u| u.consistency);
        SessionView {
            in_transaction: self.state.in_transaction(),
            transaction_backend: self.state.transaction_backend.as_deref(),
            autocommit_off: self.state.autocommit_off(),
            next_transaction_read_only: self.state.next_transaction_read_only,
            pinned: self.state.pins.any(),
            user_vars_on_primary: self.state.user_vars_on_primary,
            last_backend: self.state.last_backend.as_deref(),
            user_consistency,
        }
    }

    /// Sends `payload` to `backend` (opening and syncing the connection first) and relays the
    /// response to the client.
    pub(crate) async fn run_on(
        &mut self,
        backend: &str,
        payload: &[u8],
        expect: Expect,
        rewrite: ReplyRewrite,
    ) -> Result<RelayOutcome, RunError> {
        // A statement not yet written to any server is sent on a fresh connection when the one
        // kept for it turns out to be dead: once when it was closed while idle, once more when
        // writing to it fails.
        let mut attempt = 0;
        let mut substituted;
        let options = self.classify_options();
        let (slot, backend_caps) = loop {
            attempt += 1;
            self.drop_if_stale(backend)
                .await
                .map_err(RunError::NotSent)?;
            let opening = !self.backends.is_open(backend);
            if opening {
                self.handle
                    .set_connecting(Some(std::sync::Arc::from(backend)));
            }
            // A new connection to a frozen server waits for a greeting that never comes: the
            // wait ends when the monitor declares the server down (reads then go elsewhere).
            let image = self.state.image();
            let readied = {
                let borrower = crate::backend_set::Borrower {
                    id: self.lend_token,
                    state: &self.state,
                    image: &image,
                };
                let ready = self
                    .backends
                    .ready(&self.ctx, backend, &self.who, &borrower);
                tokio::pin!(ready);
                loop {
                    tokio::select! {
                        biased;
                        r = &mut ready => break Some(r),
                        _ = self.handle.events.wait(Signals::BACKEND_DOWN), if opening => {
                            if crate::down_watch::is_down(&self.ctx, backend) {
                                break None;
                            }
                        }
                    }
                }
            };
            if opening {
                self.handle.set_connecting(None);
            }
            match readied {
                Some(r) => r.map(|_| ()).map_err(RunError::NotSent)?,
                None => {
                    return Err(RunError::NotSent(BackendError::MarkedDown {
                        backend: backend.to_string(),
                    }))
                }
            }
            if opening {
                self.publish_threads();
            }
            let Some(slot) = self.backends.get_mut(backend) else {
                return Err(RunError::NotSent(BackendError::Protocol {
                    backend: backend.to_string(),
                    what: "connection vanished after it was opened".into(),
                }));
            };
            let backend_caps = slot.conn.capabilities();
            self.handle.set_in_flight(Some(slot.thread.clone()));
            // Checked after the statement is registered as in flight: a backend declared down
            // from here on notifies this session (`down_watch`); one declared down before is
            // seen now.
            if crate::down_watch::is_down(&self.ctx, backend) {
                self.handle.set_in_flight(None);
                return Err(RunError::NotSent(BackendError::MarkedDown {
                    backend: backend.to_string(),
                }));
            }
            if rewrite.insert_id {
                if let Err(e) = slot.set_insert_id(self.state.diagnostics.insert_id).await {
                    self.handle.set_in_flight(None);
                    return Err(RunError::NotSent(e));
                }
            }
            // A process-list statement sees the server's id of the connection it runs on.
            let thread_id = slot.conn.thread_id();
            let elsewhere = slot.foreign || slot.serial != self.state.diagnostics.serial;
            substituted = match rewrite.process_list {
                Some(_) => payload.get(1..).and_then(|sql| {
                    rwproxy_sql::connection_id::substitute(sql, thread_id, options)
                }),
                // A statement about the previous one, on another connection than the one that
                // ran it: what rwproxy kept of that statement's reply is put in.
                None if rewrite.diagnostics
                    && elsewhere
                    && payload.first() == Some(&rwproxy_protocol::command::COM_QUERY) =>
                {
                    let calls = self.state.diagnostics.calls();
                    let calls: [(&[u8], &str); 2] =
                        [(calls[0].0, &calls[0].1), (calls[1].0, &calls[1].1)];
                    payload.get(1..).and_then(|sql| {
                        rwproxy_sql::connection_id::substitute_calls(sql, &calls, options)
                    })
                }
                None => None,
            };
            let resent = substituted
                .as_ref()
                .map(|s| [&payload[..1], &s.sql[..]].concat());
            let mut seq = 0u8;
            let sent = resent.as_deref().unwrap_or(payload);
            match slot.conn.stream().write_packet(&mut seq, sent).await {
                Ok(()) => break (slot, backend_caps),
                Err(e) => {
                    self.handle.set_in_flight(None);
                    // Prepared-statement commands name the statement by its id on the lost
                    // connection: they cannot simply be sent again.
                    let resendable = !matches!(payload.first(), Some(0x16..=0x1c | 0xfa));
                    if opening || attempt > 1 || !resendable {
                        return Err(RunError::NotSent(BackendError::Lost {
                            backend: backend.to_string(),
                            source: e,
                        }));
                    }
                    // The server closed the kept connection: nothing was executed.
                    tracing::info!(backend, error = %e, "writing to a kept backend connection failed; sending the statement on a new one");
                    self.forget_connection(backend).map_err(RunError::NotSent)?;
                }
            }
        };
        let owners = rewrite
            .process_list
            .map(|_| self.ctx.registry.thread_owners(backend));
        let client_hop = rewrite
            .session_status
            .then(|| crate::session_status::ClientHop {
                compression: self.client.is_compressed(),
                tls: self.client.get_ref().tls_names(),
            });
        let opts = RelayOptions {
            expect,
            deprecate_eof: backend_caps.contains(CapabilityFlags::CLIENT_DEPRECATE_EOF),
            backend_session_track: backend_caps.contains(CapabilityFlags::CLIENT_SESSION_TRACK),
            strip_session_state: !self
                .client_caps
                .contains(CapabilityFlags::CLIENT_SESSION_TRACK),
            hide_own_tracking: !self.state.client_tracks_variables,
            rewrite_stmt_id: rewrite.stmt_id,
            process_list: rewrite.process_list.zip(owners.as_ref()),
            column_names: substituted.as_ref().or(rewrite.names.as_deref()),
            client_hop: client_hop.as_ref(),
            checksum: rewrite.checksum,
        };
        let mut progress = Progress::default();
        let result = {
            let relay = relay_response(
                slot.conn.stream(),
                &mut self.client,
                opts,
                &mut self.scratch,
                &mut progress,
            );
            tokio::pin!(relay);
            // If the monitor declares the backend down while the statement waits (a hung or
            // frozen server), the wait ends instead of hanging with the server.
            loop {
                tokio::select! {
                    biased;
                    r = &mut relay => break Some(r),
                    _ = self.handle.events.wait(Signals::BACKEND_DOWN) => {
                        if crate::down_watch::is_down(&self.ctx, backend) {
                            break None;
                        }
                    }
                }
            }
        };
        self.handle.set_in_flight(None);
        let Some(result) = result else {
            let err = BackendError::MarkedDown {
                backend: backend.to_string(),
            };
            if !progress.sent {
                return Err(RunError::Backend(err));
            }
            self.note_backend_failure(&err);
            let (code, state, message) = err.client_error();
            let _ = self
                .send_error(progress.last_seq.wrapping_add(1), (code, &state), message)
                .await;
            return Err(RunError::MidResponse);
        };
        match result {
            Ok(outcome) => {
                if let Some(gtid) = &outcome.last_gtid {
                    self.note_gtid(gtid);
                }
                self.state.diagnostics.after_statement(
                    outcome.error_code.is_some(),
                    outcome.result_set,
                    outcome.last_result_rows,
                    outcome.affected_rows,
                    outcome.insert_id,
                );
                if let Some(slot) = self.backends.get_mut(backend) {
                    if outcome.insert_id != 0 {
                        slot.insert_id = outcome.insert_id;
                    }
                    if outcome.warnings > 0 || outcome.error_code.is_some() {
                        slot.diag_dirty = true;
                    }
                    slot.foreign = false;
                    self.state.diagnostics.serial = slot.serial;
                }
                Ok(outcome)
            }
            Err(RelayError::Client(e)) => Err(RunError::Client(ClientError::Transport(e))),
            Err(RelayError::Backend {
                source,
                sent_to_client,
                last_seq,
            }) => {
                let err = match source {
                    // A reply rwproxy cannot follow: this connection is unusable, the server
                    // is not thereby broken.
                    rwproxy_transport::TransportError::Protocol(e) => BackendError::Protocol {
                        backend: backend.to_string(),
                        what: format!("a reply rwproxy cannot follow ({e})"),
                    },
                    source => BackendError::Lost {
                        backend: backend.to_string(),
                        source,
                    },
                };
                if !sent_to_client {
                    return Err(RunError::Backend(err));
                }
                self.note_backend_failure(&err);
                let (code, state, message) = err.client_error();
                let _ = self
                    .send_error(last_seq.wrapping_add(1), (code, &state), message)
                    .await;
                Err(RunError::MidResponse)
            }
        }
    }

    /// Before a kept connection to `backend` is used: if the server closed it while it was
    /// idle (a restart, `wait_timeout`, `KILL`), it is dropped so that the next use opens a new
    /// one with the session's state replayed. That says nothing against the server (it is not
    /// reported); only an open transaction on it is lost, which the client is told.
    pub(crate) async fn drop_if_stale(&mut self, backend: &str) -> Result<(), BackendError> {
        let Some(slot) = self.backends.get_mut(backend) else {
            return Ok(());
        };
        // Answers to pings forwarded without waiting are read first (they are not stray data).
        let settled = !slot.conn.has_deferred() || slot.conn.settle().await.is_ok();
        if settled && !slot.conn.stream().closed_while_idle() {
            return Ok(());
        }
        tracing::info!(
            backend,
            "backend connection was closed while idle; opening a new one"
        );
        self.forget_connection(backend)
    }

    /// Closes the session's connection to `backend` and forgets what was prepared on it.
    pub(crate) fn drop_connection(&mut self, backend: &str) {
        self.backends.discard(&self.ctx, backend);
        self.prepared.forget_backend(backend);
    }

    /// Drops a kept connection that died before a statement was written to it.
    fn forget_connection(&mut self, backend: &str) -> Result<(), BackendError> {
        self.drop_connection(backend);
        self.publish_threads();
        if self.state.pinned_on.as_deref() == Some(backend) {
            // Temporary tables, locks, user variables… went with the connection.
            self.state.pinned_lost = true;
            return Err(BackendError::Stale {
                backend: backend.to_string(),
                lost: "this session's temporary tables, locks or user variables on it are lost",
            });
        }
        if self.state.transaction_backend.as_deref() == Some(backend) {
            self.state.transaction_gone();
            return Err(BackendError::Stale {
                backend: backend.to_string(),
                lost: "the open transaction is lost",
            });
        }
        if self.state.pins.replay_overflow {
            // Session commands past the replay log (or inside multi-statement text) were not
            // logged: a new connection would not have them.
            return Err(BackendError::Stale {
                backend: backend.to_string(),
                lost: "session settings that rwproxy could not log (replay log limit or multi-statement text) are lost",
            });
        }
        Ok(())
    }

    /// Tells the registry which backend threads this session holds (for `KILL CONNECTION`).
    pub(crate) fn publish_threads(&mut self) {
        self.handle
            .replace_threads(self.backends.iter_mut().map(|slot| &slot.thread));
    }

    /// A backend failed for this session: drop its connection, tell the monitor if the server
    /// looks unhealthy, and skip it for a while.
    pub(crate) fn note_backend_failure(&mut self, err: &BackendError) {
        let name = err.backend().to_string();
        tracing::warn!(backend = %name, error = %err, "backend failure");
        self.drop_connection(&name);
        if self.state.transaction_backend.as_deref() == Some(name.as_str()) {
            // The transaction is lost with the connection.
            self.state.transaction_gone();
        }
        match err.failure() {
            // The monitor confirms with its own check before it changes the backend's state.
            Failure::Unhealthy => {
                self.ctx.monitor().report_failure(&name, &err.to_string());
                self.ctx.observer.backend_failure(&name, failure_kind(err));
            }
            Failure::Connection => self.ctx.observer.backend_failure(&name, failure_kind(err)),
            Failure::Refused => {}
        }
        self.cursor.exclude(&name, Instant::now());
    }

    /// Runs a statement chosen by `decision`, retrying a read once elsewhere when its backend
    /// fails before answering. Returns the backend that answered and the outcome.
    pub(crate) async fn run_routed(
        &mut self,
        routed: Routed,
        payload: &[u8],
        expect: Expect,
        rewrite: ReplyRewrite,
    ) -> Result<Option<(Placed, RelayOutcome)>, ClientError> {
        match self
            .run_routed_or_lose(routed, payload, expect, rewrite, false)
            .await?
        {
            Ran::Done(placed, outcome) => Ok(Some((placed, outcome))),
            Ran::Answered | Ran::TransactionLost { .. } => Ok(None),
        }
    }

    /// [`Session::run_routed`]; with `replayable`, the loss of the connection holding the
    /// recorded transaction is handed back unanswered, for transaction replay.
    pub(crate) async fn run_routed_or_lose(
        &mut self,
        routed: Routed,
        payload: &[u8],
        expect: Expect,
        rewrite: ReplyRewrite,
        replayable: bool,
    ) -> Result<Ran, ClientError> {
        let mut attempts = 0;
        let mut routed = routed;
        loop {
            attempts += 1;
            let chosen = match self.place(&routed).await {
                Ok(c) => c,
                Err(refusal) => {
                    let (code, message) = refusal.client_error();
                    self.send_error(1, code, message).await?;
                    return Ok(Ran::Answered);
                }
            };
            // Counted when decided, before the answer reaches the client (a client that reads
            // the metrics right after its answer sees its statement counted).
            self.ctx.observer.routed(chosen.role, chosen.reason);
            let started = Instant::now();
            let (err, unsent) = match self
                .run_on(&chosen.backend, payload, expect, rewrite.clone())
                .await
            {
                Ok(outcome) => {
                    let elapsed = started.elapsed();
                    self.ctx.observer.query_finished(chosen.role, elapsed);
                    if let Some((&rwproxy_protocol::command::COM_QUERY, sql)) =
                        payload.split_first()
                    {
                        self.statement_done(sql, None, chosen.role, elapsed, &outcome);
                    }
                    return Ok(Ran::Done(chosen, outcome));
                }
                Err(RunError::Client(e)) => return Err(e),
                Err(RunError::MidResponse) => return Ok(Ran::Answered),
                // A BEGIN lost in flight outside a transaction counts as not sent.
                Err(RunError::Backend(err)) => (err, self.void_when_lost(payload)),
                Err(RunError::NotSent(err)) => (err, true),
            };
            let connection_lost = err.is_unreachable() || matches!(err, BackendError::Stale { .. });
            if replayable
                && connection_lost
                && self
                    .replay
                    .log()
                    .is_some_and(|log| log.backend() == err.backend())
            {
                if err.failure() == Failure::Unhealthy {
                    self.note_backend_failure(&err);
                } else {
                    self.drop_connection(err.backend());
                }
                return Ok(Ran::TransactionLost { err, sent: !unsent });
            }
            let refused_login = matches!(err, BackendError::Auth { .. });
            if refused_login {
                self.ctx.accounts_stale();
            }
            let next = after_failure(&FailedAttempt {
                role: chosen.role,
                retryable: chosen.retryable,
                attempts,
                in_transaction: self.state.in_transaction(),
                refused_login,
                // Not sent because the server could not be reached.
                never_sent: unsent && err.is_unreachable(),
            });
            let retry = matches!(next, AfterFailure::Retry { .. });
            if err.failure() == Failure::Unhealthy || retry {
                self.note_backend_failure(&err);
            } else {
                self.drop_connection(err.backend());
            }
            match next {
                AfterFailure::Retry { on_primary } => {
                    if on_primary {
                        routed = Routed::primary(routed.reason);
                    }
                    tracing::info!(backend = %chosen.backend, error = %err, "read failed before any result; retrying on another server");
                    continue;
                }
                // The primary cannot be reached and the statement was never sent (outside a
                // transaction): as in any window without a primary, it waits up to
                // `write_wait_timeout` for the monitor to confirm the failure and a new (or
                // the same, recovered) primary to be published, then runs there.
                AfterFailure::WaitForPrimary
                    if self.wait_for_another_primary(&chosen.backend).await =>
                {
                    tracing::info!(backend = %chosen.backend, error = %err, "the primary could not be reached before the statement was sent; running it on the primary now published");
                    continue;
                }
                AfterFailure::WaitForPrimary | AfterFailure::GiveUp => {}
            }
            let (code, state, message) = err.client_error();
            self.send_error(1, (code, &state), message).await?;
            return Ok(Ran::Answered);
        }
    }

    /// `COM_QUERY`.
    pub(crate) async fn com_query(&mut self, payload: Bytes) -> Result<Flow, ClientError> {
        let text = payload.get(1..).unwrap_or_default();
        // One pass decides whether anything below needs a closer look (most statements: no).
        let words = crate::words::scan(text);
        let process_list = if words.processlist {
            crate::processlist::reads_process_list(text, self.classify_options(), || {
                self.classify(text).kind == StatementKind::Show
            })
        } else {
            None
        };
        // CONNECTION_ID() is the client's id; in a process-list statement it is substituted
        // where the statement runs (run_on).
        let substituted = match process_list {
            None if words.connection_id => {
                rwproxy_sql::connection_id::substitute(text, self.id, self.classify_options())
            }
            _ => None,
        };
        let payload = match &substituted {
            Some(s) => {
                let mut p = Vec::with_capacity(s.sql.len() + 1);
                p.push(rwproxy_protocol::command::COM_QUERY);
                p.extend_from_slice(&s.sql);
                Bytes::from(p)
            }
            None => payload,
        };
        let sql = payload.get(1..).unwrap_or_default();
        let class = self.classify(sql);
        if class.kind == StatementKind::Kill {
            if let Some(kill) = rwproxy_sql::kill::parse(sql) {
                return self.kill(kill.id, kill.query_only).await;
            }
        }
        let multi = class.flags.contains(Flags::MULTI_STATEMENT);
        if matches!(class.kind, StatementKind::Begin { .. })
            && self.end_transaction_on_former_primary().await?
        {
            return Ok(Flow::Continue);
        }
        let was_in_transaction = self.state.in_transaction();
        let (replay_on, replay_max) = {
            let routing = &self.ctx.config_guard().routing;
            (
                routing.transaction_replay,
                routing.transaction_replay_max_size,
            )
        };
        let checksum = crate::replay::wants_checksum(
            replay_on,
            self.replay.recording(),
            was_in_transaction,
            self.state.autocommit_off(),
            class.kind,
        );
        // A recorded transaction whose server is lost is replayed (also when it can no longer
        // be: the client is then told so).
        let replayable = replay_on && was_in_transaction && self.replay.log().is_some();
        let rewrite = ReplyRewrite {
            stmt_id: None,
            process_list,
            names: substituted.map(std::sync::Arc::new),
            session_status: words.status,
            checksum,
            diagnostics: class.flags.contains(Flags::LAST_STATEMENT_INFO),
            insert_id: class.flags.contains(Flags::PRIMARY_FUNCTION)
                && crate::sharing::reads_insert_id(sql),
        };
        let in_flight_commits = crate::replay::may_commit(class.kind) || multi;
        let mut replays = 0;
        let mut lost_before = if replayable {
            self.primary_moved_under_transaction()
        } else {
            None
        };
        let outcome = loop {
            if let Some(lost) = lost_before.take() {
                replays += 1;
                let allowed = replays <= crate::replay_io::MAX_REPLAYS_PER_STATEMENT;
                if !self
                    .replay_transaction(&lost, in_flight_commits, false, allowed)
                    .await?
                {
                    break None;
                }
            }
            let routed = self.route(&class, sql);
            match self
                .run_routed_or_lose(
                    routed,
                    &payload,
                    Expect::ResultSet,
                    rewrite.clone(),
                    replayable,
                )
                .await?
            {
                Ran::Done(chosen, outcome) => break Some((chosen, outcome)),
                Ran::Answered => break None,
                Ran::TransactionLost { err, sent } => {
                    tracing::info!(backend = %err.backend(), error = %err, sent, "the connection holding a recorded transaction was lost");
                    if sent {
                        replays += 1;
                        let allowed = replays <= crate::replay_io::MAX_REPLAYS_PER_STATEMENT;
                        if !self
                            .replay_transaction(&err.to_string(), in_flight_commits, true, allowed)
                            .await?
                        {
                            break None;
                        }
                    } else {
                        lost_before = Some(err.to_string());
                    }
                }
            }
        };
        if let Some((chosen, outcome)) = outcome {
            self.learn(&class, &payload, &chosen.backend, &outcome, multi);
            if replay_on || self.replay.log().is_some() {
                let finished = self.finished_statement(
                    (replay_on, replay_max),
                    &payload[..],
                    &class,
                    &chosen,
                    &outcome,
                    was_in_transaction,
                );
                let recorded = self.replay.finished(&finished);
                crate::replay_io::overflow_noted(recorded, replay_max);
            }
        }
        Ok(Flow::Continue)
    }

    /// How the session's server reads statement text: `NO_BACKSLASH_ESCAPES` from the status
    /// flags of its last answer, `ANSI_QUOTES` from what the server said after the last `SET`
    /// of `sql_mode`.
    pub(crate) fn classify_options(&self) -> ClassifyOptions {
        ClassifyOptions {
            no_backslash_escapes: self
                .state
                .status
                .contains(rwproxy_protocol::StatusFlags::SERVER_STATUS_NO_BACKSLASH_ESCAPES),
            ansi_quotes: self.state.ansi_quotes,
        }
    }

    /// Classifies statement text under the session's modes (see
    /// [`rwproxy_sql::classify_session`]).
    pub(crate) fn classify<'a>(&self, sql: &'a [u8]) -> Classification<'a> {
        classify_session(sql, self.classify_options())
    }

    /// The routing decision for a classified statement, owned so the session can be borrowed
    /// mutably while carrying it out.
    pub(crate) fn route(&self, class: &Classification<'_>, sql: &[u8]) -> Routed {
        self.with_decision(class, sql, |d| Routed::new(&d))
    }

    /// The router's decision for a classified statement, handed to `f` (it borrows the
    /// session's state and the configuration snapshot).
    pub(crate) fn with_decision<R>(
        &self,
        class: &Classification<'_>,
        sql: &[u8],
        f: impl FnOnce(rwproxy_router::Decision<'_>) -> R,
    ) -> R {
        let config = self.ctx.config_guard();
        let view = self.view();
        f(decide(
            class,
            sql,
            &self.who.user,
            self.state.schema.as_deref(),
            &view,
            &config.routing,
        ))
    }

    /// Updates the session from a statement's outcome.
    pub(crate) fn learn(
        &mut self,
        class: &Classification<'_>,
        payload: &Bytes,
        backend: &str,
        outcome: &RelayOutcome,
        multi: bool,
    ) {
        self.note_holds(class, payload.get(1..).unwrap_or_default(), outcome);
        self.state.after_statement(backend, outcome.status);
        // What session tracking reported (no extra query: the statement's own OK says it).
        if let Some(mode) = &outcome.sql_mode {
            self.state.ansi_quotes = mode
                .split(',')
                .any(|m| m.trim().eq_ignore_ascii_case("ANSI_QUOTES"));
        }
        if let Some(t) = &outcome.wait_timeout {
            self.idle_timeout = t.trim().parse().ok().map(std::time::Duration::from_secs);
        }
        if let Some(schema) = &outcome.schema {
            self.state.schema = Some(schema.clone());
            if let Some(slot) = self.backends.get_mut(backend) {
                slot.schema = Some(schema.clone());
            }
        }
        let ok = outcome.error_code.is_none();
        if multi {
            // Several statements: what they changed is unknown, so the session stays on the
            // primary from now on (never replayed: it may hold writes).
            if ok || outcome.saw_ok {
                self.state.pins.replay_overflow = true;
            }
            self.track_pinned_state(backend);
            return;
        }
        if !ok {
            return;
        }
        match class.kind {
            StatementKind::SetSession => {
                const TRACKING: &[u8] = b"session_track_system_variables";
                if payload
                    .windows(TRACKING.len())
                    .any(|w| w.eq_ignore_ascii_case(TRACKING))
                {
                    self.state.client_tracks_variables = true;
                }
                self.record_session_command(payload, backend)
            }
            StatementKind::SetNames | StatementKind::SetAutocommit(_) | StatementKind::Use => {
                self.record_session_command(payload, backend)
            }
            // `SET TRANSACTION` without SESSION shapes only the next transaction, on the server
            // that ran it: never replayed.
            StatementKind::SetTransaction if class.flags.contains(Flags::SESSION_SCOPE) => {
                self.record_session_command(payload, backend)
            }
            StatementKind::LockTables => self.state.pins.lock_tables = true,
            StatementKind::UnlockTables => self.state.pins.lock_tables = false,
            StatementKind::PrepareText => self.state.pins.sql_prepared += 1,
            StatementKind::DeallocateText => {
                self.state.pins.sql_prepared = self.state.pins.sql_prepared.saturating_sub(1)
            }
            _ => {}
        }
        if class.flags.contains(Flags::CREATE_TEMP_TABLE) {
            self.state.pins.temporary_tables += 1;
        }
        if class.flags.contains(Flags::DROP_TEMP_TABLE) {
            // Tables named, less those that did not exist (`IF EXISTS` warns for each).
            let named = rwproxy_sql::temporary_tables::named_by_drop(
                payload.get(1..).unwrap_or_default(),
                self.classify_options(),
            );
            let dropped = named.saturating_sub(u32::from(outcome.warnings));
            self.state.pins.temporary_tables =
                self.state.pins.temporary_tables.saturating_sub(dropped);
        }
        if class.flags.contains(Flags::USES_GET_LOCK) {
            self.state.pins.named_locks = true;
        }
        if class.flags.contains(Flags::ASSIGNS_USER_VAR) && class.kind != StatementKind::SetSession
        {
            self.state.user_vars_on_primary = true;
        }
        self.track_pinned_state(backend);
    }

    /// Logs a session command that succeeded on `backend`, for replay on the session's other
    /// connections; `backend` itself is already up to date.
    fn record_session_command(&mut self, payload: &Bytes, backend: &str) {
        match self.state.log_command(payload.clone()) {
            crate::session_state::Logged::At(seq) => {
                if let Some(slot) = self.backends.get_mut(backend) {
                    if slot.applied + 1 == seq {
                        slot.applied = seq;
                    }
                }
            }
            crate::session_state::Logged::Overflow { first: true } => {
                tracing::warn!(
                    limit = crate::session_state::MAX_REPLAY_LOG,
                    bytes = crate::session_state::MAX_REPLAY_BYTES,
                    "session command replay log is full; the session stays on the primary"
                );
                self.ctx.observer.replay_log_overflow();
            }
            crate::session_state::Logged::Overflow { first: false } => {}
        }
    }

    /// Commands answered by one server and not routed by content (`COM_FIELD_LIST`,
    /// `COM_STATISTICS`, …): the session's home server.
    pub(crate) async fn plain_command(
        &mut self,
        payload: Bytes,
        expect: Expect,
    ) -> Result<Flow, ClientError> {
        if let Some((chosen, outcome)) = self.run_at_home(&payload, expect).await? {
            self.state.after_statement(&chosen.backend, outcome.status);
        }
        Ok(Flow::Continue)
    }

    async fn run_at_home(
        &mut self,
        payload: &[u8],
        expect: Expect,
    ) -> Result<Option<(Placed, RelayOutcome)>, ClientError> {
        self.run_routed(
            Routed {
                target: crate::placement::OwnedTarget::SessionHome,
                reason: Reason::SessionCommand,
                consistency: Consistency::Eventual,
            },
            payload,
            expect,
            ReplyRewrite::default(),
        )
        .await
    }

    /// `COM_INIT_DB`, `COM_SET_OPTION`: run at home, then replayed on every other connection.
    pub(crate) async fn session_command(
        &mut self,
        payload: Bytes,
        expect: Expect,
    ) -> Result<Flow, ClientError> {
        if let Some((chosen, outcome)) = self.run_at_home(&payload, expect).await? {
            self.state
                .holds
                .after_session_command(outcome.error_code.is_some());
            if outcome.error_code.is_none() {
                if payload.first() == Some(&rwproxy_protocol::command::COM_INIT_DB) {
                    let db = String::from_utf8_lossy(&payload[1..]).into_owned();
                    if let Some(slot) = self.backends.get_mut(&chosen.backend) {
                        slot.schema = Some(db.clone());
                    }
                    self.state.schema = Some(db);
                } else {
                    self.record_session_command(&payload, &chosen.backend);
                }
            }
        }
        Ok(Flow::Continue)
    }
}

/// The `kind` label of `rwproxy_backend_failures_total` for a failure.
fn failure_kind(err: &BackendError) -> crate::observer::BackendFailureKind {
    use crate::observer::BackendFailureKind as Kind;
    match err {
        BackendError::Connect { .. } | BackendError::Auth { .. } => Kind::Connect,
        BackendError::Timeout { .. } => Kind::Timeout,
        _ => Kind::Query,
    }
}
