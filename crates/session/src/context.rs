//! What every session shares: the running configuration and backend topology (both swapped
//! atomically, read without locks), TLS settings, the session registry and the observer.

use std::collections::HashMap;
use std::net::IpAddr;
use std::sync::atomic::{AtomicU32, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Instant;

use arc_swap::{ArcSwap, ArcSwapOption};
use rwproxy_backend::BackendTls;
use rwproxy_config::{Config, UserConfig};
use rwproxy_monitor::MonitorHandle;
use rwproxy_protocol::handshake::Greeting;
use sha2_digest::digest;

use crate::accounts::{AccountProblem, AccountTable, ON_DEMAND_REFRESH_EVERY};
use crate::observer::SessionObserver;
use crate::registry::Registry;

mod sha2_digest {
    /// A fingerprint of a password kept in memory to notice password changes (never logged).
    pub fn digest(user: &str, password: &str) -> u64 {
        use std::hash::{Hash, Hasher};
        let mut h = std::collections::hash_map::DefaultHasher::new();
        user.hash(&mut h);
        password.hash(&mut h);
        h.finish()
    }
}

/// How long a session waits for another session's large packet to free the shared budget
/// before its own packet is refused.
pub const PACKET_BUDGET_WAIT: std::time::Duration = std::time::Duration::from_secs(5);

pub struct ProxyContext {
    config: ArcSwap<Config>,
    monitor: MonitorHandle,
    tls: ArcSwapOption<tokio_rustls::TlsAcceptor>,
    backend_tls: ArcSwapOption<BackendTls>,
    /// Each backend's greeting, as last seen (nonce cleared): what clients are greeted with.
    greetings: ArcSwap<HashMap<String, Arc<Greeting>>>,
    greeting_fetch: tokio::sync::Mutex<()>,
    /// The servers' `wait_timeout` and `interactive_timeout` (seconds), learned with the
    /// greeting: how long a client may stay idle before its connection is closed.
    idle_timeouts: ArcSwapOption<(u64, u64)>,
    pub registry: Registry,
    pub observer: Arc<dyn SessionObserver>,
    next_conn_id: AtomicU32,
    clients: AtomicUsize,
    sha2_cache: Mutex<HashMap<String, u64>>,
    backend_conns: crate::per_backend::PerBackendCounts,
    /// Of those, held by sessions that something keeps on them (`lending`).
    pinned_conns: crate::per_backend::PerBackendCounts,
    /// The newest position written through this proxy by any session (`global` consistency).
    global_write: ArcSwapOption<rwproxy_monitor::GtidPosition>,
    /// Accounts read from the primary (`users_from_backend`).
    accounts: ArcSwap<AccountTable>,
    accounts_wanted: tokio::sync::Notify,
    /// When the last on-demand account refresh started (held while one runs or waits).
    accounts_on_demand: tokio::sync::Mutex<Option<Instant>>,
    /// Why the last account refresh failed, if it did (shown by `/backends`).
    accounts_error: Mutex<Option<String>>,
    /// Memory for large client packets, shared by every session (`large_packet_budget`).
    pub packet_budget: Arc<rwproxy_transport::PacketBudget>,
    /// Failed logins per client address (`login_throttle`).
    login_throttle: Mutex<crate::login_throttle::LoginThrottle>,
    /// Graceful shutdown.
    pub drain: crate::drain::Drain,
    /// Backend connections kept across sessions (`pool:`).
    pub(crate) pool: Arc<crate::pooling::BackendPool>,
}

/// Who a login name is, as far as rwproxy knows.
#[derive(Debug, Clone)]
pub enum LoginUser {
    /// Listed in the YAML.
    Configured(UserConfig),
    /// Read from the backend's account table.
    FromBackend(UserConfig),
    /// A backend account rwproxy cannot serve.
    Unusable(AccountProblem),
    Unknown,
}

impl ProxyContext {
    pub fn new(
        config: Arc<Config>,
        monitor: MonitorHandle,
        observer: Arc<dyn SessionObserver>,
    ) -> Self {
        let packet_budget =
            rwproxy_transport::PacketBudget::new(config.large_packet_budget, PACKET_BUDGET_WAIT);
        let pool = crate::pooling::BackendPool::new(crate::pooling::limits(&config));
        Self {
            pool,
            packet_budget,
            login_throttle: Mutex::new(Default::default()),
            drain: Default::default(),
            config: ArcSwap::new(config),
            monitor,
            tls: ArcSwapOption::empty(),
            backend_tls: ArcSwapOption::empty(),
            greetings: ArcSwap::new(Arc::new(HashMap::new())),
            greeting_fetch: tokio::sync::Mutex::new(()),
            idle_timeouts: ArcSwapOption::empty(),
            registry: Registry::default(),
            observer,
            next_conn_id: AtomicU32::new(1),
            clients: AtomicUsize::new(0),
            sha2_cache: Mutex::new(HashMap::new()),
            backend_conns: Default::default(),
            pinned_conns: Default::default(),
            global_write: ArcSwapOption::empty(),
            accounts: ArcSwap::new(Arc::new(AccountTable::default())),
            accounts_wanted: tokio::sync::Notify::new(),
            accounts_on_demand: tokio::sync::Mutex::new(None),
            accounts_error: Mutex::new(None),
        }
    }

    /// Whether a client from `ip` may log in now (`login_throttle`).
    pub fn login_admission(&self, ip: IpAddr) -> crate::login_throttle::Admission {
        let config = self.config_guard();
        match self.login_throttle.lock() {
            Ok(mut t) => t.check(&config.login_throttle, ip, Instant::now()),
            Err(_) => crate::login_throttle::Admission::Allowed,
        }
    }

    /// Records a login's outcome for `login_throttle`; true when this failure blocks `ip`.
    pub fn login_outcome(&self, ip: IpAddr, success: bool) -> bool {
        let config = self.config_guard();
        let Ok(mut t) = self.login_throttle.lock() else {
            return false;
        };
        if success {
            t.succeeded(ip);
            false
        } else {
            t.failed(&config.login_throttle, ip, Instant::now())
        }
    }

    /// The running configuration (lock-free).
    pub fn config(&self) -> Arc<Config> {
        self.config.load_full()
    }

    /// The running configuration, borrowed for a moment (no reference count touched; do not
    /// hold it across an `.await`).
    pub fn config_guard(&self) -> arc_swap::Guard<Arc<Config>> {
        self.config.load()
    }

    /// Swaps in a new configuration; sessions see it from their next statement.
    pub fn set_config(&self, config: Arc<Config>) {
        self.pool.set_limits(crate::pooling::limits(&config));
        self.config.store(config);
    }

    /// Connections to `backend` idle in the pool now.
    pub fn pool_idle(&self, backend: &str) -> u64 {
        self.pool
            .stats()
            .iter()
            .find(|(name, _)| name == backend)
            .map_or(0, |(_, s)| u64::from(s.idle))
    }

    /// Closes pooled connections past `pool.idle_timeout` or `pool.max_age` (call it every
    /// second).
    pub fn sweep_pool(&self) {
        crate::pooling::sweep(self);
    }

    /// The monitor declared `backend` down: its pooled connections are closed.
    pub fn pool_backend_down(&self, backend: &str) {
        crate::pooling::backend_down(self, backend);
    }

    pub fn monitor(&self) -> &MonitorHandle {
        &self.monitor
    }

    pub fn set_tls(&self, acceptor: Option<tokio_rustls::TlsAcceptor>) {
        self.tls.store(acceptor.map(Arc::new));
    }

    pub fn tls_acceptor(&self) -> Option<Arc<tokio_rustls::TlsAcceptor>> {
        self.tls.load_full()
    }

    pub fn require_tls(&self) -> bool {
        self.config
            .load()
            .tls
            .as_ref()
            .is_some_and(|t| t.require_tls)
    }

    pub fn set_backend_tls(&self, tls: Option<BackendTls>) {
        self.backend_tls.store(tls.map(Arc::new));
    }

    pub fn backend_tls(&self) -> Option<Arc<BackendTls>> {
        self.backend_tls.load_full()
    }

    /// Records the greeting a backend sent (on every login; stored only when it changed).
    pub fn learn_greeting(&self, backend: &str, greeting: &Greeting) {
        let same = |known: &Greeting| {
            known.server_version == greeting.server_version
                && known.capabilities == greeting.capabilities
                && known.collation == greeting.collation
                && known.status == greeting.status
                && known.auth_plugin == greeting.auth_plugin
                && known.mariadb_ext == greeting.mariadb_ext
        };
        if self.greetings.load().get(backend).is_some_and(|k| same(k)) {
            return;
        }
        let learned = Arc::new(Greeting {
            connection_id: 0,
            nonce: Vec::new(),
            ..greeting.clone()
        });
        tracing::debug!(backend, version = %learned.server_version, "server greeting learned");
        self.greetings.rcu(|map| {
            let mut map = HashMap::clone(map);
            map.insert(backend.to_string(), learned.clone());
            map
        });
    }

    /// Records the servers' `wait_timeout` and `interactive_timeout`.
    pub fn learn_idle_timeouts(&self, wait_timeout: u64, interactive_timeout: u64) {
        self.idle_timeouts
            .store(Some(Arc::new((wait_timeout, interactive_timeout))));
    }

    /// How long a new session may stay idle: the server's `interactive_timeout` for clients
    /// that say they are interactive, else its `wait_timeout`; `None` while not known.
    pub fn server_idle_timeout(&self, interactive: bool) -> Option<std::time::Duration> {
        let t = self.idle_timeouts.load_full()?;
        let secs = if interactive { t.1 } else { t.0 };
        (secs > 0).then(|| std::time::Duration::from_secs(secs))
    }

    /// Whether `backend`'s greeting is known.
    pub fn has_greeting(&self, backend: &str) -> bool {
        self.greetings.load().contains_key(backend)
    }

    /// The greeting clients should see: the primary's, or while there is no primary (or its
    /// greeting is not known yet) the first backend's in configuration order that is known.
    pub fn known_greeting(&self) -> Option<Arc<Greeting>> {
        let greetings = self.greetings.load();
        if greetings.is_empty() {
            return None;
        }
        let topology = self.monitor.snapshot();
        topology
            .primary()
            .and_then(|p| greetings.get(&p.name))
            .or_else(|| {
                topology
                    .backends
                    .iter()
                    .find_map(|b| greetings.get(&b.name))
            })
            .cloned()
    }

    /// Held while a session learns a greeting for the first time, so that a burst of clients
    /// at startup opens one backend connection, not one each.
    pub async fn greeting_fetch_lock(&self) -> tokio::sync::MutexGuard<'_, ()> {
        self.greeting_fetch.lock().await
    }

    pub fn user(&self, name: &str) -> Option<UserConfig> {
        self.config.load().user(name).cloned()
    }

    pub fn next_conn_id(&self) -> u32 {
        loop {
            let id = self.next_conn_id.fetch_add(1, Ordering::Relaxed);
            if id != 0 {
                return id;
            }
        }
    }

    /// Counts a new client; `false` (and nothing counted) when the limit is reached.
    pub fn try_add_client(&self, max: usize) -> bool {
        let mut current = self.clients.load(Ordering::Relaxed);
        loop {
            if current >= max {
                return false;
            }
            match self.clients.compare_exchange_weak(
                current,
                current + 1,
                Ordering::AcqRel,
                Ordering::Relaxed,
            ) {
                Ok(_) => return true,
                Err(now) => current = now,
            }
        }
    }

    pub fn remove_client(&self) {
        self.clients.fetch_sub(1, Ordering::AcqRel);
    }

    pub fn clients(&self) -> usize {
        self.clients.load(Ordering::Relaxed)
    }

    /// Whether this user completed a caching_sha2 full authentication with this password.
    pub fn sha2_cached(&self, user: &str, password: &str) -> bool {
        let cache = self.sha2_cache.lock().unwrap_or_else(|p| p.into_inner());
        cache.get(user) == Some(&digest(user, password))
    }

    pub fn sha2_remember(&self, user: &str, password: &str) {
        let mut cache = self.sha2_cache.lock().unwrap_or_else(|p| p.into_inner());
        cache.insert(user.to_string(), digest(user, password));
    }

    pub fn backend_connection_opened(&self, backend: &str) {
        self.backend_conns.add(backend);
        self.observer.backend_connection_opened(backend);
    }

    pub fn backend_connection_closed(&self, backend: &str) {
        self.backend_conns.sub(backend);
        self.observer.backend_connection_closed(backend);
    }

    /// Open data-path connections to a backend, from all sessions (lock-free read).
    pub fn backend_connections(&self, backend: &str) -> usize {
        self.backend_conns.get(backend)
    }

    /// Of those, connections held by sessions that something keeps on them (lock-free read).
    pub fn pinned_connections(&self, backend: &str) -> usize {
        self.pinned_conns.get(backend)
    }

    pub(crate) fn pinned_counts(&self) -> &crate::per_backend::PerBackendCounts {
        &self.pinned_conns
    }

    /// Merges a write's position into the proxy-wide newest position.
    pub fn note_global_write(&self, position: &rwproxy_monitor::GtidPosition) {
        self.global_write.rcu(|current| {
            let mut next = match current {
                Some(c) => rwproxy_monitor::GtidPosition::clone(c),
                None => return Some(Arc::new(position.clone())),
            };
            if next.merge_max(position).is_err() {
                next = position.clone();
            }
            Some(Arc::new(next))
        });
    }

    pub fn global_write(&self) -> Option<Arc<rwproxy_monitor::GtidPosition>> {
        self.global_write.load_full()
    }

    /// Looks a login name up: YAML users first, then the backend's accounts.
    pub fn login_user(&self, name: &str, ip: IpAddr) -> LoginUser {
        let config = self.config.load();
        if let Some(u) = config.user(name) {
            return LoginUser::Configured(u.clone());
        }
        if !config.users_from_backend {
            return LoginUser::Unknown;
        }
        match self.accounts.load().login_user(name, ip) {
            Some(Ok(u)) => LoginUser::FromBackend(u),
            Some(Err(p)) => LoginUser::Unusable(p),
            None => LoginUser::Unknown,
        }
    }

    /// Reloads the backend accounts now; failures are logged and keep the old table.
    pub async fn refresh_accounts(&self) {
        match crate::accounts::load(self).await {
            Ok(table) => {
                tracing::debug!(accounts = table.len(), "backend accounts loaded");
                self.accounts.store(Arc::new(table));
                *self
                    .accounts_error
                    .lock()
                    .unwrap_or_else(|p| p.into_inner()) = None;
            }
            Err(e) => {
                tracing::warn!(error = %e, "cannot read accounts from the backend; keeping the previous list");
                *self
                    .accounts_error
                    .lock()
                    .unwrap_or_else(|p| p.into_inner()) = Some(e);
            }
        }
    }

    /// Refreshes the accounts for a login (or change user) that named an unknown user or whose
    /// password did not match: waits for a refresh that starts after this call, so an account
    /// created a moment ago is found. Refreshes run at most once per
    /// [`ON_DEMAND_REFRESH_EVERY`] (a caller waits for the next slot, so the wait is bounded) and
    /// concurrent callers share one. Returns whether a refresh ran for this call.
    pub async fn refresh_accounts_on_demand(&self) -> bool {
        if !self.config.load().users_from_backend {
            return false;
        }
        let asked = Instant::now();
        let mut last = self.accounts_on_demand.lock().await;
        if let Some(started) = *last {
            if started >= asked {
                // A refresh that started after this call completed while it waited.
                return true;
            }
            let next = started + ON_DEMAND_REFRESH_EVERY;
            if next > Instant::now() {
                tokio::time::sleep_until(next.into()).await;
            }
        }
        *last = Some(Instant::now());
        self.refresh_accounts().await;
        true
    }

    /// The state of `users_from_backend`, for the admin API.
    pub fn accounts_json(&self) -> serde_json::Value {
        let enabled = self.config.load().users_from_backend;
        let table = self.accounts.load();
        let error = self
            .accounts_error
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .clone();
        serde_json::json!({
            "users_from_backend": enabled,
            "accounts": table.len(),
            "loaded_seconds_ago": table.loaded_at.map(|t| t.elapsed().as_secs_f64()),
            "last_error": error,
        })
    }

    /// Asks the refresher for a new account list soon (a backend refused a login that the
    /// cached list accepted: the account was dropped or changed).
    pub fn accounts_stale(&self) {
        if self.config.load().users_from_backend {
            self.accounts_wanted.notify_one();
        }
    }

    /// Resolves when someone asked for an account refresh.
    pub async fn accounts_wanted(&self) {
        self.accounts_wanted.notified().await
    }
}
