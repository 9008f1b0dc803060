//! Metrics and the admin HTTP endpoint of rwproxy.
//!
//! * [`Metrics`]: every Prometheus metric the proxy exports (names prefixed `rwproxy_`, see
//!   `docs/metrics.md`). Cheap to clone; hot-path recording is lock-free and allocation-free.
//! * [`serve`]: the admin HTTP/1.1 server with `GET /metrics`, `/health`, `/ready`,
//!   `/backends` and `/config`, optionally protected by a bearer token (all but `/health`).
//!   What it serves comes from an [`AdminState`] implemented by the binary.
//!
//! Responses: `/health` → 200 `ok` (never needs the token); `/ready` → 200 `ready` or 503 with
//! the reason; `/metrics` → Prometheus text format 0.0.4; `/backends`, `/config` → JSON;
//! missing/wrong token → 401; unknown path → 404; any method but `GET` → 405.

mod auth;
mod backend_metrics;
mod digest_metrics;
mod digests;
mod error;
mod error_codes;
mod histogram;
mod labels;
mod metrics;
mod routes;
mod server;
mod shard;
mod state;

pub use auth::AdminToken;
pub use backend_metrics::BackendMetricsView;
pub use digests::{DigestSample, DigestSort, DigestStore, DigestText, DigestView};
pub use error::AdminError;
pub use error_codes::KNOWN_ERROR_CODES;
pub use histogram::QUERY_DURATION_BUCKETS;
pub use labels::{
    BackendRole, BackendState, CausalOutcome, DestRole, FailureKind, HoldReason, LagSource,
    PoolEvent, Reason, RejectReason, ReloadResult, ReplayOutcome, WriterRule,
};
pub use metrics::{ClientConnectionGuard, Metrics, METRICS_CONTENT_TYPE, METRIC_PREFIX};
pub use server::{serve, HEADER_READ_TIMEOUT, MAX_CONNECTIONS, MAX_CONNECTION_AGE, SHUTDOWN_GRACE};
pub use state::{AdminState, SwitchoverFuture};
