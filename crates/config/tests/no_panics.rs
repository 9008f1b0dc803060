//! Malformed input of any shape yields problems, never a panic.

use std::collections::HashMap;

use rwproxy_config::parse;

fn example() -> String {
    let path = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../../proxy-config.yaml");
    std::fs::read_to_string(path).unwrap()
}

#[test]
fn every_prefix_of_the_example_parses_or_reports() {
    let text = example();
    let env = HashMap::new();
    let mut accepted = 0;
    for end in (0..=text.len()).filter(|i| text.is_char_boundary(*i)) {
        match parse(&text[..end], &env) {
            Ok(_) => accepted += 1,
            Err(errors) => assert!(!errors.problems.is_empty()),
        }
    }
    // The whole file is valid, so at least the last prefix is accepted.
    assert!(accepted >= 1);
}

#[test]
fn byte_mutations_of_the_example_never_panic() {
    let text = example().into_bytes();
    let env = HashMap::new();
    let replacements = [
        b'{', b'}', b'[', b':', b'-', b'\'', b'"', b'$', b'*', b'&', b' ', b'\t', b'\n', b'0',
        b'!', b'|',
    ];
    // A small deterministic generator (xorshift) picks positions.
    let mut state: u64 = 0x9E37_79B9_7F4A_7C15;
    let mut rejected = 0;
    for round in 0..2000 {
        state ^= state << 13;
        state ^= state >> 7;
        state ^= state << 17;
        let mut bytes = text.clone();
        let pos = (state % bytes.len() as u64) as usize;
        bytes[pos] = replacements[round % replacements.len()];
        let Ok(mutated) = String::from_utf8(bytes) else {
            continue;
        };
        if let Err(errors) = parse(&mutated, &env) {
            assert!(!errors.problems.is_empty());
            rejected += 1;
        }
    }
    assert!(rejected > 0, "some mutations must be invalid");
}

#[test]
fn odd_documents_are_reported() {
    let env = HashMap::new();
    for doc in [
        "",
        "~",
        "42",
        "'text'",
        "[1, 2]",
        "a: !!binary aGVsbG8=",
        "{}",
        "---\n---\n",
        "? [a]\n: b\n",
        "listen: *nope\n",
    ] {
        let errors = parse(doc, &env).unwrap_err();
        assert!(!errors.problems.is_empty(), "{doc:?}");
    }
}

#[test]
fn alias_bombs_are_stopped() {
    let mut doc = String::from("a0: &a0 [x, x, x, x, x, x, x, x, x, x]\n");
    for i in 1..12 {
        let prev = i - 1;
        doc.push_str(&format!(
            "a{i}: &a{i} [*a{prev}, *a{prev}, *a{prev}, *a{prev}, *a{prev}, *a{prev}, *a{prev}, *a{prev}, *a{prev}, *a{prev}]\n"
        ));
    }
    // Refused with one clear problem instead of expanding 10^12 nodes (no timing assertion
    // here: the machine's load decides how long the refusal takes).
    let errors = parse(&doc, &HashMap::new()).unwrap_err();
    assert_eq!(errors.problems.len(), 1, "{errors}");
    assert!(errors.problems[0].message.contains("too large"), "{errors}");
}
