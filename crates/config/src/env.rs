//! Where `${VAR}` values come from: the process environment in production,
//! a plain map in tests.

use std::collections::HashMap;

/// A source of environment variables for `${VAR}` substitution.
pub trait EnvSource {
    /// The value of `name`, or `None` when it is not set (or not valid
    /// Unicode).
    fn var(&self, name: &str) -> Option<String>;
}

/// The environment of the running process.
#[derive(Debug, Clone, Copy, Default)]
pub struct ProcessEnv;

impl EnvSource for ProcessEnv {
    fn var(&self, name: &str) -> Option<String> {
        std::env::var(name).ok()
    }
}

impl EnvSource for HashMap<String, String> {
    fn var(&self, name: &str) -> Option<String> {
        self.get(name).cloned()
    }
}
