//! The multipart upload path (`POST /image` with `multipart/form-data`): the body is
//! parsed by the server's own code (`http::body::read_multipart_chunks`). Byte 0 picks
//! the boundary spelling in the Content-Type, byte 1 how the body is cut into chunks (so
//! boundaries and headers straddle chunk edges); the rest is the body. The byte limit is
//! small (4 KiB) so the too-large path is reached too. Errors are fine; panics and
//! futures that never finish are bugs.
#![no_main]

use std::future::Future;
use std::task::{Context, Poll, Waker};

use libfuzzer_sys::fuzz_target;
use progimage::http::body::read_multipart_chunks;

const CONTENT_TYPES: [&str; 4] = [
    "multipart/form-data; boundary=XyZ",
    "multipart/form-data; boundary=\"a b\"",
    "multipart/form-data; boundary=-",
    "multipart/form-data",
];

fuzz_target!(|data: &[u8]| {
    let [kind, cut, body @ ..] = data else {
        return;
    };
    let content_type = CONTENT_TYPES[usize::from(*kind) % CONTENT_TYPES.len()];
    let step = 1 + usize::from(*cut);
    let chunks = body
        .chunks(step)
        .map(bytes::Bytes::copy_from_slice)
        .collect();
    let future = std::pin::pin!(read_multipart_chunks(content_type, chunks, 4096));
    // The whole body is in memory, so one poll must finish: no runtime needed.
    let mut cx = Context::from_waker(Waker::noop());
    match future.poll(&mut cx) {
        Poll::Ready(result) => {
            if let Ok(upload) = result {
                assert!(
                    upload.bytes.len() <= 4096,
                    "the byte limit was not enforced"
                );
            }
        }
        Poll::Pending => panic!("parsing an in-memory body did not finish"),
    }
});
