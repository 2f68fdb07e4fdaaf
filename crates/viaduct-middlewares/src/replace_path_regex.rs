//! `replacePathRegex`: rewrites the path with a regex and a replacement (`$1`, `${name}`);
//! the original goes to `X-Replaced-Path`.

use std::sync::Arc;

use regex::Regex;
use serde::Deserialize;

use crate::chain::{BoxFuture, Middleware, Next, Request, RequestContext, Response};
use crate::replace_path::{escape_path, replace};

#[derive(Debug, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
struct Options {
    #[serde(default)]
    regex: String,
    #[serde(default)]
    replacement: String,
}

#[derive(Debug)]
pub(crate) struct ReplacePathRegex {
    regex: Regex,
    replacement: String,
}

pub(crate) fn build(options: &serde_json::Value) -> Result<Arc<dyn Middleware>, String> {
    let options: Options = crate::options::decode(options)?;
    let pattern = options.regex.trim();
    let regex = Regex::new(pattern)
        .map_err(|e| format!("option regex: {pattern:?} is not a valid regular expression: {e}"))?;
    Ok(Arc::new(ReplacePathRegex {
        regex,
        replacement: options.replacement.trim().to_string(),
    }))
}

impl Middleware for ReplacePathRegex {
    fn handle<'a>(
        &'a self,
        mut request: Request,
        _ctx: &'a RequestContext<'a>,
        next: Next<'a>,
    ) -> BoxFuture<'a, Response> {
        let path = request.uri().path();
        // An empty replacement disables the middleware, as in Traefik.
        if self.replacement.is_empty() || !self.regex.is_match(path) {
            return next.run(request);
        }
        let new_path = escape_path(&self.regex.replace_all(path, self.replacement.as_str()));
        if let Err(status) = replace(&mut request, &new_path) {
            return Box::pin(async move { crate::responses::status(status) });
        }
        next.run(request)
    }
}
