//! The admin token never shows up in the logs, even at TRACE level.
//!
//! Kept alone in its own test binary: `tracing` caches per-callsite interest process-wide, so
//! tests running concurrently without a subscriber could make this one miss events.

mod common;

use std::io::Write;
use std::sync::{Arc, Mutex};

use common::{get, Server, TestState};

const TOKEN: &str = "s3cret-t0ken-value";

/// Collects everything written by a `tracing` subscriber.
#[derive(Clone, Default)]
struct LogBuffer(Arc<Mutex<Vec<u8>>>);

impl Write for LogBuffer {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        self.0.lock().unwrap().extend_from_slice(buf);
        Ok(buf.len())
    }
    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

#[test]
fn token_is_never_logged() {
    let logs = LogBuffer::default();
    let writer = logs.clone();
    let subscriber = tracing_subscriber::fmt()
        .with_max_level(tracing::Level::TRACE)
        .with_writer(move || writer.clone())
        .finish();
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    tracing::subscriber::with_default(subscriber, || {
        runtime.block_on(async {
            let server = Server::start(TestState::new(), Some(TOKEN)).await;
            assert_eq!(get(server.addr, "/metrics", Some(TOKEN)).await.status, 200);
            assert_eq!(
                get(server.addr, "/metrics", Some("wrong")).await.status,
                401
            );
            assert_eq!(get(server.addr, "/config", None).await.status, 401);
            server.shutdown().await.unwrap();
        });
    });
    let text = String::from_utf8(logs.0.lock().unwrap().clone()).unwrap();
    // The subscriber did capture the request logs, so the check below means something.
    assert!(text.contains("admin request"), "{text}");
    assert!(text.contains("/metrics"), "{text}");
    assert!(!text.contains(TOKEN), "{text}");
    assert!(!text.contains("wrong"), "{text}");
}
