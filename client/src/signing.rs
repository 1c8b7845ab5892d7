//! Signed URLs, exactly as the server checks them: `sig` is the unpadded URL-safe base64
//! of HMAC-SHA256(key, message), where the message is the URL path followed, when the
//! query has parameters other than `sig`, by `?` and those parameters sorted by name
//! (`name=value` as sent, joined with `&`).

use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine;
use hmac::{Hmac, Mac};
use sha2::Sha256;

type HmacSha256 = Hmac<Sha256>;

/// The message that is signed for `path_and_query` (any `sig` in it is left out).
///
/// ```
/// use progimage_client::signing::signing_message;
/// assert_eq!(signing_message("/image/a.png?w=3&sig=x&fit=cover"), "/image/a.png?fit=cover&w=3");
/// assert_eq!(signing_message("/image/a/w_3.png"), "/image/a/w_3.png");
/// ```
pub fn signing_message(path_and_query: &str) -> String {
    let (path, query) = path_and_query
        .split_once('?')
        .unwrap_or((path_and_query, ""));
    let mut params: Vec<&str> = query
        .split('&')
        .filter(|p| !p.is_empty() && name(p) != "sig")
        .collect();
    if params.is_empty() {
        return path.to_owned();
    }
    // A stable sort by name: repeated names keep the order they were sent in.
    params.sort_by(|a, b| name(a).cmp(name(b)));
    format!("{path}?{}", params.join("&"))
}

fn name(param: &str) -> &str {
    param.split_once('=').map_or(param, |(name, _)| name)
}

/// The `sig` value for `path_and_query` under `key`.
///
/// ```
/// use progimage_client::signing::sign;
/// let sig = sign(b"secret", "/image/abc.webp?w=300");
/// assert_eq!(sig.len(), 43); // 32 bytes, unpadded base64
/// assert_eq!(sig, sign(b"secret", "/image/abc.webp?w=300&sig=ignored"));
/// assert_ne!(sig, sign(b"other", "/image/abc.webp?w=300"));
/// ```
pub fn sign(key: &[u8], path_and_query: &str) -> String {
    let mut mac = HmacSha256::new_from_slice(key).expect("HMAC takes keys of any length");
    mac.update(signing_message(path_and_query).as_bytes());
    URL_SAFE_NO_PAD.encode(mac.finalize().into_bytes())
}

/// `path_and_query` with its `sig` appended.
///
/// ```
/// use progimage_client::signing::{sign, signed};
/// let url = signed(b"k", "/image/abc/w_300.webp");
/// assert_eq!(url, format!("/image/abc/w_300.webp?sig={}", sign(b"k", "/image/abc/w_300.webp")));
/// assert!(signed(b"k", "/image/abc.txt?charset=ab").contains("?charset=ab&sig="));
/// ```
pub fn signed(key: &[u8], path_and_query: &str) -> String {
    let sig = sign(key, path_and_query);
    let sep = if path_and_query.contains('?') {
        '&'
    } else {
        '?'
    };
    format!("{path_and_query}{sep}sig={sig}")
}
