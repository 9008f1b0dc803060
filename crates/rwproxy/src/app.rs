//! Wiring: configuration, logs, monitor, metrics, admin endpoint, listener and reload.

use rwproxy_session::events::Signals;
use std::path::PathBuf;
use std::sync::Arc;

use anyhow::Context;
use rwproxy_admin::Metrics;
use rwproxy_backend::BackendTls;
use rwproxy_config::{load_file, Config, ProcessEnv};
use rwproxy_monitor::{Monitor, MonitorHandle, StateChange};
use rwproxy_session::ProxyContext;
use tokio::net::TcpListener;

use crate::{
    admin_state, logging, metrics_observer::MetricsObserver, monitor_settings, reload::Reloader,
};

pub fn run(path: PathBuf) -> anyhow::Result<()> {
    let config = match load_file(&path, &ProcessEnv) {
        Ok(c) => c,
        Err(rwproxy_config::LoadError::Invalid(errors)) => {
            let list: Vec<String> = errors.problems.iter().map(|p| format!("  {p}")).collect();
            anyhow::bail!(
                "{} is not a valid configuration:\n{}",
                path.display(),
                list.join("\n")
            );
        }
        Err(e) => return Err(e.into()),
    };
    let level = logging::init(&config.log);
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .context("cannot start the async runtime")?;
    runtime.block_on(serve(path, Arc::new(config), level))
}

fn backend_tls(config: &Config) -> anyhow::Result<Option<BackendTls>> {
    if !config.backend_tls.enabled {
        return Ok(None);
    }
    let client = rwproxy_transport::tls::client_config(
        config.backend_tls.ca.as_deref(),
        config.backend_tls.verify,
    )
    .context("backend_tls")?;
    // Each backend's certificate is checked against its own host (at connect time).
    for b in &config.backends {
        rwproxy_backend::tls_server_name(&b.address).with_context(|| {
            format!(
                "backend_tls: backend '{}' host is not a valid TLS server name",
                b.name
            )
        })?;
    }
    Ok(Some(BackendTls { config: client }))
}

async fn serve(
    path: PathBuf,
    config: Arc<Config>,
    level: logging::LevelHandle,
) -> anyhow::Result<()> {
    let metrics = Metrics::new();
    metrics.config_loaded(&config.source_hash);

    let specs = monitor_settings::backend_specs(&config);
    let monitor: MonitorHandle = match monitor_settings::settings(&config) {
        Some(settings) => Monitor::spawn(settings, specs),
        None => {
            tracing::info!("no monitor credentials: roles come from the configuration (the backend with primary: true)");
            Monitor::static_topology(specs)
        }
    };
    spawn_event_logger(&monitor, metrics.clone());

    let observer = Arc::new(MetricsObserver::new(metrics.clone(), &config.stats));
    let digests = observer.digests.clone();
    let ctx = Arc::new(ProxyContext::new(config.clone(), monitor, observer.clone()));
    if let Some(tls) = &config.tls {
        let acceptor =
            rwproxy_transport::tls::server_acceptor(&tls.cert, &tls.key).context("tls")?;
        ctx.set_tls(Some(acceptor));
    }
    ctx.set_backend_tls(backend_tls(&config)?);

    let workers = start_data_path(&ctx, config.listen)?;
    let admin_listener = TcpListener::bind(config.admin.listen)
        .await
        .with_context(|| format!("cannot listen on {} (admin)", config.admin.listen))?;
    tracing::info!(listen = %config.listen, admin = %config.admin.listen, backends = config.backends.len(), workers, "rwproxy started");

    let admin = Arc::new(admin_state::State {
        ctx: ctx.clone(),
        metrics: metrics.clone(),
        digests,
    });
    let token = config.admin.token.as_ref().map(|t| t.expose().to_string());
    tokio::spawn(rwproxy_admin::serve(
        admin_listener,
        admin,
        token,
        std::future::pending(),
    ));
    tokio::spawn(
        Reloader {
            path,
            ctx: ctx.clone(),
            metrics: metrics.clone(),
            log_level: level,
            observer,
        }
        .run(),
    );
    tokio::spawn(rwproxy_session::accounts::refresher(ctx.clone()));
    tokio::spawn(rwproxy_session::down_watch::run(ctx.clone()));
    tokio::spawn(rwproxy_session::greeting::watch(ctx.clone()));
    {
        // Idle pooled connections past pool.idle_timeout or pool.max_age are closed.
        let ctx = ctx.clone();
        tokio::spawn(async move {
            let mut tick = tokio::time::interval(std::time::Duration::from_secs(1));
            tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
            loop {
                tick.tick().await;
                ctx.sweep_pool();
            }
        });
    }

    shutdown_signal().await;
    drain(&ctx).await;
    ctx.monitor().shutdown();
    Ok(())
}

/// Graceful shutdown (see `rwproxy_session::drain`): `/ready` turns 503 at once; clients are
/// served as usual for `shutdown.delay`; then no new connections, sessions close between
/// statements outside a transaction; after `shutdown.timeout` running statements get ERR 1053.
/// A second SIGTERM or SIGINT exits at once.
async fn drain(ctx: &Arc<ProxyContext>) {
    use rwproxy_session::drain::Phase;
    let shutdown = ctx.config().shutdown.clone();
    ctx.drain.advance(Phase::Announced);
    tracing::info!(
        clients = ctx.clients(),
        delay = ?shutdown.delay,
        timeout = ?shutdown.timeout,
        "shutting down: /ready answers 503; still serving for the delay, then draining"
    );
    tokio::spawn(async {
        shutdown_signal().await;
        tracing::warn!("second signal: exiting now, without waiting for sessions");
        std::process::exit(1);
    });
    tokio::time::sleep(shutdown.delay).await;

    ctx.drain.advance(Phase::Closing);
    ctx.registry
        .for_each(|s| s.events.raise(Signals::DRAIN_CLOSING));
    tracing::info!(
        clients = ctx.clients(),
        "no longer accepting connections; sessions close between statements"
    );
    let deadline = tokio::time::Instant::now() + shutdown.timeout;
    while ctx.clients() > 0 && tokio::time::Instant::now() < deadline {
        tokio::time::sleep(std::time::Duration::from_millis(20)).await;
    }
    if ctx.clients() > 0 {
        tracing::warn!(
            clients = ctx.clients(),
            "shutdown timeout: cutting off the statements still running"
        );
        ctx.drain.advance(Phase::Stopping);
        ctx.registry
            .for_each(|s| s.events.raise(Signals::DRAIN_STOP));
        // A moment for the sessions to send their errors and close.
        let grace = tokio::time::Instant::now() + std::time::Duration::from_secs(1);
        while ctx.clients() > 0 && tokio::time::Instant::now() < grace {
            tokio::time::sleep(std::time::Duration::from_millis(20)).await;
        }
    }
    tracing::info!(clients = ctx.clients(), "stopped");
}

/// The data path: one thread per core, each with its own single-threaded runtime and its own
/// listening socket on the same address (`SO_REUSEPORT`; the kernel spreads new connections,
/// and a thread hands a new client to another that holds fewer sessions: `workers`). A session
/// lives on one thread from then until it closes, so relaying a statement never wakes another
/// thread. The monitor, admin endpoint and reload run on the main runtime.
fn start_data_path(ctx: &Arc<ProxyContext>, listen: std::net::SocketAddr) -> anyhow::Result<usize> {
    // SO_REUSEPORT would let a second rwproxy share the port silently: binding a probe without
    // it fails if anything already listens there.
    let probe = match listen {
        std::net::SocketAddr::V4(_) => tokio::net::TcpSocket::new_v4()?,
        std::net::SocketAddr::V6(_) => tokio::net::TcpSocket::new_v6()?,
    };
    probe.set_reuseaddr(true)?;
    // Bound but never listening: it accepts no connection that could be lost when it closes.
    probe
        .bind(listen)
        .with_context(|| format!("cannot listen on {listen}"))?;
    drop(probe);
    let workers = std::thread::available_parallelism()
        .map(|n| n.get())
        .unwrap_or(1);
    let (ready_tx, ready_rx) = std::sync::mpsc::channel::<std::io::Result<()>>();
    let (table, inboxes) = rwproxy_session::Workers::new(workers);
    for (i, inbox) in inboxes.into_iter().enumerate() {
        let ctx = ctx.clone();
        let ready = ready_tx.clone();
        let table = table.clone();
        std::thread::Builder::new()
            .name(format!("rwproxy-io-{i}"))
            .spawn(move || {
                let runtime = match tokio::runtime::Builder::new_current_thread()
                    .enable_all()
                    .build()
                {
                    Ok(r) => r,
                    Err(e) => {
                        let _ = ready.send(Err(e));
                        return;
                    }
                };
                runtime.block_on(async move {
                    let listener = match bind_shared(listen) {
                        Ok(l) => {
                            let _ = ready.send(Ok(()));
                            l
                        }
                        Err(e) => {
                            let _ = ready.send(Err(e));
                            return;
                        }
                    };
                    rwproxy_session::serve_worker(listener, ctx, table, i, inbox).await;
                });
            })
            .context("cannot start a data-path thread")?;
    }
    drop(ready_tx);
    for _ in 0..workers {
        match ready_rx.recv() {
            Ok(Ok(())) => {}
            Ok(Err(e)) => return Err(e).with_context(|| format!("cannot listen on {listen}")),
            Err(_) => anyhow::bail!("a data-path thread ended before listening on {listen}"),
        }
    }
    Ok(workers)
}

fn bind_shared(addr: std::net::SocketAddr) -> std::io::Result<TcpListener> {
    let socket = match addr {
        std::net::SocketAddr::V4(_) => tokio::net::TcpSocket::new_v4()?,
        std::net::SocketAddr::V6(_) => tokio::net::TcpSocket::new_v6()?,
    };
    socket.set_reuseaddr(true)?;
    socket.set_reuseport(true)?;
    socket.bind(addr)?;
    socket.listen(1024)
}

fn spawn_event_logger(monitor: &MonitorHandle, metrics: Metrics) {
    let mut events = monitor.subscribe_events();
    tokio::spawn(async move {
        loop {
            match events.recv().await {
                Ok(StateChange::Backend { backend, .. }) => metrics.backend_state_changed(&backend),
                Ok(StateChange::Primary { new, rule, .. }) => {
                    if matches!(new, rwproxy_monitor::PrimaryState::Conflict(_)) {
                        metrics.write_conflict();
                    }
                    if let Some(rule) = rule {
                        metrics.galera_writer_changed(writer_rule(rule));
                    }
                }
                Err(tokio::sync::broadcast::error::RecvError::Lagged(_)) => continue,
                Err(_) => return,
            }
        }
    });
}

fn writer_rule(rule: rwproxy_monitor::WriterRule) -> rwproxy_admin::WriterRule {
    use rwproxy_admin::WriterRule as L;
    use rwproxy_monitor::WriterRule as M;
    match rule {
        M::Sole => L::Sole,
        M::Priority => L::Priority,
        M::NodeName => L::NodeName,
        M::GcommUuid => L::GcommUuid,
        M::BackendName => L::BackendName,
    }
}

async fn shutdown_signal() {
    use tokio::signal::unix::{signal, SignalKind};
    let mut term = match signal(SignalKind::terminate()) {
        Ok(s) => s,
        Err(_) => {
            let _ = tokio::signal::ctrl_c().await;
            return;
        }
    };
    tokio::select! {
        _ = term.recv() => {},
        _ = tokio::signal::ctrl_c() => {},
    }
}
