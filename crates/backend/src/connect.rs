use std::sync::Arc;
use std::time::Duration;

use bytes::BytesMut;
use rwproxy_protocol::handshake::{self, ClientHandshake, Greeting};
use rwproxy_protocol::{auth, reply, CapabilityFlags};
use rwproxy_transport::{MaybeTls, PacketStream, TransportError};
use tokio::net::TcpStream;
use tokio::time::timeout;

use crate::BackendError;

/// What rwproxy proves to a backend on behalf of a client.
#[derive(Clone)]
pub enum BackendSecret {
    /// The password itself (from the YAML, or received from the client over TLS).
    Password(String),
    /// `SHA1(password)`, recovered from a client's `mysql_native_password` scramble: enough for
    /// `mysql_native_password` backends, never stored.
    NativeStage1([u8; 20]),
}

impl std::fmt::Debug for BackendSecret {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("BackendSecret(***)")
    }
}

/// TLS towards the backends. Each backend's certificate is checked against that backend's own
/// host (the host part of its address).
#[derive(Clone, Debug)]
pub struct BackendTls {
    pub config: Arc<rustls::ClientConfig>,
}

/// The TLS server name of a backend address (`host:port`, `[v6]:port` or a bare host).
pub fn tls_server_name(
    address: &str,
) -> Result<rustls::pki_types::ServerName<'static>, rustls::pki_types::InvalidDnsNameError> {
    let host = match address.rsplit_once(':') {
        Some((h, port)) if !port.is_empty() && port.bytes().all(|b| b.is_ascii_digit()) => h,
        _ => address,
    };
    let host = host.trim_start_matches('[').trim_end_matches(']');
    rustls::pki_types::ServerName::try_from(host.to_string())
}

/// Everything needed to open one backend connection for one client session.
#[derive(Debug)]
pub struct ConnectParams<'a> {
    pub name: &'a str,
    pub address: &'a str,
    pub connect_timeout: Duration,
    /// Limit for the rest of the login (greeting, TLS, authentication).
    pub login_timeout: Duration,
    pub user: &'a str,
    pub secret: &'a BackendSecret,
    pub database: Option<&'a str>,
    /// The client's capabilities: those that shape responses are asked of the backend too, so
    /// its packets can be relayed to the client unchanged.
    pub client_capabilities: CapabilityFlags,
    pub collation: u8,
    pub max_packet: usize,
    pub attributes: &'a [(String, String)],
    /// MariaDB extended capabilities the client uses (asked of MariaDB backends).
    pub mariadb_ext: u32,
    pub tls: Option<&'a BackendTls>,
}

/// Capabilities that change what responses look like; a backend connection mirrors the client's.
pub const SHAPING_CAPABILITIES: CapabilityFlags = CapabilityFlags::from_bits_retain(
    CapabilityFlags::CLIENT_FOUND_ROWS.bits()
        | CapabilityFlags::CLIENT_LONG_FLAG.bits()
        | CapabilityFlags::CLIENT_NO_SCHEMA.bits()
        | CapabilityFlags::CLIENT_ODBC.bits()
        | CapabilityFlags::CLIENT_CAN_HANDLE_EXPIRED_PASSWORDS.bits()
        | CapabilityFlags::CLIENT_LOCAL_FILES.bits()
        | CapabilityFlags::CLIENT_IGNORE_SPACE.bits()
        | CapabilityFlags::CLIENT_INTERACTIVE.bits()
        | CapabilityFlags::CLIENT_MULTI_STATEMENTS.bits()
        | CapabilityFlags::CLIENT_MULTI_RESULTS.bits()
        | CapabilityFlags::CLIENT_PS_MULTI_RESULTS.bits()
        | CapabilityFlags::CLIENT_DEPRECATE_EOF.bits(),
);

/// Capabilities rwproxy always wants from a backend.
const BASE_CAPABILITIES: CapabilityFlags = CapabilityFlags::from_bits_retain(
    CapabilityFlags::CLIENT_LONG_PASSWORD.bits()
        | CapabilityFlags::CLIENT_PROTOCOL_41.bits()
        | CapabilityFlags::CLIENT_TRANSACTIONS.bits()
        | CapabilityFlags::CLIENT_SECURE_CONNECTION.bits()
        | CapabilityFlags::CLIENT_PLUGIN_AUTH.bits()
        | CapabilityFlags::CLIENT_PLUGIN_AUTH_LENENC_CLIENT_DATA.bits()
        | CapabilityFlags::CLIENT_CONNECT_ATTRS.bits()
        | CapabilityFlags::CLIENT_SESSION_TRACK.bits(),
);

/// An authenticated connection to a backend.
#[derive(Debug)]
pub struct BackendConn {
    name: Arc<str>,
    stream: PacketStream,
    /// The server's greeting (its nonce cleared): what rwproxy shows clients as the server.
    greeting: Greeting,
    capabilities: CapabilityFlags,
    mariadb: bool,
    /// Commands sent without waiting whose answers are still to be read.
    pub(crate) deferred: u32,
    /// The nonce of the login (or of its last auth switch): `COM_CHANGE_USER` answers with it.
    /// Not a secret (the server sent it in the clear).
    nonce: Vec<u8>,
    /// The connection runs over TLS (cleartext answers are allowed).
    tls: bool,
}

impl BackendConn {
    pub fn name(&self) -> &str {
        &self.name
    }

    pub fn name_arc(&self) -> Arc<str> {
        self.name.clone()
    }

    /// The server's own connection id (what `KILL` on that server needs).
    pub fn thread_id(&self) -> u32 {
        self.greeting.connection_id
    }

    pub fn server_version(&self) -> &str {
        &self.greeting.server_version
    }

    /// The greeting this connection's server sent (nonce cleared).
    pub fn greeting(&self) -> &Greeting {
        &self.greeting
    }

    pub fn is_mariadb(&self) -> bool {
        self.mariadb
    }

    /// Negotiated capabilities.
    pub fn capabilities(&self) -> CapabilityFlags {
        self.capabilities
    }

    pub fn deprecate_eof(&self) -> bool {
        self.capabilities
            .contains(CapabilityFlags::CLIENT_DEPRECATE_EOF)
    }

    pub fn stream(&mut self) -> &mut PacketStream {
        &mut self.stream
    }

    pub(crate) fn lost(&self, source: TransportError) -> BackendError {
        BackendError::Lost {
            backend: self.name.to_string(),
            source,
        }
    }

    /// Says goodbye (`COM_QUIT`) and closes; errors are of no interest by then.
    pub async fn quit(mut self) {
        let mut seq = 0u8;
        let _ = self.stream.write_packet(&mut seq, &[0x01]).await;
    }

    /// Connects and logs in.
    pub async fn connect(p: &ConnectParams<'_>) -> Result<Self, BackendError> {
        let tcp = match timeout(p.connect_timeout, TcpStream::connect(p.address)).await {
            Ok(Ok(tcp)) => tcp,
            Ok(Err(e)) => {
                return Err(BackendError::Connect {
                    backend: p.name.to_string(),
                    address: p.address.to_string(),
                    reason: e.to_string(),
                })
            }
            Err(_) => {
                return Err(BackendError::Timeout {
                    backend: p.name.to_string(),
                    phase: "connect",
                    millis: p.connect_timeout.as_millis() as u64,
                })
            }
        };
        let _ = tcp.set_nodelay(true);
        let stream = PacketStream::new(MaybeTls::Plain(tcp), p.max_packet.max(16 << 20));
        match timeout(p.login_timeout, Self::login(p, stream)).await {
            Ok(result) => result,
            Err(_) => Err(BackendError::Timeout {
                backend: p.name.to_string(),
                phase: "login",
                millis: p.login_timeout.as_millis() as u64,
            }),
        }
    }

    async fn login(p: &ConnectParams<'_>, mut stream: PacketStream) -> Result<Self, BackendError> {
        let name = p.name.to_string();
        let lost = |source| BackendError::Lost {
            backend: name.clone(),
            source,
        };
        let protocol = |what: String| BackendError::Protocol {
            backend: p.name.to_string(),
            what,
        };
        let (_, greeting) = stream.read_packet().await.map_err(lost)?;
        if reply::is_err(&greeting) {
            let e = reply::parse_err(&greeting).map_err(|e| protocol(e.to_string()))?;
            return Err(BackendError::Server {
                backend: name.clone(),
                code: e.code,
                state: e.sql_state,
                message: String::from_utf8_lossy(e.message).into_owned(),
            });
        }
        let mut g = handshake::parse_greeting(&greeting).map_err(|e| protocol(e.to_string()))?;
        let mariadb = g.server_version.contains("MariaDB");
        let mut caps =
            (BASE_CAPABILITIES | (p.client_capabilities & SHAPING_CAPABILITIES)) & g.capabilities;
        if p.database.is_some() {
            caps |= CapabilityFlags::CLIENT_CONNECT_WITH_DB & g.capabilities;
        }
        let missing = (p.client_capabilities & SHAPING_CAPABILITIES) - g.capabilities;
        if !missing.is_empty() {
            return Err(BackendError::Unsupported {
                backend: name.clone(),
                what: format!("server lacks capabilities the client uses: {missing:?}"),
            });
        }
        let mut seq = 1u8;
        let mut tls_on = false;
        if let Some(tls) = p.tls {
            if !g.capabilities.contains(CapabilityFlags::CLIENT_SSL) {
                return Err(BackendError::Unsupported {
                    backend: name.clone(),
                    what: "backend_tls is enabled but the server does not offer TLS".into(),
                });
            }
            caps |= CapabilityFlags::CLIENT_SSL;
            let mut req = BytesMut::new();
            handshake::encode_ssl_request(&mut req, caps, p.max_packet as u32, p.collation);
            stream.write_packet(&mut seq, &req).await.map_err(lost)?;
            let server_name =
                tls_server_name(p.address).map_err(|e| BackendError::Unsupported {
                    backend: name.clone(),
                    what: format!("'{}' is not a valid TLS server name: {e}", p.address),
                })?;
            stream = stream
                .upgrade_client(tls.config.clone(), server_name)
                .await
                .map_err(lost)?;
            tls_on = true;
        }
        let version = parse_version(&g.server_version);
        // MariaDB reads extended capabilities only from clients without CLIENT_LONG_PASSWORD.
        let mariadb_ext = p.mariadb_ext & g.mariadb_ext;
        if !g
            .capabilities
            .contains(CapabilityFlags::CLIENT_LONG_PASSWORD)
        {
            caps.remove(CapabilityFlags::CLIENT_LONG_PASSWORD);
        }
        let (plugin, token) = auth_response(&g.auth_plugin, &g.nonce, p.secret, &name, false)?;
        let response = ClientHandshake {
            capabilities: caps,
            max_packet: p.max_packet as u32,
            collation: p.collation,
            user: p.user.to_string(),
            auth_response: token,
            database: p.database.map(str::to_string),
            auth_plugin: Some(plugin.to_string()),
            attributes: p.attributes.to_vec(),
            mariadb_ext,
        };
        let mut out = BytesMut::new();
        handshake::encode_client_handshake(&mut out, &response, version);
        stream.write_packet(&mut seq, &out).await.map_err(lost)?;

        let switched = finish_auth(&mut stream, plugin, p.secret, tls_on, &name).await?;
        let nonce = switched.unwrap_or_else(|| std::mem::take(&mut g.nonce));
        g.nonce.clear();
        Ok(Self {
            name: Arc::from(p.name),
            stream,
            greeting: g,
            capabilities: caps,
            mariadb,
            deferred: 0,
            nonce,
            tls: tls_on,
        })
    }

    /// Logs this connection in as another account (`COM_CHANGE_USER`): the server resets the
    /// session as for a new login (same thread), with `database` selected (none when `None`)
    /// and `collation` for the connection. The connection is unusable after an error.
    pub async fn change_user(
        &mut self,
        user: &str,
        secret: &BackendSecret,
        database: Option<&str>,
        collation: u8,
        attributes: &[(String, String)],
    ) -> Result<(), BackendError> {
        self.settle().await?;
        let name = self.name.to_string();
        let (plugin, token) = auth_response(
            &self.greeting.auth_plugin,
            &self.nonce,
            secret,
            &name,
            false,
        )?;
        let request = handshake::ChangeUser {
            user: user.to_string(),
            auth_response: token,
            database: database.map(str::to_string),
            collation: Some(u16::from(collation)),
            auth_plugin: Some(plugin.to_string()),
        };
        let mut out = BytesMut::new();
        let attributes = self
            .capabilities
            .contains(CapabilityFlags::CLIENT_CONNECT_ATTRS)
            .then_some(attributes);
        handshake::encode_change_user(&mut out, &request, attributes);
        let mut seq = 0u8;
        self.stream
            .write_packet(&mut seq, &out)
            .await
            .map_err(|source| BackendError::Lost {
                backend: name.clone(),
                source,
            })?;
        if let Some(nonce) = finish_auth(&mut self.stream, plugin, secret, self.tls, &name).await? {
            self.nonce = nonce;
        }
        Ok(())
    }
}

/// Answers the server's side of an authentication after the first answer (made with
/// `plugin`) was sent, until its OK. Returns the nonce of an auth switch, if there was one.
async fn finish_auth(
    stream: &mut PacketStream,
    plugin: &str,
    secret: &BackendSecret,
    tls_on: bool,
    name: &str,
) -> Result<Option<Vec<u8>>, BackendError> {
    let lost = |source| BackendError::Lost {
        backend: name.to_string(),
        source,
    };
    let protocol = |what: String| BackendError::Protocol {
        backend: name.to_string(),
        what,
    };
    let mut switched_nonce = None;
    let mut seq;
    let mut current_plugin = plugin.to_string();
    loop {
        let (rseq, pkt) = stream.read_packet().await.map_err(lost)?;
        seq = rseq.wrapping_add(1);
        match pkt.first() {
            Some(0x00) => return Ok(switched_nonce),
            Some(0xFF) => {
                let e = reply::parse_err(&pkt).map_err(|e| protocol(e.to_string()))?;
                return Err(BackendError::Auth {
                    backend: name.to_string(),
                    code: e.code,
                    state: e.sql_state,
                    message: String::from_utf8_lossy(e.message).into_owned(),
                });
            }
            Some(0xFE) => {
                let (new_plugin, data) =
                    handshake::parse_auth_switch(&pkt).map_err(|e| protocol(e.to_string()))?;
                let token = if new_plugin == auth::CLEAR_PASSWORD {
                    if !tls_on {
                        return Err(BackendError::Unsupported {
                            backend: name.to_string(),
                            what: "server asked for a cleartext password over an unencrypted connection".into(),
                        });
                    }
                    match secret {
                        BackendSecret::Password(pw) => {
                            let mut v = pw.as_bytes().to_vec();
                            v.push(0);
                            v
                        }
                        BackendSecret::NativeStage1(_) => return Err(BackendError::Unsupported {
                            backend: name.to_string(),
                            what:
                                "cleartext authentication needs the password in the configuration"
                                    .into(),
                        }),
                    }
                } else {
                    auth_response(&new_plugin, &data, secret, name, true)?.1
                };
                current_plugin = new_plugin;
                switched_nonce = Some(data.to_vec());
                stream.write_packet(&mut seq, &token).await.map_err(lost)?;
            }
            Some(0x01) if current_plugin == auth::CACHING_SHA2_PASSWORD => match pkt.get(1) {
                Some(&auth::SHA2_FAST_AUTH_OK) => continue,
                Some(&auth::SHA2_PERFORM_FULL_AUTH) => {
                    let BackendSecret::Password(pw) = secret else {
                        return Err(BackendError::Unsupported {
                            backend: name.to_string(),
                            what: "caching_sha2_password full authentication needs the password"
                                .into(),
                        });
                    };
                    if !tls_on {
                        return Err(BackendError::Unsupported {
                            backend: name.to_string(),
                            what: "caching_sha2_password full authentication needs TLS to the backend \
                                   (enable backend_tls) or a cached login on the server"
                                .into(),
                        });
                    }
                    let mut v = pw.as_bytes().to_vec();
                    v.push(0);
                    stream.write_packet(&mut seq, &v).await.map_err(lost)?;
                }
                _ => return Err(protocol("unknown caching_sha2_password message".into())),
            },
            _ => {
                return Err(protocol(format!(
                    "unexpected packet during login (plugin {current_plugin})"
                )))
            }
        }
    }
}

/// Reads only a server's greeting, without logging in (the connection is then closed: the
/// server counts it as an aborted connect, so this is for when no credentials are known).
pub async fn read_greeting(
    name: &str,
    address: &str,
    connect_timeout: Duration,
    login_timeout: Duration,
) -> Result<Greeting, BackendError> {
    let tcp = match timeout(connect_timeout, TcpStream::connect(address)).await {
        Ok(Ok(tcp)) => tcp,
        Ok(Err(e)) => {
            return Err(BackendError::Connect {
                backend: name.to_string(),
                address: address.to_string(),
                reason: e.to_string(),
            })
        }
        Err(_) => {
            return Err(BackendError::Timeout {
                backend: name.to_string(),
                phase: "connect",
                millis: connect_timeout.as_millis() as u64,
            })
        }
    };
    let mut stream = PacketStream::new(MaybeTls::Plain(tcp), 1 << 16);
    let (_, payload) = match timeout(login_timeout, stream.read_packet()).await {
        Ok(r) => r.map_err(|source| BackendError::Lost {
            backend: name.to_string(),
            source,
        })?,
        Err(_) => {
            return Err(BackendError::Timeout {
                backend: name.to_string(),
                phase: "greeting",
                millis: login_timeout.as_millis() as u64,
            })
        }
    };
    let mut g = handshake::parse_greeting(&payload).map_err(|e| BackendError::Protocol {
        backend: name.to_string(),
        what: e.to_string(),
    })?;
    g.nonce.clear();
    Ok(g)
}

/// The plugin and token to answer with. For the first answer any plugin the server names is
/// answered with one we can compute (the server switches us if the account needs another);
/// for an auth switch (`switched`) the named plugin must be served.
fn auth_response(
    plugin: &str,
    nonce: &[u8],
    secret: &BackendSecret,
    backend: &str,
    switched: bool,
) -> Result<(&'static str, Vec<u8>), BackendError> {
    match secret {
        BackendSecret::Password(pw) if plugin == auth::CACHING_SHA2_PASSWORD => {
            Ok((auth::CACHING_SHA2_PASSWORD, auth::sha2_scramble(nonce, pw.as_bytes())))
        }
        BackendSecret::Password(pw) if plugin == auth::NATIVE_PASSWORD || !switched => {
            Ok((auth::NATIVE_PASSWORD, auth::native_scramble(nonce, pw.as_bytes())))
        }
        BackendSecret::NativeStage1(s1) if plugin == auth::NATIVE_PASSWORD || !switched => {
            Ok((auth::NATIVE_PASSWORD, auth::native_scramble_from_stage1(nonce, s1).to_vec()))
        }
        _ => Err(BackendError::Unsupported {
            backend: backend.to_string(),
            what: format!(
                "the account uses authentication plugin '{plugin}', which rwproxy cannot answer with \
                 the credentials it has (list the user with its password in the YAML)"
            ),
        }),
    }
}

fn parse_version(v: &str) -> (u16, u16, u16) {
    // MariaDB may prefix "5.5.5-"; the real version follows.
    let v = v.strip_prefix("5.5.5-").unwrap_or(v);
    let mut parts = v
        .split(|c: char| !c.is_ascii_digit())
        .filter(|s| !s.is_empty());
    let mut next = || parts.next().and_then(|s| s.parse().ok()).unwrap_or(0);
    (next(), next(), next())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tls_server_names_are_each_backends_host() {
        let name = |a: &str| tls_server_name(a).map(|n| n.to_str().into_owned());
        assert_eq!(name("db2.example.com:3306").unwrap(), "db2.example.com");
        assert_eq!(name("10.0.0.7:3306").unwrap(), "10.0.0.7");
        assert_eq!(name("[::1]:3306").unwrap(), "::1");
        assert_eq!(name("db3").unwrap(), "db3");
        assert!(name("bad host:3306").is_err());
    }

    #[test]
    fn versions() {
        assert_eq!(parse_version("10.11.6-MariaDB-0+deb12u1"), (10, 11, 6));
        assert_eq!(parse_version("5.5.5-10.4.3-MariaDB"), (10, 4, 3));
        assert_eq!(parse_version("8.0.36"), (8, 0, 36));
        assert_eq!(parse_version("junk"), (0, 0, 0));
    }

    #[test]
    fn native_switch_with_stage1_only() {
        let s = BackendSecret::NativeStage1(auth::native_stage1(b"pw"));
        let nonce = b"01234567890123456789";
        let (p, t) = auth_response(auth::NATIVE_PASSWORD, nonce, &s, "db1", true).unwrap();
        assert_eq!(p, auth::NATIVE_PASSWORD);
        assert_eq!(t, auth::native_scramble(nonce, b"pw"));
        // first answer to a caching_sha2 server: native, and let the server switch us
        assert_eq!(
            auth_response(auth::CACHING_SHA2_PASSWORD, nonce, &s, "db1", false)
                .unwrap()
                .0,
            auth::NATIVE_PASSWORD
        );
        // a switch to caching_sha2 cannot be served from SHA1(password)
        assert!(auth_response(auth::CACHING_SHA2_PASSWORD, nonce, &s, "db1", true).is_err());
        let pw = BackendSecret::Password("pw".into());
        assert_eq!(
            auth_response(auth::CACHING_SHA2_PASSWORD, nonce, &pw, "db1", true)
                .unwrap()
                .1,
            auth::sha2_scramble(nonce, b"pw")
        );
    }
}
