//! [`Client`] and [`ClientBuilder`].

use std::path::Path;
use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use futures_util::stream::{self, BoxStream, StreamExt};
use reqwest::header::{CONTENT_TYPE, ETAG};
use reqwest::{Method, RequestBuilder, Response, StatusCode};
use serde::Deserialize;
use serde_json::json;
use sha2::{Digest, Sha256};

use crate::error::{retry_after, Error, ErrorBody};
use crate::ndjson::ndjson_lines;
use crate::types::file_name;
use crate::{
    signing, Ascii, BatchFile, BatchUpload, BatchVariant, ImageMeta, Page, ServerStatus, Transform,
    UploadOutcome, Uploaded, Variant,
};

/// Hash-first checks (`HEAD`) run at once by [`Client::batch_upload`].
const HEAD_CONCURRENCY: usize = 8;

/// Configures a [`Client`]; start with [`Client::builder`].
///
/// ```
/// use std::time::Duration;
/// use progimage_client::Client;
///
/// let client = Client::builder("http://127.0.0.1:8080")
///     .api_key("k1")
///     .signing_key("secret")
///     .timeout(Duration::from_secs(30))
///     .max_retries(5)
///     .build()?;
/// assert_eq!(client.base_url(), "http://127.0.0.1:8080");
/// # Ok::<(), progimage_client::Error>(())
/// ```
#[derive(Debug, Clone)]
#[must_use]
pub struct ClientBuilder {
    base_url: String,
    api_key: Option<String>,
    signing_key: Option<Vec<u8>>,
    timeout: Option<Duration>,
    connect_timeout: Duration,
    max_retries: u32,
    initial_backoff: Duration,
    max_backoff: Duration,
    hash_first: bool,
}

impl ClientBuilder {
    fn new(base_url: &str) -> ClientBuilder {
        ClientBuilder {
            base_url: base_url.to_owned(),
            api_key: None,
            signing_key: None,
            timeout: Some(Duration::from_secs(300)),
            connect_timeout: Duration::from_secs(10),
            max_retries: 3,
            initial_backoff: Duration::from_millis(250),
            max_backoff: Duration::from_secs(10),
            hash_first: true,
        }
    }

    /// Send `Authorization: Bearer <key>` (needed for uploads and deletes when the
    /// server has API keys).
    pub fn api_key(mut self, key: impl Into<String>) -> Self {
        self.api_key = Some(key.into());
        self
    }

    /// Sign every variant URL with this key (the server's `PROGIMAGE_SIGNING_KEY`).
    pub fn signing_key(mut self, key: impl AsRef<[u8]>) -> Self {
        self.signing_key = Some(key.as_ref().to_vec());
        self
    }

    /// Total time for one request, body included (default 300 s); `None` for no limit.
    pub fn timeout(mut self, timeout: impl Into<Option<Duration>>) -> Self {
        self.timeout = timeout.into();
        self
    }

    /// Time to establish a connection (default 10 s).
    pub fn connect_timeout(mut self, timeout: Duration) -> Self {
        self.connect_timeout = timeout;
        self
    }

    /// How many times a request answered `503` or `429` is tried again (default 3;
    /// 0 turns retries off).
    pub fn max_retries(mut self, retries: u32) -> Self {
        self.max_retries = retries;
        self
    }

    /// Backoff between retries: `initial` doubled on each retry, never more than `max`
    /// (defaults 250 ms and 10 s). A `Retry-After` from the server is used instead of
    /// the doubling, but also capped at `max`, so no retry waits without bound.
    pub fn backoff(mut self, initial: Duration, max: Duration) -> Self {
        self.initial_backoff = initial;
        self.max_backoff = max;
        self
    }

    /// Hash-first uploads (default on): hash the bytes locally, ask `HEAD /image/{id}`,
    /// and send the body only when the server does not have them yet.
    pub fn hash_first(mut self, on: bool) -> Self {
        self.hash_first = on;
        self
    }

    /// Build the client. Fails when the base URL is not an absolute http(s) URL.
    pub fn build(self) -> Result<Client, Error> {
        let parsed = reqwest::Url::parse(&self.base_url)
            .map_err(|_| Error::BaseUrl(self.base_url.clone()))?;
        if !matches!(parsed.scheme(), "http" | "https") || parsed.host().is_none() {
            return Err(Error::BaseUrl(self.base_url));
        }
        let mut http = reqwest::Client::builder()
            .user_agent(concat!("progimage-client/", env!("CARGO_PKG_VERSION")))
            .connect_timeout(self.connect_timeout);
        if let Some(t) = self.timeout {
            http = http.timeout(t);
        }
        Ok(Client {
            inner: Arc::new(Inner {
                http: http.build()?,
                base: self.base_url.trim_end_matches('/').to_owned(),
                api_key: self.api_key,
                signing_key: self.signing_key,
                max_retries: self.max_retries,
                initial_backoff: self.initial_backoff,
                max_backoff: self.max_backoff,
                hash_first: self.hash_first,
            }),
        })
    }
}

/// An async client of one progimage server. Cheap to clone (clones share connections).
///
/// ```no_run
/// use futures_util::StreamExt;
/// use progimage_client::{Client, Fit, Format, Transform};
///
/// # async fn demo() -> Result<(), progimage_client::Error> {
/// let client = Client::new("http://127.0.0.1:8080")?;
/// let up = client.upload_file("photo.jpg").await?;
/// println!("{:?}: {} ({}x{})", up.outcome, up.image.id, up.image.width, up.image.height);
///
/// let thumb = Transform::new().width(300).fit(Fit::Cover).format(Format::Webp);
/// let variant = client.get(&up.image.id, &thumb).await?;
/// std::fs::write("thumb.webp", &variant.bytes).unwrap();
///
/// let mut all = client.list(100);
/// while let Some(image) = all.next().await {
///     println!("{}", image?.id);
/// }
/// # Ok(()) }
/// ```
#[derive(Debug, Clone)]
pub struct Client {
    inner: Arc<Inner>,
}

#[derive(Debug)]
struct Inner {
    http: reqwest::Client,
    base: String,
    api_key: Option<String>,
    signing_key: Option<Vec<u8>>,
    max_retries: u32,
    initial_backoff: Duration,
    max_backoff: Duration,
    hash_first: bool,
}

#[derive(Deserialize)]
struct UploadLine {
    index: usize,
    status: u16,
    image: Option<ImageMeta>,
    error: Option<ErrorBody>,
}

#[derive(Deserialize)]
struct VariantLine {
    index: usize,
    status: u16,
    id: String,
    variant: String,
    url: Option<String>,
    error: Option<ErrorBody>,
}

/// A batch variant with the signature of the URL it stands for (`w_300.webp?sig=…`):
/// the signed path with its `/image/{id}/` (or `/image/{id}.`) prefix taken off.
fn signed_batch_variant(key: &[u8], id: &str, transform: &Transform) -> String {
    let signed = signing::signed(key, &transform.path(id));
    let id = id.to_ascii_lowercase();
    signed
        .strip_prefix(&format!("/image/{id}/"))
        .or_else(|| signed.strip_prefix(&format!("/image/{id}.")))
        .unwrap_or(&signed)
        .to_owned()
}

impl Client {
    /// A client with every default (3 retries, hash-first uploads, no keys).
    ///
    /// ```
    /// let client = progimage_client::Client::new("http://127.0.0.1:8080/")?;
    /// assert_eq!(client.base_url(), "http://127.0.0.1:8080");
    /// assert!(progimage_client::Client::new("not a url").is_err());
    /// # Ok::<(), progimage_client::Error>(())
    /// ```
    pub fn new(base_url: impl AsRef<str>) -> Result<Client, Error> {
        Client::builder(base_url).build()
    }

    /// A [`ClientBuilder`] for this server.
    pub fn builder(base_url: impl AsRef<str>) -> ClientBuilder {
        ClientBuilder::new(base_url.as_ref())
    }

    /// The server's base URL, without a trailing slash.
    pub fn base_url(&self) -> &str {
        &self.inner.base
    }

    /// The absolute URL of a variant of image `id`: the canonical spelling of
    /// [`Transform::path`], with `sig` when the client has a signing key. Paths are
    /// signed as the server sees them, relative to its root.
    ///
    /// ```
    /// use progimage_client::{Client, Fit, Format, Transform};
    /// let id = "ab".repeat(32);
    /// let t = Transform::new().width(300).fit(Fit::Cover).format(Format::Webp);
    ///
    /// let plain = Client::new("http://127.0.0.1:8080")?;
    /// assert_eq!(plain.url(&id, &t), format!("http://127.0.0.1:8080/image/{id}/w_300,fit_cover.webp"));
    ///
    /// let signing = Client::builder("http://127.0.0.1:8080").signing_key("secret").build()?;
    /// let sig = progimage_client::signing::sign(b"secret", &t.path(&id));
    /// assert_eq!(signing.url(&id, &t), format!("http://127.0.0.1:8080/image/{id}/w_300,fit_cover.webp?sig={sig}"));
    /// # Ok::<(), progimage_client::Error>(())
    /// ```
    pub fn url(&self, id: &str, transform: &Transform) -> String {
        let path = transform.path(id);
        // `/image/{id}/original` is never signed; every other variant is.
        let original = transform.is_identity() && transform.output_format().is_none();
        let path = match &self.inner.signing_key {
            Some(key) if !original => signing::signed(key, &path),
            _ => path,
        };
        format!("{}{path}", self.inner.base)
    }

    /// Whether the server stores image `id` (`HEAD /image/{id}`).
    pub async fn exists(&self, id: &str) -> Result<bool, Error> {
        check_id(id)?;
        let resp = self
            .send_raw(|| self.request(Method::HEAD, &format!("/image/{id}")))
            .await?;
        match resp.status() {
            StatusCode::OK => Ok(true),
            StatusCode::NOT_FOUND => Ok(false),
            _ => Err(Error::from_response(resp).await),
        }
    }

    /// The metadata of image `id`.
    pub async fn meta(&self, id: &str) -> Result<ImageMeta, Error> {
        check_id(id)?;
        let resp = self
            .send(|| self.request(Method::GET, &format!("/image/{id}")))
            .await?;
        Ok(resp.json().await?)
    }

    /// Upload a file from disk (its file name is kept). Hash-first: see
    /// [`Client::upload_bytes`].
    pub async fn upload_file(&self, path: impl AsRef<Path>) -> Result<Uploaded, Error> {
        let path = path.as_ref();
        let bytes = tokio::fs::read(path).await.map_err(|source| Error::Io {
            path: path.to_owned(),
            source,
        })?;
        self.upload_bytes(bytes, Some(&file_name(path))).await
    }

    /// Upload bytes, optionally with a file name.
    ///
    /// With hash-first on (the default) the SHA-256 is computed here first and
    /// `HEAD /image/{id}` asked: when the server has the image, the body is not sent
    /// and the outcome is [`UploadOutcome::Skipped`].
    pub async fn upload_bytes(
        &self,
        bytes: impl Into<Bytes>,
        filename: Option<&str>,
    ) -> Result<Uploaded, Error> {
        let bytes = bytes.into();
        if self.inner.hash_first && !bytes.is_empty() {
            if let Some(image) = self.find_existing(&bytes).await? {
                return Ok(Uploaded {
                    outcome: UploadOutcome::Skipped,
                    image,
                });
            }
        }
        let path = match filename {
            Some(name) => format!("/image?{}", query_pair("filename", name)),
            None => "/image".to_owned(),
        };
        let resp = self
            .send(|| {
                self.request(Method::POST, &path)
                    .header(CONTENT_TYPE, "application/octet-stream")
                    .body(bytes.clone())
            })
            .await?;
        read_upload(resp).await
    }

    /// Have the server fetch and store a remote image (`{"url": …}`). The server refuses
    /// private and loopback addresses unless it is configured to allow them.
    pub async fn upload_url(&self, url: &str) -> Result<Uploaded, Error> {
        let body = json!({ "url": url });
        let resp = self
            .send(|| self.request(Method::POST, "/image").json(&body))
            .await?;
        read_upload(resp).await
    }

    /// A variant of image `id` (see [`Client::url`] for the URL it fetches).
    pub async fn get(&self, id: &str, transform: &Transform) -> Result<Variant, Error> {
        check_id(id)?;
        let url = self.url(id, transform);
        let resp = self
            .send(|| self.with_auth(self.inner.http.get(&url)))
            .await?;
        let header = |name| {
            resp.headers()
                .get(name)
                .and_then(|v: &reqwest::header::HeaderValue| v.to_str().ok())
                .map(str::to_owned)
        };
        let content_type = header(CONTENT_TYPE);
        let etag = header(ETAG);
        Ok(Variant {
            bytes: resp.bytes().await?,
            content_type,
            etag,
        })
    }

    /// The original bytes of image `id`, byte for byte as uploaded.
    pub async fn original(&self, id: &str) -> Result<Bytes, Error> {
        Ok(self.get(id, &Transform::new()).await?.bytes)
    }

    /// ASCII art of stored image `id`.
    ///
    /// ```no_run
    /// # async fn demo(client: progimage_client::Client, id: &str) -> Result<(), progimage_client::Error> {
    /// use progimage_client::Ascii;
    /// print!("{}", client.ascii(id, &Ascii::new(80)).await?);
    /// # Ok(()) }
    /// ```
    pub async fn ascii(&self, id: &str, art: &Ascii) -> Result<String, Error> {
        let bytes = self.get(id, &art.transform()).await?.bytes;
        Ok(String::from_utf8_lossy(&bytes).into_owned())
    }

    /// ASCII art of an image that is not stored (`POST /transform…`; nothing is kept).
    pub async fn ascii_bytes(&self, bytes: impl Into<Bytes>, art: &Ascii) -> Result<String, Error> {
        let out = self.transform_bytes(bytes, &art.transform()).await?;
        Ok(String::from_utf8_lossy(&out).into_owned())
    }

    /// Transform an image without storing it (`POST /transform/{spec}.{ext}`). The
    /// transform needs a format.
    pub async fn transform_bytes(
        &self,
        bytes: impl Into<Bytes>,
        transform: &Transform,
    ) -> Result<Bytes, Error> {
        let bytes = bytes.into();
        let ext = transform
            .output_format()
            .map_or("auto", |f| f.ext())
            .to_owned();
        let spec = transform.spec();
        let mut path = if spec.is_empty() {
            format!("/transform.{ext}")
        } else {
            format!("/transform/{spec}.{ext}")
        };
        let query = transform.query();
        if !query.is_empty() {
            path = format!("{path}?{query}");
        }
        let resp = self
            .send(|| {
                self.request(Method::POST, &path)
                    .header(CONTENT_TYPE, "application/octet-stream")
                    .body(bytes.clone())
            })
            .await?;
        Ok(resp.bytes().await?)
    }

    /// Delete image `id` and its cached variants.
    pub async fn delete(&self, id: &str) -> Result<(), Error> {
        check_id(id)?;
        self.send(|| self.request(Method::DELETE, &format!("/image/{id}")))
            .await?;
        Ok(())
    }

    /// One page of stored images, in id order, after `cursor` (a [`Page::next`]).
    pub async fn list_page(&self, cursor: Option<&str>, limit: u32) -> Result<Page, Error> {
        let mut path = format!("/image?limit={limit}");
        if let Some(c) = cursor {
            path = format!("{path}&{}", query_pair("cursor", c));
        }
        let resp = self.send(|| self.request(Method::GET, &path)).await?;
        Ok(resp.json().await?)
    }

    /// Every stored image in id order, fetched `page_size` at a time as the stream is
    /// read. An error ends the stream after it is yielded.
    pub fn list(&self, page_size: u32) -> BoxStream<'static, Result<ImageMeta, Error>> {
        let client = self.clone();
        // The state is the cursor of the page to fetch; `None` once the last page is read.
        stream::unfold(Some(None::<String>), move |state| {
            let client = client.clone();
            async move {
                let cursor = state?;
                Some(match client.list_page(cursor.as_deref(), page_size).await {
                    Ok(page) => (
                        stream::iter(page.images.into_iter().map(Ok)).boxed(),
                        page.next.map(Some),
                    ),
                    Err(e) => (stream::iter([Err(e)]).boxed(), None),
                })
            }
        })
        .flatten()
        .boxed()
    }

    /// Upload many files, yielding each one's result as it finishes (not in order: use
    /// [`BatchUpload::index`]). With hash-first on, files the server already has are
    /// answered from `HEAD` and never sent; the rest go in one `POST /batch`. An `Err`
    /// item means the batch itself failed (no answer, `401`, …) and is the last item.
    ///
    /// ```no_run
    /// use futures_util::StreamExt;
    /// use progimage_client::{BatchFile, Client};
    ///
    /// # async fn demo(client: Client) -> Result<(), progimage_client::Error> {
    /// let files = vec![BatchFile::read("a.jpg").await?, BatchFile::new("b.png", vec![0u8; 3])];
    /// let mut results = client.batch_upload(files);
    /// while let Some(item) = results.next().await {
    ///     let item = item?;
    ///     match item.result {
    ///         Ok(up) => println!("{}: {}", item.name, up.image.id),
    ///         Err(e) => println!("{}: {:?} {}", item.name, e.code(), e.message()),
    ///     }
    /// }
    /// # Ok(()) }
    /// ```
    pub fn batch_upload(
        &self,
        files: Vec<BatchFile>,
    ) -> BoxStream<'static, Result<BatchUpload, Error>> {
        let client = self.clone();
        stream::once(async move { client.start_batch_upload(files).await })
            .flat_map(|started| match started {
                Ok(items) => items,
                Err(e) => stream::iter([Err(e)]).boxed(),
            })
            .boxed()
    }

    async fn start_batch_upload(
        self,
        files: Vec<BatchFile>,
    ) -> Result<BoxStream<'static, Result<BatchUpload, Error>>, Error> {
        let mut answered = Vec::new();
        let mut to_send: Vec<(usize, BatchFile)> = Vec::new();
        if self.inner.hash_first {
            let checks: Vec<_> = stream::iter(files.into_iter().enumerate())
                .map(|(index, file)| {
                    let client = self.clone();
                    async move {
                        let found = if file.bytes.is_empty() {
                            Ok(None)
                        } else {
                            client.find_existing(&file.bytes).await
                        };
                        (index, file, found)
                    }
                })
                .buffered(HEAD_CONCURRENCY)
                .collect()
                .await;
            for (index, file, found) in checks {
                match found {
                    Ok(None) => to_send.push((index, file)),
                    Ok(Some(image)) => answered.push(Ok(BatchUpload {
                        index,
                        name: file.name,
                        result: Ok(Uploaded {
                            outcome: UploadOutcome::Skipped,
                            image,
                        }),
                    })),
                    Err(e) => answered.push(Ok(BatchUpload {
                        index,
                        name: file.name,
                        result: Err(e),
                    })),
                }
            }
        } else {
            to_send = files.into_iter().enumerate().collect();
        }
        let answered = stream::iter(answered);
        if to_send.is_empty() {
            return Ok(answered.boxed());
        }
        let resp = self
            .send(|| {
                let mut form = reqwest::multipart::Form::new();
                for (_, file) in &to_send {
                    let body = reqwest::Body::from(file.bytes.clone());
                    let part =
                        reqwest::multipart::Part::stream_with_length(body, file.bytes.len() as u64)
                            .file_name(file.name.clone())
                            .mime_str("application/octet-stream")
                            .expect("a valid media type");
                    form = form.part("image", part);
                }
                self.request(Method::POST, "/batch").multipart(form)
            })
            .await?;
        let sent: Vec<(usize, String)> = to_send
            .into_iter()
            .map(|(index, file)| (index, file.name))
            .collect();
        let lines = ndjson_lines(resp).map(move |line| {
            let line: UploadLine = serde_json::from_value(line?)
                .map_err(|e| Error::Protocol(format!("batch line: {e}")))?;
            let (index, name) = sent.get(line.index).cloned().ok_or_else(|| {
                Error::Protocol(format!("batch index {} out of range", line.index))
            })?;
            let result = match (line.image, line.error) {
                (Some(image), _) => Ok(Uploaded {
                    outcome: if line.status == 201 {
                        UploadOutcome::Created
                    } else {
                        UploadOutcome::AlreadyStored
                    },
                    image,
                }),
                (None, error) => Err(line_error(line.status, error)),
            };
            Ok(BatchUpload {
                index,
                name,
                result,
            })
        });
        Ok(answered.chain(lines).boxed())
    }

    /// Render and cache every variant of every image (`POST /batch` with JSON), yielding
    /// each one's URL as it finishes. Items are numbered ids × variants, the variants
    /// varying fastest. With a signing key, each variant is sent with its own signature
    /// (one request per id), as a server without API keys requires. Every transform needs a format (`.auto` is refused by the
    /// server), and `charset` cannot be used here.
    ///
    /// ```no_run
    /// use futures_util::StreamExt;
    /// use progimage_client::{Client, Fit, Format, Transform};
    ///
    /// # async fn demo(client: Client, ids: Vec<String>) -> Result<(), progimage_client::Error> {
    /// let variants = [
    ///     Transform::new().width(300).format(Format::Webp),
    ///     Transform::new().width(64).height(64).fit(Fit::Cover).format(Format::Png),
    /// ];
    /// let mut items = client.batch_variants(ids, &variants);
    /// while let Some(item) = items.next().await {
    ///     let item = item?;
    ///     println!("{} {}: {:?}", item.id, item.variant, item.result.map_err(|e| e.message()));
    /// }
    /// # Ok(()) }
    /// ```
    pub fn batch_variants<I, S>(
        &self,
        ids: I,
        variants: &[Transform],
    ) -> BoxStream<'static, Result<BatchVariant, Error>>
    where
        I: IntoIterator<Item = S>,
        S: Into<String>,
    {
        let ids: Vec<String> = ids.into_iter().map(Into::into).collect();
        let Some(key) = self.inner.signing_key.clone() else {
            let variants: Vec<String> = variants.iter().map(Transform::batch_variant).collect();
            return self.batch_request(ids, variants, 0);
        };
        // With a signing key the server renders only what its holder signed (a server
        // without API keys mints no signatures): each item carries the signature of the
        // URL it stands for, so one request per id, numbered on as one batch.
        let per_id = variants.len();
        let requests: Vec<_> = ids
            .into_iter()
            .enumerate()
            .map(|(n, id)| {
                let signed: Vec<String> = variants
                    .iter()
                    .map(|t| signed_batch_variant(&key, &id, t))
                    .collect();
                self.batch_request(vec![id], signed, n * per_id)
            })
            .collect();
        stream::iter(requests).flatten().boxed()
    }

    /// One JSON `POST /batch`; its lines' indexes are shifted by `first`.
    fn batch_request(
        &self,
        ids: Vec<String>,
        variants: Vec<String>,
        first: usize,
    ) -> BoxStream<'static, Result<BatchVariant, Error>> {
        let client = self.clone();
        let body = json!({ "ids": ids, "variants": variants });
        stream::once(async move {
            let resp = client
                .send(|| client.request(Method::POST, "/batch").json(&body))
                .await;
            (client, resp)
        })
        .flat_map(move |(client, resp)| match resp {
            Ok(resp) => ndjson_lines(resp)
                .map(move |line| {
                    let line: VariantLine = serde_json::from_value(line?)
                        .map_err(|e| Error::Protocol(format!("batch line: {e}")))?;
                    let result = match line.url {
                        Some(url) => Ok(format!("{}{url}", client.inner.base)),
                        None => Err(line_error(line.status, line.error)),
                    };
                    Ok(BatchVariant {
                        index: first + line.index,
                        id: line.id,
                        variant: line.variant,
                        result,
                    })
                })
                .boxed(),
            Err(e) => stream::iter([Err(e)]).boxed(),
        })
        .boxed()
    }

    /// The server's counters (`GET /status`).
    pub async fn status(&self) -> Result<ServerStatus, Error> {
        let resp = self.send(|| self.request(Method::GET, "/status")).await?;
        Ok(resp.json().await?)
    }

    /// The record of the image with these bytes, when the server already has it.
    async fn find_existing(&self, bytes: &Bytes) -> Result<Option<ImageMeta>, Error> {
        let id = content_id(bytes.clone()).await;
        if self.exists(&id).await? {
            // Deleted between the two requests: upload after all.
            match self.meta(&id).await {
                Ok(meta) => Ok(Some(meta)),
                Err(e) if e.status() == Some(StatusCode::NOT_FOUND) => Ok(None),
                Err(e) => Err(e),
            }
        } else {
            Ok(None)
        }
    }

    fn request(&self, method: Method, path: &str) -> RequestBuilder {
        let url = format!("{}{path}", self.inner.base);
        self.with_auth(self.inner.http.request(method, url))
    }

    fn with_auth(&self, request: RequestBuilder) -> RequestBuilder {
        match &self.inner.api_key {
            Some(key) => request.bearer_auth(key),
            None => request,
        }
    }

    /// Send, trying again on `503`/`429` (bounded); the last answer whatever its status.
    async fn send_raw<F>(&self, make: F) -> Result<Response, Error>
    where
        F: Fn() -> RequestBuilder,
    {
        let mut attempt: u32 = 0;
        loop {
            let resp = make().send().await?;
            let status = resp.status();
            let busy = status == StatusCode::SERVICE_UNAVAILABLE
                || status == StatusCode::TOO_MANY_REQUESTS;
            if !busy || attempt >= self.inner.max_retries {
                return Ok(resp);
            }
            let wait = self.retry_wait(attempt, retry_after(&resp));
            drop(resp);
            tokio::time::sleep(wait).await;
            attempt += 1;
        }
    }

    /// [`Client::send_raw`], with any non-2xx answer turned into an [`Error`].
    async fn send<F>(&self, make: F) -> Result<Response, Error>
    where
        F: Fn() -> RequestBuilder,
    {
        let resp = self.send_raw(make).await?;
        if resp.status().is_success() {
            Ok(resp)
        } else {
            Err(Error::from_response(resp).await)
        }
    }

    fn retry_wait(&self, attempt: u32, server_says: Option<Duration>) -> Duration {
        let doubled = self
            .inner
            .initial_backoff
            .saturating_mul(2u32.saturating_pow(attempt));
        server_says.unwrap_or(doubled).min(self.inner.max_backoff)
    }
}

/// The id of these bytes: their lowercase hex SHA-256 (hashed off the async threads).
async fn content_id(bytes: Bytes) -> String {
    let hash = move || hex::encode(Sha256::digest(&bytes));
    tokio::task::spawn_blocking(hash)
        .await
        .expect("hashing does not panic")
}

/// The id the server will give these bytes.
///
/// ```
/// assert_eq!(
///     progimage_client::image_id(b""),
///     "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855"
/// );
/// ```
pub fn image_id(bytes: &[u8]) -> String {
    hex::encode(Sha256::digest(bytes))
}

async fn read_upload(resp: Response) -> Result<Uploaded, Error> {
    let outcome = if resp.status() == StatusCode::CREATED {
        UploadOutcome::Created
    } else {
        UploadOutcome::AlreadyStored
    };
    Ok(Uploaded {
        outcome,
        image: resp.json().await?,
    })
}

fn line_error(status: u16, error: Option<ErrorBody>) -> Error {
    let status = StatusCode::from_u16(status).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR);
    match error {
        Some(b) => Error::api(status, b.code, b.message, None, None),
        None => Error::Protocol(format!("batch line with status {status} and no result")),
    }
}

fn query_pair(name: &str, value: &str) -> String {
    form_urlencoded::Serializer::new(String::new())
        .append_pair(name, value)
        .finish()
}

/// Ids go into URL paths, so anything but 64 hex digits is refused before sending.
fn check_id(id: &str) -> Result<(), Error> {
    if id.len() == 64 && id.bytes().all(|b| b.is_ascii_hexdigit()) {
        Ok(())
    } else {
        Err(Error::InvalidId(id.to_owned()))
    }
}
