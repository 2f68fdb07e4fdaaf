//! Running something when a response body is over: fully sent, failed, or dropped (the
//! client went away). `inFlightReq` releases its slot there; `circuitBreaker` records the
//! request's latency there, as Traefik counts a request until its handler returns.

use std::pin::Pin;
use std::task::{Context, Poll};

use bytes::Bytes;
use http_body::{Frame, SizeHint};
use viaduct_upstream::{Body, BoxError};

use crate::chain::Response;

/// How a body ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum BodyEnd {
    Complete,
    Failed,
    Dropped,
}

/// Calls `on_end` once when `response`'s body is over. A body that is already empty calls
/// it at once, without wrapping.
pub(crate) fn on_body_end<F>(response: Response, on_end: F) -> Response
where
    F: FnOnce(BodyEnd) + Send + Sync + 'static,
{
    if http_body::Body::is_end_stream(response.body()) {
        on_end(BodyEnd::Complete);
        return response;
    }
    response.map(|inner| {
        Body::boxed(WatchedBody {
            inner,
            on_end: Some(on_end),
        })
    })
}

struct WatchedBody<F: FnOnce(BodyEnd)> {
    inner: Body,
    on_end: Option<F>,
}

impl<F: FnOnce(BodyEnd)> WatchedBody<F> {
    fn end(&mut self, how: BodyEnd) {
        if let Some(on_end) = self.on_end.take() {
            on_end(how);
        }
    }
}

// `F` is only ever moved out and called, never pinned: the wrapper is `Unpin` whatever `F` is.
impl<F: FnOnce(BodyEnd)> Unpin for WatchedBody<F> {}

impl<F: FnOnce(BodyEnd)> http_body::Body for WatchedBody<F> {
    type Data = Bytes;
    type Error = BoxError;

    fn poll_frame(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Bytes>, BoxError>>> {
        let this = self.get_mut();
        let polled = Pin::new(&mut this.inner).poll_frame(cx);
        match &polled {
            Poll::Ready(None) => this.end(BodyEnd::Complete),
            Poll::Ready(Some(Err(_))) => this.end(BodyEnd::Failed),
            Poll::Ready(Some(Ok(_))) if this.inner.is_end_stream() => this.end(BodyEnd::Complete),
            _ => {}
        }
        polled
    }

    fn is_end_stream(&self) -> bool {
        self.inner.is_end_stream()
    }

    fn size_hint(&self) -> SizeHint {
        self.inner.size_hint()
    }
}

impl<F: FnOnce(BodyEnd)> Drop for WatchedBody<F> {
    fn drop(&mut self) {
        self.end(BodyEnd::Dropped);
    }
}
