//! What the admin endpoint serves, provided by the rest of the proxy.

use crate::error::AdminError;

/// The data behind the admin routes. Implemented by the binary on top of its metrics,
/// monitor and configuration; every method is called once per request, from a Tokio task,
/// and should return quickly (take a snapshot, do not wait on I/O).
pub trait AdminState: Send + Sync {
    /// Body of `GET /metrics`, in the Prometheus text format 0.0.4. Usually: refresh the
    /// per-backend gauges with [`crate::Metrics::set_backends`] from the latest monitor
    /// snapshot, then return [`crate::Metrics::encode`].
    fn metrics_text(&self) -> Result<String, AdminError>;

    /// Body of `GET /backends`: the monitor's view of every backend.
    fn backends_json(&self) -> serde_json::Value;

    /// Body of `GET /config`: the configuration in effect, secrets already redacted.
    fn config_json(&self) -> serde_json::Value;

    /// Body of `GET /queries`: per-query statistics, the first `limit` digests by `sort`;
    /// with `reset`, the statistics are cleared after being read.
    fn queries_json(
        &self,
        _sort: crate::DigestSort,
        _limit: usize,
        _reset: bool,
    ) -> serde_json::Value {
        serde_json::json!({ "digests": [] })
    }

    /// `POST /switchover[?to=NAME]`: a planned switchover; the report as JSON, or an HTTP
    /// status with the reason. Runs for as long as the switchover takes.
    fn switchover(&self, _target: Option<String>) -> SwitchoverFuture {
        Box::pin(async { Err((404, "switchover is not available".to_string())) })
    }

    /// Body of `GET /sessions`: the client sessions open now.
    fn sessions_json(&self) -> serde_json::Value {
        serde_json::Value::Array(Vec::new())
    }

    /// `Ok(())` when the proxy can serve traffic (`GET /ready` answers 200), otherwise the
    /// reason (answered with 503 and the reason as body).
    fn ready(&self) -> Result<(), String>;
}

/// What [`AdminState::switchover`] returns: the report, or an HTTP status and the reason.
pub type SwitchoverFuture = std::pin::Pin<
    Box<dyn std::future::Future<Output = Result<serde_json::Value, (u16, String)>> + Send>,
>;
