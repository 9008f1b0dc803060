//! What the pool is allowed to do (`pool:` in the configuration).

use std::time::Duration;

/// The pool's limits; replaced as a whole on a configuration reload.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct PoolLimits {
    /// Whether idle connections are kept for reuse at all (`pool.enabled`).
    pub reuse: bool,
    /// Connections per backend, held and idle together (`None`: no cap).
    pub max_per_backend: Option<u32>,
    /// How long a session waits for a connection when the backend is at its cap.
    pub wait_timeout: Duration,
    /// An idle connection is closed after this long unused.
    pub idle_timeout: Duration,
    /// A connection is not reused once this old.
    pub max_age: Duration,
}

impl Default for PoolLimits {
    fn default() -> Self {
        PoolLimits {
            reuse: true,
            max_per_backend: None,
            wait_timeout: Duration::from_secs(2),
            idle_timeout: Duration::from_secs(60),
            max_age: Duration::from_secs(3600),
        }
    }
}
