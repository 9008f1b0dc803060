//! Replication positions: MariaDB GTID positions and MySQL GTID sets.
//!
//! Both answer the same question for causal reads: "has server A applied
//! everything that position B describes?" ([`GtidPosition::contains`]).

mod mariadb;
mod mysql;

use std::fmt;

pub use mariadb::{MariaDbGtid, MariaDbGtidPos};
pub use mysql::{GtidInterval, MySqlGtidSet, MySqlSourceId};

/// Longest piece of offending input quoted back in an error message.
const MAX_QUOTED: usize = 64;

/// Errors from parsing or combining GTID positions.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum GtidError {
    /// A MariaDB element that is not `domain-server-sequence`.
    #[error("invalid MariaDB GTID `{element}`: {problem}")]
    MariaDb {
        element: String,
        problem: &'static str,
    },
    /// A MySQL GTID set element that is not `uuid[:tag]:interval[:interval...]`.
    #[error("invalid MySQL GTID set element `{element}`: {problem}")]
    MySql {
        element: String,
        problem: &'static str,
    },
    /// A MariaDB position and a MySQL set cannot be merged.
    #[error("cannot merge a MariaDB GTID position with a MySQL GTID set")]
    FlavorMismatch,
}

/// Quotes at most [`MAX_QUOTED`] characters of `input` (cut on a char boundary).
pub(crate) fn quote(input: &str) -> String {
    match input.char_indices().nth(MAX_QUOTED) {
        Some((cut, _)) => format!("{}…", &input[..cut]),
        None => input.to_string(),
    }
}

/// A replication position of either server family.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum GtidPosition {
    /// MariaDB: one `domain-server-sequence` per replication domain.
    MariaDb(MariaDbGtidPos),
    /// MySQL: a set of transaction intervals per source UUID (and tag).
    MySql(MySqlGtidSet),
}

impl GtidPosition {
    /// Parses either form. Text with a `:` is a MySQL GTID set, anything else
    /// a MariaDB position; the empty string is an empty MariaDB position.
    pub fn parse(input: &str) -> Result<Self, GtidError> {
        if input.contains(':') {
            MySqlGtidSet::parse(input).map(Self::MySql)
        } else {
            MariaDbGtidPos::parse(input).map(Self::MariaDb)
        }
    }

    /// True when the position describes no transaction at all.
    pub fn is_empty(&self) -> bool {
        match self {
            Self::MariaDb(pos) => pos.is_empty(),
            Self::MySql(set) => set.is_empty(),
        }
    }

    /// True when a server at `self` has applied everything in `other`.
    ///
    /// An empty `other` is contained in anything; positions of different
    /// server families (both non-empty) are never contained in each other.
    pub fn contains(&self, other: &GtidPosition) -> bool {
        match (self, other) {
            (_, other) if other.is_empty() => true,
            (Self::MariaDb(a), Self::MariaDb(b)) => a.contains(b),
            (Self::MySql(a), Self::MySql(b)) => a.contains(b),
            _ => false,
        }
    }

    /// Widens `self` to cover `other` as well (per-domain maximum for MariaDB,
    /// set union for MySQL). An empty side adopts the other's family.
    pub fn merge_max(&mut self, other: &GtidPosition) -> Result<(), GtidError> {
        if other.is_empty() {
            return Ok(());
        }
        if self.is_empty() {
            *self = other.clone();
            return Ok(());
        }
        match (self, other) {
            (Self::MariaDb(a), Self::MariaDb(b)) => {
                a.merge_max(b);
                Ok(())
            }
            (Self::MySql(a), Self::MySql(b)) => {
                a.merge_max(b);
                Ok(())
            }
            _ => Err(GtidError::FlavorMismatch),
        }
    }
}

impl Default for GtidPosition {
    fn default() -> Self {
        Self::MariaDb(MariaDbGtidPos::default())
    }
}

impl fmt::Display for GtidPosition {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::MariaDb(pos) => pos.fmt(f),
            Self::MySql(set) => set.fmt(f),
        }
    }
}

impl std::str::FromStr for GtidPosition {
    type Err = GtidError;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        Self::parse(s)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const UUID_A: &str = "3e11fa47-71ca-11e1-9e33-c80aa9429562";

    #[test]
    fn parse_detects_the_family() {
        assert!(matches!(
            GtidPosition::parse("0-1-5").unwrap(),
            GtidPosition::MariaDb(_)
        ));
        assert!(matches!(
            GtidPosition::parse(&format!("{UUID_A}:1-5")).unwrap(),
            GtidPosition::MySql(_)
        ));
        let empty = GtidPosition::parse("").unwrap();
        assert!(empty.is_empty());
        assert!(matches!(empty, GtidPosition::MariaDb(_)));
    }

    #[test]
    fn empty_is_contained_in_any_family() {
        let empty = GtidPosition::parse("").unwrap();
        let mysql = GtidPosition::parse(&format!("{UUID_A}:1-5")).unwrap();
        let maria = GtidPosition::parse("0-1-5").unwrap();
        assert!(mysql.contains(&empty));
        assert!(maria.contains(&empty));
        assert!(!empty.contains(&maria));
        assert!(!empty.contains(&mysql));
    }

    #[test]
    fn different_families_never_contain_each_other() {
        let mysql = GtidPosition::parse(&format!("{UUID_A}:1-5")).unwrap();
        let maria = GtidPosition::parse("0-1-5").unwrap();
        assert!(!mysql.contains(&maria));
        assert!(!maria.contains(&mysql));
    }

    #[test]
    fn merge_max_adopts_family_and_rejects_mixing() {
        let mut pos = GtidPosition::parse("").unwrap();
        let mysql = GtidPosition::parse(&format!("{UUID_A}:1-5")).unwrap();
        pos.merge_max(&mysql).unwrap();
        assert_eq!(pos, mysql);
        let maria = GtidPosition::parse("0-1-5").unwrap();
        assert_eq!(pos.merge_max(&maria), Err(GtidError::FlavorMismatch));
        // Merging an empty position changes nothing.
        pos.merge_max(&GtidPosition::default()).unwrap();
        assert_eq!(pos, mysql);
    }

    #[test]
    fn merge_max_then_contains_both_inputs() {
        let mut a = GtidPosition::parse("0-1-10,1-2-3").unwrap();
        let b = GtidPosition::parse("0-3-7,2-2-9").unwrap();
        let a_before = a.clone();
        a.merge_max(&b).unwrap();
        assert!(a.contains(&a_before));
        assert!(a.contains(&b));
        assert_eq!(a.to_string(), "0-1-10,1-2-3,2-2-9");
    }

    #[test]
    fn from_str_and_display_round_trip() {
        let text = format!("{UUID_A}:1-5:7");
        let pos: GtidPosition = text.parse().unwrap();
        assert_eq!(pos.to_string(), text);
        let pos: GtidPosition = "1-2-3,0-1-1".parse().unwrap();
        assert_eq!(pos.to_string(), "0-1-1,1-2-3");
    }

    #[test]
    fn quote_truncates_long_input_on_char_boundary() {
        let long = "é".repeat(200);
        let quoted = quote(&long);
        assert_eq!(quoted.chars().count(), MAX_QUOTED + 1);
        assert!(quoted.ends_with('…'));
        assert_eq!(quote("short"), "short");
    }
}
