//! Backend names as shared strings, so that choosing a backend for a statement allocates
//! nothing: each session keeps the few names it has used (at most one per configured backend,
//! plus any a reload introduces) and hands out clones of them.

use std::sync::Arc;

#[derive(Debug, Default)]
pub(crate) struct NameCache {
    names: Vec<Arc<str>>,
}

impl NameCache {
    /// `name` as a shared string, allocated only the first time this session sees it.
    pub(crate) fn get(&mut self, name: &str) -> Arc<str> {
        if let Some(found) = self.names.iter().find(|n| &***n == name) {
            return found.clone();
        }
        let new: Arc<str> = Arc::from(name);
        self.names.push(new.clone());
        new
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_name_is_allocated_once() {
        let mut cache = NameCache::default();
        let a = cache.get("db2");
        let b = cache.get("db2");
        assert!(Arc::ptr_eq(&a, &b));
        let c = cache.get("db3");
        assert_eq!((&*a, &*c), ("db2", "db3"));
        assert_eq!(cache.names.len(), 2);
    }
}
