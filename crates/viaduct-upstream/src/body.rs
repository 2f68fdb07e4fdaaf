use std::pin::Pin;
use std::task::{Context, Poll};

use bytes::Bytes;
use http_body::{Frame, SizeHint};
use hyper::body::Incoming;

use crate::h1::UpstreamBody;

pub type BoxError = Box<dyn std::error::Error + Send + Sync>;

/// The body type used on both sides of the proxy.
///
/// An enum rather than a boxed trait object: the common case (streaming a peer's body
/// through) costs no allocation, and locally generated answers are a single buffer.
#[derive(Debug, Default)]
pub enum Body {
    #[default]
    Empty,
    Full(Option<Bytes>),
    Incoming(Incoming),
    /// A response body read by the inline HTTP/1.1 client.
    Upstream(UpstreamBody),
    /// A body transformed on the way through (compressed, counted, spooled by a middleware).
    Boxed(BoxedBody),
}

/// Any body with our frame and error types. Boxed only where a middleware wraps a body.
pub struct BoxedBody(Pin<Box<dyn http_body::Body<Data = Bytes, Error = BoxError> + Send + Sync>>);

impl BoxedBody {
    pub fn new(
        body: impl http_body::Body<Data = Bytes, Error = BoxError> + Send + Sync + 'static,
    ) -> Self {
        BoxedBody(Box::pin(body))
    }
}

impl std::fmt::Debug for BoxedBody {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("BoxedBody")
    }
}

impl Body {
    /// Wraps any body (see [`Body::Boxed`]).
    pub fn boxed(
        body: impl http_body::Body<Data = Bytes, Error = BoxError> + Send + Sync + 'static,
    ) -> Self {
        Body::Boxed(BoxedBody::new(body))
    }
}

/// A body holding one buffer.
pub fn full_body(data: impl Into<Bytes>) -> Body {
    let data = data.into();
    if data.is_empty() {
        Body::Empty
    } else {
        Body::Full(Some(data))
    }
}

impl From<Incoming> for Body {
    fn from(body: Incoming) -> Self {
        Body::Incoming(body)
    }
}

impl http_body::Body for Body {
    type Data = Bytes;
    type Error = BoxError;

    fn poll_frame(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Bytes>, BoxError>>> {
        match self.get_mut() {
            Body::Empty => Poll::Ready(None),
            Body::Full(data) => Poll::Ready(data.take().map(|d| Ok(Frame::data(d)))),
            Body::Incoming(body) => Pin::new(body)
                .poll_frame(cx)
                .map(|frame| frame.map(|r| r.map_err(BoxError::from))),
            Body::Upstream(body) => Pin::new(body).poll_frame(cx),
            Body::Boxed(body) => body.0.as_mut().poll_frame(cx),
        }
    }

    fn is_end_stream(&self) -> bool {
        match self {
            Body::Empty => true,
            Body::Full(data) => data.is_none(),
            Body::Incoming(body) => body.is_end_stream(),
            Body::Upstream(body) => body.is_end_stream(),
            Body::Boxed(body) => body.0.is_end_stream(),
        }
    }

    fn size_hint(&self) -> SizeHint {
        match self {
            Body::Empty => SizeHint::with_exact(0),
            Body::Full(data) => SizeHint::with_exact(data.as_ref().map_or(0, |d| d.len() as u64)),
            Body::Incoming(body) => body.size_hint(),
            Body::Upstream(body) => body.size_hint(),
            Body::Boxed(body) => body.0.size_hint(),
        }
    }
}
