//! A client connection's life: admission (`max_client_connections`), the handshake, then its
//! session, in its own task with its own error handling: one bad client never disturbs another
//! session. Accepting is in [`crate::workers`].

use std::net::SocketAddr;
use std::sync::Arc;

use bytes::BytesMut;
use rwproxy_protocol::reply::{self, codes};

use crate::observer::Rejection;
use rwproxy_transport::{MaybeTls, PacketStream, TransportError};
use tokio::net::TcpStream;
use tracing::Instrument;

use crate::client_auth::authenticate;
use crate::context::ProxyContext;
use crate::error::ClientError;
use crate::login_throttle::Admission;
use crate::registry::SessionHandle;
use crate::session::Session;
use rwproxy_transport::proxy_header::{ProxiedClient, ProxyHeaderError};

/// Read granularity of client connections.
const CLIENT_READ_CHUNK: usize = 2048;

/// The largest packet a client may send before it is authenticated. A handshake response is
/// small: fixed fields, user, schema and plugin names, an auth response (at most an RSA-encrypted
/// password), and connection attributes, which MySQL and MariaDB clients keep under 64 KiB. So
/// an unauthenticated connection cannot make the proxy buffer `max_allowed_packet` (64 MiB by
/// default) per connection; a bigger packet gets ERR 1153 and a close.
pub const PRE_AUTH_MAX_PACKET: usize = 66 * 1024;

/// Runs one client connection from the handshake to the end of its session.
pub(crate) async fn handle_client(ctx: Arc<ProxyContext>, tcp: TcpStream, peer: SocketAddr) {
    let _ = tcp.set_nodelay(true);
    let config = ctx.config();
    let id = ctx.next_conn_id();
    // `peer` is the TCP peer; `client` the real client when a trusted balancer says who it is.
    let span = tracing::info_span!("session", id, %peer, client = tracing::field::Empty);
    let session_span = span.clone();
    async move {
        let mut peer = peer;
        // Client buffers start small: most client connections sit idle between statements.
        let max_packet = config.max_allowed_packet as usize;
        let mut stream =
            PacketStream::new(MaybeTls::Plain(tcp), PRE_AUTH_MAX_PACKET.min(max_packet))
                .with_read_chunk(CLIENT_READ_CHUNK);
        if !ctx.try_add_client(config.max_client_connections) {
            tracing::warn!(
                limit = config.max_client_connections,
                "refusing client: too many connections"
            );
            ctx.observer.client_rejected(Rejection::TooManyConnections);
            ctx.observer.error_sent(codes::TOO_MANY_CONNECTIONS.0);
            let mut out = BytesMut::new();
            reply::encode_err(
                &mut out,
                codes::TOO_MANY_CONNECTIONS.0,
                codes::TOO_MANY_CONNECTIONS.1,
                "Too many connections",
            );
            let _ = stream.write_packet(&mut 0, &out).await;
            stream.shutdown().await;
            return;
        }
        ctx.observer.client_connected();
        if config.proxy_protocol.trusts(peer.ip()) {
            let header = tokio::time::timeout(
                config.timeouts.handshake,
                rwproxy_transport::proxy_header::read(&mut stream),
            )
            .await;
            match header {
                Ok(Ok(ProxiedClient::Address(client))) => {
                    session_span.record("client", tracing::field::display(client));
                    peer = client;
                }
                Ok(Ok(ProxiedClient::Local)) => {}
                Ok(Err(e)) => {
                    let error = e.to_string();
                    if matches!(e, ProxyHeaderError::Closed) && stream.buffered().is_empty() {
                        // Opened and closed without a byte: the balancer's TCP health check.
                        tracing::debug!("connection closed before a PROXY protocol header");
                    } else {
                        tracing::info!(error = %crate::shown::Shown::new(&error), "refusing client: bad PROXY protocol header from a trusted address");
                        ctx.observer.client_rejected(Rejection::ProtocolError);
                    }
                    stream.shutdown().await;
                    ctx.remove_client();
                    ctx.observer.client_disconnected();
                    return;
                }
                Err(_) => {
                    tracing::info!("refusing client: no PROXY protocol header from a trusted address in time");
                    ctx.observer.client_rejected(Rejection::ProtocolError);
                    ctx.remove_client();
                    ctx.observer.client_disconnected();
                    return;
                }
            }
        }
        if let Admission::Blocked(left) = ctx.login_admission(peer.ip()) {
            // Refused before the greeting, as the server refuses a blocked host.
            tracing::debug!(
                seconds_left = left.as_secs(),
                "refusing client: address blocked after failed logins"
            );
            ctx.observer.client_rejected(Rejection::HostBlocked);
            ctx.observer.error_sent(codes::HOST_IS_BLOCKED.0);
            let mut out = BytesMut::new();
            let message = format!(
                "Host '{}' is blocked because of many failed logins; retry in {} s",
                peer.ip(),
                left.as_secs().max(1)
            );
            reply::encode_err(
                &mut out,
                codes::HOST_IS_BLOCKED.0,
                codes::HOST_IS_BLOCKED.1,
                &message,
            );
            let _ = stream.write_packet(&mut 0, &out).await;
            stream.shutdown().await;
            ctx.remove_client();
            ctx.observer.client_disconnected();
            return;
        }
        let handshake_timeout = config.timeouts.handshake;
        drop(config);
        let auth =
            tokio::time::timeout(handshake_timeout, authenticate(&ctx, stream, id, peer)).await;
        match auth {
            Err(_) => {
                tracing::info!(
                    timeout_ms = handshake_timeout.as_millis() as u64,
                    "client did not finish the handshake in time; closed"
                );
                ctx.observer.client_rejected(Rejection::HandshakeTimeout);
            }
            Ok(Err(e)) => {
                log_end(&e, "login failed");
                ctx.observer.client_rejected(e.rejection());
                if counts_as_failed_login(&e) && ctx.login_outcome(peer.ip(), false) {
                    let config = ctx.config_guard();
                    tracing::warn!(
                        failures = config.login_throttle.max_failures,
                        block_for = ?config.login_throttle.block_for,
                        "client address blocked after failed logins"
                    );
                    ctx.observer.source_blocked();
                }
            }
            Ok(Ok((mut stream, client))) => {
                ctx.login_outcome(peer.ip(), true);
                tracing::debug!(user = %crate::shown::Shown::new(&client.user), tls = client.tls, "client authenticated");
                // Authenticated: the configured packet limit applies from now on.
                stream.set_max_payload(max_packet);
                stream.set_budget(ctx.packet_budget.clone());
                let handle = Arc::new(SessionHandle::new(peer));
                if let Ok(mut u) = handle.user.lock() {
                    *u = client.user.clone();
                }
                ctx.registry.insert(id, handle.clone());
                let session = Session::new(ctx.clone(), id, peer, stream, client, handle);
                match session.run().await {
                    Ok(()) => tracing::debug!("session ended"),
                    Err(e) => log_end(&e, "session ended"),
                }
                ctx.registry.remove(id);
            }
        }
        ctx.remove_client();
        ctx.observer.client_disconnected();
    }
    .instrument(span)
    .await
}

/// Whether a failed login is the client's doing (a wrong password, an unknown account, a
/// malformed handshake) and so counts for `login_throttle`. A client that just goes away
/// (a TCP health check), a full server, a TLS requirement and anything slow are not.
fn counts_as_failed_login(e: &ClientError) -> bool {
    match e {
        ClientError::Refused { code, .. } => [
            codes::ACCESS_DENIED.0,
            codes::BAD_HANDSHAKE.0,
            codes::PACKET_TOO_LARGE.0,
            codes::PACKETS_OUT_OF_ORDER.0,
            codes::AUTH_MODE.0,
        ]
        .contains(code),
        ClientError::Transport(TransportError::Protocol(_)) => true,
        _ => false,
    }
}

fn log_end(e: &ClientError, what: &str) {
    // Error texts can hold what the client sent (a user name): capped and escaped.
    let text = e.to_string();
    let error = crate::shown::Shown::new(&text);
    match e {
        ClientError::Transport(t) if t.is_disconnect() => {
            tracing::debug!(%error, "{what}: client disconnected")
        }
        // The refusal itself was logged where it was decided, with its reason: once is enough.
        ClientError::Refused { .. } | ClientError::IdleTimeout => {
            tracing::debug!(%error, "{what}")
        }
        _ => tracing::info!(%error, "{what}"),
    }
}
