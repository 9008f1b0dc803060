//! Routing hints written by the application inside SQL comments:
//! `/* rwproxy:primary */`, `/* rwproxy:replica */` and `/* rwproxy:consistency=eventual|session|global */`.

use crate::token::eq_keyword;

/// Where the application asks for a statement to be sent.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum RouteHint {
    /// `/* rwproxy:primary */`
    Primary,
    /// `/* rwproxy:replica */`
    Replica,
}

/// How fresh the application wants the data a read returns to be.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum ConsistencyHint {
    /// `/* rwproxy:consistency=eventual */`: any replica, however far behind.
    Eventual,
    /// `/* rwproxy:consistency=session */`: must see this session's own writes.
    Session,
    /// `/* rwproxy:consistency=global */`: must see every write committed before the read.
    Global,
}

/// A hint recognised in one comment.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Hint {
    Route(RouteHint),
    Consistency(ConsistencyHint),
}

/// The hints collected over a whole statement.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub(crate) struct Hints {
    pub route: Option<RouteHint>,
    pub consistency: Option<ConsistencyHint>,
}

impl Hints {
    /// Record the hint found in a comment, if any. When a statement carries both route hints,
    /// `primary` wins (it is the safe one); for consistency the first hint wins.
    pub fn record_comment(&mut self, comment_text: &[u8]) {
        match parse_hint(comment_text) {
            Some(Hint::Route(RouteHint::Primary)) => self.route = Some(RouteHint::Primary),
            Some(Hint::Route(RouteHint::Replica)) => {
                self.route.get_or_insert(RouteHint::Replica);
            }
            Some(Hint::Consistency(mode)) => {
                self.consistency.get_or_insert(mode);
            }
            None => {}
        }
    }
}

const PREFIX: &[u8] = b"RWPROXY:";
const CONSISTENCY: &[u8] = b"CONSISTENCY=";

/// Recognise a hint in the text of one comment (without its delimiters). The text must be exactly
/// the hint, give or take surrounding whitespace and letter case.
pub(crate) fn parse_hint(comment_text: &[u8]) -> Option<Hint> {
    let text = comment_text.trim_ascii();
    if text.len() <= PREFIX.len() || !eq_keyword(&text[..PREFIX.len()], PREFIX) {
        return None;
    }
    let rest = &text[PREFIX.len()..];
    if eq_keyword(rest, b"PRIMARY") {
        return Some(Hint::Route(RouteHint::Primary));
    }
    if eq_keyword(rest, b"REPLICA") {
        return Some(Hint::Route(RouteHint::Replica));
    }
    if rest.len() > CONSISTENCY.len() && eq_keyword(&rest[..CONSISTENCY.len()], CONSISTENCY) {
        let mode = &rest[CONSISTENCY.len()..];
        let hint = if eq_keyword(mode, b"EVENTUAL") {
            ConsistencyHint::Eventual
        } else if eq_keyword(mode, b"SESSION") {
            ConsistencyHint::Session
        } else if eq_keyword(mode, b"GLOBAL") {
            ConsistencyHint::Global
        } else {
            return None;
        };
        return Some(Hint::Consistency(hint));
    }
    None
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn recognises_route_hints_with_whitespace_and_any_case() {
        assert_eq!(
            parse_hint(b" rwproxy:primary "),
            Some(Hint::Route(RouteHint::Primary))
        );
        assert_eq!(
            parse_hint(b"\nRWPROXY:Replica\t"),
            Some(Hint::Route(RouteHint::Replica))
        );
    }

    #[test]
    fn recognises_consistency_modes() {
        assert_eq!(
            parse_hint(b"rwproxy:consistency=eventual"),
            Some(Hint::Consistency(ConsistencyHint::Eventual))
        );
        assert_eq!(
            parse_hint(b"rwproxy:consistency=session"),
            Some(Hint::Consistency(ConsistencyHint::Session))
        );
        assert_eq!(
            parse_hint(b"rwproxy:consistency=GLOBAL"),
            Some(Hint::Consistency(ConsistencyHint::Global))
        );
    }

    #[test]
    fn rejects_near_misses() {
        for text in [
            &b"rwproxy:"[..],
            b"rwproxy:primaryx",
            b"rwproxy: primary",
            b"rwproxy:consistency=",
            b"rwproxy:consistency=strong",
            b"please use rwproxy:primary",
            b"rwproxy primary",
            b"",
            b"\xff\xfe",
        ] {
            assert_eq!(
                parse_hint(text),
                None,
                "{:?}",
                String::from_utf8_lossy(text)
            );
        }
    }

    #[test]
    fn primary_beats_replica_and_first_consistency_wins() {
        let mut hints = Hints::default();
        hints.record_comment(b"rwproxy:replica");
        hints.record_comment(b"rwproxy:primary");
        hints.record_comment(b"rwproxy:replica");
        hints.record_comment(b"rwproxy:consistency=global");
        hints.record_comment(b"rwproxy:consistency=eventual");
        assert_eq!(hints.route, Some(RouteHint::Primary));
        assert_eq!(hints.consistency, Some(ConsistencyHint::Global));
    }
}
