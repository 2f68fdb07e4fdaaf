use std::sync::{Arc, OnceLock};

use http::uri::{Authority, Scheme};
use http::{HeaderValue, Uri};

use crate::h1::HostPool;
use crate::health::ServerState;

/// One backend server of a load balancer, parsed once when the snapshot is built.
#[derive(Debug)]
pub struct Server {
    /// The URL as configured, for logs, the API and metrics labels.
    pub url: String,
    pub scheme: Scheme,
    pub authority: Authority,
    /// `h2c://` servers speak HTTP/2 over cleartext (prior knowledge).
    pub h2c: bool,
    /// The `Host` header sent when `passHostHeader` is false.
    pub host_header: HeaderValue,
    /// Path prefix added to every request (`preservePath`), without a trailing slash.
    pub path_prefix: Option<String>,
    pub weight: u64,
    /// Health and load, shared with the previous snapshot's server of the same service and
    /// URL (the compiler replaces the fresh state `parse` gives).
    pub state: Arc<ServerState>,
    /// The inline client's pool for this server, looked up once: a server belongs to one
    /// balancer and so to one transport, whose pool outlives this snapshot.
    pub(crate) h1_host: OnceLock<Arc<HostPool>>,
}

#[derive(Debug, thiserror::Error)]
pub enum ServerUrlError {
    #[error("invalid server URL {url:?}: {reason}")]
    Invalid { url: String, reason: String },
}

impl Server {
    pub fn parse(url: &str, weight: u64, preserve_path: bool) -> Result<Server, ServerUrlError> {
        let invalid = |reason: &str| ServerUrlError::Invalid {
            url: url.to_string(),
            reason: reason.into(),
        };
        let uri: Uri = url
            .trim()
            .parse()
            .map_err(|e: http::uri::InvalidUri| invalid(&e.to_string()))?;
        let (scheme, h2c) = match uri.scheme_str().map(str::to_ascii_lowercase).as_deref() {
            Some("http") => (Scheme::HTTP, false),
            Some("https") => (Scheme::HTTPS, false),
            Some("h2c") => (Scheme::HTTP, true),
            Some(other) => {
                return Err(invalid(&format!(
                    "unsupported scheme {other:?} (http, https or h2c)"
                )))
            }
            None => return Err(invalid("missing scheme (http://, https:// or h2c://)")),
        };
        let authority = uri
            .authority()
            .cloned()
            .ok_or_else(|| invalid("missing host"))?;
        if authority.host().is_empty() {
            return Err(invalid("missing host"));
        }
        let host_header =
            HeaderValue::from_str(authority.as_str()).map_err(|_| invalid("invalid host"))?;
        let path_prefix = if preserve_path {
            let p = uri.path().trim_end_matches('/');
            (!p.is_empty()).then(|| p.to_string())
        } else {
            None
        };
        Ok(Server {
            url: url.to_string(),
            scheme,
            authority,
            h2c,
            host_header,
            path_prefix,
            weight,
            state: Arc::default(),
            h1_host: OnceLock::new(),
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_schemes() {
        let s = Server::parse("http://127.0.0.1:8080", 1, false).unwrap();
        assert_eq!(s.scheme, Scheme::HTTP);
        assert!(!s.h2c);
        assert_eq!(s.authority.as_str(), "127.0.0.1:8080");
        let s = Server::parse("h2c://backend:9000", 1, false).unwrap();
        assert!(s.h2c);
        assert_eq!(s.scheme, Scheme::HTTP);
        let s = Server::parse("https://[::1]:8443/base/", 1, true).unwrap();
        assert_eq!(s.scheme, Scheme::HTTPS);
        assert_eq!(s.path_prefix.as_deref(), Some("/base"));
    }

    #[test]
    fn rejects_bad_urls() {
        for bad in ["127.0.0.1:80", "ftp://x", "http://", "not a url"] {
            assert!(Server::parse(bad, 1, false).is_err(), "{bad}");
        }
    }
}
