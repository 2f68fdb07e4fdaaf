//! Rewriting a request's path while keeping its query.

use http::uri::{PathAndQuery, Uri};

/// Replaces the path of `uri` with `path` (an empty path becomes `/`), keeping the query,
/// scheme and authority. Fails only when `path` holds characters a URI cannot carry.
pub(crate) fn set_path(uri: &mut Uri, path: &str) -> Result<(), http::Error> {
    let path = if path.is_empty() { "/" } else { path };
    let path_and_query = match uri.query() {
        Some(query) => PathAndQuery::try_from(format!("{path}?{query}"))?,
        None => PathAndQuery::try_from(path)?,
    };
    let mut parts = std::mem::take(uri).into_parts();
    parts.path_and_query = Some(path_and_query);
    *uri = Uri::from_parts(parts)?;
    Ok(())
}

/// `/` in front of a non-empty path that lacks it (Go's `ensureLeadingSlash`).
pub(crate) fn ensure_leading_slash(path: &str) -> std::borrow::Cow<'_, str> {
    if path.is_empty() || path.starts_with('/') {
        path.into()
    } else {
        format!("/{path}").into()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn keeps_the_query_and_authority() {
        let mut uri: Uri = "http://a.test/x/y?q=1".parse().unwrap();
        set_path(&mut uri, "/z").unwrap();
        assert_eq!(uri, "http://a.test/z?q=1");
        let mut uri: Uri = "/x".parse().unwrap();
        set_path(&mut uri, "").unwrap();
        assert_eq!(uri, "/");
        assert!(set_path(&mut uri, "/a b").is_err());
    }
}
