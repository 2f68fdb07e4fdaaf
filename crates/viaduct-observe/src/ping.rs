//! `/ping`: 200 `OK` while serving, `terminatingStatusCode` (503) once shutdown has begun, so
//! that load balancers in front stop sending traffic before the listeners close.

use std::sync::atomic::{AtomicBool, Ordering};

use http::{header, HeaderValue, Response, StatusCode};
use viaduct_upstream::{full_body, Body};

#[derive(Debug)]
pub struct Ping {
    terminating: AtomicBool,
    terminating_status: StatusCode,
}

impl Ping {
    pub fn new(terminating_status: u16) -> Ping {
        Ping {
            terminating: AtomicBool::new(false),
            terminating_status: StatusCode::from_u16(terminating_status)
                .unwrap_or(StatusCode::SERVICE_UNAVAILABLE),
        }
    }

    /// Shutdown has begun: answer with the terminating status from now on.
    pub fn terminate(&self) {
        self.terminating.store(true, Ordering::Relaxed);
    }

    /// The answer to any request routed to `ping@internal`: the status and its reason as the
    /// body, as Traefik answers.
    pub fn respond(&self) -> Response<Body> {
        let status = if self.terminating.load(Ordering::Relaxed) {
            self.terminating_status
        } else {
            StatusCode::OK
        };
        let text = status.canonical_reason().unwrap_or("");
        let mut response = Response::new(full_body(text.as_bytes().to_vec()));
        *response.status_mut() = status;
        response
            .headers_mut()
            .insert(header::CONTENT_LENGTH, HeaderValue::from(text.len()));
        response
    }
}

impl Default for Ping {
    fn default() -> Self {
        Ping::new(503)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ok_then_terminating() {
        let ping = Ping::new(503);
        assert_eq!(ping.respond().status(), StatusCode::OK);
        ping.terminate();
        assert_eq!(ping.respond().status(), StatusCode::SERVICE_UNAVAILABLE);
        assert_eq!(Ping::new(204).terminating_status, StatusCode::NO_CONTENT);
    }
}
