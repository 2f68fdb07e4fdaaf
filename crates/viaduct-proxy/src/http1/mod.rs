//! The entry points' HTTP/1.1 server for plain (non-TLS) connections.
//!
//! Why not hyper's: a kept-alive connection waiting for its next request holds nothing here
//! but its task and socket. hyper keeps an 8 KiB read buffer, an 8 KiB write buffer and a
//! slot the size of the request handler's future for the life of the connection (about
//! 28 KiB per idle connection in all); this server releases its buffers between requests
//! and reads header values as slices of the head it read, without copies.
//!
//! Scope: HTTP/1.0 and 1.1, keep-alive, pipelining (requests are answered in order),
//! chunked and length-delimited bodies both ways, trailers, `Expect: 100-continue`, upgrades
//! (WebSocket), the read (head and body), write and idle timeouts, and graceful shutdown. A
//! connection that opens with the HTTP/2 preface (h2c with prior knowledge) is handed to
//! hyper's HTTP/2 server, and TLS connections stay on hyper. `VIADUCT_HTTP1_SERVER=hyper` puts plain connections
//! back on hyper too.

mod body;
pub(crate) mod head;
mod io;
pub(crate) mod write;

use std::sync::Arc;
use std::time::Duration;

use bytes::BytesMut;
use http::{Method, Request, StatusCode, Version};
use tokio::net::TcpStream;
use tokio::sync::oneshot;
use tokio::time::Instant;
use viaduct_upstream::Body;

use crate::handler::{self, ConnectionContext};
use crate::listener::Shutdown;
use body::RequestBody;
use head::{ParseError, RequestHead};
pub(crate) use io::HandedOn;
use write::Exchange;

/// The environment variable that puts plain connections back on hyper's HTTP/1.1 server.
pub const SERVER_ENV: &str = "VIADUCT_HTTP1_SERVER";

/// How long a finished exchange waits for a request body still held elsewhere to come back.
const BODY_RETURN_WAIT: Duration = Duration::from_secs(1);
/// An unread request body is read and discarded up to this size (then the connection
/// closes): closing with unread data would make the kernel reset the connection, and the
/// client could lose the response.
const DRAIN_LIMIT: usize = 256 * 1024;
const DRAIN_WAIT: Duration = Duration::from_secs(1);
/// The buffer made for the first bytes of a request head.
const FIRST_READ: usize = 1024;

/// Put in a request's extensions when it asks for an upgrade: resolves to the client
/// connection once the 101 has been sent. (Extensions must be `Clone`; the receiver is taken
/// once, by the forwarder.)
#[derive(Clone)]
pub(crate) struct ClientUpgrade(Arc<std::sync::Mutex<Option<oneshot::Receiver<HandedOn>>>>);

impl ClientUpgrade {
    pub(crate) fn take(&self) -> Option<oneshot::Receiver<HandedOn>> {
        self.0
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .take()
    }
}

/// How a connection ended, when it did not simply close.
pub(crate) enum Outcome {
    Closed,
    /// The client spoke HTTP/2 with prior knowledge: serve the connection with HTTP/2.
    Http2(HandedOn),
}

/// True unless `VIADUCT_HTTP1_SERVER=hyper`.
pub(crate) fn enabled() -> bool {
    std::env::var(SERVER_ENV).map_or(true, |v| !v.eq_ignore_ascii_case("hyper"))
}

/// Serves HTTP/1.x requests on `stream` until the client closes, a timeout, an error, or
/// `shutdown` (idle connections close at once, a busy one after its response).
pub(crate) async fn serve(
    stream: TcpStream,
    conn: Arc<ConnectionContext>,
    shutdown: Shutdown,
) -> Outcome {
    let stream = Arc::new(stream);
    let mut buf = BytesMut::new();
    // One timer for the connection's life, moved rather than replaced: registering a new timer
    // per request woke the runtime's driver through its eventfd (a system call per request).
    let timer = tokio::time::sleep(Duration::ZERO);
    tokio::pin!(timer);
    // Likewise one wait for shutdown: a new `wait_for` per request registered anew with the
    // channel each time.
    let stopping = stopping(shutdown.clone());
    tokio::pin!(stopping);
    let ep = &conn.entry_point;
    loop {
        let mut read_deadline = None;
        let next = next_head(
            &stream,
            &mut buf,
            &conn,
            stopping.as_mut(),
            timer.as_mut(),
            &mut read_deadline,
        );
        let head = match next.await {
            Next::Head(head) => head,
            Next::Closed => return Outcome::Closed,
            Next::Reject(status) => {
                let _ = write::write_status(&stream, status).await;
                return Outcome::Closed;
            }
            Next::Http2 => {
                return match HandedOn::new(std::mem::take(&mut buf), stream) {
                    Some(io) => Outcome::Http2(io),
                    None => Outcome::Closed,
                }
            }
        };
        let exchange = Exchange {
            version: head.version,
            head_request: head.method == Method::HEAD,
            keep_alive: head.version == Version::HTTP_11
                && !head.must_close
                && !head.asks.close
                && !*shutdown.borrow(),
        };
        let http11 = head.version == Version::HTTP_11;
        let upgrade = http11 && head.asks.upgrade && !head.asks.h2c;
        let continue_first = http11 && head.body.is_some() && head.asks.continue_first;

        // `writeTimeout` counts from the end of the head, as Go's: only read the clock when set.
        let write_deadline = ep.write_timeout.map(|t| Instant::now() + t);
        let (body, mut returned) = match head.body {
            None => (Body::Empty, None),
            Some(decoder) => {
                // `readTimeout` covers the body too, counted from the head's first byte.
                let deadline = ep.read_timeout.map(|limit| {
                    let at = read_deadline.unwrap_or_else(|| Instant::now() + limit);
                    (at, limit)
                });
                let (body, returned) =
                    RequestBody::new(stream.clone(), std::mem::take(&mut buf), decoder, deadline);
                (Body::boxed(body), Some(returned))
            }
        };
        if continue_first && write::write_continue(&stream).await.is_err() {
            return Outcome::Closed;
        }
        let mut request = Request::new(body);
        *request.method_mut() = head.method;
        *request.uri_mut() = head.uri;
        *request.version_mut() = head.version;
        *request.headers_mut() = head.headers;
        let upgraded = upgrade.then(|| {
            let (tx, rx) = oneshot::channel();
            request
                .extensions_mut()
                .insert(ClientUpgrade(Arc::new(std::sync::Mutex::new(Some(rx)))));
            tx
        });

        // Boxed so that an idle connection does not carry the request path's state.
        let exchange_future = Box::pin(handler::handle(request, conn.clone()));
        // A client that goes away abandons its exchange, as in Traefik (its request context
        // is cancelled). While a request body is out, reading it notices that instead.
        let watch_limit = conn.entry_point.max_header_bytes;
        // Past `writeTimeout` the exchange is abandoned and the connection closed: Go's writes
        // fail then, and the client sees the connection close without an answer.
        let response = tokio::select! {
            response = exchange_future => response,
            _ = io::client_closed(&stream, &mut buf, watch_limit), if returned.is_none() => {
                return Outcome::Closed
            }
            () = until(write_deadline, timer.as_mut()), if write_deadline.is_some() => {
                return Outcome::Closed
            }
        };
        let back = match returned.as_mut().map(oneshot::Receiver::try_recv) {
            Some(Ok(back)) if back.timed_out => {
                let _ = write::write_status(&stream, StatusCode::REQUEST_TIMEOUT).await;
                return Outcome::Closed;
            }
            Some(Ok(back)) => Some(back),
            _ => None,
        };

        let mut wbuf = write::lend_buffer();
        if let (StatusCode::SWITCHING_PROTOCOLS, Some(upgraded)) = (response.status(), upgraded) {
            let switching = Exchange {
                keep_alive: true,
                ..exchange
            };
            if write::write_response(&stream, &mut wbuf, response, &switching, None)
                .await
                .is_ok()
            {
                drop(returned);
                if let Some(io) = HandedOn::new(std::mem::take(&mut buf), stream) {
                    let _ = upgraded.send(io);
                }
            }
            return Outcome::Closed;
        }
        let watch = returned.is_none().then_some((&mut buf, watch_limit));
        let written = write::write_response(&stream, &mut wbuf, response, &exchange, watch);
        let reusable = match write_deadline {
            None => matches!(written.await, Ok(true)),
            Some(_) => tokio::select! {
                result = written => matches!(result, Ok(true)),
                () = until(write_deadline, timer.as_mut()) => return Outcome::Closed,
            },
        };
        write::give_back(wbuf);
        if let Some(returned) = returned {
            let back = match back {
                Some(back) => Some(back),
                None => match tokio::time::timeout(BODY_RETURN_WAIT, returned).await {
                    Ok(Ok(back)) => Some(back),
                    _ => None,
                },
            };
            let Some(back) = back else {
                return Outcome::Closed;
            };
            buf = back.buf;
            if !back.decoder.is_done() && !drain(&stream, &mut buf, back.decoder).await {
                return Outcome::Closed;
            }
        }
        if !reusable {
            return Outcome::Closed;
        }
    }
}

// `Head` is by far the most common outcome: boxing it would cost an allocation per request.
#[allow(clippy::large_enum_variant)]
enum Next {
    Head(RequestHead),
    Closed,
    Reject(StatusCode),
    Http2,
}

/// Reads until a whole request head is buffered. While nothing is buffered the connection is
/// idle: its buffer is released, `idleTimeout` applies and shutdown closes it. Once a byte
/// of a head arrived, the head must be complete within `readTimeout`.
async fn next_head(
    stream: &TcpStream,
    buf: &mut BytesMut,
    conn: &ConnectionContext,
    mut stopping: std::pin::Pin<&mut impl std::future::Future<Output = ()>>,
    mut timer: std::pin::Pin<&mut tokio::time::Sleep>,
    read_deadline: &mut Option<Instant>,
) -> Next {
    let ep = &conn.entry_point;
    let mut deadline: Option<Option<Instant>> = None;
    loop {
        if buf.is_empty() {
            if buf.capacity() > 0 {
                *buf = BytesMut::new();
            }
        } else {
            match head::parse(buf) {
                Ok(Some(head)) => return Next::Head(head),
                Ok(None) if buf.len() >= ep.max_header_bytes => {
                    return Next::Reject(StatusCode::REQUEST_HEADER_FIELDS_TOO_LARGE)
                }
                Ok(None) => {}
                Err(ParseError::Reject(status)) => return Next::Reject(status),
                Err(ParseError::Http2Preface) => return Next::Http2,
            }
        }
        let idle = buf.is_empty();
        let limit = if idle {
            ep.idle_timeout
                .or(ep.read_timeout)
                .map(|t| Instant::now() + t)
        } else {
            *deadline.get_or_insert_with(|| {
                let at = ep
                    .read_timeout
                    .or(ep.idle_timeout)
                    .map(|t| Instant::now() + t);
                if ep.read_timeout.is_some() {
                    *read_deadline = at;
                }
                at
            })
        };
        tokio::select! {
            biased;
            // The stream's own waker slot, not `readable()`'s queue of waiters: one task reads.
            ready = std::future::poll_fn(|cx| stream.poll_read_ready(cx)) => {
                if ready.is_err() {
                    return Next::Closed;
                }
            }
            // Never polled again once it has completed: the connection closes then.
            () = stopping.as_mut(), if idle => return Next::Closed,
            _ = until(limit, timer.as_mut()) => return Next::Closed,
        }
        // A head's first read gets 1 KiB, as nginx's `client_header_buffer_size`: it holds
        // most heads, and an allocation that small is served from the allocator's
        // thread cache. A longer head grows the buffer on the next read.
        if idle {
            buf.reserve(FIRST_READ);
        } else if buf.capacity() - buf.len() < 1024 {
            buf.reserve(io::READ_CHUNK);
        }
        match viaduct_upstream::readiness::read_into(stream, buf) {
            Ok(0) => return Next::Closed,
            Ok(_) => {}
            Err(e) if e.kind() == std::io::ErrorKind::WouldBlock => {}
            Err(_) => return Next::Closed,
        }
    }
}

/// Resolves once shutdown begins (or the listener is gone).
async fn stopping(mut shutdown: Shutdown) {
    let _ = shutdown.wait_for(|stop| *stop).await;
}

/// Waits for `deadline` on the connection's timer (never, when there is none).
async fn until(deadline: Option<Instant>, mut timer: std::pin::Pin<&mut tokio::time::Sleep>) {
    match deadline {
        Some(at) => {
            if timer.deadline() != at {
                timer.as_mut().reset(at);
            }
            timer.await
        }
        None => std::future::pending().await,
    }
}

/// Reads and discards the rest of a request body nobody read, bounded in size and time.
/// `false` when the connection cannot be reused.
async fn drain(
    stream: &TcpStream,
    buf: &mut BytesMut,
    mut decoder: viaduct_upstream::BodyDecoder,
) -> bool {
    let work = async {
        let mut discarded = 0usize;
        loop {
            match decoder.decode(buf) {
                viaduct_upstream::Decoded::Data(data) => {
                    discarded += data.len();
                    if discarded > DRAIN_LIMIT {
                        return false;
                    }
                }
                viaduct_upstream::Decoded::Finished(_) => return true,
                viaduct_upstream::Decoded::Malformed(_) => return false,
                viaduct_upstream::Decoded::NeedMore => {
                    match std::future::poll_fn(|cx| io::poll_fill(stream, buf, cx)).await {
                        Ok(0) | Err(_) => return false,
                        Ok(_) => {}
                    }
                }
            }
        }
    };
    tokio::time::timeout(DRAIN_WAIT, work)
        .await
        .unwrap_or(false)
}
