//! The admin HTTP/1.1 server: accept loop, per-connection tasks and graceful shutdown.
//!
//! Each connection runs in its own task, so a slow or stuck client only holds its own task.
//! Limits keep a misbehaving client from holding resources for long: request headers must
//! arrive within [`HEADER_READ_TIMEOUT`], a connection lives at most [`MAX_CONNECTION_AGE`],
//! and at most [`MAX_CONNECTIONS`] connections are served at once (further clients wait in
//! the listen backlog until a slot frees).

use std::convert::Infallible;
use std::future::Future;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use hyper::body::Incoming;
use hyper::server::conn::http1;
use hyper::service::service_fn;
use hyper::Request;
use hyper_util::rt::{TokioIo, TokioTimer};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::{watch, OwnedSemaphorePermit, Semaphore};
use tokio::task::JoinSet;

use crate::auth::AdminToken;
use crate::routes::respond;
use crate::state::AdminState;

/// Time a client has to send a complete request head (also bounds idle keep-alive time).
pub const HEADER_READ_TIMEOUT: Duration = Duration::from_secs(10);
/// Connections are closed (gracefully) after this long, whatever they are doing.
pub const MAX_CONNECTION_AGE: Duration = Duration::from_secs(120);
/// Connections served concurrently.
pub const MAX_CONNECTIONS: usize = 64;
/// After shutdown (or [`MAX_CONNECTION_AGE`]), in-flight requests get this long to finish.
pub const SHUTDOWN_GRACE: Duration = Duration::from_secs(5);
/// Largest request head accepted (hyper's minimum is 8 KiB).
const MAX_REQUEST_HEAD: usize = 16 * 1024;
/// Pause after a failed `accept` (e.g. out of file descriptors) before trying again.
const ACCEPT_BACKOFF: Duration = Duration::from_millis(50);

/// Serves the admin routes on `listener` until `shutdown` completes, then stops accepting,
/// lets in-flight requests finish for up to [`SHUTDOWN_GRACE`] and returns.
///
/// Routes: `GET /metrics`, `/health`, `/ready`, `/backends`, `/config` (see the crate docs).
/// With `token` set (and non-empty), every route except `/health` requires
/// `Authorization: Bearer <token>`; an empty token is treated as no token.
pub async fn serve<F>(
    listener: TcpListener,
    state: Arc<dyn AdminState>,
    token: Option<String>,
    shutdown: F,
) where
    F: Future<Output = ()> + Send,
{
    let token = match token.as_deref() {
        Some(configured) => {
            let token = AdminToken::new(configured);
            if token.is_none() {
                tracing::warn!("admin token is empty: admin endpoint is not protected");
            }
            token.map(Arc::new)
        }
        None => None,
    };
    if let Ok(addr) = listener.local_addr() {
        tracing::info!(%addr, auth = token.is_some(), "admin endpoint listening");
    }

    let (stop_tx, stop_rx) = watch::channel(false);
    let slots = Arc::new(Semaphore::new(MAX_CONNECTIONS));
    let mut connections = JoinSet::new();
    tokio::pin!(shutdown);

    loop {
        while connections.try_join_next().is_some() {}
        let permit = tokio::select! {
            () = &mut shutdown => break,
            permit = Arc::clone(&slots).acquire_owned() => match permit {
                Ok(permit) => permit,
                Err(_) => break,
            },
        };
        let accepted = tokio::select! {
            () = &mut shutdown => break,
            accepted = listener.accept() => accepted,
        };
        match accepted {
            Ok((stream, peer)) => {
                connections.spawn(serve_connection(
                    stream,
                    peer,
                    Arc::clone(&state),
                    token.clone(),
                    stop_rx.clone(),
                    permit,
                ));
            }
            Err(e) => {
                tracing::warn!(error = %e, "admin endpoint: accept failed");
                tokio::time::sleep(ACCEPT_BACKOFF).await;
            }
        }
    }

    drop(listener);
    // Receivers only error once the sender is gone, which cannot happen before this point.
    let _ = stop_tx.send(true);
    let drain = async { while connections.join_next().await.is_some() {} };
    if tokio::time::timeout(SHUTDOWN_GRACE, drain).await.is_err() {
        tracing::debug!("admin endpoint: aborting connections still open after shutdown grace");
        connections.abort_all();
    }
    tracing::info!("admin endpoint stopped");
}

async fn serve_connection(
    stream: TcpStream,
    peer: SocketAddr,
    state: Arc<dyn AdminState>,
    token: Option<Arc<AdminToken>>,
    mut stop: watch::Receiver<bool>,
    _slot: OwnedSemaphorePermit,
) {
    let service = service_fn(move |request: Request<Incoming>| {
        // The one action: a switchover, which takes time and needs the token.
        if request.method() == hyper::Method::POST && request.uri().path() == "/switchover" {
            let state = state.clone();
            let token = token.clone();
            let authorized = token
                .as_deref()
                .is_some_and(|t| t.authorizes(request.headers()));
            let configured = token.is_some();
            let target = request.uri().query().and_then(|q| {
                q.split('&')
                    .find_map(|kv| kv.strip_prefix("to="))
                    .map(str::to_string)
            });
            return Box::pin(async move {
                let response = if !configured {
                    crate::routes::plain(
                        hyper::StatusCode::FORBIDDEN,
                        "set admin.token to use /switchover",
                    )
                } else if !authorized {
                    crate::routes::unauthorized()
                } else {
                    tracing::info!(%peer, target = ?target, "admin: switchover requested");
                    match state.switchover(target).await {
                        Ok(report) => crate::routes::json(&report),
                        Err((status, message)) => crate::routes::plain(
                            hyper::StatusCode::from_u16(status)
                                .unwrap_or(hyper::StatusCode::INTERNAL_SERVER_ERROR),
                            message,
                        ),
                    }
                };
                Ok::<_, Infallible>(response)
            })
                as std::pin::Pin<Box<dyn Future<Output = Result<_, Infallible>> + Send>>;
        }
        let response = respond(
            request.method(),
            request.uri().path(),
            request.uri().query(),
            request.headers(),
            state.as_ref(),
            token.as_deref(),
        );
        tracing::debug!(
            %peer,
            method = %request.method(),
            path = request.uri().path(),
            status = response.status().as_u16(),
            "admin request"
        );
        Box::pin(std::future::ready(Ok::<_, Infallible>(response)))
    });

    let mut builder = http1::Builder::new();
    builder
        .timer(TokioTimer::new())
        .header_read_timeout(HEADER_READ_TIMEOUT)
        .max_buf_size(MAX_REQUEST_HEAD)
        .keep_alive(true);
    let connection = builder.serve_connection(TokioIo::new(stream), service);
    tokio::pin!(connection);

    let finished = tokio::select! {
        result = connection.as_mut() => Some(result),
        _ = stop.wait_for(|stopping| *stopping) => None,
        () = tokio::time::sleep(MAX_CONNECTION_AGE) => None,
    };
    let result = match finished {
        Some(result) => result,
        None => {
            connection.as_mut().graceful_shutdown();
            match tokio::time::timeout(SHUTDOWN_GRACE, connection.as_mut()).await {
                Ok(result) => result,
                Err(_) => {
                    tracing::debug!(%peer, "admin connection did not finish in time; closing");
                    return;
                }
            }
        }
    };
    if let Err(e) = result {
        tracing::debug!(%peer, error = %e, "admin connection ended with an error");
    }
}
