//! Responses for immutable, content-addressed bytes: strong ETag, long-lived caching and
//! `If-None-Match` → 304.

use axum::body::Body;
use axum::http::{header, HeaderMap, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use bytes::Bytes;

use crate::error::Error;

pub const IMMUTABLE: &str = "public, max-age=31536000, immutable";

/// For stored SVG and HTML: inline styles and `data:` images only, sandboxed.
pub const ACTIVE_CONTENT_POLICY: &str =
    "default-src 'none'; style-src 'unsafe-inline'; img-src data:; sandbox";

/// A 200 with the bytes, or a 304 when the client already holds this ETag.
pub fn immutable_bytes(
    request_headers: &HeaderMap,
    etag: &str,
    content_type: &str,
    bytes: Bytes,
) -> Response {
    if !if_match(request_headers, etag) {
        return Error::PreconditionFailed.into_response();
    }
    let not_modified = if_none_match(request_headers, etag);
    let mut response = if not_modified {
        Response::new(Body::empty())
    } else {
        Response::new(Body::from(bytes))
    };
    if not_modified {
        *response.status_mut() = StatusCode::NOT_MODIFIED;
    }
    let headers = response.headers_mut();
    if !not_modified {
        insert(headers, header::CONTENT_TYPE, content_type);
        protect_active_content(headers, content_type);
    }
    insert(headers, header::ETAG, etag);
    insert(headers, header::CACHE_CONTROL, IMMUTABLE);
    response
}

/// SVG and HTML are documents a browser runs when their URL is opened directly, and an
/// uploaded SVG may carry scripts: no scripts, no requests, an opaque origin.
pub fn protect_active_content(headers: &mut HeaderMap, content_type: &str) {
    if content_type == "image/svg+xml" || content_type.starts_with("text/html") {
        insert(
            headers,
            header::CONTENT_SECURITY_POLICY,
            ACTIVE_CONTENT_POLICY,
        );
    }
}

fn insert(headers: &mut HeaderMap, name: header::HeaderName, value: &str) {
    if let Ok(v) = HeaderValue::from_str(value) {
        headers.insert(name, v);
    }
}

/// RFC 9110 §13.1.1: true without `If-Match`, else when it is `*` or lists this tag under
/// strong comparison (a weak tag never matches).
pub fn if_match(headers: &HeaderMap, etag: &str) -> bool {
    let mut values = headers
        .get_all(header::IF_MATCH)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .peekable();
    if values.peek().is_none() {
        return true;
    }
    values
        .flat_map(|v| v.split(','))
        .map(str::trim)
        .any(|tag| tag == "*" || (!tag.starts_with("W/") && tag == etag))
}

/// RFC 9110 §13.1.2: `*` or any listed tag equal under weak comparison.
fn if_none_match(headers: &HeaderMap, etag: &str) -> bool {
    let ours = etag.trim_start_matches("W/");
    headers
        .get_all(header::IF_NONE_MATCH)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(','))
        .map(str::trim)
        .any(|tag| tag == "*" || tag.trim_start_matches("W/") == ours)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn if_none_match_lists_and_weak_tags() {
        let mut h = HeaderMap::new();
        h.insert(
            header::IF_NONE_MATCH,
            HeaderValue::from_static("\"a\", W/\"b\""),
        );
        assert!(if_none_match(&h, "\"b\""));
        assert!(if_none_match(&h, "\"a\""));
        assert!(!if_none_match(&h, "\"c\""));
        h.insert(header::IF_NONE_MATCH, HeaderValue::from_static("*"));
        assert!(if_none_match(&h, "\"c\""));
    }

    #[test]
    fn if_match_is_strong_and_absent_means_go() {
        let mut h = HeaderMap::new();
        assert!(if_match(&h, "\"a\""));
        h.insert(header::IF_MATCH, HeaderValue::from_static("\"x\", \"a\""));
        assert!(if_match(&h, "\"a\""));
        assert!(!if_match(&h, "\"b\""));
        h.insert(header::IF_MATCH, HeaderValue::from_static("W/\"a\""));
        assert!(!if_match(&h, "\"a\""), "weak tags never match If-Match");
        h.insert(header::IF_MATCH, HeaderValue::from_static("*"));
        assert!(if_match(&h, "\"b\""));
    }
}
