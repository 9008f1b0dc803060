//! One client session after authentication: its I/O state (the client's stream, its backend
//! connections, what it must keep consistent across them, its placement cursor) and the two
//! replies every part of it sends (OK, error). The command loop is in `dispatch`.

use std::net::SocketAddr;
use std::sync::Arc;

use bytes::BytesMut;
use rwproxy_protocol::reply;
use rwproxy_protocol::CapabilityFlags;
use rwproxy_transport::PacketStream;

use crate::backend_set::{BackendSet, ClientIdentity};
use crate::client_auth::AuthenticatedClient;
use crate::context::ProxyContext;
use crate::error::ClientError;
use crate::prepared::PreparedSet;
use crate::registry::SessionHandle;
use crate::session_state::SessionState;

/// Whether the session goes on after a command.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Flow {
    Continue,
    Close,
}

pub struct Session {
    pub(crate) ctx: Arc<ProxyContext>,
    pub(crate) id: u32,
    pub(crate) peer: SocketAddr,
    pub(crate) client: PacketStream,
    pub(crate) who: ClientIdentity,
    pub(crate) client_caps: CapabilityFlags,
    pub(crate) state: SessionState,
    pub(crate) backends: BackendSet,
    pub(crate) prepared: PreparedSet,
    pub(crate) handle: Arc<SessionHandle>,
    pub(crate) scratch: BytesMut,
    pub(crate) packet: BytesMut,
    /// Where this session's reads go: round-robin position, read home, exclusions (the
    /// router's per-session placement state).
    pub(crate) cursor: rwproxy_router::ReadCursor,
    /// Backend names handed out without allocating (see [`crate::names`]).
    pub(crate) names: crate::names::NameCache,
    pub(crate) initial_database: Option<String>,
    /// The greeting's nonce (what `COM_CHANGE_USER` scrambles are computed with).
    pub(crate) nonce: [u8; rwproxy_protocol::auth::NONCE_LEN],
    /// The server closes a connection idle for its session's `wait_timeout`; rwproxy closes the
    /// client's connection after the same time (`None`: not known, never).
    pub(crate) idle_timeout: Option<std::time::Duration>,
    /// The open transaction's record, for transaction replay (`routing.transaction_replay`).
    pub(crate) replay: crate::replay::Recorder,
    /// The session lends its backend connections between statements (`pool.enabled` and the
    /// account's `pooling`, decided at login).
    pub(crate) sharing: bool,
    /// Why it keeps them now (counted in `rwproxy_pool_pinned_sessions`).
    pub(crate) hold: Option<crate::sharing::HoldReason>,
    /// Marks the connections this session lends: one it gets back with this token is as it
    /// left it. A new token after `COM_RESET_CONNECTION` and `COM_CHANGE_USER` (the session's
    /// log starts again).
    pub(crate) lend_token: u64,
    /// Held from a statement placed on the primary until the session is between statements
    /// outside a transaction: a switchover waits for it (`rwproxy_monitor::PrimaryPass`).
    pub(crate) primary_pass: Option<rwproxy_monitor::PrimaryPass>,
    /// Its connections counted as pinned, per backend.
    pub(crate) pinned: crate::lending::PinnedCount,
}

/// Lending tokens (0 is "nobody").
static NEXT_LEND_TOKEN: std::sync::atomic::AtomicU64 = std::sync::atomic::AtomicU64::new(1);

/// A lending token no session had before.
pub(crate) fn new_lend_token() -> u64 {
    NEXT_LEND_TOKEN.fetch_add(1, std::sync::atomic::Ordering::Relaxed)
}

impl Session {
    pub fn new(
        ctx: Arc<ProxyContext>,
        id: u32,
        peer: SocketAddr,
        client: PacketStream,
        auth: AuthenticatedClient,
        handle: Arc<SessionHandle>,
    ) -> Self {
        let who = ClientIdentity {
            user: auth.user,
            secret: auth.secret,
            capabilities: auth.capabilities,
            collation: auth.collation,
            attributes: auth.attributes,
            max_packet: auth.max_packet as usize,
            mariadb_ext: auth.mariadb_ext,
            pool_key: None,
        };
        let mut who = who;
        who.refresh_pool_key();
        let interactive = auth
            .capabilities
            .contains(rwproxy_protocol::CapabilityFlags::CLIENT_INTERACTIVE);
        let idle_timeout = ctx.server_idle_timeout(interactive);
        let sharing = crate::pooling::reusable(&ctx, &who);
        let pinned = crate::lending::PinnedCount::new(ctx.clone());
        Self {
            ctx,
            id,
            peer,
            client,
            client_caps: auth.capabilities,
            state: SessionState::new(auth.database.clone()),
            who,
            backends: BackendSet::default(),
            prepared: PreparedSet::default(),
            handle,
            scratch: BytesMut::new(),
            packet: BytesMut::new(),
            // Sessions start one step apart, so consecutive sessions spread over the replicas.
            cursor: rwproxy_router::ReadCursor::starting_at(u64::from(id)),
            names: Default::default(),
            initial_database: auth.database,
            nonce: auth.nonce,
            idle_timeout,
            replay: Default::default(),
            sharing,
            hold: None,
            lend_token: new_lend_token(),
            primary_pass: None,
            pinned,
        }
    }

    /// Runs the command loop until the client quits, disconnects or is killed.
    pub async fn run(mut self) -> Result<(), ClientError> {
        let result = self.command_loop().await;
        self.set_hold(None);
        self.client.shutdown().await;
        // Ended between statements: the backend connections can serve later sessions once
        // reset. Otherwise (killed, idle timeout, an error mid-statement) they are closed.
        if result.is_ok() && crate::pooling::reusable(&self.ctx, &self.who) {
            self.backends.give_back(&self.ctx, &self.who).await;
        } else {
            self.backends.clear(&self.ctx);
        }
        result
    }

    /// Sends an OK packet with the session's current status.
    pub(crate) async fn send_ok(&mut self, seq: u8) -> Result<(), ClientError> {
        self.packet.clear();
        reply::encode_ok(&mut self.packet, 0, 0, self.state.status, 0);
        let mut s = seq;
        self.client.queue_packet(&mut s, &self.packet);
        self.client.flush().await?;
        Ok(())
    }

    /// Sends an error packet (and counts it).
    pub(crate) async fn send_error(
        &mut self,
        seq: u8,
        (code, state): (u16, &[u8; 5]),
        message: String,
    ) -> Result<(), ClientError> {
        tracing::debug!(code, %message, "error sent to client");
        self.ctx.observer.error_sent(code);
        self.packet.clear();
        reply::encode_err(&mut self.packet, code, state, &message);
        let mut s = seq;
        self.client.queue_packet(&mut s, &self.packet);
        self.client.flush().await?;
        Ok(())
    }
}
