//! Byte-bounded memory caches of shared `Bytes`: the memory tier of the variant cache
//! (a hot hit costs a hash lookup and a reference-count increment — no file open, no
//! read, no blocking-pool hop) and the recently rendered originals. Bounded by bytes; quick_cache's S3-FIFO policy keeps a scan of
//! one-off variants from flushing the popular ones.

use bytes::Bytes;
use quick_cache::sync::Cache;
use quick_cache::Weighter;

/// Variants larger than this are served from disk only: a few big renders must not evict
/// hundreds of thumbnails, and large bodies gain little from skipping one file read.
pub const MAX_VARIANT_BYTES: usize = 1024 * 1024;

/// Per-entry bookkeeping counted against the budget on top of the bytes themselves.
const ENTRY_OVERHEAD: u64 = 128;

#[derive(Clone)]
struct ByBytes;

impl Weighter<String, Bytes> for ByBytes {
    fn weight(&self, key: &String, bytes: &Bytes) -> u64 {
        bytes.len() as u64 + key.len() as u64 + ENTRY_OVERHEAD
    }
}

/// Keys are the variant's relative path in the disk cache (`ab/<id>/<file>`), so all of
/// one image's entries share a prefix.
pub struct HotCache {
    /// None when the budget is 0 (the memory tier is switched off).
    cache: Option<Cache<String, Bytes, ByBytes>>,
    max_item: usize,
}

impl HotCache {
    /// A cache of at most `budget_bytes`, holding items of at most `max_item` bytes.
    pub fn new(budget_bytes: u64, max_item: usize) -> Self {
        if budget_bytes == 0 {
            return HotCache {
                cache: None,
                max_item,
            };
        }
        // quick_cache sizes its tables from an item estimate; 16 KiB is a typical thumbnail.
        let estimated_items = (budget_bytes / (16 * 1024)).clamp(64, 1 << 20) as usize;
        HotCache {
            cache: Some(Cache::with_weighter(estimated_items, budget_bytes, ByBytes)),
            max_item,
        }
    }

    pub fn get(&self, key: &str) -> Option<Bytes> {
        self.cache.as_ref()?.get(key)
    }

    pub fn insert(&self, key: &str, bytes: &Bytes) {
        let Some(cache) = &self.cache else { return };
        if bytes.len() > self.max_item {
            return;
        }
        cache.insert(key.to_owned(), bytes.clone());
    }

    /// Drop every entry under `prefix` (one image's; deletes are rare, a scan is fine).
    pub fn remove_prefix(&self, prefix: &str) {
        if let Some(cache) = &self.cache {
            cache.retain(|key, _| !key.starts_with(prefix));
        }
    }

    pub fn remove(&self, key: &str) {
        if let Some(cache) = &self.cache {
            cache.remove(key);
        }
    }

    /// Bytes held, as the budget counts them.
    pub fn weight(&self) -> u64 {
        self.cache.as_ref().map_or(0, |c| c.weight())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn budget_bounds_the_bytes_held_and_delete_drops_an_image() {
        let hot = HotCache::new(64 * 1024, MAX_VARIANT_BYTES);
        for i in 0..100 {
            hot.insert(&format!("aa/a/{i}.png"), &Bytes::from(vec![0u8; 4096]));
        }
        assert!(hot.weight() <= 64 * 1024, "held {}", hot.weight());
        assert!(hot.weight() > 32 * 1024, "held {}", hot.weight());
        hot.insert("bb/b/1.png", &Bytes::from_static(b"bee"));
        assert_eq!(hot.get("bb/b/1.png").unwrap(), "bee");
        hot.remove_prefix("aa/a/");
        assert!((0..100).all(|i| hot.get(&format!("aa/a/{i}.png")).is_none()));
        assert_eq!(hot.get("bb/b/1.png").unwrap(), "bee");
    }

    #[test]
    fn large_items_and_a_zero_budget_are_not_held() {
        let hot = HotCache::new(64 * 1024 * 1024, MAX_VARIANT_BYTES);
        hot.insert("big.png", &Bytes::from(vec![0u8; MAX_VARIANT_BYTES + 1]));
        assert!(hot.get("big.png").is_none());
        let off = HotCache::new(0, MAX_VARIANT_BYTES);
        off.insert("k.png", &Bytes::from_static(b"x"));
        assert!(off.get("k.png").is_none());
    }
}
