//! Accounts read from the primary (`users_from_backend`), so that any account the database
//! accepts logs in through rwproxy with nothing copied into the YAML.
//!
//! For `mysql_native_password` accounts the stored `SHA1(SHA1(password))` is all rwproxy needs:
//! it verifies the client's scramble with it and recovers `SHA1(password)`, which authenticates
//! the session to every backend. No password is stored anywhere. Accounts are matched against the
//! client's address the way the server does (most specific host first); YAML users win.

use std::collections::HashMap;
use std::net::IpAddr;
use std::sync::Arc;
use std::time::{Duration, Instant};

use rwproxy_backend::{BackendConn, BackendSecret, ConnectParams};
use rwproxy_config::{AuthPlugin, UserConfig, UserSecret};
use rwproxy_protocol::auth;

use crate::context::ProxyContext;

/// An unknown user or a wrong password refreshes the accounts at most this often.
pub const ON_DEMAND_REFRESH_EVERY: Duration = Duration::from_secs(1);

/// One row of the server's account table.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Account {
    pub user: String,
    pub host: String,
    pub plugin: String,
    /// `*HEX` for mysql_native_password.
    pub auth_string: String,
    pub locked: bool,
}

/// Accounts by user name, each list sorted most specific host first.
#[derive(Debug, Default, Clone)]
pub struct AccountTable {
    by_user: HashMap<String, Vec<Account>>,
    pub loaded_at: Option<Instant>,
}

/// Why a backend account cannot log in through rwproxy.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum AccountProblem {
    Locked,
    Plugin(String),
}

impl AccountTable {
    pub fn new(accounts: Vec<Account>) -> Self {
        let mut by_user: HashMap<String, Vec<Account>> = HashMap::new();
        for a in accounts {
            by_user.entry(a.user.clone()).or_default().push(a);
        }
        for list in by_user.values_mut() {
            list.sort_by_key(|a| std::cmp::Reverse(host_specificity(&a.host)));
        }
        Self {
            by_user,
            loaded_at: Some(Instant::now()),
        }
    }

    pub fn len(&self) -> usize {
        self.by_user.values().map(Vec::len).sum()
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// The account `user` connecting from `ip` logs in as, if any.
    pub fn find(&self, user: &str, ip: IpAddr) -> Option<&Account> {
        self.by_user
            .get(user)?
            .iter()
            .find(|a| host_matches(&a.host, ip))
    }

    /// The account as a user rwproxy can authenticate, or why not.
    pub fn login_user(&self, user: &str, ip: IpAddr) -> Option<Result<UserConfig, AccountProblem>> {
        let a = self.find(user, ip)?;
        if a.locked {
            return Some(Err(AccountProblem::Locked));
        }
        let plugin = if a.plugin.is_empty() {
            auth::NATIVE_PASSWORD
        } else {
            a.plugin.as_str()
        };
        if plugin != auth::NATIVE_PASSWORD {
            return Some(Err(AccountProblem::Plugin(plugin.to_string())));
        }
        let secret = if a.auth_string.is_empty() {
            // An account without a password.
            UserSecret::Password(rwproxy_config::Secret::new(""))
        } else {
            match auth::parse_native_hash(&a.auth_string) {
                Some(hash) => UserSecret::PasswordHash(hash),
                None => {
                    return Some(Err(AccountProblem::Plugin(format!(
                        "{plugin} (unreadable hash)"
                    ))))
                }
            }
        };
        Some(Ok(UserConfig {
            name: a.user.clone(),
            secret,
            auth_plugin: AuthPlugin::MysqlNativePassword,
            consistency: None,
            pooling: true,
        }))
    }
}

/// How specific a host pattern is (exact addresses before wildcards, `%` last).
fn host_specificity(host: &str) -> u32 {
    if host == "%" || host.is_empty() {
        return 0;
    }
    let wild = host.chars().filter(|c| *c == '%' || *c == '_').count() as u32;
    let literal = host.len() as u32 - wild;
    if wild == 0 {
        10_000 + literal
    } else {
        literal
    }
}

/// Matches a client address against an account's host part: an IP literal, a pattern with `%`
/// and `_`, `address/netmask`, or `localhost` (which only ever means the loopback here, since
/// rwproxy's clients come over TCP). Host names are not resolved (as with `skip-name-resolve`).
pub fn host_matches(pattern: &str, ip: IpAddr) -> bool {
    let text = ip.to_string();
    if pattern.eq_ignore_ascii_case("localhost") {
        return false;
    }
    if let Some((addr, mask)) = pattern.split_once('/') {
        return match (
            addr.parse::<std::net::Ipv4Addr>(),
            mask.parse::<std::net::Ipv4Addr>(),
            ip,
        ) {
            (Ok(a), Ok(m), IpAddr::V4(c)) => {
                u32::from(c) & u32::from(m) == u32::from(a) & u32::from(m)
            }
            _ => false,
        };
    }
    like(pattern.as_bytes(), text.as_bytes())
}

/// SQL `LIKE` matching with `%` and `_` (case-insensitive, no escapes).
fn like(p: &[u8], s: &[u8]) -> bool {
    match p.split_first() {
        None => s.is_empty(),
        Some((b'%', rest)) => (0..=s.len()).any(|i| like(rest, &s[i..])),
        Some((b'_', rest)) => !s.is_empty() && like(rest, &s[1..]),
        Some((c, rest)) => {
            s.first().is_some_and(|d| d.eq_ignore_ascii_case(c)) && like(rest, &s[1..])
        }
    }
}

const MARIADB_ACCOUNTS: &str = "SELECT User, Host, \
     IFNULL(JSON_VALUE(Priv, '$.plugin'), ''), \
     IFNULL(JSON_VALUE(Priv, '$.authentication_string'), ''), \
     IFNULL(JSON_VALUE(Priv, '$.account_locked'), 'false') FROM mysql.global_priv";
const MYSQL_ACCOUNTS: &str =
    "SELECT User, Host, plugin, authentication_string, account_locked FROM mysql.user";

/// Reads the account table from the primary with the monitoring credentials.
pub async fn load(ctx: &ProxyContext) -> Result<AccountTable, String> {
    let config = ctx.config();
    let (user, password) = config
        .monitor
        .credentials()
        .ok_or_else(|| "users_from_backend needs monitor credentials".to_string())?;
    let topology = ctx.monitor().snapshot();
    let primary = match &topology.primary {
        rwproxy_monitor::PrimaryState::One(p) => p.clone(),
        _ => return Err("no primary to read accounts from".into()),
    };
    let address = config
        .backend(&primary)
        .map(|b| b.address.clone())
        .ok_or_else(|| format!("backend '{primary}' is not configured"))?;
    let secret = BackendSecret::Password(password.expose().to_string());
    let tls = ctx.backend_tls();
    let params = ConnectParams {
        name: &primary,
        address: &address,
        connect_timeout: config.timeouts.connect,
        login_timeout: config.timeouts.handshake,
        user,
        secret: &secret,
        database: None,
        client_capabilities: rwproxy_protocol::CapabilityFlags::empty(),
        collation: 45,
        max_packet: 16 << 20,
        attributes: &[],
        mariadb_ext: 0,
        tls: tls.as_deref(),
    };
    let mut conn = BackendConn::connect(&params)
        .await
        .map_err(|e| e.to_string())?;
    let sql = if conn.is_mariadb() {
        MARIADB_ACCOUNTS
    } else {
        MYSQL_ACCOUNTS
    };
    let outcome = conn.query(sql).await.map_err(|e| e.to_string())?;
    if let Some((code, _, message)) = outcome.error {
        return Err(format!(
            "reading accounts failed with error {code}: {message} (the monitoring user needs \
             SELECT on mysql.global_priv on MariaDB, mysql.user on MySQL)"
        ));
    }
    let accounts = outcome
        .rows
        .into_iter()
        .filter_map(|r| {
            let mut cols = r.into_iter();
            let user = cols.next()??;
            let host = cols.next()??;
            let plugin = cols.next().flatten().unwrap_or_default();
            let auth_string = cols.next().flatten().unwrap_or_default();
            let locked = cols
                .next()
                .flatten()
                .is_some_and(|v| v.eq_ignore_ascii_case("true") || v.eq_ignore_ascii_case("y"));
            Some(Account {
                user,
                host,
                plugin,
                auth_string,
                locked,
            })
        })
        .collect();
    Ok(AccountTable::new(accounts))
}

/// Refreshes the accounts on `accounts_refresh_interval`, and at once (rate-limited) when a
/// login asks for it. Runs until the process ends.
pub async fn refresher(ctx: Arc<ProxyContext>) {
    loop {
        let config = ctx.config();
        if config.users_from_backend {
            ctx.refresh_accounts().await;
        }
        let interval = config.accounts_refresh_interval;
        drop(config);
        tokio::select! {
            _ = tokio::time::sleep(interval) => {}
            _ = ctx.accounts_wanted() => {}
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn acc(user: &str, host: &str, hash: &str) -> Account {
        Account {
            user: user.into(),
            host: host.into(),
            plugin: "mysql_native_password".into(),
            auth_string: hash.into(),
            locked: false,
        }
    }

    #[test]
    fn host_patterns() {
        let ip: IpAddr = "127.0.0.1".parse().unwrap();
        assert!(host_matches("%", ip));
        assert!(host_matches("127.0.0.1", ip));
        assert!(host_matches("127.0.0.%", ip));
        assert!(host_matches("127.0.0._", ip));
        assert!(!host_matches("10.%", ip));
        assert!(host_matches("127.0.0.0/255.0.0.0", ip));
        assert!(!host_matches("10.0.0.0/255.0.0.0", ip));
        assert!(!host_matches("localhost", ip));
    }

    #[test]
    fn most_specific_host_wins() {
        let h1 = format!("*{}", "A".repeat(40));
        let h2 = format!("*{}", "B".repeat(40));
        let t = AccountTable::new(vec![acc("bob", "%", &h1), acc("bob", "127.0.0.1", &h2)]);
        let ip: IpAddr = "127.0.0.1".parse().unwrap();
        assert_eq!(t.find("bob", ip).unwrap().auth_string, h2);
        let other: IpAddr = "10.1.2.3".parse().unwrap();
        assert_eq!(t.find("bob", other).unwrap().auth_string, h1);
        assert!(t.find("alice", ip).is_none());
    }

    #[test]
    fn plugins_and_locks() {
        let ip: IpAddr = "127.0.0.1".parse().unwrap();
        let mut ed = acc("ed", "%", "xyz");
        ed.plugin = "ed25519".into();
        let mut locked = acc("lo", "%", &format!("*{}", "C".repeat(40)));
        locked.locked = true;
        let t = AccountTable::new(vec![
            ed,
            locked,
            acc("ok", "%", &format!("*{}", "D".repeat(40))),
        ]);
        assert!(
            matches!(t.login_user("ed", ip), Some(Err(AccountProblem::Plugin(p))) if p == "ed25519")
        );
        assert!(matches!(
            t.login_user("lo", ip),
            Some(Err(AccountProblem::Locked))
        ));
        let ok = t.login_user("ok", ip).unwrap().unwrap();
        assert!(matches!(ok.secret, UserSecret::PasswordHash(_)));
        assert!(t.login_user("nobody", ip).is_none());
    }
}
