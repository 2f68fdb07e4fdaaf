//! An HTTP/1.1 client for plain-`http` backends whose connection I/O runs inline in the
//! task that sends the request.
//!
//! hyper-util's pooled client gives every connection its own task and talks to it through
//! channels: a checkout under a mutex, a message to the connection task, a oneshot back,
//! and several task wake-ups per request. Here the calling task writes the request and
//! reads the response itself, and the response body carries the connection back to the
//! pool when it is read to its end. That is the whole design: no spawned task, no channel,
//! no lock on the request path.
//!
//! Scope: plain HTTP/1.1 to `http://` servers. Upgrades (`Connection: upgrade`, 101),
//! `h2c` and TLS backends stay on hyper-util; [`crate::Transport`] routes them there. A 101
//! reaching this client is refused with a 502.

mod body;
mod decode;
mod pool;
mod request;
mod response;
#[cfg(test)]
mod tests;

use std::io;
use std::sync::Arc;
use std::time::Duration;

use http::{Method, Request, Response, StatusCode};

pub use body::{UpstreamBody, UpstreamBodyError};
pub use decode::{BodyDecoder, Decoded};
pub(crate) use pool::{HostPool, Pool, PoolSettings};
pub(crate) use response::ConnectionAsks;

use crate::body::{Body, BoxError};
use crate::error::{Blame, ProxyError};
use pool::Conn;
use response::{ResponseFraming, ResponseHead};

/// Why an exchange failed, before it is turned into a [`ProxyError`].
#[derive(Debug, thiserror::Error)]
pub(crate) enum H1Error {
    #[error("connecting: {0}")]
    Connect(io::Error),
    #[error("connecting: no connection within {0:?}")]
    ConnectTimeout(Duration),
    #[error("writing the request: {0}")]
    Write(io::Error),
    #[error("reading the response head: {0}")]
    Read(io::Error),
    #[error("connection closed before any response")]
    ClosedBeforeResponse(Option<io::Error>),
    #[error("malformed response: {0}")]
    Malformed(&'static str),
    #[error("upgrade not supported on the inline client")]
    Upgrade,
    #[error("reading the request body from the client: {0}")]
    ClientBody(BoxError),
}

/// Sends `request` to `host` and returns once the response head has arrived; the body is
/// read as the caller polls it.
///
/// A pooled connection that turns out to be closed before a single response byte arrived
/// (the backend timed it out just as we picked it) is replaced once by a fresh connection,
/// provided the request body was never polled, so the request can be sent again as is.
/// `request_close`: the request's `Connection` asked to close the connection after it
/// ([`ConnectionAsks`]).
pub(crate) async fn send(
    host: Arc<HostPool>,
    request: Request<Body>,
    request_close: bool,
) -> Result<Response<Body>, ProxyError> {
    let (parts, mut body) = request.into_parts();
    let head_request = parts.method == Method::HEAD;
    let mut body_polled = false;
    let mut retried = false;
    loop {
        let pooled = if retried { None } else { host.checkout() };
        let reused = pooled.is_some();
        let mut conn = match pooled {
            Some(conn) => conn,
            None => host
                .connect()
                .await
                .map_err(|e| e.into_proxy_error(&host))?,
        };
        let exchange = async {
            request::write_request(&mut conn, &parts, &mut body, &mut body_polled).await?;
            response::read_head(&mut conn, head_request).await
        };
        match exchange.await {
            Ok(head) => return Ok(respond(host, conn, head, request_close)),
            Err(err) if reused && !body_polled && err.is_stale_connection() => {
                tracing::trace!(server = %host.authority, error = %err, "pooled connection was closed; retrying on a new one");
                retried = true;
            }
            Err(err) => return Err(err.into_proxy_error(&host)),
        }
    }
}

fn respond(
    host: Arc<HostPool>,
    conn: Box<Conn>,
    head: ResponseHead,
    request_close: bool,
) -> Response<Body> {
    let keep_alive = head.keep_alive && !request_close;
    let body = if head.framing == ResponseFraming::Empty {
        if keep_alive && conn.read_buf.is_empty() {
            host.release(conn);
        }
        Body::Empty
    } else {
        Body::Upstream(UpstreamBody::new(conn, host, head.framing, keep_alive))
    };
    head.response.map(|()| body)
}

impl H1Error {
    /// The failures a pooled connection closed by the backend shows before it answers.
    fn is_stale_connection(&self) -> bool {
        matches!(self, H1Error::Write(_) | H1Error::ClosedBeforeResponse(_))
    }

    /// Status codes as Traefik: timeouts 504, other backend failures 502. A failed connect is
    /// retryable (nothing reached the backend). A failing client body is the client's fault:
    /// 408 when its `readTimeout` passed, else 400, which the client most likely never reads
    /// because it went away.
    fn into_proxy_error(self, host: &HostPool) -> ProxyError {
        let (status, blame, retryable) = match &self {
            H1Error::Connect(_) => (StatusCode::BAD_GATEWAY, Blame::Upstream, true),
            H1Error::ConnectTimeout(_) => (StatusCode::GATEWAY_TIMEOUT, Blame::Upstream, true),
            H1Error::ClientBody(e) if crate::error::timed_out(e.as_ref()) => {
                (StatusCode::REQUEST_TIMEOUT, Blame::Client, false)
            }
            H1Error::ClientBody(_) => (StatusCode::BAD_REQUEST, Blame::Client, false),
            H1Error::Read(e) if e.kind() == io::ErrorKind::TimedOut => {
                (StatusCode::GATEWAY_TIMEOUT, Blame::Upstream, false)
            }
            _ => (StatusCode::BAD_GATEWAY, Blame::Upstream, false),
        };
        ProxyError::new(
            status,
            blame,
            retryable,
            format!("{}: {self}", host.authority),
        )
    }
}
