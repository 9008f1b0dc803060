use thiserror::Error;

/// Something a peer sent that does not follow the protocol.
#[derive(Debug, Error, Clone, PartialEq, Eq)]
pub enum ProtocolError {
    #[error("packet truncated: {0}")]
    Truncated(&'static str),
    #[error("malformed packet: {0}")]
    Malformed(&'static str),
    #[error("packet sequence id {got} where {expected} was expected")]
    Sequence { expected: u8, got: u8 },
    #[error("packet of {size} bytes is larger than max_allowed_packet ({max} bytes)")]
    TooLarge { size: usize, max: usize },
    #[error("unexpected packet: {0}")]
    Unexpected(&'static str),
}
