//! Reading typed values out of the YAML tree while collecting problems.
//!
//! Every reader method reports what is wrong at the right path and
//! returns `None`, so building a section goes on and finds the next
//! problem too. A missing key and an empty value (`key:`) read the same.

use std::net::SocketAddr;
use std::time::Duration;

use crate::errors::Problem;
use crate::paths::{child_path, display_path};
use crate::suggest::{closest, did_you_mean};
use crate::units::{parse_duration, parse_size};
use crate::yaml_tree::{Node, Value};

/// Problems found so far.
#[derive(Debug, Default)]
pub(crate) struct Problems {
    list: Vec<Problem>,
}

impl Problems {
    /// Records `message` at `path`, located at `node` when given.
    pub(crate) fn add(&mut self, path: &str, node: Option<&Node>, message: impl Into<String>) {
        let (line, column) = match node {
            Some(n) if n.line > 0 => (Some(n.line), Some(n.column)),
            _ => (None, None),
        };
        self.list.push(Problem {
            path: display_path(path),
            message: message.into(),
            line,
            column,
        });
    }

    pub(crate) fn push(&mut self, problem: Problem) {
        self.list.push(problem);
    }

    pub(crate) fn is_empty(&self) -> bool {
        self.list.is_empty()
    }

    pub(crate) fn into_vec(self) -> Vec<Problem> {
        self.list
    }
}

/// The keys of one YAML mapping, checked against the keys it may have.
pub(crate) struct MapReader<'a> {
    path: String,
    node: Option<&'a Node>,
    entries: Vec<(&'a str, &'a Node)>,
    /// Known keys that an unknown key was reported as a likely typo of.
    suggested: Vec<&'static str>,
}

impl<'a> MapReader<'a> {
    /// Reads the mapping at `path`. Absent or empty means an empty mapping.
    /// Anything else that is not a mapping is reported and yields `None`.
    /// Unknown keys and non-string keys are reported here.
    pub(crate) fn new(
        node: Option<&'a Node>,
        path: &str,
        known: &[&'static str],
        problems: &mut Problems,
    ) -> Option<Self> {
        let mut reader = MapReader {
            path: path.to_owned(),
            node,
            entries: Vec::new(),
            suggested: Vec::new(),
        };
        let Some(n) = node else {
            return Some(reader);
        };
        match &n.value {
            Value::Null => Some(reader),
            Value::Invalid => None,
            Value::Map(entries) => {
                for (key, value) in entries {
                    let Value::Str(name) = &key.value else {
                        problems.add(
                            path,
                            Some(key),
                            format!("keys must be strings, found {}", key.value.kind()),
                        );
                        continue;
                    };
                    if known.contains(&name.as_str()) {
                        reader.entries.push((name.as_str(), value));
                    } else {
                        reader.suggested.extend(closest(name, known));
                        problems.add(
                            &child_path(path, name),
                            Some(key),
                            format!("unknown key '{name}'{}", did_you_mean(name, known)),
                        );
                    }
                }
                Some(reader)
            }
            other => {
                problems.add(
                    path,
                    Some(n),
                    format!("expected a mapping, found {}", other.kind()),
                );
                None
            }
        }
    }

    /// Like [`MapReader::new`], but a wrongly typed section reads as empty
    /// (it is still reported), so defaults apply to it.
    pub(crate) fn section(
        node: Option<&'a Node>,
        path: &str,
        known: &[&'static str],
        problems: &mut Problems,
    ) -> Self {
        Self::new(node, path, known, problems).unwrap_or(MapReader {
            path: path.to_owned(),
            node: None,
            entries: Vec::new(),
            suggested: Vec::new(),
        })
    }

    /// The path of `key` in this mapping.
    pub(crate) fn path_of(&self, key: &str) -> String {
        child_path(&self.path, key)
    }

    /// This mapping's node (for locating problems about the whole mapping).
    pub(crate) fn node(&self) -> Option<&'a Node> {
        self.node
    }

    /// Whether the mapping was written in the file with a non-empty value.
    pub(crate) fn is_present(&self) -> bool {
        self.node.is_some_and(|n| !matches!(n.value, Value::Null))
    }

    /// The value of `key`; `None` when absent or empty.
    pub(crate) fn get(&self, key: &str) -> Option<&'a Node> {
        self.entries
            .iter()
            .find(|(name, _)| *name == key)
            .map(|(_, node)| *node)
            .filter(|node| !matches!(node.value, Value::Null))
    }

    /// Whether `key` has a value.
    pub(crate) fn has(&self, key: &str) -> bool {
        self.get(key).is_some()
    }

    /// Reports that `key` is required but missing, unless a misspelling of
    /// it was already reported as an unknown key.
    pub(crate) fn missing(&self, key: &str, problems: &mut Problems, message: &str) {
        if !self.suggested.contains(&key) {
            problems.add(&self.path_of(key), self.node, message);
        }
    }

    pub(crate) fn string(&self, key: &str, problems: &mut Problems) -> Option<String> {
        let node = self.get(key)?;
        read_string(node, &self.path_of(key), problems)
    }

    /// A string that must be present and non-empty.
    pub(crate) fn required_string(&self, key: &str, problems: &mut Problems) -> Option<String> {
        match self.get(key) {
            None => {
                self.missing(key, problems, "is required");
                None
            }
            Some(node) => {
                let value = read_string(node, &self.path_of(key), problems)?;
                if value.is_empty() {
                    problems.add(&self.path_of(key), Some(node), "must not be empty");
                    return None;
                }
                Some(value)
            }
        }
    }

    pub(crate) fn bool(&self, key: &str, problems: &mut Problems) -> Option<bool> {
        let node = self.get(key)?;
        let path = self.path_of(key);
        match &node.value {
            Value::Bool(b) => Some(*b),
            // A `${VAR}` always yields a string; accept its boolean spellings.
            Value::Str(s) if s.eq_ignore_ascii_case("true") => Some(true),
            Value::Str(s) if s.eq_ignore_ascii_case("false") => Some(false),
            Value::Invalid => None,
            other => {
                problems.add(
                    &path,
                    Some(node),
                    format!("expected true or false, found {}", describe(other)),
                );
                None
            }
        }
    }

    /// An integer in `min..=max`.
    pub(crate) fn integer(
        &self,
        key: &str,
        min: u64,
        max: u64,
        problems: &mut Problems,
    ) -> Option<u64> {
        let node = self.get(key)?;
        let path = self.path_of(key);
        let value: i128 = match &node.value {
            Value::Int(i) => *i,
            Value::Str(s) => match s.trim().parse::<i128>() {
                Ok(i) => i,
                Err(_) => {
                    problems.add(
                        &path,
                        Some(node),
                        format!("expected a whole number, found '{s}'"),
                    );
                    return None;
                }
            },
            Value::Invalid => return None,
            other => {
                problems.add(
                    &path,
                    Some(node),
                    format!("expected a whole number, found {}", describe(other)),
                );
                return None;
            }
        };
        match u64::try_from(value) {
            Ok(v) if (min..=max).contains(&v) => Some(v),
            _ => {
                problems.add(
                    &path,
                    Some(node),
                    format!("must be between {min} and {max}, found {value}"),
                );
                None
            }
        }
    }

    /// A duration; `positive` rejects zero.
    pub(crate) fn duration(
        &self,
        key: &str,
        positive: bool,
        problems: &mut Problems,
    ) -> Option<Duration> {
        let node = self.get(key)?;
        let path = self.path_of(key);
        let text = match &node.value {
            Value::Str(s) => s,
            Value::Invalid => return None,
            Value::Int(i) => {
                problems.add(
                    &path,
                    Some(node),
                    format!("duration {i} needs a unit (us, ms, s, m, h), like {i}ms or {i}s"),
                );
                return None;
            }
            other => {
                problems.add(
                    &path,
                    Some(node),
                    format!(
                        "expected a duration like 500ms or 2s, found {}",
                        describe(other)
                    ),
                );
                return None;
            }
        };
        match parse_duration(text) {
            Ok(d) if positive && d.is_zero() => {
                problems.add(&path, Some(node), "must be greater than zero");
                None
            }
            Ok(d) => Some(d),
            Err(message) => {
                problems.add(&path, Some(node), message);
                None
            }
        }
    }

    /// A byte size in `min..=max`.
    pub(crate) fn size(
        &self,
        key: &str,
        min: u64,
        max: u64,
        problems: &mut Problems,
    ) -> Option<u64> {
        let node = self.get(key)?;
        let path = self.path_of(key);
        let parsed = match &node.value {
            Value::Int(i) => u64::try_from(*i).map_err(|_| format!("invalid size {i}")),
            Value::Str(s) => parse_size(s),
            Value::Invalid => return None,
            other => Err(format!(
                "expected a size like 4096, 16KiB or 64MiB, found {}",
                describe(other)
            )),
        };
        match parsed {
            Ok(bytes) if (min..=max).contains(&bytes) => Some(bytes),
            Ok(bytes) => {
                problems.add(
                    &path,
                    Some(node),
                    format!(
                        "must be between {} and {}, found {}",
                        crate::units::format_size(min),
                        crate::units::format_size(max),
                        crate::units::format_size(bytes)
                    ),
                );
                None
            }
            Err(message) => {
                problems.add(&path, Some(node), message);
                None
            }
        }
    }

    /// A listening address: an IP literal and a port (`127.0.0.1:6033`,
    /// `[::1]:6033`). Port 0 asks the OS for a free port.
    pub(crate) fn socket_addr(&self, key: &str, problems: &mut Problems) -> Option<SocketAddr> {
        let node = self.get(key)?;
        let path = self.path_of(key);
        let text = read_string(node, &path, problems)?;
        match text.trim().parse::<SocketAddr>() {
            Ok(addr) => Some(addr),
            Err(_) => {
                problems.add(
                    &path,
                    Some(node),
                    format!(
                        "invalid listen address '{text}': expected IP:port like 127.0.0.1:6033 or [::1]:6033 (host names are not accepted here)"
                    ),
                );
                None
            }
        }
    }

    /// One of a fixed set of words.
    pub(crate) fn choice<T: Copy>(
        &self,
        key: &str,
        choices: &[(&str, T)],
        problems: &mut Problems,
    ) -> Option<T> {
        let node = self.get(key)?;
        read_choice(node, &self.path_of(key), choices, problems)
    }

    /// The items of the list at `key` (empty when absent); a non-list is
    /// reported.
    pub(crate) fn list(&self, key: &str, problems: &mut Problems) -> &'a [Node] {
        let Some(node) = self.get(key) else {
            return &[];
        };
        match &node.value {
            Value::Seq(items) => items,
            Value::Invalid => &[],
            other => {
                problems.add(
                    &self.path_of(key),
                    Some(node),
                    format!("expected a list, found {}", describe(other)),
                );
                &[]
            }
        }
    }
}

/// A string scalar. Numbers and booleans are refused (with a hint to
/// quote them) rather than silently converted, since `0x10`, `1e3` or
/// `+5` would not survive the round trip.
pub(crate) fn read_string(node: &Node, path: &str, problems: &mut Problems) -> Option<String> {
    match &node.value {
        Value::Str(s) => Some(s.clone()),
        Value::Invalid => None,
        Value::Int(_) | Value::Float(_) | Value::Bool(_) => {
            problems.add(
                path,
                Some(node),
                format!(
                    "expected a string, found {} (put it in quotes to use it as text)",
                    describe(&node.value)
                ),
            );
            None
        }
        other => {
            problems.add(
                path,
                Some(node),
                format!("expected a string, found {}", other.kind()),
            );
            None
        }
    }
}

/// One of a fixed set of words, suggesting the closest on a typo.
pub(crate) fn read_choice<T: Copy>(
    node: &Node,
    path: &str,
    choices: &[(&str, T)],
    problems: &mut Problems,
) -> Option<T> {
    let text = read_string(node, path, problems)?;
    if let Some((_, value)) = choices.iter().find(|(name, _)| *name == text.trim()) {
        return Some(*value);
    }
    let names: Vec<&str> = choices.iter().map(|(name, _)| *name).collect();
    problems.add(
        path,
        Some(node),
        format!(
            "unknown value '{text}': expected one of {}{}",
            names.join(", "),
            did_you_mean(&text, &names)
        ),
    );
    None
}

/// A value's kind, with the scalar itself when short.
fn describe(value: &Value) -> String {
    match value {
        Value::Bool(b) => format!("boolean {b}"),
        Value::Int(i) => format!("integer {i}"),
        Value::Float(f) => format!("number {f}"),
        Value::Str(s) if s.chars().count() <= 40 => format!("'{s}'"),
        other => other.kind().to_owned(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::yaml_tree::parse_tree;

    fn with_reader<R>(
        yaml: &str,
        known: &[&'static str],
        f: impl FnOnce(&MapReader, &mut Problems) -> R,
    ) -> (R, Vec<Problem>) {
        let tree = parse_tree(yaml).unwrap();
        let mut problems = Problems::default();
        let reader = MapReader::section(Some(&tree), "sec", known, &mut problems);
        let result = f(&reader, &mut problems);
        (result, problems.into_vec())
    }

    #[test]
    fn unknown_keys_are_reported_with_suggestion_and_position() {
        let (_, problems) = with_reader("listen: x\nlistn: y\n", &["listen"], |_, _| ());
        assert_eq!(problems.len(), 1);
        assert_eq!(problems[0].path, "sec.listn");
        assert_eq!(
            problems[0].message,
            "unknown key 'listn' (did you mean 'listen'?)"
        );
        assert_eq!(problems[0].line, Some(2));
    }

    #[test]
    fn empty_value_reads_as_absent() {
        let (value, problems) = with_reader("a:\n", &["a"], |r, p| r.string("a", p));
        assert_eq!(value, None);
        assert!(problems.is_empty());
    }

    #[test]
    fn strings_refuse_numbers_with_a_hint() {
        let (value, problems) = with_reader("a: 1234\n", &["a"], |r, p| r.string("a", p));
        assert_eq!(value, None);
        assert!(
            problems[0].message.contains("put it in quotes"),
            "{problems:?}"
        );
    }

    #[test]
    fn integers_accept_strings_from_env_and_check_range() {
        let (v, problems) = with_reader(
            "a: '12'\nb: 0\nc: -3\nd: x\n",
            &["a", "b", "c", "d"],
            |r, p| {
                (
                    r.integer("a", 1, 100, p),
                    r.integer("b", 1, 100, p),
                    r.integer("c", 1, 100, p),
                    r.integer("d", 1, 100, p),
                )
            },
        );
        assert_eq!(v, (Some(12), None, None, None));
        let paths: Vec<_> = problems.iter().map(|p| p.path.as_str()).collect();
        assert_eq!(paths, ["sec.b", "sec.c", "sec.d"]);
        assert!(problems[0].message.contains("between 1 and 100"));
    }

    #[test]
    fn durations_explain_missing_units() {
        let (v, problems) = with_reader("a: 500\nb: 2s\nc: 0s\n", &["a", "b", "c"], |r, p| {
            (
                r.duration("a", true, p),
                r.duration("b", true, p),
                r.duration("c", true, p),
            )
        });
        assert_eq!(v, (None, Some(Duration::from_secs(2)), None));
        assert!(problems[0].message.contains("needs a unit"));
        assert!(problems[1].message.contains("greater than zero"));
    }

    #[test]
    fn choices_suggest_the_closest_word() {
        let (v, problems) = with_reader("a: round_robn\n", &["a"], |r, p| {
            r.choice("a", &[("round_robin", 1), ("weighted", 2)], p)
        });
        assert_eq!(v, None);
        assert_eq!(
            problems[0].message,
            "unknown value 'round_robn': expected one of round_robin, weighted (did you mean 'round_robin'?)"
        );
    }

    #[test]
    fn wrongly_typed_section_is_reported_once() {
        let tree = parse_tree("tls: yes\n").unwrap();
        let mut problems = Problems::default();
        let root = MapReader::section(Some(&tree), "", &["tls"], &mut problems);
        let tls = MapReader::section(root.get("tls"), "tls", &["cert"], &mut problems);
        assert!(!tls.has("cert"));
        let problems = problems.into_vec();
        assert_eq!(problems.len(), 1);
        assert_eq!(problems[0].path, "tls");
        assert_eq!(problems[0].message, "expected a mapping, found a string");
    }
}
