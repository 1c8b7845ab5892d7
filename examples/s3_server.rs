//! A tiny S3-compatible server for benchmarks (`bench/peers.sh`, section 8): the `s3s-fs`
//! crate (the S3 API over a directory, SigV4 checked) served with hyper on loopback, the
//! same way as the test suite's `tests/api/s3_server.rs`. Not for production.
//!
//! ```sh
//! cargo run --release --example s3_server -- --root /tmp/s3 --listen 127.0.0.1:9000 \
//!     --bucket images --access-key bench --secret-key bench-secret
//! AWS_ENDPOINT_URL=http://127.0.0.1:9000 AWS_ACCESS_KEY_ID=bench \
//!     AWS_SECRET_ACCESS_KEY=bench-secret AWS_REGION=us-east-1 \
//!     progimage --store s3://images/prefix
//! ```

use std::net::SocketAddr;
use std::path::PathBuf;

use clap::Parser;
use hyper_util::rt::TokioIo;
use s3s::auth::SimpleAuth;
use s3s::service::S3ServiceBuilder;
use tokio::net::TcpListener;

#[derive(Debug, Parser)]
#[command(about = "A loopback S3-compatible server over a directory (s3s-fs), for benchmarks")]
struct Args {
    /// Directory holding the buckets (one sub-directory each); created if missing.
    #[arg(long)]
    root: PathBuf,
    /// Address to serve on.
    #[arg(long, default_value = "127.0.0.1:9000")]
    listen: SocketAddr,
    /// Bucket to create (a directory under --root).
    #[arg(long, default_value = "images")]
    bucket: String,
    /// Access key clients sign with.
    #[arg(long, env = "AWS_ACCESS_KEY_ID", default_value = "progimage-bench")]
    access_key: String,
    /// Secret key clients sign with.
    #[arg(
        long,
        env = "AWS_SECRET_ACCESS_KEY",
        default_value = "progimage-bench-secret",
        hide_env_values = true
    )]
    secret_key: String,
}

#[tokio::main]
async fn main() -> Result<(), Box<dyn std::error::Error>> {
    let args = Args::parse();
    std::fs::create_dir_all(args.root.join(&args.bucket))?;
    let fs = s3s_fs::FileSystem::new(&args.root)
        .map_err(|e| format!("s3s-fs over {}: {e:?}", args.root.display()))?;
    let mut builder = S3ServiceBuilder::new(fs);
    builder.set_auth(SimpleAuth::from_single(
        args.access_key.as_str(),
        args.secret_key.as_str(),
    ));
    let service = builder.build();

    let listener = TcpListener::bind(args.listen).await?;
    println!(
        "s3_server: http://{} bucket {:?} in {}",
        listener.local_addr()?,
        args.bucket,
        args.root.display()
    );
    loop {
        let (stream, _) = match listener.accept().await {
            Ok(accepted) => accepted,
            Err(e) => {
                // Out of file descriptors and the like: back off instead of spinning.
                eprintln!("s3_server: accept: {e}");
                tokio::time::sleep(std::time::Duration::from_millis(50)).await;
                continue;
            }
        };
        let _ = stream.set_nodelay(true);
        let service = service.clone();
        tokio::spawn(async move {
            let _ = hyper::server::conn::http1::Builder::new()
                .serve_connection(TokioIo::new(stream), service)
                .await;
        });
    }
}
