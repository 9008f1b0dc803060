use rwproxy_transport::TransportError;
use thiserror::Error;

/// Why a client session ended abnormally (logged; the client already got an error packet
/// where one could be sent).
#[derive(Debug, Error)]
pub enum ClientError {
    #[error("client connection: {0}")]
    Transport(#[from] TransportError),
    #[error("refused with error {code}: {message}")]
    Refused { code: u16, message: String },
    #[error("handshake not completed within {0:?}")]
    HandshakeTimeout(std::time::Duration),
    #[error("killed by KILL CONNECTION")]
    Killed,
    #[error("idle past the session's wait_timeout")]
    IdleTimeout,
}
