//! The pool: per-backend counts, idle connections, waiting at the cap.

use std::collections::HashMap;
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::{Duration, Instant};

use tokio::sync::Notify;

use crate::limits::PoolLimits;

/// How many of the most recently returned idle connections [`Pool::acquire_preferring`]
/// looks through for a preferred one.
const PREFER_WITHIN: usize = 64;

/// No connection to `backend` could be had within `waited`: it is at its cap.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("backend '{backend}' has {cap} connections (pool.max_per_backend), none free after {waited:?} (pool.wait_timeout)")]
pub struct PoolFull {
    pub backend: String,
    pub cap: u32,
    pub waited: Duration,
}

/// One idle connection.
struct Idle<K, C> {
    key: K,
    conn: C,
    opened: Instant,
    idle_since: Instant,
}

/// One backend's share of the pool.
struct Backend<K, C> {
    name: Arc<str>,
    /// A connection to this backend was returned or its slot freed: one waiter looks again
    /// (`notify_one`: a release wakes one waiter, not all of them; with no waiter the permit
    /// is kept for the next).
    freed: Arc<Notify>,
    /// Connections open: held by sessions, idle here, or being opened (permits).
    open: u32,
    /// Callers waiting for a connection: while there are any, a newcomer waits behind them
    /// (it does not take the connection just returned, even its own), so that a session
    /// in a tight loop cannot starve the others at the cap.
    waiting: u32,
    /// Idle connections, the most recently returned last.
    idle: Vec<Idle<K, C>>,
}

impl<K, C> Backend<K, C> {
    fn named(name: Arc<str>) -> Self {
        Backend {
            name,
            freed: Arc::new(Notify::new()),
            open: 0,
            waiting: 0,
            idle: Vec::new(),
        }
    }
}

struct State<K, C> {
    limits: PoolLimits,
    /// By backend name; the names are shared with the leases (no allocation per borrow).
    backends: HashMap<Arc<str>, Backend<K, C>>,
}

/// What [`Pool::acquire`] hands out.
pub enum Acquired<K: PartialEq, C> {
    /// An idle connection with the caller's key, and its lease.
    Reused(C, Lease<K, C>),
    /// The right to open a new connection (the slot is counted already).
    Open(OpenPermit<K, C>),
    /// At the cap: an idle connection with another key that the caller said it can take over
    /// (`COM_CHANGE_USER`), instead of closing it to open one; its key is the caller's to set.
    Adopt(C, Lease<K, C>),
}

/// Counts of one backend, for metrics and `/backends`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct BackendPoolStats {
    /// Connections open (held, idle or being opened).
    pub open: u32,
    /// Of those, idle in the pool.
    pub idle: u32,
}

/// The pool of one rwproxy process. `K` says what a connection can be reused for (same key,
/// same account and protocol options); `C` is the connection.
pub struct Pool<K, C> {
    state: Mutex<State<K, C>>,
    /// `limits.reuse`, readable without the lock.
    reuse: std::sync::atomic::AtomicBool,
}

impl<K: PartialEq, C> Pool<K, C> {
    pub fn new(limits: PoolLimits) -> Arc<Self> {
        Arc::new(Pool {
            reuse: std::sync::atomic::AtomicBool::new(limits.reuse),
            state: Mutex::new(State {
                limits,
                backends: HashMap::new(),
            }),
        })
    }

    fn lock(&self) -> MutexGuard<'_, State<K, C>> {
        // A panic while holding the lock leaves counts that are still consistent (every change
        // is one statement), so a poisoned lock is used as is.
        self.state.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Whether idle connections are kept (`pool.enabled`), without taking the lock.
    pub fn reuse_enabled(&self) -> bool {
        self.reuse.load(std::sync::atomic::Ordering::Relaxed)
    }

    /// The limits now in force.
    pub fn limits(&self) -> PoolLimits {
        self.lock().limits
    }

    /// New limits (a reload). Idle connections beyond them go at the next [`Pool::sweep`];
    /// waiters look again (the cap may have grown).
    pub fn set_limits(&self, limits: PoolLimits) {
        self.reuse
            .store(limits.reuse, std::sync::atomic::Ordering::Relaxed);
        let mut state = self.lock();
        state.limits = limits;
        Self::wake_all(&state);
    }

    /// A connection to `backend` for `key`: an idle one with that key that `usable` accepts
    /// (those it rejects are closed), or the right to open one; at the cap, an idle
    /// connection with another key is closed to make room, else this waits up to
    /// `pool.wait_timeout` for a slot. Connections to close are pushed onto `closing`.
    pub async fn acquire(
        self: &Arc<Self>,
        backend: &str,
        key: &K,
        usable: impl FnMut(&mut C) -> bool,
        closing: &mut Vec<C>,
    ) -> Result<Acquired<K, C>, PoolFull> {
        self.acquire_preferring(backend, key, |_| false, usable, |_, _| false, closing)
            .await
    }

    /// [`Pool::acquire`], taking first an idle connection that `prefer` picks (e.g. the one the
    /// caller used last), then the most recently returned. At the cap, the idle connection
    /// with another key that was returned the longest ago and that `adoptable` accepts is
    /// handed over ([`Acquired::Adopt`]) rather than closed.
    pub async fn acquire_preferring(
        self: &Arc<Self>,
        backend: &str,
        key: &K,
        prefer: impl Fn(&C) -> bool,
        mut usable: impl FnMut(&mut C) -> bool,
        mut adoptable: impl FnMut(&K, &mut C) -> bool,
        closing: &mut Vec<C>,
    ) -> Result<Acquired<K, C>, PoolFull> {
        let started = tokio::time::Instant::now();
        // Counted among the backend's waiters once this caller had to wait (uncounted when it
        // returns, or when the future is dropped).
        let mut in_line = InLine {
            pool: self,
            backend: None,
            took: false,
        };
        loop {
            let (cap, wait, freed) = {
                let mut state = self.lock();
                let limits = state.limits;
                let now = Instant::now();
                if !state.backends.contains_key(backend) {
                    let name: Arc<str> = Arc::from(backend);
                    state.backends.insert(name.clone(), Backend::named(name));
                }
                let Some(b) = state.backends.get_mut(backend) else {
                    // Inserted just above: never.
                    return Err(PoolFull {
                        backend: backend.to_string(),
                        cap: limits.max_per_backend.unwrap_or(0),
                        waited: started.elapsed(),
                    });
                };
                let name = b.name.clone();
                if b.waiting > 0 && in_line.backend.is_none() {
                    // Others were here first: in line behind them.
                    b.waiting += 1;
                    in_line.backend = Some(name.clone());
                    (
                        limits.max_per_backend.unwrap_or(0),
                        limits.wait_timeout.saturating_sub(started.elapsed()),
                        b.freed.clone(),
                    )
                } else {
                    // The most recently returned first: it is the likeliest to be warm.
                    // The preferred one is looked for among the most recently returned only (a
                    // bounded scan under the lock).
                    let recent = b.idle.len().saturating_sub(PREFER_WITHIN);
                    while let Some(pos) = b.idle[recent.min(b.idle.len())..]
                        .iter()
                        .rposition(|i| i.key == *key && prefer(&i.conn))
                        .map(|p| p + recent.min(b.idle.len()))
                        .or_else(|| b.idle.iter().rposition(|i| i.key == *key))
                    {
                        let mut idle = b.idle.remove(pos);
                        if now.saturating_duration_since(idle.opened) < limits.max_age
                            && usable(&mut idle.conn)
                        {
                            let lease = self.lease(name, idle.opened);
                            in_line.took = true;
                            return Ok(Acquired::Reused(idle.conn, lease));
                        }
                        b.open = b.open.saturating_sub(1);
                        closing.push(idle.conn);
                    }
                    let under_cap = limits.max_per_backend.is_none_or(|cap| b.open < cap);
                    if !under_cap {
                        if let Some(pos) = b
                            .idle
                            .iter_mut()
                            .position(|i| adoptable(&i.key, &mut i.conn))
                        {
                            let idle = b.idle.remove(pos);
                            if now.saturating_duration_since(idle.opened) < limits.max_age {
                                let lease = self.lease(name, idle.opened);
                                in_line.took = true;
                                return Ok(Acquired::Adopt(idle.conn, lease));
                            }
                            b.open = b.open.saturating_sub(1);
                            closing.push(idle.conn);
                        }
                    }
                    let under_cap = limits.max_per_backend.is_none_or(|cap| b.open < cap);
                    if !under_cap && !b.idle.is_empty() {
                        // Room made from the connection idle the longest.
                        let oldest = b.idle.remove(0);
                        closing.push(oldest.conn);
                        b.open = b.open.saturating_sub(1);
                    }
                    if limits.max_per_backend.is_none_or(|cap| b.open < cap) {
                        b.open += 1;
                        in_line.took = true;
                        return Ok(Acquired::Open(OpenPermit {
                            pool: Some(self.clone()),
                            backend: name,
                        }));
                    }
                    if in_line.backend.is_none() {
                        b.waiting += 1;
                        in_line.backend = Some(name.clone());
                    }
                    (
                        limits.max_per_backend.unwrap_or(0),
                        limits.wait_timeout.saturating_sub(started.elapsed()),
                        b.freed.clone(),
                    )
                }
            };
            // A release between the look above and this wait leaves a permit: not missed.
            if wait.is_zero() || tokio::time::timeout(wait, freed.notified()).await.is_err() {
                return Err(PoolFull {
                    backend: backend.to_string(),
                    cap,
                    waited: started.elapsed(),
                });
            }
        }
    }

    fn lease(self: &Arc<Self>, backend: Arc<str>, opened: Instant) -> Lease<K, C> {
        Lease {
            pool: Some(self.clone()),
            backend,
            opened,
        }
    }

    /// Gives a connection back for reuse under `key` (already reset by the caller). Returns
    /// it when the pool does not keep it (reuse off, too old): the caller closes it.
    pub fn release(&self, mut lease: Lease<K, C>, key: K, conn: C) -> Option<C> {
        let now = Instant::now();
        let mut state = self.lock();
        let limits = state.limits;
        if !limits.reuse || now.saturating_duration_since(lease.opened) >= limits.max_age {
            drop(state);
            // Dropping the lease frees the slot.
            return Some(conn);
        }
        if !state.backends.contains_key(&*lease.backend) {
            state
                .backends
                .insert(lease.backend.clone(), Backend::named(lease.backend.clone()));
        }
        let Some(b) = state.backends.get_mut(&*lease.backend) else {
            // Inserted just above: never.
            drop(state);
            return Some(conn);
        };
        b.idle.push(Idle {
            key,
            conn,
            opened: lease.opened,
            idle_since: now,
        });
        let freed = b.freed.clone();
        lease.pool = None;
        drop(state);
        freed.notify_one();
        None
    }

    /// A slot given back (a held connection closed, or a permit not used).
    fn free(&self, backend: &str) {
        let freed = {
            let mut state = self.lock();
            let Some(b) = state.backends.get_mut(backend) else {
                return;
            };
            b.open = b.open.saturating_sub(1);
            b.freed.clone()
        };
        freed.notify_one();
    }

    /// Every waiter looks again (the limits changed, or several connections went at once).
    fn wake_all(state: &State<K, C>) {
        for b in state.backends.values() {
            b.freed.notify_waiters();
            // And a permit for one that is about to wait.
            b.freed.notify_one();
        }
    }

    /// Removes the idle connections past `idle_timeout` or `max_age` at `now`, all of them
    /// when reuse is off, and those of backends not in `keep` (removed by a reload): they are
    /// returned, with their backend, for closing.
    pub fn sweep(&self, now: Instant, keep: impl Fn(&str) -> bool) -> Vec<(String, C)> {
        let mut out = Vec::new();
        let mut state = self.lock();
        let limits = state.limits;
        for (name, b) in state.backends.iter_mut() {
            let kept = keep(name);
            let mut i = 0;
            while i < b.idle.len() {
                let idle = &b.idle[i];
                let expired = !limits.reuse
                    || !kept
                    || now.saturating_duration_since(idle.idle_since) >= limits.idle_timeout
                    || now.saturating_duration_since(idle.opened) >= limits.max_age;
                if expired {
                    let gone = b.idle.remove(i);
                    b.open = b.open.saturating_sub(1);
                    out.push((name.to_string(), gone.conn));
                } else {
                    i += 1;
                }
            }
        }
        // A backend with a waiter has open connections (it waits at the cap): kept, with its
        // waiters' `Notify`.
        state
            .backends
            .retain(|_, b| b.open > 0 || !b.idle.is_empty() || b.waiting > 0);
        if !out.is_empty() {
            Self::wake_all(&state);
        }
        drop(state);
        out
    }

    /// Removes every idle connection to `backend` (it went down: they are dead or about to
    /// be); returned for closing.
    pub fn drain_backend(&self, backend: &str) -> Vec<C> {
        let mut state = self.lock();
        let Some(b) = state.backends.get_mut(backend) else {
            return Vec::new();
        };
        let idle = std::mem::take(&mut b.idle);
        b.open = b
            .open
            .saturating_sub(u32::try_from(idle.len()).unwrap_or(u32::MAX));
        b.freed.notify_waiters();
        drop(state);
        idle.into_iter().map(|i| i.conn).collect()
    }

    /// Counts per backend.
    pub fn stats(&self) -> Vec<(String, BackendPoolStats)> {
        let state = self.lock();
        let mut all: Vec<(String, BackendPoolStats)> = state
            .backends
            .iter()
            .map(|(name, b)| {
                (
                    name.to_string(),
                    BackendPoolStats {
                        open: b.open,
                        idle: u32::try_from(b.idle.len()).unwrap_or(u32::MAX),
                    },
                )
            })
            .collect();
        all.sort_by(|a, b| a.0.cmp(&b.0));
        all
    }
}

/// A caller counted among a backend's waiters ([`Backend::waiting`]); uncounted when dropped
/// (after the pool's lock is released: it is declared before the lock guard).
struct InLine<'a, K, C> {
    pool: &'a Pool<K, C>,
    backend: Option<Arc<str>>,
    /// It leaves with a connection or a slot (else, giving up, it passes its turn on).
    took: bool,
}

impl<K, C> Drop for InLine<'_, K, C> {
    fn drop(&mut self) {
        if let Some(name) = self.backend.take() {
            let mut state = self.pool.state.lock().unwrap_or_else(|e| e.into_inner());
            if let Some(b) = state.backends.get_mut(&*name) {
                b.waiting = b.waiting.saturating_sub(1);
                // A waiter that gives up may have been woken for a connection it did not take:
                // the next in line looks.
                if !self.took && b.waiting > 0 {
                    b.freed.notify_one();
                }
            }
        }
    }
}

/// The right to open one connection to a backend; its slot is freed if dropped unused.
pub struct OpenPermit<K: PartialEq, C> {
    pool: Option<Arc<Pool<K, C>>>,
    backend: Arc<str>,
}

impl<K: PartialEq, C> OpenPermit<K, C> {
    /// The connection was opened: the slot is now held through the returned lease.
    pub fn opened(mut self) -> Lease<K, C> {
        Lease {
            pool: self.pool.take(),
            backend: self.backend.clone(),
            opened: Instant::now(),
        }
    }
}

impl<K: PartialEq, C> Drop for OpenPermit<K, C> {
    fn drop(&mut self) {
        if let Some(pool) = self.pool.take() {
            pool.free(&self.backend);
        }
    }
}

/// One held connection's slot: freed when dropped, unless the connection went back to the
/// pool through [`Pool::release`].
pub struct Lease<K: PartialEq, C> {
    pool: Option<Arc<Pool<K, C>>>,
    backend: Arc<str>,
    opened: Instant,
}

impl<K: PartialEq, C> Lease<K, C> {
    /// When the connection was opened.
    pub fn opened(&self) -> Instant {
        self.opened
    }
}

impl<K: PartialEq, C> std::fmt::Debug for Lease<K, C> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Lease")
            .field("backend", &self.backend)
            .field("held", &self.pool.is_some())
            .finish()
    }
}

impl<K: PartialEq, C> Drop for Lease<K, C> {
    fn drop(&mut self) {
        if let Some(pool) = self.pool.take() {
            pool.free(&self.backend);
        }
    }
}

#[cfg(test)]
#[path = "pool_tests.rs"]
mod tests;
