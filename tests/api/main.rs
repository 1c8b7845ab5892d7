//! Black-box tests: a real progimage server on 127.0.0.1:0 with a temporary data
//! directory, spoken to over real HTTP. One test binary with modules keeps linking fast.

mod animation;
mod ascii;
mod beyond;
mod bulk;
mod compat;
mod concurrency;
mod corpus;
mod disk_full;
mod fetch;
mod formats;
mod http_semantics;
mod operations;
mod shutdown;
mod support;
mod upload;
mod variants;
