//! Prepared statements in the binary protocol. A statement is prepared on the backend the
//! router picks for it; when a later execute goes elsewhere (another replica, the primary in a
//! transaction), it is prepared there first, silently. Closing reaches every backend that has it.

use bytes::{Bytes, BytesMut};
use rwproxy_protocol::command::{
    self, COM_STMT_BULK_EXECUTE, COM_STMT_CLOSE, CURSOR_TYPE_READ_ONLY,
};
use rwproxy_protocol::reply::codes;
use rwproxy_protocol::response::Expect;
use rwproxy_protocol::StatusFlags;
use rwproxy_router::{after_failure, decide_execute, AfterFailure, FailedAttempt, Reason};
use rwproxy_sql::{Classification, Flags, StatementKind};

use crate::error::ClientError;
use crate::placement::Routed;
use crate::prepared::{execute_for_backend, OnBackend, Prepared};
use crate::query::{Ran, ReplyRewrite, RunError};
use crate::relay::RelayOutcome;
use crate::session::{Flow, Session};

impl Session {
    /// Where a prepared statement (or an execute of it) runs: the router's decision for its
    /// text, for the binary protocol ([`rwproxy_router::decide_execute`]).
    fn route_prepared(
        &self,
        class: &Classification<'_>,
        sql: &[u8],
        long_data_on: Option<&str>,
        bulk: bool,
    ) -> Routed {
        self.with_decision(class, sql, |d| {
            Routed::new(&decide_execute(long_data_on, bulk, || d))
        })
    }

    async fn unknown_statement(&mut self, id: u32, what: &str) -> Result<Flow, ClientError> {
        self.send_error(
            1,
            codes::UNKNOWN_STMT_HANDLER,
            format!("Unknown prepared statement handler ({id}) given to {what}"),
        )
        .await?;
        Ok(Flow::Continue)
    }

    /// `COM_STMT_PREPARE`: prepared where the statement would run now; the client gets
    /// rwproxy's own statement id.
    pub(crate) async fn stmt_prepare(&mut self, payload: Bytes) -> Result<Flow, ClientError> {
        // A prepare reads the schema, which may have changed by this session's own DDL: it is
        // placed with the same consistency check as a read.
        let original = payload.clone();
        let sql = original.get(1..).unwrap_or_default();
        let class = self.classify(sql);
        let id = self.prepared.next_id();
        // CONNECTION_ID() is the client's id here too (prepared once, it stays right: the id of
        // a session never changes).
        let names = rwproxy_sql::connection_id::substitute(sql, self.id, self.classify_options())
            .map(std::sync::Arc::new);
        let payload = match &names {
            Some(s) => Bytes::from([&payload[..1], &s.sql[..]].concat()),
            None => payload,
        };
        // A prepare in a recorded transaction whose connection is lost replays the
        // transaction first (preparing changes nothing on the server).
        let replay_on = self.ctx.config_guard().routing.transaction_replay;
        let mut replay = crate::replay_io::StatementReplay::new(
            replay_on && self.state.in_transaction() && self.replay.log().is_some(),
            false,
        );
        let mut lost_before = if replay.replayable {
            self.primary_moved_under_transaction()
        } else {
            None
        };
        let outcome = loop {
            if let Some(lost) = lost_before.take() {
                if !self
                    .replay_transaction_for(&mut replay, &lost, false)
                    .await?
                {
                    return Ok(Flow::Continue);
                }
            }
            let routed = self.route_prepared(&class, sql, None, false);
            let ran = self
                .run_routed_or_lose(
                    routed,
                    &payload,
                    Expect::Prepare,
                    ReplyRewrite {
                        stmt_id: Some(id),
                        names: names.clone(),
                        ..ReplyRewrite::default()
                    },
                    replay.replayable,
                )
                .await?;
            match ran {
                Ran::Done(chosen, outcome) => break Some((chosen, outcome)),
                Ran::Answered => break None,
                Ran::TransactionLost { err, sent } => {
                    if !self
                        .replay_transaction_for(&mut replay, &err.to_string(), sent)
                        .await?
                    {
                        return Ok(Flow::Continue);
                    }
                }
            }
        };
        if let Some((chosen, outcome)) = outcome {
            if let Some(ok) = outcome.prepare_ok {
                self.note_prepared(&class);
                let key = self.state.statement_key(&payload);
                self.cache_statement(&chosen.backend, key, ok.stmt_id, ok.params)
                    .await;
                self.prepared.insert(
                    id,
                    Prepared {
                        prepare_payload: payload,
                        params: ok.params,
                        types: None,
                        types_version: 0,
                        on: vec![OnBackend {
                            backend: chosen.backend.to_string(),
                            id: ok.stmt_id,
                            types_seen: 0,
                        }],
                        cursor_on: None,
                        long_data_on: None,
                        names,
                        digest: None,
                    },
                );
            }
        }
        Ok(Flow::Continue)
    }

    /// Makes sure statement `id` is prepared on `backend`; returns the backend's id for it.
    async fn prepare_on(&mut self, id: u32, backend: &str) -> Result<u32, RunError> {
        // A connection closed while idle takes its prepared statements with it.
        self.drop_if_stale(backend)
            .await
            .map_err(RunError::Backend)?;
        let Some(stmt) = self.prepared.get(id) else {
            return Err(RunError::Backend(rwproxy_backend::BackendError::Protocol {
                backend: backend.to_string(),
                what: "statement vanished".into(),
            }));
        };
        if let Some(on) = stmt.on(backend) {
            return Ok(on.id);
        }
        let payload = stmt.prepare_payload.clone();
        let image = self.state.image();
        let borrower = crate::backend_set::Borrower {
            id: self.lend_token,
            state: &self.state,
            image: &image,
        };
        let slot = self
            .backends
            .ready(&self.ctx, backend, &self.who, &borrower)
            .await
            .map_err(RunError::Backend)?;
        let key = self.state.statement_key(&payload);
        // Prepared on this connection already (by this session on an earlier borrow, or by
        // another session of the account in the same state).
        if let Some((server_id, _)) = slot.stmts.get(&key) {
            if let Some(stmt) = self.prepared.get_mut(id) {
                stmt.on.push(OnBackend {
                    backend: backend.to_string(),
                    id: server_id,
                    types_seen: 0,
                });
            }
            return Ok(server_id);
        }
        self.ctx.observer.pool_reprepared(backend);
        let ok = prepare_statement(&mut slot.conn, &payload)
            .await
            .map_err(RunError::Backend)?;
        if let Some(stmt) = self.prepared.get_mut(id) {
            stmt.on.push(OnBackend {
                backend: backend.to_string(),
                id: ok.stmt_id,
                types_seen: 0,
            });
        }
        self.cache_statement(backend, key, ok.stmt_id, ok.params)
            .await;
        Ok(ok.stmt_id)
    }

    /// Records a statement prepared on the session's connection to `backend` in that
    /// connection's cache; statements the cache no longer keeps are closed there.
    async fn cache_statement(
        &mut self,
        backend: &str,
        key: crate::conn_statements::StatementKey,
        server_id: u32,
        params: u16,
    ) {
        let Some(slot) = self.backends.get_mut(backend) else {
            return;
        };
        let evicted = slot.stmts.insert(key, server_id, params);
        let mut lost = false;
        for old in &evicted {
            let mut p = [COM_STMT_CLOSE, 0, 0, 0, 0];
            p[1..5].copy_from_slice(&old.to_le_bytes());
            if slot.conn.stream().write_packet(&mut 0, &p).await.is_err() {
                lost = true;
                break;
            }
        }
        for old in evicted {
            self.prepared.forget_id(backend, old);
        }
        if lost {
            self.drop_connection(backend);
        }
    }

    /// `COM_STMT_EXECUTE` (and MariaDB's `COM_STMT_BULK_EXECUTE`).
    pub(crate) async fn stmt_execute(&mut self, payload: Bytes) -> Result<Flow, ClientError> {
        let id = match command::stmt_id(&payload) {
            Ok(id) => self.prepared.resolve(id),
            Err(_) => return self.unknown_statement(0, "mysqld_stmt_execute").await,
        };
        let Some(stmt) = self.prepared.get_mut(id) else {
            return self.unknown_statement(id, "mysqld_stmt_execute").await;
        };
        let bulk = payload.first() == Some(&COM_STMT_BULK_EXECUTE);
        // Remember the parameter types when the client sends them.
        if !bulk && stmt.params > 0 {
            if let Ok(types) = command::execute_types(&payload, stmt.params) {
                if stmt.types.as_deref() != Some(types) {
                    stmt.types = Some(Bytes::copy_from_slice(types));
                    stmt.types_version += 1;
                }
            }
        }
        let cursor = !bulk
            && payload
                .get(5)
                .is_some_and(|f| f & CURSOR_TYPE_READ_ONLY != 0);
        let long_data_on = stmt.long_data_on.take();
        let prepare_payload = stmt.prepare_payload.clone();
        let names = stmt.names.clone();
        let sql = prepare_payload.get(1..).unwrap_or_default();
        // Classified once per execute: for routing, then for what the statement changed.
        let class = self.classify(sql);
        // A prepared BEGIN ends a transaction left on a former primary as a text one does.
        if matches!(class.kind, StatementKind::Begin { .. })
            && self.end_transaction_on_former_primary().await?
        {
            return Ok(Flow::Continue);
        }
        // Transaction replay: this execute is recorded (with its result's checksum) when it
        // runs in a recorded transaction, and the loss of that transaction's connection
        // replays the transaction, as for a text statement.
        let was_in_transaction = self.state.in_transaction();
        let replay_on = self.ctx.config_guard().routing.transaction_replay;
        let unsupported = crate::replay::unrecordable_execute(cursor, long_data_on.is_some());
        if let Some(what) = unsupported {
            self.replay.unsupported(what);
        }
        let checksum = !bulk
            && crate::replay::wants_checksum(
                replay_on,
                self.replay.recording(),
                was_in_transaction,
                self.state.autocommit_off(),
                class.kind,
            );
        let mut replay = crate::replay_io::StatementReplay::new(
            replay_on && was_in_transaction && self.replay.log().is_some(),
            crate::replay::may_commit(class.kind),
        );
        let mut lost_before = if replay.replayable {
            self.primary_moved_under_transaction()
        } else {
            None
        };
        // A BEGIN lost in flight outside a transaction left nothing behind: it waits for the
        // new primary as if it had not been sent.
        let void_when_lost = crate::replay::void_when_lost(was_in_transaction, class.kind, false);
        let mut routed = self.route_prepared(&class, sql, long_data_on.as_deref(), bulk);
        let mut attempts = 0;
        loop {
            if let Some(lost) = lost_before.take() {
                if !self
                    .replay_transaction_for(&mut replay, &lost, false)
                    .await?
                {
                    return Ok(Flow::Continue);
                }
                // The transaction is open on the new primary now.
                routed = self.route_prepared(&class, sql, None, bulk);
            }
            attempts += 1;
            let chosen = match self.place(&routed).await {
                Ok(c) => c,
                Err(refusal) => {
                    let (code, message) = refusal.client_error();
                    self.send_error(1, code, message).await?;
                    return Ok(Flow::Continue);
                }
            };
            let backend_id = match self.prepare_on(id, &chosen.backend).await {
                Ok(b) => b,
                Err(RunError::Backend(err) | RunError::NotSent(err)) => {
                    // Preparing failed: the execute itself was not sent (a prepare changes
                    // nothing on the server).
                    if replay.replayable && self.recorded_transaction_lost(&err, false) {
                        lost_before = Some(err.to_string());
                        continue;
                    }
                    if self
                        .after_execute_failure(&chosen, &mut routed, attempts, &err, true)
                        .await
                    {
                        continue;
                    }
                    let (code, state, message) = err.client_error();
                    self.send_error(1, (code, &state), message).await?;
                    return Ok(Flow::Continue);
                }
                Err(RunError::Client(e)) => return Err(e),
                Err(RunError::MidResponse) => return Ok(Flow::Continue),
            };
            let Some(stmt) = self.prepared.get_mut(id) else {
                return self.unknown_statement(id, "mysqld_stmt_execute").await;
            };
            let mut packet = std::mem::take(&mut self.packet);
            let inject = match (stmt.on(&chosen.backend), &stmt.types) {
                (Some(on), Some(types)) if on.types_seen < stmt.types_version => {
                    Some(types.clone())
                }
                _ => None,
            };
            let params = stmt.params;
            let version = stmt.types_version;
            if bulk {
                packet.clear();
                packet.extend_from_slice(&payload);
                let _ = command::set_stmt_id(&mut packet, backend_id);
            } else if execute_for_backend(
                &payload,
                backend_id,
                params,
                inject.as_deref(),
                &mut packet,
            )
            .is_err()
            {
                self.packet = packet;
                self.send_error(
                    1,
                    codes::NET_READ_ERROR,
                    "Malformed COM_STMT_EXECUTE packet".into(),
                )
                .await?;
                return Ok(Flow::Continue);
            }
            if let Some(on) = stmt.on_mut(&chosen.backend) {
                on.types_seen = version;
            }
            self.ctx.observer.routed(chosen.role, chosen.reason);
            let started = std::time::Instant::now();
            let result = self
                .run_on(
                    &chosen.backend,
                    &packet,
                    Expect::ResultSet,
                    ReplyRewrite {
                        names: names.clone(),
                        insert_id: class.flags.contains(Flags::PRIMARY_FUNCTION)
                            && crate::sharing::reads_insert_id(sql),
                        checksum,
                        ..ReplyRewrite::default()
                    },
                )
                .await;
            self.packet = packet;
            let (err, unsent) = match result {
                Ok(outcome) => {
                    let elapsed = started.elapsed();
                    self.ctx.observer.query_finished(chosen.role, elapsed);
                    if self.ctx.observer.wants_statements() {
                        // Fingerprinted once, at the statement's first execute.
                        let options = self.classify_options();
                        let digest = self.prepared.get_mut(id).map(|s| {
                            *s.digest
                                .get_or_insert_with(|| rwproxy_sql::digest_id(sql, options))
                        });
                        self.statement_done(sql, digest, chosen.role, elapsed, &outcome);
                    }
                    self.learn_from_execute(&class, sql, params, &chosen.backend, &outcome);
                    if replay_on || self.replay.log().is_some() {
                        self.record_execute(
                            &payload,
                            id,
                            &class,
                            &chosen,
                            &outcome,
                            was_in_transaction,
                            unsupported.or(bulk.then_some("COM_STMT_BULK_EXECUTE")),
                        );
                    }
                    if let Some(stmt) = self.prepared.get_mut(id) {
                        stmt.cursor_on = (cursor
                            && outcome.status.is_some_and(|s| {
                                s.contains(StatusFlags::SERVER_STATUS_CURSOR_EXISTS)
                            }))
                        .then(|| chosen.backend.to_string());
                    }
                    return Ok(Flow::Continue);
                }
                Err(RunError::Client(e)) => return Err(e),
                Err(RunError::MidResponse) => return Ok(Flow::Continue),
                Err(RunError::Backend(err)) => (err, false),
                Err(RunError::NotSent(err)) => (err, true),
            };
            if replay.replayable && self.recorded_transaction_lost(&err, !unsent) {
                if unsent {
                    lost_before = Some(err.to_string());
                } else if self
                    .replay_transaction_for(&mut replay, &err.to_string(), true)
                    .await?
                {
                    routed = self.route_prepared(&class, sql, None, bulk);
                } else {
                    return Ok(Flow::Continue);
                }
                continue;
            }
            if self
                .after_execute_failure(
                    &chosen,
                    &mut routed,
                    attempts,
                    &err,
                    unsent || void_when_lost,
                )
                .await
            {
                continue;
            }
            let (code, state, message) = err.client_error();
            self.send_error(1, (code, &state), message).await?;
            return Ok(Flow::Continue);
        }
    }

    /// After a prepare or an execute failed on `chosen`: true when the execute should be tried
    /// again — a read elsewhere, or (when nothing reached the server, or what reached it left
    /// nothing behind, outside a transaction: `unsent`) on the primary the monitor publishes
    /// after the old one could not be reached, as a text statement does.
    async fn after_execute_failure(
        &mut self,
        chosen: &crate::placement::Placed,
        routed: &mut Routed,
        attempts: u32,
        err: &rwproxy_backend::BackendError,
        unsent: bool,
    ) -> bool {
        let next = after_failure(&FailedAttempt {
            role: chosen.role,
            retryable: chosen.retryable,
            attempts,
            in_transaction: self.state.in_transaction(),
            refused_login: matches!(err, rwproxy_backend::BackendError::Auth { .. }),
            never_sent: unsent && err.is_unreachable(),
        });
        self.note_backend_failure(err);
        match next {
            AfterFailure::Retry { on_primary } => {
                if on_primary {
                    *routed = Routed::primary(routed.reason);
                }
                true
            }
            AfterFailure::WaitForPrimary => {
                let resumed = self.wait_for_another_primary(&chosen.backend).await;
                if resumed {
                    tracing::info!(backend = %chosen.backend, error = %err, "the primary could not be reached before the execute was sent; running it on the primary now published");
                }
                resumed
            }
            AfterFailure::GiveUp => false,
        }
    }

    /// What an executed prepared statement changed in the session: the same as the text form
    /// (pins, session commands replayed in their text form). A session command with
    /// parameters cannot be replayed as text, so it keeps the session on the primary.
    fn learn_from_execute(
        &mut self,
        class: &Classification<'_>,
        sql: &[u8],
        params: u16,
        backend: &str,
        outcome: &RelayOutcome,
    ) {
        let session_command = rwproxy_router::is_session_command(class.kind);
        let matters = session_command
            || matches!(
                class.kind,
                StatementKind::LockTables | StatementKind::UnlockTables
            )
            || class.flags.intersects(
                Flags::CREATE_TEMP_TABLE
                    | Flags::DROP_TEMP_TABLE
                    | Flags::USES_GET_LOCK
                    | Flags::ASSIGNS_USER_VAR
                    | Flags::MULTI_STATEMENT,
            );
        if !matters {
            self.note_holds(class, sql, outcome);
            self.state.after_statement(backend, outcome.status);
            return;
        }
        if session_command && params > 0 {
            self.note_holds(class, sql, outcome);
            self.state.after_statement(backend, outcome.status);
            if outcome.error_code.is_none() {
                self.state.pins.replay_overflow = true;
            }
            self.track_pinned_state(backend);
            return;
        }
        let mut text = Vec::with_capacity(sql.len() + 1);
        text.push(rwproxy_protocol::command::COM_QUERY);
        text.extend_from_slice(sql);
        let multi = class.flags.contains(Flags::MULTI_STATEMENT);
        self.learn(class, &Bytes::from(text), backend, outcome, multi);
    }

    /// `COM_STMT_SEND_LONG_DATA` (no reply): sent to the primary, where the next execute of
    /// this statement then runs.
    pub(crate) async fn stmt_send_long_data(
        &mut self,
        payload: Bytes,
    ) -> Result<Flow, ClientError> {
        let Ok(id) = command::stmt_id(&payload).map(|id| self.prepared.resolve(id)) else {
            return Ok(Flow::Continue);
        };
        let known = match self.prepared.get(id) {
            Some(stmt) => stmt
                .long_data_on
                .clone()
                .or_else(|| self.state.transaction_backend.clone()),
            None => return Ok(Flow::Continue), // the server ignores unknown ids here too
        };
        let target = match known {
            Some(b) => b,
            None => match self.place(&Routed::primary(Reason::Pinned)).await {
                Ok(p) => p.backend.to_string(),
                Err(refusal) => {
                    tracing::warn!(message = %refusal.client_error().1, "long data for a statement while no primary is known; dropped");
                    return Ok(Flow::Continue);
                }
            },
        };
        let backend_id = match self.prepare_on(id, &target).await {
            Ok(b) => b,
            Err(RunError::Client(e)) => return Err(e),
            Err(RunError::Backend(err) | RunError::NotSent(err)) => {
                self.note_backend_failure(&err);
                return Ok(Flow::Continue);
            }
            Err(RunError::MidResponse) => return Ok(Flow::Continue),
        };
        let mut packet = BytesMut::from(&payload[..]);
        let _ = command::set_stmt_id(&mut packet, backend_id);
        let sent = match self.backends.get_mut(&target) {
            Some(slot) => slot
                .conn
                .stream()
                .write_packet(&mut 0, &packet)
                .await
                .is_ok(),
            None => false,
        };
        if let Some(stmt) = self.prepared.get_mut(id) {
            stmt.long_data_on = sent.then(|| target.clone());
        }
        Ok(Flow::Continue)
    }

    /// `COM_STMT_CLOSE` (no reply): closed on every backend that has it.
    pub(crate) async fn stmt_close(&mut self, payload: Bytes) -> Result<Flow, ClientError> {
        let Ok(id) = command::stmt_id(&payload).map(|id| self.prepared.resolve(id)) else {
            return Ok(Flow::Continue);
        };
        let Some(stmt) = self.prepared.remove(id) else {
            return Ok(Flow::Continue);
        };
        for on in stmt.on {
            if let Some(slot) = self.backends.get_mut(&on.backend) {
                slot.stmts.remove_id(on.id);
                let mut p = [COM_STMT_CLOSE, 0, 0, 0, 0];
                p[1..5].copy_from_slice(&on.id.to_le_bytes());
                if slot.conn.stream().write_packet(&mut 0, &p).await.is_err() {
                    let name = on.backend.clone();
                    self.backends.discard(&self.ctx, &name);
                }
            }
        }
        Ok(Flow::Continue)
    }

    /// `COM_STMT_RESET`: reset on every backend that has it; the client gets OK or the first error.
    pub(crate) async fn stmt_reset(&mut self, payload: Bytes) -> Result<Flow, ClientError> {
        let Ok(id) = command::stmt_id(&payload).map(|id| self.prepared.resolve(id)) else {
            return self.unknown_statement(0, "mysqld_stmt_reset").await;
        };
        let Some(stmt) = self.prepared.get_mut(id) else {
            return self.unknown_statement(id, "mysqld_stmt_reset").await;
        };
        stmt.long_data_on = None;
        stmt.cursor_on = None;
        let targets: Vec<OnBackend> = stmt.on.clone();
        let mut first_error = None;
        for on in targets {
            let Some(slot) = self.backends.get_mut(&on.backend) else {
                continue;
            };
            let mut p = [rwproxy_protocol::command::COM_STMT_RESET, 0, 0, 0, 0];
            p[1..5].copy_from_slice(&on.id.to_le_bytes());
            match slot.conn.exchange(&p, Expect::OnePacket).await {
                Ok(o) => {
                    if let (Some(e), None) = (o.error, &first_error) {
                        first_error = Some(e);
                    }
                }
                Err(err) => self.note_backend_failure(&err),
            }
        }
        match first_error {
            Some((code, state, message)) => self.send_error(1, (code, &state), message).await?,
            None => self.send_ok(1).await?,
        }
        Ok(Flow::Continue)
    }

    /// `COM_STMT_FETCH`: from the backend holding the statement's cursor.
    pub(crate) async fn stmt_fetch(&mut self, payload: Bytes) -> Result<Flow, ClientError> {
        let Ok(id) = command::stmt_id(&payload).map(|id| self.prepared.resolve(id)) else {
            return self.unknown_statement(0, "mysqld_stmt_fetch").await;
        };
        let Some(stmt) = self.prepared.get(id) else {
            return self.unknown_statement(id, "mysqld_stmt_fetch").await;
        };
        let Some(backend) = stmt.cursor_on.clone() else {
            self.send_error(
                1,
                (1421, b"HY000"),
                "The statement has no open cursor".into(),
            )
            .await?;
            return Ok(Flow::Continue);
        };
        let Some(backend_id) = stmt.on(&backend).map(|o| o.id) else {
            return self.unknown_statement(id, "mysqld_stmt_fetch").await;
        };
        let mut packet = BytesMut::from(&payload[..]);
        let _ = command::set_stmt_id(&mut packet, backend_id);
        match self
            .run_on(&backend, &packet, Expect::Fetch, ReplyRewrite::default())
            .await
        {
            Ok(outcome) => self.state.after_statement(&backend, outcome.status),
            Err(RunError::Client(e)) => return Err(e),
            Err(RunError::MidResponse) => {}
            Err(RunError::Backend(err) | RunError::NotSent(err)) => {
                self.note_backend_failure(&err);
                let (code, state, message) = err.client_error();
                self.send_error(1, (code, &state), message).await?;
            }
        }
        Ok(Flow::Continue)
    }
}

/// Prepares a statement (`payload` is its `COM_STMT_PREPARE`) on `conn`, reading the whole
/// reply without relaying it: the server's statement id and counts, or its error.
pub(crate) async fn prepare_statement(
    conn: &mut rwproxy_backend::BackendConn,
    payload: &[u8],
) -> Result<command::PrepareOk, rwproxy_backend::BackendError> {
    use rwproxy_backend::BackendError;
    let backend = conn.name().to_string();
    let lost = |source| BackendError::Lost {
        backend: backend.clone(),
        source,
    };
    let mut seq = 0u8;
    conn.stream()
        .write_packet(&mut seq, payload)
        .await
        .map_err(lost)?;
    // Read the reply ourselves: the first packet has the backend's id.
    let (_, first) = conn.stream().read_packet().await.map_err(lost)?;
    let deprecate_eof = conn.deprecate_eof();
    let mut tracker =
        rwproxy_protocol::response::ResponseTracker::new(Expect::Prepare, deprecate_eof);
    let unreadable = |e: rwproxy_protocol::ProtocolError| BackendError::Protocol {
        backend: backend.clone(),
        what: e.to_string(),
    };
    let mut done = tracker
        .on_packet(&first, first.len())
        .map_err(unreadable)?
        .done;
    while !done {
        let (_, p) = conn.stream().read_packet().await.map_err(lost)?;
        done = tracker.on_packet(&p, p.len()).map_err(unreadable)?.done;
    }
    match command::parse_prepare_ok(&first) {
        Ok(ok) => Ok(ok),
        Err(_) => {
            let (code, state, message) = rwproxy_protocol::reply::parse_err(&first)
                .map(|e| {
                    (
                        e.code,
                        e.sql_state,
                        String::from_utf8_lossy(e.message).into_owned(),
                    )
                })
                .unwrap_or((
                    codes::SERVER_LOST.0,
                    *codes::SERVER_LOST.1,
                    "bad prepare reply".into(),
                ));
            Err(BackendError::Server {
                backend,
                code,
                state,
                message,
            })
        }
    }
}
