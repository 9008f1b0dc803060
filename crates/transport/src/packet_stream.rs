use std::io;
use std::sync::Arc;

use bytes::{Buf, Bytes, BytesMut};
use rwproxy_protocol::frame;
use rwproxy_protocol::ProtocolError;
use thiserror::Error;
use tokio::io::{AsyncRead, AsyncReadExt, AsyncWriteExt};

use crate::budget::{Held, PacketBudget};
use crate::{Compressor, MaybeTls, PrefixedIo};

/// Default read granularity (backend connections, where results stream in).
pub const READ_CHUNK: usize = 16 * 1024;
/// Buffers grown past this (by a large packet) are released once they are empty again.
const SHRINK_ABOVE: usize = 256 * 1024;

#[derive(Debug, Error)]
pub enum TransportError {
    #[error("connection closed by peer")]
    Closed,
    #[error("connection closed by peer in the middle of a packet")]
    ClosedMidPacket,
    #[error("{0}")]
    Protocol(#[from] ProtocolError),
    #[error("network error: {0}")]
    Io(#[from] io::Error),
    #[error("TLS error: {0}")]
    Tls(String),
    #[error("{buffered} bytes of a packet received, and the large-packet budget ({budget} bytes) is held by other connections")]
    BudgetExhausted { buffered: usize, budget: usize },
}

impl TransportError {
    /// Whether the peer simply went away (as opposed to sending something wrong).
    pub fn is_disconnect(&self) -> bool {
        match self {
            TransportError::Closed | TransportError::ClosedMidPacket => true,
            TransportError::Io(e) => matches!(
                e.kind(),
                io::ErrorKind::ConnectionReset
                    | io::ErrorKind::BrokenPipe
                    | io::ErrorKind::UnexpectedEof
            ),
            _ => false,
        }
    }
}

/// A buffered stream of MySQL packets.
///
/// Reading either takes whole logical packets ([`PacketStream::read_packet`], joined and
/// bounded by `max_payload`) or exposes the raw read buffer so a relay can pass packets on
/// without copying them ([`PacketStream::buffered`], [`PacketStream::consume`]).
#[derive(Debug)]
pub struct PacketStream {
    io: MaybeTls,
    rbuf: BytesMut,
    wbuf: BytesMut,
    max_payload: usize,
    /// How much buffer space each read asks for (and an idle connection keeps).
    read_chunk: usize,
    /// The compressed protocol, once negotiated: `rbuf`/`wbuf` hold plain packets and this
    /// layer sits between them and the socket.
    compress: Option<Box<(Compressor, BytesMut)>>,
    /// The shared large-packet budget (client connections, once authenticated).
    budget: Option<Held>,
}

impl PacketStream {
    pub fn new(io: MaybeTls, max_payload: usize) -> Self {
        Self {
            io,
            rbuf: BytesMut::new(),
            wbuf: BytesMut::new(),
            max_payload,
            read_chunk: READ_CHUNK,
            compress: None,
            budget: None,
        }
    }

    /// Makes whole-packet reads ([`PacketStream::read_packet`]) take from `budget` the memory
    /// a packet needs beyond a small per-connection allowance (see [`crate::budget`]).
    pub fn set_budget(&mut self, budget: Arc<PacketBudget>) {
        self.budget = Some(Held::new(budget));
    }

    /// Sets the read granularity: small for client connections, most of which are idle, so
    /// thousands of them cost little memory; larger packets grow the buffer as needed.
    pub fn with_read_chunk(mut self, bytes: usize) -> Self {
        self.read_chunk = bytes.max(256);
        self
    }

    /// Switches to the compressed protocol (after the handshake's final OK was sent).
    pub fn enable_compression(&mut self) {
        self.compress = Some(Box::default());
    }

    pub fn is_compressed(&self) -> bool {
        self.compress.is_some()
    }

    pub fn get_ref(&self) -> &MaybeTls {
        &self.io
    }

    pub fn max_payload(&self) -> usize {
        self.max_payload
    }

    pub fn set_max_payload(&mut self, max: usize) {
        self.max_payload = max;
    }

    /// Reads more bytes into the read buffer; `Ok(0)` when the peer closed the connection.
    pub async fn fill(&mut self) -> Result<usize, TransportError> {
        if let Some(c) = self.compress.as_deref_mut() {
            let (compressor, _) = c;
            loop {
                let produced = compressor.decode(&mut self.rbuf, self.max_payload)?;
                if produced > 0 {
                    return Ok(produced);
                }
                if compressor.incoming.capacity() - compressor.incoming.len() < self.read_chunk / 4
                {
                    compressor.incoming.reserve(self.read_chunk);
                }
                if self.io.read_buf(&mut compressor.incoming).await? == 0 {
                    return Ok(0);
                }
            }
        }
        if self.rbuf.capacity() - self.rbuf.len() < self.read_chunk / 4 {
            self.rbuf.reserve(self.read_chunk);
        }
        Ok(self.io.read_buf(&mut self.rbuf).await?)
    }

    /// For a connection that should be idle (no command outstanding): whether the peer has
    /// closed it, reset it, or sent something unasked (a server that restarted, a
    /// `wait_timeout` or `KILL` on the server side). Never waits: the socket is polled once
    /// with a no-op waker, which costs no system call while the runtime knows the socket has
    /// nothing to read. Unasked bytes are kept in the read buffer; a stale connection must be
    /// dropped.
    pub fn closed_while_idle(&mut self) -> bool {
        if !self.rbuf.is_empty() {
            return true;
        }
        if let Some(c) = self.compress.as_deref() {
            if !c.0.incoming.is_empty() {
                return true;
            }
        }
        let mut probe = [0u8; 64];
        let mut buf = tokio::io::ReadBuf::new(&mut probe);
        let mut cx = std::task::Context::from_waker(std::task::Waker::noop());
        match std::pin::Pin::new(&mut self.io).poll_read(&mut cx, &mut buf) {
            std::task::Poll::Pending => false,
            std::task::Poll::Ready(Ok(())) => {
                // Zero bytes: end of stream; more: unasked data. Either way not reusable.
                self.rbuf.extend_from_slice(buf.filled());
                true
            }
            std::task::Poll::Ready(Err(_)) => true,
        }
    }

    /// Bytes read and not yet consumed.
    #[inline]
    pub fn buffered(&self) -> &[u8] {
        &self.rbuf
    }

    /// Drops `n` bytes from the front of the read buffer.
    #[inline]
    pub fn consume(&mut self, n: usize) {
        self.rbuf.advance(n);
        self.maybe_shrink();
    }

    fn maybe_shrink(&mut self) {
        if self.rbuf.is_empty() && self.rbuf.capacity() > SHRINK_ABOVE {
            self.rbuf = BytesMut::new();
        }
        if self.wbuf.is_empty() && self.wbuf.capacity() > SHRINK_ABOVE {
            self.wbuf = BytesMut::new();
        }
    }

    /// Reads one whole logical packet (joined if it spans several physical packets).
    pub async fn read_packet(&mut self) -> Result<(u8, Bytes), TransportError> {
        // The previous packet is done with: its share of the budget goes back.
        if let Some(held) = self.budget.as_mut() {
            held.release();
        }
        loop {
            // Inside compressed frames only the frames' own sequence ids count.
            let check_sequence = self.compress.is_none();
            if let Some(info) =
                frame::check_logical_with(&self.rbuf, self.max_payload, check_sequence)?
            {
                let payload = frame::take_logical(&mut self.rbuf, &info);
                self.maybe_shrink();
                return Ok((info.first_seq, payload));
            }
            if let Some(held) = self.budget.as_mut() {
                let incoming = self.compress.as_deref().map_or(0, |c| c.0.incoming.len());
                held.cover(self.rbuf.len() + incoming + self.read_chunk)
                    .await?;
            }
            if self.fill().await? == 0 {
                return Err(if self.rbuf.is_empty() {
                    TransportError::Closed
                } else {
                    TransportError::ClosedMidPacket
                });
            }
        }
    }

    /// Queues a logical packet for writing; `seq` is advanced past it.
    pub fn queue_packet(&mut self, seq: &mut u8, payload: &[u8]) {
        frame::encode_packet(&mut self.wbuf, seq, payload);
    }

    /// Queues bytes that are already framed.
    pub fn queue_raw(&mut self, bytes: &[u8]) {
        self.wbuf.extend_from_slice(bytes);
    }

    /// Bytes queued and not yet written.
    pub fn queued(&self) -> usize {
        self.wbuf.len()
    }

    /// Writes everything queued.
    pub async fn flush(&mut self) -> Result<(), TransportError> {
        if let Some(c) = self.compress.as_deref_mut() {
            let (compressor, out) = c;
            out.clear();
            compressor.encode(&self.wbuf, out);
            compressor.finish(out);
            if !out.is_empty() {
                self.io.write_all(out).await?;
            }
            self.wbuf.clear();
        } else if !self.wbuf.is_empty() {
            self.io.write_all(&self.wbuf).await?;
            self.wbuf.clear();
        }
        self.io.flush().await?;
        self.maybe_shrink();
        Ok(())
    }

    /// Writes bytes that are already framed, after anything queued, without copying them.
    pub async fn write_raw(&mut self, bytes: &[u8]) -> Result<(), TransportError> {
        if let Some(c) = self.compress.as_deref_mut() {
            let (compressor, out) = c;
            out.clear();
            if !self.wbuf.is_empty() {
                compressor.encode(&self.wbuf, out);
                self.wbuf.clear();
            }
            compressor.encode(bytes, out);
            if !out.is_empty() {
                self.io.write_all(out).await?;
            }
            return Ok(());
        }
        if !self.wbuf.is_empty() {
            self.io.write_all(&self.wbuf).await?;
            self.wbuf.clear();
        }
        self.io.write_all(bytes).await?;
        Ok(())
    }

    /// Queues and writes one logical packet.
    pub async fn write_packet(
        &mut self,
        seq: &mut u8,
        payload: &[u8],
    ) -> Result<(), TransportError> {
        self.queue_packet(seq, payload);
        self.flush().await
    }

    /// Closes the write side, ignoring errors (the peer may be gone already).
    pub async fn shutdown(&mut self) {
        let _ = self.flush().await;
        let _ = self.io.shutdown().await;
    }

    fn take_plain(
        self,
    ) -> Result<(PrefixedIo<tokio::net::TcpStream>, usize, BytesMut), TransportError> {
        match self.io {
            MaybeTls::Plain(tcp) => {
                Ok((PrefixedIo::new(self.rbuf, tcp), self.max_payload, self.wbuf))
            }
            _ => Err(TransportError::Tls(
                "connection is already encrypted".into(),
            )),
        }
    }

    /// Upgrades a client connection to TLS (rwproxy is the TLS server). Bytes the client sent
    /// after its SSL request and already read are handed to the TLS layer.
    pub async fn upgrade_server(
        self,
        acceptor: &tokio_rustls::TlsAcceptor,
    ) -> Result<Self, TransportError> {
        let read_chunk = self.read_chunk;
        let (io, max, wbuf) = self.take_plain()?;
        let tls = acceptor
            .accept(io)
            .await
            .map_err(|e| TransportError::Tls(e.to_string()))?;
        Ok(Self {
            io: MaybeTls::Server(Box::new(tls)),
            rbuf: BytesMut::new(),
            wbuf,
            max_payload: max,
            read_chunk,
            compress: None,
            budget: None,
        })
    }

    /// Upgrades a backend connection to TLS (rwproxy is the TLS client).
    pub async fn upgrade_client(
        mut self,
        config: Arc<rustls::ClientConfig>,
        server_name: rustls::pki_types::ServerName<'static>,
    ) -> Result<Self, TransportError> {
        self.flush().await?;
        let (io, max, wbuf) = self.take_plain()?;
        let tls = tokio_rustls::TlsConnector::from(config)
            .connect(server_name, io)
            .await
            .map_err(|e| TransportError::Tls(e.to_string()))?;
        Ok(Self {
            io: MaybeTls::Client(Box::new(tls)),
            rbuf: BytesMut::new(),
            wbuf,
            max_payload: max,
            read_chunk: READ_CHUNK,
            compress: None,
            budget: None,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn pair(max: usize) -> (PacketStream, PacketStream) {
        let (a, b) = tokio::io::duplex(1 << 16);
        (
            PacketStream::new(MaybeTls::Duplex(a), max),
            PacketStream::new(MaybeTls::Duplex(b), max),
        )
    }

    #[tokio::test]
    async fn packets_cross_and_large_ones_join() {
        let (mut a, mut b) = pair(64 << 20);
        let big = vec![7u8; frame::MAX_CHUNK + 10];
        let writer = tokio::spawn(async move {
            let mut seq = 0;
            a.write_packet(&mut seq, b"hello").await.unwrap();
            a.write_packet(&mut seq, &big).await.unwrap();
            a
        });
        assert_eq!(
            b.read_packet().await.unwrap(),
            (0, Bytes::from_static(b"hello"))
        );
        let (seq, p) = b.read_packet().await.unwrap();
        assert_eq!((seq, p.len()), (1, frame::MAX_CHUNK + 10));
        drop(writer.await.unwrap());
        assert!(matches!(b.read_packet().await, Err(TransportError::Closed)));
    }

    #[tokio::test]
    async fn oversized_is_refused_and_truncated_is_reported() {
        let (mut a, mut b) = pair(100);
        let mut seq = 0;
        a.write_packet(&mut seq, &[1u8; 200]).await.unwrap();
        assert!(matches!(
            b.read_packet().await,
            Err(TransportError::Protocol(ProtocolError::TooLarge { .. }))
        ));
        let (mut a, mut b) = pair(100);
        a.write_raw(&[10, 0, 0, 0, 1, 2]).await.unwrap();
        drop(a);
        assert!(matches!(
            b.read_packet().await,
            Err(TransportError::ClosedMidPacket)
        ));
    }

    #[tokio::test]
    async fn an_idle_connection_is_stale_once_closed_or_sent_to() {
        let (mut a, mut b) = pair(100);
        assert!(!b.closed_while_idle());
        // Still usable afterwards.
        let mut seq = 0;
        a.write_packet(&mut seq, b"x").await.unwrap();
        assert_eq!(
            b.read_packet().await.unwrap(),
            (0, Bytes::from_static(b"x"))
        );
        assert!(!b.closed_while_idle());
        // Unasked bytes make it stale (and stay readable).
        let mut seq = 0;
        a.write_packet(&mut seq, b"late").await.unwrap();
        tokio::task::yield_now().await;
        assert!(b.closed_while_idle());
        assert_eq!(
            b.read_packet().await.unwrap(),
            (0, Bytes::from_static(b"late"))
        );
        drop(a);
        tokio::task::yield_now().await;
        assert!(b.closed_while_idle());
    }

    #[tokio::test]
    async fn a_closed_tcp_peer_is_seen_without_waiting() {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        let client = tokio::net::TcpStream::connect(addr).await.unwrap();
        let (server, _) = listener.accept().await.unwrap();
        let mut stream = PacketStream::new(MaybeTls::Plain(client), 100);
        assert!(!stream.closed_while_idle());
        drop(server);
        // The runtime learns of the FIN on its next turn of the I/O driver.
        let mut seen = false;
        for _ in 0..100 {
            tokio::time::sleep(std::time::Duration::from_millis(5)).await;
            if stream.closed_while_idle() {
                seen = true;
                break;
            }
        }
        assert!(seen, "the closed peer was never noticed");
    }
}
