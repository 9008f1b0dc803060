//! Connection options for the `mysql_async` client, always over TCP to 127.0.0.1; over TLS
//! (verified against the cluster's CA) to the servers of a TLS-only cluster.

use std::path::{Path, PathBuf};
use std::sync::Mutex;

use mysql_async::{Conn, Opts, OptsBuilder, SslOpts};

use crate::error::Result;

/// User name and password of one database account.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Credentials {
    pub user: String,
    pub password: String,
}

impl Credentials {
    pub fn new(user: &str, password: &str) -> Self {
        Credentials {
            user: user.to_string(),
            password: password.to_string(),
        }
    }
}

/// Ports of TLS-only servers this process knows of (`cluster.sh up --tls-only`), with the CA
/// their certificates chain to.
static TLS_ONLY_PORTS: Mutex<Vec<(u16, PathBuf)>> = Mutex::new(Vec::new());

/// Connections to `port` use TLS verified against `ca` from now on.
pub fn register_tls_only_server(port: u16, ca: &Path) {
    if let Ok(mut ports) = TLS_ONLY_PORTS.lock() {
        ports.retain(|(p, _)| *p != port);
        ports.push((port, ca.to_path_buf()));
    }
}

fn tls_ca_for(port: u16) -> Option<PathBuf> {
    let ports = TLS_ONLY_PORTS.lock().ok()?;
    ports
        .iter()
        .find(|(p, _)| *p == port)
        .map(|(_, ca)| ca.clone())
}

/// Options for a TCP connection to `127.0.0.1:port` (TLS if the port is a TLS-only
/// server's, see [`register_tls_only_server`]).
///
/// `prefer_socket` is off: by default `mysql_async` asks the server for `@@socket` and
/// silently reconnects over that Unix socket, which would bypass the proxy under test.
pub fn client_opts(port: u16, creds: &Credentials, db: Option<&str>) -> OptsBuilder {
    OptsBuilder::default()
        .ip_or_hostname("127.0.0.1")
        .tcp_port(port)
        .prefer_socket(false)
        .user(Some(creds.user.clone()))
        .pass(Some(creds.password.clone()))
        .db_name(db.map(str::to_string))
        .ssl_opts(tls_ca_for(port).map(|ca| {
            SslOpts::default()
                .with_disable_built_in_roots(true)
                .with_root_certs(vec![ca.into()])
        }))
}

/// Open a connection with [`client_opts`].
pub async fn connect(port: u16, creds: &Credentials, db: Option<&str>) -> Result<Conn> {
    let opts: Opts = client_opts(port, creds, db).into();
    Ok(Conn::new(opts).await?)
}
