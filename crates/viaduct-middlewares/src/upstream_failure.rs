//! The mark the proxy leaves on an answer it wrote itself because forwarding failed.

/// Attached (as a response extension) to the error answer of a request whose forwarding
/// failed: the backend could not be reached, or broke the exchange before answering. A
/// backend's own 502 carries no such mark. `retry` reads it to know whether sending the
/// request again is safe.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct UpstreamFailure {
    /// True when nothing of the request reached the backend.
    pub retryable: bool,
}
