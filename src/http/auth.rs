//! API keys: with `PROGIMAGE_API_KEYS` set, every request that stores, changes or deletes
//! (POST, PUT, PATCH, DELETE) must carry `Authorization: Bearer <key>`.

use std::sync::Arc;

use axum::extract::{Request, State};
use axum::http::{header, Method};
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
    let presented = req
        .headers()
        .get(header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.strip_prefix("Bearer "))
        .map(str::trim);
    match presented {
        Some(key) if key_matches(keys, key) => next.run(req).await,
        _ => Error::Unauthorized.into_response(),
    }
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
    fn matches_only_whole_keys() {
        let keys = vec!["alpha".to_owned(), "beta".to_owned()];
        assert!(key_matches(&keys, "beta"));
        assert!(!key_matches(&keys, "bet"));
        assert!(!key_matches(&keys, ""));
        assert!(!key_matches(&[String::new()], ""));
    }
}
