//! `replacePath`: replaces the whole path; the backend finds the original in
//! `X-Replaced-Path`.

use std::sync::Arc;

use http::header::{HeaderName, HeaderValue};
use http::StatusCode;
use serde::Deserialize;

use crate::chain::{BoxFuture, Middleware, Next, Request, RequestContext, Response};
use crate::uri::set_path;

pub(crate) const X_REPLACED_PATH: HeaderName = HeaderName::from_static("x-replaced-path");

#[derive(Debug, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
struct Options {
    #[serde(default)]
    path: String,
}

#[derive(Debug)]
pub(crate) struct ReplacePath {
    /// Escaped as a URI path, once.
    path: String,
}

pub(crate) fn build(options: &serde_json::Value) -> Result<Arc<dyn Middleware>, String> {
    let options: Options = crate::options::decode(options)?;
    Ok(Arc::new(ReplacePath {
        path: escape_path(&options.path),
    }))
}

impl Middleware for ReplacePath {
    fn handle<'a>(
        &'a self,
        mut request: Request,
        _ctx: &'a RequestContext<'a>,
        next: Next<'a>,
    ) -> BoxFuture<'a, Response> {
        if let Err(status) = replace(&mut request, &self.path) {
            return Box::pin(async move { crate::responses::status(status) });
        }
        next.run(request)
    }
}

/// Records the current path in `X-Replaced-Path` and sets `path` (already escaped).
pub(crate) fn replace(request: &mut Request, path: &str) -> Result<(), StatusCode> {
    let current = HeaderValue::from_str(request.uri().path())
        .map_err(|_| StatusCode::INTERNAL_SERVER_ERROR)?;
    set_path(request.uri_mut(), path).map_err(|_| StatusCode::INTERNAL_SERVER_ERROR)?;
    request.headers_mut().append(X_REPLACED_PATH, current);
    Ok(())
}

/// Percent-encodes what a URI path cannot carry as is (spaces, controls, non-ASCII…),
/// leaving existing escapes alone, as Go does when it serialises a path it was given raw.
pub(crate) fn escape_path(path: &str) -> String {
    let mut escaped = String::with_capacity(path.len());
    for byte in path.bytes() {
        let keep = byte.is_ascii_alphanumeric() || b"-._~!$&'()*+,;=:@/%".contains(&byte);
        if keep {
            escaped.push(char::from(byte));
        } else {
            escaped.push_str(&format!("%{byte:02X}"));
        }
    }
    escaped
}

#[cfg(test)]
mod tests {
    #[test]
    fn escapes_what_a_path_cannot_carry() {
        assert_eq!(super::escape_path("/a b/é?"), "/a%20b/%C3%A9%3F");
        assert_eq!(super::escape_path("/a%2Fb"), "/a%2Fb");
    }
}
