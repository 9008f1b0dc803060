use std::io;
use std::pin::Pin;
use std::task::{Context, Poll};

use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};
use tokio::net::TcpStream;

use crate::PrefixedIo;

/// A TCP connection, possibly upgraded to TLS (as server towards clients, as client towards
/// backends).
#[derive(Debug)]
pub enum MaybeTls {
    Plain(TcpStream),
    Server(Box<tokio_rustls::server::TlsStream<PrefixedIo<TcpStream>>>),
    Client(Box<tokio_rustls::client::TlsStream<PrefixedIo<TcpStream>>>),
    /// In-memory stream, for tests of the layers above.
    #[doc(hidden)]
    Duplex(tokio::io::DuplexStream),
}

impl MaybeTls {
    pub fn is_tls(&self) -> bool {
        matches!(self, MaybeTls::Server(_) | MaybeTls::Client(_))
    }

    pub fn tcp(&self) -> Option<&TcpStream> {
        match self {
            MaybeTls::Plain(s) => Some(s),
            MaybeTls::Server(s) => Some(s.get_ref().0.get_ref()),
            MaybeTls::Client(s) => Some(s.get_ref().0.get_ref()),
            MaybeTls::Duplex(_) => None,
        }
    }
}

macro_rules! delegate {
    ($self:ident, $s:ident => $e:expr) => {
        match $self.get_mut() {
            MaybeTls::Plain($s) => $e,
            MaybeTls::Server($s) => $e,
            MaybeTls::Client($s) => $e,
            MaybeTls::Duplex($s) => $e,
        }
    };
}

impl AsyncRead for MaybeTls {
    fn poll_read(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        delegate!(self, s => Pin::new(s).poll_read(cx, buf))
    }
}

impl AsyncWrite for MaybeTls {
    fn poll_write(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<io::Result<usize>> {
        delegate!(self, s => Pin::new(s).poll_write(cx, buf))
    }
    fn poll_flush(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        delegate!(self, s => Pin::new(s).poll_flush(cx))
    }
    fn poll_shutdown(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        delegate!(self, s => Pin::new(s).poll_shutdown(cx))
    }
}
