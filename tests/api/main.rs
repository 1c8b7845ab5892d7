//! Black-box tests: a real progimage server on 127.0.0.1:0 with a temporary data
//! directory, spoken to over real HTTP. One test binary with modules keeps linking fast.

mod animation;
mod ascii;
mod avif_animation;
mod avif_input;
mod beyond;
mod bulk;
mod colour;
mod compat;
mod concurrency;
mod corpus;
mod crash;
mod disk_full;
mod fetch;
mod formats;
mod fuzz_regressions;
mod hardening;
mod http_semantics;
mod jpeg_codings;
mod malformed;
mod operations;
mod overload;
mod playground;
mod publish;
mod retention;
mod s3_server;
mod scale_out;
mod shapes;
mod shutdown;
mod slow_clients;
mod support;
mod tiff_layouts;
mod upload;
mod variants;
