//! MySQL GTID sets: `uuid:1-5:7-9,uuid2:1-3` (as in `@@gtid_executed`),
//! including MySQL 8.3+ tagged GTIDs (`uuid:tag:1-5`).

use std::collections::BTreeMap;
use std::fmt;

use super::{quote, GtidError};

/// Longest tag MySQL accepts.
const MAX_TAG_LEN: usize = 32;

/// Who generated a range of transactions: a server UUID plus an optional tag.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct MySqlSourceId {
    /// The 128-bit server UUID.
    pub uuid: u128,
    /// Lower-cased tag, empty for untagged GTIDs.
    pub tag: String,
}

impl fmt::Display for MySqlSourceId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let hex = format!("{:032x}", self.uuid);
        write!(
            f,
            "{}-{}-{}-{}-{}",
            &hex[0..8],
            &hex[8..12],
            &hex[12..16],
            &hex[16..20],
            &hex[20..32]
        )?;
        if !self.tag.is_empty() {
            write!(f, ":{}", self.tag)?;
        }
        Ok(())
    }
}

/// An inclusive range of transaction numbers, `start <= end`, `start >= 1`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct GtidInterval {
    pub start: u64,
    pub end: u64,
}

impl fmt::Display for GtidInterval {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if self.start == self.end {
            write!(f, "{}", self.start)
        } else {
            write!(f, "{}-{}", self.start, self.end)
        }
    }
}

/// A MySQL GTID set: per source, sorted and coalesced disjoint intervals.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct MySqlGtidSet {
    sources: BTreeMap<MySqlSourceId, Vec<GtidInterval>>,
}

impl MySqlGtidSet {
    /// Parses a GTID set. Whitespace (MySQL prints newlines after commas) is
    /// ignored around elements; the empty string is the empty set.
    pub fn parse(input: &str) -> Result<Self, GtidError> {
        let mut set = Self::default();
        if input.trim().is_empty() {
            return Ok(set);
        }
        for element in input.split(',') {
            set.parse_element(element.trim())?;
        }
        Ok(set)
    }

    fn parse_element(&mut self, element: &str) -> Result<(), GtidError> {
        let bad = |problem| GtidError::MySql {
            element: quote(element),
            problem,
        };
        let mut parts = element.split(':');
        let uuid = parse_uuid(parts.next().unwrap_or_default()).ok_or_else(|| bad("bad UUID"))?;
        let mut tag = String::new();
        let mut added = false;
        for part in parts {
            let part = part.trim();
            if part.starts_with(|c: char| c.is_ascii_digit()) {
                let interval = parse_interval(part).ok_or_else(|| bad("bad interval"))?;
                self.insert(
                    MySqlSourceId {
                        uuid,
                        tag: tag.clone(),
                    },
                    interval,
                );
                added = true;
            } else if is_valid_tag(part) {
                tag = part.to_ascii_lowercase();
            } else {
                return Err(bad("expected an interval or a tag"));
            }
        }
        if added {
            Ok(())
        } else {
            Err(bad("no interval"))
        }
    }

    /// True when the set holds no transaction.
    pub fn is_empty(&self) -> bool {
        self.sources.is_empty()
    }

    /// The intervals of one source, sorted and coalesced.
    pub fn intervals(&self, source: &MySqlSourceId) -> &[GtidInterval] {
        self.sources.get(source).map(Vec::as_slice).unwrap_or(&[])
    }

    /// All sources with their intervals.
    pub fn iter(&self) -> impl Iterator<Item = (&MySqlSourceId, &[GtidInterval])> {
        self.sources.iter().map(|(k, v)| (k, v.as_slice()))
    }

    /// True when every transaction in `other` is also in `self`.
    pub fn contains(&self, other: &MySqlGtidSet) -> bool {
        other.sources.iter().all(|(source, theirs)| {
            let ours = self.intervals(source);
            theirs.iter().all(|needed| covers(ours, *needed))
        })
    }

    /// Set union.
    pub fn merge_max(&mut self, other: &MySqlGtidSet) {
        for (source, intervals) in &other.sources {
            for interval in intervals {
                self.insert(source.clone(), *interval);
            }
        }
    }

    fn insert(&mut self, source: MySqlSourceId, interval: GtidInterval) {
        let list = self.sources.entry(source).or_default();
        list.push(interval);
        list.sort_unstable();
        let mut merged: Vec<GtidInterval> = Vec::with_capacity(list.len());
        for next in list.drain(..) {
            match merged.last_mut() {
                Some(last) if next.start <= last.end.saturating_add(1) => {
                    last.end = last.end.max(next.end);
                }
                _ => merged.push(next),
            }
        }
        *list = merged;
    }
}

/// Coalesced intervals cover `needed` only if a single one spans it.
fn covers(ours: &[GtidInterval], needed: GtidInterval) -> bool {
    // First interval whose end reaches `needed.start`.
    let idx = ours.partition_point(|iv| iv.end < needed.start);
    ours.get(idx)
        .is_some_and(|iv| iv.start <= needed.start && iv.end >= needed.end)
}

fn parse_uuid(text: &str) -> Option<u128> {
    let text = text.trim();
    let hex: String = text.chars().filter(|c| *c != '-').collect();
    let standard_dashes = text.len() == 36
        && text
            .char_indices()
            .all(|(i, c)| (c == '-') == matches!(i, 8 | 13 | 18 | 23));
    if hex.len() != 32 || !(text.len() == 32 || standard_dashes) {
        return None;
    }
    if !hex.bytes().all(|b| b.is_ascii_hexdigit()) {
        return None;
    }
    u128::from_str_radix(&hex, 16).ok()
}

fn parse_interval(text: &str) -> Option<GtidInterval> {
    let number = |t: &str| -> Option<u64> {
        if t.is_empty() || !t.bytes().all(|b| b.is_ascii_digit()) {
            return None;
        }
        t.parse().ok()
    };
    let (start, end) = match text.split_once('-') {
        Some((a, b)) => (number(a)?, number(b)?),
        None => {
            let n = number(text)?;
            (n, n)
        }
    };
    (start >= 1 && start <= end).then_some(GtidInterval { start, end })
}

fn is_valid_tag(text: &str) -> bool {
    let mut chars = text.chars();
    let first_ok = chars
        .next()
        .is_some_and(|c| c.is_ascii_alphabetic() || c == '_');
    first_ok && text.len() <= MAX_TAG_LEN && chars.all(|c| c.is_ascii_alphanumeric() || c == '_')
}

impl fmt::Display for MySqlGtidSet {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        for (i, (source, intervals)) in self.sources.iter().enumerate() {
            if i > 0 {
                f.write_str(",")?;
            }
            source.fmt(f)?;
            for interval in intervals {
                write!(f, ":{interval}")?;
            }
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const A: &str = "3e11fa47-71ca-11e1-9e33-c80aa9429562";
    const B: &str = "4d8a5b7c-1111-2222-3333-444455556666";

    fn set(text: &str) -> MySqlGtidSet {
        MySqlGtidSet::parse(text).unwrap()
    }

    #[test]
    fn parses_and_normalises_intervals() {
        let s = set(&format!("{A}:7-9:1-5:6,\n{B}:1-3"));
        assert_eq!(s.to_string(), format!("{A}:1-9,{B}:1-3"));
        let s = set(&format!("{A}:1-3:5:10-12"));
        assert_eq!(s.to_string(), format!("{A}:1-3:5:10-12"));
    }

    #[test]
    fn uuid_is_case_insensitive_and_canonicalised() {
        let upper = A.to_ascii_uppercase();
        let s = set(&format!("{upper}:1-2"));
        assert_eq!(s.to_string(), format!("{A}:1-2"));
        let compact = A.replace('-', "");
        assert_eq!(set(&format!("{compact}:1-2")), s);
    }

    #[test]
    fn same_source_twice_is_merged() {
        let s = set(&format!("{A}:1-3,{A}:4-6,{A}:10"));
        assert_eq!(s.to_string(), format!("{A}:1-6:10"));
    }

    #[test]
    fn tagged_gtids_are_separate_sources() {
        let s = set(&format!("{A}:1-5:Blue:1-2:3"));
        assert_eq!(s.to_string(), format!("{A}:1-5,{A}:blue:1-3"));
        assert!(s.contains(&set(&format!("{A}:blue:2"))));
        assert!(!s.contains(&set(&format!("{A}:green:1"))));
    }

    #[test]
    fn contains_checks_interval_coverage() {
        let executed = set(&format!("{A}:1-100:200-300,{B}:1-3"));
        assert!(executed.contains(&set(&format!("{A}:5-50"))));
        assert!(executed.contains(&set(&format!("{A}:100:200,{B}:2"))));
        assert!(executed.contains(&set(&format!("{A}:1-100:250-300"))));
        // Falls in the gap.
        assert!(!executed.contains(&set(&format!("{A}:150"))));
        // Spans the gap.
        assert!(!executed.contains(&set(&format!("{A}:90-210"))));
        // Beyond the end.
        assert!(!executed.contains(&set(&format!("{B}:1-4"))));
        // Unknown source.
        let c = "00000000-0000-0000-0000-000000000001";
        assert!(!executed.contains(&set(&format!("{c}:1"))));
        assert!(executed.contains(&set("")));
        assert!(!set("").contains(&executed));
    }

    #[test]
    fn merge_max_is_union() {
        let mut a = set(&format!("{A}:1-5"));
        a.merge_max(&set(&format!("{A}:6-8:20,{B}:1")));
        assert_eq!(a.to_string(), format!("{A}:1-8:20,{B}:1"));
    }

    #[test]
    fn rejects_junk_without_panicking() {
        for junk in [
            A.to_string(),
            format!("{A}:"),
            format!("{A}:0"),
            format!("{A}:0-5"),
            format!("{A}:5-3"),
            format!("{A}:1-"),
            format!("{A}:-1"),
            format!("{A}:1-2-3"),
            format!("{A}:x y"),
            format!("{A}:tag"),
            format!("{A}:1,,{B}:1"),
            format!("{A}:{}:1", "t".repeat(33)),
            format!("{A}:1-18446744073709551616"),
            "zz11fa47-71ca-11e1-9e33-c80aa9429562:1".to_string(),
            "3e11fa47-71ca-11e1-9e33-c80aa942956:1".to_string(),
            "3e11fa4-771ca-11e1-9e33-c80aa9429562:1".to_string(),
            ":1-2".to_string(),
            "é:1".to_string(),
        ] {
            assert!(MySqlGtidSet::parse(&junk).is_err(), "accepted {junk:?}");
        }
    }

    #[test]
    fn coalesces_adjacent_at_u64_max() {
        let s = set(&format!(
            "{A}:18446744073709551615,{A}:1-18446744073709551614"
        ));
        assert_eq!(s.to_string(), format!("{A}:1-18446744073709551615"));
    }
}
