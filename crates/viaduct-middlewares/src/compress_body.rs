//! The compressed response body: the inner body's bytes through an [`Encoder`], frame by
//! frame, never the whole body in memory.

use std::pin::Pin;
use std::task::{Context, Poll};

use bytes::Bytes;
use http::HeaderMap;
use http_body::{Frame, SizeHint};
use viaduct_upstream::{Body, BoxError};

use crate::encoder::Encoder;

pub(crate) struct CompressedBody {
    inner: Body,
    /// `None` once the stream was ended.
    encoder: Option<Encoder>,
    /// Bytes read before compression was decided, compressed first.
    head: Option<Bytes>,
    /// Output waiting to be sent.
    ready: Option<Bytes>,
    trailers: Option<HeaderMap>,
    /// Input written since the last flush.
    unflushed: bool,
}

impl CompressedBody {
    pub fn new(encoder: Encoder, head: Bytes, inner: Body) -> Self {
        CompressedBody {
            inner,
            encoder: Some(encoder),
            head: (!head.is_empty()).then_some(head),
            ready: None,
            trailers: None,
            unflushed: false,
        }
    }

    fn write(&mut self, data: &[u8]) -> Result<(), BoxError> {
        if let Some(encoder) = self.encoder.as_mut() {
            let out = encoder.write(data)?;
            self.unflushed = true;
            self.push(out);
        }
        Ok(())
    }

    fn finish(&mut self) -> Result<(), BoxError> {
        if let Some(encoder) = self.encoder.take() {
            let out = encoder.finish()?;
            self.push(out);
        }
        Ok(())
    }

    fn push(&mut self, out: Bytes) {
        if out.is_empty() {
            return;
        }
        self.ready = Some(match self.ready.take() {
            None => out,
            Some(before) => [before, out].concat().into(),
        });
    }
}

impl http_body::Body for CompressedBody {
    type Data = Bytes;
    type Error = BoxError;

    fn poll_frame(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Bytes>, BoxError>>> {
        let this = self.get_mut();
        if let Some(head) = this.head.take() {
            if let Err(e) = this.write(&head) {
                return Poll::Ready(Some(Err(e)));
            }
        }
        loop {
            if let Some(out) = this.ready.take() {
                return Poll::Ready(Some(Ok(Frame::data(out))));
            }
            if this.encoder.is_none() {
                return Poll::Ready(this.trailers.take().map(|t| Ok(Frame::trailers(t))));
            }
            match Pin::new(&mut this.inner).poll_frame(cx) {
                Poll::Ready(Some(Ok(frame))) => match frame.into_data() {
                    Ok(data) => this.write(&data)?,
                    Err(frame) => {
                        if let Ok(trailers) = frame.into_trailers() {
                            this.trailers = Some(trailers);
                        }
                        this.finish()?;
                    }
                },
                Poll::Ready(Some(Err(e))) => return Poll::Ready(Some(Err(e))),
                Poll::Ready(None) => this.finish()?,
                Poll::Pending => {
                    // Nothing more for now: send what was compressed, as a streaming
                    // response (events, long polls) must not be held back.
                    if this.unflushed {
                        this.unflushed = false;
                        if let Some(encoder) = this.encoder.as_mut() {
                            let out = encoder.flush()?;
                            this.push(out);
                        }
                        if this.ready.is_some() {
                            continue;
                        }
                    }
                    return Poll::Pending;
                }
            }
        }
    }

    fn is_end_stream(&self) -> bool {
        self.encoder.is_none() && self.ready.is_none() && self.trailers.is_none()
    }

    fn size_hint(&self) -> SizeHint {
        SizeHint::default()
    }
}
