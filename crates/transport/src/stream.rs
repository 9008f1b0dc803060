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

    /// The negotiated TLS version and cipher suite, named as OpenSSL (and so MariaDB's
    /// `Ssl_version` and `Ssl_cipher`) names them; `None` on a plain connection.
    pub fn tls_names(&self) -> Option<(&'static str, String)> {
        let (version, suite) = match self {
            MaybeTls::Server(s) => (
                s.get_ref().1.protocol_version(),
                s.get_ref().1.negotiated_cipher_suite(),
            ),
            MaybeTls::Client(s) => (
                s.get_ref().1.protocol_version(),
                s.get_ref().1.negotiated_cipher_suite(),
            ),
            _ => return None,
        };
        let version = match version {
            Some(rustls::ProtocolVersion::TLSv1_3) => "TLSv1.3",
            Some(rustls::ProtocolVersion::TLSv1_2) => "TLSv1.2",
            _ => "",
        };
        let cipher = suite
            .map(|s| openssl_cipher_name(s.suite()))
            .unwrap_or_default();
        Some((version, cipher))
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

/// OpenSSL's name of a cipher suite (TLS 1.3 suites keep their IANA names; TLS 1.2 ECDHE suites
/// are spelled the OpenSSL way).
fn openssl_cipher_name(suite: rustls::CipherSuite) -> String {
    use rustls::CipherSuite as C;
    let name = match suite {
        C::TLS13_AES_128_GCM_SHA256 => "TLS_AES_128_GCM_SHA256",
        C::TLS13_AES_256_GCM_SHA384 => "TLS_AES_256_GCM_SHA384",
        C::TLS13_CHACHA20_POLY1305_SHA256 => "TLS_CHACHA20_POLY1305_SHA256",
        C::TLS_ECDHE_ECDSA_WITH_AES_128_GCM_SHA256 => "ECDHE-ECDSA-AES128-GCM-SHA256",
        C::TLS_ECDHE_ECDSA_WITH_AES_256_GCM_SHA384 => "ECDHE-ECDSA-AES256-GCM-SHA384",
        C::TLS_ECDHE_ECDSA_WITH_CHACHA20_POLY1305_SHA256 => "ECDHE-ECDSA-CHACHA20-POLY1305",
        C::TLS_ECDHE_RSA_WITH_AES_128_GCM_SHA256 => "ECDHE-RSA-AES128-GCM-SHA256",
        C::TLS_ECDHE_RSA_WITH_AES_256_GCM_SHA384 => "ECDHE-RSA-AES256-GCM-SHA384",
        C::TLS_ECDHE_RSA_WITH_CHACHA20_POLY1305_SHA256 => "ECDHE-RSA-CHACHA20-POLY1305",
        other => return format!("{other:?}"),
    };
    name.to_string()
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
