//! Which changes a configuration reload cannot apply without a restart.

use crate::model::Config;

/// The keys that differ between `old` and `new` and only take effect after
/// a restart: sockets already bound, the client TLS acceptor, the
/// connection limit, the large-packet budget, the log output format and backend TLS. Everything
/// else is applied by a reload. Empty when a reload applies fully.
pub fn diff_requires_restart(old: &Config, new: &Config) -> Vec<&'static str> {
    let old_tls = old.tls.as_ref();
    let new_tls = new.tls.as_ref();
    let checks: [(&'static str, bool); 9] = [
        ("listen", old.listen != new.listen),
        ("admin.listen", old.admin.listen != new.admin.listen),
        ("admin.token", old.admin.token != new.admin.token),
        (
            "tls.cert",
            old_tls.map(|t| &t.cert) != new_tls.map(|t| &t.cert),
        ),
        (
            "tls.key",
            old_tls.map(|t| &t.key) != new_tls.map(|t| &t.key),
        ),
        (
            "max_client_connections",
            old.max_client_connections != new.max_client_connections,
        ),
        (
            "large_packet_budget",
            old.large_packet_budget != new.large_packet_budget,
        ),
        ("log.format", old.log.format != new.log.format),
        ("backend_tls", old.backend_tls != new.backend_tls),
    ];
    checks
        .into_iter()
        .filter(|(_, changed)| *changed)
        .map(|(key, _)| key)
        .collect()
}
