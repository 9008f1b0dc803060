//! A running rwproxy binary under test: free ports, a config file, a log file, and
//! a kill on drop.

use std::fs::{self, File};
use std::net::{Ipv4Addr, SocketAddr, TcpStream};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use tempfile::TempDir;

use crate::client::{client_opts, Credentials};
use crate::error::{Result, TestkitError};
use crate::paths::scratch_dir;
use crate::ports::free_port;
use crate::proxy_config::{ADMIN_PLACEHOLDER, LISTEN_PLACEHOLDER};
use crate::signals::{send_signal, TestSignal};

/// How long [`ProxyProcess::start`] waits for the listen port to accept.
pub const START_TIMEOUT: Duration = Duration::from_secs(20);

/// An rwproxy process started by a test. Killed (SIGKILL) when dropped.
#[derive(Debug)]
pub struct ProxyProcess {
    child: Child,
    /// Client port on 127.0.0.1.
    pub port: u16,
    /// Admin HTTP port on 127.0.0.1.
    pub admin_port: u16,
    /// The YAML file the proxy was started with (rewrite it with [`ProxyProcess::rewrite_config`]).
    pub config_path: PathBuf,
    log_path: PathBuf,
    /// Sent with every [`ProxyProcess::admin_get`] when set (`admin.token`).
    pub admin_token: Option<String>,
    // Holds the config and log; removed on drop unless RWPROXY_KEEP_TEST_FILES is set.
    dir: Option<TempDir>,
}

/// The environment variable that gives every rwproxy a test starts a `pool:` section (a YAML
/// flow map) when its configuration has none, e.g. `{ enabled: true, max_per_backend: 1 }`:
/// the whole suite then runs with every session's statements on the same few connections.
pub const TEST_POOL_ENV: &str = "RWPROXY_TEST_POOL";

/// `yaml` with the `pool:` section of [`TEST_POOL_ENV`] added when it has none (and is a
/// mapping written by a test: a `pool:` key at the start of a line is its own).
fn with_test_pool(yaml: String) -> String {
    match std::env::var(TEST_POOL_ENV) {
        Ok(pool)
            if !pool.trim().is_empty()
                && !yaml.lines().any(|l| l.starts_with("pool:"))
                && yaml.lines().any(|l| l.starts_with("listen:")) =>
        {
            let mut y = yaml;
            if !y.ends_with('\n') {
                y.push('\n');
            }
            y.push_str(&format!("pool: {}\n", pool.trim()));
            y
        }
        _ => yaml,
    }
}

impl ProxyProcess {
    /// Start `bin --config FILE`, where FILE is `yaml_template` with `{listen}` and `{admin}`
    /// replaced by `127.0.0.1:<free port>`, and wait until the listen port accepts.
    pub fn start(bin: impl AsRef<Path>, yaml_template: &str) -> Result<ProxyProcess> {
        Self::start_with_timeout(bin, yaml_template, START_TIMEOUT)
    }

    /// [`ProxyProcess::start`] with an explicit readiness timeout.
    pub fn start_with_timeout(
        bin: impl AsRef<Path>,
        yaml_template: &str,
        timeout: Duration,
    ) -> Result<ProxyProcess> {
        Self::start_laid_out(bin, yaml_template, timeout, false)
    }

    /// [`ProxyProcess::start`] with the configuration laid out as Kubernetes mounts a
    /// ConfigMap: `configmap/rwproxy.yaml` links to `..data/rwproxy.yaml`, and `..data` links to
    /// a versioned directory. Update it with [`ProxyProcess::swap_configmap`].
    pub fn start_configmap(bin: impl AsRef<Path>, yaml_template: &str) -> Result<ProxyProcess> {
        Self::start_laid_out(bin, yaml_template, START_TIMEOUT, true)
    }

    fn start_laid_out(
        bin: impl AsRef<Path>,
        yaml_template: &str,
        timeout: Duration,
        configmap: bool,
    ) -> Result<ProxyProcess> {
        let scratch = scratch_dir();
        fs::create_dir_all(&scratch).map_err(|source| TestkitError::File {
            action: "creating",
            path: scratch.clone(),
            source,
        })?;
        let dir = tempfile::Builder::new()
            .prefix("proxy-")
            .tempdir_in(&scratch)
            .map_err(|source| TestkitError::File {
                action: "creating a temporary directory in",
                path: scratch.clone(),
                source,
            })?;
        let port = free_port()?;
        let mut admin_port = free_port()?;
        while admin_port == port {
            admin_port = free_port()?;
        }
        let log_path = dir.path().join("rwproxy.log");
        let text = with_test_pool(fill_placeholders(yaml_template, port, admin_port));
        let config_path = if configmap {
            let mount = dir.path().join("configmap");
            configmap_update(&mount, &text)?;
            let link = mount.join("rwproxy.yaml");
            symlink(Path::new("..data/rwproxy.yaml"), &link)?;
            link
        } else {
            let path = dir.path().join("rwproxy.yaml");
            write_atomically(&path, &text)?;
            path
        };
        let log = File::create(&log_path).map_err(|source| TestkitError::File {
            action: "creating",
            path: log_path.clone(),
            source,
        })?;
        let log_err = log.try_clone().map_err(|source| TestkitError::File {
            action: "duplicating the handle of",
            path: log_path.clone(),
            source,
        })?;
        let bin = bin.as_ref();
        let child = Command::new(bin)
            .arg("--config")
            .arg(&config_path)
            .stdin(Stdio::null())
            .stdout(log)
            .stderr(log_err)
            .spawn()
            .map_err(|source| TestkitError::Spawn {
                command: format!("{} --config {}", bin.display(), config_path.display()),
                source,
            })?;
        let keep = std::env::var_os("RWPROXY_KEEP_TEST_FILES").is_some();
        let mut proxy = ProxyProcess {
            child,
            port,
            admin_port,
            config_path,
            log_path,
            admin_token: None,
            dir: if keep {
                let _ = dir.keep();
                None
            } else {
                Some(dir)
            },
        };
        proxy.wait_listening(timeout)?;
        Ok(proxy)
    }

    fn wait_listening(&mut self, timeout: Duration) -> Result<()> {
        let deadline = Instant::now() + timeout;
        let addr = self.addr();
        loop {
            if let Some(status) = self.child.try_wait()? {
                return Err(self.start_error(format!("the process exited with {status}")));
            }
            if TcpStream::connect_timeout(&addr, Duration::from_millis(200)).is_ok() {
                return Ok(());
            }
            if Instant::now() >= deadline {
                return Err(self.start_error(format!(
                    "{addr} did not accept connections within {:.1}s",
                    timeout.as_secs_f64()
                )));
            }
            std::thread::sleep(Duration::from_millis(50));
        }
    }

    fn start_error(&self, reason: String) -> TestkitError {
        TestkitError::ProxyStart {
            reason,
            log: self.log_path.clone(),
            log_tail: self.log_tail(40),
        }
    }

    /// `127.0.0.1:port` of the client listener.
    pub fn addr(&self) -> SocketAddr {
        SocketAddr::from((Ipv4Addr::LOCALHOST, self.port))
    }

    /// `127.0.0.1:admin_port` of the admin listener.
    pub fn admin_addr(&self) -> SocketAddr {
        SocketAddr::from((Ipv4Addr::LOCALHOST, self.admin_port))
    }

    /// Polls `/backends` until the proxy knows one primary and `readable` readable replicas
    /// among `total` backends. `Err` holds the last `/backends` body seen.
    pub async fn wait_topology(
        &self,
        total: usize,
        readable: usize,
        timeout: Duration,
    ) -> std::result::Result<(), String> {
        let deadline = Instant::now() + timeout;
        let mut last = String::new();
        loop {
            if let Ok((200, body)) = self.admin_get("/backends").await {
                if let Ok(json) = serde_json::from_str::<serde_json::Value>(&body) {
                    let one_primary = json["primary"]["state"] == "one";
                    let backends = json["backends"].as_array().cloned().unwrap_or_default();
                    let n_readable = backends
                        .iter()
                        .filter(|b| b["readable"] == serde_json::Value::Bool(true))
                        .count();
                    if one_primary && backends.len() == total && n_readable == readable {
                        return Ok(());
                    }
                }
                last = body;
            }
            if Instant::now() >= deadline {
                return Err(last);
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }

    /// `GET path` on the admin endpoint (with [`ProxyProcess::admin_token`] if set): the
    /// status code and the body. Gives up after 5 s.
    pub async fn admin_get(&self, path: &str) -> std::result::Result<(u16, String), String> {
        use tokio::io::{AsyncReadExt, AsyncWriteExt};
        let addr = self.admin_addr();
        let exchange = async {
            let mut stream = tokio::net::TcpStream::connect(addr)
                .await
                .map_err(|e| format!("connect: {e}"))?;
            let auth = self
                .admin_token
                .as_ref()
                .map_or(String::new(), |t| format!("Authorization: Bearer {t}\r\n"));
            let request = format!(
                "GET {path} HTTP/1.1\r\nHost: 127.0.0.1\r\n{auth}Connection: close\r\n\r\n"
            );
            stream
                .write_all(request.as_bytes())
                .await
                .map_err(|e| format!("write: {e}"))?;
            let mut raw = Vec::new();
            stream
                .read_to_end(&mut raw)
                .await
                .map_err(|e| format!("read: {e}"))?;
            let text = String::from_utf8_lossy(&raw).into_owned();
            let (head, body) = text
                .split_once("\r\n\r\n")
                .ok_or_else(|| format!("no HTTP header end in {text:?}"))?;
            let status = head
                .split_whitespace()
                .nth(1)
                .and_then(|s| s.parse::<u16>().ok())
                .ok_or_else(|| format!("bad status line in {head:?}"))?;
            Ok((status, body.to_string()))
        };
        tokio::time::timeout(Duration::from_secs(5), exchange)
            .await
            .map_err(|_| format!("GET {path}: no answer within 5 s"))?
    }

    /// The `/metrics` exposition (an error unless the answer is 200).
    pub async fn scrape(&self) -> std::result::Result<String, String> {
        match self.admin_get("/metrics").await? {
            (200, body) => Ok(body),
            (status, body) => Err(format!("/metrics answered {status}: {body}")),
        }
    }

    /// The value of the one series of `/metrics` named `name` with exactly `labels`
    /// ([`crate::metrics::series`]); an error when it is missing.
    pub async fn series(
        &self,
        name: &str,
        labels: &[(&str, &str)],
    ) -> std::result::Result<f64, String> {
        let text = self.scrape().await?;
        crate::metrics::series(&text, name, labels)
            .ok_or_else(|| format!("no series {name}{labels:?} in /metrics:\n{text}"))
    }

    /// Polls `/metrics` until the series `name{labels}` reaches at least `at_least`, for at
    /// most `timeout` (a rejected client, for one, is counted once rwproxy has closed its
    /// connection); its value then. `Err` holds the last value seen, or the last error.
    pub async fn wait_series(
        &self,
        name: &str,
        labels: &[(&str, &str)],
        at_least: f64,
        timeout: Duration,
    ) -> std::result::Result<f64, String> {
        let deadline = Instant::now() + timeout;
        loop {
            let last = match self.series(name, labels).await {
                Ok(value) if value >= at_least => return Ok(value),
                Ok(value) => format!("{name}{labels:?} is {value}, not yet {at_least}"),
                Err(e) => e,
            };
            if Instant::now() >= deadline {
                return Err(format!("after {:.1}s: {last}", timeout.as_secs_f64()));
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }

    /// Polls `/backends` until the monitor has seen every replica at or past the binlog
    /// position (`@@gtid_binlog_pos`) that node 0 of `cluster`, its primary, has now. `Err`
    /// says what was missing, with the last `/backends` body seen.
    pub async fn wait_monitor_caught_up(
        &self,
        cluster: &crate::ClusterInfo,
        timeout: Duration,
    ) -> std::result::Result<(), String> {
        let position: String = cluster
            .admin_scalar(0, "SELECT @@gtid_binlog_pos")
            .await
            .map_err(|e| format!("@@gtid_binlog_pos of the primary: {e}"))?
            .unwrap_or_default();
        let want = gtid_seqs(&position);
        let deadline = Instant::now() + timeout;
        let mut last = String::new();
        loop {
            if let Ok((200, body)) = self.admin_get("/backends").await {
                if let Ok(json) = serde_json::from_str::<serde_json::Value>(&body) {
                    let replicas: Vec<&serde_json::Value> = json["backends"]
                        .as_array()
                        .map(|a| a.iter().filter(|b| b["role"] == "replica").collect())
                        .unwrap_or_default();
                    let caught_up = !replicas.is_empty()
                        && replicas.iter().all(|b| {
                            let have = gtid_seqs(b["gtid_current_pos"].as_str().unwrap_or(""));
                            want.iter()
                                .all(|(d, s)| have.get(d).is_some_and(|h| h >= s))
                        });
                    if caught_up {
                        return Ok(());
                    }
                }
                last = body;
            }
            if Instant::now() >= deadline {
                return Err(format!(
                    "the monitor did not see the replicas reach {position} within {:.1}s; \
                     last /backends: {last}",
                    timeout.as_secs_f64()
                ));
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }

    /// The process id.
    pub fn pid(&self) -> u32 {
        self.child.id()
    }

    /// Where stdout and stderr go.
    pub fn log_path(&self) -> &Path {
        &self.log_path
    }

    /// Everything the proxy logged so far.
    pub fn log_text(&self) -> String {
        match fs::read(&self.log_path) {
            Ok(bytes) => String::from_utf8_lossy(&bytes).into_owned(),
            Err(e) => format!("<cannot read {}: {e}>", self.log_path.display()),
        }
    }

    /// The last `lines` lines of the log.
    pub fn log_tail(&self, lines: usize) -> String {
        let text = self.log_text();
        let all: Vec<&str> = text.lines().collect();
        all[all.len().saturating_sub(lines)..].join("\n")
    }

    /// True while the process has not exited.
    pub fn is_running(&mut self) -> bool {
        matches!(self.child.try_wait(), Ok(None))
    }

    /// Replace the config file atomically (write a temp file, rename it over the old one).
    /// `{listen}` and `{admin}` are filled with this process's ports.
    pub fn rewrite_config(&self, yaml_template: &str) -> Result<()> {
        write_atomically(
            &self.config_path,
            &fill_placeholders(yaml_template, self.port, self.admin_port),
        )
    }

    /// Update a configuration started with [`ProxyProcess::start_configmap`] the way the
    /// kubelet does: the new file in a new directory, a `..data_tmp` link to it renamed over
    /// `..data` (one atomic step), the old directory removed.
    pub fn swap_configmap(&self, yaml_template: &str) -> Result<()> {
        let mount = self
            .config_path
            .parent()
            .map(Path::to_path_buf)
            .unwrap_or_default();
        configmap_update(
            &mount,
            &fill_placeholders(yaml_template, self.port, self.admin_port),
        )
    }

    /// Overwrite the configuration file in place (truncate and write, same inode), as a
    /// `subPath` mount or `cat > file` does.
    pub fn overwrite_config_in_place(&self, yaml_template: &str) -> Result<()> {
        let path = fs::canonicalize(&self.config_path).map_err(|source| TestkitError::File {
            action: "resolving",
            path: self.config_path.clone(),
            source,
        })?;
        fs::write(
            &path,
            fill_placeholders(yaml_template, self.port, self.admin_port),
        )
        .map_err(|source| TestkitError::File {
            action: "writing",
            path,
            source,
        })
    }

    /// Send SIGHUP (reload the configuration).
    pub fn sighup(&self) -> Result<()> {
        send_signal(self.pid_i32()?, TestSignal::Hup)
    }

    /// Send SIGTERM without waiting.
    pub fn send_sigterm(&self) -> Result<()> {
        send_signal(self.pid_i32()?, TestSignal::Term)
    }

    /// Waits up to `timeout` for the process to exit; its exit status if it did.
    pub fn wait_exit(&mut self, timeout: Duration) -> Result<Option<std::process::ExitStatus>> {
        let deadline = Instant::now() + timeout;
        loop {
            if let Some(status) = self.child.try_wait()? {
                return Ok(Some(status));
            }
            if Instant::now() >= deadline {
                return Ok(None);
            }
            std::thread::sleep(Duration::from_millis(20));
        }
    }

    /// Send SIGTERM and wait up to `timeout` for the exit; returns whether it exited.
    pub fn terminate(&mut self, timeout: Duration) -> Result<bool> {
        send_signal(self.pid_i32()?, TestSignal::Term)?;
        let deadline = Instant::now() + timeout;
        while Instant::now() < deadline {
            if self.child.try_wait()?.is_some() {
                return Ok(true);
            }
            std::thread::sleep(Duration::from_millis(50));
        }
        Ok(false)
    }

    fn pid_i32(&self) -> Result<i32> {
        i32::try_from(self.child.id())
            .map_err(|_| TestkitError::Protocol(format!("pid {} out of range", self.child.id())))
    }

    /// `mysql_async` options for a session through the proxy.
    pub fn opts(&self, creds: &Credentials, db: Option<&str>) -> mysql_async::OptsBuilder {
        client_opts(self.port, creds, db)
    }

    /// Open a `mysql_async` session through the proxy.
    pub async fn connect(
        &self,
        creds: &Credentials,
        db: Option<&str>,
    ) -> Result<mysql_async::Conn> {
        crate::client::connect(self.port, creds, db).await
    }
}

impl Drop for ProxyProcess {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
        if self.dir.is_none() {
            eprintln!("rwproxy test files kept in {}", self.log_path.display());
        }
    }
}

/// `domain -> sequence` of a GTID position such as `0-1-17,1-2-5`.
fn gtid_seqs(position: &str) -> std::collections::BTreeMap<u64, u64> {
    position
        .split(',')
        .filter_map(|g| {
            let mut parts = g.trim().split('-');
            let domain = parts.next()?.parse().ok()?;
            let _server = parts.next()?;
            let seq = parts.next()?.parse().ok()?;
            Some((domain, seq))
        })
        .collect()
}

/// Replace the `{listen}` / `{admin}` placeholders.
pub fn fill_placeholders(template: &str, port: u16, admin_port: u16) -> String {
    template
        .replace(LISTEN_PLACEHOLDER, &format!("127.0.0.1:{port}"))
        .replace(ADMIN_PLACEHOLDER, &format!("127.0.0.1:{admin_port}"))
}

/// Write `contents` to a sibling temp file, then rename it over `path`.
pub fn write_atomically(path: &Path, contents: &str) -> Result<()> {
    let tmp = path.with_extension("tmp");
    fs::write(&tmp, contents).map_err(|source| TestkitError::File {
        action: "writing",
        path: tmp.clone(),
        source,
    })?;
    fs::rename(&tmp, path).map_err(|source| TestkitError::File {
        action: "renaming over",
        path: path.to_path_buf(),
        source,
    })
}

fn symlink(target: &Path, link: &Path) -> Result<()> {
    std::os::unix::fs::symlink(target, link).map_err(|source| TestkitError::File {
        action: "linking",
        path: link.to_path_buf(),
        source,
    })
}

/// One ConfigMap update in `mount` (created if needed): `..vN/rwproxy.yaml` with `text`,
/// `..data` switched to it by renaming a fresh link over it, the previous `..vM` removed.
fn configmap_update(mount: &Path, text: &str) -> Result<()> {
    let io = |action: &'static str, path: &Path| {
        let path = path.to_path_buf();
        move |source| TestkitError::File {
            action,
            path,
            source,
        }
    };
    fs::create_dir_all(mount).map_err(io("creating", mount))?;
    let data = mount.join("..data");
    let previous = fs::read_link(&data).ok();
    let version = previous
        .as_ref()
        .and_then(|p| p.to_str()?.strip_prefix("..v")?.parse::<u32>().ok())
        .map_or(1, |v| v + 1);
    let name = format!("..v{version}");
    let dir = mount.join(&name);
    fs::create_dir_all(&dir).map_err(io("creating", &dir))?;
    let file = dir.join("rwproxy.yaml");
    fs::write(&file, text).map_err(io("writing", &file))?;
    let tmp = mount.join("..data_tmp");
    let _ = fs::remove_file(&tmp);
    symlink(Path::new(&name), &tmp)?;
    fs::rename(&tmp, &data).map_err(io("renaming over", &data))?;
    if let Some(old) = previous {
        let _ = fs::remove_dir_all(mount.join(old));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn placeholders_are_filled() {
        let text = fill_placeholders("listen: {listen}\nadmin:\n  listen: {admin}\n", 1234, 5678);
        assert_eq!(
            text,
            "listen: 127.0.0.1:1234\nadmin:\n  listen: 127.0.0.1:5678\n"
        );
    }

    #[test]
    fn gtid_positions_are_read_per_domain() {
        let seqs = gtid_seqs("0-1-17, 1-2-5,bad");
        assert_eq!(seqs.into_iter().collect::<Vec<_>>(), vec![(0, 17), (1, 5)]);
        assert!(gtid_seqs("").is_empty());
    }

    #[test]
    fn atomic_write_replaces_the_file() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("c.yaml");
        write_atomically(&path, "a: 1\n").unwrap();
        write_atomically(&path, "a: 2\n").unwrap();
        assert_eq!(fs::read_to_string(&path).unwrap(), "a: 2\n");
        assert!(!path.with_extension("tmp").exists());
    }

    #[test]
    fn a_binary_that_exits_is_reported_with_its_log() {
        use std::os::unix::fs::PermissionsExt;
        let dir = tempfile::tempdir().unwrap();
        let fake = dir.path().join("fake-rwproxy");
        fs::write(&fake, "#!/bin/sh\necho \"cannot load $2\" >&2\nexit 3\n").unwrap();
        fs::set_permissions(&fake, fs::Permissions::from_mode(0o755)).unwrap();
        let err =
            ProxyProcess::start_with_timeout(&fake, "x: 1\n", Duration::from_secs(5)).unwrap_err();
        match err {
            TestkitError::ProxyStart {
                reason, log_tail, ..
            } => {
                assert!(reason.contains("exited"), "{reason}");
                assert!(log_tail.contains("cannot load"), "{log_tail}");
                assert!(log_tail.contains("rwproxy.yaml"), "{log_tail}");
            }
            other => panic!("expected ProxyStart, got {other}"),
        }
    }

    #[test]
    fn a_binary_that_never_listens_times_out() {
        use std::os::unix::fs::PermissionsExt;
        let dir = tempfile::tempdir().unwrap();
        let fake = dir.path().join("silent-rwproxy");
        fs::write(&fake, "#!/bin/sh\nexec sleep 30\n").unwrap();
        fs::set_permissions(&fake, fs::Permissions::from_mode(0o755)).unwrap();
        let started = Instant::now();
        let err = ProxyProcess::start_with_timeout(&fake, "x: 1\n", Duration::from_millis(500))
            .unwrap_err();
        assert!(matches!(err, TestkitError::ProxyStart { .. }), "{err}");
        assert!(started.elapsed() < Duration::from_secs(10));
    }
}
