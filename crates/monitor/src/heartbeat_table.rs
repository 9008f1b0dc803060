//! The heartbeat table's name and the SQL that writes and reads it.
//!
//! The name comes from configuration and is pasted into SQL, so it is
//! restricted to plain identifiers and always back-quoted.

/// Longest identifier MariaDB/MySQL accept.
const MAX_IDENT_LEN: usize = 64;

/// A validated `schema.table` (or bare `table`) name.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct HeartbeatTable {
    schema: Option<String>,
    table: String,
}

/// Why a heartbeat table name was refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("heartbeat table `{name}`: {problem}")]
pub struct HeartbeatTableError {
    name: String,
    problem: &'static str,
}

impl HeartbeatTable {
    /// Accepts `schema.table` or `table`, each part 1–64 characters of
    /// `[A-Za-z0-9_$]`.
    pub fn parse(name: &str) -> Result<Self, HeartbeatTableError> {
        let err = |problem| HeartbeatTableError {
            name: crate::gtid::quote(name),
            problem,
        };
        let (schema, table) = match name.split_once('.') {
            Some((schema, table)) => (Some(schema), table),
            None => (None, name),
        };
        for part in schema.iter().chain(std::iter::once(&table)) {
            if part.is_empty() || part.len() > MAX_IDENT_LEN {
                return Err(err("each part must be 1 to 64 characters"));
            }
            if !part
                .bytes()
                .all(|b| b.is_ascii_alphanumeric() || b == b'_' || b == b'$')
            {
                return Err(err("only letters, digits, `_` and `$` are allowed"));
            }
        }
        Ok(Self {
            schema: schema.map(str::to_string),
            table: table.to_string(),
        })
    }

    /// The back-quoted name for SQL.
    pub fn quoted(&self) -> String {
        match &self.schema {
            Some(schema) => format!("`{schema}`.`{}`", self.table),
            None => format!("`{}`", self.table),
        }
    }

    /// `CREATE DATABASE IF NOT EXISTS` for the schema part, if any.
    pub fn create_schema_sql(&self) -> Option<String> {
        self.schema
            .as_ref()
            .map(|schema| format!("CREATE DATABASE IF NOT EXISTS `{schema}`"))
    }

    pub fn create_table_sql(&self) -> String {
        format!(
            "CREATE TABLE IF NOT EXISTS {} (id INT PRIMARY KEY, ts TIMESTAMP(6) NOT NULL)",
            self.quoted()
        )
    }

    /// Run on the primary every heartbeat interval.
    pub fn write_sql(&self) -> String {
        format!("REPLACE INTO {}(id, ts) VALUES (1, NOW(6))", self.quoted())
    }

    /// Run on a replica: microseconds between the replicated write and now,
    /// computed by the replica so the monitor's own clock does not matter.
    pub fn read_lag_sql(&self) -> String {
        format!(
            "SELECT TIMESTAMPDIFF(MICROSECOND, ts, NOW(6)) FROM {} WHERE id = 1",
            self.quoted()
        )
    }
}

impl std::fmt::Display for HeartbeatTable {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match &self.schema {
            Some(schema) => write!(f, "{schema}.{}", self.table),
            None => f.write_str(&self.table),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_qualified_and_bare_names() {
        let t = HeartbeatTable::parse("rwproxy.heartbeat").unwrap();
        assert_eq!(t.quoted(), "`rwproxy`.`heartbeat`");
        assert_eq!(
            t.create_schema_sql().as_deref(),
            Some("CREATE DATABASE IF NOT EXISTS `rwproxy`")
        );
        assert_eq!(
            t.write_sql(),
            "REPLACE INTO `rwproxy`.`heartbeat`(id, ts) VALUES (1, NOW(6))"
        );
        assert_eq!(t.to_string(), "rwproxy.heartbeat");
        let bare = HeartbeatTable::parse("hb$1").unwrap();
        assert_eq!(bare.quoted(), "`hb$1`");
        assert!(bare.create_schema_sql().is_none());
        assert!(bare.create_table_sql().contains("TIMESTAMP(6) NOT NULL"));
    }

    #[test]
    fn refuses_anything_that_could_break_out_of_quotes() {
        for bad in [
            "",
            ".",
            "a.",
            ".b",
            "a.b.c",
            "a`b",
            "rw;drop table x",
            "a b",
            "sch\u{e9}ma.t",
            &"x".repeat(65),
        ] {
            assert!(HeartbeatTable::parse(bad).is_err(), "accepted {bad:?}");
        }
    }
}
