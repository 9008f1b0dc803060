//! Error types: a list of configuration problems, each with the YAML path
//! it is about, and the error of [`crate::load_file`].

use std::fmt;
use std::path::PathBuf;

/// One thing wrong with a configuration.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Problem {
    /// Where the problem is, like `backends[1].address` or
    /// `routing.rules[0].match`; `<yaml>` for YAML syntax errors and
    /// `<root>` for the document as a whole.
    pub path: String,
    /// What is wrong, in one line.
    pub message: String,
    /// 1-based line in the YAML text, when known.
    pub line: Option<u32>,
    /// 1-based column in the YAML text, when known.
    pub column: Option<u32>,
}

impl fmt::Display for Problem {
    /// `path: message`, followed by ` (line L, column C)` when known.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}: {}", self.path, self.message)?;
        match (self.line, self.column) {
            (Some(line), Some(column)) => write!(f, " (line {line}, column {column})"),
            (Some(line), None) => write!(f, " (line {line})"),
            _ => Ok(()),
        }
    }
}

/// Every problem found in a configuration; never empty when returned by
/// [`crate::parse`]. Displays one problem per line.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{}", render_lines(.problems))]
pub struct ConfigErrors {
    pub problems: Vec<Problem>,
}

impl ConfigErrors {
    /// The problem at exactly `path`, if any (handy in tests and tools).
    pub fn at(&self, path: &str) -> Option<&Problem> {
        self.problems.iter().find(|p| p.path == path)
    }
}

fn render_lines(problems: &[Problem]) -> String {
    problems
        .iter()
        .map(Problem::to_string)
        .collect::<Vec<_>>()
        .join("\n")
}

/// Error of [`crate::load_file`].
#[derive(Debug, thiserror::Error)]
pub enum LoadError {
    #[error("cannot read configuration file {}: {source}", path.display())]
    Io {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error(transparent)]
    Invalid(#[from] ConfigErrors),
}

#[cfg(test)]
mod tests {
    use super::*;

    fn problem(path: &str, message: &str, line: Option<u32>) -> Problem {
        Problem {
            path: path.into(),
            message: message.into(),
            line,
            column: line.map(|_| 7),
        }
    }

    #[test]
    fn display_is_one_path_message_per_line() {
        let errors = ConfigErrors {
            problems: vec![
                problem("backends[1].address", "missing port", Some(12)),
                problem("users", "no users", None),
            ],
        };
        assert_eq!(
            errors.to_string(),
            "backends[1].address: missing port (line 12, column 7)\nusers: no users"
        );
        assert_eq!(
            errors.at("users").map(|p| p.message.as_str()),
            Some("no users")
        );
        assert!(errors.at("listen").is_none());
    }
}
