//! `redirectRegex`: redirects when a regex matches the request's full URL, to the
//! replacement (`$1`, `${name}` refer to the regex's groups).

use std::sync::Arc;

use serde::Deserialize;

use crate::chain::Middleware;
use crate::redirect::{Redirect, UrlSource};

#[derive(Debug, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
struct Options {
    #[serde(default)]
    regex: String,
    #[serde(default)]
    replacement: String,
    #[serde(default)]
    permanent: bool,
}

pub(crate) fn build(options: &serde_json::Value) -> Result<Arc<dyn Middleware>, String> {
    let options: Options = crate::options::decode(options)?;
    Ok(Arc::new(Redirect::new(
        &options.regex,
        options.replacement,
        options.permanent,
        UrlSource::Raw,
    )?))
}
