//! `s3://bucket/prefix` stores: Amazon S3 or any S3-compatible server (MinIO, Ceph, R2…)
//! through `object_store`. Credentials, region and endpoint come from the standard
//! `AWS_*` environment variables (`AWS_ACCESS_KEY_ID`, `AWS_SECRET_ACCESS_KEY`,
//! `AWS_REGION`, `AWS_ENDPOINT_URL`, …), overridable per server with `options` (tests
//! use that to run several servers against different buckets in one process).

use std::sync::Arc;
use std::time::Duration;

use object_store::aws::{AmazonS3Builder, AmazonS3ConfigKey};
use object_store::prefix::PrefixStore;
use object_store::{ClientOptions, ObjectStore, RetryConfig};

/// Open `url` (`s3://bucket` or `s3://bucket/some/prefix`).
pub fn open_s3(
    url: &str,
    options: &[(String, String)],
    timeout: Duration,
) -> anyhow::Result<Arc<dyn ObjectStore>> {
    let rest = url
        .strip_prefix("s3://")
        .ok_or_else(|| anyhow::anyhow!("{url:?} is not an s3:// URL"))?;
    let (bucket, prefix) = rest.split_once('/').unwrap_or((rest, ""));
    anyhow::ensure!(!bucket.is_empty(), "{url:?} names no bucket");

    let mut builder = AmazonS3Builder::from_env().with_bucket_name(bucket);
    let mut endpoint = std::env::var("AWS_ENDPOINT_URL")
        .or_else(|_| std::env::var("AWS_ENDPOINT"))
        .ok();
    for (key, value) in options {
        let key: AmazonS3ConfigKey = key
            .parse()
            .map_err(|e| anyhow::anyhow!("store option {key:?}: {e}"))?;
        if key == AmazonS3ConfigKey::Endpoint {
            endpoint = Some(value.clone());
        }
        builder = builder.with_config(key, value);
    }
    // A plain-http endpoint (MinIO on a private network, a loopback test server) is an
    // explicit choice of the operator; don't make them also set AWS_ALLOW_HTTP.
    let plain_http = endpoint
        .as_deref()
        .is_some_and(|e| e.starts_with("http://"));
    // The caller puts its own deadline on every call; retries must fit inside it so a
    // dead endpoint fails fast with 503 instead of retrying for minutes.
    let retry = RetryConfig {
        max_retries: 2,
        retry_timeout: timeout,
        ..RetryConfig::default()
    };
    let client = ClientOptions::new()
        .with_allow_http(plain_http)
        .with_connect_timeout(timeout.min(Duration::from_secs(3)))
        .with_timeout(timeout);
    let store = builder
        .with_client_options(client)
        .with_retry(retry)
        .build()?;
    let prefix = prefix.trim_matches('/');
    Ok(if prefix.is_empty() {
        Arc::new(store)
    } else {
        Arc::new(PrefixStore::new(store, prefix))
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn opts(endpoint: &str) -> Vec<(String, String)> {
        vec![
            ("aws_endpoint_url".into(), endpoint.into()),
            ("aws_access_key_id".into(), "k".into()),
            ("aws_secret_access_key".into(), "s".into()),
            ("aws_region".into(), "us-east-1".into()),
        ]
    }

    #[test]
    fn urls_name_a_bucket_and_an_optional_prefix() {
        let t = Duration::from_secs(1);
        assert!(open_s3("s3://bucket", &opts("http://127.0.0.1:9"), t).is_ok());
        assert!(open_s3("s3://bucket/a/b/", &opts("http://127.0.0.1:9"), t).is_ok());
        assert!(open_s3("s3://", &opts("http://127.0.0.1:9"), t).is_err());
        assert!(open_s3("gs://bucket", &opts("http://127.0.0.1:9"), t).is_err());
        let mut bad = opts("http://127.0.0.1:9");
        bad.push(("not_an_option".into(), "x".into()));
        assert!(open_s3("s3://bucket", &bad, t).is_err());
    }
}
