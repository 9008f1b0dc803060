//! Turning the YAML tree into a [`Config`], collecting every problem.
//!
//! Each section has its own file; a section reports its own problems and
//! falls back to defaults so the other sections are still checked.
//! `cross_checks` holds the checks that involve several sections.

mod admin;
mod backend_address;
mod backends;
mod cross_checks;
mod log;
mod login_throttle;
mod monitor;
mod pool;
mod proxy_protocol;
mod routing;
mod rules;
mod shutdown;
mod stats;
mod switchover;
mod timeouts;
mod tls;
mod users;

use std::net::{IpAddr, Ipv4Addr, SocketAddr};
use std::time::Duration;

use crate::model::Config;
use crate::reader::{MapReader, Problems};
use crate::yaml_tree::Node;

const TOP_KEYS: &[&str] = &[
    "listen",
    "max_client_connections",
    "max_allowed_packet",
    "large_packet_budget",
    "login_throttle",
    "proxy_protocol",
    "server_version",
    "users",
    "users_from_backend",
    "accounts_refresh_interval",
    "backends",
    "timeouts",
    "tls",
    "backend_tls",
    "monitor",
    "routing",
    "admin",
    "log",
    "shutdown",
    "stats",
    "switchover",
    "pool",
];

const DEFAULT_LISTEN: SocketAddr = SocketAddr::new(IpAddr::V4(Ipv4Addr::LOCALHOST), 6033);
const DEFAULT_MAX_CLIENT_CONNECTIONS: u64 = 4096;
const MAX_CLIENT_CONNECTIONS_LIMIT: u64 = 1_000_000;
const DEFAULT_MAX_ALLOWED_PACKET: u64 = 64 << 20;
const MIN_MAX_ALLOWED_PACKET: u64 = 1 << 10;
const MAX_MAX_ALLOWED_PACKET: u64 = 1 << 30;
const DEFAULT_LARGE_PACKET_BUDGET: u64 = 1 << 30;
const MAX_LARGE_PACKET_BUDGET: u64 = 1 << 40;
const DEFAULT_ACCOUNTS_REFRESH: Duration = Duration::from_secs(30);

/// Builds the configuration, or returns `None` with `problems` non-empty.
pub(crate) fn build_config(
    tree: &Node,
    source_hash: String,
    problems: &mut Problems,
) -> Option<Config> {
    let root = MapReader::new(Some(tree), "", TOP_KEYS, problems)?;

    let listen = if root.has("listen") {
        root.socket_addr("listen", problems)
    } else {
        Some(DEFAULT_LISTEN)
    };
    let max_client_connections = root
        .integer(
            "max_client_connections",
            1,
            MAX_CLIENT_CONNECTIONS_LIMIT,
            problems,
        )
        .unwrap_or(DEFAULT_MAX_CLIENT_CONNECTIONS);
    let max_allowed_packet = root
        .size(
            "max_allowed_packet",
            MIN_MAX_ALLOWED_PACKET,
            MAX_MAX_ALLOWED_PACKET,
            problems,
        )
        .unwrap_or(DEFAULT_MAX_ALLOWED_PACKET);
    let large_packet_budget = root
        .size(
            "large_packet_budget",
            MIN_MAX_ALLOWED_PACKET,
            MAX_LARGE_PACKET_BUDGET,
            problems,
        )
        .unwrap_or(DEFAULT_LARGE_PACKET_BUDGET.max(max_allowed_packet));
    if large_packet_budget < max_allowed_packet {
        problems.add(
            &root.path_of("large_packet_budget"),
            root.get("large_packet_budget"),
            format!(
                "must be at least max_allowed_packet ({}), or no client could send a packet that large",
                crate::units::format_size(max_allowed_packet)
            ),
        );
    }
    let login_throttle = login_throttle::build_login_throttle(&root, problems);
    let proxy_protocol = proxy_protocol::build_proxy_protocol(&root, problems);
    let server_version = root.string("server_version", problems);
    if let Some(v) = &server_version {
        if v.is_empty() || v.len() > 250 || v.bytes().any(|b| b == 0 || b.is_ascii_control()) {
            problems.add(
                &root.path_of("server_version"),
                root.get("server_version"),
                "server_version must be 1 to 250 printable characters (or left out to announce the primary's own version)",
            );
        }
    }
    let accounts_refresh_interval = root
        .duration("accounts_refresh_interval", true, problems)
        .unwrap_or(DEFAULT_ACCOUNTS_REFRESH);

    let users = users::build_users(&root, problems);
    let monitor = monitor::build_monitor(&root, problems);
    let users_from_backend =
        cross_checks::resolve_users_from_backend(&root, &users, &monitor, problems);
    let backends = backends::build_backends(&root, problems);
    cross_checks::check_primary_pins(&root, &backends, &monitor, problems);
    cross_checks::check_heartbeat(&root, &monitor, problems);
    let known_users = (!users_from_backend).then_some(users.names.as_slice());
    let routing = routing::build_routing(&root, &backends.names, known_users, problems);
    let timeouts = timeouts::build_timeouts(&root, problems);
    let tls = tls::build_tls(&root, problems);
    let backend_tls = tls::build_backend_tls(&root, problems);
    let admin = admin::build_admin(&root, listen, problems);
    let log = log::build_log(&root, problems);
    let shutdown = shutdown::build_shutdown(&root, problems);
    let stats = stats::build_stats(&root, problems);
    let switchover = switchover::build_switchover(&root, problems);
    let pool = pool::build_pool(&root, problems);

    if !problems.is_empty() {
        return None;
    }
    Some(Config {
        listen: listen.unwrap_or(DEFAULT_LISTEN),
        max_client_connections: usize::try_from(max_client_connections).unwrap_or(usize::MAX),
        max_allowed_packet,
        large_packet_budget,
        login_throttle,
        proxy_protocol,
        server_version,
        users: users.users,
        users_from_backend,
        accounts_refresh_interval,
        backends: backends.backends,
        timeouts,
        tls,
        backend_tls,
        monitor,
        routing,
        admin,
        log,
        shutdown,
        stats,
        switchover,
        pool,
        source_hash,
    })
}
