//! Errors of the admin crate.

use thiserror::Error;

/// Errors returned by the admin crate.
#[derive(Debug, Error)]
pub enum AdminError {
    /// Rendering the metrics text failed (a metric's encoder reported an error).
    #[error("failed to encode metrics")]
    Encode,
}
