//! The connection phase towards a client: greeting, optional TLS upgrade, and authentication
//! against the users rwproxy knows. A client's password never reaches a backend unchecked: a
//! wrong password gets ERR 1045 without any backend being touched.

use std::net::SocketAddr;

use bytes::BytesMut;
use rand::RngCore;
use rwproxy_backend::BackendSecret;
use rwproxy_config::{AuthPlugin, UserConfig};
use rwproxy_protocol::handshake::{self, ClientHandshake};
use rwproxy_protocol::reply::{self, codes};
use rwproxy_protocol::{auth, CapabilityFlags};
use rwproxy_transport::PacketStream;

use crate::accounts::AccountProblem;
use crate::context::{LoginUser, ProxyContext};
use crate::error::ClientError;
use crate::shown::Shown;

/// A client that proved who it is.
#[derive(Debug)]
pub struct AuthenticatedClient {
    pub user: String,
    pub secret: BackendSecret,
    pub capabilities: CapabilityFlags,
    pub collation: u8,
    pub database: Option<String>,
    pub attributes: Vec<(String, String)>,
    pub max_packet: u32,
    pub tls: bool,
    /// MariaDB extended capabilities both sides agreed on.
    pub mariadb_ext: u32,
    /// The nonce of the greeting: `COM_CHANGE_USER` answers are computed with it, as with the
    /// server.
    pub nonce: [u8; auth::NONCE_LEN],
}

/// Sends an error packet to the client and returns the matching error.
pub async fn refuse(
    stream: &mut PacketStream,
    seq: &mut u8,
    (code, state): (u16, &[u8; 5]),
    message: String,
) -> ClientError {
    let mut out = BytesMut::new();
    reply::encode_err(&mut out, code, state, &message);
    let _ = stream.write_packet(seq, &out).await;
    ClientError::Refused { code, message }
}

fn random_nonce() -> [u8; auth::NONCE_LEN] {
    let mut random = [0u8; auth::NONCE_LEN];
    rand::thread_rng().fill_bytes(&mut random);
    auth::nonce_from_random(random)
}

/// Runs the connection phase. On success the client has received its OK packet.
pub async fn authenticate(
    ctx: &ProxyContext,
    mut stream: PacketStream,
    conn_id: u32,
    peer: SocketAddr,
) -> Result<(PacketStream, AuthenticatedClient), ClientError> {
    let nonce = random_nonce();
    let tls = ctx.tls_acceptor();
    let learned = crate::greeting::current(ctx).await;
    let greeting = crate::greeting::for_client(
        learned.as_deref(),
        ctx.config_guard().server_version.as_deref(),
        tls.is_some(),
        conn_id,
        &nonce,
    );
    let caps = greeting.capabilities;
    let mariadb_ext = greeting.mariadb_ext;
    let server_status = greeting.status;
    let mut out = BytesMut::new();
    handshake::encode_greeting(&mut out, &greeting);
    let mut seq = 0u8;
    if let Err(e) = stream.write_packet(&mut seq, &out).await {
        return Err(ClientError::Transport(e));
    }

    macro_rules! read {
        () => {
            match stream.read_packet().await {
                Ok((s, p)) if s == seq => {
                    seq = s.wrapping_add(1);
                    p
                }
                Ok((s, _)) => {
                    let message =
                        format!("Got packets out of order (sequence id {s}, expected {seq})");
                    let err =
                        refuse(&mut stream, &mut seq, codes::PACKETS_OUT_OF_ORDER, message).await;
                    return Err(err);
                }
                Err(e) => {
                    if let rwproxy_transport::TransportError::Protocol(p) = &e {
                        let code = match p {
                            rwproxy_protocol::ProtocolError::TooLarge { .. } => {
                                codes::PACKET_TOO_LARGE
                            }
                            _ => codes::BAD_HANDSHAKE,
                        };
                        let _ = refuse(&mut stream, &mut seq, code, format!("Bad handshake: {p}"))
                            .await;
                    }
                    return Err(ClientError::Transport(e));
                }
            }
        };
    }

    let mut response = read!();
    let mut on_tls = false;
    if handshake::is_ssl_request(&response) {
        let Some(acceptor) = tls else {
            let err = refuse(
                &mut stream,
                &mut seq,
                codes::BAD_HANDSHAKE,
                "Bad handshake: TLS is not configured".into(),
            )
            .await;
            return Err(err);
        };
        stream = match stream.upgrade_server(&acceptor).await {
            Ok(s) => s,
            Err(e) => {
                // The connection is gone with the failed upgrade; nothing more can be sent.
                return Err(ClientError::Transport(e));
            }
        };
        on_tls = true;
        response = read!();
    }
    if ctx.require_tls() && !on_tls {
        let err = refuse(
            &mut stream,
            &mut seq,
            codes::SECURE_TRANSPORT_REQUIRED,
            "Connections using insecure transport are prohibited (require_tls is on)".into(),
        )
        .await;
        return Err(err);
    }
    let client = match handshake::parse_client_handshake(&response) {
        // CLIENT_SSL belongs in a 32-byte SSL request followed by the TLS handshake; in a full
        // handshake response on a plain connection it would be a login without the TLS the
        // client asked for.
        Ok(c) if !on_tls && c.capabilities.contains(CapabilityFlags::CLIENT_SSL) => {
            let err = refuse(
                &mut stream,
                &mut seq,
                codes::BAD_HANDSHAKE,
                "Bad handshake: CLIENT_SSL without an SSL request".into(),
            )
            .await;
            return Err(err);
        }
        Ok(c) => c,
        Err(e) => {
            let err = refuse(
                &mut stream,
                &mut seq,
                codes::BAD_HANDSHAKE,
                format!("Bad handshake: {e}"),
            )
            .await;
            return Err(err);
        }
    };
    let denied = |client: &ClientHandshake, peer: &SocketAddr, used_password: bool| {
        format!(
            "Access denied for user '{}'@'{}' (using password: {})",
            client.user,
            peer.ip(),
            if used_password { "YES" } else { "NO" }
        )
    };
    let mut lookup = ctx.login_user(&client.user, peer.ip());
    if matches!(lookup, LoginUser::Unknown) && ctx.refresh_accounts_on_demand().await {
        // Perhaps created on the server since the last refresh.
        lookup = ctx.login_user(&client.user, peer.ip());
    }
    let (user, from_backend) = match lookup {
        LoginUser::Configured(u) => (u, false),
        LoginUser::FromBackend(u) => (u, true),
        LoginUser::Unusable(problem) => {
            let (code, message) = match problem {
                AccountProblem::Locked => (
                    (4151, b"HY000"),
                    format!("Access denied, this account is locked: '{}'", client.user),
                ),
                AccountProblem::Plugin(plugin) => (
                    codes::AUTH_MODE,
                    format!(
                        "rwproxy cannot authenticate '{}' with the backend account's plugin '{plugin}'; \
                         list the user with its password in the rwproxy configuration",
                        client.user
                    ),
                ),
            };
            tracing::info!(user = %Shown::new(&client.user), %peer, %message, "login refused");
            return Err(refuse(&mut stream, &mut seq, code, message).await);
        }
        LoginUser::Unknown => {
            tracing::info!(user = %Shown::new(&client.user), %peer, "login refused: unknown user");
            let err = refuse(
                &mut stream,
                &mut seq,
                codes::ACCESS_DENIED,
                denied(&client, &peer, !client.auth_response.is_empty()),
            )
            .await;
            return Err(err);
        }
    };

    // The plugin the account uses; switch the client to it if it answered with another.
    let wanted = user.auth_plugin.as_str();
    let mut token = client.auth_response.clone();
    let client_plugin = client
        .auth_plugin
        .as_deref()
        .unwrap_or(auth::NATIVE_PASSWORD);
    if client_plugin != wanted {
        let mut out = BytesMut::new();
        handshake::encode_auth_switch(&mut out, wanted, &nonce);
        if let Err(e) = stream.write_packet(&mut seq, &out).await {
            return Err(ClientError::Transport(e));
        }
        token = read!().to_vec();
    }

    let secret = match (&user.auth_plugin, &user.secret) {
        (AuthPlugin::MysqlNativePassword, _) => {
            let mut verified = verify_native_or_sha2(&user, &nonce, &token, auth::NATIVE_PASSWORD);
            if verified.is_none() && from_backend && ctx.refresh_accounts_on_demand().await {
                // The password may have changed on the server since the last refresh.
                if let LoginUser::FromBackend(fresh) = ctx.login_user(&client.user, peer.ip()) {
                    verified = verify_native_or_sha2(&fresh, &nonce, &token, auth::NATIVE_PASSWORD);
                }
            }
            match verified {
                Some(secret) => secret,
                None => {
                    tracing::info!(user = %Shown::new(&client.user), %peer, "login refused: wrong password");
                    let err = refuse(
                        &mut stream,
                        &mut seq,
                        codes::ACCESS_DENIED,
                        denied(&client, &peer, !token.is_empty()),
                    )
                    .await;
                    return Err(err);
                }
            }
        }
        (AuthPlugin::CachingSha2Password, secret) => {
            let Some(password) = secret.password() else {
                let err = refuse(
                    &mut stream,
                    &mut seq,
                    codes::ACCESS_DENIED,
                    denied(&client, &peer, true),
                )
                .await;
                return Err(err);
            };
            let password = password.expose().to_string();
            let fast_ok =
                auth::constant_time_eq(&token, &auth::sha2_scramble(&nonce, password.as_bytes()))
                    || (token.is_empty() && password.is_empty());
            if !fast_ok {
                tracing::info!(user = %Shown::new(&client.user), %peer, "login refused: wrong password");
                let err = refuse(
                    &mut stream,
                    &mut seq,
                    codes::ACCESS_DENIED,
                    denied(&client, &peer, !token.is_empty()),
                )
                .await;
                return Err(err);
            }
            // Like the server's cache: over TLS, an account that has not completed a full
            // authentication since rwproxy started (or since its password changed) does one.
            if on_tls && !ctx.sha2_cached(&client.user, &password) {
                let mut out = BytesMut::new();
                handshake::encode_auth_more_data(&mut out, &[auth::SHA2_PERFORM_FULL_AUTH]);
                if let Err(e) = stream.write_packet(&mut seq, &out).await {
                    return Err(ClientError::Transport(e));
                }
                let clear = read!();
                let clear = clear.strip_suffix(&[0]).unwrap_or(&clear);
                if !auth::constant_time_eq(clear, password.as_bytes()) {
                    tracing::info!(user = %Shown::new(&client.user), %peer, "login refused: wrong password (full authentication)");
                    let err = refuse(
                        &mut stream,
                        &mut seq,
                        codes::ACCESS_DENIED,
                        denied(&client, &peer, true),
                    )
                    .await;
                    return Err(err);
                }
                ctx.sha2_remember(&client.user, &password);
            } else {
                let mut out = BytesMut::new();
                handshake::encode_auth_more_data(&mut out, &[auth::SHA2_FAST_AUTH_OK]);
                if let Err(e) = stream.write_packet(&mut seq, &out).await {
                    return Err(ClientError::Transport(e));
                }
            }
            BackendSecret::Password(password)
        }
    };

    // The login finished after the shutdown stopped taking new sessions (the connection was
    // accepted before): refused as the server refuses a login while it shuts down.
    if ctx.drain.phase() >= crate::drain::Phase::Closing {
        return Err(refuse(
            &mut stream,
            &mut seq,
            codes::SERVER_SHUTDOWN,
            "Server shutdown in progress".into(),
        )
        .await);
    }
    let negotiated = client.capabilities & (caps | CapabilityFlags::CLIENT_SSL);
    let mut out = BytesMut::new();
    match &client.database {
        // The server reports the schema of a login with a database to a client that tracks
        // session state (session_track_schema is on by default).
        Some(db) if negotiated.contains(CapabilityFlags::CLIENT_SESSION_TRACK) => {
            reply::encode_ok_with_schema(&mut out, server_status, db.as_bytes())
        }
        _ => reply::encode_ok(&mut out, 0, 0, server_status, 0),
    }
    if let Err(e) = stream.write_packet(&mut seq, &out).await {
        return Err(ClientError::Transport(e));
    }
    if negotiated.contains(CapabilityFlags::CLIENT_COMPRESS) {
        // Everything after the final OK travels in compressed frames.
        stream.enable_compression();
    }
    Ok((
        stream,
        AuthenticatedClient {
            user: client.user.clone(),
            secret,
            capabilities: negotiated,
            collation: client.collation,
            database: client.database.clone(),
            attributes: client.attributes.clone(),
            max_packet: client.max_packet,
            tls: on_tls,
            mariadb_ext: client.mariadb_ext & mariadb_ext,
            nonce,
        },
    ))
}

/// Verifies credentials for `COM_CHANGE_USER` (nonce from the original greeting, or a fresh
/// one sent with an auth switch). Returns the backend secret on success.
pub fn verify_native_or_sha2(
    user: &UserConfig,
    nonce: &[u8],
    token: &[u8],
    plugin: &str,
) -> Option<BackendSecret> {
    match (&user.auth_plugin, plugin) {
        (AuthPlugin::MysqlNativePassword, auth::NATIVE_PASSWORD) => {
            let stage2 = user.secret.native_password_hash();
            if token.is_empty() {
                return user
                    .secret
                    .password()
                    .filter(|p| p.expose().is_empty())
                    .map(|p| BackendSecret::Password(p.expose().to_string()));
            }
            let stage1 = auth::native_verify(nonce, token, &stage2)?;
            Some(match user.secret.password() {
                Some(p) => BackendSecret::Password(p.expose().to_string()),
                None => BackendSecret::NativeStage1(stage1),
            })
        }
        (AuthPlugin::CachingSha2Password, auth::CACHING_SHA2_PASSWORD) => {
            let p = user.secret.password()?;
            auth::constant_time_eq(token, &auth::sha2_scramble(nonce, p.expose().as_bytes()))
                .then(|| BackendSecret::Password(p.expose().to_string()))
        }
        _ => None,
    }
}

#[cfg(test)]
#[path = "client_auth_tests.rs"]
mod tests;
