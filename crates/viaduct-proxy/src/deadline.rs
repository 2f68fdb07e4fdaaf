//! `respondingTimeouts.readTimeout` over a request body and `writeTimeout` over a response:
//! [`DeadlineBody`], a body wrapper for hyper's server (TLS, h2c), and [`DeadlineIo`], the write
//! deadline of a hyper HTTP/1.1 connection. Viaduct's own HTTP/1.1 server bounds its request
//! bodies itself (`http1::body`) and its exchanges with the connection's one timer.
//!
//! Go's `http.Server` semantics: `readTimeout` bounds the whole request, head and body, from the
//! request's first byte; `writeTimeout` bounds the time from the end of the request head to the
//! end of the response. On HTTP/2 both apply per stream.

use std::future::Future as _;
use std::io;
use std::pin::Pin;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex, PoisonError};
use std::task::{Context, Poll};
use std::time::Duration;

use bytes::Bytes;
use http_body::{Frame, SizeHint};
use tokio::time::{Instant, Sleep};
use viaduct_upstream::BoxError;

/// Which deadline passed.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub(crate) enum DeadlineError {
    #[error("respondingTimeouts.readTimeout ({0:?}) passed before the end of the request body")]
    Read(Duration),
    #[error("respondingTimeouts.writeTimeout ({0:?}) passed before the end of the response")]
    Write(Duration),
}

/// Set by a [`DeadlineBody`] whose deadline passed, so that the server answering the exchange
/// knows why the body failed (whatever status the forwarder made of the failure).
#[derive(Debug, Clone, Default)]
pub(crate) struct Expired(Arc<AtomicBool>);

/// A body that fails with [`DeadlineError`] once `deadline` has passed.
///
/// The timer is made only when the inner body has to wait (returns `Pending`): a body that
/// arrives in one piece, which is most of them, never registers one.
pub(crate) struct DeadlineBody<B> {
    inner: B,
    deadline: Instant,
    error: DeadlineError,
    timer: Option<Pin<Box<Sleep>>>,
    expired: Option<Expired>,
    failed: bool,
}

impl Expired {
    pub(crate) fn is_set(&self) -> bool {
        self.0.load(Ordering::Acquire)
    }

    fn set(&self) {
        self.0.store(true, Ordering::Release);
    }
}

impl<B> DeadlineBody<B> {
    pub(crate) fn new(inner: B, deadline: Instant, error: DeadlineError) -> Self {
        DeadlineBody {
            inner,
            deadline,
            error,
            timer: None,
            expired: None,
            failed: false,
        }
    }

    /// Also sets `expired` when the deadline cuts the body.
    pub(crate) fn reporting(mut self, expired: Expired) -> Self {
        self.expired = Some(expired);
        self
    }

    /// Starts the timer now, so that the deadline holds even for a body that never waits.
    pub(crate) fn armed(mut self) -> Self {
        self.timer = Some(Box::pin(tokio::time::sleep_until(self.deadline)));
        self
    }

    fn fail(&mut self) -> Poll<Option<Result<Frame<Bytes>, BoxError>>> {
        self.failed = true;
        if let Some(expired) = &self.expired {
            expired.set();
        }
        // As an `io::Error` of kind `TimedOut`: the forwarder then answers (and logs) 408.
        let error = io::Error::new(io::ErrorKind::TimedOut, self.error);
        Poll::Ready(Some(Err(BoxError::from(error))))
    }
}

impl<B> http_body::Body for DeadlineBody<B>
where
    B: http_body::Body<Data = Bytes> + Unpin,
    B::Error: Into<BoxError>,
{
    type Data = Bytes;
    type Error = BoxError;

    fn poll_frame(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Bytes>, BoxError>>> {
        let this = self.get_mut();
        if this.failed {
            return Poll::Ready(None);
        }
        // Once the timer exists the deadline is checked on every poll: a body whose frames are
        // always ready must not outlive it either.
        if this.timer.as_ref().is_some_and(|t| t.is_elapsed()) {
            return this.fail();
        }
        match Pin::new(&mut this.inner).poll_frame(cx) {
            Poll::Ready(frame) => Poll::Ready(frame.map(|f| f.map_err(Into::into))),
            Poll::Pending => {
                let deadline = this.deadline;
                let timer = this
                    .timer
                    .get_or_insert_with(|| Box::pin(tokio::time::sleep_until(deadline)));
                match timer.as_mut().poll(cx) {
                    Poll::Ready(()) => this.fail(),
                    Poll::Pending => Poll::Pending,
                }
            }
        }
    }

    fn is_end_stream(&self) -> bool {
        self.failed || self.inner.is_end_stream()
    }

    fn size_hint(&self) -> SizeHint {
        self.inner.size_hint()
    }
}

/// The `writeTimeout` deadline of the HTTP/1.1 request a hyper connection is answering, set by
/// the request's service and read by the connection's [`DeadlineIo`]. HTTP/2 streams leave it
/// unset: their deadlines are per stream.
#[derive(Debug, Default)]
pub(crate) struct WriteDeadline(Mutex<Option<Instant>>);

/// A connection's I/O whose writes fail once the [`WriteDeadline`] has passed, as Go's
/// `SetWriteDeadline`: a client that stops reading cannot hold the connection past it. Used only
/// when `writeTimeout` is set.
pub(crate) struct DeadlineIo<I> {
    inner: I,
    /// `None` when `writeTimeout` is off: the writes pass straight through.
    deadline: Option<Arc<WriteDeadline>>,
    /// Made the first time a write has to wait.
    timer: Option<Pin<Box<Sleep>>>,
}

impl WriteDeadline {
    pub(crate) fn set(&self, at: Option<Instant>) {
        *self.0.lock().unwrap_or_else(PoisonError::into_inner) = at;
    }

    fn get(&self) -> Option<Instant> {
        *self.0.lock().unwrap_or_else(PoisonError::into_inner)
    }
}

impl<I> DeadlineIo<I> {
    pub(crate) fn new(inner: I, deadline: Option<Arc<WriteDeadline>>) -> Self {
        DeadlineIo {
            inner,
            deadline,
            timer: None,
        }
    }

    /// Ready once the current deadline has passed (never, when there is none).
    fn poll_deadline(&mut self, cx: &mut Context<'_>) -> Poll<()> {
        let Some(at) = self.deadline.as_ref().and_then(|d| d.get()) else {
            return Poll::Pending;
        };
        let timer = self
            .timer
            .get_or_insert_with(|| Box::pin(tokio::time::sleep_until(at)));
        if timer.deadline() != at {
            timer.as_mut().reset(at);
        }
        timer.as_mut().poll(cx)
    }

    /// Whether the deadline a write already waited for has passed.
    fn expired(&self) -> bool {
        self.timer.as_ref().is_some_and(|t| {
            t.is_elapsed() && self.deadline.as_ref().and_then(|d| d.get()) == Some(t.deadline())
        })
    }

    fn poll_write_with<T>(
        &mut self,
        cx: &mut Context<'_>,
        write: impl FnOnce(Pin<&mut I>, &mut Context<'_>) -> Poll<io::Result<T>>,
    ) -> Poll<io::Result<T>>
    where
        I: Unpin,
    {
        if self.expired() {
            return Poll::Ready(Err(io::ErrorKind::TimedOut.into()));
        }
        match write(Pin::new(&mut self.inner), cx) {
            Poll::Pending => self
                .poll_deadline(cx)
                .map(|()| Err(io::ErrorKind::TimedOut.into())),
            ready => ready,
        }
    }
}

impl<I: hyper::rt::Read + Unpin> hyper::rt::Read for DeadlineIo<I> {
    fn poll_read(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: hyper::rt::ReadBufCursor<'_>,
    ) -> Poll<io::Result<()>> {
        Pin::new(&mut self.get_mut().inner).poll_read(cx, buf)
    }
}

impl<I: hyper::rt::Write + Unpin> hyper::rt::Write for DeadlineIo<I> {
    fn poll_write(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<io::Result<usize>> {
        self.get_mut()
            .poll_write_with(cx, |io, cx| io.poll_write(cx, buf))
    }

    fn poll_write_vectored(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        bufs: &[io::IoSlice<'_>],
    ) -> Poll<io::Result<usize>> {
        self.get_mut()
            .poll_write_with(cx, |io, cx| io.poll_write_vectored(cx, bufs))
    }

    fn is_write_vectored(&self) -> bool {
        self.inner.is_write_vectored()
    }

    fn poll_flush(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        self.get_mut()
            .poll_write_with(cx, |io, cx| io.poll_flush(cx))
    }

    fn poll_shutdown(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.get_mut().inner).poll_shutdown(cx)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use http_body_util::BodyExt;

    /// A body fed frame by frame from a channel.
    struct ChannelBody(tokio::sync::mpsc::Receiver<Bytes>);

    impl http_body::Body for ChannelBody {
        type Data = Bytes;
        type Error = BoxError;

        fn poll_frame(
            mut self: Pin<&mut Self>,
            cx: &mut Context<'_>,
        ) -> Poll<Option<Result<Frame<Bytes>, BoxError>>> {
            self.0
                .poll_recv(cx)
                .map(|data| data.map(|d| Ok(Frame::data(d))))
        }
    }

    #[tokio::test]
    async fn a_waiting_body_fails_at_its_deadline() {
        let (tx, rx) = tokio::sync::mpsc::channel(1);
        let expired = Expired::default();
        let deadline = Instant::now() + Duration::from_millis(200);
        let mut body = DeadlineBody::new(
            ChannelBody(rx),
            deadline,
            DeadlineError::Read(Duration::ZERO),
        )
        .reporting(expired.clone());
        tx.send(Bytes::from_static(b"a")).await.unwrap();
        let first = body.frame().await.unwrap().unwrap();
        assert_eq!(first.into_data().unwrap(), Bytes::from_static(b"a"));
        assert!(!expired.is_set());
        let err = body.frame().await.unwrap().unwrap_err();
        assert!(err.to_string().contains("readTimeout"), "{err}");
        assert!(expired.is_set());
        assert!(body.frame().await.is_none());
        assert!(Instant::now() >= deadline);
        drop(tx);
    }

    #[tokio::test]
    async fn a_ready_body_registers_no_timer() {
        let body = http_body_util::Full::new(Bytes::from_static(b"abc"));
        let mut body =
            DeadlineBody::new(body, Instant::now(), DeadlineError::Write(Duration::ZERO));
        let data = body.frame().await.unwrap().unwrap();
        assert_eq!(data.into_data().unwrap().len(), 3);
        assert!(body.timer.is_none());
    }

    #[tokio::test]
    async fn writes_that_wait_fail_at_the_connection_deadline() {
        let (client, _server) = tokio::io::duplex(64);
        let deadline = Arc::new(WriteDeadline::default());
        let mut io = DeadlineIo::new(hyper_util::rt::TokioIo::new(client), Some(deadline.clone()));
        // No deadline: a full pipe just waits.
        write_once(&mut io).await.unwrap();
        let waited = tokio::time::timeout(Duration::from_millis(100), write_once(&mut io)).await;
        assert!(waited.is_err());
        let started = Instant::now();
        deadline.set(Some(started + Duration::from_millis(200)));
        let err = write_once(&mut io).await.unwrap_err();
        assert_eq!(err.kind(), io::ErrorKind::TimedOut);
        assert!(started.elapsed() >= Duration::from_millis(200));
        // A new request's deadline lets writes wait again.
        deadline.set(Some(Instant::now() + Duration::from_secs(60)));
        let waited = tokio::time::timeout(Duration::from_millis(100), write_once(&mut io)).await;
        assert!(waited.is_err());
    }

    async fn write_once<I: hyper::rt::Write + Unpin>(io: &mut DeadlineIo<I>) -> io::Result<usize> {
        use hyper::rt::Write as _;
        std::future::poll_fn(|cx| Pin::new(&mut *io).poll_write(cx, &[0u8; 64])).await
    }
}
