//! The prepared statements one backend connection holds, whoever prepared them: with connection
//! sharing a session finds a statement another session (or itself, on an earlier borrow)
//! prepared there and uses it without preparing again. Bounded: past
//! [`MAX_PER_CONNECTION`] the least recently used one is closed on the server, so the servers'
//! `Prepared_stmt_count` stays at most that many per connection.

use std::collections::HashMap;

use bytes::Bytes;

/// Statements kept prepared on one backend connection.
pub const MAX_PER_CONNECTION: usize = 256;

/// What a statement was prepared from: its `COM_STMT_PREPARE` payload and the session state it
/// was prepared under (schema, session variables: they decide what its names mean).
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct StatementKey {
    pub payload: Bytes,
    pub schema: Option<String>,
    pub state: crate::session_state::StateImage,
}

#[derive(Debug, Clone)]
struct Entry {
    id: u32,
    params: u16,
    used: u64,
}

#[derive(Debug, Default)]
pub struct ConnStatements {
    by_key: HashMap<StatementKey, Entry>,
    clock: u64,
}

impl ConnStatements {
    /// The server's id of a statement prepared here, marked as just used.
    pub fn get(&mut self, key: &StatementKey) -> Option<(u32, u16)> {
        self.clock += 1;
        let now = self.clock;
        let e = self.by_key.get_mut(key)?;
        e.used = now;
        Some((e.id, e.params))
    }

    /// Records a statement prepared here; returns the server ids of statements to close to stay
    /// within [`MAX_PER_CONNECTION`] (the least recently used).
    pub fn insert(&mut self, key: StatementKey, id: u32, params: u16) -> Vec<u32> {
        self.clock += 1;
        let used = self.clock;
        if let Some(old) = self.by_key.insert(key, Entry { id, params, used }) {
            if old.id != id {
                return vec![old.id];
            }
        }
        let mut evicted = Vec::new();
        while self.by_key.len() > MAX_PER_CONNECTION {
            let Some(oldest) = self
                .by_key
                .iter()
                .min_by_key(|(_, e)| e.used)
                .map(|(k, _)| k.clone())
            else {
                break;
            };
            if let Some(e) = self.by_key.remove(&oldest) {
                evicted.push(e.id);
            }
        }
        evicted
    }

    /// Forgets a statement closed on the server.
    pub fn remove_id(&mut self, id: u32) {
        self.by_key.retain(|_, e| e.id != id);
    }

    /// The server dropped every statement (`COM_RESET_CONNECTION`, `COM_CHANGE_USER`).
    pub fn clear(&mut self) {
        self.by_key.clear();
    }

    #[cfg(test)]
    fn len(&self) -> usize {
        self.by_key.len()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn key(i: usize, context: u64) -> StatementKey {
        StatementKey {
            payload: Bytes::from(format!("\x16SELECT {i}")),
            schema: Some(format!("db{context}")),
            state: std::sync::Arc::from(Vec::new()),
        }
    }

    #[test]
    fn found_by_text_and_context() {
        let mut c = ConnStatements::default();
        assert!(c.insert(key(1, 7), 11, 0).is_empty());
        assert_eq!(c.get(&key(1, 7)), Some((11, 0)));
        // The same text under another schema or settings is another statement.
        assert_eq!(c.get(&key(1, 8)), None);
        c.remove_id(11);
        assert_eq!(c.get(&key(1, 7)), None);
    }

    #[test]
    fn bounded_by_evicting_the_least_recently_used() {
        let mut c = ConnStatements::default();
        for i in 0..MAX_PER_CONNECTION {
            assert!(c.insert(key(i, 0), i as u32, 0).is_empty());
        }
        // Statement 0 used again: statement 1 is now the oldest.
        assert!(c.get(&key(0, 0)).is_some());
        let evicted = c.insert(key(9999, 0), 9999, 0);
        assert_eq!(evicted, vec![1]);
        assert_eq!(c.len(), MAX_PER_CONNECTION);
        for i in 0..10_000usize {
            c.insert(key(10_000 + i, 0), (10_000 + i) as u32, 0);
            assert!(c.len() <= MAX_PER_CONNECTION);
        }
    }

    #[test]
    fn replacing_a_key_closes_the_old_statement() {
        let mut c = ConnStatements::default();
        c.insert(key(1, 0), 5, 0);
        assert_eq!(c.insert(key(1, 0), 6, 0), vec![5]);
        assert_eq!(c.get(&key(1, 0)), Some((6, 0)));
    }
}
