//! The SQL classifier (a tokenizer) on any bytes, under every quoting mode: no panic.
#![no_main]

use libfuzzer_sys::fuzz_target;
use rwproxy_sql::{classify, classify_session, ClassifyOptions};

fuzz_target!(|data: &[u8]| {
    let _ = classify(data);
    for (no_backslash_escapes, ansi_quotes) in [(true, false), (false, true), (true, true)] {
        let _ = classify_session(
            data,
            ClassifyOptions {
                no_backslash_escapes,
                ansi_quotes,
            },
        );
    }
});
