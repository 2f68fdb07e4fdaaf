//! gRPC-Web bodies: the text mode's base64 undone on requests and applied on responses,
//! and the response's HTTP/2 trailers carried in the body as gRPC-Web's trailer frame.

use std::pin::Pin;
use std::task::{Context, Poll};

use bytes::{BufMut, Bytes, BytesMut};
use http::HeaderMap;
use http_body::{Frame, SizeHint};
use viaduct_upstream::{Body, BoxError};

use crate::base64_stream;

/// A text-mode request body, decoded.
pub(crate) struct DecodedBody {
    inner: Body,
    decoder: base64_stream::Decoder,
}

impl DecodedBody {
    pub fn new(inner: Body) -> Self {
        DecodedBody {
            inner,
            decoder: base64_stream::Decoder::default(),
        }
    }
}

impl http_body::Body for DecodedBody {
    type Data = Bytes;
    type Error = BoxError;

    fn poll_frame(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Bytes>, BoxError>>> {
        let this = self.get_mut();
        loop {
            match Pin::new(&mut this.inner).poll_frame(cx) {
                Poll::Ready(Some(Ok(frame))) => {
                    let Ok(data) = frame.into_data() else {
                        continue;
                    };
                    let decoded = this.decoder.push(&data)?;
                    if !decoded.is_empty() {
                        return Poll::Ready(Some(Ok(Frame::data(decoded.into()))));
                    }
                }
                Poll::Ready(Some(Err(e))) => return Poll::Ready(Some(Err(e))),
                Poll::Ready(None) => {
                    this.decoder.finish()?;
                    return Poll::Ready(None);
                }
                Poll::Pending => return Poll::Pending,
            }
        }
    }

    fn is_end_stream(&self) -> bool {
        self.inner.is_end_stream()
    }

    fn size_hint(&self) -> SizeHint {
        SizeHint::default()
    }
}

/// A gRPC response body as gRPC-Web: data as it is (or base64 in text mode), then the
/// trailers as a frame of their own (flag 0x80, length, `name: value\r\n` lines).
pub(crate) struct WebResponseBody {
    inner: Body,
    text: Option<base64_stream::Encoder>,
    finished: bool,
}

impl WebResponseBody {
    pub fn new(inner: Body, text: bool) -> Self {
        WebResponseBody {
            inner,
            text: text.then(base64_stream::Encoder::default),
            finished: false,
        }
    }

    fn data(&mut self, data: &[u8]) -> Bytes {
        match self.text.as_mut() {
            Some(encoder) => Bytes::from(encoder.push(data)),
            None => Bytes::copy_from_slice(data),
        }
    }

    /// The trailer frame (with the end of the base64 text before it, in text mode).
    fn trailer_frame(&mut self, trailers: Option<HeaderMap>) -> Bytes {
        let mut lines: Vec<(String, &[u8])> = Vec::new();
        if let Some(trailers) = &trailers {
            for (name, value) in trailers {
                lines.push((name.as_str().to_ascii_lowercase(), value.as_bytes()));
            }
        }
        lines.sort_by(|a, b| a.0.cmp(&b.0));
        let mut payload = Vec::new();
        for (name, value) in lines {
            payload.extend_from_slice(name.as_bytes());
            payload.extend_from_slice(b": ");
            payload.extend_from_slice(value);
            payload.extend_from_slice(b"\r\n");
        }
        let mut frame = BytesMut::with_capacity(5 + payload.len());
        frame.put_u8(0x80);
        frame.put_u32(payload.len() as u32);
        frame.extend_from_slice(&payload);
        match self.text.as_mut() {
            // The data's base64 ends (padded) before the trailer frame's own segment.
            Some(encoder) => {
                let mut out = encoder.finish();
                out.push_str(&base64_stream::encode(&frame));
                Bytes::from(out)
            }
            None => frame.freeze(),
        }
    }
}

impl http_body::Body for WebResponseBody {
    type Data = Bytes;
    type Error = BoxError;

    fn poll_frame(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Bytes>, BoxError>>> {
        let this = self.get_mut();
        if this.finished {
            return Poll::Ready(None);
        }
        loop {
            match Pin::new(&mut this.inner).poll_frame(cx) {
                Poll::Ready(Some(Ok(frame))) => match frame.into_data() {
                    Ok(data) => {
                        let out = this.data(&data);
                        if !out.is_empty() {
                            return Poll::Ready(Some(Ok(Frame::data(out))));
                        }
                    }
                    Err(frame) => {
                        this.finished = true;
                        let trailers = frame.into_trailers().ok();
                        let out = this.trailer_frame(trailers);
                        return Poll::Ready(Some(Ok(Frame::data(out))));
                    }
                },
                Poll::Ready(Some(Err(e))) => return Poll::Ready(Some(Err(e))),
                Poll::Ready(None) => {
                    this.finished = true;
                    let out = this.trailer_frame(None);
                    return Poll::Ready(Some(Ok(Frame::data(out))));
                }
                Poll::Pending => return Poll::Pending,
            }
        }
    }

    fn is_end_stream(&self) -> bool {
        self.finished
    }

    fn size_hint(&self) -> SizeHint {
        SizeHint::default()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use http_body::Body as _;

    /// Data, then trailers, as an HTTP/2 gRPC answer ends.
    struct Grpc(Vec<Frame<Bytes>>);

    impl http_body::Body for Grpc {
        type Data = Bytes;
        type Error = BoxError;
        fn poll_frame(
            self: Pin<&mut Self>,
            _cx: &mut Context<'_>,
        ) -> Poll<Option<Result<Frame<Bytes>, BoxError>>> {
            let this = self.get_mut();
            Poll::Ready((!this.0.is_empty()).then(|| Ok(this.0.remove(0))))
        }
    }

    async fn collect(mut body: WebResponseBody) -> Vec<u8> {
        let mut out = Vec::new();
        while let Some(frame) = std::future::poll_fn(|cx| Pin::new(&mut body).poll_frame(cx)).await
        {
            out.extend_from_slice(&frame.unwrap().into_data().unwrap());
        }
        out
    }

    fn grpc_answer() -> Body {
        let mut trailers = HeaderMap::new();
        trailers.insert("grpc-status", "0".parse().unwrap());
        trailers.insert("grpc-message", "OK".parse().unwrap());
        Body::boxed(Grpc(vec![
            Frame::data(Bytes::from_static(b"\0\0\0\0\x02hi")),
            Frame::trailers(trailers),
        ]))
    }

    #[tokio::test]
    async fn trailers_become_a_frame() {
        let out = collect(WebResponseBody::new(grpc_answer(), false)).await;
        let trailer = b"grpc-message: OK\r\ngrpc-status: 0\r\n";
        let mut expected = b"\0\0\0\0\x02hi\x80\0\0\0".to_vec();
        expected.push(trailer.len() as u8);
        expected.extend_from_slice(trailer);
        assert_eq!(out, expected);

        let text = collect(WebResponseBody::new(grpc_answer(), true)).await;
        let text = String::from_utf8(text).unwrap();
        let (data, frame) = text.split_at(12);
        assert_eq!(data, base64_stream::encode(b"\0\0\0\0\x02hi"));
        let mut decoder = base64_stream::Decoder::default();
        assert_eq!(decoder.push(frame.as_bytes()).unwrap(), expected[7..]);
    }
}
