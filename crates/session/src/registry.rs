//! The sessions alive in this process, by the connection id rwproxy gave each client, so that
//! `KILL [QUERY] <id>` can find the statement a session is running and the backend running it.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};

/// One backend connection's server thread: what `KILL` needs to reach the statement a session
/// runs on it.
#[derive(Debug)]
pub struct InFlight {
    pub backend: String,
    pub address: String,
    pub thread_id: u32,
    /// A `KILL` is on its way to this thread: the session does not lend the connection (it is
    /// closed instead), so the kill cannot reach another session's statement on it.
    pub kill_pending: std::sync::atomic::AtomicBool,
}

impl InFlight {
    pub fn new(backend: String, address: String, thread_id: u32) -> Self {
        InFlight {
            backend,
            address,
            thread_id,
            kill_pending: std::sync::atomic::AtomicBool::new(false),
        }
    }

    /// Marks the thread as the target of a `KILL` on its way.
    pub fn mark_for_kill(&self) {
        self.kill_pending
            .store(true, std::sync::atomic::Ordering::SeqCst);
    }

    pub fn marked_for_kill(&self) -> bool {
        self.kill_pending.load(std::sync::atomic::Ordering::SeqCst)
    }
}

/// What other sessions may see of one session.
#[derive(Debug, Default)]
pub struct SessionHandle {
    pub user: Mutex<String>,
    /// The client's address: the PROXY protocol header's when a trusted balancer sent one.
    pub client: Option<std::net::SocketAddr>,
    /// When the session was authenticated.
    pub since: Option<std::time::Instant>,
    in_flight: Mutex<Option<Arc<InFlight>>>,
    /// Backend threads the session holds (for KILL CONNECTION).
    threads: Mutex<Vec<Arc<InFlight>>>,
    /// The backend a statement is opening a connection to (a frozen server accepts TCP and
    /// never greets: the wait ends when the monitor declares it down).
    connecting: Mutex<Option<Arc<str>>>,
    /// Signals to the session: KILL, the shutdown's phases, its backend declared down
    /// ([`crate::events`]).
    pub events: crate::events::SessionEvents,
}

fn lock<T>(m: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|poisoned| poisoned.into_inner())
}

impl SessionHandle {
    /// A session's handle, for a client at `client`, authenticated now.
    pub fn new(client: std::net::SocketAddr) -> Self {
        SessionHandle {
            client: Some(client),
            since: Some(std::time::Instant::now()),
            ..Default::default()
        }
    }

    pub fn set_in_flight(&self, v: Option<Arc<InFlight>>) {
        *lock(&self.in_flight) = v;
    }
    pub fn in_flight(&self) -> Option<Arc<InFlight>> {
        lock(&self.in_flight).clone()
    }

    pub fn set_connecting(&self, v: Option<Arc<str>>) {
        *lock(&self.connecting) = v;
    }
    pub fn connecting(&self) -> Option<Arc<str>> {
        lock(&self.connecting).clone()
    }

    /// Replaces the list in place (its allocation is kept: sessions that share connections
    /// change it at most statements).
    pub fn replace_threads<'a>(&self, v: impl Iterator<Item = &'a Arc<InFlight>>) {
        let mut threads = lock(&self.threads);
        threads.clear();
        threads.extend(v.cloned());
    }
    pub fn threads(&self) -> Vec<Arc<InFlight>> {
        lock(&self.threads).clone()
    }
    pub fn user(&self) -> String {
        lock(&self.user).clone()
    }
}

/// Live sessions by connection id. Locked only when a session starts or ends and on KILL.
#[derive(Debug, Default)]
pub struct Registry {
    sessions: Mutex<HashMap<u32, Arc<SessionHandle>>>,
}

impl Registry {
    pub fn insert(&self, id: u32, handle: Arc<SessionHandle>) {
        lock(&self.sessions).insert(id, handle);
    }
    pub fn remove(&self, id: u32) {
        lock(&self.sessions).remove(&id);
    }
    pub fn get(&self, id: u32) -> Option<Arc<SessionHandle>> {
        lock(&self.sessions).get(&id).cloned()
    }
    /// Every session as JSON for `/sessions`: id, user, client address, seconds since login,
    /// and the backend of the statement running, if any.
    pub fn to_json(&self) -> serde_json::Value {
        let mut sessions = Vec::new();
        for (id, h) in lock(&self.sessions).iter() {
            sessions.push(serde_json::json!({
                "id": id,
                "user": h.user(),
                "client": h.client.map(|c| c.to_string()),
                "seconds": h.since.map(|s| s.elapsed().as_secs()),
                "running_on": h.in_flight().map(|f| f.backend.clone()),
            }));
        }
        sessions.sort_by_key(|s| s["id"].as_u64());
        serde_json::Value::Array(sessions)
    }

    /// Calls `f` for every live session (the registry stays locked meanwhile: keep `f` short).
    pub fn for_each(&self, mut f: impl FnMut(&SessionHandle)) {
        for handle in lock(&self.sessions).values() {
            f(handle);
        }
    }
    pub fn len(&self) -> usize {
        lock(&self.sessions).len()
    }
    /// Which session holds each thread of `backend` (thread id → rwproxy connection id).
    pub fn thread_owners(&self, backend: &str) -> HashMap<u32, u32> {
        let mut owners = HashMap::new();
        for (id, handle) in lock(&self.sessions).iter() {
            for t in lock(&handle.threads).iter() {
                if t.backend == backend {
                    owners.insert(t.thread_id, *id);
                }
            }
        }
        owners
    }
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }
}
