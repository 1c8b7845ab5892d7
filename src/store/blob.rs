//! The project's storage trait and its `object_store` implementation. Everything durable
//! (originals, metadata) goes through [`BlobStore`], so moving from local disk to S3 is a
//! URL in the configuration, not a code change.

use std::path::Path as FsPath;
use std::sync::Arc;
use std::time::Duration;

use async_trait::async_trait;
use bytes::Bytes;
use futures_util::TryStreamExt;
use object_store::local::LocalFileSystem;
use object_store::path::Path;
use object_store::{ObjectStore, PutPayload};

use super::StoreError;

/// A flat key → bytes store. Keys are `/`-separated relative paths.
#[async_trait]
pub trait BlobStore: Send + Sync + 'static {
    /// Write atomically: readers see the old state or all of `bytes`, never a part.
    async fn put(&self, key: &str, bytes: Bytes) -> Result<(), StoreError>;
    async fn get(&self, key: &str) -> Result<Bytes, StoreError>;
    async fn exists(&self, key: &str) -> Result<bool, StoreError>;
    /// Deleting a missing key is not an error.
    async fn delete(&self, key: &str) -> Result<(), StoreError>;
    /// Every key under `prefix`, sorted.
    async fn list(&self, prefix: &str) -> Result<Vec<String>, StoreError>;
    /// Every key under `prefix` with when it was last written (unix seconds).
    async fn list_dated(&self, prefix: &str) -> Result<Vec<(String, u64)>, StoreError>;
    /// Prove the store can be written and read right now (for `/ready`).
    async fn check(&self) -> Result<(), StoreError>;
}

/// [`BlobStore`] over any `object_store` backend, with a deadline on every call so a
/// stalled backend turns into `storage_unavailable` instead of a hung request.
pub struct ObjectBlobStore {
    inner: Arc<dyn ObjectStore>,
    timeout: Duration,
    /// Local disk only: `put` writes under this root itself, durably ([`write_durably`]).
    local_root: Option<std::path::PathBuf>,
}

const READY_PROBE_KEY: &str = ".ready-probe";

impl ObjectBlobStore {
    pub fn new(inner: Arc<dyn ObjectStore>, timeout: Duration) -> Self {
        ObjectBlobStore {
            inner,
            timeout,
            local_root: None,
        }
    }

    /// Write puts as files under `root` with fsync (the same layout `LocalFileSystem`
    /// reads), so an acknowledged upload survives a crash or power loss.
    pub fn durable_local(mut self, root: std::path::PathBuf) -> Self {
        self.local_root = Some(root);
        self
    }

    async fn timed<T>(
        &self,
        fut: impl std::future::Future<Output = object_store::Result<T>>,
    ) -> Result<T, StoreError> {
        match tokio::time::timeout(self.timeout, fut).await {
            Ok(result) => result.map_err(from_object_error),
            Err(_) => Err(StoreError::Unavailable(format!(
                "no answer within {:?}",
                self.timeout
            ))),
        }
    }
}

#[async_trait]
impl BlobStore for ObjectBlobStore {
    async fn put(&self, key: &str, bytes: Bytes) -> Result<(), StoreError> {
        let path = Path::from(key);
        if let Some(root) = &self.local_root {
            let target = root.join(path.as_ref());
            let write = tokio::task::spawn_blocking(move || write_durably(&target, &bytes));
            return match tokio::time::timeout(self.timeout, write).await {
                Ok(Ok(result)) => result.map_err(StoreError::from),
                Ok(Err(e)) => Err(StoreError::Unavailable(e.to_string())),
                Err(_) => Err(StoreError::Unavailable(format!(
                    "no answer within {:?}",
                    self.timeout
                ))),
            };
        }
        self.timed(self.inner.put(&path, PutPayload::from(bytes)))
            .await
            .map(|_| ())
    }

    async fn get(&self, key: &str) -> Result<Bytes, StoreError> {
        let path = Path::from(key);
        self.timed(async { self.inner.get(&path).await?.bytes().await })
            .await
    }

    async fn exists(&self, key: &str) -> Result<bool, StoreError> {
        let path = Path::from(key);
        match self.timed(self.inner.head(&path)).await {
            Ok(_) => Ok(true),
            Err(StoreError::NotFound) => Ok(false),
            Err(e) => Err(e),
        }
    }

    async fn delete(&self, key: &str) -> Result<(), StoreError> {
        let path = Path::from(key);
        match self.timed(self.inner.delete(&path)).await {
            Ok(()) | Err(StoreError::NotFound) => Ok(()),
            Err(e) => Err(e),
        }
    }

    async fn list(&self, prefix: &str) -> Result<Vec<String>, StoreError> {
        let prefix = Path::from(prefix);
        let mut keys: Vec<String> = self
            .timed(
                self.inner
                    .list(Some(&prefix))
                    .map_ok(|meta| meta.location.to_string())
                    .try_collect(),
            )
            .await?;
        keys.sort_unstable();
        Ok(keys)
    }

    async fn list_dated(&self, prefix: &str) -> Result<Vec<(String, u64)>, StoreError> {
        let prefix = Path::from(prefix);
        self.timed(
            self.inner
                .list(Some(&prefix))
                .map_ok(|meta| {
                    let written = meta.last_modified.timestamp().max(0) as u64;
                    (meta.location.to_string(), written)
                })
                .try_collect(),
        )
        .await
    }

    async fn check(&self) -> Result<(), StoreError> {
        let probe = Bytes::from_static(b"ok");
        self.put(READY_PROBE_KEY, probe.clone()).await?;
        if self.get(READY_PROBE_KEY).await? != probe {
            return Err(StoreError::Unavailable("read back different bytes".into()));
        }
        Ok(())
    }
}

/// Open the store named by `url`: `s3://bucket/prefix`, `file:///path`, or by default
/// local disk under `data_dir/store`. `options` override `AWS_*` settings for S3.
pub fn open_blob_store(
    url: Option<&str>,
    options: &[(String, String)],
    data_dir: &FsPath,
    timeout: Duration,
) -> anyhow::Result<Arc<dyn BlobStore>> {
    if let Some(url) = url.filter(|u| u.starts_with("s3://")) {
        let bucket = super::s3::open_s3(url, options, timeout)?;
        return Ok(Arc::new(ObjectBlobStore::new(bucket, timeout)));
    }
    let root = match url {
        None => data_dir.join("store"),
        Some(url) => match url.strip_prefix("file://") {
            Some(path) => path.into(),
            None => anyhow::bail!(
                "unsupported store URL {url:?}: use s3://bucket/prefix or file:///path"
            ),
        },
    };
    std::fs::create_dir_all(&root)?;
    remove_staging_files(&root)?;
    let local = LocalFileSystem::new_with_prefix(&root)?.with_automatic_cleanup(true);
    Ok(Arc::new(
        ObjectBlobStore::new(Arc::new(local), timeout).durable_local(root),
    ))
}

/// Write `bytes` to `target` so that, once this returns, the file survives a crash or
/// power loss whole, and before it returns readers see the old state or nothing: a
/// staging file `<target>#<digits>` (which `LocalFileSystem` never lists) is written and
/// fsynced, renamed over `target`, then the directory is fsynced (and any directory
/// created for it, so its entry is durable too).
fn write_durably(target: &FsPath, bytes: &[u8]) -> std::io::Result<()> {
    use std::io::Write;
    let dir = target
        .parent()
        .ok_or_else(|| std::io::Error::other("a key needs a parent directory"))?;
    let mut created = Vec::new();
    let mut missing = Some(dir);
    while let Some(d) = missing.filter(|d| !d.exists()) {
        created.push(d);
        missing = d.parent();
    }
    std::fs::create_dir_all(dir)?;
    let mut staging = target.as_os_str().to_owned();
    staging.push(format!("#{}", uuid::Uuid::new_v4().as_u128()));
    let staging = std::path::PathBuf::from(staging);
    let written = (|| {
        let mut file = std::fs::File::options()
            .write(true)
            .create_new(true)
            .open(&staging)?;
        file.write_all(bytes)?;
        file.sync_all()?;
        std::fs::rename(&staging, target)
    })();
    if let Err(e) = written {
        let _ = std::fs::remove_file(&staging);
        return Err(e);
    }
    std::fs::File::open(dir)?.sync_all()?;
    for d in created {
        if let Some(parent) = d.parent() {
            std::fs::File::open(parent)?.sync_all()?;
        }
    }
    Ok(())
}

/// Remove staging files (`name#digits`) a crash left behind: no reader ever sees them,
/// but they hold disk space. Runs once at start-up, before anything writes.
fn remove_staging_files(root: &FsPath) -> std::io::Result<()> {
    let mut dirs = vec![root.to_path_buf()];
    while let Some(dir) = dirs.pop() {
        for entry in std::fs::read_dir(&dir)? {
            let entry = entry?;
            let name = entry.file_name();
            if entry.file_type()?.is_dir() {
                dirs.push(entry.path());
            } else if name.to_string_lossy().contains('#') {
                tracing::info!(file = %entry.path().display(), "removing a staging file left by a crash");
                std::fs::remove_file(entry.path())?;
            }
        }
    }
    Ok(())
}

fn from_object_error(e: object_store::Error) -> StoreError {
    if let object_store::Error::NotFound { .. } = e {
        return StoreError::NotFound;
    }
    // The backend wraps I/O errors; a full disk must surface as 507, not 503.
    let mut source: Option<&(dyn std::error::Error + 'static)> = Some(&e);
    while let Some(err) = source {
        if let Some(io) = err.downcast_ref::<std::io::Error>() {
            if super::is_disk_full(io) {
                return StoreError::Full;
            }
        }
        source = err.source();
    }
    StoreError::Unavailable(e.to_string())
}
