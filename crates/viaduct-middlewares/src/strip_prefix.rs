//! `stripPrefix`: removes the first matching prefix from the path and tells the backend
//! which one in `X-Forwarded-Prefix`.

use std::sync::Arc;

use http::header::{HeaderName, HeaderValue};
use http::StatusCode;
use serde::Deserialize;

use crate::chain::{BoxFuture, Middleware, Next, Request, RequestContext, Response};
use crate::uri::{ensure_leading_slash, set_path};

pub(crate) const X_FORWARDED_PREFIX: HeaderName = HeaderName::from_static("x-forwarded-prefix");

#[derive(Debug, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
struct Options {
    #[serde(default)]
    prefixes: Vec<String>,
    /// Deprecated in Traefik v3: a stripped path always starts with `/`, even when the
    /// prefix ended with one (`/api/` on `/api/x` gives `/x`, not `x`).
    #[serde(default)]
    force_slash: bool,
}

#[derive(Debug)]
pub(crate) struct StripPrefix {
    /// Each prefix with its `X-Forwarded-Prefix` value, prepared once.
    prefixes: Vec<(String, HeaderValue)>,
    force_slash: bool,
}

pub(crate) fn build(options: &serde_json::Value) -> Result<Arc<dyn Middleware>, String> {
    let options: Options = crate::options::decode(options)?;
    let mut prefixes = Vec::with_capacity(options.prefixes.len());
    for prefix in options.prefixes {
        let value = HeaderValue::from_str(prefix.trim())
            .map_err(|_| format!("option prefixes: {prefix:?} is not a valid header value"))?;
        prefixes.push((prefix, value));
    }
    Ok(Arc::new(StripPrefix {
        prefixes,
        force_slash: options.force_slash,
    }))
}

impl StripPrefix {
    fn stripped(&self, path: &str, prefix: &str) -> String {
        let rest = path.strip_prefix(prefix).unwrap_or(path);
        if self.force_slash {
            format!("/{}", rest.trim_start_matches('/'))
        } else {
            ensure_leading_slash(rest).into_owned()
        }
    }
}

impl Middleware for StripPrefix {
    fn handle<'a>(
        &'a self,
        mut request: Request,
        _ctx: &'a RequestContext<'a>,
        next: Next<'a>,
    ) -> BoxFuture<'a, Response> {
        let path = request.uri().path();
        if let Some((prefix, value)) = self
            .prefixes
            .iter()
            .find(|(p, _)| path.starts_with(p.as_str()))
        {
            let stripped = self.stripped(path, prefix);
            if set_path(request.uri_mut(), &stripped).is_err() {
                return Box::pin(async { crate::responses::status(StatusCode::BAD_REQUEST) });
            }
            request
                .headers_mut()
                .append(X_FORWARDED_PREFIX, value.clone());
        }
        next.run(request)
    }
}
