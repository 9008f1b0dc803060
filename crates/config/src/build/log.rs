//! The `log` section, including a check of `EnvFilter`-style level strings.

use crate::model::{LogConfig, LogFormat};
use crate::reader::{MapReader, Problems};
use crate::suggest::did_you_mean;

const LOG_KEYS: &[&str] = &["format", "level"];
const LOG_FORMATS: &[(&str, LogFormat)] = &[("text", LogFormat::Text), ("json", LogFormat::Json)];
const LEVELS: &[&str] = &["trace", "debug", "info", "warn", "error", "off"];

pub(crate) fn build_log(root: &MapReader, problems: &mut Problems) -> LogConfig {
    let log = MapReader::section(root.get("log"), &root.path_of("log"), LOG_KEYS, problems);
    let format = log
        .choice("format", LOG_FORMATS, problems)
        .unwrap_or(LogFormat::Text);
    let level = match log.string("level", problems) {
        Some(level) => match check_filter(&level) {
            Ok(()) => level.trim().to_owned(),
            Err(message) => {
                problems.add(&log.path_of("level"), log.get("level"), message);
                level
            }
        },
        None => "info".to_owned(),
    };
    LogConfig { format, level }
}

/// Checks a comma-separated list of directives, each `level` or
/// `target=level` (targets like `rwproxy_router` or `rwproxy::monitor`).
/// A directive without `=` must be a level name.
pub(crate) fn check_filter(filter: &str) -> Result<(), String> {
    let directives: Vec<&str> = filter
        .split(',')
        .map(str::trim)
        .filter(|d| !d.is_empty())
        .collect();
    if directives.is_empty() {
        return Err(format!("empty log level: use one of {}", LEVELS.join(", ")));
    }
    for directive in directives {
        let (target, level) = match directive.split_once('=') {
            Some((target, level)) => (Some(target.trim()), level.trim()),
            None => (None, directive),
        };
        if let Some(target) = target {
            let valid_target = !target.is_empty()
                && target
                    .chars()
                    .all(|c| c.is_ascii_alphanumeric() || matches!(c, '_' | ':' | '-' | '.'));
            if !valid_target {
                return Err(format!(
                    "invalid log target '{target}' in '{directive}': use a module path like rwproxy_router"
                ));
            }
        }
        if !LEVELS.iter().any(|l| l.eq_ignore_ascii_case(level)) {
            let context = if target.is_some() {
                format!(" in '{directive}'")
            } else {
                String::new()
            };
            return Err(format!(
                "unknown log level '{level}'{context}: use one of {}{}",
                LEVELS.join(", "),
                did_you_mean(level, LEVELS)
            ));
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn accepts_levels_and_target_directives() {
        for ok in [
            "info",
            "DEBUG",
            "warn,rwproxy_router=trace",
            "rwproxy::monitor=off, error",
        ] {
            assert!(check_filter(ok).is_ok(), "{ok}");
        }
    }

    #[test]
    fn rejects_unknown_levels_and_targets() {
        assert!(check_filter("inof")
            .unwrap_err()
            .contains("did you mean 'info'"));
        assert!(check_filter("rwproxy=loud")
            .unwrap_err()
            .contains("unknown log level 'loud'"));
        assert!(check_filter("=debug")
            .unwrap_err()
            .contains("invalid log target"));
        assert!(check_filter("a b=debug")
            .unwrap_err()
            .contains("invalid log target"));
        assert!(check_filter(" , ").unwrap_err().contains("empty"));
    }
}
