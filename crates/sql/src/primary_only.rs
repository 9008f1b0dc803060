//! Names of functions and system variables whose value only the primary, or only the connection
//! that ran the previous statement, can give.

use crate::flags::Flags;
use crate::token::eq_keyword;

/// Flags raised by a call to the function `name` (the identifier right before a `(`).
#[inline]
pub(crate) fn function_flags(name: &[u8]) -> Flags {
    // Dispatch on length first: nearly every identifier before `(` is rejected after one compare.
    let candidates: &[(&[u8], Flags)] = match name.len() {
        6 => &[(b"SETVAL", Flags::PRIMARY_FUNCTION)],
        7 => &[
            (b"NEXTVAL", Flags::PRIMARY_FUNCTION),
            (b"LASTVAL", Flags::PRIMARY_FUNCTION),
        ],
        8 => &[(
            b"GET_LOCK",
            Flags::PRIMARY_FUNCTION.union(Flags::USES_GET_LOCK),
        )],
        9 => &[(
            b"ROW_COUNT",
            Flags::PRIMARY_FUNCTION.union(Flags::LAST_STATEMENT_INFO),
        )],
        10 => &[(
            b"FOUND_ROWS",
            Flags::PRIMARY_FUNCTION.union(Flags::LAST_STATEMENT_INFO),
        )],
        12 => &[
            (b"RELEASE_LOCK", Flags::PRIMARY_FUNCTION),
            (b"IS_USED_LOCK", Flags::PRIMARY_FUNCTION),
            (b"IS_FREE_LOCK", Flags::PRIMARY_FUNCTION),
        ],
        14 => &[(b"LAST_INSERT_ID", Flags::PRIMARY_FUNCTION)],
        17 => &[(b"RELEASE_ALL_LOCKS", Flags::PRIMARY_FUNCTION)],
        _ => &[],
    };
    candidates
        .iter()
        .find(|(candidate, _)| eq_keyword(name, candidate))
        .map_or(Flags::empty(), |&(_, flags)| flags)
}

/// Flags raised by reading the system variable `@@text` (`text` may carry a `scope.` prefix).
#[inline]
pub(crate) fn sysvar_flags(text: &[u8]) -> Flags {
    let name = match text.iter().rposition(|&b| b == b'.') {
        Some(dot) => &text[dot + 1..],
        None => text,
    };
    let specific = if eq_keyword(name, b"IDENTITY") || eq_keyword(name, b"LAST_INSERT_ID") {
        Flags::PRIMARY_FUNCTION
    } else if eq_keyword(name, b"WARNING_COUNT") || eq_keyword(name, b"ERROR_COUNT") {
        Flags::LAST_STATEMENT_INFO
    } else {
        Flags::empty()
    };
    Flags::SYSVAR_READ | specific
}

/// True for the word after `.` in Oracle-style sequence access: `seq.NEXTVAL`, `seq.CURRVAL`.
#[inline]
pub(crate) fn is_sequence_pseudo_column(name: &[u8]) -> bool {
    eq_keyword(name, b"NEXTVAL") || eq_keyword(name, b"CURRVAL")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn known_functions_any_case() {
        assert_eq!(function_flags(b"last_insert_id"), Flags::PRIMARY_FUNCTION);
        assert_eq!(
            function_flags(b"Get_Lock"),
            Flags::PRIMARY_FUNCTION | Flags::USES_GET_LOCK
        );
        assert!(function_flags(b"found_rows").contains(Flags::LAST_STATEMENT_INFO));
        assert_eq!(
            function_flags(b"RELEASE_ALL_LOCKS"),
            Flags::PRIMARY_FUNCTION
        );
        assert_eq!(function_flags(b"setval"), Flags::PRIMARY_FUNCTION);
    }

    #[test]
    fn other_functions_and_lookalikes_raise_nothing() {
        for name in [
            &b"COUNT"[..],
            b"NOW",
            b"last_insert_id_col",
            b"GET_LOCKS",
            b"lock",
            b"",
        ] {
            assert!(function_flags(name).is_empty(), "{name:?}");
        }
    }

    #[test]
    fn sysvars() {
        assert_eq!(
            sysvar_flags(b"IDENTITY"),
            Flags::SYSVAR_READ | Flags::PRIMARY_FUNCTION
        );
        assert_eq!(
            sysvar_flags(b"session.last_insert_id"),
            Flags::SYSVAR_READ | Flags::PRIMARY_FUNCTION
        );
        assert_eq!(
            sysvar_flags(b"warning_count"),
            Flags::SYSVAR_READ | Flags::LAST_STATEMENT_INFO
        );
        assert_eq!(sysvar_flags(b"session.tx_isolation"), Flags::SYSVAR_READ);
        assert_eq!(sysvar_flags(b""), Flags::SYSVAR_READ);
    }
}
