//! The crate's one map type: its entries in a `Vec`, sorted by key.
//!
//! Every map in the engine is small and bounded (hosts, by `max_hosts`; calls that are
//! failing, a fleet's local shares, the fallback store's entries, by its `max_entries`), is
//! looked up far more often than it changes, and is never iterated in an order that reaches a
//! decision. (A pagination walk's cursors grow with the walk, up to a million pages: they are
//! a `BTreeSet`, where an insert does not move half of them.) A binary search over
//! a few sorted keys costs less than hashing a host name, and the browser build carries one small
//! search per map instead of hashbrown's table (≈ 15 KB of the module, one copy of its
//! rehash, insert, find and drop per element type) and std's SipHash and `RandomState`.
//!
//! One vector of pairs, not keys and values in two: two vectors shared the search between maps
//! of one key type but doubled `Vec::insert` and `Vec::remove` (≈ 0.4 KB gzipped more), and the
//! engine's retry decision was 10 instructions dearer. Inserting or removing shifts the entries
//! after the place (a `memmove`); for the sizes here that is cheaper than a rehash.
//! Iteration is in key order, which is deterministic (std's `HashMap` iterated in a per-process
//! random order, so nothing could depend on it).

use core::borrow::Borrow;
use core::fmt;

/// A map from `K` to `V` as a vector of pairs sorted by key. See the [module docs](self).
#[derive(Clone)]
pub struct SortedMap<K, V> {
    entries: Vec<(K, V)>,
}

impl<K, V> Default for SortedMap<K, V> {
    fn default() -> Self {
        SortedMap::new()
    }
}

impl<K: fmt::Debug, V: fmt::Debug> fmt::Debug for SortedMap<K, V> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_map().entries(self.iter()).finish()
    }
}

impl<K, V> SortedMap<K, V> {
    /// An empty map; allocates nothing until the first insert.
    pub const fn new() -> Self {
        SortedMap {
            entries: Vec::new(),
        }
    }

    /// Entries held.
    pub fn len(&self) -> usize {
        self.entries.len()
    }

    /// Whether it holds nothing.
    pub fn is_empty(&self) -> bool {
        self.entries.is_empty()
    }

    /// Forgets every entry (keeps the vectors' capacity).
    pub fn clear(&mut self) {
        self.entries.clear();
    }

    /// The entries in key order.
    pub fn iter(&self) -> impl Iterator<Item = (&K, &V)> {
        self.entries.iter().map(|(k, v)| (k, v))
    }

    /// Takes out the entry at position `at` of [`SortedMap::iter`]; `None` past the end.
    pub fn remove_at(&mut self, at: usize) -> Option<(K, V)> {
        (at < self.entries.len()).then(|| self.entries.remove(at))
    }
}

impl<K: Ord, V> SortedMap<K, V> {
    /// Where `key` is (`Ok`) or would go (`Err`).
    #[inline]
    fn find<Q: Ord + ?Sized>(&self, key: &Q) -> Result<usize, usize>
    where
        K: Borrow<Q>,
    {
        self.entries.binary_search_by(|(k, _)| k.borrow().cmp(key))
    }

    /// The value under `key`.
    #[inline]
    pub fn get<Q: Ord + ?Sized>(&self, key: &Q) -> Option<&V>
    where
        K: Borrow<Q>,
    {
        self.find(key).ok().map(|i| &self.entries[i].1)
    }

    /// The value under `key`, to change.
    #[inline]
    pub fn get_mut<Q: Ord + ?Sized>(&mut self, key: &Q) -> Option<&mut V>
    where
        K: Borrow<Q>,
    {
        self.find(key).ok().map(|i| &mut self.entries[i].1)
    }

    /// Whether `key` has a value.
    pub fn contains_key<Q: Ord + ?Sized>(&self, key: &Q) -> bool
    where
        K: Borrow<Q>,
    {
        self.find(key).is_ok()
    }

    /// Puts `value` under `key`; the value it replaces, if any (the stored key stays).
    pub fn insert(&mut self, key: K, value: V) -> Option<V> {
        match self.find(&key) {
            Ok(i) => Some(core::mem::replace(&mut self.entries[i].1, value)),
            Err(i) => {
                self.entries.insert(i, (key, value));
                None
            }
        }
    }

    /// Takes out the value under `key`.
    pub fn remove<Q: Ord + ?Sized>(&mut self, key: &Q) -> Option<V>
    where
        K: Borrow<Q>,
    {
        let i = self.find(key).ok()?;
        Some(self.entries.remove(i).1)
    }

    /// The value under `key`, first inserting the entry `new()` makes if there is none. `new`
    /// builds the owned key too (an `Arc<str>` for a `&str`), so a lookup that finds its entry
    /// allocates nothing; the key it returns must equal `key`.
    pub fn get_or_insert_with<Q: Ord + ?Sized>(
        &mut self,
        key: &Q,
        new: impl FnOnce() -> (K, V),
    ) -> &mut V
    where
        K: Borrow<Q>,
    {
        let i = match self.find(key) {
            Ok(i) => i,
            Err(i) => {
                let (k, v) = new();
                debug_assert!(
                    k.borrow() == key,
                    "the new entry's key is the one looked up"
                );
                self.entries.insert(i, (k, v));
                i
            }
        };
        &mut self.entries[i].1
    }
}

#[cfg(test)]
mod tests {
    use super::SortedMap;
    use std::collections::BTreeMap;
    use std::sync::Arc;

    /// The same operations on a `SortedMap` and a `BTreeMap` give the same answers and the same
    /// contents, in the same order, at every step.
    #[test]
    fn behaves_as_a_btree_map() {
        let mut ours: SortedMap<u32, u64> = SortedMap::new();
        let mut model: BTreeMap<u32, u64> = BTreeMap::new();
        let mut x: u64 = 0x9e37_79b9_7f4a_7c15;
        for step in 0..4000u64 {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            let key = (x % 61) as u32;
            match x % 7 {
                0..=2 => assert_eq!(ours.insert(key, step), model.insert(key, step)),
                3..=4 => assert_eq!(ours.remove(&key), model.remove(&key)),
                5 => {
                    let got = *ours.get_or_insert_with(&key, || (key, step));
                    assert_eq!(got, *model.entry(key).or_insert(step));
                }
                _ => {
                    if let Some(v) = ours.get_mut(&key) {
                        *v += 1;
                    }
                    if let Some(v) = model.get_mut(&key) {
                        *v += 1;
                    }
                }
            }
            assert_eq!(ours.get(&key), model.get(&key));
            assert_eq!(ours.contains_key(&key), model.contains_key(&key));
            assert_eq!(ours.len(), model.len());
            assert!(ours.iter().eq(model.iter()), "step {step}");
        }
        ours.clear();
        assert!(ours.is_empty() && ours.iter().next().is_none());
    }

    #[test]
    fn str_keys_are_found_by_str_and_made_only_when_missing() {
        let mut hosts: SortedMap<Arc<str>, u32> = SortedMap::default();
        let mut made = 0;
        for (name, want) in [("b", 0), ("a", 1), ("b", 0), ("c", 2), ("a", 1)] {
            let next = hosts.len() as u32;
            let got = *hosts.get_or_insert_with(name, || {
                made += 1;
                (Arc::from(name), next)
            });
            assert_eq!(got, want, "{name}");
        }
        assert_eq!(made, 3);
        assert_eq!(hosts.get("c"), Some(&2));
        assert_eq!(hosts.get("d"), None);
        assert_eq!(format!("{hosts:?}"), r#"{"a": 1, "b": 0, "c": 2}"#);
        assert!(hosts.iter().map(|(_, v)| *v).eq([1, 0, 2]));
        assert_eq!(hosts.remove_at(1), Some((Arc::from("b"), 0)));
        assert_eq!(hosts.remove_at(2), None);
        assert_eq!(hosts.remove("a"), Some(1));
        assert_eq!(hosts.remove("a"), None);
        assert_eq!(hosts.len(), 1);
    }
}
