//! MariaDB GTID positions: a comma-separated list of `domain-server-sequence`,
//! at most one per replication domain (as in `@@gtid_current_pos`).

use std::collections::BTreeMap;
use std::fmt;

use super::{quote, GtidError};

/// One MariaDB GTID: `domain_id-server_id-seq_no`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct MariaDbGtid {
    pub domain_id: u32,
    pub server_id: u32,
    pub seq_no: u64,
}

impl MariaDbGtid {
    fn parse(element: &str) -> Result<Self, GtidError> {
        let bad = |problem| GtidError::MariaDb {
            element: quote(element),
            problem,
        };
        let mut parts = element.split('-');
        let (Some(domain), Some(server), Some(seq), None) =
            (parts.next(), parts.next(), parts.next(), parts.next())
        else {
            return Err(bad("expected domain-server-sequence"));
        };
        let number = |text: &str| -> Result<u64, GtidError> {
            if text.is_empty() || !text.bytes().all(|b| b.is_ascii_digit()) {
                return Err(bad("each part must be a decimal number"));
            }
            text.parse::<u64>().map_err(|_| bad("number out of range"))
        };
        let domain_id =
            u32::try_from(number(domain)?).map_err(|_| bad("domain id out of range"))?;
        let server_id =
            u32::try_from(number(server)?).map_err(|_| bad("server id out of range"))?;
        let seq_no = number(seq)?;
        Ok(Self {
            domain_id,
            server_id,
            seq_no,
        })
    }
}

impl fmt::Display for MariaDbGtid {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}-{}-{}", self.domain_id, self.server_id, self.seq_no)
    }
}

/// A MariaDB GTID position: the last GTID applied in each replication domain.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct MariaDbGtidPos {
    domains: BTreeMap<u32, MariaDbGtid>,
}

impl MariaDbGtidPos {
    /// Parses `0-1-100,1-2-50`. Whitespace around elements is ignored; the
    /// empty string is the empty position. If a domain appears twice the
    /// higher sequence number wins.
    pub fn parse(input: &str) -> Result<Self, GtidError> {
        let mut pos = Self::default();
        if input.trim().is_empty() {
            return Ok(pos);
        }
        for element in input.split(',') {
            let gtid = MariaDbGtid::parse(element.trim())?;
            pos.raise(gtid);
        }
        Ok(pos)
    }

    /// The GTID for one domain, if the position has one.
    pub fn domain(&self, domain_id: u32) -> Option<&MariaDbGtid> {
        self.domains.get(&domain_id)
    }

    /// All GTIDs, ordered by domain.
    pub fn iter(&self) -> impl Iterator<Item = &MariaDbGtid> {
        self.domains.values()
    }

    /// True when no domain has a GTID.
    pub fn is_empty(&self) -> bool {
        self.domains.is_empty()
    }

    /// True when for every domain of `other`, `self` has that domain with a
    /// sequence number at least as high.
    pub fn contains(&self, other: &MariaDbGtidPos) -> bool {
        other.domains.iter().all(|(domain, theirs)| {
            self.domains
                .get(domain)
                .is_some_and(|ours| ours.seq_no >= theirs.seq_no)
        })
    }

    /// Keeps, per domain, the GTID with the higher sequence number.
    pub fn merge_max(&mut self, other: &MariaDbGtidPos) {
        for gtid in other.domains.values() {
            self.raise(*gtid);
        }
    }

    fn raise(&mut self, gtid: MariaDbGtid) {
        self.domains
            .entry(gtid.domain_id)
            .and_modify(|current| {
                if gtid.seq_no > current.seq_no {
                    *current = gtid;
                }
            })
            .or_insert(gtid);
    }
}

impl fmt::Display for MariaDbGtidPos {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        for (i, gtid) in self.domains.values().enumerate() {
            if i > 0 {
                f.write_str(",")?;
            }
            gtid.fmt(f)?;
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn pos(text: &str) -> MariaDbGtidPos {
        MariaDbGtidPos::parse(text).unwrap()
    }

    #[test]
    fn parses_multi_domain_positions() {
        let p = pos("0-1-100, 1-2-50 ,7-3-1");
        assert_eq!(p.iter().count(), 3);
        assert_eq!(
            p.domain(1),
            Some(&MariaDbGtid {
                domain_id: 1,
                server_id: 2,
                seq_no: 50
            })
        );
        assert_eq!(p.to_string(), "0-1-100,1-2-50,7-3-1");
    }

    #[test]
    fn empty_and_blank_are_empty() {
        assert!(pos("").is_empty());
        assert!(pos("   ").is_empty());
        assert_eq!(pos("").to_string(), "");
    }

    #[test]
    fn duplicate_domain_keeps_highest_sequence() {
        let p = pos("0-1-5,0-2-9,0-3-7");
        assert_eq!(p.to_string(), "0-2-9");
    }

    #[test]
    fn rejects_junk_without_panicking() {
        for junk in [
            "0-1",
            "0-1-2-3",
            "a-b-c",
            "0-1-",
            "-1-2",
            "0-1-2,,0-2-3",
            "0-1-2,",
            "0 -1-2",
            "+1-2-3",
            "4294967296-1-1",
            "0-4294967296-1",
            "0-1-18446744073709551616",
            "0-1-1\u{0}",
            "٣-1-1",
        ] {
            assert!(MariaDbGtidPos::parse(junk).is_err(), "accepted {junk:?}");
        }
    }

    #[test]
    fn accepts_extreme_numbers() {
        let p = pos("4294967295-4294967295-18446744073709551615");
        assert_eq!(p.to_string(), "4294967295-4294967295-18446744073709551615");
    }

    #[test]
    fn contains_compares_per_domain() {
        let replica = pos("0-1-100,1-2-50");
        assert!(replica.contains(&pos("0-1-100")));
        assert!(replica.contains(&pos("0-1-99,1-2-50")));
        // Sequence ahead in one domain.
        assert!(!replica.contains(&pos("0-1-101")));
        assert!(!replica.contains(&pos("0-1-10,1-2-51")));
        // Domain the replica never saw.
        assert!(!replica.contains(&pos("2-1-1")));
        // Server id does not matter, only the per-domain sequence.
        assert!(replica.contains(&pos("0-9-100")));
        // Everything contains the empty position; empty contains only empty.
        assert!(replica.contains(&pos("")));
        assert!(!pos("").contains(&replica));
        assert!(pos("").contains(&pos("")));
    }

    #[test]
    fn merge_max_takes_per_domain_maximum() {
        let mut a = pos("0-1-10,1-1-5");
        a.merge_max(&pos("0-2-8,1-3-6,2-1-1"));
        assert_eq!(a.to_string(), "0-1-10,1-3-6,2-1-1");
    }
}
