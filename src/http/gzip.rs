//! Gzip for text variants (`txt`, `html`, `ansi`, traced `svg`), done by the variant code
//! rather than the compression layer so the answer is a cached, whole file: it carries a
//! `Content-Length` (the contract asks it of every variant response), and its own strong
//! ETag (RFC 9110 §8.8.1: another content coding is another representation).

use std::io::Write;

use axum::http::{header, HeaderMap};
use bytes::Bytes;
use flate2::write::GzEncoder;
use flate2::Compression;

/// Whether `Accept-Encoding` allows gzip: `gzip`, `x-gzip` or `*`, without `q=0`.
pub fn accepted(headers: &HeaderMap) -> bool {
    let mut gzip = None;
    let mut any = None;
    for item in headers
        .get_all(header::ACCEPT_ENCODING)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(','))
    {
        let mut parts = item.split(';').map(str::trim);
        let name = parts.next().unwrap_or_default().to_ascii_lowercase();
        let allowed = parts
            .filter_map(|p| p.strip_prefix("q=").or_else(|| p.strip_prefix("Q=")))
            .all(|q| q.trim().parse::<f32>().map_or(true, |q| q > 0.0));
        match name.as_str() {
            "gzip" | "x-gzip" => gzip = Some(allowed),
            "*" => any = Some(allowed),
            _ => {}
        }
    }
    gzip.or(any).unwrap_or(false)
}

/// Gzip `bytes` (CPU work: call it on the work pool).
pub fn compress(bytes: &[u8]) -> std::io::Result<Bytes> {
    let mut encoder = GzEncoder::new(Vec::with_capacity(bytes.len() / 4), Compression::default());
    encoder.write_all(bytes)?;
    Ok(encoder.finish()?.into())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn with(value: &'static str) -> HeaderMap {
        let mut h = HeaderMap::new();
        h.insert(header::ACCEPT_ENCODING, value.parse().unwrap());
        h
    }

    #[test]
    fn reads_accept_encoding() {
        for yes in [
            "gzip",
            "gzip, deflate, br",
            "br;q=1, GZIP;q=0.5",
            "*",
            "x-gzip",
        ] {
            assert!(accepted(&with(yes)), "{yes}");
        }
        for no in [
            "br",
            "identity",
            "gzip;q=0",
            "gzip;q=0.0, br",
            "*;q=0",
            "*, gzip;q=0",
        ] {
            assert!(!accepted(&with(no)), "{no}");
        }
        assert!(!accepted(&HeaderMap::new()));
    }

    #[test]
    fn compresses_to_a_gzip_stream() {
        let text = "@@@@%%%%####****++++====----::::....    \n".repeat(100);
        let gz = compress(text.as_bytes()).unwrap();
        assert!(gz.len() < text.len() / 10);
        assert_eq!(&gz[..2], &[0x1f, 0x8b]);
        let mut back = String::new();
        std::io::Read::read_to_string(&mut flate2::read::GzDecoder::new(&gz[..]), &mut back)
            .unwrap();
        assert_eq!(back, text);
    }
}
