//! [`Flags`]: properties of a statement that matter for routing, beyond its kind.

use std::fmt;
use std::ops::{BitOr, BitOrAssign};

/// A set of statement properties, one bit each.
#[derive(Clone, Copy, Default, PartialEq, Eq, Hash)]
pub struct Flags(u32);

macro_rules! flags {
    ($($(#[$doc:meta])* $name:ident = $bit:expr;)*) => {
        impl Flags {
            $($(#[$doc])* pub const $name: Flags = Flags(1 << $bit);)*

            /// Every flag with its name, in bit order.
            const NAMED: &'static [(&'static str, Flags)] = &[$((stringify!($name), Flags::$name)),*];
        }
    };
}

flags! {
    /// `SELECT … FOR UPDATE`, `FOR SHARE`, `LOCK IN SHARE MODE`.
    LOCKING_READ = 0;
    /// Calls something whose answer only the primary (or this session's own connection) has:
    /// `LAST_INSERT_ID()`, `FOUND_ROWS()`, `ROW_COUNT()`, the user-level lock functions,
    /// sequence functions, `NEXT VALUE FOR`, `PREVIOUS VALUE FOR`, `@@IDENTITY`, `@@LAST_INSERT_ID`.
    PRIMARY_FUNCTION = 1;
    /// Calls `GET_LOCK()`: the session holds a named lock from now on.
    USES_GET_LOCK = 2;
    /// `SELECT … INTO @var | OUTFILE | DUMPFILE`.
    SELECT_INTO = 3;
    /// `SQL_CALC_FOUND_ROWS`: a later `FOUND_ROWS()` must run on the same server.
    CALC_FOUND_ROWS = 4;
    /// `CREATE TEMPORARY TABLE` (or `TEMPORARY SEQUENCE`).
    CREATE_TEMP_TABLE = 5;
    /// `DROP TEMPORARY TABLE`.
    DROP_TEMP_TABLE = 6;
    /// Assigns a user variable: `@x := …`, `SET @x = …`, `SELECT … INTO @x`.
    ASSIGNS_USER_VAR = 7;
    /// Reads a user variable `@name`.
    READS_USER_VAR = 8;
    /// A `;` followed by more text: the packet holds several statements.
    MULTI_STATEMENT = 9;
    /// Reads a system variable `@@name`.
    SYSVAR_READ = 10;
    /// Asks about the previous statement of this connection: `SHOW WARNINGS`, `SHOW ERRORS`,
    /// `SHOW PROFILE(S)`, `GET DIAGNOSTICS`, `FOUND_ROWS()`, `ROW_COUNT()`, `@@warning_count`,
    /// `@@error_count`. Its answer is only right on the server that ran that statement.
    LAST_STATEMENT_INFO = 11;
    /// Asks about the state of one particular server (binary log, replication, process list):
    /// `SHOW MASTER STATUS`, `SHOW SLAVE STATUS`, `SHOW PROCESSLIST`, …
    SERVER_STATE = 12;
    /// The transaction this statement describes is read-only: `SET TRANSACTION READ ONLY`,
    /// `START TRANSACTION READ ONLY`.
    READ_ONLY_TXN = 13;
    /// `SET SESSION TRANSACTION …`: the characteristics apply to every later transaction, not
    /// only the next one.
    SESSION_SCOPE = 14;
    /// `COMMIT AND CHAIN` / `ROLLBACK AND CHAIN`: a new transaction starts at once.
    TXN_CHAIN = 15;
    /// `COMMIT RELEASE` / `ROLLBACK RELEASE`: the server closes the connection afterwards.
    TXN_RELEASE = 16;
    /// The statement sets `autocommit` to 1 (also set when mixed with other assignments).
    AUTOCOMMIT_ON = 17;
    /// The statement sets `autocommit` to 0 (also set when mixed with other assignments).
    AUTOCOMMIT_OFF = 18;
    /// A string, quoted identifier or comment is not closed: the server will reject it.
    UNTERMINATED = 19;
    /// A `"…"` literal contains `\"`; under `ANSI_QUOTES` the server would cut the statement
    /// elsewhere than we did, so what we saw cannot be trusted.
    AMBIGUOUS_QUOTING = 20;
}

impl Flags {
    /// No flag set.
    pub const fn empty() -> Flags {
        Flags(0)
    }

    /// The raw bits.
    pub const fn bits(self) -> u32 {
        self.0
    }

    /// True if every flag in `other` is set in `self`.
    pub const fn contains(self, other: Flags) -> bool {
        self.0 & other.0 == other.0
    }

    /// True if at least one flag in `other` is set in `self`.
    pub const fn intersects(self, other: Flags) -> bool {
        self.0 & other.0 != 0
    }

    /// The flags set in `self` or in `other`.
    pub const fn union(self, other: Flags) -> Flags {
        Flags(self.0 | other.0)
    }

    /// True if no flag is set.
    pub const fn is_empty(self) -> bool {
        self.0 == 0
    }

    /// Set the flags in `other`.
    pub fn insert(&mut self, other: Flags) {
        self.0 |= other.0;
    }

    /// Clear the flags in `other`.
    pub fn remove(&mut self, other: Flags) {
        self.0 &= !other.0;
    }
}

impl BitOr for Flags {
    type Output = Flags;

    fn bitor(self, rhs: Flags) -> Flags {
        Flags(self.0 | rhs.0)
    }
}

impl BitOrAssign for Flags {
    fn bitor_assign(&mut self, rhs: Flags) {
        self.0 |= rhs.0;
    }
}

impl fmt::Debug for Flags {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("Flags(")?;
        let mut first = true;
        for (name, flag) in Flags::NAMED {
            if self.contains(*flag) {
                if !first {
                    f.write_str(" | ")?;
                }
                f.write_str(name)?;
                first = false;
            }
        }
        f.write_str(")")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn set_operations() {
        let mut flags = Flags::empty();
        assert!(flags.is_empty());
        flags.insert(Flags::LOCKING_READ);
        flags |= Flags::SELECT_INTO;
        assert!(flags.contains(Flags::LOCKING_READ | Flags::SELECT_INTO));
        assert!(!flags.contains(Flags::LOCKING_READ | Flags::MULTI_STATEMENT));
        assert!(flags.intersects(Flags::LOCKING_READ | Flags::MULTI_STATEMENT));
        flags.remove(Flags::LOCKING_READ);
        assert_eq!(flags, Flags::SELECT_INTO);
    }

    #[test]
    fn bits_are_distinct() {
        let mut seen = 0u32;
        for (name, flag) in Flags::NAMED {
            assert_eq!(flag.bits().count_ones(), 1, "{name}");
            assert_eq!(seen & flag.bits(), 0, "{name} reuses a bit");
            seen |= flag.bits();
        }
    }

    #[test]
    fn debug_lists_names() {
        let flags = Flags::MULTI_STATEMENT | Flags::LOCKING_READ;
        assert_eq!(
            format!("{flags:?}"),
            "Flags(LOCKING_READ | MULTI_STATEMENT)"
        );
        assert_eq!(format!("{:?}", Flags::empty()), "Flags()");
    }
}
