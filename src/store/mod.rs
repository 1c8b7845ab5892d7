//! Storage: originals and their metadata behind [`BlobStore`] (local disk or S3 through
//! `object_store`), rendered variants in a local disk cache, and single-flight rendering.

mod blob;
mod hot;
mod images;
mod intact;
mod lru_index;
mod s3;
mod singleflight;
mod variants;

pub use blob::{open_blob_store, BlobStore, ObjectBlobStore};
pub use hot::HotCache;
pub use images::{ImageMeta, ImageRepo};
pub use singleflight::SingleFlight;
pub use variants::{CacheLimits, VariantCache};

/// Storage failures, as the HTTP layer needs to tell them apart.
#[derive(Debug, Clone, thiserror::Error)]
pub enum StoreError {
    #[error("not found")]
    NotFound,
    #[error("storage is full")]
    Full,
    #[error("{0}")]
    Unavailable(String),
}

impl From<std::io::Error> for StoreError {
    fn from(e: std::io::Error) -> Self {
        if is_disk_full(&e) {
            StoreError::Full
        } else if e.kind() == std::io::ErrorKind::NotFound {
            StoreError::NotFound
        } else {
            StoreError::Unavailable(e.to_string())
        }
    }
}

fn is_disk_full(e: &std::io::Error) -> bool {
    const ENOSPC: i32 = 28;
    const EDQUOT: i32 = 122;
    e.kind() == std::io::ErrorKind::StorageFull
        || e.kind() == std::io::ErrorKind::QuotaExceeded
        || matches!(e.raw_os_error(), Some(ENOSPC | EDQUOT))
}

/// True for a 64-character lowercase hex SHA-256.
pub fn is_valid_id(id: &str) -> bool {
    id.len() == 64 && id.bytes().all(|b| matches!(b, b'0'..=b'9' | b'a'..=b'f'))
}
