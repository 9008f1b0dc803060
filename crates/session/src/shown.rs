//! Strings from the network in logs: control characters escaped (a user name with a newline
//! cannot forge a log line, an escape sequence cannot repaint a terminal) and length capped (a
//! 100 KiB user name is logged as 256 bytes and its length).

use std::fmt;

/// How much of an attacker-controlled string a log line shows.
pub const SHOWN_BYTES: usize = 256;

/// Displays a string escaped and capped at `max` bytes (on a character boundary), followed by
/// its full length when it was cut.
#[derive(Clone, Copy)]
pub struct Shown<'a> {
    text: &'a str,
    max: usize,
    /// Backslashes doubled (off for text that is escaped already, such as a log field made of
    /// `Shown` values).
    backslashes: bool,
}

impl<'a> Shown<'a> {
    pub fn new(text: &'a str) -> Self {
        Self::capped(text, SHOWN_BYTES)
    }

    pub fn capped(text: &'a str, max: usize) -> Self {
        Self {
            text,
            max,
            backslashes: true,
        }
    }

    /// Only control characters escaped (backslashes kept as they are), capped at `max` bytes.
    pub fn controls_only(text: &'a str, max: usize) -> Self {
        Self {
            text,
            max,
            backslashes: false,
        }
    }
}

impl fmt::Display for Shown<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let mut end = self.text.len().min(self.max);
        while !self.text.is_char_boundary(end) {
            end -= 1;
        }
        for c in self.text[..end].chars() {
            match c {
                '\n' => f.write_str("\\n")?,
                '\r' => f.write_str("\\r")?,
                '\t' => f.write_str("\\t")?,
                '\\' if self.backslashes => f.write_str("\\\\")?,
                c if c.is_control() => write!(f, "\\u{{{:x}}}", c as u32)?,
                c => write!(f, "{c}")?,
            }
        }
        if end < self.text.len() {
            write!(f, "…({} bytes)", self.text.len())?;
        }
        Ok(())
    }
}

impl fmt::Debug for Shown<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Display::fmt(self, f)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn escapes_and_caps() {
        assert_eq!(Shown::new("app").to_string(), "app");
        assert_eq!(
            Shown::new("x\nINFO forged line\u{1b}[31m\u{85}").to_string(),
            "x\\nINFO forged line\\u{1b}[31m\\u{85}"
        );
        let long = "é".repeat(100_000);
        let s = Shown::new(&long).to_string();
        assert!(s.len() < 300, "{}", s.len());
        assert!(s.ends_with("…(200000 bytes)"));
        assert_eq!(Shown::capped("abcdef", 3).to_string(), "abc…(6 bytes)");
        assert_eq!(Shown::new("a\\b").to_string(), "a\\\\b");
        assert_eq!(Shown::controls_only("a\\b\n", 9).to_string(), "a\\b\\n");
    }
}
