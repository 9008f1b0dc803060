//! Connection options for the `mysql_async` client, always over TCP to 127.0.0.1.

use mysql_async::{Conn, Opts, OptsBuilder};

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

/// Options for a TCP connection to `127.0.0.1:port`.
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
}

/// Open a connection with [`client_opts`].
pub async fn connect(port: u16, creds: &Credentials, db: Option<&str>) -> Result<Conn> {
    let opts: Opts = client_opts(port, creds, db).into();
    Ok(Conn::new(opts).await?)
}
