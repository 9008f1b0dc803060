//! Backend connections kept across client sessions (`pool:`): what a connection can be reused
//! for, taking one for a session and giving it back, reset, when the session ends.
//!
//! A connection goes back only when its session ended between statements; it is reset there
//! (`COM_RESET_CONNECTION`: transactions rolled back, temporary tables, locks, user variables
//! and prepared statements gone, session variables back to the server's defaults) so that no
//! state of one session is ever seen by the next, which then replays its own state on it as on
//! a new connection.

use rwproxy_backend::{BackendConn, BackendError, BackendSecret};
use rwproxy_pool::{Acquired, Lease, OpenPermit, Pool, PoolLimits};
use rwproxy_protocol::auth;
use rwproxy_protocol::command::COM_RESET_CONNECTION;
use rwproxy_protocol::response::Expect;
use rwproxy_protocol::CapabilityFlags;

use crate::backend_set::{enable_tracking, ClientIdentity};
use crate::context::ProxyContext;

/// The pool of one proxy.
pub type BackendPool = Pool<PoolKey, PooledConn>;
/// A held connection's slot in the pool.
pub type PoolLease = Lease<PoolKey, PooledConn>;

/// What a backend connection can be reused for: the same account (same password) logged in
/// with the same protocol options. Connection attributes are not part of it: a reused
/// connection shows the attributes of the session that opened it in
/// `performance_schema.session_connect_attrs`.
#[derive(Debug, Clone)]
pub struct PoolKey(std::sync::Arc<KeyParts>);

impl PartialEq for PoolKey {
    fn eq(&self, other: &Self) -> bool {
        std::sync::Arc::ptr_eq(&self.0, &other.0) || self.0 == other.0
    }
}

impl Eq for PoolKey {}

#[derive(Debug, PartialEq, Eq)]
struct KeyParts {
    user: String,
    /// `SHA1(SHA1(password))`, whichever form the secret has.
    password: [u8; 20],
    capabilities: u32,
    collation: u8,
    mariadb_ext: u32,
    max_packet: usize,
}

impl PoolKey {
    /// Whether a connection logged in under `self` can be logged in again under `other` with
    /// `COM_CHANGE_USER`: that changes the account, the collation and the schema, not the
    /// protocol options fixed at login (the client capabilities that shape replies, which a
    /// backend connection mirrors).
    pub fn changes_to(&self, other: &PoolKey) -> bool {
        let (a, b) = (&*self.0, &*other.0);
        let shaping = rwproxy_backend::SHAPING_CAPABILITIES.bits();
        a.capabilities & shaping == b.capabilities & shaping
            && a.mariadb_ext == b.mariadb_ext
            && a.max_packet == b.max_packet
    }

    pub fn of(who: &ClientIdentity) -> PoolKey {
        let password = match &who.secret {
            BackendSecret::Password(p) => auth::native_stage2(p.as_bytes()),
            BackendSecret::NativeStage1(stage1) => auth::native_stage1(stage1),
        };
        PoolKey(std::sync::Arc::new(KeyParts {
            user: who.user.clone(),
            password,
            capabilities: who.capabilities.bits(),
            collation: who.collation,
            mariadb_ext: who.mariadb_ext,
            max_packet: who.max_packet,
        }))
    }
}

/// An idle connection and what rwproxy knows of it.
pub struct PooledConn {
    pub conn: BackendConn,
    /// The schema it has selected (`COM_RESET_CONNECTION` keeps it).
    pub schema: Option<String>,
    /// What `KILL` needs to reach its server thread.
    pub thread: std::sync::Arc<crate::registry::InFlight>,
    /// The lending token of the session that lent it (0: none, it is in its login state plus
    /// `image`).
    pub owner: u64,
    /// How much of the owner's log of session commands it has applied.
    pub applied: u64,
    /// The session commands it has applied since its login state (`None`: unknown).
    pub image: Option<crate::session_state::StateImage>,
    /// The prepared statements it holds.
    pub stmts: crate::conn_statements::ConnStatements,
    /// Its `LAST_INSERT_ID()`.
    pub insert_id: u64,
    pub serial: u64,
}

/// The pool's limits from the configuration.
pub fn limits(config: &rwproxy_config::Config) -> PoolLimits {
    let p = &config.pool;
    PoolLimits {
        reuse: p.enabled,
        max_per_backend: p.max_per_backend,
        wait_timeout: p.wait_timeout,
        idle_timeout: p.idle_timeout,
        max_age: p.max_age,
    }
}

/// Whether `who`'s connections may be shared and kept for later sessions (`pool.enabled`,
/// `users[].pooling`).
pub fn reusable(ctx: &ProxyContext, who: &ClientIdentity) -> bool {
    if !ctx.pool.limits().reuse {
        return false;
    }
    ctx.config_guard()
        .user(&who.user)
        .is_none_or(|user| user.pooling)
}

/// What taking a connection from the pool gave.
// Not boxed: a borrow happens for most statements, and the connection is moved once.
#[allow(clippy::large_enum_variant)]
pub enum Taken {
    /// An idle connection: in its login state plus `image`, `schema` selected.
    Reused(PooledConn, PoolLease),
    /// A slot to open a new connection in.
    Open(OpenPermit<PoolKey, PooledConn>),
    /// At the cap: an idle connection of another account, to log in as `who` with
    /// [`change_user`] (or close).
    Adopted(PooledConn, PoolLease),
}

/// A connection to `backend` for `who` wanting `schema`: an idle one that is still open and
/// fits, or the right to open one; waits at the backend's cap (`pool.wait_timeout`).
pub async fn take(
    ctx: &ProxyContext,
    backend: &str,
    who: &ClientIdentity,
    schema: Option<&str>,
    me: u64,
    adopt: bool,
) -> Result<Taken, BackendError> {
    let key = who.key();
    let mut closing = Vec::new();
    // A connection with a schema selected cannot be brought back to none: a session without
    // one takes only connections without one.
    let fits = |c: &mut PooledConn| {
        !c.conn.has_deferred()
            && !c.conn.stream().closed_while_idle()
            && (schema.is_some() || c.schema.is_none())
    };
    // At the cap, rather than closing another account's idle connection to open one: log it
    // in again as this account (same protocol options; not for `pooling: false` accounts).
    let adopt = adopt && reusable(ctx, who);
    let adoptable = |k: &PoolKey, c: &mut PooledConn| {
        adopt
            && k.changes_to(&key)
            && !c.conn.has_deferred()
            && !c.conn.stream().closed_while_idle()
    };
    let started = std::time::Instant::now();
    // The connection this session lent last comes back first: it needs nothing restored.
    let acquired = ctx
        .pool
        .acquire_preferring(
            backend,
            &key,
            |c| c.owner == me,
            fits,
            adoptable,
            &mut closing,
        )
        .await;
    ctx.observer.pool_wait(backend, started.elapsed());
    for gone in closing {
        drop(gone);
        ctx.backend_connection_closed(backend);
    }
    match acquired {
        Ok(Acquired::Reused(conn, lease)) => {
            if conn.owner != me {
                ctx.observer.pool_reused(backend);
            }
            Ok(Taken::Reused(conn, lease))
        }
        Ok(Acquired::Open(permit)) => Ok(Taken::Open(permit)),
        Ok(Acquired::Adopt(conn, lease)) => Ok(Taken::Adopted(conn, lease)),
        Err(full) => {
            ctx.observer.pool_full(backend);
            Err(BackendError::PoolFull {
                backend: full.backend,
                cap: full.cap,
                waited_ms: u64::try_from(full.waited.as_millis()).unwrap_or(u64::MAX),
            })
        }
    }
}

/// Resets a connection whose session ended between statements and gives it to the pool;
/// closes it if that fails or the pool does not keep it.
pub async fn give_back(
    ctx: &ProxyContext,
    who: &ClientIdentity,
    lease: PoolLease,
    mut conn: PooledConn,
) {
    let name = conn.conn.name().to_string();
    let clean = async {
        if conn.conn.has_deferred() {
            conn.conn.settle().await?;
        }
        if conn.conn.stream().closed_while_idle() {
            return Err(BackendError::Stale {
                backend: name.clone(),
                lost: "closed while idle",
            });
        }
        let outcome = conn
            .conn
            .exchange(&[COM_RESET_CONNECTION], Expect::OnePacket)
            .await?;
        conn.stmts.clear();
        conn.insert_id = 0;
        conn.owner = 0;
        conn.applied = 0;
        conn.image = Some(std::sync::Arc::from(Vec::new()));
        if let Some((code, state, message)) = outcome.error {
            return Err(BackendError::Server {
                backend: name.clone(),
                code,
                state,
                message,
            });
        }
        back_to_login_state(&mut conn.conn, who.capabilities).await?;
        enable_tracking(&mut conn.conn, &name).await
    };
    let reset = tokio::time::timeout(ctx.config_guard().timeouts.connect, clean).await;
    match reset {
        Ok(Ok(())) => {
            ctx.observer.pool_reset(&name);
            lend(ctx, who, lease, conn);
        }
        Ok(Err(e)) => {
            tracing::debug!(backend = %name, error = %e, "backend connection not reusable; closed");
            drop(lease);
            ctx.backend_connection_closed(&name);
        }
        Err(_) => {
            tracing::debug!(backend = %name, "backend connection did not reset in time; closed");
            drop(lease);
            ctx.backend_connection_closed(&name);
        }
    }
}

/// Logs an adopted connection in as `who` with `schema` selected (`COM_CHANGE_USER`: the
/// server resets the session as for a new login, prepared statements and all), then as after
/// [`open`](crate::backend_set): the client's own reset applied when it made one, the login's
/// own settings otherwise, GTID tracking on.
pub async fn change_user(
    conn: &mut BackendConn,
    who: &ClientIdentity,
    schema: Option<&str>,
    client_reset: bool,
) -> Result<(), BackendError> {
    let name = conn.name().to_string();
    conn.change_user(
        &who.user,
        &who.secret,
        schema,
        who.collation,
        &who.attributes,
    )
    .await?;
    if client_reset {
        let outcome = conn
            .exchange(&[COM_RESET_CONNECTION], Expect::OnePacket)
            .await?;
        if let Some((code, state, message)) = outcome.error {
            return Err(BackendError::Server {
                backend: name,
                code,
                state,
                message,
            });
        }
    } else {
        back_to_login_state(conn, who.capabilities).await?;
    }
    enable_tracking(conn, &name).await
}

/// After `COM_RESET_CONNECTION`: what the login itself set and the reset dropped, set again,
/// so that the connection is as a new login of the same client would be. The server adds
/// `IGNORE_SPACE` to the `sql_mode` of a `CLIENT_IGNORE_SPACE` login (and a reset drops it).
pub async fn back_to_login_state(
    conn: &mut BackendConn,
    capabilities: CapabilityFlags,
) -> Result<(), BackendError> {
    if !capabilities.contains(CapabilityFlags::CLIENT_IGNORE_SPACE) {
        return Ok(());
    }
    let outcome = conn
        .query(
            "SET SESSION sql_mode = CONCAT_WS(',', NULLIF(@@session.sql_mode, ''), 'IGNORE_SPACE')",
        )
        .await?;
    match outcome.error {
        None => Ok(()),
        Some((code, state, message)) => Err(BackendError::Server {
            backend: conn.name().to_string(),
            code,
            state,
            message,
        }),
    }
}

/// Puts a connection in the pool as it is: lent by a live session between its statements (see
/// [`crate::sharing`]), or given back reset; closes it if the pool does not keep it.
pub fn lend(ctx: &ProxyContext, who: &ClientIdentity, lease: PoolLease, conn: PooledConn) {
    if let Some(refused) = ctx.pool.release(lease, who.key(), conn) {
        let name = refused.conn.name().to_string();
        drop(refused);
        ctx.backend_connection_closed(&name);
    }
}

/// Closes idle connections past `pool.idle_timeout` or `pool.max_age`, and those of
/// backends a reload removed (run every second).
pub fn sweep(ctx: &ProxyContext) {
    let config = ctx.config_guard();
    let gone = ctx.pool.sweep(std::time::Instant::now(), |name| {
        config.backend(name).is_some()
    });
    drop(config);
    for (backend, conn) in gone {
        drop(conn);
        ctx.backend_connection_closed(&backend);
    }
}

/// Closes the idle connections to a backend the monitor declared down.
pub fn backend_down(ctx: &ProxyContext, backend: &str) {
    for conn in ctx.pool.drain_backend(backend) {
        drop(conn);
        ctx.backend_connection_closed(backend);
    }
}
