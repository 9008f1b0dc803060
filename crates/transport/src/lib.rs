//! Async packet I/O: a buffered MySQL packet stream over plain TCP or TLS, used both towards
//! clients (rwproxy as a server) and towards backends (rwproxy as a client).

pub mod budget;
mod compress;
mod packet_stream;
mod prefixed;
pub mod proxy_header;
mod stream;
pub mod tls;

pub use budget::PacketBudget;
pub use compress::Compressor;
pub use packet_stream::{PacketStream, TransportError};
pub use prefixed::PrefixedIo;
pub use stream::MaybeTls;
