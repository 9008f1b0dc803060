//! `COM_CHANGE_USER`: the new user is authenticated by rwproxy, the session's state is reset,
//! and its backend connections are closed so the next statements log in as the new user.

use bytes::{Bytes, BytesMut};
use rand::RngCore;
use rwproxy_protocol::auth;
use rwproxy_protocol::handshake;
use rwproxy_protocol::reply::codes;

use crate::client_auth::verify_native_or_sha2;
use crate::error::ClientError;
use crate::session::{Flow, Session};

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
    if matches!(lookup, crate::context::LoginUser::Unknown)
        && s.ctx.refresh_accounts_on_demand().await
    {
        lookup = s.ctx.login_user(&request.user, s.peer.ip());
    }
    let user = match lookup {
        crate::context::LoginUser::Configured(u) | crate::context::LoginUser::FromBackend(u) => {
            Some(u)
        }
        _ => None,
    };
    let Some(user) = user else {
        tracing::info!(user = %request.user, "COM_CHANGE_USER refused: unknown user");
        s.send_error(1, codes::ACCESS_DENIED, denied).await?;
        return Ok(Flow::Close);
    };
    // Always authenticate against a fresh nonce with the account's own plugin.
    let mut random = [0u8; auth::NONCE_LEN];
    rand::thread_rng().fill_bytes(&mut random);
    let nonce = auth::nonce_from_random(random);
    let plugin = user.auth_plugin.as_str();
    let mut out = BytesMut::new();
    handshake::encode_auth_switch(&mut out, plugin, &nonce);
    let mut seq = 1u8;
    s.client.write_packet(&mut seq, &out).await?;
    let (rseq, token) = s.client.read_packet().await?;
    let mut seq = rseq.wrapping_add(1);
    let Some(secret) = verify_native_or_sha2(&user, &nonce, &token, plugin) else {
        tracing::info!(user = %request.user, "COM_CHANGE_USER refused: wrong password");
        s.send_error(seq, codes::ACCESS_DENIED, denied).await?;
        return Ok(Flow::Close);
    };
    if plugin == auth::CACHING_SHA2_PASSWORD {
        let mut more = BytesMut::new();
        handshake::encode_auth_more_data(&mut more, &[auth::SHA2_FAST_AUTH_OK]);
        s.client.write_packet(&mut seq, &more).await?;
    }
    s.backends.clear(&s.ctx);
    s.prepared.clear();
    s.who.user = request.user.clone();
    s.who.secret = secret;
    if let Some(c) = request.collation {
        s.who.collation = c as u8;
    }
    s.initial_database = request.database.clone();
    s.state.reset(request.database);
    if let Ok(mut u) = s.handle.user.lock() {
        *u = request.user;
    }
    s.send_ok(seq).await?;
    Ok(Flow::Continue)
}
