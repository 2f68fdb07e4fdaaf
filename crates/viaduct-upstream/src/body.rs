use std::pin::Pin;
use std::task::{Context, Poll};

use bytes::Bytes;
use http_body::{Frame, SizeHint};
use hyper::body::Incoming;

use crate::h1::UpstreamBody;
use crate::health::InFlight;

pub type BoxError = Box<dyn std::error::Error + Send + Sync>;

/// The body type used on both sides of the proxy.
///
/// An enum rather than a boxed trait object: the common case (streaming a peer's body
/// through) costs no allocation, and locally generated answers are a single buffer.
#[derive(Default)]
pub enum Body {
    #[default]
    Empty,
    Full(Option<Bytes>),
    Incoming(Incoming),
    /// A response body read by the inline HTTP/1.1 client.
    Upstream(UpstreamBody),
    /// Any other body: a request body read by the entry points' own HTTP/1.1 server, or a
    /// body transformed on the way through (compressed, counted, spooled by a middleware).
    Boxed(BoxedBody),
    /// A body that keeps its server's request counted in flight until it ends or is dropped.
    Counted(Box<CountedBody>),
    /// Bytes already read from a body, then the rest of it (a body partly buffered).
    Chained(Box<(Option<Bytes>, Body)>),
}

#[derive(Debug)]
pub struct CountedBody {
    body: Body,
    in_flight: Option<InFlight>,
}

impl Body {
    /// `prefix` (already read from `rest`), then `rest`.
    pub fn chained(prefix: Bytes, rest: Body) -> Body {
        Body::Chained(Box::new(((!prefix.is_empty()).then_some(prefix), rest)))
    }

    /// Wraps `self` so that `in_flight` is released when the body ends or is dropped.
    pub fn counted(self, in_flight: InFlight) -> Body {
        Body::Counted(Box::new(CountedBody {
            body: self,
            in_flight: Some(in_flight),
        }))
    }

    /// Wraps any body (see [`Body::Boxed`]).
    pub fn boxed(
        body: impl http_body::Body<Data = Bytes, Error = BoxError> + Send + Sync + 'static,
    ) -> Self {
        Body::Boxed(BoxedBody::new(body))
    }
}

/// Any body with our frame and error types, boxed.
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
            Body::Counted(counted) => {
                let poll = Pin::new(&mut counted.body).poll_frame(cx);
                if matches!(poll, Poll::Ready(None) | Poll::Ready(Some(Err(_)))) {
                    counted.in_flight = None;
                }
                poll
            }
            Body::Chained(chained) => match chained.0.take() {
                Some(prefix) => Poll::Ready(Some(Ok(Frame::data(prefix)))),
                None => Pin::new(&mut chained.1).poll_frame(cx),
            },
        }
    }

    fn is_end_stream(&self) -> bool {
        match self {
            Body::Empty => true,
            Body::Full(data) => data.is_none(),
            Body::Incoming(body) => body.is_end_stream(),
            Body::Upstream(body) => body.is_end_stream(),
            Body::Boxed(body) => body.0.is_end_stream(),
            Body::Counted(counted) => counted.body.is_end_stream(),
            Body::Chained(chained) => chained.0.is_none() && chained.1.is_end_stream(),
        }
    }

    fn size_hint(&self) -> SizeHint {
        match self {
            Body::Empty => SizeHint::with_exact(0),
            Body::Full(data) => SizeHint::with_exact(data.as_ref().map_or(0, |d| d.len() as u64)),
            Body::Incoming(body) => body.size_hint(),
            Body::Upstream(body) => body.size_hint(),
            Body::Boxed(body) => body.0.size_hint(),
            Body::Counted(counted) => counted.body.size_hint(),
            Body::Chained(chained) => {
                let prefix = chained.0.as_ref().map_or(0, |b| b.len() as u64);
                let rest = chained.1.size_hint();
                let mut hint = SizeHint::new();
                hint.set_lower(rest.lower() + prefix);
                if let Some(upper) = rest.upper() {
                    hint.set_upper(upper + prefix);
                }
                hint
            }
        }
    }
}

impl std::fmt::Debug for Body {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Body::Empty => f.write_str("Body::Empty"),
            Body::Full(data) => f.debug_tuple("Body::Full").field(data).finish(),
            Body::Incoming(body) => f.debug_tuple("Body::Incoming").field(body).finish(),
            Body::Upstream(body) => f.debug_tuple("Body::Upstream").field(body).finish(),
            Body::Boxed(_) => f.write_str("Body::Boxed"),
            Body::Counted(counted) => f.debug_tuple("Body::Counted").field(&counted.body).finish(),
            Body::Chained(chained) => f.debug_tuple("Body::Chained").field(&chained.1).finish(),
        }
    }
}
