//! Hot reload: the configuration file is watched and reloaded on SIGHUP. A valid new file is
//! swapped in atomically; an invalid one changes nothing.
//!
//! Watching is a look at the path twice a second, following symbolic links: which file it
//! leads to (device and inode), its size and its modification time. That sees every way a
//! file gets replaced: an edit in place, an editor's write-and-rename, and the Kubernetes
//! ConfigMap mount, where `config.yaml` links to `..data/config.yaml` and an update swaps the
//! `..data` link to a new directory in one rename. A change is read once the file has stopped
//! changing for a moment, so a file caught half-written is not reported as broken.

use std::path::PathBuf;
use std::sync::Arc;
use std::time::{Duration, SystemTime};

use rwproxy_admin::Metrics;
use rwproxy_config::{diff_requires_restart, load_file, Config, LoadError, ProcessEnv};
use rwproxy_session::ProxyContext;
use tokio::signal::unix::{signal, SignalKind};

use crate::logging::{self, LevelHandle};
use crate::monitor_settings;

const POLL: Duration = Duration::from_millis(500);

pub struct Reloader {
    pub path: PathBuf,
    pub ctx: Arc<ProxyContext>,
    pub metrics: Metrics,
    pub log_level: LevelHandle,
    pub observer: Arc<crate::metrics_observer::MetricsObserver>,
}

/// How long a changed file must stay unchanged before it is read.
const SETTLE: Duration = Duration::from_millis(100);
/// At most this many settle periods are waited for a file that keeps changing.
const SETTLE_TRIES: u32 = 20;

/// What the path leads to now: (device, inode, size, modification time), following links.
type Stamp = (u64, u64, u64, SystemTime);

fn file_stamp(path: &PathBuf) -> Option<Stamp> {
    use std::os::unix::fs::MetadataExt;
    let meta = std::fs::metadata(path).ok()?;
    Some((meta.dev(), meta.ino(), meta.len(), meta.modified().ok()?))
}

/// Waits until the file's stamp stays the same for [`SETTLE`]; returns the settled stamp.
async fn settled_stamp(path: &PathBuf, mut seen: Option<Stamp>) -> Option<Stamp> {
    for _ in 0..SETTLE_TRIES {
        tokio::time::sleep(SETTLE).await;
        let now = file_stamp(path);
        if now == seen {
            return now;
        }
        seen = now;
    }
    seen
}

impl Reloader {
    pub async fn run(self) {
        let mut hup = match signal(SignalKind::hangup()) {
            Ok(s) => Some(s),
            Err(e) => {
                tracing::warn!(error = %e, "cannot listen for SIGHUP; reload by file change only");
                None
            }
        };
        let mut stamp = file_stamp(&self.path);
        let mut tick = tokio::time::interval(POLL);
        tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        loop {
            let by_signal = tokio::select! {
                _ = tick.tick() => false,
                Some(_) = async { match hup.as_mut() { Some(h) => h.recv().await, None => std::future::pending().await } } => true,
            };
            let now = file_stamp(&self.path);
            if by_signal {
                stamp = now;
                self.reload("SIGHUP");
            } else if now != stamp {
                stamp = settled_stamp(&self.path, now).await;
                self.reload("file changed");
            }
        }
    }

    /// Loads, validates and swaps in the file; returns whether the running config changed.
    pub fn reload(&self, why: &str) -> bool {
        let old = self.ctx.config();
        let new = match load_file(&self.path, &ProcessEnv) {
            Ok(c) => c,
            Err(LoadError::Invalid(errors)) => {
                for p in &errors.problems {
                    tracing::error!(file = %self.path.display(), problem = %p, "configuration reload rejected; the running configuration stays");
                }
                self.metrics.config_reload_failed();
                return false;
            }
            Err(e) => {
                tracing::error!(error = %e, "configuration reload failed; the running configuration stays");
                self.metrics.config_reload_failed();
                return false;
            }
        };
        if new.source_hash == old.source_hash {
            if why == "SIGHUP" {
                tracing::info!("SIGHUP: configuration unchanged");
            }
            return false;
        }
        for key in diff_requires_restart(&old, &new) {
            tracing::warn!(key, "changed in the configuration, but takes effect only after a restart; the old value stays in use");
        }
        let new = Arc::new(keep_restart_only(&old, new));
        apply(&self.ctx, &old, &new);
        logging::set_level(&self.log_level, &new.log.level);
        self.observer.apply_stats(&new.stats);
        self.metrics.config_reload_succeeded(&new.source_hash);
        tracing::info!(reason = why, hash = %&new.source_hash[..12.min(new.source_hash.len())], backends = new.backends.len(), rules = new.routing.rules.len(), "configuration reloaded");
        true
    }
}

/// Keys that need a restart keep their running values.
pub(crate) fn keep_restart_only(old: &Config, mut new: Config) -> Config {
    new.listen = old.listen;
    new.admin.listen = old.admin.listen;
    new.admin.token = old.admin.token.clone();
    new.max_client_connections = old.max_client_connections;
    // The certificate and key are loaded once; `require_tls` applies from the next login.
    new.tls = match (&old.tls, new.tls.take()) {
        (Some(running), Some(wanted)) => Some(rwproxy_config::TlsConfig {
            require_tls: wanted.require_tls,
            ..running.clone()
        }),
        (running, _) => running.clone(),
    };
    new.backend_tls = old.backend_tls.clone();
    new.log.format = old.log.format;
    new
}

/// Swaps the configuration in and retunes the monitor (added backends start being watched,
/// removed ones stop; sessions drop their connections to removed backends when next used).
pub fn apply(ctx: &ProxyContext, _old: &Config, new: &Arc<Config>) {
    ctx.set_config(new.clone());
    let settings = monitor_settings::settings(new).unwrap_or_default();
    ctx.monitor()
        .reconfigure(settings, monitor_settings::backend_specs(new));
}

#[cfg(test)]
mod tests {
    use super::*;

    fn config(yaml: &str) -> Config {
        rwproxy_config::parse(yaml, &ProcessEnv).unwrap_or_else(|e| panic!("{e}"))
    }

    #[test]
    fn require_tls_reloads_but_the_certificate_stays() {
        let dir = std::env::temp_dir().join(format!("rwproxy-reload-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        for f in ["a.pem", "a-key.pem", "b.pem", "b-key.pem"] {
            std::fs::write(dir.join(f), "not read by the configuration check").unwrap();
        }
        let d = dir.display();
        let base = "users: [{ name: app, password: x }]\nbackends: [{ name: db1, address: 127.0.0.1:3306, primary: true }]\n";
        let old = config(&format!(
            "{base}tls: {{ cert: {d}/a.pem, key: {d}/a-key.pem, require_tls: false }}\n"
        ));
        let new = config(&format!(
            "{base}tls: {{ cert: {d}/b.pem, key: {d}/b-key.pem, require_tls: true }}\n"
        ));
        let kept = keep_restart_only(&old, new);
        let _ = std::fs::remove_dir_all(&dir);
        let tls = kept.tls.expect("tls stays configured");
        assert!(tls.require_tls);
        assert_eq!(tls.cert, dir.join("a.pem"));
    }
}
