//! The SQL a switchover sends, per server family. Pure: built from the server's `@@version`
//! and the switchover's parameters, so that both families are unit-tested without a server
//! (no MySQL server runs in this project's CI: the MySQL forms are tested here only).
//!
//! | step | MariaDB | MySQL 8.0.23 and later |
//! |---|---|---|
//! | freeze the old primary | `read_only = ON` | `super_read_only = ON` (implies `read_only`) |
//! | its position | `@@gtid_binlog_pos` | `@@GLOBAL.gtid_executed` |
//! | target catches up | `MASTER_GTID_WAIT(pos, s)` (0: done, -1: timeout) | `WAIT_FOR_EXECUTED_GTID_SET(set, s)` (0: done, 1: timeout) |
//! | promote | `STOP SLAVE; RESET SLAVE ALL; read_only = OFF` | `STOP REPLICA; RESET REPLICA ALL; super_read_only = OFF; read_only = OFF` |
//! | repoint | `CHANGE MASTER TO … MASTER_USE_GTID=slave_pos` | `CHANGE REPLICATION SOURCE TO … SOURCE_AUTO_POSITION=1` |
//!
//! MySQL before 8.0.23 (where `CHANGE REPLICATION SOURCE` does not exist) is refused.

use std::time::Duration;

/// The family of a server, as far as switchover statements differ.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Dialect {
    MariaDb,
    /// MySQL 8.0.23 or later.
    MySql,
}

/// Where repointed servers replicate from, and as whom.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Source<'a> {
    pub host: &'a str,
    pub port: u16,
    pub user: &'a str,
    pub password: &'a str,
}

impl Dialect {
    /// The dialect of a server from its `@@version`: MariaDB names itself in it; anything
    /// else is MySQL, which must be 8.0.23 or later.
    pub fn from_version(version: &str) -> Result<Dialect, String> {
        if version.to_ascii_lowercase().contains("mariadb") {
            return Ok(Dialect::MariaDb);
        }
        let unreadable = || format!("cannot read the server version {version:?}");
        let mut parts = version.split('.');
        let number = |part: Option<&str>| -> Result<u32, String> {
            let digits: String = part
                .unwrap_or("")
                .chars()
                .take_while(char::is_ascii_digit)
                .collect();
            digits.parse().map_err(|_| unreadable())
        };
        let (major, minor, patch) = (
            number(parts.next())?,
            number(parts.next())?,
            number(parts.next())?,
        );
        if (major, minor, patch) >= (8, 0, 23) {
            Ok(Dialect::MySql)
        } else {
            Err(format!(
                "MySQL {major}.{minor}.{patch} is not supported by the switchover (MySQL 8.0.23 or later, or MariaDB)"
            ))
        }
    }

    pub fn as_str(self) -> &'static str {
        match self {
            Dialect::MariaDb => "MariaDB",
            Dialect::MySql => "MySQL",
        }
    }

    /// Makes the old primary refuse writes (MySQL: from every account, SUPER included).
    pub fn freeze(self) -> &'static str {
        match self {
            Dialect::MariaDb => "SET GLOBAL read_only = ON",
            Dialect::MySql => "SET GLOBAL super_read_only = ON",
        }
    }

    /// Undoes [`Dialect::freeze`] when the switchover gives up.
    pub fn unfreeze(self) -> &'static str {
        match self {
            Dialect::MariaDb => "SET GLOBAL read_only = OFF",
            Dialect::MySql => "SET GLOBAL super_read_only = OFF; SET GLOBAL read_only = OFF",
        }
    }

    /// A query answering the frozen primary's GTID position (one string).
    pub fn position(self) -> &'static str {
        match self {
            Dialect::MariaDb => "SELECT @@GLOBAL.gtid_binlog_pos",
            Dialect::MySql => "SELECT @@GLOBAL.gtid_executed",
        }
    }

    /// A query that waits up to `timeout` until the server has applied `position`; it
    /// answers 0 when it has (both families), something else on a timeout.
    pub fn wait_for(self, position: &str, timeout: Duration) -> String {
        match self {
            Dialect::MariaDb => format!(
                "SELECT MASTER_GTID_WAIT({}, {})",
                quote(position),
                timeout.as_secs_f64()
            ),
            // Whole seconds, rounded up: the form every 8.0 release takes.
            Dialect::MySql => format!(
                "SELECT WAIT_FOR_EXECUTED_GTID_SET({}, {})",
                quote(position),
                timeout.as_secs() + u64::from(timeout.subsec_nanos() > 0)
            ),
        }
    }

    /// Makes a replica a writable primary that replicates from nobody.
    pub fn promote(self) -> &'static str {
        match self {
            Dialect::MariaDb => "STOP SLAVE; RESET SLAVE ALL; SET GLOBAL read_only = OFF",
            Dialect::MySql => {
                "STOP REPLICA; RESET REPLICA ALL; SET GLOBAL super_read_only = OFF; \
                 SET GLOBAL read_only = OFF"
            }
        }
    }

    /// Points a server at `source` with GTID auto-positioning and starts replication.
    /// `old_primary`: the server was the primary until now, so it continues from its own
    /// binlog (MariaDB: `gtid_slave_pos` set to its `gtid_binlog_pos`; MySQL's
    /// auto-positioning uses `gtid_executed`, which includes its own writes already).
    pub fn repoint(self, source: &Source<'_>, old_primary: bool) -> String {
        match self {
            Dialect::MariaDb => {
                let mut sql = String::from("STOP SLAVE; RESET SLAVE ALL; ");
                if old_primary {
                    sql.push_str("SET GLOBAL gtid_slave_pos = @@GLOBAL.gtid_binlog_pos; ");
                }
                sql.push_str(&format!(
                    "CHANGE MASTER TO MASTER_HOST={}, MASTER_PORT={}, MASTER_USER={}, \
                     MASTER_PASSWORD={}, MASTER_USE_GTID=slave_pos, MASTER_CONNECT_RETRY=1; \
                     START SLAVE",
                    quote(source.host),
                    source.port,
                    quote(source.user),
                    quote(source.password)
                ));
                sql
            }
            // GET_SOURCE_PUBLIC_KEY: a replication account with caching_sha2_password (the
            // default since 8.0) can log in without TLS.
            Dialect::MySql => format!(
                "STOP REPLICA; RESET REPLICA ALL; CHANGE REPLICATION SOURCE TO SOURCE_HOST={}, \
                 SOURCE_PORT={}, SOURCE_USER={}, SOURCE_PASSWORD={}, SOURCE_AUTO_POSITION=1, \
                 SOURCE_CONNECT_RETRY=1, GET_SOURCE_PUBLIC_KEY=1; START REPLICA",
                quote(source.host),
                source.port,
                quote(source.user),
                quote(source.password)
            ),
        }
    }
}

/// A string literal for SQL (single quotes, backslashes and quotes escaped).
pub fn quote(s: &str) -> String {
    let mut out = String::with_capacity(s.len() + 2);
    out.push('\'');
    for c in s.chars() {
        match c {
            '\'' => out.push_str("\\'"),
            '\\' => out.push_str("\\\\"),
            c => out.push(c),
        }
    }
    out.push('\'');
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    const SOURCE: Source<'static> = Source {
        host: "db2.internal",
        port: 3307,
        user: "repl",
        password: "it's\\secret",
    };

    #[test]
    fn the_family_comes_from_the_version_string() {
        for v in [
            "10.11.6-MariaDB-0+deb12u1-log",
            "11.4.2-MariaDB",
            "5.5.5-10.6.12-MariaDB",
        ] {
            assert_eq!(Dialect::from_version(v), Ok(Dialect::MariaDb), "{v}");
        }
        for v in [
            "8.0.23",
            "8.0.36-0ubuntu0.22.04.1",
            "8.4.0",
            "9.1.0-commercial",
            "8.0.23-log",
        ] {
            assert_eq!(Dialect::from_version(v), Ok(Dialect::MySql), "{v}");
        }
        for v in ["8.0.22", "5.7.44-log", "8.0.4-rc"] {
            let refused = Dialect::from_version(v).unwrap_err();
            assert!(refused.contains("8.0.23"), "{v}: {refused}");
        }
        assert!(Dialect::from_version("").is_err());
        assert!(Dialect::from_version("nonsense").is_err());
    }

    #[test]
    fn mariadb_statements() {
        let d = Dialect::MariaDb;
        assert_eq!(d.freeze(), "SET GLOBAL read_only = ON");
        assert_eq!(d.unfreeze(), "SET GLOBAL read_only = OFF");
        assert_eq!(d.position(), "SELECT @@GLOBAL.gtid_binlog_pos");
        assert_eq!(
            d.wait_for("0-1-42,1-2-7", Duration::from_millis(2500)),
            "SELECT MASTER_GTID_WAIT('0-1-42,1-2-7', 2.5)"
        );
        assert_eq!(
            d.promote(),
            "STOP SLAVE; RESET SLAVE ALL; SET GLOBAL read_only = OFF"
        );
        assert_eq!(
            d.repoint(&SOURCE, false),
            "STOP SLAVE; RESET SLAVE ALL; CHANGE MASTER TO MASTER_HOST='db2.internal', \
             MASTER_PORT=3307, MASTER_USER='repl', MASTER_PASSWORD='it\\'s\\\\secret', \
             MASTER_USE_GTID=slave_pos, MASTER_CONNECT_RETRY=1; START SLAVE"
        );
        let old = d.repoint(&SOURCE, true);
        assert!(
            old.starts_with(
                "STOP SLAVE; RESET SLAVE ALL; SET GLOBAL gtid_slave_pos = @@GLOBAL.gtid_binlog_pos; CHANGE MASTER TO"
            ),
            "{old}"
        );
        for sql in [d.freeze(), d.promote(), &d.repoint(&SOURCE, true)] {
            assert!(!sql.contains("REPLICA") && !sql.contains("SOURCE"), "{sql}");
        }
    }

    #[test]
    fn mysql_statements() {
        let d = Dialect::MySql;
        assert_eq!(d.freeze(), "SET GLOBAL super_read_only = ON");
        assert_eq!(
            d.unfreeze(),
            "SET GLOBAL super_read_only = OFF; SET GLOBAL read_only = OFF"
        );
        assert_eq!(d.position(), "SELECT @@GLOBAL.gtid_executed");
        // A GTID set as MySQL prints it, with the newline after each comma.
        let set =
            "3e11fa47-71ca-11e1-9e33-c80aa9429562:1-57,\n4f22ab58-82db-22f2-af44-d91bb0530673:1-3";
        assert_eq!(
            d.wait_for(set, Duration::from_millis(2500)),
            format!("SELECT WAIT_FOR_EXECUTED_GTID_SET('{set}', 3)")
        );
        assert_eq!(
            d.wait_for(set, Duration::from_secs(2)),
            format!("SELECT WAIT_FOR_EXECUTED_GTID_SET('{set}', 2)")
        );
        assert_eq!(
            d.promote(),
            "STOP REPLICA; RESET REPLICA ALL; SET GLOBAL super_read_only = OFF; SET GLOBAL read_only = OFF"
        );
        let expected = "STOP REPLICA; RESET REPLICA ALL; CHANGE REPLICATION SOURCE TO \
             SOURCE_HOST='db2.internal', SOURCE_PORT=3307, SOURCE_USER='repl', \
             SOURCE_PASSWORD='it\\'s\\\\secret', SOURCE_AUTO_POSITION=1, SOURCE_CONNECT_RETRY=1, \
             GET_SOURCE_PUBLIC_KEY=1; START REPLICA";
        assert_eq!(d.repoint(&SOURCE, false), expected);
        // Auto-positioning needs nothing more for the old primary.
        assert_eq!(d.repoint(&SOURCE, true), expected);
        for sql in [d.freeze(), d.promote(), &d.repoint(&SOURCE, true)] {
            assert!(
                !sql.contains("SLAVE")
                    && !sql.contains("MASTER")
                    && !sql.contains("gtid_slave_pos"),
                "{sql}"
            );
        }
    }

    #[test]
    fn literals_are_escaped() {
        assert_eq!(quote("plain"), "'plain'");
        assert_eq!(quote("a'b\\c"), "'a\\'b\\\\c'");
        assert_eq!(quote(""), "''");
    }
}
