//! `redirectScheme`: redirects to another scheme (and port) unless the request is already
//! on it.

use std::sync::Arc;

use serde::Deserialize;

use crate::chain::Middleware;
use crate::redirect::{Redirect, UrlSource, URI_PATTERN};

#[derive(Debug, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
struct Options {
    #[serde(default)]
    scheme: String,
    #[serde(default)]
    port: String,
    #[serde(default)]
    permanent: bool,
}

pub(crate) fn build(options: &serde_json::Value) -> Result<Arc<dyn Middleware>, String> {
    let options: Options = crate::options::decode(options)?;
    if options.scheme.is_empty() {
        return Err("option scheme: you must provide a target scheme".into());
    }
    let default_port = (options.scheme == "http" && options.port == "80")
        || (options.scheme == "https" && options.port == "443");
    let port = if options.port.is_empty() || default_port {
        String::new()
    } else {
        format!(":{}", options.port)
    };
    // `$$` is a literal `$` in a replacement: a scheme or port cannot inject group references.
    let replacement = format!(
        "{}://${{2}}{}${{4}}",
        options.scheme.replace('$', "$$"),
        port.replace('$', "$$")
    );
    Ok(Arc::new(Redirect::new(
        URI_PATTERN,
        replacement,
        options.permanent,
        UrlSource::Scheme,
    )?))
}
