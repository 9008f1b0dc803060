//! Bearer-token check for the admin routes.
//!
//! The token is compared in constant time (for a given length of the presented token), and it
//! never appears in `Debug` output or logs.

use std::fmt;

use hyper::header::{HeaderMap, AUTHORIZATION};

/// The secret expected in `Authorization: Bearer <token>`.
#[derive(Clone)]
pub struct AdminToken {
    secret: Box<[u8]>,
}

impl fmt::Debug for AdminToken {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("AdminToken(<redacted>)")
    }
}

impl AdminToken {
    /// Wraps a configured token; an empty token means "no token" and gives `None`.
    pub fn new(token: &str) -> Option<Self> {
        if token.is_empty() {
            return None;
        }
        Some(AdminToken {
            secret: token.as_bytes().into(),
        })
    }

    /// Whether `headers` carry `Authorization: Bearer <this token>`. The scheme name is
    /// case-insensitive; anything else (missing header, other scheme, several `Authorization`
    /// headers, wrong token) is refused.
    pub fn authorizes(&self, headers: &HeaderMap) -> bool {
        let mut values = headers.get_all(AUTHORIZATION).iter();
        let (Some(value), None) = (values.next(), values.next()) else {
            return false;
        };
        match bearer_credentials(value.as_bytes()) {
            Some(presented) => constant_time_eq(presented, &self.secret),
            None => false,
        }
    }
}

/// The credentials of a `Bearer` authorization value, without surrounding spaces.
fn bearer_credentials(value: &[u8]) -> Option<&[u8]> {
    const SCHEME: &[u8] = b"bearer";
    let scheme = value.get(..SCHEME.len())?;
    if !scheme.eq_ignore_ascii_case(SCHEME) {
        return None;
    }
    let rest = value.get(SCHEME.len()..)?;
    // The scheme must be followed by at least one space.
    if rest.first() != Some(&b' ') {
        return None;
    }
    let start = rest.iter().position(|b| *b != b' ')?;
    let end = rest.iter().rposition(|b| *b != b' ')?;
    rest.get(start..=end)
}

/// Compares two byte strings without an early exit on the first difference. The time taken
/// depends only on the length of `presented` (and whether the lengths match), not on where
/// the contents differ.
pub fn constant_time_eq(presented: &[u8], expected: &[u8]) -> bool {
    let mut diff: u8 = u8::from(presented.len() != expected.len());
    for (i, byte) in presented.iter().enumerate() {
        // Past the end of `expected`, compare against a value that cannot cancel out: the
        // length mismatch has already been recorded.
        let other = expected.get(i).copied().unwrap_or(0);
        diff |= byte ^ other;
    }
    std::hint::black_box(diff) == 0
}

#[cfg(test)]
mod tests {
    use super::*;
    use hyper::header::HeaderValue;

    fn headers(values: &[&str]) -> HeaderMap {
        let mut map = HeaderMap::new();
        for v in values {
            map.append(AUTHORIZATION, HeaderValue::from_str(v).unwrap());
        }
        map
    }

    #[test]
    fn constant_time_eq_matches_slice_equality() {
        let cases: [(&[u8], &[u8]); 6] = [
            (b"secret", b"secret"),
            (b"secret", b"secreT"),
            (b"secret", b"secret2"),
            (b"secret2", b"secret"),
            (b"", b"x"),
            (b"", b""),
        ];
        for (a, b) in cases {
            assert_eq!(constant_time_eq(a, b), a == b, "{a:?} vs {b:?}");
        }
    }

    #[test]
    fn bearer_parsing() {
        let token = AdminToken::new("s3cr3t").unwrap();
        assert!(token.authorizes(&headers(&["Bearer s3cr3t"])));
        assert!(token.authorizes(&headers(&["bearer   s3cr3t  "])));
        assert!(!token.authorizes(&headers(&["Bearer s3cr3"])));
        assert!(!token.authorizes(&headers(&["Bearers3cr3t"])));
        assert!(!token.authorizes(&headers(&["Basic s3cr3t"])));
        assert!(!token.authorizes(&headers(&["Bearer"])));
        assert!(!token.authorizes(&headers(&["Bearer "])));
        assert!(!token.authorizes(&headers(&[])));
        assert!(!token.authorizes(&headers(&["Bearer s3cr3t", "Bearer s3cr3t"])));
    }

    #[test]
    fn empty_token_means_none_and_debug_is_redacted() {
        assert!(AdminToken::new("").is_none());
        let token = AdminToken::new("hunter2").unwrap();
        assert!(!format!("{token:?}").contains("hunter2"));
    }
}
