//! A kept-open `mysql_async` connection to one backend, reconnected on
//! demand, plus plain-words descriptions of client errors.
//!
//! Connecting is single-flight: if a connect attempt outlives the caller's
//! timeout (a server that accepts TCP but never greets, e.g. SIGSTOPped),
//! the same attempt is resumed by the next call instead of starting another
//! one, so a hung server never piles up sockets.

use std::future::Future;
use std::io::ErrorKind;
use std::pin::Pin;

use mysql_async::{Conn, OptsBuilder, SslOpts};

use crate::address::HostPort;
use crate::settings::MonitorTls;

type ConnectFuture = Pin<Box<dyn Future<Output = mysql_async::Result<Conn>> + Send>>;

/// Why a connection could not be used.
#[derive(Debug, thiserror::Error)]
pub(crate) enum ConnError {
    #[error("{0}")]
    BadAddress(String),
    #[error("{0}")]
    Unexpected(String),
    /// A login without TLS was refused, and the same login over TLS succeeds: the server
    /// takes only TLS connections (MariaDB's `require_secure_transport` answers a plain-text
    /// login with a bare "Access denied").
    #[error("{0}")]
    NeedsTls(String),
    #[error(transparent)]
    Sql(#[from] mysql_async::Error),
}

impl ConnError {
    /// The connection broke (closed, reset): a kept connection may simply be older than a
    /// server restart, so one fresh attempt is worth making.
    pub fn is_disconnect(&self) -> bool {
        use mysql_async::{DriverError, Error, IoError};
        match self {
            Self::Sql(Error::Io(IoError::Io(io))) => matches!(
                io.kind(),
                ErrorKind::ConnectionReset
                    | ErrorKind::ConnectionAborted
                    | ErrorKind::BrokenPipe
                    | ErrorKind::UnexpectedEof
            ),
            Self::Sql(Error::Driver(DriverError::ConnectionClosed)) => true,
            _ => false,
        }
    }

    /// Short, human wording for a state reason.
    pub fn describe(&self) -> String {
        match self {
            Self::BadAddress(problem) | Self::Unexpected(problem) => problem.clone(),
            Self::NeedsTls(refusal) => format!(
                "{refusal} without TLS, but the same login over TLS succeeds: the server \
                 requires secure transport; enable backend_tls"
            ),
            Self::Sql(err) => describe_sql_error(err),
        }
    }
}

/// `ER_SECURE_TRANSPORT_REQUIRED`: MySQL's answer to a plain-text login under
/// `require_secure_transport`.
const ER_SECURE_TRANSPORT_REQUIRED: u16 = 3159;
/// `ER_ACCESS_DENIED_ERROR`: MariaDB's answer to the same.
const ER_ACCESS_DENIED: u16 = 1045;

/// Describes a client error the way an operator wants to read it.
pub(crate) fn describe_sql_error(err: &mysql_async::Error) -> String {
    use mysql_async::{DriverError, Error, IoError};
    match err {
        // The server takes only TLS connections (require_secure_transport).
        Error::Server(e) if e.code == ER_SECURE_TRANSPORT_REQUIRED => format!(
            "{} (error {}); the monitor connects without TLS: enable backend_tls",
            e.message, e.code
        ),
        Error::Server(e) => format!("{} (error {})", e.message, e.code),
        Error::Driver(DriverError::NoClientSslFlagFromServer) => {
            "backend_tls is enabled but the server does not offer TLS".to_string()
        }
        Error::Io(IoError::Tls(e)) => format!("TLS: {e}"),
        Error::Io(IoError::Io(io)) => match io.kind() {
            ErrorKind::ConnectionRefused => "connection refused".to_string(),
            ErrorKind::ConnectionReset => "connection reset by server".to_string(),
            ErrorKind::ConnectionAborted | ErrorKind::BrokenPipe | ErrorKind::UnexpectedEof => {
                "connection closed by server".to_string()
            }
            _ => io.to_string(),
        },
        Error::Driver(DriverError::ConnectionClosed) => "connection closed by server".to_string(),
        other => other.to_string(),
    }
}

/// The credentials (and TLS settings) a connection was opened with.
#[derive(Clone, PartialEq, Eq)]
pub(crate) struct Credentials {
    pub user: String,
    pub password: String,
    pub tls: Option<MonitorTls>,
}

/// mysql_async's TLS options for `tls`: only the configured CA is trusted (no built-in roots,
/// as for rwproxy's own backend connections), and the certificate is checked against the
/// host the connection is made to, so each backend against its own name.
pub(crate) fn ssl_opts(tls: &MonitorTls) -> SslOpts {
    if !tls.verify {
        // mysql_async refuses an empty trust store even when it checks nothing, so the
        // built-in roots stay in (unused: any certificate is accepted).
        return SslOpts::default().with_danger_accept_invalid_certs(true);
    }
    let mut opts = SslOpts::default().with_disable_built_in_roots(true);
    if let Some(ca) = &tls.ca {
        opts = opts.with_root_certs(vec![ca.clone().into()]);
    }
    opts
}

pub(crate) struct KeptConnection {
    target: Result<HostPort, String>,
    conn: Option<Conn>,
    pending: Option<ConnectFuture>,
    credentials: Option<Credentials>,
    /// Bumped on every new connection so callers can reset per-connection
    /// knowledge (server flavor, created tables).
    generation: u64,
}

impl KeptConnection {
    pub fn new(address: &str) -> Self {
        Self {
            target: HostPort::parse(address),
            conn: None,
            pending: None,
            credentials: None,
            generation: 0,
        }
    }

    /// The open connection, connecting (or resuming a connect) first if
    /// needed. Changed credentials drop the old connection.
    ///
    /// Cancel-safe: if this future is dropped while connecting, the attempt
    /// is kept and resumed by the next call. Also returns the connection's
    /// generation, which changes on every reconnect, so callers can reset
    /// what they learnt about the previous connection.
    pub async fn get(&mut self, credentials: &Credentials) -> Result<(&mut Conn, u64), ConnError> {
        if self.credentials.as_ref() != Some(credentials) {
            self.discard();
            self.credentials = Some(credentials.clone());
        }
        if self.conn.is_none() {
            let target = self.target.clone().map_err(ConnError::BadAddress)?;
            let pending = self.pending.get_or_insert_with(|| {
                let opts = OptsBuilder::default()
                    .ip_or_hostname(target.host.clone())
                    .tcp_port(target.port)
                    .user(Some(credentials.user.clone()))
                    .pass(Some(credentials.password.clone()))
                    .prefer_socket(false)
                    .stmt_cache_size(0)
                    .ssl_opts(credentials.tls.as_ref().map(ssl_opts));
                Box::pin(Conn::new(opts))
            });
            let result = pending.as_mut().await;
            self.pending = None;
            let conn = match result {
                Ok(conn) => conn,
                Err(mysql_async::Error::Server(e))
                    if e.code == ER_ACCESS_DENIED && credentials.tls.is_none() =>
                {
                    let refusal = format!("{} (error {})", e.message, e.code);
                    return Err(if Self::login_over_tls_works(&target, credentials).await {
                        ConnError::NeedsTls(refusal)
                    } else {
                        ConnError::Sql(mysql_async::Error::Server(e))
                    });
                }
                Err(e) => return Err(e.into()),
            };
            self.conn = Some(conn);
            self.generation = self.generation.wrapping_add(1);
        }
        let generation = self.generation;
        self.conn
            .as_mut()
            .map(|conn| (conn, generation))
            .ok_or_else(|| ConnError::Unexpected("connection vanished".to_string()))
    }

    /// Only after a refused plain-text login, to say why: whether the same login over TLS
    /// (certificate not checked; the connection is closed at once) succeeds.
    async fn login_over_tls_works(target: &HostPort, credentials: &Credentials) -> bool {
        let any_certificate = MonitorTls {
            ca: None,
            verify: false,
        };
        let opts = OptsBuilder::default()
            .ip_or_hostname(target.host.clone())
            .tcp_port(target.port)
            .user(Some(credentials.user.clone()))
            .pass(Some(credentials.password.clone()))
            .prefer_socket(false)
            .stmt_cache_size(0)
            .ssl_opts(ssl_opts(&any_certificate));
        match Conn::new(opts).await {
            Ok(conn) => {
                let _ = conn.disconnect().await;
                true
            }
            Err(_) => false,
        }
    }

    /// Whether a connection from an earlier call is open (it may have died since).
    pub fn is_open(&self) -> bool {
        self.conn.is_some()
    }

    /// Forgets the connection and any connect attempt in flight.
    pub fn discard(&mut self) {
        self.conn = None;
        self.pending = None;
    }

    /// Drops the open connection but keeps a connect attempt in flight.
    pub fn drop_connection(&mut self) {
        self.conn = None;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn bad_address_is_reported_without_io() {
        let mut kept = KeptConnection::new("no-port-here");
        let creds = Credentials {
            user: "u".into(),
            password: "p".into(),
            tls: None,
        };
        let err = kept.get(&creds).await.err().unwrap();
        assert!(err.describe().contains("no port"), "{}", err.describe());
        assert!(kept.conn.is_none() && kept.pending.is_none());
    }

    #[tokio::test]
    async fn refused_connection_is_described_plainly() {
        // Bind then drop a listener to get a port that refuses connections.
        let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        let port = listener.local_addr().unwrap().port();
        drop(listener);
        let mut kept = KeptConnection::new(&format!("127.0.0.1:{port}"));
        let creds = Credentials {
            user: "u".into(),
            password: "p".into(),
            tls: None,
        };
        let err = kept.get(&creds).await.err().unwrap();
        assert_eq!(err.describe(), "connection refused");
    }
}
