//! Parsing YAML text into a small generic tree that remembers where every
//! node came from (line and column), so later problems can point at it.

use std::fmt;

use serde::de::{Deserialize, Deserializer, MapAccess, SeqAccess, Visitor};
use serde_saphyr::Spanned;

use crate::errors::Problem;

/// Path used for problems that are about the YAML text itself.
pub(crate) const SYNTAX_PATH: &str = "<yaml>";

/// One YAML node with its 1-based source position (0 when unknown).
#[derive(Debug, Clone, PartialEq)]
pub(crate) struct Node {
    pub value: Value,
    pub line: u32,
    pub column: u32,
}

#[derive(Debug, Clone, PartialEq)]
pub(crate) enum Value {
    Null,
    Bool(bool),
    Int(i128),
    Float(f64),
    Str(String),
    Seq(Vec<Node>),
    Map(Vec<(Node, Node)>),
    /// A value that already produced a problem (for example a failed
    /// `${VAR}` substitution); readers skip it silently.
    Invalid,
}

impl Value {
    /// A short human name of the value's kind, for "expected X, found Y".
    pub(crate) fn kind(&self) -> &'static str {
        match self {
            Value::Null => "nothing",
            Value::Bool(_) => "a boolean",
            Value::Int(_) => "an integer",
            Value::Float(_) => "a number",
            Value::Str(_) => "a string",
            Value::Seq(_) => "a list",
            Value::Map(_) => "a mapping",
            Value::Invalid => "an invalid value",
        }
    }
}

/// Parses `text` into a tree. Syntax errors, duplicate keys and exceeded
/// parser budgets are reported as a single problem with line and column.
pub(crate) fn parse_tree(text: &str) -> Result<Node, Problem> {
    let options = serde_saphyr::options! {
        strict_booleans: true,
        leading_zero_numbers_as_strings: true,
        with_snippet: false,
    };
    match serde_saphyr::from_str_with_options::<Spanned<Value>>(text, options) {
        Ok(spanned) => Ok(into_node(spanned)),
        Err(err) => {
            let (line, column) = match err.location() {
                Some(loc) if loc.line() > 0 => {
                    (Some(saturate(loc.line())), Some(saturate(loc.column())))
                }
                _ => (None, None),
            };
            let message = strip_location_suffix(&err.to_string());
            Err(Problem {
                path: SYNTAX_PATH.to_owned(),
                message: format!("invalid YAML: {message}"),
                line,
                column,
            })
        }
    }
}

fn into_node(spanned: Spanned<Value>) -> Node {
    Node {
        value: spanned.value,
        line: saturate(spanned.referenced.line()),
        column: saturate(spanned.referenced.column()),
    }
}

fn saturate(position: u64) -> u32 {
    u32::try_from(position).unwrap_or(u32::MAX)
}

/// serde-saphyr appends " at line L, column C" (and sometimes more
/// positions) to its messages; the position is kept separately, so cut the
/// text there. Advice meant for programmers using the library goes too.
fn strip_location_suffix(message: &str) -> String {
    let mut text = message.lines().next().unwrap_or_default();
    if let Some(idx) = text.find(", set DuplicateKeyPolicy") {
        text = &text[..idx];
    }
    let mut search_from = 0;
    while let Some(found) = text[search_from..].find(" at line ") {
        let idx = search_from + found;
        let after = &text[idx + " at line ".len()..];
        let digits = after.chars().take_while(char::is_ascii_digit).count();
        if digits > 0 && after[digits..].starts_with(", column ") {
            text = &text[..idx];
            break;
        }
        search_from = idx + 1;
    }
    if text.starts_with("budget breached") {
        return format!("document too large or too deeply nested ({text})");
    }
    text.to_owned()
}

/// Deserializes a value whose children carry spans; the span of the value
/// itself is attached by the caller through `Spanned`.
impl<'de> Deserialize<'de> for Value {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        deserializer.deserialize_any(ValueVisitor)
    }
}

struct ValueVisitor;

impl<'de> Visitor<'de> for ValueVisitor {
    type Value = Value;

    fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
        f.write_str("any YAML value")
    }

    fn visit_unit<E>(self) -> Result<Value, E> {
        Ok(Value::Null)
    }

    fn visit_none<E>(self) -> Result<Value, E> {
        Ok(Value::Null)
    }

    fn visit_some<D: Deserializer<'de>>(self, deserializer: D) -> Result<Value, D::Error> {
        Value::deserialize(deserializer)
    }

    fn visit_bool<E>(self, v: bool) -> Result<Value, E> {
        Ok(Value::Bool(v))
    }

    fn visit_i64<E>(self, v: i64) -> Result<Value, E> {
        Ok(Value::Int(i128::from(v)))
    }

    fn visit_u64<E>(self, v: u64) -> Result<Value, E> {
        Ok(Value::Int(i128::from(v)))
    }

    fn visit_i128<E>(self, v: i128) -> Result<Value, E> {
        Ok(Value::Int(v))
    }

    fn visit_f64<E>(self, v: f64) -> Result<Value, E> {
        Ok(Value::Float(v))
    }

    fn visit_str<E>(self, v: &str) -> Result<Value, E> {
        Ok(Value::Str(v.to_owned()))
    }

    fn visit_string<E>(self, v: String) -> Result<Value, E> {
        Ok(Value::Str(v))
    }

    fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<Value, A::Error> {
        let mut items = Vec::new();
        while let Some(item) = seq.next_element::<Spanned<Value>>()? {
            items.push(into_node(item));
        }
        Ok(Value::Seq(items))
    }

    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<Value, A::Error> {
        let mut entries = Vec::new();
        while let Some((key, value)) = map.next_entry::<Spanned<Value>, Spanned<Value>>()? {
            entries.push((into_node(key), into_node(value)));
        }
        Ok(Value::Map(entries))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn map_entries(node: &Node) -> &[(Node, Node)] {
        match &node.value {
            Value::Map(entries) => entries,
            other => panic!("expected a map, got {other:?}"),
        }
    }

    #[test]
    fn scalars_keep_config_friendly_types_and_positions() {
        let tree = parse_tree("a: 127.0.0.1:6033\nn: yes\nz: 0123\ni: 42\nb: true\nx:\n").unwrap();
        let entries = map_entries(&tree);
        assert_eq!(entries[0].1.value, Value::Str("127.0.0.1:6033".into()));
        assert_eq!((entries[0].1.line, entries[0].1.column), (1, 4));
        // YAML 1.1 booleans stay strings, leading zeros stay strings.
        assert_eq!(entries[1].1.value, Value::Str("yes".into()));
        assert_eq!(entries[2].1.value, Value::Str("0123".into()));
        assert_eq!(entries[3].1.value, Value::Int(42));
        assert_eq!(entries[4].1.value, Value::Bool(true));
        assert_eq!(entries[5].1.value, Value::Null);
        assert_eq!(entries[5].0.line, 6);
    }

    #[test]
    fn syntax_error_is_one_problem_with_position() {
        let problem = parse_tree("a:\n  b: 1\n c: 2\n").unwrap_err();
        assert_eq!(problem.path, SYNTAX_PATH);
        assert_eq!(problem.line, Some(3));
        assert!(problem.column.is_some());
        assert!(
            !problem.message.contains(" at line "),
            "{}",
            problem.message
        );
    }

    #[test]
    fn duplicate_keys_are_rejected_with_position() {
        let problem = parse_tree("a: 1\nb: 2\na: 3\n").unwrap_err();
        assert_eq!(problem.line, Some(3));
        assert!(problem.message.contains("duplicate"), "{}", problem.message);
    }

    #[test]
    fn empty_document_is_null() {
        assert_eq!(parse_tree("").unwrap().value, Value::Null);
        assert_eq!(parse_tree("# nothing\n").unwrap().value, Value::Null);
    }

    #[test]
    fn strip_location_suffix_only_strips_positions() {
        assert_eq!(
            strip_location_suffix("bad thing at line 3, column 4"),
            "bad thing"
        );
        assert_eq!(
            strip_location_suffix("look at line noise"),
            "look at line noise"
        );
        assert_eq!(
            strip_location_suffix("x at line 1, column 2 (defined at line 5, column 9)"),
            "x"
        );
        assert_eq!(
            strip_location_suffix("duplicate mapping key: a, set DuplicateKeyPolicy in Options"),
            "duplicate mapping key: a"
        );
    }
}
