//! `compress`: compresses responses with the best coding the client accepts (gzip, br,
//! zstd; `encodings` gives the preference), when the response is large enough
//! (`minResponseBodyBytes`), of an accepted content type, and not already encoded.
//!
//! The decision needs at most `minResponseBodyBytes` of the body (none when the backend
//! gave a `Content-Length`); the rest is compressed as it streams.

use std::pin::Pin;
use std::sync::Arc;

use bytes::{Bytes, BytesMut};
use http::header::{
    HeaderValue, ACCEPT_ENCODING, CONTENT_ENCODING, CONTENT_LENGTH, CONTENT_RANGE, CONTENT_TYPE,
    VARY,
};
use http::{HeaderMap, Method, StatusCode};
use http_body::Body as _;
use serde::Deserialize;
use viaduct_upstream::{full_body, Body};

use crate::chain::{BoxFuture, Middleware, Next, Request, RequestContext, Response};
use crate::compress_body::CompressedBody;
use crate::encoder::{Coding, Encoder};
use crate::media_type::MediaType;
use crate::retry::Prefixed;

const DEFAULT_MIN_SIZE: u64 = 1024;
const DEFAULT_ENCODINGS: [&str; 3] = ["gzip", "br", "zstd"];

#[derive(Debug, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
struct Options {
    #[serde(default)]
    excluded_content_types: Vec<String>,
    #[serde(default)]
    included_content_types: Vec<String>,
    #[serde(default)]
    min_response_body_bytes: i64,
    #[serde(default)]
    encodings: Vec<String>,
    #[serde(default)]
    default_encoding: String,
}

#[derive(Debug)]
pub(crate) struct Compress {
    /// Preference order.
    encodings: Vec<Coding>,
    /// For `*` (and for clients sending no `Accept-Encoding`, when set).
    default_encoding: Option<Coding>,
    excluded: Vec<MediaType>,
    included: Vec<MediaType>,
    min_size: u64,
}

/// What the client's `Accept-Encoding` asks for.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Choice {
    Encode(Coding),
    /// `identity`, or nothing acceptable: the response goes as it is.
    AsIs,
}

pub(crate) fn build(options: &serde_json::Value) -> Result<Arc<dyn Middleware>, String> {
    Ok(Arc::new(Compress::from_options(crate::options::decode(
        options,
    )?)?))
}

impl Compress {
    fn from_options(options: Options) -> Result<Compress, String> {
        if !options.excluded_content_types.is_empty() && !options.included_content_types.is_empty()
        {
            return Err(
                "excludedContentTypes and includedContentTypes options are mutually exclusive"
                    .into(),
            );
        }
        let parse_all = |list: &[String], option: &str| {
            list.iter()
                .map(|text| {
                    MediaType::parse(text)
                        .ok_or_else(|| format!("option {option}: {text:?} is not a media type"))
                })
                .collect::<Result<Vec<_>, _>>()
        };
        // gRPC is never compressed by this middleware (it has its own framing).
        let mut excluded = vec![MediaType::parse("application/grpc").unwrap_or_default()];
        excluded.extend(parse_all(
            &options.excluded_content_types,
            "excludedContentTypes",
        )?);
        let included = parse_all(&options.included_content_types, "includedContentTypes")?;
        let names: Vec<String> = if options.encodings.is_empty() {
            DEFAULT_ENCODINGS.iter().map(|s| s.to_string()).collect()
        } else {
            options.encodings
        };
        let encodings = names
            .iter()
            .map(|name| {
                Coding::from_name(name).ok_or_else(|| format!("unsupported encoding: {name}"))
            })
            .collect::<Result<Vec<_>, _>>()?;
        let default_encoding = match options.default_encoding.as_str() {
            "" => None,
            name => match Coding::from_name(name).filter(|c| encodings.contains(c)) {
                Some(coding) => Some(coding),
                None => return Err(format!("unsupported default encoding: {name}")),
            },
        };
        Ok(Compress {
            encodings,
            default_encoding,
            excluded,
            included,
            min_size: u64::try_from(options.min_response_body_bytes)
                .ok()
                .filter(|&n| n > 0)
                .unwrap_or(DEFAULT_MIN_SIZE),
        })
    }
}

impl Middleware for Compress {
    fn handle<'a>(
        &'a self,
        request: Request,
        _ctx: &'a RequestContext<'a>,
        next: Next<'a>,
    ) -> BoxFuture<'a, Response> {
        let Some(coding) = self.coding_for(&request) else {
            return next.run(request);
        };
        Box::pin(async move {
            let mut response = next.run(request).await;
            response
                .headers_mut()
                .append(VARY, HeaderValue::from_static("Accept-Encoding"));
            self.compress(response, coding).await
        })
    }
}

impl Compress {
    /// The coding for this request's response, `None` to leave it alone.
    fn coding_for(&self, request: &Request) -> Option<Coding> {
        if request.method() == Method::HEAD {
            return None;
        }
        // As Traefik: a request of an excluded type (gRPC) is not compressed.
        if let Some(media) = request
            .headers()
            .get(CONTENT_TYPE)
            .and_then(|v| v.to_str().ok())
            .and_then(MediaType::parse)
        {
            if self.excluded.iter().any(|e| e.essence == media.essence) {
                return None;
            }
        }
        let mut values = request.headers().get_all(ACCEPT_ENCODING).iter().peekable();
        if values.peek().is_none() {
            return self.default_encoding;
        }
        match self.choose(request.headers()) {
            Choice::Encode(coding) => Some(coding),
            Choice::AsIs => None,
        }
    }

    /// Traefik's reading of `Accept-Encoding`: highest weight first, then the configured
    /// preference; `*` ranks before the named codings at equal weight.
    fn choose(&self, headers: &HeaderMap) -> Choice {
        let values = headers.get_all(ACCEPT_ENCODING);
        let mut iter = values.iter();
        if iter.next().is_some_and(|v| v.is_empty()) && iter.next().is_none() {
            return Choice::AsIs;
        }
        // (weight, rank, what): rank -1 for `*`, the index for a coding, last for identity.
        let mut best: Option<(f64, i64, Option<Coding>)> = None;
        let items = values
            .iter()
            .filter_map(|v| v.to_str().ok())
            .flat_map(|v| v.split(','));
        for item in items {
            // Traefik drops every space (`gzip; q=0.5` is `gzip;q=0.5`).
            let (name, params) = item.split_once(';').unwrap_or((item, ""));
            let name = name.trim();
            let params: std::borrow::Cow<'_, str> = if params.contains(' ') {
                params.replace(' ', "").into()
            } else {
                params.into()
            };
            let (rank, what) = match name {
                "*" => (-1, None),
                "identity" => (self.encodings.len() as i64, None),
                _ => match Coding::from_name(name)
                    .and_then(|c| self.encodings.iter().position(|&e| e == c).map(|i| (i, c)))
                {
                    Some((index, coding)) => (index as i64, Some(coding)),
                    None => continue,
                },
            };
            let weight = match params.strip_prefix("q=") {
                Some(q) => q.parse::<f64>().unwrap_or(0.0),
                None => 1.0,
            };
            if weight == 0.0 {
                continue;
            }
            let better = best.is_none_or(|(w, r, _)| weight > w || (weight == w && rank < r));
            if better {
                best = Some((weight, rank, what));
            }
        }
        match best {
            None => Choice::AsIs,
            Some((_, -1, _)) => Choice::Encode(
                self.default_encoding
                    .unwrap_or(self.encodings.first().copied().unwrap_or(Coding::Gzip)),
            ),
            Some((_, _, Some(coding))) => Choice::Encode(coding),
            Some((_, _, None)) => Choice::AsIs,
        }
    }

    async fn compress(&self, response: Response, coding: Coding) -> Response {
        if !self.compressible(response.headers(), response.status()) {
            return response;
        }
        let (mut parts, mut body) = response.into_parts();
        if body.is_end_stream() {
            return Response::from_parts(parts, body);
        }
        // Known small: as it is. Known large: compress at once. Unknown: read up to the
        // threshold (or until the backend pauses) to decide.
        let known = body.size_hint().exact();
        let head = match known {
            Some(len) if len < self.min_size => return Response::from_parts(parts, body),
            Some(_) => Bytes::new(),
            None => match read_up_to(&mut body, self.min_size).await {
                Ok(Read::Ended(all)) if (all.len() as u64) < self.min_size => {
                    return Response::from_parts(parts, full_body(all));
                }
                Ok(Read::Ended(all)) => return self.encode(parts, all, Body::Empty, coding),
                Ok(Read::Enough(head)) => head,
                Err(partial) => {
                    let rest = Body::boxed(Prefixed::new(vec![partial], body));
                    return Response::from_parts(parts, rest);
                }
            },
        };
        parts.headers.remove(CONTENT_LENGTH);
        self.encode(parts, head, body, coding)
    }

    fn encode(
        &self,
        mut parts: http::response::Parts,
        head: Bytes,
        rest: Body,
        coding: Coding,
    ) -> Response {
        let encoder = match Encoder::new(coding) {
            Ok(encoder) => encoder,
            Err(e) => {
                tracing::debug!(error = %e, "creating the compressor failed");
                return crate::responses::status(StatusCode::INTERNAL_SERVER_ERROR);
            }
        };
        parts.headers.remove(CONTENT_LENGTH);
        parts
            .headers
            .insert(CONTENT_ENCODING, HeaderValue::from_static(coding.name()));
        let body = CompressedBody::new(encoder, head, rest);
        Response::from_parts(parts, Body::boxed(body))
    }

    fn compressible(&self, headers: &HeaderMap, status: StatusCode) -> bool {
        // A part of a representation cannot be encoded on its own.
        if status == StatusCode::PARTIAL_CONTENT || headers.contains_key(CONTENT_RANGE) {
            return false;
        }
        if headers
            .get(CONTENT_ENCODING)
            .is_some_and(|v| !v.as_bytes().is_empty())
        {
            return false;
        }
        let Some(content_type) = headers.get(CONTENT_TYPE) else {
            return true;
        };
        let Some(media) = content_type.to_str().ok().and_then(MediaType::parse) else {
            return false;
        };
        if !self.included.is_empty() && !self.included.iter().any(|i| i.matches(&media)) {
            return false;
        }
        !self.excluded.iter().any(|e| e.matches(&media))
    }
}

enum Read {
    /// The whole body (it was short).
    Ended(Bytes),
    /// At least the threshold, or what came before the backend paused.
    Enough(Bytes),
}

/// Reads `body` until `limit` bytes, its end, or a pause after some data. On an error,
/// what was read (the error is left for the client to see when the rest is polled).
async fn read_up_to(body: &mut Body, limit: u64) -> Result<Read, Bytes> {
    let mut buffer = BytesMut::new();
    std::future::poll_fn(|cx| loop {
        match Pin::new(&mut *body).poll_frame(cx) {
            std::task::Poll::Ready(Some(Ok(frame))) => {
                if let Ok(data) = frame.into_data() {
                    buffer.extend_from_slice(&data);
                    if buffer.len() as u64 >= limit {
                        return std::task::Poll::Ready(Ok(false));
                    }
                }
            }
            std::task::Poll::Ready(Some(Err(_))) => return std::task::Poll::Ready(Err(())),
            std::task::Poll::Ready(None) => return std::task::Poll::Ready(Ok(true)),
            // As Traefik's periodic flush: a pause with data pending decides for compression.
            std::task::Poll::Pending if !buffer.is_empty() => {
                return std::task::Poll::Ready(Ok(false))
            }
            std::task::Poll::Pending => return std::task::Poll::Pending,
        }
    })
    .await
    .map(|ended| {
        let bytes = std::mem::take(&mut buffer).freeze();
        if ended {
            Read::Ended(bytes)
        } else {
            Read::Enough(bytes)
        }
    })
    .map_err(|()| buffer.freeze())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn compress(options: serde_json::Value) -> Compress {
        Compress::from_options(crate::options::decode(&options).unwrap()).unwrap()
    }

    fn choose(c: &Compress, accept: &[&str]) -> Choice {
        let mut headers = HeaderMap::new();
        for value in accept {
            headers.append(ACCEPT_ENCODING, HeaderValue::from_str(value).unwrap());
        }
        c.choose(&headers)
    }

    #[test]
    fn accept_encoding_as_traefik_reads_it() {
        let c = compress(serde_json::json!({}));
        assert_eq!(choose(&c, &["br, gzip"]), Choice::Encode(Coding::Gzip));
        assert_eq!(
            choose(&c, &["br;q=0.9, gzip;q=0.8"]),
            Choice::Encode(Coding::Brotli)
        );
        assert_eq!(
            choose(&c, &["gzip", "zstd;q=1.5"]),
            Choice::Encode(Coding::Zstd)
        );
        assert_eq!(choose(&c, &["*"]), Choice::Encode(Coding::Gzip));
        assert_eq!(
            choose(&c, &["br, *"]),
            Choice::Encode(Coding::Gzip),
            "* ranks first"
        );
        assert_eq!(choose(&c, &["identity"]), Choice::AsIs);
        assert_eq!(choose(&c, &[""]), Choice::AsIs);
        assert_eq!(choose(&c, &["deflate, gzip;q=0"]), Choice::AsIs);
        assert_eq!(
            choose(&c, &["GZIP"]),
            Choice::AsIs,
            "names are case-sensitive"
        );
        let c = compress(serde_json::json!({"encodings": ["zstd", "br"], "defaultEncoding": "br"}));
        assert_eq!(choose(&c, &["*"]), Choice::Encode(Coding::Brotli));
        assert_eq!(choose(&c, &["gzip"]), Choice::AsIs, "not configured");
    }

    #[test]
    fn what_is_never_compressed() {
        let c = compress(serde_json::json!({}));
        let mut headers = HeaderMap::new();
        assert!(c.compressible(&headers, StatusCode::OK));
        assert!(!c.compressible(&headers, StatusCode::PARTIAL_CONTENT));
        headers.insert(CONTENT_ENCODING, HeaderValue::from_static("br"));
        assert!(!c.compressible(&headers, StatusCode::OK));
        let mut headers = HeaderMap::new();
        headers.insert(
            CONTENT_TYPE,
            HeaderValue::from_static("application/grpc+proto"),
        );
        assert!(
            c.compressible(&headers, StatusCode::OK),
            "only the exact type"
        );
        headers.insert(CONTENT_TYPE, HeaderValue::from_static("application/grpc"));
        assert!(!c.compressible(&headers, StatusCode::OK));
        headers.insert(CONTENT_TYPE, HeaderValue::from_static("not a type"));
        assert!(!c.compressible(&headers, StatusCode::OK));
    }

    #[test]
    fn option_errors() {
        let err = |v: serde_json::Value| build(&v).unwrap_err();
        assert!(err(serde_json::json!({"encodings": ["deflate"]})).contains("deflate"));
        assert!(
            err(serde_json::json!({"encodings": ["gzip"], "defaultEncoding": "br"}))
                .contains("default encoding")
        );
        assert!(err(serde_json::json!({
            "includedContentTypes": ["text/html"],
            "excludedContentTypes": ["text/css"]
        }))
        .contains("mutually exclusive"));
    }
}
