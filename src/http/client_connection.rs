//! A connection whose writes have a deadline: hyper has none, so a client that stops
//! reading (its receive window full) would keep a connection task and its response in
//! memory for ever. A write that cannot make progress for the timeout fails with
//! `TimedOut`, which ends the connection.
//!
//! It also closes the way nginx's lingering close does. When the server answers before
//! reading a body (401, 413 from `Content-Length`, 503) and closes, the client may still
//! be sending it; closing a socket with unread bytes makes the kernel reset the
//! connection, and a client that writes its whole body before reading (Python
//! `requests`, many SDKs) gets a broken pipe instead of the answer. So when the
//! connection ends, what the client still sends is read and thrown away, bounded in
//! bytes and time, before the socket closes.

use std::future::Future;
use std::io;
use std::pin::Pin;
use std::task::{Context, Poll};
use std::time::Duration;

use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};
use tokio::time::Sleep;

/// Most bytes and time a closing connection reads and discards (lingering close).
const LINGER_BYTES: usize = 64 << 20;
const LINGER_TIME: Duration = Duration::from_secs(5);

pub struct ClientConnection {
    /// `None` only once dropped (handed to the lingering close).
    inner: Option<tokio::net::TcpStream>,
    timeout: Option<Duration>,
    /// Armed while a write is blocked, cleared by any progress.
    blocked: Option<Pin<Box<Sleep>>>,
}

impl ClientConnection {
    /// `timeout` of zero: no deadline.
    pub fn new(inner: tokio::net::TcpStream, timeout: Duration) -> Self {
        ClientConnection {
            inner: Some(inner),
            timeout: (!timeout.is_zero()).then_some(timeout),
            blocked: None,
        }
    }

    /// After the inner write returned `Pending`: fail once the deadline has passed.
    fn pending<T>(&mut self, cx: &mut Context<'_>) -> Poll<io::Result<T>> {
        let Some(timeout) = self.timeout else {
            return Poll::Pending;
        };
        let blocked = self
            .blocked
            .get_or_insert_with(|| Box::pin(tokio::time::sleep(timeout)));
        match blocked.as_mut().poll(cx) {
            Poll::Ready(()) => Poll::Ready(Err(io::Error::new(
                io::ErrorKind::TimedOut,
                "the client did not read its response in time",
            ))),
            Poll::Pending => Poll::Pending,
        }
    }

    fn progressed<T>(
        &mut self,
        result: Poll<io::Result<T>>,
        cx: &mut Context<'_>,
    ) -> Poll<io::Result<T>> {
        match result {
            Poll::Pending => self.pending(cx),
            ready => {
                self.blocked = None;
                ready
            }
        }
    }
}

impl ClientConnection {
    fn stream(&mut self) -> Pin<&mut tokio::net::TcpStream> {
        Pin::new(self.inner.as_mut().expect("used only before drop"))
    }
}

impl Drop for ClientConnection {
    fn drop(&mut self) {
        let Some(mut stream) = self.inner.take() else {
            return;
        };
        // Nothing waiting and the peer still open: it may yet send; a closed or idle
        // peer is the common case and costs one non-blocking read.
        let mut probe = [0u8; 1];
        match stream.try_read(&mut probe) {
            Ok(0) => return, // the client closed first: nothing to protect
            Err(e) if e.kind() != io::ErrorKind::WouldBlock => return,
            _ => {}
        }
        let Ok(runtime) = tokio::runtime::Handle::try_current() else {
            return;
        };
        runtime.spawn(async move {
            use tokio::io::{AsyncReadExt, AsyncWriteExt};
            let _ = stream.shutdown().await; // FIN: the answer is complete
            let mut buf = vec![0u8; 64 * 1024];
            let mut read = 0;
            let _ = tokio::time::timeout(LINGER_TIME, async {
                while read < LINGER_BYTES {
                    match stream.read(&mut buf).await {
                        Ok(0) | Err(_) => break,
                        Ok(n) => read += n,
                    }
                }
            })
            .await;
        });
    }
}

impl AsyncRead for ClientConnection {
    fn poll_read(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        self.stream().poll_read(cx, buf)
    }
}

impl AsyncWrite for ClientConnection {
    fn poll_write(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<io::Result<usize>> {
        let result = self.stream().poll_write(cx, buf);
        self.progressed(result, cx)
    }

    fn poll_write_vectored(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        bufs: &[io::IoSlice<'_>],
    ) -> Poll<io::Result<usize>> {
        let result = self.stream().poll_write_vectored(cx, bufs);
        self.progressed(result, cx)
    }

    fn is_write_vectored(&self) -> bool {
        self.inner.as_ref().is_some_and(|s| s.is_write_vectored())
    }

    fn poll_flush(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        let result = self.stream().poll_flush(cx);
        self.progressed(result, cx)
    }

    fn poll_shutdown(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        let result = self.stream().poll_shutdown(cx);
        self.progressed(result, cx)
    }
}
