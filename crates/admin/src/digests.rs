//! Per-query statistics: counts per (digest, user, schema, destination role), as
//! `stats_mysql_query_digest` gives them in ProxySQL, with bounded memory.
//!
//! At most `max_digests` entries are kept; when a new one arrives in a full table, the least
//! used entry (fewest calls, then least recently seen) is folded into one `other` entry, so the
//! totals stay right whatever the number of distinct statements. Recording an entry that exists
//! costs one lock (uncontended: two I/O threads) and no allocation.

use std::collections::HashMap;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Mutex;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use serde_json::{json, Value};

use crate::histogram::QUERY_DURATION_BUCKETS;
use crate::labels::DestRole;

/// One finished statement, fingerprinted.
#[derive(Debug, Clone, Copy)]
pub struct DigestSample<'a> {
    /// The digest id (a hash of the normalised text).
    pub id: u64,
    /// The normalised text (asked for only when the entry is created).
    pub text: DigestText<'a>,
    /// The routing hint the statement carried, as a label (`primary`, `replica`).
    pub hint: Option<&'static str>,
    pub user: &'a str,
    pub schema: Option<&'a str>,
    pub role: DestRole,
    pub elapsed: Duration,
    pub rows: u64,
    pub error: bool,
}

/// A digest's text: at hand, or made on demand (a statement already counted needs none).
#[derive(Clone, Copy)]
pub enum DigestText<'a> {
    Known(&'a str),
    Lazy(&'a dyn Fn() -> String),
}

impl DigestText<'_> {
    fn make(&self) -> Box<str> {
        match self {
            DigestText::Known(t) => (*t).into(),
            DigestText::Lazy(f) => f().into_boxed_str(),
        }
    }
}

impl std::fmt::Debug for DigestText<'_> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            DigestText::Known(t) => write!(f, "{t:?}"),
            DigestText::Lazy(_) => f.write_str("(on demand)"),
        }
    }
}

/// How `/queries` sorts.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum DigestSort {
    TotalTime,
    Calls,
    Errors,
    MaxTime,
    Rows,
}

impl DigestSort {
    /// From the `sort` query parameter.
    pub fn parse(s: &str) -> Option<DigestSort> {
        match s {
            "total_time" => Some(DigestSort::TotalTime),
            "calls" => Some(DigestSort::Calls),
            "errors" => Some(DigestSort::Errors),
            "max_time" => Some(DigestSort::MaxTime),
            "rows" => Some(DigestSort::Rows),
            _ => None,
        }
    }
}

const BUCKETS: usize = QUERY_DURATION_BUCKETS.len() + 1;

#[derive(Debug, Clone)]
struct Entry {
    id: u64,
    text: Box<str>,
    hint: Option<&'static str>,
    user: Box<str>,
    schema: Box<str>,
    role: DestRole,
    calls: u64,
    errors: u64,
    rows: u64,
    total_ns: u128,
    max_ns: u64,
    buckets: [u64; BUCKETS],
    first_seen: u64,
    last_seen: u64,
}

impl Entry {
    fn new(s: &DigestSample<'_>, now: u64) -> Entry {
        Entry {
            id: s.id,
            text: s.text.make(),
            hint: s.hint,
            user: s.user.into(),
            schema: s.schema.unwrap_or_default().into(),
            role: s.role,
            calls: 0,
            errors: 0,
            rows: 0,
            total_ns: 0,
            max_ns: 0,
            buckets: [0; BUCKETS],
            first_seen: now,
            last_seen: now,
        }
    }

    fn other() -> Entry {
        Entry {
            id: 0,
            text: "other".into(),
            hint: None,
            user: "".into(),
            schema: "".into(),
            role: DestRole::Primary,
            calls: 0,
            errors: 0,
            rows: 0,
            total_ns: 0,
            max_ns: 0,
            buckets: [0; BUCKETS],
            first_seen: 0,
            last_seen: 0,
        }
    }

    fn add(&mut self, s: &DigestSample<'_>, now: u64) {
        let ns = u64::try_from(s.elapsed.as_nanos()).unwrap_or(u64::MAX);
        self.calls += 1;
        self.errors += u64::from(s.error);
        self.rows += s.rows;
        self.total_ns += u128::from(ns);
        self.max_ns = self.max_ns.max(ns);
        let secs = s.elapsed.as_secs_f64();
        let bucket = QUERY_DURATION_BUCKETS
            .iter()
            .position(|&le| secs <= le)
            .unwrap_or(BUCKETS - 1);
        self.buckets[bucket] += 1;
        self.last_seen = now;
    }

    fn fold(&mut self, other: &Entry) {
        self.calls += other.calls;
        self.errors += other.errors;
        self.rows += other.rows;
        self.total_ns += other.total_ns;
        self.max_ns = self.max_ns.max(other.max_ns);
        for (a, b) in self.buckets.iter_mut().zip(other.buckets.iter()) {
            *a += b;
        }
        if self.first_seen == 0 || (other.first_seen != 0 && other.first_seen < self.first_seen) {
            self.first_seen = other.first_seen;
        }
        self.last_seen = self.last_seen.max(other.last_seen);
    }

    /// The upper bound of the bucket holding quantile `q` (seconds); `None` without calls.
    fn quantile(&self, q: f64) -> Option<f64> {
        if self.calls == 0 {
            return None;
        }
        let rank = (q * self.calls as f64).ceil().max(1.0) as u64;
        let mut seen = 0;
        for (i, n) in self.buckets.iter().enumerate() {
            seen += n;
            if seen >= rank {
                return Some(
                    QUERY_DURATION_BUCKETS
                        .get(i)
                        .copied()
                        .unwrap_or(self.max_ns as f64 / 1e9),
                );
            }
        }
        None
    }

    fn to_json(&self) -> Value {
        let total = self.total_ns as f64 / 1e9;
        let histogram: serde_json::Map<String, Value> = self
            .buckets
            .iter()
            .enumerate()
            .map(|(i, n)| {
                let le = QUERY_DURATION_BUCKETS
                    .get(i)
                    .map_or("+Inf".to_string(), |b| b.to_string());
                (le, json!(n))
            })
            .collect();
        json!({
            "digest": format!("{:016x}", self.id),
            "text": &*self.text,
            "hint": self.hint,
            "user": &*self.user,
            "schema": &*self.schema,
            "role": self.role.as_str(),
            "calls": self.calls,
            "errors": self.errors,
            "rows": self.rows,
            "total_seconds": total,
            "avg_seconds": if self.calls > 0 { total / self.calls as f64 } else { 0.0 },
            "max_seconds": self.max_ns as f64 / 1e9,
            "p50_seconds": self.quantile(0.5),
            "p95_seconds": self.quantile(0.95),
            "p99_seconds": self.quantile(0.99),
            "histogram": histogram,
            "first_seen": self.first_seen,
            "last_seen": self.last_seen,
        })
    }

    fn sort_key(&self, by: DigestSort) -> u128 {
        match by {
            DigestSort::TotalTime => self.total_ns,
            DigestSort::Calls => u128::from(self.calls),
            DigestSort::Errors => u128::from(self.errors),
            DigestSort::MaxTime => u128::from(self.max_ns),
            DigestSort::Rows => u128::from(self.rows),
        }
    }
}

/// The table's keys are hashes already: used as they are.
#[derive(Debug, Default, Clone, Copy)]
struct KeyHasher(u64);

impl std::hash::Hasher for KeyHasher {
    fn finish(&self) -> u64 {
        self.0
    }
    fn write(&mut self, bytes: &[u8]) {
        for &b in bytes {
            self.0 = (self.0 ^ u64::from(b)).wrapping_mul(0x0000_0100_0000_01b3);
        }
    }
    fn write_u64(&mut self, n: u64) {
        self.0 = n;
    }
}

type Keyed<V> = HashMap<u64, V, std::hash::BuildHasherDefault<KeyHasher>>;

#[derive(Debug)]
struct Table {
    entries: Keyed<Entry>,
    other: Entry,
}

/// What the Prometheus export shows of one digest.
#[derive(Debug, Clone, PartialEq)]
pub struct DigestView {
    pub digest: String,
    /// The text, cut to 120 characters for a label value.
    pub text: String,
    pub user: String,
    pub schema: String,
    pub role: DestRole,
    pub calls: u64,
    pub errors: u64,
    pub rows: u64,
    pub seconds: f64,
}

/// The statistics of the whole process: one table per shard, a data-path thread recording
/// into its own (no lock or cache line shared between threads at every statement), merged when
/// read. Each shard holds at most `max_digests / shards` entries, so the whole stays within
/// `max_digests`.
#[derive(Debug)]
pub struct DigestStore {
    shards: Vec<Mutex<Table>>,
    max_digests: AtomicUsize,
}

const LABEL_TEXT: usize = 120;

fn now_secs() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_secs())
}

/// The table key: the digest with who ran it and where.
fn key(s: &DigestSample<'_>) -> u64 {
    let mut h: u64 = 0xcbf2_9ce4_8422_2325;
    let mut eat = |bytes: &[u8]| {
        for &b in bytes {
            h = (h ^ u64::from(b)).wrapping_mul(0x0000_0100_0000_01b3);
        }
        // A separator no name contains.
        h = (h ^ 0xff).wrapping_mul(0x0000_0100_0000_01b3);
    };
    eat(&s.id.to_le_bytes());
    eat(s.user.as_bytes());
    eat(s.schema.unwrap_or_default().as_bytes());
    eat(s.role.as_str().as_bytes());
    eat(s.hint.unwrap_or_default().as_bytes());
    h
}

fn lock(table: &Mutex<Table>) -> std::sync::MutexGuard<'_, Table> {
    table.lock().unwrap_or_else(|p| p.into_inner())
}

impl DigestStore {
    /// A store with a shard per core (the data path runs a thread per core).
    pub fn new(max_digests: usize) -> DigestStore {
        DigestStore::with_shards(max_digests, crate::shard::count())
    }

    pub fn with_shards(max_digests: usize, shards: usize) -> DigestStore {
        DigestStore {
            shards: (0..shards.max(1))
                .map(|_| {
                    Mutex::new(Table {
                        entries: Keyed::default(),
                        other: Entry::other(),
                    })
                })
                .collect(),
            max_digests: AtomicUsize::new(max_digests.max(1)),
        }
    }

    /// All shards merged: entries by key, and `other`.
    fn merged(&self) -> (Keyed<Entry>, Entry) {
        let mut entries = Keyed::<Entry>::default();
        let mut other = Entry::other();
        for shard in &self.shards {
            let t = lock(shard);
            other.fold(&t.other);
            for (k, e) in &t.entries {
                match entries.get_mut(k) {
                    Some(m) => m.fold(e),
                    None => {
                        entries.insert(*k, e.clone());
                    }
                }
            }
        }
        (entries, other)
    }

    /// Changes the limit (a reload); a smaller one takes effect as new digests arrive.
    pub fn set_max_digests(&self, max: usize) {
        self.max_digests.store(max.max(1), Ordering::Relaxed);
    }

    /// Counts one statement.
    pub fn record(&self, sample: &DigestSample<'_>) {
        let k = key(sample);
        let now = now_secs();
        let shards = self.shards.len();
        let max = (self.max_digests.load(Ordering::Relaxed) / shards).max(1);
        let shard = crate::shard::index(shards);
        let mut t = lock(&self.shards[shard]);
        if let Some(e) = t.entries.get_mut(&k) {
            e.add(sample, now);
            return;
        }
        while t.entries.len() >= max {
            let Some(victim) = t
                .entries
                .iter()
                .min_by_key(|(_, e)| (e.calls, e.last_seen))
                .map(|(k, _)| *k)
            else {
                break;
            };
            if let Some(e) = t.entries.remove(&victim) {
                t.other.fold(&e);
            }
        }
        let mut e = Entry::new(sample, now);
        e.add(sample, now);
        t.entries.insert(k, e);
    }

    /// Forgets everything (`/queries?reset=1`).
    pub fn reset(&self) {
        for shard in &self.shards {
            let mut t = lock(shard);
            t.entries.clear();
            t.other = Entry::other();
        }
    }

    /// Entries tracked (not counting `other`).
    pub fn len(&self) -> usize {
        self.merged().0.len()
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// The `/queries` document: the first `limit` entries by `sort`, and `other`.
    pub fn to_json(&self, sort: DigestSort, limit: usize) -> Value {
        let (merged, other) = self.merged();
        let mut entries: Vec<&Entry> = merged.values().collect();
        entries.sort_by(|a, b| {
            b.sort_key(sort)
                .cmp(&a.sort_key(sort))
                .then(a.id.cmp(&b.id))
        });
        let list: Vec<Value> = entries.iter().take(limit).map(|e| e.to_json()).collect();
        json!({
            "tracked": merged.len(),
            "max_digests": self.max_digests.load(Ordering::Relaxed),
            "digests": list,
            "other": other.to_json(),
        })
    }

    /// The `n` entries with the most total time, for the Prometheus export.
    pub fn top(&self, n: usize) -> Vec<DigestView> {
        let (merged, _) = self.merged();
        let mut entries: Vec<&Entry> = merged.values().collect();
        entries.sort_by(|a, b| b.total_ns.cmp(&a.total_ns).then(a.id.cmp(&b.id)));
        entries
            .into_iter()
            .take(n)
            .map(|e| DigestView {
                digest: format!("{:016x}", e.id),
                text: e.text.chars().take(LABEL_TEXT).collect(),
                user: e.user.to_string(),
                schema: e.schema.to_string(),
                role: e.role,
                calls: e.calls,
                errors: e.errors,
                rows: e.rows,
                seconds: e.total_ns as f64 / 1e9,
            })
            .collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sample<'a>(id: u64, text: &'a str, user: &'a str) -> DigestSample<'a> {
        DigestSample {
            id,
            text: DigestText::Known(text),
            hint: None,
            user,
            schema: Some("app"),
            role: DestRole::Replica,
            elapsed: Duration::from_millis(2),
            rows: 3,
            error: false,
        }
    }

    #[test]
    fn counts_per_digest_user_schema_and_role() {
        let store = DigestStore::with_shards(100, 1);
        for _ in 0..5 {
            store.record(&sample(1, "select ?", "a"));
        }
        store.record(&sample(1, "select ?", "b"));
        store.record(&DigestSample {
            error: true,
            role: DestRole::Primary,
            ..sample(1, "select ?", "a")
        });
        assert_eq!(store.len(), 3);
        let doc = store.to_json(DigestSort::Calls, 10);
        let first = &doc["digests"][0];
        assert_eq!(first["calls"], 5);
        assert_eq!(first["rows"], 15);
        assert_eq!(first["user"], "a");
        assert_eq!(first["role"], "replica");
        assert_eq!(first["digest"], "0000000000000001");
        assert_eq!(first["p95_seconds"], 0.0025);
        let by_errors = store.to_json(DigestSort::Errors, 1);
        assert_eq!(by_errors["digests"][0]["errors"], 1);
        assert_eq!(by_errors["digests"][0]["role"], "primary");
    }

    #[test]
    fn a_full_table_folds_the_least_used_into_other_and_keeps_totals() {
        let store = DigestStore::with_shards(50, 1);
        for id in 0..5000u64 {
            store.record(&sample(id, "x", "u"));
            if id % 10 == 0 {
                store.record(&sample(id, "x", "u"));
            }
        }
        assert_eq!(store.len(), 50);
        let doc = store.to_json(DigestSort::Calls, 1000);
        let tracked: u64 = doc["digests"]
            .as_array()
            .unwrap()
            .iter()
            .map(|d| d["calls"].as_u64().unwrap())
            .sum();
        let other = doc["other"]["calls"].as_u64().unwrap();
        assert_eq!(tracked + other, 5000 + 500, "no call is lost");
        assert_eq!(doc["tracked"], 50);
    }

    #[test]
    fn shards_recorded_by_several_threads_merge_and_stay_within_the_limit() {
        let store = std::sync::Arc::new(DigestStore::with_shards(40, 4));
        let threads: Vec<_> = (0..4)
            .map(|t| {
                let store = store.clone();
                std::thread::spawn(move || {
                    // Every thread runs digest 1 (the same key) and 100 of its own.
                    for i in 0..100u64 {
                        store.record(&sample(1, "shared", "u"));
                        store.record(&sample(1000 * (t + 1) + i, "own", "u"));
                    }
                })
            })
            .collect();
        for t in threads {
            t.join().unwrap();
        }
        let doc = store.to_json(DigestSort::Calls, 1000);
        assert!(doc["tracked"].as_u64().unwrap() <= 40, "{doc}");
        assert_eq!(doc["digests"][0]["text"], "shared");
        assert_eq!(doc["digests"][0]["calls"], 400, "one entry, merged");
        let tracked: u64 = doc["digests"]
            .as_array()
            .unwrap()
            .iter()
            .map(|d| d["calls"].as_u64().unwrap())
            .sum();
        let other = doc["other"]["calls"].as_u64().unwrap();
        assert_eq!(tracked + other, 800, "no call is lost");
    }

    #[test]
    fn reset_and_top() {
        let store = DigestStore::new(10);
        store.record(&DigestSample {
            elapsed: Duration::from_secs(1),
            ..sample(7, "slow one", "u")
        });
        store.record(&sample(8, "fast one", "u"));
        let top = store.top(1);
        assert_eq!(top.len(), 1);
        assert_eq!(top[0].text, "slow one");
        store.reset();
        assert!(store.is_empty());
        assert_eq!(
            store.to_json(DigestSort::TotalTime, 10)["other"]["calls"],
            0
        );
    }
}
