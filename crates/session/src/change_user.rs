//! `COM_CHANGE_USER`: the new user is authenticated by rwproxy as the server would (the answer
//! is checked against the greeting's nonce; an account unknown to rwproxy waits for a fresh
//! account list; `caching_sha2_password` over TLS does the full exchange, as at login, for an
//! account that has not completed one since rwproxy started), the session's state is reset,
//! and its backend connections are closed so the next statements log in as the new user.

use bytes::{Bytes, BytesMut};
use rwproxy_backend::BackendSecret;
use rwproxy_protocol::auth;
use rwproxy_protocol::handshake;
use rwproxy_protocol::reply::codes;

use crate::client_auth::verify_native_or_sha2;
use crate::context::LoginUser;
use crate::error::ClientError;
use crate::session::{Flow, Session};
use crate::shown::Shown;

pub(crate) async fn change_user(s: &mut Session, payload: Bytes) -> Result<Flow, ClientError> {
    let request = match handshake::parse_change_user(&payload) {
        Ok(r) => r,
        Err(e) => {
            s.send_error(
                1,
                codes::NET_READ_ERROR,
                format!("Malformed COM_CHANGE_USER: {e}"),
            )
            .await?;
            return Ok(Flow::Close);
        }
    };
    let denied = format!(
        "Access denied for user '{}'@'{}' (using password: YES)",
        request.user,
        s.peer.ip()
    );
    let mut lookup = s.ctx.login_user(&request.user, s.peer.ip());
    if matches!(lookup, LoginUser::Unknown) && s.ctx.refresh_accounts_on_demand().await {
        // Perhaps created on the server a moment ago: the refresh waited for a fresh list.
        lookup = s.ctx.login_user(&request.user, s.peer.ip());
    }
    let (user, from_backend) = match lookup {
        LoginUser::Configured(u) => (u, false),
        LoginUser::FromBackend(u) => (u, true),
        LoginUser::Unusable(_) | LoginUser::Unknown => {
            tracing::info!(user = %Shown::new(&request.user), "COM_CHANGE_USER refused: unknown user");
            s.send_error(1, codes::ACCESS_DENIED, denied).await?;
            return Ok(Flow::Close);
        }
    };
    // Like the server: the answer was computed with the greeting's nonce; a client that used
    // another plugin than the account's is switched to it (with the same nonce).
    let plugin = user.auth_plugin.as_str();
    let client_plugin = request
        .auth_plugin
        .as_deref()
        .unwrap_or(auth::NATIVE_PASSWORD);
    let nonce = s.nonce;
    let mut seq = 1u8;
    let token = if client_plugin == plugin {
        request.auth_response.clone()
    } else {
        let mut out = BytesMut::new();
        handshake::encode_auth_switch(&mut out, plugin, &nonce);
        s.client.write_packet(&mut seq, &out).await?;
        let (rseq, token) = s.client.read_packet().await?;
        seq = rseq.wrapping_add(1);
        token.to_vec()
    };
    let mut verified = verify_native_or_sha2(&user, &nonce, &token, plugin);
    if verified.is_none() && from_backend && s.ctx.refresh_accounts_on_demand().await {
        // The password may have changed on the server since the last refresh.
        if let LoginUser::FromBackend(fresh) = s.ctx.login_user(&request.user, s.peer.ip()) {
            verified = verify_native_or_sha2(&fresh, &nonce, &token, plugin);
        }
    }
    let Some(secret) = verified else {
        tracing::info!(user = %Shown::new(&request.user), "COM_CHANGE_USER refused: wrong password");
        s.send_error(seq, codes::ACCESS_DENIED, denied).await?;
        return Ok(Flow::Close);
    };
    if plugin == auth::CACHING_SHA2_PASSWORD {
        let password = match &secret {
            BackendSecret::Password(p) => Some(p.as_str()),
            _ => None,
        };
        match password {
            // As at login (and as the server's cache): over TLS, an account that has not
            // completed a full authentication since rwproxy started does one now.
            Some(password)
                if s.client.get_ref().is_tls() && !s.ctx.sha2_cached(&request.user, password) =>
            {
                let mut more = BytesMut::new();
                handshake::encode_auth_more_data(&mut more, &[auth::SHA2_PERFORM_FULL_AUTH]);
                s.client.write_packet(&mut seq, &more).await?;
                let (rseq, clear) = s.client.read_packet().await?;
                seq = rseq.wrapping_add(1);
                let clear = clear.strip_suffix(&[0]).unwrap_or(&clear);
                if !auth::constant_time_eq(clear, password.as_bytes()) {
                    tracing::info!(user = %Shown::new(&request.user), "COM_CHANGE_USER refused: wrong password (full authentication)");
                    s.send_error(seq, codes::ACCESS_DENIED, denied).await?;
                    return Ok(Flow::Close);
                }
                s.ctx.sha2_remember(&request.user, password);
            }
            _ => {
                let mut more = BytesMut::new();
                handshake::encode_auth_more_data(&mut more, &[auth::SHA2_FAST_AUTH_OK]);
                s.client.write_packet(&mut seq, &more).await?;
            }
        }
    }
    // The old account's connections go back to the pool, reset (or are closed); the new
    // account's come from the pool or are opened when next needed.
    if crate::pooling::reusable(&s.ctx, &s.who) {
        let old = s.who.clone();
        s.backends.give_back(&s.ctx, &old).await;
    } else {
        s.backends.clear(&s.ctx);
    }
    s.publish_threads();
    s.prepared.clear();
    s.who.user = request.user.clone();
    s.who.secret = secret;
    if let Some(c) = request.collation {
        s.who.collation = c as u8;
    }
    s.who.refresh_pool_key();
    s.initial_database = request.database.clone();
    s.set_hold(None);
    // A change of user resets the session like COM_RESET_CONNECTION (IGNORE_SPACE dropped):
    // such a session keeps connections of its own (see `reset_connection`).
    s.sharing = crate::pooling::reusable(&s.ctx, &s.who)
        && !s
            .who
            .capabilities
            .contains(rwproxy_protocol::CapabilityFlags::CLIENT_IGNORE_SPACE);
    s.lend_token = crate::session::new_lend_token();
    s.state.reset(request.database);
    s.state.reset_new_connections = true;
    s.idle_timeout = s.ctx.server_idle_timeout(
        s.client_caps
            .contains(rwproxy_protocol::CapabilityFlags::CLIENT_INTERACTIVE),
    );
    if let Ok(mut u) = s.handle.user.lock() {
        *u = request.user;
    }
    s.send_ok(seq).await?;
    Ok(Flow::Continue)
}
