//! `stripPrefixRegex`: removes the first prefix matched by one of the regexes (tried in
//! order) and tells the backend which in `X-Forwarded-Prefix`.

use std::sync::Arc;

use http::header::HeaderValue;
use http::StatusCode;
use regex::Regex;
use serde::Deserialize;

use crate::chain::{BoxFuture, Middleware, Next, Request, RequestContext, Response};
use crate::strip_prefix::X_FORWARDED_PREFIX;
use crate::uri::{ensure_leading_slash, set_path};

#[derive(Debug, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
struct Options {
    #[serde(default)]
    regex: Vec<String>,
}

#[derive(Debug)]
pub(crate) struct StripPrefixRegex {
    expressions: Vec<Regex>,
}

pub(crate) fn build(options: &serde_json::Value) -> Result<Arc<dyn Middleware>, String> {
    let options: Options = crate::options::decode(options)?;
    let expressions = options
        .regex
        .iter()
        .map(|r| {
            let pattern = r.trim();
            Regex::new(pattern).map_err(|e| {
                format!("option regex: {pattern:?} is not a valid regular expression: {e}")
            })
        })
        .collect::<Result<_, _>>()?;
    Ok(Arc::new(StripPrefixRegex { expressions }))
}

impl Middleware for StripPrefixRegex {
    fn handle<'a>(
        &'a self,
        mut request: Request,
        _ctx: &'a RequestContext<'a>,
        next: Next<'a>,
    ) -> BoxFuture<'a, Response> {
        let path = request.uri().path();
        // The whole match must be a non-empty prefix of the path (Traefik skips a regex
        // that matches elsewhere).
        let prefix = self.expressions.iter().find_map(|regex| {
            let found = regex.find(path)?;
            (found.start() == 0 && !found.is_empty()).then(|| found.as_str())
        });
        let Some(prefix) = prefix else {
            return next.run(request);
        };
        let (Ok(value), Some(rest)) = (HeaderValue::from_str(prefix), path.get(prefix.len()..))
        else {
            return next.run(request);
        };
        let stripped = ensure_leading_slash(rest).into_owned();
        if set_path(request.uri_mut(), &stripped).is_err() {
            return Box::pin(async { crate::responses::status(StatusCode::BAD_REQUEST) });
        }
        request.headers_mut().append(X_FORWARDED_PREFIX, value);
        next.run(request)
    }
}
