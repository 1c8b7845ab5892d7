//! An async Rust client for progimage, the image service: upload
//! (hash-first), read metadata, fetch variants through a typed transform builder that
//! writes the server's canonical (and, with a key, signed) URLs, ASCII art, batches as
//! streams, paginated listing and deletion.
//!
//! ```no_run
//! use progimage_client::{Client, Fit, Format, Transform};
//!
//! # async fn demo() -> Result<(), progimage_client::Error> {
//! let client = Client::builder("http://127.0.0.1:8080")
//!     .api_key("k1")            // for uploads and deletes, when the server has keys
//!     .signing_key("secret")    // when the server has PROGIMAGE_SIGNING_KEY
//!     .build()?;
//! let up = client.upload_file("photo.jpg").await?;       // sent only if not stored yet
//! let t = Transform::new().width(300).fit(Fit::Cover).format(Format::Webp);
//! println!("{}", client.url(&up.image.id, &t));          // …/w_300,fit_cover.webp?sig=…
//! let webp = client.get(&up.image.id, &t).await?.bytes;
//! # let _ = webp; Ok(()) }
//! ```
//!
//! Every request answered `503` or `429` is tried again a bounded number of times,
//! waiting as `Retry-After` says (see [`ClientBuilder::max_retries`] and
//! [`ClientBuilder::backoff`]). Every failure is one [`Error`], which carries the
//! server's stable `code`, the HTTP status and the message.
//!
//! The crate also builds the `progimage-cli` command line (see the README).

#![warn(missing_docs)]

mod client;
mod error;
mod ndjson;
pub mod signing;
mod transform;
mod types;

pub use client::{image_id, Client, ClientBuilder};
pub use error::Error;
pub use transform::{Ascii, Fit, Flip, Format, Gravity, Mask, ParseError, Rotation, Transform};
pub use types::{
    BatchFile, BatchUpload, BatchVariant, ImageMeta, Page, ServerStatus, UploadOutcome, Uploaded,
    Variant,
};
