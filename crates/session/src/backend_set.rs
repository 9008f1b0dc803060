//! The backend connections one client session holds (at most one per backend), opened lazily
//! and brought up to date with the session's state before each use.

use rwproxy_backend::{BackendConn, BackendError, BackendSecret, ConnectParams};
use rwproxy_protocol::command::{COM_INIT_DB, COM_RESET_CONNECTION, COM_SET_OPTION};
use rwproxy_protocol::response::Expect;
use rwproxy_protocol::CapabilityFlags;

use crate::context::ProxyContext;
use crate::pooling::{self, PoolLease, PooledConn, Taken};
use crate::session_state::SessionState;

/// Who the session logs in as on its backends.
#[derive(Debug, Clone)]
pub struct ClientIdentity {
    pub user: String,
    pub secret: BackendSecret,
    pub capabilities: CapabilityFlags,
    pub collation: u8,
    pub attributes: Vec<(String, String)>,
    pub max_packet: usize,
    pub mariadb_ext: u32,
    /// What its connections can be shared for ([`PoolKey::of`]), computed once per login.
    pub pool_key: Option<pooling::PoolKey>,
}

impl ClientIdentity {
    /// Computes [`ClientIdentity::pool_key`] again (after a change of user).
    pub fn refresh_pool_key(&mut self) {
        self.pool_key = Some(pooling::PoolKey::of(self));
    }

    /// The pool key (computed now if it was not).
    pub fn key(&self) -> pooling::PoolKey {
        match &self.pool_key {
            Some(k) => k.clone(),
            None => pooling::PoolKey::of(self),
        }
    }
}

/// One backend connection and how far it follows the session's state.
#[derive(Debug)]
pub struct Slot {
    pub conn: BackendConn,
    /// What `KILL` needs to reach this connection's server thread (built once).
    pub thread: std::sync::Arc<crate::registry::InFlight>,
    /// The newest session command applied on this connection.
    pub applied: u64,
    pub schema: Option<String>,
    /// Its slot in the pool (`pool.max_per_backend`); freed when the slot is dropped.
    pub lease: PoolLease,
    /// The prepared statements it holds (this session's and others').
    pub stmts: crate::conn_statements::ConnStatements,
    /// The server's `LAST_INSERT_ID()` on it, as far as replies showed.
    pub insert_id: u64,
    /// Borrowed from another session since this session's previous statement on it: what
    /// the server says of "the previous statement" is not this session's.
    pub foreign: bool,
    /// Unique per connection opened by this process.
    pub serial: u64,
    /// A statement on it had warnings or failed: the server keeps them (for `SHOW WARNINGS`)
    /// until a statement that uses a table clears them, so it is not lent before they are gone.
    pub diag_dirty: bool,
}

/// Serial numbers of backend connections.
static NEXT_SERIAL: std::sync::atomic::AtomicU64 = std::sync::atomic::AtomicU64::new(1);

/// Who borrows a connection: the session's id and the state its connections must be in.
pub struct Borrower<'a> {
    /// The session's lending token (see [`crate::session::Session::lend_token`]).
    pub id: u64,
    pub state: &'a SessionState,
    pub image: &'a crate::session_state::StateImage,
}

#[derive(Debug, Default)]
pub struct BackendSet {
    slots: Vec<Slot>,
}

/// A session command replayed on another connection failed there.
fn replay_failed(backend: &str, payload: &[u8], e: (u16, [u8; 5], String)) -> BackendError {
    let shown = String::from_utf8_lossy(&payload[1..payload.len().min(80)]);
    BackendError::Server {
        backend: backend.to_string(),
        code: e.0,
        state: e.1,
        message: format!(
            "replaying session command `{shown}` on backend '{backend}' failed: {}",
            e.2
        ),
    }
}

impl BackendSet {
    pub fn is_open(&self, name: &str) -> bool {
        self.slots.iter().any(|s| s.conn.name() == name)
    }

    pub fn get_mut(&mut self, name: &str) -> Option<&mut Slot> {
        self.slots.iter_mut().find(|s| s.conn.name() == name)
    }

    pub fn iter_mut(&mut self) -> impl Iterator<Item = &mut Slot> {
        self.slots.iter_mut()
    }

    pub fn is_empty(&self) -> bool {
        self.slots.is_empty()
    }

    /// Some connection may still have warnings or errors of an earlier statement.
    pub fn any_diag_dirty(&self) -> bool {
        self.slots.iter().any(|s| s.diag_dirty)
    }

    pub fn names(&self) -> impl Iterator<Item = &str> {
        self.slots.iter().map(|s| s.conn.name())
    }

    /// Drops the connection to `name` (after an error, or when the backend was removed).
    pub fn discard(&mut self, ctx: &ProxyContext, name: &str) {
        let before = self.slots.len();
        self.slots.retain(|s| s.conn.name() != name);
        if self.slots.len() != before {
            ctx.backend_connection_closed(name);
        }
    }

    /// The session ended between statements: each connection is reset and given to the pool
    /// for later sessions (or closed when that fails).
    pub async fn give_back(&mut self, ctx: &ProxyContext, who: &ClientIdentity) {
        for slot in std::mem::take(&mut self.slots) {
            if slot.thread.marked_for_kill() {
                // A KILL may still be on its way to it: closed, never reused.
                slot.close(ctx);
                continue;
            }
            let (lease, pooled) = slot.into_pooled(0, None);
            pooling::give_back(ctx, who, lease, pooled).await;
        }
    }

    /// Whether the warnings and errors a statement left on the session's connections are gone
    /// (asked of the server where some were left; a connection that does not answer is
    /// dropped and its backend pushed onto `lost`). `false`: some connection still has them.
    pub async fn diagnostics_cleared(
        &mut self,
        ctx: &ProxyContext,
        lost: &mut Vec<String>,
    ) -> bool {
        let mut clear = true;
        for slot in self.slots.iter_mut().filter(|s| s.diag_dirty) {
            match slot
                .conn
                .query("SELECT @@session.warning_count + @@session.error_count")
                .await
            {
                Ok(o) if o.error.is_none() => {
                    let left = o
                        .rows
                        .first()
                        .and_then(|r| r.first().cloned().flatten())
                        .and_then(|v| v.parse::<u64>().ok());
                    if left == Some(0) {
                        slot.diag_dirty = false;
                    } else {
                        clear = false;
                    }
                }
                Ok(_) => clear = false,
                Err(_) => lost.push(slot.conn.name().to_string()),
            }
        }
        for name in lost.iter() {
            self.discard(ctx, name);
        }
        clear
    }

    /// Between statements, with nothing holding the session on its connections: every
    /// connection goes to the pool as it is (no reset), for any session of the same account to
    /// borrow; `image` is the state it carries when it has applied everything (`head`).
    pub async fn lend(
        &mut self,
        ctx: &ProxyContext,
        who: &ClientIdentity,
        me: u64,
        image: &crate::session_state::StateImage,
        head: u64,
    ) {
        for mut slot in std::mem::take(&mut self.slots) {
            // A KILL on its way to this connection's thread must not reach the next session's
            // statement: the connection is closed instead (the session published that it no
            // longer holds it before this check, see `kill`).
            let marked = slot.thread.marked_for_kill();
            if marked || (slot.conn.has_deferred() && slot.conn.settle().await.is_err()) {
                slot.close(ctx);
                continue;
            }
            let carried = (slot.applied == head).then(|| image.clone());
            let (lease, pooled) = slot.into_pooled(me, carried);
            pooling::lend(ctx, who, lease, pooled);
        }
    }

    pub fn clear(&mut self, ctx: &ProxyContext) {
        for s in self.slots.drain(..) {
            ctx.backend_connection_closed(s.conn.name());
        }
    }

    /// The connection to `name`, opened if needed and brought up to date with the
    /// borrower's state.
    pub async fn ready(
        &mut self,
        ctx: &ProxyContext,
        name: &str,
        who: &ClientIdentity,
        borrower: &Borrower<'_>,
    ) -> Result<&mut Slot, BackendError> {
        let state = borrower.state;
        let index = match self.slots.iter().position(|s| s.conn.name() == name) {
            Some(i) => i,
            None => {
                let mut adopt = true;
                let (conn, lease, schema, thread, carried) = loop {
                    break match pooling::take(
                        ctx,
                        name,
                        who,
                        state.schema.as_deref(),
                        borrower.id,
                        adopt,
                    )
                    .await?
                    {
                        Taken::Adopted(mut p, lease) => {
                            let changed = pooling::change_user(
                                &mut p.conn,
                                who,
                                state.schema.as_deref(),
                                state.reset_new_connections,
                            )
                            .await;
                            if let Err(e) = changed {
                                // Closed (its slot freed with the lease); a new connection
                                // is opened instead.
                                tracing::info!(backend = name, error = %e, "logging an idle pooled connection in as another account failed; opening one");
                                drop(p);
                                drop(lease);
                                ctx.backend_connection_closed(name);
                                adopt = false;
                                continue;
                            }
                            ctx.observer.pool_changed_user(name);
                            (p.conn, lease, state.schema.clone(), p.thread, None)
                        }
                        Taken::Reused(p, lease) => {
                            let carried = Carried {
                                owner: p.owner,
                                applied: p.applied,
                                image: p.image,
                                stmts: p.stmts,
                                insert_id: p.insert_id,
                                serial: p.serial,
                            };
                            (p.conn, lease, p.schema, p.thread, Some(carried))
                        }
                        Taken::Open(permit) => {
                            // An error drops the permit, which frees its slot.
                            let (conn, address) = open(
                                ctx,
                                name,
                                who,
                                state.schema.as_deref(),
                                state.reset_new_connections,
                            )
                            .await?;
                            ctx.backend_connection_opened(name);
                            let thread = std::sync::Arc::new(crate::registry::InFlight::new(
                                name.to_string(),
                                address,
                                conn.thread_id(),
                            ));
                            (conn, permit.opened(), state.schema.clone(), thread, None)
                        }
                    };
                };
                let mut slot = Slot {
                    conn,
                    thread,
                    applied: 0,
                    schema,
                    lease,
                    stmts: Default::default(),
                    insert_id: 0,
                    foreign: true,
                    serial: NEXT_SERIAL.fetch_add(1, std::sync::atomic::Ordering::Relaxed),
                    diag_dirty: false,
                };
                // The client reset its session on a login whose own settings a reset drops
                // (IGNORE_SPACE): a pooled connection, in the login's state, is reset too.
                let reset_base = state.reset_new_connections
                    && who
                        .capabilities
                        .contains(CapabilityFlags::CLIENT_IGNORE_SPACE);
                if let Some(c) = carried {
                    slot.serial = c.serial;
                    slot.stmts = c.stmts;
                    slot.insert_id = c.insert_id;
                    if reset_base {
                        restore(ctx, &mut slot, who, false).await?;
                    } else if c.owner == borrower.id && borrower.id != 0 {
                        // This session's own connection, untouched since it lent it.
                        slot.applied = c.applied;
                        slot.foreign = false;
                    } else if c.image.as_deref() == Some(&borrower.image[..]) {
                        // Another session's, in the same state.
                        slot.applied = state.log_head();
                    } else {
                        // Another session's, in another state: back to the login state, then
                        // this session's commands.
                        restore(ctx, &mut slot, who, true).await?;
                    }
                }
                self.slots.push(slot);
                self.slots.len() - 1
            }
        };
        let slot = &mut self.slots[index];
        if slot.applied < state.log_head() {
            for cmd in state.pending_since(slot.applied) {
                let expect = match cmd.payload.first() {
                    Some(&COM_SET_OPTION) | Some(&COM_INIT_DB) => Expect::OnePacket,
                    _ => Expect::ResultSet,
                };
                let outcome = slot.conn.exchange(&cmd.payload, expect).await?;
                if let Some(e) = outcome.error {
                    return Err(replay_failed(name, &cmd.payload, e));
                }
                slot.applied = cmd.seq;
            }
        }
        if state.schema.is_some() && slot.schema != state.schema {
            let db = state.schema.as_deref().unwrap_or_default();
            let mut payload = Vec::with_capacity(db.len() + 1);
            payload.push(COM_INIT_DB);
            payload.extend_from_slice(db.as_bytes());
            let outcome = slot.conn.exchange(&payload, Expect::OnePacket).await?;
            if let Some((code, state, message)) = outcome.error {
                // As the server answers a login or a `USE` with that schema.
                return Err(BackendError::Server {
                    backend: name.to_string(),
                    code,
                    state,
                    message,
                });
            }
            slot.schema = state.schema.clone();
        }
        Ok(slot)
    }
}

/// What a pooled connection brings with it.
struct Carried {
    owner: u64,
    applied: u64,
    image: Option<crate::session_state::StateImage>,
    stmts: crate::conn_statements::ConnStatements,
    insert_id: u64,
    serial: u64,
}

impl Slot {
    /// Closes the connection (its pool slot is freed) and counts it.
    fn close(self, ctx: &ProxyContext) {
        let name = self.conn.name_arc();
        drop(self);
        ctx.backend_connection_closed(&name);
    }

    /// Gives the connection the session's `LAST_INSERT_ID()` when another session's is on it
    /// (what the next statement says of "the previous statement" is then rwproxy's, so the
    /// connection counts as foreign).
    pub async fn set_insert_id(&mut self, value: u64) -> Result<(), BackendError> {
        if self.insert_id == value {
            return Ok(());
        }
        let outcome = self
            .conn
            .query(&format!("SET last_insert_id = {value}"))
            .await?;
        if let Some((code, state, message)) = outcome.error {
            return Err(BackendError::Server {
                backend: self.conn.name().to_string(),
                code,
                state,
                message,
            });
        }
        self.insert_id = value;
        self.foreign = true;
        Ok(())
    }

    /// The connection and what rwproxy knows of it, for the pool; `owner` lent it carrying
    /// `image` (`None`: a state no image describes).
    fn into_pooled(
        self,
        owner: u64,
        image: Option<crate::session_state::StateImage>,
    ) -> (PoolLease, PooledConn) {
        (
            self.lease,
            PooledConn {
                conn: self.conn,
                schema: self.schema,
                thread: self.thread,
                owner,
                applied: self.applied,
                image,
                stmts: self.stmts,
                insert_id: self.insert_id,
                serial: self.serial,
            },
        )
    }
}

/// Brings a connection another session left in another state back to its login state
/// (`COM_RESET_CONNECTION`: session variables, and prepared statements gone; the schema stays).
async fn restore(
    ctx: &ProxyContext,
    slot: &mut Slot,
    who: &ClientIdentity,
    login_state: bool,
) -> Result<(), BackendError> {
    let name = slot.conn.name().to_string();
    let outcome = slot
        .conn
        .exchange(&[COM_RESET_CONNECTION], Expect::OnePacket)
        .await?;
    if let Some(e) = outcome.error {
        return Err(replay_failed(&name, &[COM_RESET_CONNECTION, 0], e));
    }
    if login_state {
        pooling::back_to_login_state(&mut slot.conn, who.capabilities).await?;
    }
    enable_tracking(&mut slot.conn, &name).await?;
    slot.stmts.clear();
    slot.insert_id = 0;
    slot.applied = 0;
    ctx.observer.pool_restored(&name);
    Ok(())
}

/// Opens and logs in a connection to `name` for this client, with GTID tracking switched on.
async fn open(
    ctx: &ProxyContext,
    name: &str,
    who: &ClientIdentity,
    schema: Option<&str>,
    reset: bool,
) -> Result<(BackendConn, String), BackendError> {
    let config = ctx.config();
    let Some(backend) = config.backend(name) else {
        return Err(BackendError::Unsupported {
            backend: name.to_string(),
            what: "no such backend in the configuration (removed by a reload?)".into(),
        });
    };
    let tls = ctx.backend_tls();
    let params = ConnectParams {
        name,
        address: &backend.address,
        connect_timeout: config.timeouts.connect,
        login_timeout: login_budget(&config),
        user: &who.user,
        secret: &who.secret,
        database: schema,
        client_capabilities: who.capabilities,
        collation: who.collation,
        max_packet: who.max_packet.max(config.max_allowed_packet as usize),
        attributes: &who.attributes,
        mariadb_ext: who.mariadb_ext,
        tls: tls.as_deref(),
    };
    let mut conn = BackendConn::connect(&params).await?;
    ctx.learn_greeting(name, conn.greeting());
    if reset {
        // The client reset its session (or changed user): on the server that also drops
        // what the login itself set (CLIENT_IGNORE_SPACE's sql_mode), so a connection opened
        // afterwards starts from the same reset state.
        let outcome = conn
            .exchange(&[COM_RESET_CONNECTION], Expect::OnePacket)
            .await?;
        if let Some(e) = outcome.error {
            return Err(replay_failed(name, &[COM_RESET_CONNECTION, 0], e));
        }
    }
    enable_tracking(&mut conn, name).await?;
    Ok((conn, backend.address.clone()))
}

/// How long a backend login may take: the handshake timeout, but no longer than the monitor
/// takes to declare a server down (checks × interval + check timeout), so a new session does
/// not wait on a frozen server longer than existing ones do.
fn login_budget(config: &rwproxy_config::Config) -> std::time::Duration {
    let handshake = config.timeouts.handshake.max(config.timeouts.connect);
    if config.monitor.credentials().is_none() {
        return handshake;
    }
    let m = &config.monitor;
    let detection = m.interval * m.failure_threshold.max(1) + m.timeout;
    handshake.min(detection.max(config.timeouts.connect))
}

/// Switches on session tracking of the GTID each write produces (read-your-writes), on a new
/// connection and again after `COM_RESET_CONNECTION`, which restores the server's defaults.
pub(crate) async fn enable_tracking(
    conn: &mut BackendConn,
    name: &str,
) -> Result<(), BackendError> {
    let sql = if conn.is_mariadb() {
        "SET SESSION session_track_system_variables = 'autocommit,character_set_client,character_set_connection,character_set_results,time_zone,last_gtid,sql_mode,wait_timeout'"
    } else {
        "SET SESSION session_track_gtids = 'OWN_GTID'"
    };
    let outcome = conn.query(sql).await?;
    if let Some((code, _, message)) = outcome.error {
        tracing::warn!(backend = name, code, %message, "cannot enable GTID session tracking; read-your-writes falls back to the primary");
    }
    Ok(())
}
