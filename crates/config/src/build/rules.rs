//! `routing.rules`: regex routing rules, first match wins.

use regex::RegexBuilder;

use crate::build::users::CONSISTENCIES;
use crate::model::{RouteTarget, Rule};
use crate::paths::index_path;
use crate::reader::{MapReader, Problems};
use crate::suggest::did_you_mean;

const RULE_KEYS: &[&str] = &["match", "user", "schema", "route", "consistency"];

/// Upper bound on a compiled rule pattern, so a pathological regex cannot
/// take a lot of memory.
const REGEX_SIZE_LIMIT: usize = 1 << 20;

pub(crate) fn build_rules(
    routing: &MapReader,
    backend_names: &[String],
    user_names: Option<&[String]>,
    problems: &mut Problems,
) -> Vec<Rule> {
    let items = routing.list("rules", problems);
    let mut rules = Vec::with_capacity(items.len());
    for (i, item) in items.iter().enumerate() {
        let path = index_path(&routing.path_of("rules"), i);
        let Some(entry) = MapReader::new(Some(item), &path, RULE_KEYS, problems) else {
            continue;
        };
        let pattern = entry.required_string("match", problems).and_then(|text| {
            match RegexBuilder::new(&text)
                .size_limit(REGEX_SIZE_LIMIT)
                .build()
            {
                Ok(regex) => Some(regex),
                Err(err) => {
                    problems.add(
                        &entry.path_of("match"),
                        entry.get("match"),
                        format!("invalid regular expression: {}", regex_error_line(&err)),
                    );
                    None
                }
            }
        });
        let user = optional_non_empty(&entry, "user", problems).and_then(|user| {
            match (&user, user_names) {
                (Some(name), Some(known)) if !known.contains(name) => {
                    let candidates: Vec<&str> = known.iter().map(String::as_str).collect();
                    problems.add(
                        &entry.path_of("user"),
                        entry.get("user"),
                        format!(
                            "no user '{name}' is configured in users (and users_from_backend is off){}",
                            did_you_mean(name, &candidates)
                        ),
                    );
                    None
                }
                _ => Some(user),
            }
        });
        let schema = optional_non_empty(&entry, "schema", problems);
        let route = entry
            .required_string("route", problems)
            .and_then(|text| route_target(&entry, text.trim(), backend_names, problems));
        let consistency = entry.choice("consistency", CONSISTENCIES, problems);
        let consistency_ok = !entry.has("consistency") || consistency.is_some();
        if let (Some(pattern), Some(user), Some(schema), Some(route), true) =
            (pattern, user, schema, route, consistency_ok)
        {
            rules.push(Rule {
                pattern,
                user,
                schema,
                route,
                consistency,
            });
        }
    }
    rules
}

/// `Some(None)` when absent, `Some(Some(text))` when valid, `None` when
/// reported as a problem.
fn optional_non_empty(
    entry: &MapReader,
    key: &str,
    problems: &mut Problems,
) -> Option<Option<String>> {
    if !entry.has(key) {
        return Some(None);
    }
    let text = entry.string(key, problems)?;
    if text.is_empty() {
        problems.add(&entry.path_of(key), entry.get(key), "must not be empty");
        return None;
    }
    Some(Some(text))
}

fn route_target(
    entry: &MapReader,
    text: &str,
    backend_names: &[String],
    problems: &mut Problems,
) -> Option<RouteTarget> {
    match text {
        "primary" => Some(RouteTarget::Primary),
        "replica" => Some(RouteTarget::Replica),
        name if backend_names.iter().any(|b| b == name) => {
            Some(RouteTarget::Backend(name.to_owned()))
        }
        other => {
            let mut candidates: Vec<&str> = vec!["primary", "replica"];
            candidates.extend(backend_names.iter().map(String::as_str));
            problems.add(
                &entry.path_of("route"),
                entry.get("route"),
                format!(
                    "unknown route '{other}': use primary, replica or a backend name{}",
                    did_you_mean(other, &candidates)
                ),
            );
            None
        }
    }
}

/// The regex crate's errors span several lines (pattern, caret, message);
/// keep the message line.
fn regex_error_line(err: &regex::Error) -> String {
    let text = err.to_string();
    text.lines()
        .rev()
        .find_map(|line| line.trim().strip_prefix("error: "))
        .map(str::to_owned)
        .unwrap_or_else(|| text.split_whitespace().collect::<Vec<_>>().join(" "))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn regex_errors_become_one_line() {
        // Built at run time: the pattern is meant to be invalid.
        let pattern = ["(", "unclosed"].concat();
        let err = regex::Regex::new(&pattern).unwrap_err();
        let line = regex_error_line(&err);
        assert!(!line.contains('\n'));
        assert!(line.contains("unclosed group"), "{line}");
    }
}
