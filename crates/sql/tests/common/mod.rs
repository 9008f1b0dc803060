//! Table-driven expectations shared by the statement test files.

#![allow(dead_code)] // each test file uses a different part of this module

use rwproxy_sql::{classify, Flags, StatementKind};

/// `is_read_only()` is expected to be true.
pub const REPLICA: bool = true;
/// `is_read_only()` is expected to be false.
pub const PRIMARY: bool = false;

/// One statement and what the classifier must say about it.
pub struct Expect {
    pub sql: &'static str,
    pub kind: StatementKind,
    pub flags: Flags,
    pub read_only: bool,
}

/// Build a list of [`Expect`] and check it:
///
/// ```ignore
/// expect_all! {
///     "SELECT 1" => Read, [], REPLICA;
///     "SELECT 1 FOR UPDATE" => Read, [LOCKING_READ], PRIMARY;
/// }
/// ```
#[macro_export]
macro_rules! expect_all {
    ($($sql:expr => $kind:expr, [$($flag:ident)|*], $route:expr;)*) => {
        $crate::common::check(&[$(
            $crate::common::Expect {
                sql: $sql,
                kind: $kind,
                flags: rwproxy_sql::Flags::empty() $(| rwproxy_sql::Flags::$flag)*,
                read_only: $route,
            }
        ),*])
    };
}

/// Classify every statement and fail with the full list of mismatches.
pub fn check(cases: &[Expect]) {
    assert!(!cases.is_empty(), "no cases");
    let mut failures = Vec::new();
    for case in cases {
        let got = classify(case.sql.as_bytes());
        if got.kind != case.kind || got.flags != case.flags || got.is_read_only() != case.read_only
        {
            failures.push(format!(
                "{:?}\n    expected {:?} {:?} read_only={}\n    got      {:?} {:?} read_only={}",
                case.sql,
                case.kind,
                case.flags,
                case.read_only,
                got.kind,
                got.flags,
                got.is_read_only()
            ));
        }
    }
    assert!(
        failures.is_empty(),
        "{} of {} statements misclassified:\n{}",
        failures.len(),
        cases.len(),
        failures.join("\n")
    );
}

/// Classify raw bytes and return kind and flags, for tests that are not table-driven.
pub fn kind_and_flags(sql: &[u8]) -> (StatementKind, Flags) {
    let c = classify(sql);
    (c.kind, c.flags)
}
