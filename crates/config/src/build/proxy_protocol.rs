//! The `proxy_protocol` section.

use crate::model::ProxyProtocolConfig;
use crate::reader::{read_string, MapReader, Problems};

const KEYS: &[&str] = &["trusted"];

pub(crate) fn build_proxy_protocol(
    root: &MapReader,
    problems: &mut Problems,
) -> ProxyProtocolConfig {
    let section = MapReader::section(
        root.get("proxy_protocol"),
        &root.path_of("proxy_protocol"),
        KEYS,
        problems,
    );
    let mut trusted = Vec::new();
    for (i, node) in section.list("trusted", problems).iter().enumerate() {
        let path = format!("{}[{i}]", section.path_of("trusted"));
        let Some(text) = read_string(node, &path, problems) else {
            continue;
        };
        match parse_network(&text) {
            Some(net) => trusted.push(net),
            None => problems.add(
                &path,
                Some(node),
                format!("'{text}' is not an address or a network like 10.0.0.0/8 or fd00::/8"),
            ),
        }
    }
    if section.is_present() && trusted.is_empty() && problems.is_empty() {
        problems.add(
            &section.path_of("trusted"),
            section.node(),
            "list the networks of the load balancers that send PROXY protocol headers",
        );
    }
    ProxyProtocolConfig { trusted }
}

/// `10.0.0.0/8`, `fd00::/8`, or a single address (`/32`, `/128`).
fn parse_network(text: &str) -> Option<ipnet::IpNet> {
    let text = text.trim();
    if let Ok(net) = text.parse::<ipnet::IpNet>() {
        return Some(net.trunc());
    }
    text.parse::<std::net::IpAddr>()
        .ok()
        .map(ipnet::IpNet::from)
}
