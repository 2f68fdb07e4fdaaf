//! `encodedCharacters`: refuses (400) a request whose path holds one of the percent-encoded
//! characters not allowed (by default none is: `%2F`, `%5C`, `%00`, `%3B`, `%25`, `%3F`,
//! `%23`), the per-router form of the entry point option.

use std::sync::Arc;

use http::StatusCode;
use serde::Deserialize;
use viaduct_upstream::Body;

use crate::chain::{BoxFuture, Middleware, Next, Request, RequestContext, Response};

#[derive(Debug, Default, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
struct Options {
    #[serde(default)]
    allow_encoded_slash: bool,
    #[serde(default)]
    allow_encoded_back_slash: bool,
    #[serde(default)]
    allow_encoded_null_character: bool,
    #[serde(default)]
    allow_encoded_semicolon: bool,
    #[serde(default)]
    allow_encoded_percent: bool,
    #[serde(default)]
    allow_encoded_question_mark: bool,
    #[serde(default)]
    allow_encoded_hash: bool,
}

#[derive(Debug)]
pub(crate) struct EncodedCharacters {
    /// Indexed by the encoded byte: refused or not.
    denied: [bool; 256],
}

pub(crate) fn build(options: &serde_json::Value) -> Result<Arc<dyn Middleware>, String> {
    let o: Options = crate::options::decode(options)?;
    let mut denied = [false; 256];
    let rules = [
        (o.allow_encoded_slash, b'/'),
        (o.allow_encoded_back_slash, b'\\'),
        (o.allow_encoded_null_character, 0),
        (o.allow_encoded_semicolon, b';'),
        (o.allow_encoded_percent, b'%'),
        (o.allow_encoded_question_mark, b'?'),
        (o.allow_encoded_hash, b'#'),
    ];
    for (allowed, byte) in rules {
        denied[usize::from(byte)] = !allowed;
    }
    Ok(Arc::new(EncodedCharacters { denied }))
}

impl Middleware for EncodedCharacters {
    fn handle<'a>(
        &'a self,
        request: Request,
        _ctx: &'a RequestContext<'a>,
        next: Next<'a>,
    ) -> BoxFuture<'a, Response> {
        if self.refuses(request.uri().path().as_bytes()) {
            return Box::pin(async {
                let mut response = Response::new(Body::Empty);
                *response.status_mut() = StatusCode::BAD_REQUEST;
                response
            });
        }
        next.run(request)
    }
}

impl EncodedCharacters {
    fn refuses(&self, path: &[u8]) -> bool {
        let mut i = 0;
        while i < path.len() {
            if path[i] != b'%' {
                i += 1;
                continue;
            }
            // A `%` without two characters after it is refused outright, as in Traefik.
            let Some(hex) = path.get(i + 1..i + 3) else {
                return true;
            };
            let decoded = std::str::from_utf8(hex)
                .ok()
                .and_then(|h| u8::from_str_radix(h, 16).ok());
            if decoded.is_some_and(|b| self.denied[usize::from(b)]) {
                return true;
            }
            i += 3;
        }
        false
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn refuses_the_denied_encodings_only() {
        let strict = EncodedCharacters {
            denied: build_denied(false),
        };
        assert!(strict.refuses(b"/a%2Fb"));
        assert!(strict.refuses(b"/a%2fb"));
        assert!(strict.refuses(b"/a%00"));
        assert!(strict.refuses(b"/a%"));
        assert!(!strict.refuses(b"/a%20b"));
        let lax = EncodedCharacters {
            denied: build_denied(true),
        };
        assert!(!lax.refuses(b"/a%2Fb%25"));
    }

    fn build_denied(allow_all: bool) -> [bool; 256] {
        let mut denied = [false; 256];
        for b in [b'/', b'\\', 0, b';', b'%', b'?', b'#'] {
            denied[usize::from(b)] = !allow_all;
        }
        denied
    }
}
