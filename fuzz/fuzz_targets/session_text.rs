//! The session's other readers of statement text (`CONNECTION_ID()` substitution, `KILL`, the
//! process list, `DROP TEMPORARY TABLE`) on any bytes, under every quoting mode: no panic; a
//! substituted statement maps back to the original as a whole, and its column names map back
//! without panicking.
#![no_main]

use libfuzzer_sys::fuzz_target;
use rwproxy_sql::{connection_id, kill, process_list, temporary_tables, ClassifyOptions};

fuzz_target!(|data: &[u8]| {
    let _ = kill::parse(data);
    for (no_backslash_escapes, ansi_quotes) in
        [(false, false), (true, false), (false, true), (true, true)]
    {
        let options = ClassifyOptions {
            no_backslash_escapes,
            ansi_quotes,
        };
        let _ = process_list::named(data, options);
        let _ = temporary_tables::named_by_drop(data, options);
        if let Some(s) = connection_id::substitute(data, 4_000_000_000, options) {
            assert_eq!(s.original_name(&s.sql, &mut 0).as_deref(), Some(data));
            let mut cursor = 0;
            for name in [&b"4000000000"[..], b"4", b"(4000000000)", b"0 + 1"] {
                let _ = s.original_name(name, &mut cursor);
            }
        }
    }
});
