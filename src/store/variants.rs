//! The variant cache, in up to three tiers:
//! 1. memory ([`HotCache`]): recently served variants, a hit costs no syscall;
//! 2. local disk: one directory per image (so deleting an image drops its variants with
//!    one directory removal), bounded by bytes with least-recently-used eviction;
//! 3. the shared store (when originals live in a bucket): every node's renders land there,
//!    so a variant rendered on one node is a download, not a render, on the others.
//!
//! Disk writes go to a temp file in the same directory and are renamed into place, so a
//! reader (or a crash) never sees a partial variant. Variants are a cache: losing any
//! tier only costs renders, so nothing here is fsynced.

use std::io::Write;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use bytes::Bytes;

use super::hot::{HotCache, MAX_VARIANT_BYTES};
use super::intact;
use super::lru_index::{Evicted, LruIndex};
use super::{BlobStore, StoreError};

/// Prefix of in-progress writes; anything with it is garbage after a restart.
const TEMP_PREFIX: &str = ".tmp";

/// Where variants live in the shared store.
const SHARED_PREFIX: &str = "variants";

/// Directory (under the cache root) of purge markers: `<id>` while that image's cache
/// directory is being removed, so a crash mid-purge is finished at the next start.
const PURGING_DIR: &str = ".purging";

/// How long a deleted image's id refuses cache writes. Any render or read that was in
/// flight when the delete ran ends well within this (job and store deadlines).
const TOMBSTONE_LIFETIME: Duration = Duration::from_secs(600);

/// Limits of the cache tiers.
#[derive(Debug, Clone, Copy)]
pub struct CacheLimits {
    /// Memory tier budget in bytes (0 switches it off).
    pub memory_bytes: u64,
    /// Local disk budget in bytes; least recently used files go first.
    pub disk_bytes: u64,
    /// Variants unused for this long are removed from every tier.
    pub ttl: Option<Duration>,
}

/// Evictions since start, by cause (for `/metrics`).
#[derive(Default)]
pub struct Evictions {
    pub size: AtomicU64,
    pub ttl: AtomicU64,
}

pub struct VariantCache {
    root: PathBuf,
    hot: HotCache,
    index: Mutex<LruIndex>,
    limits: CacheLimits,
    shared: Option<Arc<dyn BlobStore>>,
    /// Ids deleted on this node recently: no tier takes bytes for them (see `bury`).
    tombstones: quick_cache::sync::Cache<String, std::time::Instant>,
    pub evictions: Evictions,
}

impl VariantCache {
    /// Open (creating) the disk tier under `root`: remove temp files a crash left behind
    /// and index what is there, oldest first by modification time. Blocking: call at
    /// start-up.
    pub fn open(
        root: PathBuf,
        limits: CacheLimits,
        shared: Option<Arc<dyn BlobStore>>,
    ) -> std::io::Result<Self> {
        std::fs::create_dir_all(&root)?;
        finish_purges(&root)?;
        let mut found = Vec::new();
        walk_files(&root, &mut |path, meta| {
            let is_temp = path
                .file_name()
                .and_then(|n| n.to_str())
                .is_some_and(|n| n.starts_with(TEMP_PREFIX));
            if is_temp {
                let _ = std::fs::remove_file(path);
            } else if let Some(key) = relative_key(&root, path) {
                let modified = meta.modified().map(unix_secs).unwrap_or(0);
                found.push((modified, key, meta.len()));
            }
        })?;
        found.sort_unstable();
        let mut index = LruIndex::default();
        for (modified, key, size) in &found {
            index.insert(key, *size, *modified);
        }
        let cache = VariantCache {
            root,
            hot: HotCache::new(limits.memory_bytes, MAX_VARIANT_BYTES),
            index: Mutex::new(index),
            limits,
            shared,
            tombstones: quick_cache::sync::Cache::new(100_000),
            evictions: Evictions::default(),
        };
        let over = cache.lock_index().evict_to(limits.disk_bytes);
        cache
            .evictions
            .size
            .fetch_add(over.len() as u64, Ordering::Relaxed);
        cache.delete_files(&over);
        Ok(cache)
    }

    /// Bytes of variants on local disk.
    pub fn total_bytes(&self) -> u64 {
        self.lock_index().total_bytes()
    }

    /// Bytes held by the memory tier.
    pub fn memory_bytes(&self) -> u64 {
        self.hot.weight()
    }

    /// The cached bytes for `file` (a name such as `3f2a….webp`) of image `id`.
    pub async fn get(&self, id: &str, file: &str) -> Result<Option<Bytes>, StoreError> {
        let key = cache_key(id, file);
        if let Some(bytes) = self.get_here(&key).await? {
            return Ok(Some(bytes));
        }
        let Some(shared) = &self.shared else {
            return Ok(None);
        };
        match shared.get(&shared_key(&key)).await {
            Ok(bytes) => {
                // A full or read-only local disk must not fail a hit the bucket can serve.
                if let Err(e) = self.put_local(&key, bytes.clone()).await {
                    tracing::warn!(error = %e, key, "could not keep a local copy of a variant");
                }
                Ok(Some(bytes))
            }
            Err(StoreError::NotFound) => Ok(None),
            Err(e) => Err(e),
        }
    }

    /// Like [`VariantCache::get`], from this node's memory and disk only.
    pub async fn get_local(&self, id: &str, file: &str) -> Result<Option<Bytes>, StoreError> {
        self.get_here(&cache_key(id, file)).await
    }

    /// Keep `bytes` in this node's memory and disk tiers only (a node-local copy of
    /// something the shared store already holds, such as an original).
    pub async fn put_local_copy(
        &self,
        id: &str,
        file: &str,
        bytes: Bytes,
    ) -> Result<(), StoreError> {
        self.put_local(&cache_key(id, file), bytes).await
    }

    /// Like [`VariantCache::get`], from this node's memory tier only: never waits on a
    /// disk or the network (the cache-hit fast path, `http::hot_hits`).
    pub fn get_memory(&self, id: &str, file: &str) -> Option<Bytes> {
        self.get_memory_key(&cache_key(id, file))
    }

    fn get_memory_key(&self, key: &str) -> Option<Bytes> {
        let bytes = self.hot.get(key)?;
        self.lock_index().touch(key, now_secs());
        Some(bytes)
    }

    async fn get_here(&self, key: &str) -> Result<Option<Bytes>, StoreError> {
        if let Some(bytes) = self.get_memory_key(key) {
            return Ok(Some(bytes));
        }
        let path = self.root.join(key);
        match tokio::fs::read(&path).await {
            Ok(bytes) if !intact::looks_whole(key, &bytes) => {
                // Torn by a power loss (renames are not fsynced): a miss, and gone.
                tracing::warn!(path = %path.display(), "dropping an incomplete cached file");
                self.lock_index().remove(key);
                let _ = tokio::fs::remove_file(&path).await;
                Ok(None)
            }
            Ok(bytes) => {
                let bytes = Bytes::from(bytes);
                let mut index = self.lock_index();
                if !index.touch(key, now_secs()) {
                    index.insert(key, bytes.len() as u64, now_secs());
                }
                drop(index);
                self.hot.insert(key, &bytes);
                // A read that raced a delete must not bring the image back: checked after
                // the insert, so a purge either saw the entry or left this tombstone.
                if self.is_buried(key) {
                    self.hot.remove(key);
                    return Ok(None);
                }
                Ok(Some(bytes))
            }
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(None),
            Err(e) => {
                // A failing cache disk costs renders, never the request.
                tracing::warn!(error = %e, path = %path.display(), "could not read a cached file");
                Ok(None)
            }
        }
    }

    /// Store `bytes` as `file` of image `id` in every tier.
    pub async fn put(&self, id: &str, file: &str, bytes: Bytes) -> Result<(), StoreError> {
        let key = cache_key(id, file);
        if self.is_buried(&key) {
            return Ok(());
        }
        if let Some(shared) = &self.shared {
            // Two nodes rendering the same variant both write the same bytes: the object
            // store keeps one whole object either way.
            shared.put(&shared_key(&key), bytes.clone()).await?;
        }
        self.put_local(&key, bytes).await
    }

    async fn put_local(&self, key: &str, bytes: Bytes) -> Result<(), StoreError> {
        if self.is_buried(key) {
            return Ok(());
        }
        self.hot.insert(key, &bytes);
        let target = self.root.join(key);
        let len = bytes.len() as u64;
        let written = target.clone();
        tokio::task::spawn_blocking(move || write_atomically(&target, &bytes))
            .await
            .map_err(|e| StoreError::Unavailable(e.to_string()))??;
        if self.is_buried(key) {
            // Deleted while this was written: the purge may have run before the write
            // recreated the directory, so undo it here.
            self.hot.remove(key);
            let dir = written.parent().map(Path::to_path_buf);
            let _ = tokio::task::spawn_blocking(move || {
                let _ = std::fs::remove_file(&written);
                if let Some(dir) = dir {
                    let _ = std::fs::remove_dir(dir); // only if empty
                }
            })
            .await;
            return Ok(());
        }
        let evicted = {
            let mut index = self.lock_index();
            index.insert(key, len, now_secs());
            index.evict_to(self.limits.disk_bytes)
        };
        if !evicted.is_empty() {
            self.evictions
                .size
                .fetch_add(evicted.len() as u64, Ordering::Relaxed);
            self.delete_files_in_background(evicted);
        }
        Ok(())
    }

    /// Refuse cache writes for a deleted image from now on (for [`TOMBSTONE_LIFETIME`],
    /// or until [`VariantCache::revive`]): renders and reads that were in flight when it
    /// was deleted cannot bring any tier back. Call before deleting, then purge.
    pub fn bury(&self, id: &str) {
        self.tombstones
            .insert(id.to_owned(), std::time::Instant::now());
    }

    /// The image is stored again (re-uploaded): its variants may be cached again.
    pub fn revive(&self, id: &str) {
        self.tombstones.remove(id);
    }

    /// Whether the image of cache key `ab/<id>/<file>` was deleted here recently.
    fn is_buried(&self, key: &str) -> bool {
        self.is_deleted(key.split('/').nth(1).unwrap_or_default())
    }

    /// Whether image `id` was deleted on this node recently (see `bury`).
    pub fn is_deleted(&self, id: &str) -> bool {
        self.tombstones
            .get(id)
            .is_some_and(|at| at.elapsed() < TOMBSTONE_LIFETIME)
    }

    /// Drop every cached variant of an image, in every tier. Idempotent; a crash midway
    /// is finished when the cache next opens (a purge marker is written first).
    pub async fn remove_image(&self, id: &str) -> Result<(), StoreError> {
        let prefix = format!("{}/{id}/", &id[..2]);
        self.hot.remove_prefix(&prefix);
        self.lock_index()
            .remove_where(|key| key.starts_with(&prefix));
        let (root, id_owned) = (self.root.clone(), id.to_owned());
        tokio::task::spawn_blocking(move || purge_dir(&root, &id_owned))
            .await
            .map_err(|e| StoreError::Unavailable(e.to_string()))??;
        if let Some(shared) = &self.shared {
            for key in shared.list(&shared_key(&prefix)).await? {
                shared.delete(&key).await?;
            }
        }
        Ok(())
    }

    /// Apply the TTL: remove variants unused for longer than it from memory and disk,
    /// and from the shared store those last written before it — except ones this node
    /// used within the TTL, which it writes back so other nodes' sweeps keep them.
    pub async fn expire(&self) -> Result<u64, StoreError> {
        let Some(ttl) = self.limits.ttl else {
            return Ok(0);
        };
        self.stamp_last_uses(ttl).await;
        let cutoff = now_secs().saturating_sub(ttl.as_secs());
        let stale = self.lock_index().expire_before(cutoff);
        for gone in &stale {
            self.hot.remove(&gone.key);
        }
        let mut expired = stale.len() as u64;
        let root = self.root.clone();
        tokio::task::spawn_blocking(move || remove_files(&root, &stale))
            .await
            .map_err(|e| StoreError::Unavailable(e.to_string()))?;
        if let Some(shared) = &self.shared {
            for (object, written) in shared.list_dated(SHARED_PREFIX).await? {
                if written >= cutoff {
                    continue;
                }
                let key = object
                    .strip_prefix(SHARED_PREFIX)
                    .unwrap_or(&object)
                    .trim_start_matches('/');
                let used_here = self.lock_index().get(key).is_some();
                match tokio::fs::read(self.root.join(key)).await {
                    Ok(bytes) if used_here => shared.put(&object, Bytes::from(bytes)).await?,
                    _ => {
                        shared.delete(&object).await?;
                        expired += 1;
                    }
                }
            }
        }
        self.evictions.ttl.fetch_add(expired, Ordering::Relaxed);
        Ok(expired)
    }

    /// Write last uses back to the files' modification times (a quarter TTL behind at
    /// most), so that after a restart, which indexes files by modification time, hot
    /// variants are not all taken for unused since their render and expired together.
    async fn stamp_last_uses(&self, ttl: Duration) {
        let due = self
            .lock_index()
            .stamps_due((ttl.as_secs() / 4).max(1), 10_000);
        if due.is_empty() {
            return;
        }
        let root = self.root.clone();
        let _ = tokio::task::spawn_blocking(move || {
            for (key, used_at) in due {
                let at = UNIX_EPOCH + Duration::from_secs(used_at);
                let stamped = std::fs::File::options()
                    .write(true)
                    .open(root.join(&key))
                    .and_then(|f| f.set_modified(at));
                if let Err(e) = stamped {
                    tracing::debug!(error = %e, key, "could not stamp a variant's last use");
                }
            }
        })
        .await;
    }

    fn lock_index(&self) -> MutexGuard<'_, LruIndex> {
        // The index holds no invariant a panic could break halfway: keep using it.
        self.index.lock().unwrap_or_else(|e| e.into_inner())
    }

    fn delete_files(&self, evicted: &[Evicted]) {
        remove_files(&self.root, evicted);
    }

    fn delete_files_in_background(&self, evicted: Vec<Evicted>) {
        let root = self.root.clone();
        tokio::task::spawn_blocking(move || remove_files(&root, &evicted));
    }
}

/// Remove an image's cache directory under a purge marker (see [`PURGING_DIR`]).
fn purge_dir(root: &Path, id: &str) -> std::io::Result<()> {
    let markers = root.join(PURGING_DIR);
    std::fs::create_dir_all(&markers)?;
    let marker = markers.join(id);
    std::fs::write(&marker, b"")?;
    let dir = root.join(&id[..2]).join(id);
    // A write racing the purge can make one pass fail (`ENOTEMPTY`); writers check the
    // tombstone after writing and undo, so a retry finds the directory settling.
    let mut attempt = 0;
    loop {
        match std::fs::remove_dir_all(&dir) {
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => break,
            Err(e) if attempt >= 3 => return Err(e),
            Err(_) => attempt += 1,
            Ok(()) => break,
        }
    }
    std::fs::remove_file(marker)
}

/// Finish the purges a crash interrupted (their markers are still there).
fn finish_purges(root: &Path) -> std::io::Result<()> {
    let Ok(entries) = std::fs::read_dir(root.join(PURGING_DIR)) else {
        return Ok(());
    };
    for entry in entries.flatten() {
        if let Some(id) = entry
            .file_name()
            .to_str()
            .filter(|id| super::is_valid_id(id))
        {
            tracing::info!(id, "finishing the purge of a deleted image's cache");
            purge_dir(root, id)?;
        } else {
            let _ = std::fs::remove_file(entry.path());
        }
    }
    Ok(())
}

/// The variant's path relative to the cache root: `ab/<id>/<file>`.
fn cache_key(id: &str, file: &str) -> String {
    format!("{}/{id}/{file}", &id[..2])
}

fn shared_key(key: &str) -> String {
    format!("{SHARED_PREFIX}/{key}")
}

fn write_atomically(target: &Path, bytes: &[u8]) -> std::io::Result<()> {
    let dir = target.parent().expect("cache keys have a directory");
    std::fs::create_dir_all(dir)?;
    let mut tmp = tempfile::Builder::new()
        .prefix(TEMP_PREFIX)
        .tempfile_in(dir)?;
    tmp.write_all(bytes)?;
    tmp.persist(target).map_err(|e| e.error)?;
    Ok(())
}

fn remove_files(root: &Path, evicted: &[Evicted]) {
    for gone in evicted {
        let path = root.join(&gone.key);
        if let Err(e) = std::fs::remove_file(&path) {
            if e.kind() != std::io::ErrorKind::NotFound {
                tracing::warn!(error = %e, path = %path.display(), "could not evict a variant");
            }
        }
    }
}

fn relative_key(root: &Path, path: &Path) -> Option<String> {
    let rel = path.strip_prefix(root).ok()?.to_str()?;
    Some(rel.replace(std::path::MAIN_SEPARATOR, "/"))
}

fn unix_secs(t: SystemTime) -> u64 {
    t.duration_since(UNIX_EPOCH).map_or(0, |d| d.as_secs())
}

fn now_secs() -> u64 {
    unix_secs(SystemTime::now())
}

fn walk_files(dir: &Path, visit: &mut dyn FnMut(&Path, &std::fs::Metadata)) -> std::io::Result<()> {
    for entry in std::fs::read_dir(dir)? {
        let entry = entry?;
        let meta = entry.metadata()?;
        if entry.file_name() == PURGING_DIR {
            continue;
        }
        if meta.is_dir() {
            walk_files(&entry.path(), visit)?;
        } else {
            visit(&entry.path(), &meta);
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    const UNBOUNDED: CacheLimits = CacheLimits {
        memory_bytes: 1 << 20,
        disk_bytes: u64::MAX,
        ttl: None,
    };

    #[tokio::test]
    async fn put_get_remove_and_temp_cleanup() {
        let dir = tempfile::tempdir().unwrap();
        let id = "ab".repeat(32);
        let cache = VariantCache::open(dir.path().to_path_buf(), UNBOUNDED, None).unwrap();
        assert!(cache.get(&id, "k.txt").await.unwrap().is_none());
        cache
            .put(&id, "k.txt", Bytes::from_static(b"12345"))
            .await
            .unwrap();
        assert_eq!(cache.get(&id, "k.txt").await.unwrap().unwrap(), "12345");
        assert_eq!(cache.total_bytes(), 5);

        // A crash mid-write leaves a temp file: reopening removes it and keeps the rest.
        let stray = dir.path().join(&id[..2]).join(&id).join(".tmpXYZ");
        std::fs::write(&stray, b"partial").unwrap();
        let reopened = VariantCache::open(dir.path().to_path_buf(), UNBOUNDED, None).unwrap();
        assert!(!stray.exists());
        assert_eq!(reopened.total_bytes(), 5);
        assert_eq!(reopened.get(&id, "k.txt").await.unwrap().unwrap(), "12345");

        reopened.remove_image(&id).await.unwrap();
        assert!(reopened.get(&id, "k.txt").await.unwrap().is_none());
        assert_eq!(reopened.total_bytes(), 0);
    }

    #[tokio::test]
    async fn disk_budget_evicts_the_least_recently_used_files() {
        let dir = tempfile::tempdir().unwrap();
        let limits = CacheLimits {
            memory_bytes: 0,
            disk_bytes: 250,
            ttl: None,
        };
        let cache = VariantCache::open(dir.path().to_path_buf(), limits, None).unwrap();
        let id = "cd".repeat(32);
        for name in ["a", "b"] {
            cache
                .put(&id, name, Bytes::from(vec![1; 100]))
                .await
                .unwrap();
        }
        assert!(cache.get(&id, "a").await.unwrap().is_some()); // `b` is now the oldest
        cache
            .put(&id, "c", Bytes::from(vec![1; 100]))
            .await
            .unwrap();
        assert_eq!(cache.total_bytes(), 200);
        assert_eq!(cache.evictions.size.load(Ordering::Relaxed), 1);
        // Deletion runs in the background; wait for the file to go.
        let b = dir.path().join(cache_key(&id, "b"));
        for _ in 0..100 {
            if !b.exists() {
                break;
            }
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
        assert!(!b.exists());
        assert!(cache.get(&id, "a").await.unwrap().is_some());
        assert!(cache.get(&id, "c").await.unwrap().is_some());
    }

    #[tokio::test]
    async fn reopening_over_budget_evicts_down_to_it() {
        let dir = tempfile::tempdir().unwrap();
        let id = "ef".repeat(32);
        let cache = VariantCache::open(dir.path().to_path_buf(), UNBOUNDED, None).unwrap();
        for name in ["a", "b", "c"] {
            cache
                .put(&id, name, Bytes::from(vec![1; 100]))
                .await
                .unwrap();
        }
        let limits = CacheLimits {
            disk_bytes: 150,
            ..UNBOUNDED
        };
        let smaller = VariantCache::open(dir.path().to_path_buf(), limits, None).unwrap();
        assert_eq!(smaller.total_bytes(), 100);
        let on_disk = std::fs::read_dir(dir.path().join(&id[..2]).join(&id))
            .unwrap()
            .count();
        assert_eq!(on_disk, 1);
    }

    #[tokio::test]
    async fn ttl_expires_unused_variants_from_memory_and_disk() {
        let dir = tempfile::tempdir().unwrap();
        let limits = CacheLimits {
            ttl: Some(Duration::from_secs(60)),
            ..UNBOUNDED
        };
        let cache = VariantCache::open(dir.path().to_path_buf(), limits, None).unwrap();
        let id = "01".repeat(32);
        cache
            .put(&id, "old", Bytes::from_static(b"o"))
            .await
            .unwrap();
        cache
            .put(&id, "new", Bytes::from_static(b"n"))
            .await
            .unwrap();
        // Age `old` by rewriting its last use into the past.
        {
            let mut index = cache.lock_index();
            let key = cache_key(&id, "old");
            index.insert(&key, 1, now_secs() - 120);
        }
        assert_eq!(cache.expire().await.unwrap(), 1);
        assert!(cache.get(&id, "old").await.unwrap().is_none());
        assert_eq!(cache.get(&id, "new").await.unwrap().unwrap(), "n");
        assert_eq!(cache.evictions.ttl.load(Ordering::Relaxed), 1);
    }
}
