//! The backend connection pool shared by every client session of one rwproxy process.
//!
//! Per backend it knows how many connections are open (held by sessions plus idle) and keeps
//! the idle ones, each with the key of what it can be reused for (the account and the
//! protocol options it logged in with) and the time it was opened. A session asks for a
//! connection to a backend with its key: it gets an idle one with that key, or the right to
//! open a new one (an [`OpenPermit`]), or waits — up to `wait_timeout` — while the backend is
//! at its cap. Idle connections past `idle_timeout` or `max_age` are handed back for closing.
//!
//! The pool does no I/O: opening, resetting and closing connections is the caller's; the
//! clock is passed in. So every rule here is unit-tested without a server.

mod limits;
mod pool;

pub use limits::PoolLimits;
pub use pool::{Acquired, BackendPoolStats, Lease, OpenPermit, Pool, PoolFull};
