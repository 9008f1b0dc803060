//! Refusing a client address after repeated failed logins (`login_throttle`), like the
//! server's `max_connect_errors`, but counting wrong passwords and unknown users too, and
//! forgiving on its own after `block_for`.
//!
//! Pure bookkeeping with the clock passed in; the listener asks [`LoginThrottle::check`] before
//! greeting a client and reports each login's outcome. A connection that simply closes before
//! sending its login (a TCP health check) is not a failure. Memory is bounded by
//! `max_sources`: the address whose last failure is oldest is forgotten first.

use std::collections::HashMap;
use std::net::IpAddr;
use std::time::{Duration, Instant};

use rwproxy_config::LoginThrottleConfig;

/// What [`LoginThrottle::check`] says about a new connection.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Admission {
    Allowed,
    /// Refused until this long from now.
    Blocked(Duration),
}

#[derive(Debug, Clone, Copy)]
struct Record {
    failures: u32,
    last_failure: Instant,
    blocked_until: Option<Instant>,
}

/// Failed-login counts per client address.
#[derive(Debug, Default)]
pub struct LoginThrottle {
    sources: HashMap<IpAddr, Record>,
}

impl LoginThrottle {
    /// Whether a connection from `ip` may log in now.
    pub fn check(&mut self, config: &LoginThrottleConfig, ip: IpAddr, now: Instant) -> Admission {
        if config.max_failures == 0 {
            return Admission::Allowed;
        }
        let Some(record) = self.sources.get(&ip) else {
            return Admission::Allowed;
        };
        match record.blocked_until {
            Some(until) if until > now => Admission::Blocked(until - now),
            Some(_) => {
                // Served its time: starts again from nothing.
                self.sources.remove(&ip);
                Admission::Allowed
            }
            None => Admission::Allowed,
        }
    }

    /// A failed login from `ip`; true when this failure blocks it.
    pub fn failed(&mut self, config: &LoginThrottleConfig, ip: IpAddr, now: Instant) -> bool {
        if config.max_failures == 0 {
            return false;
        }
        if !self.sources.contains_key(&ip) && self.sources.len() >= config.max_sources {
            self.make_room(config, now);
        }
        let record = self.sources.entry(ip).or_insert(Record {
            failures: 0,
            last_failure: now,
            blocked_until: None,
        });
        // Failures older than `block_for` are forgiven.
        if now.saturating_duration_since(record.last_failure) > config.block_for {
            record.failures = 0;
        }
        record.failures = record.failures.saturating_add(1);
        record.last_failure = now;
        if record.blocked_until.is_none() && record.failures >= config.max_failures {
            record.blocked_until = Some(now + config.block_for);
            return true;
        }
        false
    }

    /// A successful login from `ip`: its failures are forgotten.
    pub fn succeeded(&mut self, ip: IpAddr) {
        self.sources.remove(&ip);
    }

    /// Addresses refused right now.
    pub fn blocked(&self, now: Instant) -> usize {
        self.sources
            .values()
            .filter(|r| r.blocked_until.is_some_and(|u| u > now))
            .count()
    }

    /// Forgets what has expired; if still full, the address whose last failure is oldest.
    fn make_room(&mut self, config: &LoginThrottleConfig, now: Instant) {
        self.sources.retain(|_, r| match r.blocked_until {
            Some(until) => until > now,
            None => now.saturating_duration_since(r.last_failure) <= config.block_for,
        });
        while self.sources.len() >= config.max_sources {
            let Some(oldest) = self
                .sources
                .iter()
                .min_by_key(|(_, r)| r.last_failure)
                .map(|(ip, _)| *ip)
            else {
                break;
            };
            self.sources.remove(&oldest);
        }
    }

    #[cfg(test)]
    fn len(&self) -> usize {
        self.sources.len()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn config(max_failures: u32, max_sources: usize) -> LoginThrottleConfig {
        LoginThrottleConfig {
            max_failures,
            block_for: Duration::from_secs(60),
            max_sources,
        }
    }

    fn ip(last: u8) -> IpAddr {
        IpAddr::from([10, 0, 0, last])
    }

    #[test]
    fn off_by_default_never_blocks() {
        let c = config(0, 10);
        let mut t = LoginThrottle::default();
        let now = Instant::now();
        for _ in 0..1000 {
            assert!(!t.failed(&c, ip(1), now));
        }
        assert_eq!(t.check(&c, ip(1), now), Admission::Allowed);
        assert_eq!(t.len(), 0);
    }

    #[test]
    fn blocks_after_max_failures_in_a_row_until_block_for_has_passed() {
        let c = config(3, 10);
        let mut t = LoginThrottle::default();
        let now = Instant::now();
        assert!(!t.failed(&c, ip(1), now));
        assert!(!t.failed(&c, ip(1), now));
        assert_eq!(t.check(&c, ip(1), now), Admission::Allowed);
        assert!(t.failed(&c, ip(1), now), "the third failure blocks");
        assert_eq!(
            t.check(&c, ip(1), now + Duration::from_secs(10)),
            Admission::Blocked(Duration::from_secs(50))
        );
        assert_eq!(
            t.check(&c, ip(2), now),
            Admission::Allowed,
            "others unaffected"
        );
        assert_eq!(t.blocked(now), 1);
        let later = now + Duration::from_secs(61);
        assert_eq!(t.check(&c, ip(1), later), Admission::Allowed);
        assert!(!t.failed(&c, ip(1), later), "counting starts again");
    }

    #[test]
    fn a_success_forgives_and_old_failures_expire() {
        let c = config(3, 10);
        let mut t = LoginThrottle::default();
        let now = Instant::now();
        t.failed(&c, ip(1), now);
        t.failed(&c, ip(1), now);
        t.succeeded(ip(1));
        assert!(!t.failed(&c, ip(1), now));
        assert!(!t.failed(&c, ip(1), now));
        // Two more, but long after: the earlier ones no longer count.
        let later = now + Duration::from_secs(120);
        assert!(!t.failed(&c, ip(1), later));
        assert!(!t.failed(&c, ip(1), later));
        assert!(t.failed(&c, ip(1), later));
    }

    #[test]
    fn memory_is_bounded_by_max_sources_forgetting_the_oldest() {
        let c = config(2, 3);
        let mut t = LoginThrottle::default();
        let start = Instant::now();
        for (i, last) in (1..=10u8).enumerate() {
            t.failed(&c, ip(last), start + Duration::from_millis(i as u64));
            assert!(t.len() <= 3);
        }
        // The newest three are remembered.
        let now = start + Duration::from_millis(20);
        assert!(t.failed(&c, ip(10), now));
        assert!(!t.failed(&c, ip(1), now), "ip 1 was forgotten");
    }
}
