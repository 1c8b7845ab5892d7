//! The client library and the CLI against a real progimage server, in one test binary.

mod agreement;
mod cli;
mod library;
mod support;
