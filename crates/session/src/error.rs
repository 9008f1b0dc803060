use rwproxy_protocol::reply::codes;
use rwproxy_transport::TransportError;
use thiserror::Error;

use crate::observer::Rejection;

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

impl ClientError {
    /// What a login that ended with this error counts as (`rwproxy_client_rejections_total`).
    pub fn rejection(&self) -> Rejection {
        match self {
            ClientError::Refused { code, .. } => match *code {
                c if c == codes::SECURE_TRANSPORT_REQUIRED.0 => Rejection::TlsRequired,
                c if c == codes::TOO_MANY_CONNECTIONS.0 => Rejection::TooManyConnections,
                c if c == codes::HOST_IS_BLOCKED.0 => Rejection::HostBlocked,
                c if c == codes::SERVER_SHUTDOWN.0 => Rejection::ShuttingDown,
                c if [
                    codes::BAD_HANDSHAKE.0,
                    codes::PACKET_TOO_LARGE.0,
                    codes::PACKETS_OUT_OF_ORDER.0,
                    codes::MALFORMED_PACKET.0,
                ]
                .contains(&c) =>
                {
                    Rejection::ProtocolError
                }
                _ => Rejection::AuthFailed,
            },
            ClientError::Transport(TransportError::Tls(_)) => Rejection::TlsError,
            ClientError::Transport(
                TransportError::Protocol(_) | TransportError::BudgetExhausted { .. },
            ) => Rejection::ProtocolError,
            ClientError::Transport(
                TransportError::Closed | TransportError::ClosedMidPacket | TransportError::Io(_),
            ) => Rejection::ClientClosed,
            ClientError::HandshakeTimeout(_) => Rejection::HandshakeTimeout,
            ClientError::Killed | ClientError::IdleTimeout => Rejection::ClientClosed,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn refused(code: u16) -> ClientError {
        ClientError::Refused {
            code,
            message: String::new(),
        }
    }

    #[test]
    fn each_way_a_login_ends_counts_under_its_reason() {
        assert_eq!(refused(1045).rejection(), Rejection::AuthFailed);
        assert_eq!(refused(1044).rejection(), Rejection::AuthFailed);
        assert_eq!(refused(3159).rejection(), Rejection::TlsRequired);
        assert_eq!(refused(1040).rejection(), Rejection::TooManyConnections);
        assert_eq!(refused(1129).rejection(), Rejection::HostBlocked);
        assert_eq!(refused(1053).rejection(), Rejection::ShuttingDown);
        assert_eq!(refused(1043).rejection(), Rejection::ProtocolError);
        assert_eq!(refused(1156).rejection(), Rejection::ProtocolError);
        assert_eq!(
            ClientError::Transport(TransportError::Tls("bad record".into())).rejection(),
            Rejection::TlsError
        );
        assert_eq!(
            ClientError::Transport(TransportError::Closed).rejection(),
            Rejection::ClientClosed
        );
        assert_eq!(
            ClientError::HandshakeTimeout(std::time::Duration::from_secs(5)).rejection(),
            Rejection::HandshakeTimeout
        );
    }
}
