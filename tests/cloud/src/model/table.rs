//! A keyed collection of the model that remembers which of its keys were
//! written, so that a change is stored as the few rows it touched rather
//! than the whole state.

use serde::de::DeserializeOwned;
use serde::{Deserialize, Deserializer, Serialize, Serializer};
use std::collections::{BTreeMap, BTreeSet};

#[derive(Debug, Clone)]
pub struct Table<V> {
    rows: BTreeMap<String, V>,
    /// Keys inserted, removed or lent out mutably since the last drain: a
    /// `get_mut` counts as a write whether or not the caller changed it.
    dirty: BTreeSet<String>,
}

impl<V> Default for Table<V> {
    fn default() -> Self {
        Self {
            rows: BTreeMap::new(),
            dirty: BTreeSet::new(),
        }
    }
}

impl<V> Table<V> {
    pub fn get(&self, key: &str) -> Option<&V> {
        self.rows.get(key)
    }

    pub fn contains_key(&self, key: &str) -> bool {
        self.rows.contains_key(key)
    }

    pub fn get_mut(&mut self, key: &str) -> Option<&mut V> {
        let row = self.rows.get_mut(key)?;
        if !self.dirty.contains(key) {
            self.dirty.insert(key.to_string());
        }
        Some(row)
    }

    pub fn insert(&mut self, key: String, value: V) -> Option<V> {
        self.dirty.insert(key.clone());
        self.rows.insert(key, value)
    }

    pub fn remove(&mut self, key: &str) -> Option<V> {
        let removed = self.rows.remove(key)?;
        self.dirty.insert(key.to_string());
        Some(removed)
    }

    /// Keeps the rows `keep` says to, marking the others removed.
    pub fn retain(&mut self, mut keep: impl FnMut(&str, &mut V) -> bool) {
        let dirty = &mut self.dirty;
        self.rows.retain(|key, value| {
            let kept = keep(key, value);
            if !kept {
                dirty.insert(key.clone());
            }
            kept
        });
    }

    pub fn values(&self) -> impl Iterator<Item = &V> {
        self.rows.values()
    }

    pub fn iter(&self) -> impl Iterator<Item = (&String, &V)> {
        self.rows.iter()
    }

    /// The rows `matches` picks, mutably: only those count as written.
    pub fn matching_mut(&mut self, matches: impl Fn(&V) -> bool) -> impl Iterator<Item = &mut V> {
        let dirty = &mut self.dirty;
        self.rows.iter_mut().filter_map(move |(key, value)| {
            if !matches(value) {
                return None;
            }
            dirty.insert(key.clone());
            Some(value)
        })
    }

    /// The rows whose key starts with `prefix`, in key order.
    pub fn with_prefix_owned(&self, prefix: String) -> impl Iterator<Item = (&String, &V)> {
        self.rows
            .range::<str, _>((
                std::ops::Bound::Included(prefix.as_str()),
                std::ops::Bound::Unbounded,
            ))
            .take_while(move |(key, _)| key.starts_with(&prefix))
    }

    /// Up to `size` rows whose key starts with `prefix` and sorts after
    /// `after` (a page, by the last key of the page before), and whether
    /// there are more.
    pub fn page(
        &self,
        prefix: &str,
        after: Option<&str>,
        size: usize,
    ) -> (Vec<(&String, &V)>, bool) {
        use std::ops::Bound;
        let start = match after {
            Some(after) if after >= prefix => Bound::Excluded(after),
            _ => Bound::Included(prefix),
        };
        let mut rows = self
            .rows
            .range::<str, _>((start, Bound::Unbounded))
            .take_while(|(key, _)| key.starts_with(prefix));
        let page: Vec<_> = rows.by_ref().take(size).collect();
        let more = rows.next().is_some();
        (page, more)
    }

    /// How many rows it holds.
    pub fn count(&self) -> usize {
        self.rows.len()
    }

    /// Every key, as written: for a state that is stored whole the first
    /// time (a migration, a fresh store).
    pub fn mark_all_written(&mut self) {
        self.dirty.extend(self.rows.keys().cloned());
    }

    /// The keys written since the last drain, each with its row now
    /// (`None`: removed).
    pub fn drain_written(&mut self) -> impl Iterator<Item = (String, Option<&V>)> {
        let dirty = std::mem::take(&mut self.dirty);
        dirty.into_iter().map(|key| {
            let row = self.rows.get(&key);
            (key, row)
        })
    }

    /// A row as the store holds it, put back without counting as written.
    pub fn load(&mut self, key: String, value: Option<V>) {
        match value {
            Some(value) => self.rows.insert(key, value),
            None => self.rows.remove(&key),
        };
    }
}

impl<V: Serialize> Serialize for Table<V> {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        self.rows.serialize(serializer)
    }
}

impl<'de, V: DeserializeOwned> Deserialize<'de> for Table<V> {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        Ok(Self {
            rows: BTreeMap::deserialize(deserializer)?,
            dirty: BTreeSet::new(),
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn written(table: &mut Table<u32>) -> Vec<(String, Option<u32>)> {
        table
            .drain_written()
            .map(|(k, v)| (k, v.copied()))
            .collect()
    }

    #[test]
    fn only_what_was_touched_is_written() {
        let mut t = Table::default();
        t.insert("a".into(), 1);
        t.insert("b".into(), 2);
        t.insert("c".into(), 3);
        assert_eq!(written(&mut t).len(), 3);
        assert!(written(&mut t).is_empty(), "drained");
        if let Some(b) = t.get_mut("b") {
            *b = 20;
        }
        t.remove("c");
        t.remove("nothing");
        assert_eq!(
            written(&mut t),
            vec![("b".into(), Some(20)), ("c".into(), None)]
        );
        t.retain(|k, _| k != "a");
        assert_eq!(written(&mut t), vec![("a".into(), None)]);
        t.load("z".into(), Some(9));
        assert!(written(&mut t).is_empty(), "a load is not a write");
        for v in t.matching_mut(|v| *v == 9) {
            *v += 1;
        }
        assert_eq!(written(&mut t), vec![("z".into(), Some(10))]);
    }

    #[test]
    fn a_prefix_finds_its_rows_only() {
        let mut t = Table::default();
        for k in [
            "m1/extensions/a",
            "m1/extensions/b",
            "m10/extensions/a",
            "m2",
        ] {
            t.insert(k.into(), 0);
        }
        let keys: Vec<_> = t
            .with_prefix_owned("m1/".into())
            .map(|(k, _)| k.clone())
            .collect();
        assert_eq!(keys, ["m1/extensions/a", "m1/extensions/b"]);
    }
}
