//! Which variant files the local disk cache holds, how big they are and when each was
//! last used: enough to evict least-recently-used files when the cache is over its byte
//! budget and to expire files unused for longer than the TTL, without walking the disk.

use std::collections::{BTreeMap, HashMap};

/// What the index knows of one cached file.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Slot {
    pub size: u64,
    /// Unix seconds of the last use (or of the write).
    pub used_at: u64,
    /// Position in use order: larger is more recent.
    seq: u64,
    /// What the file's modification time says (unix seconds): the write, or the last
    /// use written back by [`LruIndex::stamps_due`]. A restart reads use from it.
    stamped_at: u64,
}

/// A cached file the index gave up, for the caller to delete.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Evicted {
    pub key: String,
    pub size: u64,
}

#[derive(Default)]
pub struct LruIndex {
    slots: HashMap<String, Slot>,
    by_use: BTreeMap<u64, String>,
    next_seq: u64,
    total: u64,
}

impl LruIndex {
    pub fn total_bytes(&self) -> u64 {
        self.total
    }

    #[cfg(test)]
    pub fn len(&self) -> usize {
        self.slots.len()
    }

    pub fn get(&self, key: &str) -> Option<Slot> {
        self.slots.get(key).copied()
    }

    /// Record a file (new or replaced) as used at `now`.
    pub fn insert(&mut self, key: &str, size: u64, now: u64) {
        self.remove(key);
        let seq = self.bump();
        self.slots.insert(
            key.to_owned(),
            Slot {
                size,
                used_at: now,
                seq,
                stamped_at: now,
            },
        );
        self.by_use.insert(seq, key.to_owned());
        self.total += size;
    }

    /// Mark a file used at `now`; false when the index does not hold it.
    pub fn touch(&mut self, key: &str, now: u64) -> bool {
        let seq = self.bump();
        let Some(slot) = self.slots.get_mut(key) else {
            return false;
        };
        if let Some(name) = self.by_use.remove(&slot.seq) {
            self.by_use.insert(seq, name);
        }
        slot.seq = seq;
        slot.used_at = slot.used_at.max(now);
        true
    }

    pub fn remove(&mut self, key: &str) -> Option<Slot> {
        let slot = self.slots.remove(key)?;
        self.by_use.remove(&slot.seq);
        self.total -= slot.size;
        Some(slot)
    }

    /// Remove every key for which `drop` is true (deleting an image's variants).
    pub fn remove_where(&mut self, mut drop: impl FnMut(&str) -> bool) -> Vec<Evicted> {
        let keys: Vec<String> = self.slots.keys().filter(|k| drop(k)).cloned().collect();
        self.remove_listed(&keys)
    }

    /// Least recently used first, until the total is at most `budget`.
    pub fn evict_to(&mut self, budget: u64) -> Vec<Evicted> {
        let mut out = Vec::new();
        while self.total > budget {
            let Some((_, key)) = self.by_use.pop_first() else {
                break;
            };
            if let Some(slot) = self.slots.remove(&key) {
                self.total -= slot.size;
                out.push(Evicted {
                    key,
                    size: slot.size,
                });
            }
        }
        out
    }

    /// Every file last used before `cutoff` (unix seconds).
    pub fn expire_before(&mut self, cutoff: u64) -> Vec<Evicted> {
        let stale: Vec<String> = self
            .slots
            .iter()
            .filter(|(_, slot)| slot.used_at < cutoff)
            .map(|(key, _)| key.clone())
            .collect();
        self.remove_listed(&stale)
    }

    /// Files used `lag` seconds or more after their modification time says, with the use
    /// to write back as their new modification time (at most `most` of them); the index
    /// then takes them as written. So a restart, which reads last use from modification
    /// times, sees each file used at most `lag` before it really was.
    pub fn stamps_due(&mut self, lag: u64, most: usize) -> Vec<(String, u64)> {
        let mut due = Vec::new();
        for (key, slot) in &mut self.slots {
            if due.len() >= most {
                break;
            }
            if slot.used_at >= slot.stamped_at.saturating_add(lag) {
                slot.stamped_at = slot.used_at;
                due.push((key.clone(), slot.used_at));
            }
        }
        due
    }

    fn remove_listed(&mut self, keys: &[String]) -> Vec<Evicted> {
        keys.iter()
            .filter_map(|key| {
                self.remove(key).map(|s| Evicted {
                    key: key.clone(),
                    size: s.size,
                })
            })
            .collect()
    }

    fn bump(&mut self) -> u64 {
        self.next_seq += 1;
        self.next_seq
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn evicts_least_recently_used_first() {
        let mut index = LruIndex::default();
        index.insert("a", 10, 100);
        index.insert("b", 10, 101);
        index.insert("c", 10, 102);
        assert!(index.touch("a", 103));
        assert_eq!(index.total_bytes(), 30);
        let evicted = index.evict_to(15);
        let keys: Vec<_> = evicted.iter().map(|e| e.key.as_str()).collect();
        assert_eq!(keys, ["b", "c"]);
        assert_eq!(index.total_bytes(), 10);
        assert!(index.get("a").is_some());
    }

    #[test]
    fn replacing_a_key_counts_its_size_once() {
        let mut index = LruIndex::default();
        index.insert("a", 10, 1);
        index.insert("a", 25, 2);
        assert_eq!(index.total_bytes(), 25);
        assert_eq!(index.len(), 1);
        assert_eq!(index.remove("a").unwrap().size, 25);
        assert_eq!(index.total_bytes(), 0);
        assert!(!index.touch("a", 3));
    }

    #[test]
    fn expiry_takes_only_files_unused_since_the_cutoff() {
        let mut index = LruIndex::default();
        index.insert("old", 5, 100);
        index.insert("used", 5, 100);
        index.insert("new", 5, 500);
        index.touch("used", 450);
        let mut expired: Vec<_> = index
            .expire_before(400)
            .into_iter()
            .map(|e| e.key)
            .collect();
        expired.sort();
        assert_eq!(expired, ["old"]);
        assert_eq!(index.total_bytes(), 10);
    }

    #[test]
    fn stamps_fall_due_once_use_runs_ahead_of_the_file_time() {
        let mut index = LruIndex::default();
        index.insert("hot", 1, 100);
        index.insert("cold", 1, 100);
        index.touch("hot", 130);
        index.touch("cold", 105);
        assert_eq!(index.stamps_due(20, 10), [("hot".to_owned(), 130)]);
        assert!(index.stamps_due(20, 10).is_empty(), "stamped once");
        index.touch("hot", 200);
        assert_eq!(index.stamps_due(20, 0), []);
    }

    #[test]
    fn remove_where_drops_matching_keys() {
        let mut index = LruIndex::default();
        index.insert("x/1", 1, 1);
        index.insert("x/2", 2, 1);
        index.insert("y/1", 4, 1);
        let gone = index.remove_where(|k| k.starts_with("x/"));
        assert_eq!(gone.len(), 2);
        assert_eq!(index.total_bytes(), 4);
    }
}
