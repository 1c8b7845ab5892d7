//! Newline-delimited JSON read from a streaming response, one value per line as the
//! lines arrive.

use futures_util::stream::{self, BoxStream, StreamExt};
use serde_json::Value;

use crate::Error;

struct Reader {
    body: BoxStream<'static, reqwest::Result<bytes::Bytes>>,
    buffer: Vec<u8>,
    finished: bool,
}

/// The lines of `resp`'s body, parsed; blank lines are skipped. A transport error or an
/// unparsable line is yielded as an `Err` and ends the stream.
pub(crate) fn ndjson_lines(resp: reqwest::Response) -> BoxStream<'static, Result<Value, Error>> {
    let reader = Reader {
        body: resp.bytes_stream().boxed(),
        buffer: Vec::new(),
        finished: false,
    };
    stream::unfold(reader, |mut r| async move {
        loop {
            if let Some(end) = r.buffer.iter().position(|&b| b == b'\n') {
                let line: Vec<u8> = r.buffer.drain(..=end).collect();
                if line.iter().all(u8::is_ascii_whitespace) {
                    continue;
                }
                return Some((parse(&line, &mut r), r));
            }
            if r.finished {
                if r.buffer.iter().all(u8::is_ascii_whitespace) {
                    return None;
                }
                let line = std::mem::take(&mut r.buffer);
                return Some((parse(&line, &mut r), r));
            }
            match r.body.next().await {
                Some(Ok(chunk)) => r.buffer.extend_from_slice(&chunk),
                Some(Err(e)) => {
                    r.finished = true;
                    r.buffer.clear();
                    return Some((Err(Error::Http(e)), r));
                }
                None => r.finished = true,
            }
        }
    })
    .boxed()
}

fn parse(line: &[u8], r: &mut Reader) -> Result<Value, Error> {
    serde_json::from_slice(line).map_err(|e| {
        r.finished = true;
        r.buffer.clear();
        Error::Protocol(format!("not a JSON line: {e}"))
    })
}
