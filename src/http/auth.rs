//! API keys: with `PROGIMAGE_API_KEYS` set, every request that stores, changes or deletes
//! (POST, PUT, PATCH, DELETE) must carry `Authorization: Bearer <key>`.

use std::sync::Arc;

use axum::extract::{Request, State};
use axum::http::{header, HeaderMap, Method};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use subtle::ConstantTimeEq;

use crate::error::Error;
use crate::AppState;

pub async fn require_api_key(
    State(state): State<Arc<AppState>>,
    req: Request,
    next: Next,
) -> Response {
    let keys = &state.config.api_keys;
    let writes = matches!(
        *req.method(),
        Method::POST | Method::PUT | Method::PATCH | Method::DELETE
    );
    if keys.is_empty() || !writes {
        return next.run(req).await;
    }
    match bearer_token(req.headers()) {
        Some(key) if key_matches(keys, key) => next.run(req).await,
        _ => Error::Unauthorized.into_response(),
    }
}

/// The token of an `Authorization: Bearer <token>` header. The scheme name is
/// case-insensitive (RFC 9110 §11.1), so `bearer` and `BEARER` count too.
pub(crate) fn bearer_token(headers: &HeaderMap) -> Option<&str> {
    let value = headers.get(header::AUTHORIZATION)?.to_str().ok()?;
    let (scheme, token) = value.trim_start().split_once(' ')?;
    scheme
        .eq_ignore_ascii_case("bearer")
        .then(|| token.trim())
        .filter(|t| !t.is_empty())
}

/// Compare against every key in constant time per key, without stopping at the first
/// match, so timing reveals neither which key matched nor how much of one did.
pub(crate) fn key_matches(keys: &[String], presented: &str) -> bool {
    keys.iter()
        .filter(|k| !k.is_empty())
        .fold(false, |found, k| {
            found | bool::from(k.as_bytes().ct_eq(presented.as_bytes()))
        })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_bearer_scheme_is_case_insensitive() {
        let with = |v: &'static str| {
            let mut h = HeaderMap::new();
            h.insert(header::AUTHORIZATION, header::HeaderValue::from_static(v));
            h
        };
        for v in ["Bearer k1", "bearer k1", "BEARER  k1 ", " Bearer k1"] {
            assert_eq!(bearer_token(&with(v)), Some("k1"), "{v}");
        }
        for v in ["Basic k1", "Bearerk1", "Bearer ", "k1"] {
            assert_eq!(bearer_token(&with(v)), None, "{v}");
        }
        assert_eq!(bearer_token(&HeaderMap::new()), None);
    }

    #[test]
    fn matches_only_whole_keys() {
        let keys = vec!["alpha".to_owned(), "beta".to_owned()];
        assert!(key_matches(&keys, "beta"));
        assert!(!key_matches(&keys, "bet"));
        assert!(!key_matches(&keys, ""));
        assert!(!key_matches(&[String::new()], ""));
    }
}
