//! A request body read from the client connection as the request's consumer polls it.
//!
//! The body borrows the connection's read side (the shared stream and the buffer with what
//! was read past the head). When it ends, or is dropped, the buffer goes back to the
//! connection with where decoding stopped, so the connection can read the next request (or
//! drain an unread body, or close).

use std::future::Future as _;
use std::io;
use std::pin::Pin;
use std::sync::Arc;
use std::task::{ready, Context, Poll};
use std::time::Duration;

use bytes::{Bytes, BytesMut};
use http_body::{Frame, SizeHint};
use tokio::net::TcpStream;
use tokio::sync::oneshot;
use tokio::time::{Instant, Sleep};
use viaduct_upstream::{BodyDecoder, BoxError, Decoded};

use super::io::poll_fill;
use crate::deadline::DeadlineError;

/// What a request body gives back to its connection.
pub(crate) struct Returned {
    pub buf: BytesMut,
    pub decoder: BodyDecoder,
    /// `readTimeout` cut the body: the connection answers 408 and closes.
    pub timed_out: bool,
}

pub(crate) struct RequestBody {
    stream: Arc<TcpStream>,
    buf: BytesMut,
    decoder: BodyDecoder,
    back: Option<oneshot::Sender<Returned>>,
    /// `readTimeout`'s end for the whole request, and `readTimeout` itself.
    deadline: Option<(Instant, Duration)>,
    /// Made the first time the body has to wait for the client, never for a body that came
    /// with its head: a timer per request would cost the runtime a wake-up per request.
    timer: Option<Pin<Box<Sleep>>>,
}

#[derive(Debug, thiserror::Error)]
pub(crate) enum RequestBodyError {
    #[error("reading the request body: {0}")]
    Read(io::Error),
    #[error("the client closed the connection before the end of the request body")]
    Truncated,
    #[error("malformed chunked request body: {0}")]
    Malformed(&'static str),
    #[error(transparent)]
    TimedOut(DeadlineError),
}

impl RequestBody {
    pub(crate) fn new(
        stream: Arc<TcpStream>,
        buf: BytesMut,
        decoder: BodyDecoder,
        deadline: Option<(Instant, Duration)>,
    ) -> (Self, oneshot::Receiver<Returned>) {
        let (back, returned) = oneshot::channel();
        let body = RequestBody {
            stream,
            buf,
            decoder,
            back: Some(back),
            deadline,
            timer: None,
        };
        (body, returned)
    }

    fn give_back(&mut self) {
        if let Some(back) = self.back.take() {
            let _ = back.send(Returned {
                buf: std::mem::take(&mut self.buf),
                decoder: self.decoder,
                timed_out: false,
            });
        }
    }

    /// Polls the `readTimeout` deadline of a body that waits for the client.
    fn poll_deadline(&mut self, cx: &mut Context<'_>) -> Poll<()> {
        let Some((deadline, _)) = self.deadline else {
            return Poll::Pending;
        };
        self.timer
            .get_or_insert_with(|| Box::pin(tokio::time::sleep_until(deadline)))
            .as_mut()
            .poll(cx)
    }

    fn time_out(&mut self) -> Poll<Option<Result<Frame<Bytes>, BoxError>>> {
        // Said to the connection at once, before the exchange ends: it answers 408 itself.
        if let Some(back) = self.back.take() {
            let _ = back.send(Returned {
                buf: BytesMut::new(),
                decoder: self.decoder,
                timed_out: true,
            });
        }
        self.decoder.set_done();
        let limit = self.deadline.map(|(_, limit)| limit).unwrap_or_default();
        // As an `io::Error` of kind `TimedOut`: the forwarder then answers (and logs) 408.
        let error = io::Error::new(
            io::ErrorKind::TimedOut,
            RequestBodyError::TimedOut(DeadlineError::Read(limit)),
        );
        Poll::Ready(Some(Err(BoxError::from(error))))
    }

    fn fail(&mut self, err: RequestBodyError) -> Poll<Option<Result<Frame<Bytes>, BoxError>>> {
        // The connection cannot be trusted to frame another request.
        self.back = None;
        self.decoder.set_done();
        Poll::Ready(Some(Err(BoxError::from(err))))
    }
}

impl http_body::Body for RequestBody {
    type Data = Bytes;
    type Error = BoxError;

    fn poll_frame(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Bytes>, BoxError>>> {
        let this = self.get_mut();
        if this.back.is_none() {
            return Poll::Ready(None);
        }
        loop {
            match this.decoder.decode(&mut this.buf) {
                Decoded::Data(data) => {
                    if this.decoder.is_length_complete() {
                        this.decoder.set_done();
                        this.give_back();
                    }
                    return Poll::Ready(Some(Ok(Frame::data(data))));
                }
                Decoded::Finished(trailers) => {
                    this.give_back();
                    return Poll::Ready(trailers.map(|t| Ok(Frame::trailers(t))));
                }
                Decoded::Malformed(reason) => {
                    return this.fail(RequestBodyError::Malformed(reason))
                }
                Decoded::NeedMore => match poll_fill(&this.stream, &mut this.buf, cx) {
                    Poll::Ready(Ok(0)) => return this.fail(RequestBodyError::Truncated),
                    Poll::Ready(Ok(_)) => {}
                    Poll::Ready(Err(e)) => return this.fail(RequestBodyError::Read(e)),
                    Poll::Pending => {
                        ready!(this.poll_deadline(cx));
                        return this.time_out();
                    }
                },
            }
        }
    }

    fn is_end_stream(&self) -> bool {
        self.decoder.is_done()
    }

    fn size_hint(&self) -> SizeHint {
        match self.decoder.remaining_exact() {
            Some(n) => SizeHint::with_exact(n),
            None => SizeHint::default(),
        }
    }
}

impl Drop for RequestBody {
    fn drop(&mut self) {
        self.give_back();
    }
}
