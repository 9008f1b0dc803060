//! Logs: `tracing` to stderr, as text or JSON, with a level filter that a reload can change.
//!
//! Every field of a text line is escaped and capped ([`Shown`]): values can carry what clients
//! sent (user names, statements, error messages), and must not forge lines or flood the log.
//! JSON lines are escaped by JSON itself; the strings clients send are capped where they are
//! logged. Colours only when stderr is a terminal.

use std::io::IsTerminal;

use rwproxy_session::shown::Shown;

use rwproxy_config::{LogConfig, LogFormat};
use tracing_subscriber::layer::SubscriberExt;
use tracing_subscriber::util::SubscriberInitExt;
use tracing_subscriber::{reload, EnvFilter, Registry};

/// Changes the log level of the running process.
pub type LevelHandle = reload::Handle<EnvFilter, Registry>;

fn filter(level: &str) -> EnvFilter {
    EnvFilter::try_new(level).unwrap_or_else(|_| EnvFilter::new("info"))
}

/// Installs the global subscriber. `RUST_LOG`, when set, wins over the configured level.
pub fn init(config: &LogConfig) -> LevelHandle {
    let level = std::env::var("RUST_LOG").unwrap_or_else(|_| config.level.clone());
    let (filter_layer, handle) = reload::Layer::new(filter(&level));
    let registry = tracing_subscriber::registry().with(filter_layer);
    match config.format {
        LogFormat::Json => registry
            .with(
                tracing_subscriber::fmt::layer()
                    .json()
                    .with_writer(std::io::stderr),
            )
            .init(),
        LogFormat::Text => registry
            .with(
                tracing_subscriber::fmt::layer()
                    .with_writer(std::io::stderr)
                    .with_ansi(std::io::stderr().is_terminal())
                    .fmt_fields(escaped_fields()),
            )
            .init(),
    }
    handle
}

/// Longest value a text log field shows.
const FIELD_BYTES: usize = 1024;

/// Text fields as `name=value`, each value escaped and capped.
fn escaped_fields() -> impl for<'w> tracing_subscriber::fmt::FormatFields<'w> + 'static {
    use tracing_subscriber::field::MakeExt;
    tracing_subscriber::fmt::format::debug_fn(|w, field, value| {
        let text = format!("{value:?}");
        let shown = Shown::controls_only(&text, FIELD_BYTES);
        if field.name() == "message" {
            write!(w, "{shown}")
        } else {
            write!(w, "{field}={shown}")
        }
    })
    .delimited(" ")
}

pub fn set_level(handle: &LevelHandle, level: &str) {
    if std::env::var("RUST_LOG").is_ok() {
        return;
    }
    if let Err(e) = handle.reload(filter(level)) {
        tracing::warn!(error = %e, "cannot change the log level");
    }
}
