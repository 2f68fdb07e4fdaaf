use http::StatusCode;

/// Who made a proxied request fail. One fact that decides the status code, whether a retry
/// is safe, what passive health checks count and what the access log says.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Blame {
    /// The client sent something wrong or went away.
    Client,
    /// The backend could not be reached, timed out or broke the exchange.
    Upstream,
    /// The proxy itself (configuration, no server available).
    Proxy,
}

#[derive(Debug, thiserror::Error)]
#[error("{message}")]
pub struct ProxyError {
    pub status: StatusCode,
    pub blame: Blame,
    /// True when nothing reached the backend, so sending the request again is safe.
    pub retryable: bool,
    pub message: String,
}

impl ProxyError {
    pub fn new(
        status: StatusCode,
        blame: Blame,
        retryable: bool,
        message: impl Into<String>,
    ) -> Self {
        ProxyError {
            status,
            blame,
            retryable,
            message: message.into(),
        }
    }

    /// No server to send the request to (empty pool, all unhealthy): Traefik's 503.
    pub fn no_server() -> Self {
        ProxyError::new(
            StatusCode::SERVICE_UNAVAILABLE,
            Blame::Proxy,
            false,
            "no available server",
        )
    }
}

/// An error and its sources, outermost first.
pub(crate) fn error_chain<'a>(
    err: &'a (dyn std::error::Error + 'static),
) -> impl Iterator<Item = &'a (dyn std::error::Error + 'static)> {
    std::iter::successors(Some(err), |e: &&'a (dyn std::error::Error + 'static)| {
        (*e).source()
    })
}

/// An error with its causes, joined by `: `: the causes are where HTTP clients put the useful
/// part ("connection refused", "invalid peer certificate"). For messages naming a failure.
pub fn error_text(err: &dyn std::error::Error) -> String {
    let mut text = err.to_string();
    let mut source = err.source();
    while let Some(cause) = source {
        text.push_str(": ");
        text.push_str(&cause.to_string());
        source = cause.source();
    }
    text
}

/// Whether a request body failed because its deadline passed (`readTimeout`): the servers'
/// body wrappers fail with an `io::Error` of kind `TimedOut` then, and the exchange is answered
/// (and logged) as 408.
pub(crate) fn timed_out(err: &(dyn std::error::Error + 'static)) -> bool {
    error_chain(err).any(|e| {
        e.downcast_ref::<std::io::Error>()
            .is_some_and(|io| io.kind() == std::io::ErrorKind::TimedOut)
    })
}
