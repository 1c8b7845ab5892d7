//! `GET /` for browsers: one self-contained playground page (`playground.html`, inline
//! CSS and JS, nothing loaded from elsewhere). API clients get what `GET /` always gave
//! them: `405 method_not_allowed` with `Allow: POST`, as only the legacy ASCII `POST /`
//! lives there.

use std::sync::LazyLock;

use axum::http::{header, HeaderMap, HeaderValue};
use axum::response::{IntoResponse, Response};
use base64::Engine;
use bytes::Bytes;
use sha2::{Digest, Sha256};

use super::conditional::immutable_bytes;
use crate::error::{Error, ErrorBody};

const PAGE: &str = include_str!("playground.html");

/// The page changes only with the binary, but a browser should pick up a new version
/// at once: revalidate every time, answered by a 304 while the ETag matches.
const CACHE_CONTROL: &str = "no-cache";

struct Served {
    etag: String,
    csp: String,
}

/// The ETag and the Content-Security-Policy, both derived from the page once. Inline
/// code is allowed by its hash, so the page cannot run or style anything it did not ship.
static SERVED: LazyLock<Served> = LazyLock::new(|| {
    let digest = Sha256::digest(PAGE.as_bytes());
    Served {
        etag: format!("\"playground-{}\"", hex::encode(&digest[..16])),
        csp: content_security_policy(PAGE),
    }
});

/// `GET /`: the playground when the client prefers HTML, else the API answer.
#[utoipa::path(get, path = "/", tag = "playground",
    responses(
        (status = 200, description = "the browser playground, for `Accept: text/html`", content_type = "text/html"),
        (status = 304, description = "If-None-Match matched"),
        (status = 405, description = "method_not_allowed for every other `Accept` (only `POST /` exists for API clients)", body = ErrorBody),
    ))]
pub async fn root(headers: HeaderMap) -> Response {
    let mut response = if prefers_html(&headers) {
        page(&headers)
    } else {
        Error::MethodNotAllowed(Some("POST")).into_response()
    };
    response
        .headers_mut()
        .append(header::VARY, HeaderValue::from_static("accept"));
    response
}

fn page(request_headers: &HeaderMap) -> Response {
    let served = &*SERVED;
    // The variants' ETag and 304 handling; only the caching policy differs.
    let mut response = immutable_bytes(
        request_headers,
        &served.etag,
        "text/html; charset=utf-8",
        Bytes::from_static(PAGE.as_bytes()),
    );
    let headers = response.headers_mut();
    headers.insert(
        header::CACHE_CONTROL,
        HeaderValue::from_static(CACHE_CONTROL),
    );
    if let Ok(csp) = HeaderValue::from_str(&served.csp) {
        headers.insert(header::CONTENT_SECURITY_POLICY, csp);
    }
    headers.insert(
        header::REFERRER_POLICY,
        HeaderValue::from_static("no-referrer"),
    );
    response
}

/// Only self-hosted loads: images and variants from this server (plus `blob:` for the
/// editor's fetched results), the page's own inline script and style by hash, no
/// plugins, no framing by other sites.
fn content_security_policy(page: &str) -> String {
    let script = inline_hash(page, "script");
    let style = inline_hash(page, "style");
    format!(
        "default-src 'self'; script-src {script}; style-src {style}; img-src 'self' blob: data:; \
         connect-src 'self'; frame-src 'self'; object-src 'none'; base-uri 'none'; \
         form-action 'self'; frame-ancestors 'none'"
    )
}

/// `'sha256-…'` of the text inside the page's one `<tag>…</tag>`, or `'none'`.
fn inline_hash(page: &str, tag: &str) -> String {
    let open = format!("<{tag}>");
    let close = format!("</{tag}>");
    let Some(start) = page.find(&open).map(|i| i + open.len()) else {
        return "'none'".into();
    };
    let Some(len) = page[start..].find(&close) else {
        return "'none'".into();
    };
    let digest = Sha256::digest(&page.as_bytes()[start..start + len]);
    format!(
        "'sha256-{}'",
        base64::engine::general_purpose::STANDARD.encode(digest)
    )
}

/// A browser lists `text/html` (or XHTML) explicitly; API clients send `*/*`,
/// `application/json` or nothing. HTML wins when it is acceptable and rated at least as
/// high as JSON.
fn prefers_html(headers: &HeaderMap) -> bool {
    let mut html = 0.0f32;
    let mut json = 0.0f32;
    let items = headers
        .get_all(header::ACCEPT)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(','));
    for item in items {
        let mut parts = item.split(';').map(str::trim);
        let media = parts.next().unwrap_or("").to_ascii_lowercase();
        let q = parts
            .filter_map(|p| p.strip_prefix("q=").or_else(|| p.strip_prefix("Q=")))
            .find_map(|q| q.trim().parse::<f32>().ok())
            .unwrap_or(1.0);
        match media.as_str() {
            "text/html" | "application/xhtml+xml" => html = html.max(q),
            "application/json" => json = json.max(q),
            _ => {}
        }
    }
    html > 0.0 && html >= json
}

#[cfg(test)]
mod tests {
    use super::*;

    fn accept(value: &str) -> HeaderMap {
        let mut h = HeaderMap::new();
        h.insert(header::ACCEPT, HeaderValue::from_str(value).unwrap());
        h
    }

    #[test]
    fn browsers_prefer_html_and_api_clients_do_not() {
        let chrome = "text/html,application/xhtml+xml,application/xml;q=0.9,image/avif,\
                      image/webp,image/apng,*/*;q=0.8";
        assert!(prefers_html(&accept(chrome)));
        assert!(prefers_html(&accept("text/html")));
        assert!(!prefers_html(&HeaderMap::new()));
        assert!(!prefers_html(&accept("*/*")));
        assert!(!prefers_html(&accept("application/json")));
        assert!(!prefers_html(&accept("application/json, text/html;q=0.5")));
        assert!(!prefers_html(&accept("text/html;q=0")));
    }

    #[test]
    fn the_policy_pins_the_one_script_and_style() {
        assert_eq!(PAGE.matches("<script>").count(), 1);
        assert_eq!(PAGE.matches("<style>").count(), 1);
        let csp = content_security_policy(PAGE);
        assert_eq!(csp.matches("'sha256-").count(), 2, "{csp}");
        assert!(csp.starts_with("default-src 'self';"));
    }
}
