//! Parsing a backend's `host:port` (host name, IPv4, or `[IPv6]`).

use std::net::{Ipv4Addr, Ipv6Addr};

/// A parsed backend address.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct HostPort {
    /// Normalized `host:port` (IPv6 in brackets, host names lower-cased).
    pub address: String,
    /// The host without brackets.
    pub host: String,
    pub port: u16,
}

/// Parses `host:port`; the error says what is wrong in one line.
pub(crate) fn parse_host_port(text: &str) -> Result<HostPort, String> {
    let text = text.trim();
    let (host, port_text) = if let Some(rest) = text.strip_prefix('[') {
        let Some((inside, after)) = rest.split_once(']') else {
            return Err(format!(
                "invalid address '{text}': missing ']' after the IPv6 host"
            ));
        };
        let Some(port) = after.strip_prefix(':') else {
            return Err(format!(
                "invalid address '{text}': missing port (expected [ipv6]:port)"
            ));
        };
        if inside.parse::<Ipv6Addr>().is_err() {
            return Err(format!(
                "invalid address '{text}': '{inside}' is not an IPv6 address"
            ));
        }
        (inside, port)
    } else {
        let Some((host, port)) = text.rsplit_once(':') else {
            return Err(format!(
                "invalid address '{text}': missing port (expected host:port, like 127.0.0.1:3306)"
            ));
        };
        if host.contains(':') {
            return Err(format!(
                "invalid address '{text}': put an IPv6 host in brackets, like [::1]:3306"
            ));
        }
        if host.is_empty() {
            return Err(format!("invalid address '{text}': missing host"));
        }
        if !is_ipv4_or_host_name(host) {
            return Err(format!(
                "invalid address '{text}': '{host}' is neither an IPv4 address nor a valid host name"
            ));
        }
        (host, port)
    };
    let port: u16 = match port_text.parse() {
        Ok(p) if p > 0 => p,
        _ => {
            return Err(format!(
                "invalid address '{text}': port must be a number from 1 to 65535"
            ))
        }
    };
    let host = host.to_ascii_lowercase();
    let address = if host.contains(':') {
        format!("[{host}]:{port}")
    } else {
        format!("{host}:{port}")
    };
    Ok(HostPort {
        address,
        host,
        port,
    })
}

fn is_ipv4_or_host_name(host: &str) -> bool {
    if host.parse::<Ipv4Addr>().is_ok() {
        return true;
    }
    // Something that looks like a dotted number but is not an IPv4 address
    // (`10.0.0.256`) is a typo, not a host name.
    if host.chars().all(|c| c.is_ascii_digit() || c == '.') {
        return false;
    }
    host.len() <= 253
        && host.split('.').all(|label| {
            !label.is_empty()
                && label.len() <= 63
                && !label.starts_with('-')
                && !label.ends_with('-')
                && label.chars().all(|c| c.is_ascii_alphanumeric() || c == '-')
        })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn accepts_ipv4_ipv6_and_host_names() {
        let a = parse_host_port("127.0.0.1:3316").unwrap();
        assert_eq!(
            (a.address.as_str(), a.host.as_str(), a.port),
            ("127.0.0.1:3316", "127.0.0.1", 3316)
        );
        let b = parse_host_port("[::1]:3306").unwrap();
        assert_eq!(
            (b.address.as_str(), b.host.as_str(), b.port),
            ("[::1]:3306", "::1", 3306)
        );
        let c = parse_host_port("DB-1.Example.internal:3306").unwrap();
        assert_eq!(c.address, "db-1.example.internal:3306");
    }

    #[test]
    fn rejects_each_kind_of_mistake_with_a_reason() {
        let cases = [
            ("127.0.0.1", "missing port"),
            ("127.0.0.1:", "port must be"),
            ("127.0.0.1:0", "port must be"),
            ("127.0.0.1:70000", "port must be"),
            ("127.0.0.1:33o6", "port must be"),
            (":3306", "missing host"),
            ("::1:3306", "brackets"),
            ("[::1]", "missing port"),
            ("[::1:3306", "missing ']'"),
            ("[zz]:3306", "not an IPv6"),
            ("10.0.0.256:3306", "neither"),
            ("db_1:3306", "neither"),
            ("-db:3306", "neither"),
        ];
        for (input, expected) in cases {
            let err = parse_host_port(input).unwrap_err();
            assert!(err.contains(expected), "{input}: {err}");
        }
    }
}
