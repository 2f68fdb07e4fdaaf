//! `addPrefix`: prepends a prefix to the request path.

use std::sync::Arc;

use http::StatusCode;
use serde::Deserialize;

use crate::chain::{BoxFuture, Middleware, Next, Request, RequestContext, Response};
use crate::uri::{ensure_leading_slash, set_path};

#[derive(Debug, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
struct Options {
    #[serde(default)]
    prefix: String,
}

#[derive(Debug)]
pub(crate) struct AddPrefix {
    prefix: String,
}

pub(crate) fn build(options: &serde_json::Value) -> Result<Arc<dyn Middleware>, String> {
    let options: Options = crate::options::decode(options)?;
    if options.prefix.is_empty() {
        return Err("option prefix: the prefix cannot be empty".into());
    }
    Ok(Arc::new(AddPrefix {
        prefix: options.prefix,
    }))
}

impl Middleware for AddPrefix {
    fn handle<'a>(
        &'a self,
        mut request: Request,
        _ctx: &'a RequestContext<'a>,
        next: Next<'a>,
    ) -> BoxFuture<'a, Response> {
        let path = format!("{}{}", self.prefix, request.uri().path());
        if set_path(request.uri_mut(), &ensure_leading_slash(&path)).is_err() {
            return Box::pin(async { crate::responses::status(StatusCode::BAD_REQUEST) });
        }
        next.run(request)
    }
}
