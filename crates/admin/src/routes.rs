//! Maps an admin request (method, path, headers) to its response.
//!
//! Order of checks: `/health` and `/ready` are answered without a token (they are what
//! orchestrators probe, and Kubernetes probes cannot read a token from a Secret; they say only
//! "ok", "ready" or why not); for every other path a configured token is checked first (401),
//! then the path (404), then the method (405, only `GET` is allowed).

use bytes::Bytes;
use http_body_util::Full;
use hyper::header::{HeaderMap, HeaderValue, ALLOW, CACHE_CONTROL, CONTENT_TYPE, WWW_AUTHENTICATE};
use hyper::{Method, Response, StatusCode};

use crate::auth::AdminToken;
use crate::metrics::METRICS_CONTENT_TYPE;
use crate::state::AdminState;

const TEXT: &str = "text/plain; charset=utf-8";
const JSON: &str = "application/json";

/// The admin routes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Route {
    Health,
    Metrics,
    Ready,
    Backends,
    Config,
    Sessions,
    Queries,
}

impl Route {
    fn from_path(path: &str) -> Option<Route> {
        match path {
            "/health" => Some(Route::Health),
            "/metrics" => Some(Route::Metrics),
            "/ready" => Some(Route::Ready),
            "/backends" => Some(Route::Backends),
            "/config" => Some(Route::Config),
            "/sessions" => Some(Route::Sessions),
            "/queries" => Some(Route::Queries),
            _ => None,
        }
    }
}

/// Builds the response to one request. Never panics; provider failures become 500.
pub(crate) fn respond(
    method: &Method,
    path: &str,
    query: Option<&str>,
    headers: &HeaderMap,
    state: &dyn AdminState,
    token: Option<&AdminToken>,
) -> Response<Full<Bytes>> {
    let route = Route::from_path(path);
    if !matches!(route, Some(Route::Health | Route::Ready)) {
        if let Some(token) = token {
            if !token.authorizes(headers) {
                return unauthorized();
            }
        }
    }
    let Some(route) = route else {
        return text(StatusCode::NOT_FOUND, "not found");
    };
    if method != Method::GET {
        let mut response = text(StatusCode::METHOD_NOT_ALLOWED, "method not allowed");
        response
            .headers_mut()
            .insert(ALLOW, HeaderValue::from_static("GET"));
        return response;
    }
    match route {
        Route::Health => text(StatusCode::OK, "ok"),
        Route::Metrics => match state.metrics_text() {
            Ok(body) => with_type(StatusCode::OK, METRICS_CONTENT_TYPE, Bytes::from(body)),
            Err(e) => {
                tracing::warn!(error = %e, "admin: rendering /metrics failed");
                text(
                    StatusCode::INTERNAL_SERVER_ERROR,
                    "failed to encode metrics",
                )
            }
        },
        Route::Ready => match state.ready() {
            Ok(()) => text(StatusCode::OK, "ready"),
            Err(reason) => text(StatusCode::SERVICE_UNAVAILABLE, reason),
        },
        Route::Backends => json(&state.backends_json()),
        Route::Config => json(&state.config_json()),
        Route::Sessions => json(&state.sessions_json()),
        Route::Queries => match QueriesParams::parse(query) {
            Ok(p) => json(&state.queries_json(p.sort, p.limit, p.reset)),
            Err(message) => text(StatusCode::BAD_REQUEST, message),
        },
    }
}

/// `/queries?sort=total_time|calls|errors|max_time|rows&limit=N&reset=1`.
struct QueriesParams {
    sort: crate::DigestSort,
    limit: usize,
    reset: bool,
}

impl QueriesParams {
    fn parse(query: Option<&str>) -> Result<QueriesParams, String> {
        let mut p = QueriesParams {
            sort: crate::DigestSort::TotalTime,
            limit: 100,
            reset: false,
        };
        for pair in query
            .unwrap_or_default()
            .split('&')
            .filter(|s| !s.is_empty())
        {
            let (k, v) = pair.split_once('=').unwrap_or((pair, ""));
            match k {
                "sort" => {
                    p.sort = crate::DigestSort::parse(v).ok_or_else(|| {
                        "sort must be total_time, calls, errors, max_time or rows".to_string()
                    })?
                }
                "limit" => {
                    p.limit = v
                        .parse::<usize>()
                        .ok()
                        .filter(|n| *n > 0)
                        .ok_or_else(|| "limit must be a positive number".to_string())?
                }
                "reset" => p.reset = v == "1" || v == "true",
                _ => return Err("unknown parameter (sort, limit, reset)".to_string()),
            }
        }
        Ok(p)
    }
}

pub(crate) fn unauthorized() -> Response<Full<Bytes>> {
    let mut response = text(StatusCode::UNAUTHORIZED, "unauthorized");
    response.headers_mut().insert(
        WWW_AUTHENTICATE,
        HeaderValue::from_static("Bearer realm=\"rwproxy-admin\""),
    );
    response
}

fn text(status: StatusCode, body: impl Into<String>) -> Response<Full<Bytes>> {
    with_type(status, TEXT, Bytes::from(body.into()))
}

/// A plain-text answer.
pub(crate) fn plain(status: StatusCode, body: impl Into<String>) -> Response<Full<Bytes>> {
    text(status, body)
}

pub(crate) fn json(value: &serde_json::Value) -> Response<Full<Bytes>> {
    match serde_json::to_vec_pretty(value) {
        Ok(mut body) => {
            body.push(b'\n');
            with_type(StatusCode::OK, JSON, Bytes::from(body))
        }
        Err(e) => {
            tracing::warn!(error = %e, "admin: serialising JSON failed");
            text(
                StatusCode::INTERNAL_SERVER_ERROR,
                "failed to serialise JSON",
            )
        }
    }
}

fn with_type(status: StatusCode, content_type: &'static str, body: Bytes) -> Response<Full<Bytes>> {
    let mut response = Response::new(Full::new(body));
    *response.status_mut() = status;
    let headers = response.headers_mut();
    headers.insert(CONTENT_TYPE, HeaderValue::from_static(content_type));
    headers.insert(CACHE_CONTROL, HeaderValue::from_static("no-store"));
    response
}
