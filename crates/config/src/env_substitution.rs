//! `${VAR}` and `${VAR:-default}` substitution in YAML string values.
//!
//! Substitution happens after parsing, on string scalars only (never on
//! keys or comments), so a value can contain any character without
//! breaking the YAML. `$${` produces a literal `${`.

use crate::env::EnvSource;
use crate::errors::Problem;
use crate::paths::{child_path, index_path};
use crate::yaml_tree::{Node, Value};

/// Replaces variables in every string scalar of `node`. A value that
/// cannot be substituted becomes [`Value::Invalid`] and adds a problem.
pub(crate) fn substitute_tree(
    node: &mut Node,
    path: &str,
    env: &dyn EnvSource,
    problems: &mut Vec<Problem>,
) {
    match &mut node.value {
        Value::Str(text) => {
            if !text.contains('$') {
                return;
            }
            match substitute(text, env) {
                Ok(replaced) => *text = replaced,
                Err(message) => {
                    problems.push(Problem {
                        path: path.to_owned(),
                        message,
                        line: Some(node.line),
                        column: Some(node.column),
                    });
                    node.value = Value::Invalid;
                }
            }
        }
        Value::Seq(items) => {
            for (i, item) in items.iter_mut().enumerate() {
                substitute_tree(item, &index_path(path, i), env, problems);
            }
        }
        Value::Map(entries) => {
            for (key, value) in entries.iter_mut() {
                let key_text = match &key.value {
                    Value::Str(k) => k.clone(),
                    other => format!("<{}>", other.kind()),
                };
                substitute_tree(value, &child_path(path, &key_text), env, problems);
            }
        }
        Value::Null | Value::Bool(_) | Value::Int(_) | Value::Float(_) | Value::Invalid => {}
    }
}

/// Substitutes the variables in one string.
pub(crate) fn substitute(text: &str, env: &dyn EnvSource) -> Result<String, String> {
    let mut out = String::with_capacity(text.len());
    let mut rest = text;
    while let Some(dollar) = rest.find('$') {
        out.push_str(&rest[..dollar]);
        let after = &rest[dollar..];
        if let Some(tail) = after.strip_prefix("$${") {
            out.push_str("${");
            rest = tail;
        } else if let Some(tail) = after.strip_prefix("${") {
            let Some(close) = tail.find('}') else {
                return Err(format!(
                    "unterminated '${{' in '{text}' (write $${{ for a literal ${{)"
                ));
            };
            out.push_str(&expand(&tail[..close], env)?);
            rest = &tail[close + 1..];
        } else {
            out.push('$');
            rest = &after[1..];
        }
    }
    out.push_str(rest);
    Ok(out)
}

/// Expands the inside of `${...}`: `NAME` or `NAME:-default`.
fn expand(inner: &str, env: &dyn EnvSource) -> Result<String, String> {
    let (name, default) = match inner.split_once(":-") {
        Some((name, default)) => (name, Some(default)),
        None => (inner, None),
    };
    if !is_variable_name(name) {
        return Err(format!(
            "invalid variable name '{name}' in '${{{inner}}}' (use letters, digits and _, not starting with a digit)"
        ));
    }
    match (env.var(name), default) {
        // Like the shell's `:-`, an empty value also takes the default.
        (Some(value), Some(default)) if value.is_empty() => Ok(default.to_owned()),
        (Some(value), _) => Ok(value),
        (None, Some(default)) => Ok(default.to_owned()),
        (None, None) => Err(format!(
            "environment variable {name} is not set (set it, or give a default with ${{{name}:-default}})"
        )),
    }
}

fn is_variable_name(name: &str) -> bool {
    let mut chars = name.chars();
    matches!(chars.next(), Some(c) if c.is_ascii_alphabetic() || c == '_')
        && chars.all(|c| c.is_ascii_alphanumeric() || c == '_')
}

#[cfg(test)]
mod tests {
    use std::collections::HashMap;

    use super::*;

    fn env(pairs: &[(&str, &str)]) -> HashMap<String, String> {
        pairs
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect()
    }

    #[test]
    fn replaces_set_variables_and_defaults() {
        let e = env(&[("A", "alpha"), ("EMPTY", "")]);
        assert_eq!(substitute("x${A}y", &e).unwrap(), "xalphay");
        assert_eq!(substitute("${A}${A}", &e).unwrap(), "alphaalpha");
        assert_eq!(substitute("${B:-beta}", &e).unwrap(), "beta");
        assert_eq!(substitute("${A:-beta}", &e).unwrap(), "alpha");
        assert_eq!(substitute("${EMPTY:-d}", &e).unwrap(), "d");
        assert_eq!(substitute("${EMPTY}", &e).unwrap(), "");
        assert_eq!(substitute("${B:-}", &e).unwrap(), "");
        assert_eq!(substitute("${B:-a:b-c}", &e).unwrap(), "a:b-c");
    }

    #[test]
    fn dollar_without_brace_and_escapes_stay_literal() {
        let e = env(&[("A", "alpha")]);
        assert_eq!(substitute("pa$$word$", &e).unwrap(), "pa$$word$");
        assert_eq!(substitute("$${A}", &e).unwrap(), "${A}");
        // Only `$${` is an escape; scanning is left to right.
        assert_eq!(substitute("$$${A}", &e).unwrap(), "$${A}");
        assert_eq!(substitute("$${A}${A}", &e).unwrap(), "${A}alpha");
    }

    #[test]
    fn substituted_values_are_not_expanded_again() {
        let e = env(&[("A", "${B}"), ("B", "no")]);
        assert_eq!(substitute("${A}", &e).unwrap(), "${B}");
    }

    #[test]
    fn reports_missing_unterminated_and_bad_names() {
        let e = env(&[]);
        assert!(substitute("${MISSING}", &e)
            .unwrap_err()
            .contains("MISSING is not set"));
        assert!(substitute("${OPEN", &e)
            .unwrap_err()
            .contains("unterminated"));
        assert!(substitute("${1X}", &e)
            .unwrap_err()
            .contains("invalid variable name"));
        assert!(substitute("${}", &e)
            .unwrap_err()
            .contains("invalid variable name"));
        assert!(substitute("${A B}", &e)
            .unwrap_err()
            .contains("invalid variable name"));
    }

    #[test]
    fn tree_substitution_marks_failures_with_their_path() {
        let mut tree =
            crate::yaml_tree::parse_tree("users:\n  - name: ${U}\n    password: ${P}\n").unwrap();
        let mut problems = Vec::new();
        substitute_tree(&mut tree, "", &env(&[("U", "app")]), &mut problems);
        assert_eq!(problems.len(), 1);
        assert_eq!(problems[0].path, "users[0].password");
        assert_eq!(problems[0].line, Some(3));
        let Value::Map(top) = &tree.value else {
            panic!()
        };
        let Value::Seq(users) = &top[0].1.value else {
            panic!()
        };
        let Value::Map(user) = &users[0].value else {
            panic!()
        };
        assert_eq!(user[0].1.value, Value::Str("app".into()));
        assert_eq!(user[1].1.value, Value::Invalid);
    }
}
