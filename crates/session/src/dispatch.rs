//! The command loop of a session: each command is read whole, dispatched by its first byte,
//! and answered either here or by the module that owns it (statements: `query`, prepared
//! statements: `stmt`, `KILL`: `kill`, `COM_CHANGE_USER`: `change_user`).

use crate::events::Signals;

use bytes::Bytes;
use rwproxy_protocol::command::*;
use rwproxy_protocol::reply::codes;
use rwproxy_protocol::response::Expect;
use rwproxy_protocol::ProtocolError;
use rwproxy_transport::TransportError;

use crate::drain::Phase;
use crate::error::ClientError;
use crate::session::{Flow, Session};

/// A deadline far enough away to mean "never" (a timer must have one).
const IDLE_NEVER: std::time::Duration = std::time::Duration::from_secs(100 * 365 * 24 * 3600);

impl Session {
    pub(crate) async fn command_loop(&mut self) -> Result<(), ClientError> {
        // One timer for the session's life, moved forward at every command.
        let idle = tokio::time::sleep(self.idle_timeout.unwrap_or(IDLE_NEVER));
        tokio::pin!(idle);
        let handle = self.handle.clone();
        loop {
            idle.as_mut()
                .reset(tokio::time::Instant::now() + self.idle_timeout.unwrap_or(IDLE_NEVER));
            // Shutting down: a session closes between statements, outside a transaction (a
            // transaction is let finish, until the shutdown runs out of time).
            match self.ctx.drain.phase() {
                Phase::Serving | Phase::Announced => {}
                Phase::Closing if self.state.in_transaction() => {}
                Phase::Closing | Phase::Stopping => {
                    tracing::debug!("closed by the shutdown, between statements");
                    return Ok(());
                }
            }
            let read = tokio::select! {
                r = self.client.read_packet() => r,
                // Idle past the session's wait_timeout: the server closes such a connection
                // without a word, and so does rwproxy (its backend connections go with it).
                _ = &mut idle, if self.idle_timeout.is_some() => {
                    tracing::debug!(after = ?self.idle_timeout, "client idle past wait_timeout; closed");
                    return Err(ClientError::IdleTimeout);
                }
                // The shutdown moved on (look again at the top of the loop), or killed while
                // idle: the server closes such a connection without a word (a client then sees
                // "server has gone away" and may reconnect).
                got = handle.events.wait(Signals::KILLED | Signals::DRAIN_CLOSING | Signals::DRAIN_STOP) => {
                    if got.contains(Signals::KILLED) {
                        return Err(ClientError::Killed);
                    }
                    continue;
                }
            };
            let (seq, payload) = match read {
                Ok(p) => p,
                Err(TransportError::Closed) => return Ok(()),
                Err(TransportError::Protocol(ProtocolError::TooLarge { size, max })) => {
                    let msg = format!(
                        "Got a packet bigger than 'max_allowed_packet' bytes ({size} > {max})"
                    );
                    tracing::warn!(size, max, "client packet too large; closing");
                    let _ = self.send_error(1, codes::PACKET_TOO_LARGE, msg).await;
                    // Read (and discard) what the client is still sending, for a moment, so
                    // that closing does not reset the connection before the error is read.
                    self.discard_input(size, std::time::Duration::from_secs(2))
                        .await;
                    return Err(ClientError::Refused {
                        code: codes::PACKET_TOO_LARGE.0,
                        message: "packet too large".into(),
                    });
                }
                Err(TransportError::BudgetExhausted { buffered, budget }) => {
                    tracing::warn!(
                        buffered,
                        budget,
                        "large-packet budget spent by other sessions; refusing the packet and closing"
                    );
                    self.ctx.observer.packet_budget_exhausted();
                    let msg = format!(
                        "Out of resources: rwproxy's memory for large packets (large_packet_budget, {budget} bytes) is in use by other connections"
                    );
                    let _ = self.send_error(1, codes::OUT_OF_RESOURCES, msg).await;
                    self.discard_input(usize::MAX, std::time::Duration::from_secs(2))
                        .await;
                    return Err(ClientError::Refused {
                        code: codes::OUT_OF_RESOURCES.0,
                        message: "large-packet budget spent".into(),
                    });
                }
                Err(TransportError::Protocol(e)) => {
                    tracing::warn!(error = %e, "malformed packet from client; closing");
                    let _ = self
                        .send_error(
                            1,
                            codes::PACKETS_OUT_OF_ORDER,
                            format!("Got packets out of order: {e}"),
                        )
                        .await;
                    return Err(ClientError::Transport(TransportError::Protocol(e)));
                }
                Err(e) => return Err(ClientError::Transport(e)),
            };
            // Inside compressed frames only the frames are numbered (the server ignores the
            // packets' own ids, and Connector/J does not start them at 0).
            if seq != 0 && !self.client.is_compressed() {
                tracing::warn!(seq, "command packet with sequence id other than 0; closing");
                let _ = self
                    .send_error(
                        seq.wrapping_add(1),
                        codes::PACKETS_OUT_OF_ORDER,
                        "Got packets out of order".into(),
                    )
                    .await;
                return Err(ClientError::Refused {
                    code: codes::PACKETS_OUT_OF_ORDER.0,
                    message: format!("command with sequence id {seq}"),
                });
            }
            let flow = {
                let dispatch = self.dispatch(payload);
                tokio::pin!(dispatch);
                tokio::select! {
                    flow = &mut dispatch => Some(flow?),
                    _ = handle.events.wait(Signals::DRAIN_STOP) => None,
                }
            };
            match flow {
                Some(Flow::Close) => return Ok(()),
                Some(Flow::Continue) => {
                    if !self.state.in_transaction() {
                        // Nothing of this session is left running on the primary.
                        self.primary_pass = None;
                    }
                    self.lend_if_free().await
                }
                None => {
                    // The shutdown ran out of time while this statement ran: it is cut off (its
                    // backend connection goes with the session), as the server does.
                    tracing::info!("statement cut off by the shutdown");
                    let _ = self
                        .send_error(
                            1,
                            codes::SERVER_SHUTDOWN,
                            "Server shutdown in progress".into(),
                        )
                        .await;
                    return Err(ClientError::Refused {
                        code: codes::SERVER_SHUTDOWN.0,
                        message: "shutdown timeout".into(),
                    });
                }
            }
        }
    }

    async fn dispatch(&mut self, payload: Bytes) -> Result<Flow, ClientError> {
        let Some(&cmd) = payload.first() else {
            self.send_error(
                1,
                codes::NET_READ_ERROR,
                "Malformed packet: empty command".into(),
            )
            .await?;
            return Ok(Flow::Close);
        };
        if cmd != COM_QUIT && self.state.pinned_on.is_some() {
            if let Some(why) = self.lost_pinned_state() {
                tracing::info!(reason = %why, "session state lost; closing the session");
                self.send_error(1, crate::pinned::STATE_LOST, why).await?;
                return Ok(Flow::Close);
            }
        }
        // Only text statements and prepared statements' executes are recorded for transaction
        // replay: a transaction that runs anything else (a session command, long data, a
        // cursor's fetch, a bulk execute) is not replayable.
        if self.replay.recording()
            && !matches!(
                cmd,
                COM_QUERY
                    | COM_STMT_EXECUTE
                    | COM_PING
                    | COM_QUIT
                    | COM_STMT_PREPARE
                    | COM_STMT_CLOSE
                    | COM_STMT_RESET
                    | COM_STATISTICS
                    | COM_FIELD_LIST
            )
        {
            self.replay.unsupported(name(cmd));
        }
        match cmd {
            COM_QUIT => Ok(Flow::Close),
            COM_PING => {
                self.forward_ping().await;
                self.send_ok(1).await?;
                Ok(Flow::Continue)
            }
            COM_QUERY => self.com_query(payload).await,
            COM_INIT_DB => self.session_command(payload, Expect::OnePacket).await,
            COM_SET_OPTION => self.session_command(payload, Expect::OnePacket).await,
            COM_FIELD_LIST => self.plain_command(payload, Expect::FieldList).await,
            COM_STATISTICS => self.plain_command(payload, Expect::OnePacket).await,
            COM_PROCESS_INFO | COM_REFRESH | COM_CREATE_DB | COM_DROP_DB => {
                self.plain_command(payload, Expect::ResultSet).await
            }
            // Answered by an EOF packet (or an error), never a result set.
            COM_DEBUG => self.plain_command(payload, Expect::OnePacket).await,
            COM_PROCESS_KILL => {
                let id = payload
                    .get(1..5)
                    .map(|b| u32::from_le_bytes([b[0], b[1], b[2], b[3]]));
                match id {
                    Some(id) => self.kill(id, false).await,
                    None => {
                        self.send_error(
                            1,
                            codes::NET_READ_ERROR,
                            "Malformed COM_PROCESS_KILL".into(),
                        )
                        .await?;
                        Ok(Flow::Continue)
                    }
                }
            }
            COM_STMT_PREPARE => self.stmt_prepare(payload).await,
            COM_STMT_EXECUTE => self.stmt_execute(payload).await,
            COM_STMT_BULK_EXECUTE => self.stmt_execute(payload).await,
            COM_STMT_SEND_LONG_DATA => self.stmt_send_long_data(payload).await,
            COM_STMT_CLOSE => self.stmt_close(payload).await,
            COM_STMT_RESET => self.stmt_reset(payload).await,
            COM_STMT_FETCH => self.stmt_fetch(payload).await,
            COM_RESET_CONNECTION => self.reset_connection().await,
            COM_CHANGE_USER => self.change_user(payload).await,
            _ => {
                tracing::info!(command = name(cmd), "unsupported command");
                self.send_error(
                    1,
                    codes::UNKNOWN_COMMAND,
                    format!("Unknown command {}", name(cmd)),
                )
                .await?;
                Ok(Flow::Continue)
            }
        }
    }

    /// Reads and drops up to `bytes` of client input, for at most `limit`.
    async fn discard_input(&mut self, bytes: usize, limit: std::time::Duration) {
        let deadline = tokio::time::Instant::now() + limit;
        let mut seen = 0usize;
        while seen < bytes {
            let buffered = self.client.buffered().len();
            seen += buffered;
            self.client.consume(buffered);
            match tokio::time::timeout_at(deadline, self.client.fill()).await {
                Ok(Ok(n)) if n > 0 => {}
                _ => return,
            }
        }
    }

    /// A ping is answered at once, and passed without waiting to the connection the session's
    /// last statement ran on: on the server a ping is a command like any other (it resets
    /// `ROW_COUNT()`, for one), so that session must see it too. Its answer is read before the
    /// connection's next use.
    async fn forward_ping(&mut self) {
        let Some(backend) = self.state.last_backend.clone() else {
            return;
        };
        if let Some(slot) = self.backends.get_mut(&backend) {
            if slot.conn.send_deferred(&[COM_PING]).await.is_err() {
                // Dead: found and replaced at its next use, as any connection closed while idle.
                tracing::debug!(backend = %backend, "forwarding a ping failed");
            }
        }
    }

    /// `COM_RESET_CONNECTION`: every backend connection is reset too, and the session forgets
    /// its state, prepared statements and pins.
    async fn reset_connection(&mut self) -> Result<Flow, ClientError> {
        let mut failed = Vec::new();
        for slot in self.backends.iter_mut() {
            match slot
                .conn
                .exchange(&[COM_RESET_CONNECTION], Expect::OnePacket)
                .await
            {
                Ok(o) if o.is_ok() => {
                    // The server keeps the schema selected last (not the login's).
                    slot.applied = 0;
                    slot.stmts.clear();
                    slot.insert_id = 0;
                    // The reset switched GTID tracking off again (server defaults).
                    let name = slot.conn.name().to_string();
                    if crate::backend_set::enable_tracking(&mut slot.conn, &name)
                        .await
                        .is_err()
                    {
                        failed.push(name);
                    }
                }
                _ => failed.push(slot.conn.name().to_string()),
            }
        }
        for name in failed {
            self.backends.discard(&self.ctx, &name);
        }
        self.prepared.clear();
        let schema = self.state.schema.clone();
        self.state.reset(schema);
        self.state.reset_new_connections = true;
        self.set_hold(None);
        if self
            .client_caps
            .contains(rwproxy_protocol::CapabilityFlags::CLIENT_IGNORE_SPACE)
        {
            // The reset dropped the login's IGNORE_SPACE: pooled connections of this login
            // have it, so this session keeps connections of its own from now on.
            self.sharing = false;
        }
        self.lend_token = crate::session::new_lend_token();
        self.idle_timeout = self.ctx.server_idle_timeout(
            self.client_caps
                .contains(rwproxy_protocol::CapabilityFlags::CLIENT_INTERACTIVE),
        );
        self.send_ok(1).await?;
        Ok(Flow::Continue)
    }

    /// `COM_CHANGE_USER`: authenticated by rwproxy itself; the session's backend connections
    /// go back to the pool (reset) and connections of the new user are taken or opened when
    /// next needed.
    async fn change_user(&mut self, payload: Bytes) -> Result<Flow, ClientError> {
        crate::change_user::change_user(self, payload).await
    }
}
