//! The `admin` section: the HTTP admin and metrics endpoint.

use std::net::SocketAddr;

use crate::model::AdminConfig;
use crate::reader::{MapReader, Problems};
use crate::secret::Secret;

const ADMIN_KEYS: &[&str] = &["listen", "token"];

pub(crate) const DEFAULT_ADMIN_LISTEN: SocketAddr =
    SocketAddr::new(std::net::IpAddr::V4(std::net::Ipv4Addr::LOCALHOST), 9033);

/// Builds `admin`; `client_listen` is the top-level `listen` when it was
/// valid, which the admin address must differ from.
pub(crate) fn build_admin(
    root: &MapReader,
    client_listen: Option<SocketAddr>,
    problems: &mut Problems,
) -> AdminConfig {
    let admin = MapReader::section(
        root.get("admin"),
        &root.path_of("admin"),
        ADMIN_KEYS,
        problems,
    );
    let listen = if admin.has("listen") {
        admin.socket_addr("listen", problems)
    } else {
        Some(DEFAULT_ADMIN_LISTEN)
    };
    let token_text = admin.string("token", problems);
    // A token that was written but could not be read is already reported.
    let token_unreadable = admin.has("token") && token_text.is_none();
    // An empty token (for example `${ADMIN_TOKEN:-}`) means no token.
    let token = token_text.filter(|t| !t.is_empty()).map(Secret::new);
    if let (Some(admin_listen), Some(client_listen)) = (listen, client_listen) {
        if admin_listen == client_listen && admin_listen.port() != 0 {
            problems.add(
                &admin.path_of("listen"),
                admin.get("listen").or(admin.node()),
                format!("must differ from listen ({client_listen})"),
            );
        }
    }
    if let Some(admin_listen) = listen {
        if !admin_listen.ip().is_loopback() && token.is_none() && !token_unreadable {
            problems.add(
                &admin.path_of("token"),
                admin.get("listen"),
                format!("is required when admin.listen ({admin_listen}) is not a loopback address"),
            );
        }
    }
    AdminConfig {
        listen: listen.unwrap_or(DEFAULT_ADMIN_LISTEN),
        token,
    }
}
