//! Request checks hyper's parser leaves to the application (RFC 9112).

use http::header::{HOST, TRANSFER_ENCODING};
use http::{Request, StatusCode, Version};

/// Why a request is refused before routing.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Rejection {
    /// No `Host` on HTTP/1.1, or several (RFC 9112 §3.2): 400.
    BadHost,
    /// A transfer coding other than `chunked` (RFC 9112 §6.1): 501. The proxy would otherwise
    /// strip the header and pass on a body the backend cannot decode. (A request whose final
    /// coding is not `chunked` never gets here: its length is unknowable, and the parser
    /// answers 400 as §6.3 requires.)
    UnknownTransferCoding,
}

impl Rejection {
    pub fn status(self) -> StatusCode {
        match self {
            Rejection::BadHost => StatusCode::BAD_REQUEST,
            Rejection::UnknownTransferCoding => StatusCode::NOT_IMPLEMENTED,
        }
    }
}

pub fn check<B>(request: &Request<B>) -> Result<(), Rejection> {
    let headers = request.headers();
    let mut hosts = headers.get_all(HOST).iter();
    let first_host = hosts.next();
    if hosts.next().is_some() {
        return Err(Rejection::BadHost);
    }
    if first_host.is_none()
        && request.version() == Version::HTTP_11
        && request.uri().authority().is_none()
    {
        return Err(Rejection::BadHost);
    }
    for value in headers.get_all(TRANSFER_ENCODING) {
        let known = value
            .to_str()
            .map(|v| {
                v.split(',')
                    .map(str::trim)
                    .filter(|c| !c.is_empty())
                    .all(|c| c.eq_ignore_ascii_case("chunked"))
            })
            .unwrap_or(false);
        if !known {
            return Err(Rejection::UnknownTransferCoding);
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn request(version: Version, uri: &str, headers: &[(&str, &str)]) -> Request<()> {
        let mut b = Request::builder().version(version).uri(uri);
        for (k, v) in headers {
            b = b.header(*k, *v);
        }
        b.body(()).unwrap()
    }

    #[test]
    fn host_rules() {
        assert_eq!(
            check(&request(Version::HTTP_11, "/", &[])),
            Err(Rejection::BadHost)
        );
        assert_eq!(
            check(&request(
                Version::HTTP_11,
                "/",
                &[("host", "a"), ("host", "b")]
            )),
            Err(Rejection::BadHost)
        );
        assert!(check(&request(Version::HTTP_11, "/", &[("host", "a")])).is_ok());
        assert!(check(&request(Version::HTTP_11, "http://a/", &[])).is_ok());
        assert!(check(&request(Version::HTTP_10, "/", &[])).is_ok());
        assert!(check(&request(Version::HTTP_2, "http://a/", &[])).is_ok());
    }

    #[test]
    fn transfer_codings() {
        let ok = request(
            Version::HTTP_11,
            "/",
            &[("host", "a"), ("transfer-encoding", "chunked")],
        );
        assert!(check(&ok).is_ok());
        let gzip = request(
            Version::HTTP_11,
            "/",
            &[("host", "a"), ("transfer-encoding", "gzip, chunked")],
        );
        assert_eq!(check(&gzip), Err(Rejection::UnknownTransferCoding));
        assert_eq!(
            Rejection::UnknownTransferCoding.status(),
            StatusCode::NOT_IMPLEMENTED
        );
    }
}
