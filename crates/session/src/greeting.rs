//! The greeting a client sees is the server's own: the version string byte for byte (MariaDB's
//! `5.5.5-` prefix included), default collation, status flags, authentication plugin, and the
//! capability flags and MariaDB extended capabilities that the server offers and rwproxy
//! implements. Clients read the version to choose collations and code paths, so a greeting of
//! rwproxy's own invention makes them behave differently than against the server.
//!
//! Greetings are learned from the backends: every data-path login records its server's greeting
//! ([`crate::ProxyContext::learn_greeting`]), and [`watch`] logs in with the monitor account
//! whenever the primary changes and its greeting is not known yet. [`for_client`] is the pure
//! choice of what to send.

use std::sync::Arc;
use std::time::Duration;

use rwproxy_backend::{BackendConn, BackendSecret, ConnectParams};
use rwproxy_protocol::handshake::{
    Greeting, MARIADB_CACHE_METADATA, MARIADB_EXTENDED_METADATA, MARIADB_PROGRESS,
    MARIADB_STMT_BULK_OPERATIONS,
};
use rwproxy_protocol::{auth, CapabilityFlags, StatusFlags};

use crate::context::ProxyContext;

/// Capability flags rwproxy implements towards clients (`CLIENT_SSL` is added when client TLS
/// is configured, whatever the server offers). A flag the server does not offer is not offered.
pub const IMPLEMENTED_CAPABILITIES: CapabilityFlags = CapabilityFlags::from_bits_retain(
    CapabilityFlags::CLIENT_LONG_PASSWORD.bits()
        | CapabilityFlags::CLIENT_FOUND_ROWS.bits()
        | CapabilityFlags::CLIENT_LONG_FLAG.bits()
        | CapabilityFlags::CLIENT_CONNECT_WITH_DB.bits()
        | CapabilityFlags::CLIENT_NO_SCHEMA.bits()
        | CapabilityFlags::CLIENT_COMPRESS.bits()
        | CapabilityFlags::CLIENT_ODBC.bits()
        | CapabilityFlags::CLIENT_LOCAL_FILES.bits()
        | CapabilityFlags::CLIENT_IGNORE_SPACE.bits()
        | CapabilityFlags::CLIENT_PROTOCOL_41.bits()
        | CapabilityFlags::CLIENT_INTERACTIVE.bits()
        | CapabilityFlags::CLIENT_IGNORE_SIGPIPE.bits()
        | CapabilityFlags::CLIENT_TRANSACTIONS.bits()
        | CapabilityFlags::CLIENT_RESERVED.bits()
        | CapabilityFlags::CLIENT_SECURE_CONNECTION.bits()
        | CapabilityFlags::CLIENT_MULTI_STATEMENTS.bits()
        | CapabilityFlags::CLIENT_MULTI_RESULTS.bits()
        | CapabilityFlags::CLIENT_PS_MULTI_RESULTS.bits()
        | CapabilityFlags::CLIENT_PLUGIN_AUTH.bits()
        | CapabilityFlags::CLIENT_CONNECT_ATTRS.bits()
        | CapabilityFlags::CLIENT_PLUGIN_AUTH_LENENC_CLIENT_DATA.bits()
        | CapabilityFlags::CLIENT_CAN_HANDLE_EXPIRED_PASSWORDS.bits()
        | CapabilityFlags::CLIENT_SESSION_TRACK.bits()
        | CapabilityFlags::CLIENT_DEPRECATE_EOF.bits()
        | CapabilityFlags::CLIENT_REMEMBER_OPTIONS.bits(),
);

/// MariaDB extended capabilities rwproxy implements: bulk execute, extended column metadata
/// (relayed unchanged), metadata caching of prepared statements and progress reports (both
/// understood by the reply tracker).
pub const IMPLEMENTED_MARIADB_EXT: u32 = MARIADB_PROGRESS
    | MARIADB_STMT_BULK_OPERATIONS
    | MARIADB_EXTENDED_METADATA
    | MARIADB_CACHE_METADATA;

/// The version announced while no backend's greeting is known (every backend unreachable since
/// rwproxy started). The `5.5.5-` prefix keeps clients off MySQL 8 code paths.
pub const FALLBACK_VERSION: &str = "5.5.5-10.11.0-MariaDB-rwproxy";

/// What rwproxy greets a client with: the learned server greeting (or a MariaDB-like fallback),
/// its version replaced by `version_override` when configured, its capabilities limited to
/// what rwproxy implements. Pure.
pub fn for_client(
    learned: Option<&Greeting>,
    version_override: Option<&str>,
    tls: bool,
    connection_id: u32,
    nonce: &[u8],
) -> Greeting {
    let (version, mut capabilities, collation, status, plugin, ext) = match learned {
        Some(g) => (
            g.server_version.as_str(),
            g.capabilities & IMPLEMENTED_CAPABILITIES,
            g.collation,
            g.status,
            g.auth_plugin.as_str(),
            g.mariadb_ext & IMPLEMENTED_MARIADB_EXT,
        ),
        None => (
            FALLBACK_VERSION,
            IMPLEMENTED_CAPABILITIES - CapabilityFlags::CLIENT_LONG_PASSWORD,
            45,
            StatusFlags::SERVER_STATUS_AUTOCOMMIT,
            auth::NATIVE_PASSWORD,
            MARIADB_STMT_BULK_OPERATIONS | MARIADB_EXTENDED_METADATA,
        ),
    };
    capabilities.set(CapabilityFlags::CLIENT_SSL, tls);
    // rwproxy authenticates with these two plugins only; another default (e.g. ed25519) is
    // announced as the native one, and the account's own plugin is switched to as usual.
    let plugin = match plugin {
        auth::CACHING_SHA2_PASSWORD => auth::CACHING_SHA2_PASSWORD,
        _ => auth::NATIVE_PASSWORD,
    };
    // Extended capabilities travel only with CLIENT_LONG_PASSWORD ("CLIENT_MYSQL") clear.
    let mariadb_ext = if capabilities.contains(CapabilityFlags::CLIENT_LONG_PASSWORD) {
        0
    } else {
        ext
    };
    Greeting {
        server_version: version_override.unwrap_or(version).to_string(),
        connection_id,
        nonce: nonce.to_vec(),
        capabilities,
        collation,
        status,
        auth_plugin: plugin.to_string(),
        mariadb_ext,
    }
}

/// How long a client's greeting may wait for a first backend greeting to be learned: half the
/// client's own handshake budget.
fn learn_budget(ctx: &ProxyContext) -> Duration {
    ctx.config_guard().timeouts.handshake / 2
}

/// The greeting to base a client's on: the known one, or one learned now from the backends
/// (only until the first is known). `None` when no backend answers.
pub async fn current(ctx: &ProxyContext) -> Option<Arc<Greeting>> {
    if let Some(g) = ctx.known_greeting() {
        return Some(g);
    }
    let _ = tokio::time::timeout(learn_budget(ctx), learn_preferred(ctx)).await;
    ctx.known_greeting()
}

/// Learns the greeting of the backend clients should see: the primary, or while there is none
/// each backend in configuration order until one answers. Single-flight across sessions.
async fn learn_preferred(ctx: &ProxyContext) {
    let _one_at_a_time = ctx.greeting_fetch_lock().await;
    if ctx.known_greeting().is_some() {
        return;
    }
    for name in candidates(ctx) {
        if learn(ctx, &name).await {
            return;
        }
    }
}

/// The primary first, then every other backend in configuration order.
fn candidates(ctx: &ProxyContext) -> Vec<String> {
    let topology = ctx.monitor().snapshot();
    let mut names: Vec<String> = topology
        .primary()
        .map(|p| p.name.clone())
        .into_iter()
        .collect();
    for b in &topology.backends {
        if !names.contains(&b.name) {
            names.push(b.name.clone());
        }
    }
    names
}

/// Reads `name`'s greeting: by logging in with the monitor account and quitting (a clean
/// connection for the server), or, without monitor credentials, by reading the greeting alone.
async fn learn(ctx: &ProxyContext, name: &str) -> bool {
    let config = ctx.config();
    let Some(backend) = config.backend(name) else {
        return false;
    };
    let greeting = match config.monitor.credentials() {
        Some((user, password)) => {
            let secret = BackendSecret::Password(password.expose().to_string());
            let tls = ctx.backend_tls();
            let params = ConnectParams {
                name,
                address: &backend.address,
                connect_timeout: config.timeouts.connect,
                login_timeout: config.timeouts.handshake.max(config.timeouts.connect),
                user,
                secret: &secret,
                database: None,
                client_capabilities: CapabilityFlags::empty(),
                collation: 45,
                max_packet: 1 << 24,
                attributes: &[],
                mariadb_ext: 0,
                tls: tls.as_deref(),
            };
            match BackendConn::connect(&params).await {
                Ok(mut conn) => {
                    let g = conn.greeting().clone();
                    learn_idle_timeouts(ctx, &mut conn).await;
                    conn.quit().await;
                    Ok(g)
                }
                Err(e) => Err(e),
            }
        }
        None => {
            rwproxy_backend::read_greeting(
                name,
                &backend.address,
                config.timeouts.connect,
                config.timeouts.handshake,
            )
            .await
        }
    };
    match greeting {
        Ok(g) => {
            ctx.learn_greeting(name, &g);
            true
        }
        Err(e) => {
            tracing::debug!(backend = name, error = %e, "cannot learn the server greeting");
            false
        }
    }
}

/// Reads the server's idle limits (how long the server would let a client connection idle).
async fn learn_idle_timeouts(ctx: &ProxyContext, conn: &mut BackendConn) {
    let Ok(outcome) = conn
        .query("SELECT @@global.wait_timeout, @@global.interactive_timeout")
        .await
    else {
        return;
    };
    let value = |i: usize| -> Option<u64> {
        outcome
            .rows
            .first()?
            .get(i)?
            .as_deref()?
            .trim()
            .parse()
            .ok()
    };
    if let (Some(wait), Some(interactive)) = (value(0), value(1)) {
        ctx.learn_idle_timeouts(wait, interactive);
    }
}

/// Keeps the greeting current: whenever the monitor publishes a topology whose primary's
/// greeting is unknown, learns it (a failover to a server of another version changes what new
/// clients see; a restarted server is re-learned by the next data-path login).
pub async fn watch(ctx: Arc<ProxyContext>) {
    let mut events = ctx.monitor().subscribe_events();
    loop {
        let primary = ctx.monitor().snapshot().primary().map(|p| p.name.clone());
        match primary {
            Some(name) if !ctx.has_greeting(&name) => {
                learn(&ctx, &name).await;
            }
            None if ctx.known_greeting().is_none() => learn_preferred(&ctx).await,
            _ => {}
        }
        match events.recv().await {
            Ok(_) | Err(tokio::sync::broadcast::error::RecvError::Lagged(_)) => {}
            Err(_) => return,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn mariadb() -> Greeting {
        Greeting {
            server_version: "5.5.5-10.11.19-MariaDB-0+deb12u1-log".into(),
            connection_id: 124,
            nonce: vec![],
            // What MariaDB 10.11 offers without TLS.
            capabilities: CapabilityFlags::from_bits_retain(0x81ff_f7fe),
            collation: 45,
            status: StatusFlags::SERVER_STATUS_AUTOCOMMIT,
            auth_plugin: auth::NATIVE_PASSWORD.into(),
            mariadb_ext: 0x1d,
        }
    }

    #[test]
    fn a_mariadb_greeting_is_passed_on_unchanged_but_for_id_and_nonce() {
        let g = for_client(Some(&mariadb()), None, false, 7, b"n");
        let expected = Greeting {
            connection_id: 7,
            nonce: b"n".to_vec(),
            ..mariadb()
        };
        assert_eq!(g, expected);
    }

    #[test]
    fn tls_is_rwproxys_own_and_unknown_flags_are_not_offered() {
        let mut server = mariadb();
        server.capabilities |= CapabilityFlags::CLIENT_SSL
            | CapabilityFlags::CLIENT_QUERY_ATTRIBUTES
            | CapabilityFlags::CLIENT_ZSTD_COMPRESSION_ALGORITHM;
        server.mariadb_ext |= 0x20;
        let g = for_client(Some(&server), None, false, 1, b"");
        assert!(!g.capabilities.contains(CapabilityFlags::CLIENT_SSL));
        assert!(!g
            .capabilities
            .contains(CapabilityFlags::CLIENT_QUERY_ATTRIBUTES));
        assert_eq!(g.mariadb_ext, 0x1d);
        let g = for_client(Some(&mariadb()), None, true, 1, b"");
        assert!(g.capabilities.contains(CapabilityFlags::CLIENT_SSL));
    }

    #[test]
    fn override_replaces_only_the_version() {
        let g = for_client(Some(&mariadb()), Some("8.0.36-proxy"), false, 1, b"");
        assert_eq!(g.server_version, "8.0.36-proxy");
        assert_eq!(g.mariadb_ext, 0x1d);
    }

    #[test]
    fn mysql_servers_get_no_extended_capabilities_and_keep_their_plugin() {
        let mysql = Greeting {
            server_version: "8.0.36".into(),
            capabilities: CapabilityFlags::from_bits_retain(0xdfff_ffff),
            auth_plugin: auth::CACHING_SHA2_PASSWORD.into(),
            mariadb_ext: 0,
            collation: 255,
            ..mariadb()
        };
        let g = for_client(Some(&mysql), None, false, 1, b"");
        assert_eq!(g.mariadb_ext, 0);
        assert_eq!(g.collation, 255);
        assert_eq!(g.auth_plugin, auth::CACHING_SHA2_PASSWORD);
        assert!(g
            .capabilities
            .contains(CapabilityFlags::CLIENT_LONG_PASSWORD));
    }

    #[test]
    fn fallback_looks_like_mariadb() {
        let g = for_client(None, None, false, 1, b"");
        assert!(g.server_version.starts_with("5.5.5-"));
        assert!(!g
            .capabilities
            .contains(CapabilityFlags::CLIENT_LONG_PASSWORD));
        assert_ne!(g.mariadb_ext & MARIADB_STMT_BULK_OPERATIONS, 0);
    }

    #[test]
    fn other_default_plugins_are_announced_as_native() {
        let mut server = mariadb();
        server.auth_plugin = "client_ed25519".into();
        let g = for_client(Some(&server), None, false, 1, b"");
        assert_eq!(g.auth_plugin, auth::NATIVE_PASSWORD);
    }
}
