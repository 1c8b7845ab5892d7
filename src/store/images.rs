//! Originals and their metadata, keyed by content id. The metadata object is written
//! after the original, so its presence is the commit point of an upload: an image exists
//! exactly when its metadata does.

use std::sync::Arc;
use std::time::{Duration, Instant};

use bytes::Bytes;
use chrono::{DateTime, SecondsFormat, Utc};
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

use super::{BlobStore, StoreError};

/// What the API returns about a stored image.
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
pub struct ImageMeta {
    /// Lowercase hex SHA-256 of the original bytes.
    pub id: String,
    /// URL of the image in its own format.
    pub url: String,
    /// Sniffed format name, e.g. `jpeg`.
    pub format: String,
    pub content_type: String,
    /// Width as displayed (after EXIF orientation).
    pub width: u32,
    /// Height as displayed (after EXIF orientation).
    pub height: u32,
    /// Size of the original in bytes.
    pub bytes: u64,
    /// Whether the image has an alpha channel (decides PNG over JPEG for `.auto`).
    #[serde(default)]
    pub has_alpha: bool,
    /// File name given at the first upload, if any.
    pub filename: Option<String>,
    #[serde(serialize_with = "rfc3339_seconds")]
    pub created_at: DateTime<Utc>,
}

fn rfc3339_seconds<S: serde::Serializer>(t: &DateTime<Utc>, s: S) -> Result<S::Ok, S::Error> {
    s.serialize_str(&t.to_rfc3339_opts(SecondsFormat::Secs, true))
}

/// Stored images: `originals/ab/<id>` and `meta/ab/<id>.json` in the blob store
/// (sharded by the first two hex digits so no directory grows without bound).
#[derive(Clone)]
pub struct ImageRepo {
    blobs: Arc<dyn BlobStore>,
    /// When each id was last seen to exist, for [`ImageRepo::recently_present`].
    seen: Arc<quick_cache::sync::Cache<String, Instant>>,
}

const META_PREFIX: &str = "meta";

impl ImageRepo {
    pub fn new(blobs: Arc<dyn BlobStore>) -> Self {
        ImageRepo {
            blobs,
            seen: Arc::new(quick_cache::sync::Cache::new(100_000)),
        }
    }

    /// Whether the image exists, trusting a positive answer up to `max_age` old. Nodes
    /// sharing a bucket use this before serving a cached variant, so an image deleted
    /// through another node stops being served within `max_age` without a store round
    /// trip on every cache hit.
    pub async fn recently_present(&self, id: &str, max_age: Duration) -> Result<bool, StoreError> {
        if self.seen.get(id).is_some_and(|at| at.elapsed() < max_age) {
            return Ok(true);
        }
        let present = self.exists(id).await?;
        if present {
            self.seen.insert(id.to_owned(), Instant::now());
        } else {
            self.seen.remove(id);
        }
        Ok(present)
    }

    pub fn blobs(&self) -> &Arc<dyn BlobStore> {
        &self.blobs
    }

    fn original_key(id: &str) -> String {
        format!("originals/{}/{id}", &id[..2])
    }

    fn meta_key(id: &str) -> String {
        format!("{META_PREFIX}/{}/{id}.json", &id[..2])
    }

    pub async fn meta(&self, id: &str) -> Result<ImageMeta, StoreError> {
        let raw = self.blobs.get(&Self::meta_key(id)).await?;
        serde_json::from_slice(&raw)
            .map_err(|e| StoreError::Unavailable(format!("unreadable metadata for {id}: {e}")))
    }

    pub async fn exists(&self, id: &str) -> Result<bool, StoreError> {
        self.blobs.exists(&Self::meta_key(id)).await
    }

    pub async fn original(&self, id: &str) -> Result<Bytes, StoreError> {
        self.blobs.get(&Self::original_key(id)).await
    }

    /// Store a new image: the original first, then the metadata that makes it visible.
    ///
    /// A failed metadata write leaves the original in place: the write may only have
    /// timed out and still land, and metadata must never point at a deleted original.
    /// An original without metadata is invisible, and uploading the bytes again
    /// completes it.
    pub async fn insert(&self, meta: &ImageMeta, original: Bytes) -> Result<(), StoreError> {
        self.blobs
            .put(&Self::original_key(&meta.id), original)
            .await?;
        let json = serde_json::to_vec(meta).expect("metadata always serialises");
        self.blobs.put(&Self::meta_key(&meta.id), json.into()).await
    }

    /// An upload of bytes whose metadata exists: write the original again if it is
    /// missing (an earlier write that failed after its metadata landed).
    pub async fn repair_original(&self, id: &str, original: Bytes) -> Result<(), StoreError> {
        let key = Self::original_key(id);
        if self.blobs.exists(&key).await? {
            return Ok(());
        }
        tracing::warn!(
            id,
            "metadata without its original: writing the original again"
        );
        self.blobs.put(&key, original).await
    }

    /// Remove an image: metadata first, so a half-finished delete leaves it invisible.
    pub async fn remove(&self, id: &str) -> Result<(), StoreError> {
        self.seen.remove(id);
        self.blobs.delete(&Self::meta_key(id)).await?;
        self.blobs.delete(&Self::original_key(id)).await
    }

    /// Ids of every stored image, sorted.
    pub async fn ids(&self) -> Result<Vec<String>, StoreError> {
        let keys = self.blobs.list(META_PREFIX).await?;
        Ok(keys
            .iter()
            .filter_map(|k| k.rsplit('/').next()?.strip_suffix(".json"))
            .filter(|id| super::is_valid_id(id))
            .map(str::to_owned)
            .collect())
    }
}
