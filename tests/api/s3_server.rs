//! A real S3-compatible server on 127.0.0.1:0: the `s3s-fs` crate (an S3 API over a
//! directory) served in-process with hyper. It speaks the S3 wire protocol and checks
//! SigV4 signatures, so progimage's `object_store` client talks to it exactly as to
//! MinIO or AWS. It can be stopped and restarted on the same port to play an outage.

use std::net::SocketAddr;
use std::path::PathBuf;

use hyper_util::rt::TokioIo;
use s3s::auth::SimpleAuth;
use s3s::service::S3ServiceBuilder;
use tempfile::TempDir;
use tokio::net::TcpListener;
use tokio::task::{JoinHandle, JoinSet};

const ACCESS_KEY: &str = "progimage-test";
const SECRET_KEY: &str = "progimage-test-secret";
pub const BUCKET: &str = "images";

pub struct S3Server {
    pub addr: SocketAddr,
    root: TempDir,
    acceptor: Option<JoinHandle<()>>,
}

impl S3Server {
    pub async fn start() -> S3Server {
        let root = tempfile::tempdir().expect("s3 root");
        std::fs::create_dir(root.path().join(BUCKET)).expect("bucket dir");
        let listener = TcpListener::bind("127.0.0.1:0").await.expect("bind s3");
        let addr = listener.local_addr().expect("s3 addr");
        let mut server = S3Server {
            addr,
            root,
            acceptor: None,
        };
        server.serve(listener);
        server
    }

    fn serve(&mut self, listener: TcpListener) {
        let fs = s3s_fs::FileSystem::new(self.root.path()).expect("s3s-fs");
        let mut builder = S3ServiceBuilder::new(fs);
        builder.set_auth(SimpleAuth::from_single(ACCESS_KEY, SECRET_KEY));
        let service = builder.build();
        self.acceptor = Some(tokio::spawn(async move {
            // Connections live in this set: aborting the acceptor drops the set, which
            // aborts every open connection too — a real outage, not just no new ones.
            let mut connections = JoinSet::new();
            loop {
                let Ok((stream, _)) = listener.accept().await else {
                    continue;
                };
                let service = service.clone();
                connections.spawn(async move {
                    let _ = hyper::server::conn::http1::Builder::new()
                        .serve_connection(TokioIo::new(stream), service)
                        .await;
                });
                while connections.try_join_next().is_some() {}
            }
        }));
    }

    /// Stop answering: close the port and every open connection.
    pub async fn stop(&mut self) {
        if let Some(acceptor) = self.acceptor.take() {
            acceptor.abort();
            let _ = acceptor.await;
        }
    }

    /// Serve again on the same port, with the same objects.
    pub async fn restart(&mut self) {
        self.stop().await;
        let listener = TcpListener::bind(self.addr).await.expect("re-bind s3");
        self.serve(listener);
    }

    /// `PROGIMAGE_STORE` for a bucket prefix of this server.
    pub fn store_url(&self, prefix: &str) -> String {
        format!("s3://{BUCKET}/{prefix}")
    }

    /// Per-server `AWS_*` settings pointing at this server.
    pub fn store_options(&self) -> Vec<(String, String)> {
        [
            ("aws_endpoint_url", format!("http://{}", self.addr)),
            ("aws_access_key_id", ACCESS_KEY.into()),
            ("aws_secret_access_key", SECRET_KEY.into()),
            ("aws_region", "us-east-1".into()),
        ]
        .into_iter()
        .map(|(k, v)| (k.to_owned(), v))
        .collect()
    }

    /// Objects under `prefix` in the bucket, as files of the backing directory.
    pub fn objects(&self, prefix: &str) -> Vec<PathBuf> {
        let mut out = crate::support::files_under(&self.root.path().join(BUCKET).join(prefix));
        out.sort();
        out
    }
}

impl Drop for S3Server {
    fn drop(&mut self) {
        if let Some(acceptor) = self.acceptor.take() {
            acceptor.abort();
        }
    }
}
