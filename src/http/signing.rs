//! Signed URLs: with `PROGIMAGE_SIGNING_KEY` set, every variant URL (all but `/original`
//! and metadata) must carry `sig`, the unpadded URL-safe base64 of
//! HMAC-SHA256(key, message). The message is the URL path, followed — when the query has
//! parameters other than `sig` — by `?` and those parameters sorted by name, each written
//! `name=value` exactly as sent, joined with `&`.

use axum::http::Uri;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine;
use hmac::{Hmac, Mac};
use sha2::Sha256;

use crate::error::Error;

type HmacSha256 = Hmac<Sha256>;

/// The string that is signed for a request URI.
pub fn signing_message(path: &str, query: Option<&str>) -> String {
    let mut params: Vec<&str> = query
        .unwrap_or("")
        .split('&')
        .filter(|p| !p.is_empty() && param_name(p) != "sig")
        .collect();
    if params.is_empty() {
        return path.to_owned();
    }
    params.sort_by(|a, b| param_name(a).cmp(param_name(b)));
    format!("{path}?{}", params.join("&"))
}

fn param_name(param: &str) -> &str {
    param.split_once('=').map_or(param, |(name, _)| name)
}

/// The `sig` value for a message.
pub fn sign(key: &[u8], message: &str) -> String {
    let mut mac = HmacSha256::new_from_slice(key).expect("HMAC takes keys of any length");
    mac.update(message.as_bytes());
    URL_SAFE_NO_PAD.encode(mac.finalize().into_bytes())
}

/// Check the request's `sig` when a signing key is configured.
pub fn verify(key: Option<&str>, uri: &Uri) -> Result<(), Error> {
    let Some(key) = key else {
        return Ok(());
    };
    let given = uri
        .query()
        .unwrap_or("")
        .split('&')
        .find_map(|p| p.strip_prefix("sig="))
        .ok_or_else(|| Error::BadSignature("this URL must be signed: add `sig`".into()))?;
    let given = URL_SAFE_NO_PAD
        .decode(given)
        .map_err(|_| Error::BadSignature("`sig` is not unpadded URL-safe base64".into()))?;
    let mut mac = HmacSha256::new_from_slice(key.as_bytes()).expect("any key length");
    mac.update(signing_message(uri.path(), uri.query()).as_bytes());
    // `verify_slice` compares in constant time.
    mac.verify_slice(&given)
        .map_err(|_| Error::BadSignature("`sig` does not match this URL".into()))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn message_sorts_params_and_drops_sig() {
        assert_eq!(signing_message("/image/a.png", None), "/image/a.png");
        assert_eq!(
            signing_message("/image/a.png", Some("sig=x")),
            "/image/a.png"
        );
        assert_eq!(
            signing_message("/image/a.png", Some("w=3&sig=x&fit=cover&h=%32")),
            "/image/a.png?fit=cover&h=%32&w=3"
        );
    }

    #[test]
    fn verify_accepts_only_the_right_signature() {
        let uri: Uri = "/image/a.png?w=3".parse().unwrap();
        let sig = sign(b"k", "/image/a.png?w=3");
        let signed: Uri = format!("/image/a.png?w=3&sig={sig}").parse().unwrap();
        assert!(verify(Some("k"), &signed).is_ok());
        assert!(verify(None, &uri).is_ok());
        assert!(verify(Some("k"), &uri).is_err());
        assert!(verify(Some("other"), &signed).is_err());
        let tampered: Uri = format!("/image/a.png?w=4&sig={sig}").parse().unwrap();
        assert!(verify(Some("k"), &tampered).is_err());
    }
}
