//! The data-path threads and how clients are spread over them.
//!
//! Each thread has its own single-threaded runtime and its own `SO_REUSEPORT` listener; the
//! kernel picks the listener by a hash of the client's address, which can leave one thread with
//! most of the sessions (with 8 clients on 2 threads, a 6/2 split is common) and its clients
//! with the longest waits. So a thread that accepts a client while another thread holds fewer
//! sessions hands the connection over (one message per connection, never per statement); a
//! session then lives on one thread until it ends.

use std::net::SocketAddr;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;

use tokio::net::{TcpListener, TcpStream};
use tokio::sync::mpsc;

use crate::context::ProxyContext;
use crate::listener::handle_client;

/// A connection handed from the thread that accepted it to another.
pub struct HandOff {
    tcp: std::net::TcpStream,
    peer: SocketAddr,
}

/// What every data-path thread knows of the others.
pub struct Workers {
    slots: Vec<Slot>,
}

struct Slot {
    /// Sessions running on the thread (from hand-over or accept until the session ends).
    sessions: AtomicUsize,
    inbox: mpsc::UnboundedSender<HandOff>,
}

/// Counts a session on its thread for as long as it runs.
struct Running<'a>(&'a AtomicUsize);

impl Drop for Running<'_> {
    fn drop(&mut self) {
        self.0.fetch_sub(1, Ordering::Relaxed);
    }
}

impl Workers {
    /// `count` threads: the shared table and each thread's inbox.
    pub fn new(count: usize) -> (Arc<Workers>, Vec<mpsc::UnboundedReceiver<HandOff>>) {
        let (slots, inboxes) = (0..count.max(1))
            .map(|_| {
                let (tx, rx) = mpsc::unbounded_channel();
                (
                    Slot {
                        sessions: AtomicUsize::new(0),
                        inbox: tx,
                    },
                    rx,
                )
            })
            .unzip();
        (Arc::new(Workers { slots }), inboxes)
    }

    /// The thread a client accepted by thread `me` should run on: `me` unless another one
    /// holds fewer sessions.
    fn target(&self, me: usize) -> usize {
        let mine = self.slots[me].sessions.load(Ordering::Relaxed);
        let (best, least) = self
            .slots
            .iter()
            .enumerate()
            .map(|(i, s)| (i, s.sessions.load(Ordering::Relaxed)))
            .min_by_key(|&(_, n)| n)
            .unwrap_or((me, mine));
        if least < mine {
            best
        } else {
            me
        }
    }

    /// Sessions running on each thread.
    pub fn sessions(&self) -> Vec<usize> {
        self.slots
            .iter()
            .map(|s| s.sessions.load(Ordering::Relaxed))
            .collect()
    }
}

/// Runs data-path thread `me`: accepts clients on its listener, hands some to less busy threads,
/// and runs those handed to it. Returns when the process shuts down.
pub async fn serve_worker(
    listener: TcpListener,
    ctx: Arc<ProxyContext>,
    workers: Arc<Workers>,
    me: usize,
    mut inbox: mpsc::UnboundedReceiver<HandOff>,
) {
    let run_here = |tcp: TcpStream, peer: SocketAddr| {
        let ctx = ctx.clone();
        let workers = workers.clone();
        workers.slots[me].sessions.fetch_add(1, Ordering::Relaxed);
        tokio::spawn(async move {
            let _running = Running(&workers.slots[me].sessions);
            handle_client(ctx, tcp, peer).await;
        });
    };
    let mut listener = Some(listener);
    loop {
        tokio::select! {
            // Graceful shutdown: stop accepting (the socket closes; new connections are
            // refused), keep running the sessions of this thread until the process exits.
            _ = ctx.drain.reached(crate::drain::Phase::Closing), if listener.is_some() => {
                listener = None;
                tracing::debug!(worker = me, "stopped accepting client connections");
            }
            accepted = accept(listener.as_ref()) => match accepted {
                Ok((tcp, peer)) => {
                    let to = workers.target(me);
                    if to == me {
                        run_here(tcp, peer);
                        continue;
                    }
                    match tcp.into_std() {
                        Ok(tcp) => {
                            // Counted at once, so the next accept sees it.
                            let slot = &workers.slots[to];
                            slot.sessions.fetch_add(1, Ordering::Relaxed);
                            if let Err(back) = slot.inbox.send(HandOff { tcp, peer }) {
                                slot.sessions.fetch_sub(1, Ordering::Relaxed);
                                // That thread is gone (shutting down): run it here.
                                match TcpStream::from_std(back.0.tcp) {
                                    Ok(tcp) => run_here(tcp, peer),
                                    Err(e) => tracing::warn!(%peer, error = %e, "client connection lost in hand-over"),
                                }
                            }
                        }
                        Err(e) => tracing::warn!(%peer, error = %e, "client connection lost in hand-over"),
                    }
                }
                Err(e) => {
                    // Out of file descriptors and the like: log, breathe, go on.
                    tracing::error!(error = %e, "accept failed");
                    tokio::time::sleep(std::time::Duration::from_millis(50)).await;
                }
            },
            Some(HandOff { tcp, peer }) = inbox.recv() => {
                // Counted by the sender already.
                workers.slots[me].sessions.fetch_sub(1, Ordering::Relaxed);
                match TcpStream::from_std(tcp) {
                    Ok(tcp) => run_here(tcp, peer),
                    Err(e) => tracing::warn!(%peer, error = %e, "client connection lost in hand-over"),
                }
            }
        }
    }
}

/// Accepts on `listener`; never resolves without one.
async fn accept(listener: Option<&TcpListener>) -> std::io::Result<(TcpStream, SocketAddr)> {
    match listener {
        Some(l) => l.accept().await,
        None => std::future::pending().await,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_client_goes_to_a_thread_with_fewer_sessions() {
        let (workers, _inboxes) = Workers::new(3);
        assert_eq!(workers.target(1), 1, "all equal: stay");
        workers.slots[1].sessions.store(2, Ordering::Relaxed);
        workers.slots[0].sessions.store(2, Ordering::Relaxed);
        workers.slots[2].sessions.store(1, Ordering::Relaxed);
        assert_eq!(workers.target(1), 2);
        assert_eq!(workers.target(2), 2);
        workers.slots[2].sessions.store(2, Ordering::Relaxed);
        assert_eq!(workers.target(0), 0, "no thread has fewer: stay");
        assert_eq!(workers.sessions(), [2, 2, 2]);
    }
}
