//! The in-process backend: the reference that the conformance suite is pinned on.

use std::cell::RefCell;
use std::collections::{btree_map, BTreeMap};
use std::ops::Bound;

use crate::store::{budget, Entry, Expect, ListPage, LocalBoxFuture, Put, Store, StoreResult, Value, Version};

/// Keys -> bytes in a `BTreeMap`; every write bumps a store-wide counter that is the version token.
#[derive(Debug, Default)]
pub struct MemoryStore {
    inner: RefCell<Inner>,
}

#[derive(Debug, Default)]
struct Inner {
    entries: BTreeMap<String, (Vec<u8>, u64)>,
    writes: u64,
}

impl MemoryStore {
    pub fn new() -> MemoryStore {
        MemoryStore::default()
    }

    /// Every key and value, in key order (for tests that compare what is stored before and after).
    pub fn dump(&self) -> Vec<(String, Vec<u8>)> {
        self.inner.borrow().entries.iter().map(|(k, (v, _))| (k.clone(), v.clone())).collect()
    }

    fn get_now(&self, key: &str) -> Option<Entry> {
        let inner = self.inner.borrow();
        inner.entries.get(key).map(|(value, version)| Entry { value: value.clone(), version: version.to_string() })
    }

    /// Writes if `expect` holds; the bytes count against the instance's memory budget.
    fn put_now(&self, key: &str, mut value: Vec<u8>, expect: Expect) -> StoreResult<Option<Version>> {
        let mut inner = self.inner.borrow_mut();
        let version = inner.writes + 1;
        // One search of the map (it holds every record of every session in the store, under keys
        // that share long prefixes), not one to check and another to insert.
        let entry = inner.entries.entry(key.to_owned());
        let (replaced, current) = match &entry {
            btree_map::Entry::Occupied(slot) => (slot.get().0.len(), Some(slot.get().1.to_string())),
            btree_map::Entry::Vacant(_) => (0, None),
        };
        budget::check("a value for the memory store", value.len().saturating_sub(replaced) as u64)?;
        if !expect.holds(current.as_deref()) {
            return Ok(None);
        }
        // Kept for as long as the store lives: without spare capacity (the budget counts `len`).
        value.shrink_to_fit();
        budget::take(value.len() as u64);
        budget::give_back(replaced as u64);
        *entry.or_default() = (value, version);
        inner.writes = version;
        Ok(Some(version.to_string()))
    }

    fn delete_now(&self, key: &str, expected: Option<&str>) -> bool {
        let mut inner = self.inner.borrow_mut();
        match (inner.entries.get(key), expected) {
            (None, _) => false,
            (Some((_, version)), Some(want)) if version.to_string() != want => false,
            _ => match inner.entries.remove(key) {
                Some((old, _)) => {
                    budget::give_back(old.len() as u64);
                    true
                }
                None => false,
            },
        }
    }

    fn list_now(&self, prefix: &str, cursor: Option<&str>, limit: usize) -> ListPage {
        let inner = self.inner.borrow();
        let start = match cursor {
            Some(after) => Bound::Excluded(after.to_owned()),
            None => Bound::Included(prefix.to_owned()),
        };
        let keys: Vec<String> = inner
            .entries
            .range::<String, _>((start, Bound::Unbounded))
            .map(|(key, _)| key)
            .take_while(|key| key.starts_with(prefix))
            .take(limit.saturating_add(1))
            .cloned()
            .collect();
        ListPage::from_overfetch(keys, limit)
    }
}

impl Drop for MemoryStore {
    fn drop(&mut self) {
        let held: usize = self.inner.get_mut().entries.values().map(|(value, _)| value.len()).sum();
        budget::give_back(held as u64);
    }
}

impl Store for MemoryStore {
    fn put_or_current<'a>(
        &'a self,
        key: &'a str,
        value: Value,
        expect: Expect,
    ) -> LocalBoxFuture<'a, StoreResult<Put>> {
        let outcome = self.put_now(key, value.bytes, expect).map(|written| match written {
            Some(version) => Put::Written(version),
            None => Put::Refused { current: Some(self.get_now(key)) },
        });
        Box::pin(std::future::ready(outcome))
    }

    fn get<'a>(&'a self, key: &'a str) -> LocalBoxFuture<'a, StoreResult<Option<Entry>>> {
        Box::pin(std::future::ready(Ok(self.get_now(key))))
    }

    fn put<'a>(
        &'a self,
        key: &'a str,
        value: Value,
        expect: Expect,
    ) -> LocalBoxFuture<'a, StoreResult<Option<Version>>> {
        Box::pin(std::future::ready(self.put_now(key, value.bytes, expect)))
    }

    fn delete<'a>(&'a self, key: &'a str, expected: Option<&'a str>) -> LocalBoxFuture<'a, StoreResult<bool>> {
        Box::pin(std::future::ready(Ok(self.delete_now(key, expected))))
    }

    fn list<'a>(
        &'a self,
        prefix: &'a str,
        cursor: Option<&'a str>,
        limit: usize,
    ) -> LocalBoxFuture<'a, StoreResult<ListPage>> {
        Box::pin(std::future::ready(Ok(self.list_now(prefix, cursor, limit))))
    }

    /// Nothing reaches a closed store's sessions again (no other store shares them): they are freed
    /// now, not once the garbage collector finalizes the store.
    fn close(&self) {
        let entries = std::mem::take(&mut self.inner.borrow_mut().entries);
        budget::give_back(entries.values().map(|(value, _)| value.len() as u64).sum());
    }
}
