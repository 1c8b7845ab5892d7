//! The variant cache: rendered outputs as files on local disk, one directory per image,
//! so a cache hit is one file read and deleting an image drops its variants with one
//! directory removal. Writes go to a temp file in the same directory and are renamed
//! into place, so a reader (or a crash) never sees a partial variant.

use std::io::Write;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};

use bytes::Bytes;

use super::StoreError;

/// Prefix of in-progress writes; anything with it is garbage after a restart.
const TEMP_PREFIX: &str = ".tmp";

pub struct VariantCache {
    root: PathBuf,
    bytes: AtomicU64,
}

impl VariantCache {
    /// Open (creating) the cache under `root`, removing temp files a crash left behind
    /// and counting what is there. Blocking: call at start-up.
    pub fn open(root: PathBuf) -> std::io::Result<Self> {
        std::fs::create_dir_all(&root)?;
        let mut total = 0;
        walk_files(&root, &mut |path, len| {
            let is_temp = path
                .file_name()
                .and_then(|n| n.to_str())
                .is_some_and(|n| n.starts_with(TEMP_PREFIX));
            if is_temp {
                let _ = std::fs::remove_file(path);
            } else {
                total += len;
            }
        })?;
        Ok(VariantCache {
            root,
            bytes: AtomicU64::new(total),
        })
    }

    fn image_dir(&self, id: &str) -> PathBuf {
        self.root.join(&id[..2]).join(id)
    }

    fn file(&self, id: &str, key: &str) -> PathBuf {
        self.image_dir(id).join(key)
    }

    /// Total bytes of cached variants.
    pub fn total_bytes(&self) -> u64 {
        self.bytes.load(Ordering::Relaxed)
    }

    /// The cached bytes for `key` (a file name such as `3f2a….webp`), if present.
    pub async fn get(&self, id: &str, key: &str) -> Result<Option<Bytes>, StoreError> {
        match tokio::fs::read(self.file(id, key)).await {
            Ok(bytes) => Ok(Some(Bytes::from(bytes))),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(None),
            Err(e) => Err(e.into()),
        }
    }

    /// Store `bytes` under `key` atomically.
    pub async fn put(&self, id: &str, key: &str, bytes: Bytes) -> Result<(), StoreError> {
        let dir = self.image_dir(id);
        let target = self.file(id, key);
        let len = bytes.len() as u64;
        let replaced = tokio::task::spawn_blocking(move || -> std::io::Result<Option<u64>> {
            std::fs::create_dir_all(&dir)?;
            let previous = std::fs::metadata(&target).ok().map(|m| m.len());
            let mut tmp = tempfile::Builder::new()
                .prefix(TEMP_PREFIX)
                .tempfile_in(&dir)?;
            tmp.write_all(&bytes)?;
            tmp.persist(&target).map_err(|e| e.error)?;
            Ok(previous)
        })
        .await
        .map_err(|e| StoreError::Unavailable(e.to_string()))??;
        self.bytes.fetch_add(len, Ordering::Relaxed);
        if let Some(old) = replaced {
            self.bytes.fetch_sub(old, Ordering::Relaxed);
        }
        Ok(())
    }

    /// Drop every cached variant of an image.
    pub async fn remove_image(&self, id: &str) -> Result<(), StoreError> {
        let dir = self.image_dir(id);
        let freed = tokio::task::spawn_blocking(move || -> std::io::Result<u64> {
            let mut freed = 0;
            match walk_files(&dir, &mut |_, len| freed += len) {
                Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(0),
                other => other?,
            }
            std::fs::remove_dir_all(&dir)?;
            Ok(freed)
        })
        .await
        .map_err(|e| StoreError::Unavailable(e.to_string()))??;
        self.bytes
            .fetch_sub(freed.min(self.total_bytes()), Ordering::Relaxed);
        Ok(())
    }
}

fn walk_files(dir: &Path, visit: &mut dyn FnMut(&Path, u64)) -> std::io::Result<()> {
    for entry in std::fs::read_dir(dir)? {
        let entry = entry?;
        let meta = entry.metadata()?;
        if meta.is_dir() {
            walk_files(&entry.path(), visit)?;
        } else {
            visit(&entry.path(), meta.len());
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn put_get_remove_and_temp_cleanup() {
        let dir = tempfile::tempdir().unwrap();
        let id = "ab".repeat(32);
        let cache = VariantCache::open(dir.path().to_path_buf()).unwrap();
        assert!(cache.get(&id, "k.png").await.unwrap().is_none());
        cache
            .put(&id, "k.png", Bytes::from_static(b"12345"))
            .await
            .unwrap();
        assert_eq!(cache.get(&id, "k.png").await.unwrap().unwrap(), "12345");
        assert_eq!(cache.total_bytes(), 5);

        // A crash mid-write leaves a temp file: reopening removes it and keeps the rest.
        let stray = cache.image_dir(&id).join(".tmpXYZ");
        std::fs::write(&stray, b"partial").unwrap();
        let reopened = VariantCache::open(dir.path().to_path_buf()).unwrap();
        assert!(!stray.exists());
        assert_eq!(reopened.total_bytes(), 5);

        reopened.remove_image(&id).await.unwrap();
        assert!(reopened.get(&id, "k.png").await.unwrap().is_none());
        assert_eq!(reopened.total_bytes(), 0);
    }
}
