//! What the server answers, as types.

use bytes::Bytes;
use serde::{Deserialize, Serialize};

use crate::Error;

/// An image's metadata record, as `GET /image/{id}` and uploads answer it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ImageMeta {
    /// Lowercase hex SHA-256 of the original bytes.
    pub id: String,
    /// Path of the image in its own format, e.g. `/image/{id}.jpg`.
    pub url: String,
    /// The sniffed format name, e.g. `jpeg`.
    pub format: String,
    /// The original's media type, e.g. `image/jpeg`.
    pub content_type: String,
    /// Width as displayed (after EXIF orientation).
    pub width: u32,
    /// Height as displayed (after EXIF orientation).
    pub height: u32,
    /// Size of the original in bytes.
    pub bytes: u64,
    /// Whether the decoder reports an alpha channel.
    #[serde(default)]
    pub has_alpha: bool,
    /// The file name given at the first upload, if any.
    #[serde(default)]
    pub filename: Option<String>,
    /// When it was first stored (RFC 3339, UTC).
    pub created_at: String,
}

/// What happened to an upload.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum UploadOutcome {
    /// New bytes: the server stored them (`201 Created`).
    Created,
    /// The bytes were sent and the server already had them (`200 OK`).
    AlreadyStored,
    /// Hash-first: the server already had this id, so the body was never sent.
    Skipped,
}

/// The result of a successful upload.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Uploaded {
    /// What happened.
    pub outcome: UploadOutcome,
    /// The stored image's record.
    pub image: ImageMeta,
}

/// A rendered variant (or original) and what the server said about it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Variant {
    /// The image bytes.
    pub bytes: Bytes,
    /// `Content-Type`, e.g. `image/webp`.
    pub content_type: Option<String>,
    /// The strong `ETag`, quotes included.
    pub etag: Option<String>,
}

/// One page of `GET /image`.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
pub struct Page {
    /// The images, in id order.
    pub images: Vec<ImageMeta>,
    /// The cursor of the next page; `None` on the last one.
    pub next: Option<String>,
}

/// A file for [`crate::Client::batch_upload`]: a name and its bytes.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BatchFile {
    /// The file name sent with the part (kept by the server as `filename`).
    pub name: String,
    /// The bytes.
    pub bytes: Bytes,
}

impl BatchFile {
    /// A file from bytes in memory.
    pub fn new(name: impl Into<String>, bytes: impl Into<Bytes>) -> BatchFile {
        BatchFile {
            name: name.into(),
            bytes: bytes.into(),
        }
    }

    /// Read a file from disk; the name is its file name.
    pub async fn read(path: impl AsRef<std::path::Path>) -> Result<BatchFile, Error> {
        let path = path.as_ref();
        let bytes = tokio::fs::read(path).await.map_err(|source| Error::Io {
            path: path.to_owned(),
            source,
        })?;
        Ok(BatchFile::new(file_name(path), bytes))
    }
}

pub(crate) fn file_name(path: &std::path::Path) -> String {
    path.file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_default()
}

/// One item of [`crate::Client::batch_upload`], in the order items finish.
#[derive(Debug)]
pub struct BatchUpload {
    /// The item's position in the list given to `batch_upload`.
    pub index: usize,
    /// The item's name.
    pub name: String,
    /// Its outcome: an error here never fails the other items.
    pub result: Result<Uploaded, Error>,
}

/// One item of [`crate::Client::batch_variants`], in the order items finish.
#[derive(Debug)]
pub struct BatchVariant {
    /// The item's position: ids × variants, the variants varying fastest.
    pub index: usize,
    /// The image id.
    pub id: String,
    /// The variant as sent (`{spec}.{ext}` or `{ext}`).
    pub variant: String,
    /// The absolute URL of the rendered and cached variant (signed when the server has
    /// a signing key), or why it could not be rendered.
    pub result: Result<String, Error>,
}

/// `GET /status`: the server's counters.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ServerStatus {
    /// Images stored (new bytes) since the server started.
    pub uploaded_count: u64,
    /// Error answers since the server started.
    pub errors: u64,
    /// Images stored now.
    pub images: u64,
    /// Bytes in the variant cache.
    pub cache_bytes: u64,
    /// Seconds since the server started.
    pub uptime_s: u64,
    /// The server's version.
    pub version: String,
}
