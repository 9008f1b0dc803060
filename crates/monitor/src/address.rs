//! Splitting a backend address (`host:port`, `[v6]:port`) into its parts.

/// A parsed backend address.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct HostPort {
    pub host: String,
    pub port: u16,
}

impl HostPort {
    /// Parses `host:port`; IPv6 literals go in brackets. The error says what
    /// is wrong, for a check's failure reason.
    pub fn parse(address: &str) -> Result<Self, String> {
        let address = address.trim();
        let (host, port) = address
            .rsplit_once(':')
            .ok_or_else(|| format!("address `{address}` has no port (expected host:port)"))?;
        let host = match host.strip_prefix('[') {
            Some(rest) => rest
                .strip_suffix(']')
                .ok_or_else(|| format!("address `{address}` has an unclosed `[`"))?,
            None if host.contains(':') => {
                return Err(format!(
                    "address `{address}`: put IPv6 addresses in brackets, [addr]:port"
                ))
            }
            None => host,
        };
        if host.is_empty() {
            return Err(format!("address `{address}` has no host"));
        }
        let port = port
            .parse::<u16>()
            .ok()
            .filter(|p| *p != 0)
            .ok_or_else(|| format!("address `{address}` has a bad port `{port}`"))?;
        Ok(Self {
            host: host.to_string(),
            port,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_v4_names_and_v6() {
        assert_eq!(
            HostPort::parse("127.0.0.1:3316").unwrap(),
            HostPort {
                host: "127.0.0.1".into(),
                port: 3316
            }
        );
        assert_eq!(HostPort::parse("db.local:1").unwrap().host, "db.local");
        assert_eq!(HostPort::parse("[::1]:3306").unwrap().host, "::1");
    }

    #[test]
    fn rejects_bad_addresses() {
        for bad in [
            "",
            "127.0.0.1",
            ":3306",
            "host:",
            "host:0",
            "host:65536",
            "host:port",
            "::1:3306",
            "[::1:3306",
            "[]:3306",
        ] {
            assert!(HostPort::parse(bad).is_err(), "accepted {bad:?}");
        }
    }
}
