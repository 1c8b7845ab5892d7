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
    /// Prove the store can be written and read right now (for `/ready`).
    async fn check(&self) -> Result<(), StoreError>;
}

/// [`BlobStore`] over any `object_store` backend, with a deadline on every call so a
/// stalled backend turns into `storage_unavailable` instead of a hung request.
pub struct ObjectBlobStore {
    inner: Arc<dyn ObjectStore>,
    timeout: Duration,
}

const READY_PROBE_KEY: &str = ".ready-probe";

impl ObjectBlobStore {
    pub fn new(inner: Arc<dyn ObjectStore>, timeout: Duration) -> Self {
        ObjectBlobStore { inner, timeout }
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

    async fn check(&self) -> Result<(), StoreError> {
        let probe = Bytes::from_static(b"ok");
        self.put(READY_PROBE_KEY, probe.clone()).await?;
        if self.get(READY_PROBE_KEY).await? != probe {
            return Err(StoreError::Unavailable("read back different bytes".into()));
        }
        Ok(())
    }
}

/// Open the store named by `url` (`file:///path`), or local disk under `data_dir/store`.
pub fn open_blob_store(
    url: Option<&str>,
    data_dir: &FsPath,
    timeout: Duration,
) -> anyhow::Result<Arc<dyn BlobStore>> {
    let root = match url {
        None => data_dir.join("store"),
        Some(url) => match url.strip_prefix("file://") {
            Some(path) => path.into(),
            None => anyhow::bail!(
                "unsupported store URL {url:?}: this build stores on local disk (file://…)"
            ),
        },
    };
    std::fs::create_dir_all(&root)?;
    let local = LocalFileSystem::new_with_prefix(&root)?.with_automatic_cleanup(true);
    Ok(Arc::new(ObjectBlobStore::new(Arc::new(local), timeout)))
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
